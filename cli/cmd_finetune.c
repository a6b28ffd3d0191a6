/* cmd_finetune.c - terse finetune --gist K: gist-token fine-tuning (terse_finetune). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *finetune_usage =
    "usage: terse finetune [MODEL] --gist K --data F.jsonl[.xz] -o OUT.gguf [opts]\n"
    "Fine-tune MODEL (default: the default model) with K gist tokens after each instruction\n"
    "(Mu et al. 2023); JSONL lines {\"instruction\", \"input\", \"output\"}; .xz via xz -dc.\n"
    "  --gist K          gist tokens (1..64; 0 with --mask pos/neg: no gist token)\n"
    "  --mask M          gist (default), pos (no mask), neg (instruction hidden)\n"
    "  --steps N --batch B --lr X --min-lr X --warmup N --wd X --clip X --seed N\n"
    "  --max-len N       longest sequence kept (default 256); --max-examples N\n"
    "  --init PATH       where the gist model made from a base goes (default OUT.init.gguf)\n"
    "  --state PATH      optimiser state: resumed from when it exists; --save-every N\n"
    "  --examples PATH   write the tokenised examples in training order (tools/gist_train.py)\n"
    CLI_OPTS_USAGE;

static int progress(void *ud, int32_t step, double loss, double gn, float lr) {
    (void)ud;
    fprintf(stderr, "step %d  loss %.6f  grad_norm %.4f  lr %.3g\n", step, loss, gn, lr);
    printf("%d\t%.9g\n", step, loss);
    return 0;
}

static int read_data(const char *path, char **out, size_t *len) {
    size_t n = strlen(path);
    if (n < 3 || strcmp(path + n - 3, ".xz")) return cli_read_input(path, out, len);
    char cmd[4200];
    if (strchr(path, '\'')) { fprintf(stderr, "terse finetune: odd data path\n"); return 1; }
    snprintf(cmd, sizeof cmd, "xz -dc -- '%s'", path);
    FILE *f = popen(cmd, "r");
    if (!f) { perror("xz"); return 1; }
    size_t cap = 1 << 20, used = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + used, 1, cap - used, f)) > 0) {
        used += r;
        if (used == cap) { char *nb = realloc(b, cap *= 2); if (!nb) { free(b); b = NULL; } else b = nb; }
    }
    int st = pclose(f);
    if (!b || st != 0) { free(b); fprintf(stderr, "terse finetune: reading '%s' failed\n", path); return 1; }
    *out = b, *len = used;
    return 0;
}

int cmd_finetune(int argc, char **argv) {
    terse_finetune_params p = terse_finetune_default_params();
    cli_opts o = cli_opts_default();
    const char *data_path = NULL;
    int have_k = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR("-o", &p.out_path),
        CLI_OPT_STR("--data", &data_path),
        CLI_OPT_STR("--init", &p.init_path),
        CLI_OPT_STR("--state", &p.state_path),
        CLI_OPT_STR("--examples", &p.examples_path),
        CLI_OPT_STR("--mask", &p.mask),
        CLI_OPT_SEEN("--gist", &p.K, 0, 64, &have_k),
        CLI_OPT_NUM("--steps", &p.steps, 1, 1 << 24),
        CLI_OPT_NUM("--batch", &p.batch, 1, 1 << 16),
        CLI_OPT_NUM("--warmup", &p.warmup, 0, 1 << 24),
        CLI_OPT_NUM("--save-every", &p.save_every, 0, 1 << 24),
        CLI_OPT_NUM("--max-len", &p.max_len, 8, 1 << 20),
        CLI_OPT_NUM("--max-examples", &p.max_examples, 0, 1 << 30),
        CLI_OPT_NUM("--seed", &p.seed, 0, 0x7fffffffL),
        CLI_OPT_NUM("--lr", &p.lr, 1e-12, 10),
        CLI_OPT_NUM("--min-lr", &p.min_lr, 0, 10),
        CLI_OPT_NUM("--wd", &p.weight_decay, 0, 10),
        CLI_OPT_NUM("--clip", &p.clip, 0, 1e9),
        CLI_OPT_END};
    const cli_cmd cmd = {"finetune", finetune_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    if (!have_k || !data_path || (!p.out_path && !p.examples_path)) {
        fprintf(stderr, "terse finetune: --gist K, --data F and -o OUT are required\n%s", finetune_usage);
        return 2;
    }
    if (p.K == 0 && !strcmp(p.mask, "gist")) {
        fprintf(stderr, "terse finetune: --gist 0 needs --mask pos or neg\n");
        return 2;
    }
    p.model_path = cli_model_path(&o);
    if (!p.model_path) return 1;
    p.n_threads = (int32_t)o.threads;
    p.progress = progress;
    char *data = NULL;
    size_t len = 0;
    if (read_data(data_path, &data, &len)) return 1;
    p.data = data, p.data_len = len;
    int32_t n = 0;
    int rc = terse_finetune(&p, &n) != TERSE_OK ? cli_fail("finetune") : 0;
    if (!rc) fprintf(stderr, "finetune: %d examples%s%s\n", n, p.out_path ? ", model " : "",
                     p.out_path ? p.out_path : "");
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* gist: compute and store the gist cache of an instruction                                  */

