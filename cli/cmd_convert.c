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
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) { fputs(convert_usage, stdout); return 0; }
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (cli_parse_type(argv[++i], &type)) return 2;
        } else if (argv[i][0] != '-' && np < 4) pos[np++] = argv[i];
        else return cli_bad_option("convert", argv[i], i + 1 == argc, "--type", convert_usage);
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        long v = 0;
        if (!strcmp(a, "--help")) { fputs(random_usage, stdout); return 0; }
        if (!strcmp(a, "--kv-heads") || !strcmp(a, "--preset")) kv_given = 1;
        if (a[0] != '-' && !out) { out = a; continue; }
        if (!next) { fprintf(stderr, "terse random: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--preset")) {
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
        } else if (!strcmp(a, "--arch")) p.arch = next;
        else if (!strcmp(a, "--type")) { if (cli_parse_type(next, &p.type)) return 2; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_int(a, next, 0, 0x7fffffffL, &v)) return 2; p.seed = (uint64_t)v; }
        else {
            if (cli_parse_int(a, next, 1, 1 << 24, &v)) return 2;
            if (!strcmp(a, "--vocab")) p.n_vocab = (int32_t)v;
            else if (!strcmp(a, "--ctx")) p.n_ctx = (int32_t)v;
            else if (!strcmp(a, "--embd")) p.n_embd = (int32_t)v;
            else if (!strcmp(a, "--layers")) p.n_layer = (int32_t)v;
            else if (!strcmp(a, "--heads")) p.n_head = (int32_t)v;
            else if (!strcmp(a, "--kv-heads")) { p.n_head_kv = (int32_t)v; kv_given = 1; }
            else if (!strcmp(a, "--ff")) p.n_ff = (int32_t)v;
            else { fprintf(stderr, "terse random: unknown option '%s'\n%s", a, random_usage); return 2; }
        }
    }
    if (!out) { fputs(random_usage, stderr); return 2; }
    if (!kv_given) p.n_head_kv = !strcmp(p.arch, "gpt2") || p.n_head % 2 ? p.n_head : p.n_head / 2;
    if (terse_write_random_model(out, &p) != TERSE_OK) return cli_fail("writing random model");
    fprintf(stderr, "terse: wrote %s\n", out);
    return 0;
}
