/* bench_llmlingua2.c - LLMLingua-2 on the GSM8K 8-shot prompt with random-weight encoders of
 * xlm-roberta-large's shape (24 layers, 1024 wide, 16 heads, ff 4096, 250102 x 1024
 * embeddings) and bert-base-multilingual-cased's (12, 768, 12, 3072, 119547), beside
 * LLMLingua (v1) with the default model on the same prompt, rate 0.33.
 *
 * The random encoders take the tokenizer of the test models (tests/golden/llmlingua2, converted
 * here): speed depends on the shape and the token count, not on the weights or the vocabulary
 * size. Reported: wall time of terse_compress, tokens scored per second, the encoder's
 * GFLOP/s (2 x parameters outside the embeddings x tokens, plus attention 4 n^2 C per layer
 * and chunk), this machine's best 2048^3 nn_sgemm right after (bench/util.c: the kernel of the
 * encoder's linear layers; it was OpenBLAS's cblas_sgemm before), and peak RSS.
 * The random models are written to /tmp once (2.2 GB for the large one) and reused.
 *
 * Usage: bench_llmlingua2 [--only bert|xlmr|llmlingua] [-t N] [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/encoder.h"
#include "terse.h"
#include "util.h"

typedef struct {
    const char *label, *key, *golden, *path;
    int32_t V, C, L, H, F;
} shape;

static int run(const char *label, const char *model_path, terse_method method, const char *prompt,
               int n_threads, int runs, const shape *sh) {
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    if (terse_model_load(model_path, terse_model_default_params(), &m) != TERSE_OK) {
        fprintf(stderr, "%s: %s\n", label, terse_last_error());
        return 1;
    }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = n_threads;
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) {
        fprintf(stderr, "%s: %s\n", label, terse_last_error());
        terse_model_free(m);
        return 1;
    }
    const char *ctxs[1] = {prompt};
    terse_prompt pr = {.contexts = ctxs, .n_contexts = 1};
    terse_compress_params p = terse_compress_default_params();
    p.method = method;
    p.rate = 0.33;
    const char *force[2] = {"\n", "?"};
    if (method == TERSE_METHOD_LLMLINGUA2) p.force_tokens = force, p.n_force_tokens = 2;
    double best = 1e30, model_s = 0;
    terse_compress_stats st = {0};
    for (int r = 0; r < runs; r++) {
        terse_result *res = NULL;
        double t0 = terse_now();
        if (terse_compress(c, &pr, p, &res) != TERSE_OK) {
            fprintf(stderr, "%s: %s\n", label, terse_last_error());
            break;
        }
        double t = terse_now() - t0;
        terse_result_get_stats(res, &st);
        if (t < best) best = t, model_s = st.seconds_model;
        terse_result_free(res);
    }
    int64_t T = st.origin_model_tokens;
    double flops = 0;
    if (sh) { /* encoder: linear layers + attention, chunks of <= 512 tokens */
        double per_tok = 2.0 * sh->L * (4.0 * sh->C * sh->C + 2.0 * sh->C * sh->F);
        int64_t n_chunks = (T + 509) / 510, left = T;
        flops = per_tok * (double)(T + 2 * n_chunks);
        for (int64_t k = 0; k < n_chunks; k++, left -= 510) {
            double n = (double)(left < 510 ? left : 510) + 2;
            flops += 4.0 * n * n * sh->C * sh->L;
        }
    }
    double peak = bench_peak_gflops(n_threads);
    printf("%-34s %6lld %8.3f %8.3f %9.0f", label, (long long)T, best, model_s, T / best);
    if (sh) printf(" %8.1f %7.1f %5.0f%%", flops / 1e9 / model_s, peak, 100.0 * flops / 1e9 / model_s / peak);
    else printf(" %8s %7.1f %6s", "-", peak, "-");
    printf(" %9.0f  %.1f%%\n", bench_max_rss_mb(), 100.0 * st.rate);
    terse_ctx_free(c);
    terse_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *only = NULL;
    int n_threads = 0, runs = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_llmlingua2 [--only bert|xlmr|llmlingua] [-t N] [--runs N]\n");
            return 2;
        }
    }
    size_t len;
    char *prompt = NULL;
    if (terse_read_all("../shared/data/gsm8k/prompt_hardest.txt", &prompt, &len) &&
        terse_read_all("tests/data/llmlingua2/gsm8k.txt", &prompt, &len))
        prompt = NULL;
    if (!prompt) {
        fprintf(stderr, "bench_llmlingua2: GSM8K prompt not found\n");
        return 1;
    }
    shape shapes[2] = {
        {"llmlingua2 xlm-roberta-large shape", "xlmr", "tests/golden/llmlingua2/xlmr",
         "/tmp/terse_bench_l2_xlmr_large.gguf", 250102, 1024, 24, 16, 4096},
        {"llmlingua2 bert-base-multiling. shape", "bert", "tests/golden/llmlingua2/bert",
         "/tmp/terse_bench_l2_mbert_base.gguf", 119547, 768, 12, 12, 3072},
    };
    printf("GSM8K 8-shot prompt, rate 0.33, best of %d; peak = best 2048^3 nn_sgemm right after\n", runs);
    printf("%-34s %6s %8s %8s %9s %8s %7s %6s %9s  %s\n", "method / model", "tokens", "wall_s", "model_s",
           "tok/s", "GFLOP/s", "peak", "%peak", "maxrss_MB", "kept");
    for (int k = 0; k < 2; k++) {
        const shape *sh = &shapes[k];
        if (only && strcmp(only, sh->key)) continue;
        if (access(sh->path, R_OK) != 0) {
            const char *vocab = "/tmp/terse_bench_l2_vocab.gguf";
            if (terse_convert_hf(sh->golden, vocab, TERSE_TYPE_F32) != TERSE_OK ||
                nn_write_random_encoder(sh->path, vocab, sh->V, 512, sh->C, sh->L, sh->H, sh->F, 7) != TERSE_OK) {
                fprintf(stderr, "bench_llmlingua2: %s\n", terse_last_error());
                return 1;
            }
            unlink(vocab);
        }
        run(sh->label, sh->path, TERSE_METHOD_LLMLINGUA2, prompt, n_threads, runs, sh);
    }
    if (!only || !strcmp(only, "llmlingua")) {
        char def[4096];
        if (terse_default_model_path(def, sizeof def) > 0)
            run("llmlingua, default model", def, TERSE_METHOD_LLMLINGUA, prompt, n_threads, runs, NULL);
        else
            printf("llmlingua: default model not found\n");
    }
    free(prompt);
    return 0;
}