static const char *gist_usage =
    "usage: terse gist [MODEL] -f INSTRUCTION -o G.gguf [--gist K]\n"
    "Runs [BOS] \"Instruction: INSTRUCTION\\n\" and K gist tokens through a gist\n"
    "model (terse finetune --gist K) and stores the gists' keys and values at every layer,\n"
    "with the model's and the instruction's hashes; use it with terse generate --gist G.gguf.\n"
    "  -f FILE    the instruction (- for stdin)\n"
    "  --gist K   gist tokens (default: the K the model was trained with, terse.gist.k;\n"
    "             1 if it has none)\n"
    "or:    terse gist --q8 IN.gguf OUT.gguf [--gist K] [--type T]   the shipping copy of a\n"
    "       trained (F32) gist model: its matrices as Q8_0 or T (terse convert's types);\n"
    "       --gist K records K as the number of gists it was trained with\n"
    CLI_OPTS_USAGE;

int cmd_gist(int argc, char **argv) {
    cli_opts o = cli_opts_default();
    const char *file = NULL, *out = NULL;
    long K = 0;
    if (argc >= 2 && !strcmp(argv[1], "--q8")) {
        terse_type type = TERSE_TYPE_Q8_0;
        if (argc < 4) {
            fprintf(stderr, "terse gist --q8: IN.gguf OUT.gguf [--gist K] [--type T]\n%s", gist_usage);
            return 2;
        }
        for (int i = 4; i < argc; i += 2) {
            if (i + 1 >= argc) return cli_bad_option("gist --q8", argv[i], 1, "--gist --type", gist_usage);
            if (!strcmp(argv[i], "--gist")) {
                if (cli_parse_int(argv[i], argv[i + 1], 1, 64, &K)) return 2;
            } else if (!strcmp(argv[i], "--type")) {
                if (cli_parse_type(argv[i + 1], &type)) return 2;
            } else return cli_bad_option("gist --q8", argv[i], 0, "--gist --type", gist_usage);
        }
        if (terse_gist_model_quantize(argv[2], argv[3], (int32_t)K, type) != TERSE_OK) return cli_fail("quantizing");
        fprintf(stderr, "terse: wrote %s\n", argv[3]);
        return 0;
    }
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &file),
        CLI_OPT_STR("-o", &out),
        CLI_OPT_NUM("--gist", &K, 1, 64),
        CLI_OPT_END};
    const cli_cmd cmd = {"gist", gist_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    if (!file || !out) { fprintf(stderr, "terse gist: -f INSTRUCTION and -o OUT are required\n%s", gist_usage); return 2; }
    const char *path = cli_model_path(&o);
    if (!path) return 1;
    char *text = NULL;
    size_t len = 0;
    if (cli_read_input(file, &text, &len)) return 1;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--; /* a file's last newline */
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    terse_gist *g = NULL;
    int rc = 1;
    if (terse_model_load(path, cli_model_params(o.threads), &m) != TERSE_OK) { cli_fail("loading model"); goto done; }
    if (terse_ctx_new(m, cli_ctx_params(&o), &c) != TERSE_OK) { cli_fail("creating context"); goto done; }
    if (!K) K = terse_model_gist_k(m) > 0 ? terse_model_gist_k(m) : 1; /* none: compute names it */
    if (terse_gist_compute(c, text, len, (int32_t)K, &g) != TERSE_OK) { cli_fail("gist"); goto done; }
    if (terse_gist_save(g, out) != TERSE_OK) { cli_fail("saving"); goto done; }
    printf("gist\t%s\nk\t%d\ninstruction_tokens\t%d\ncompression\t%.2f\nnext_pos\t%d\n", out,
           terse_gist_k(g), terse_gist_instruction_tokens(g),
           (double)terse_gist_instruction_tokens(g) / terse_gist_k(g), terse_gist_next_pos(g));
    rc = 0;
done:
    terse_gist_free(g);
    terse_ctx_free(c);
    terse_model_free(m);
    free(text);
    return rc;
}
