/* cmd_convert.c - model files: `terse convert` (llama2.c and Hugging Face to GGUF) and
 * `terse random` (a model of any supported shape with seeded random weights). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char convert_usage[] =
    "usage: terse convert llama2c CHECKPOINT.bin TOKENIZER.bin OUT.gguf [--type T]\n"
    "       terse convert hf MODEL_DIR OUT.gguf [--type T]\n"
    "  T: f32 (default), f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k,\n"
    "     q4_k_m, q5_k_m (llama-quantize's mixtures). Norms and biases stay F32.\n";

int cmd_convert(int argc, char **argv) {
    terse_type type = TERSE_TYPE_F32;
    const char *pos[4];
    int np = 0;
    cli_opts o = cli_opts_default();
    const cli_cmd cmd = {"convert", convert_usage, NULL, CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &o);
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) return k;
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (cli_parse_type(argv[++i], &type)) return 2;
        } else if (argv[i][0] != '-' && np < 4) pos[np++] = argv[i];
        else return cli_bad_option(cmd.name, argv[i], i + 1 == argc, "--type", cmd.usage);
    }
    if (np == 4 && !strcmp(pos[0], "llama2c")) {
        if (terse_convert_llama2c(pos[1], pos[2], pos[3], type) != TERSE_OK) return cli_fail("converting");
        fprintf(stderr, "terse: wrote %s\n", pos[3]);
        return 0;
    }
    if (np == 3 && !strcmp(pos[0], "hf")) {
        if (terse_convert_hf(pos[1], pos[2], type) != TERSE_OK) return cli_fail("converting");
        fprintf(stderr, "terse: wrote %s\n", pos[2]);
        return 0;
    }
    fputs(convert_usage, stderr);
    return 2;
}

static const char random_usage[] =
    "usage: terse random OUT.gguf [--preset NAME] [--arch A] [--vocab N] [--ctx N] [--embd N]\n"
    "                    [--layers N] [--heads N] [--kv-heads N] [--ff N] [--type T] [--seed S]\n"
    "  presets: gpt2-124m (gpt2, 50257 vocab, 768 x 12), llama-0.5b (llama, 32000 vocab,\n"
    "  1024 x 24, 16 heads, 8 kv heads, ff 4096), tiny (llama, 512 vocab, 64 x 2).\n"
    "  Without --kv-heads: gpt2 has as many as --heads; llama and qwen2 half of them when\n"
    "  --heads is even (the tiny default: 4 heads, 2 kv heads), else as many.\n"
    "  --arch: llama, qwen2, qwen3, gpt2, phi2, phi3, gemma, gemma2 (the tiny shape unless\n"
    "  given).\n";

int cmd_random(int argc, char **argv) {
    terse_random_params p = {.arch = "llama", .n_vocab = 512, .n_ctx = 256, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 172, .type = TERSE_TYPE_F32, .seed = 1};
    const char *out = NULL;
    int kv_given = 0; /* --kv-heads or a preset */
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("--arch", &p.arch),
        CLI_OPT_NUM("--seed", &p.seed, 0, 0x7fffffffL),
        CLI_OPT_NUM("--vocab", &p.n_vocab, 1, 1 << 24),
        CLI_OPT_NUM("--ctx", &p.n_ctx, 1, 1 << 24),
        CLI_OPT_NUM("--embd", &p.n_embd, 1, 1 << 24),
        CLI_OPT_NUM("--layers", &p.n_layer, 1, 1 << 24),
        CLI_OPT_NUM("--heads", &p.n_head, 1, 1 << 24),
        CLI_OPT_SEEN("--kv-heads", &p.n_head_kv, 1, 1 << 24, &kv_given),
        CLI_OPT_NUM("--ff", &p.n_ff, 1, 1 << 24),
        CLI_OPT_END};
    const cli_cmd cmd = {"random", random_usage, opts, CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &o);
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) return k;
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && !out) out = a;
        else if (!strcmp(a, "--type") && next) {
            if (cli_parse_type(next, &p.type)) return 2;
            i++;
        } else if (!strcmp(a, "--preset") && next) {
            i++;
            kv_given = 1;
            if (!strcmp(next, "gpt2-124m")) {
                terse_random_params q = {.arch = "gpt2", .n_vocab = 50257, .n_ctx = 1024, .n_embd = 768, .n_layer = 12, .n_head = 12, .n_head_kv = 12, .n_ff = 3072, .type = p.type, .seed = p.seed};
                p = q;
            } else if (!strcmp(next, "llama-0.5b")) {
                terse_random_params q = {.arch = "llama", .n_vocab = 32000, .n_ctx = 8192, .n_embd = 1024, .n_layer = 24, .n_head = 16, .n_head_kv = 8, .n_ff = 4096, .type = p.type, .seed = p.seed};
                p = q;
            } else if (!strcmp(next, "tiny")) {
                terse_random_params q = {.arch = "llama", .n_vocab = 512, .n_ctx = 256, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 172, .type = p.type, .seed = p.seed};
                p = q;
            } else { fprintf(stderr, "terse random: unknown preset '%s'\n", next); return 2; }
        } else return cli_bad_option(cmd.name, a, !next, "--type --preset", cmd.usage);
    }
    if (!out) { fputs(random_usage, stderr); return 2; }
    if (!kv_given) p.n_head_kv = !strcmp(p.arch, "gpt2") || p.n_head % 2 ? p.n_head : p.n_head / 2;
    if (terse_write_random_model(out, &p) != TERSE_OK) return cli_fail("writing random model");
    fprintf(stderr, "terse: wrote %s\n", out);
    return 0;
}
