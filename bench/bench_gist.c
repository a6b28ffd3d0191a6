/* bench_gist.c - per request, a cached gist (terse_gist_apply + the input) against the full
 * instruction (BOS + instruction + gists + input, prefilled), on a gist model made from the
 * default model (models/terse-default.gguf + <GIST>, F32; or the model given):
 *   prefill FLOPs  2 P n + 2 n (kv_before + (n + 1) / 2) C_attn L   (P = non-embedding matrix
 *                  weights, n prefilled tokens, C_attn = n_head * head_dim; the output
 *                  projection of the last row only, 2 V C, both ways)
 *   wall time      median of the runs (prefill + one logit row)
 *   KV bytes       2 L n_kv_head head_dim 4 per cached token: K gists vs instruction + gists
 * Usage: bench_gist [MODEL.gguf] [--runs N] [--K K]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/nn.h"
#include "terse.h"
#include "util.h"
#include "train/gist.h"

static const char *INSTR[] = {
    "Generate a list of five creative ways to use an old tire, and explain each one briefly in "
    "a sentence that a child could understand.",
    "Rewrite the following paragraph in the passive voice, keeping its meaning and tone.",
    "Classify the sentiment of the review as positive, negative or neutral.",
};
static const char *INPUT = "The food was great but the service was painfully slow.";

int main(int argc, char **argv) {
    const char *model = "models/terse-default.gguf";
    int runs = 5, K = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--K") && i + 1 < argc) K = atoi(argv[++i]);
        else model = argv[i];
    }
    if (runs < 1 || runs > 100) runs = 5;
    char tmp[] = "/tmp/bench_gist_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) { perror("mkstemp"); return 1; }
    close(fd);
    terse_model *m = NULL;
    if (terse_model_load(model, terse_model_default_params(), &m)) { fprintf(stderr, "%s\n", terse_last_error()); return 1; }
    if (gist_token_id(m) < 0) {
        terse_model_free(m), m = NULL;
        if (gist_model_make(model, tmp) || terse_model_load(tmp, terse_model_default_params(), &m)) {
            fprintf(stderr, "%s\n", terse_last_error());
            remove(tmp);
            return 1;
        }
    }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_ctx = 1024;
    terse_ctx *c = NULL;
    if (terse_ctx_new(m, cp, &c)) { fprintf(stderr, "%s\n", terse_last_error()); return 1; }
    const double C = m->n_embd, L = m->n_layer, V = m->n_vocab, Q = m->n_q;
    const double P = (double)m->n_params - (double)m->tok_embd.rows * m->tok_embd.cols;
    const double kvtok = 2.0 * L * m->n_head_kv * m->head_dim * 4;
    float *row = malloc(sizeof(float) * m->n_vocab);
    printf("model %s (%s, %d layers, width %d), K = %d, %d runs, median wall\n", model,
           m->arch_name, m->n_layer, m->n_embd, K, runs);
    printf("%-6s %6s %6s | %10s %10s %6s | %9s %9s %6s | %9s %9s\n", "instr", "n_full", "n_gist",
           "MFLOP full", "MFLOP gist", "saved", "ms full", "ms gist", "x", "KV full", "KV gist");
    for (size_t s = 0; s < sizeof INSTR / sizeof *INSTR; s++) {
        terse_gist *g = NULL;
        if (terse_gist_compute(c, INSTR[s], strlen(INSTR[s]), K, &g)) { fprintf(stderr, "%s\n", terse_last_error()); return 1; }
        int32_t in[256];
        int64_t n_in = terse_gist_input_ids(m, INPUT, strlen(INPUT), in, 256);
        gist_example ex;
        if (gist_example_build(m, gist_token_id(m), K, INSTR[s], INPUT, "x", 1024, &ex)) return 1;
        const int32_t n_full = ex.n_prompt, prefix = ex.last + 1;
        double tf[100], tg[100];
        for (int r = 0; r < runs; r++) {
            double t0 = terse_now();
            terse_kv_clear(c);
            terse_batch b = {n_full, ex.ids, NULL, NULL, NULL}; /* the prompt as one request */
            if (terse_eval(c, &b) || terse_eval_logits(c, n_full - 1, row, 0)) return 1;
            tf[r] = terse_now() - t0;
            t0 = terse_now();
            terse_batch bi = {(int32_t)n_in, in, NULL, NULL, NULL};
            if (terse_gist_apply(c, g) || terse_eval(c, &bi) || terse_eval_logits(c, (int32_t)n_in - 1, row, 0)) return 1;
            tg[r] = terse_now() - t0;
        }
        qsort(tf, runs, sizeof *tf, bench_cmp_double), qsort(tg, runs, sizeof *tg, bench_cmp_double);
        double ff = 2 * P * n_full + 2 * n_full * ((n_full + 1) / 2.0) * Q * L * 2 + 2 * V * C;
        double fg = 2 * P * n_in + 2 * n_in * (K + (n_in + 1) / 2.0) * Q * L * 2 + 2 * V * C;
        printf("%-6zu %6d %6d | %10.1f %10.1f %5.1f%% | %9.2f %9.2f %6.2f | %9.0f %9.0f\n", s,
               n_full, (int)(n_in + K), ff / 1e6, fg / 1e6, 100 * (1 - fg / ff), 1e3 * tf[runs / 2],
               1e3 * tg[runs / 2], tf[runs / 2] / tg[runs / 2], kvtok * n_full, kvtok * (K + n_in));
        printf("       instruction + gists %d tokens -> %d cached (compression %.1fx of the "
               "instruction line)\n", prefix, K, (double)(prefix - 1 - K + 1) / K);
        gist_example_free(&ex);
        terse_gist_free(g);
    }
    free(row);
    terse_ctx_free(c);
    terse_model_free(m);
    remove(tmp);
    return 0;
}
