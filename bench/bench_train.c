/* bench_train.c - speed and memory of the training engine (src/nn/grad.h): one training step
 * = nn_grad_forward + loss + nn_grad_backward over T tokens, against the scoring forward
 * (terse_score) of the same T tokens and this machine's measured sgemm peak.
 *
 *   gpt2-124m : gpt2, V 50257, C 768, L 12, H 12, F 3072 (F32; the file bench_forward makes)
 *   default   : models/terse-default.gguf (llama, C 512, L 6, Q8_0 matrices)
 * Modes: "input" = gradients w.r.t. the input rows only (soft prompts: weights frozen),
 *        "in+f32" = the same with f32_cache (quantised models: F32 copies, no dequantising),
 *        "weights" = every F32 weight trainable too (gpt2 only; the default model's matrices
 *        are Q8_0, which stay frozen).
 *
 * FLOPs per step of T tokens (useful work; causal attention counted as half the square):
 *   forward  2 P T + 2 T^2 C L + 2 T V C            (P = non-embedding matrix weights)
 *   backward 2 P T + 5 T^2 C L + 2 T V C            (input grads: dx of every product; the
 *                                                   attention recomputes its scores)
 *          + 2 P T + 2 T V C                        (weights mode: dW of every product)
 * Peak: the best of a few 2048^3 products of the runtime's gemm (nn_sgemm, the kernel every
 * product here uses), measured right after each row; load: the 1-minute load average then. Memory: ru_maxrss
 * of this process (models are written by a child process) against the model file + the
 * engine's arena, masters and gradients (nn_grad_bytes) + the logit gradient buffer.
 *
 * cpu_scr / cpu_st: CPU seconds (all threads) of one score / one step, and their ratio: on a
 * shared machine these move less with other load than the wall times.
 *
 * Usage: bench_train [--model gpt2|default] [--T n] [--runs n]
 * Default: gpt2-124m at T = 256 (input, weights) and the default model at T = 512 (input).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn/gemm.h"
#include "nn/grad.h"
#include "terse.h"
#include "util.h"

static void bench(const char *label, const char *path, int T, int runs) {
    terse_model *m = NULL;
    if (terse_model_load(path, terse_model_default_params(), &m)) {
        fprintf(stderr, "load: %s\n", terse_last_error());
        return;
    }
    const double C = m->n_embd, V = m->n_vocab, L = m->n_layer, F = m->n_ff;
    const double KV = (double)m->n_head_kv * m->head_dim;
    const double P = L * (m->arch == NN_ARCH_GPT2 ? 4 * C * C + 2 * C * F
                                                  : 2 * C * C + 2 * C * KV + 3 * C * F);
    const double fwd_flops = 2 * P * T + 2.0 * T * T * C * L + 2.0 * T * V * C;
    const double bwd_in = 2 * P * T + 5.0 * T * T * C * L + 2.0 * T * V * C;
    const double bwd_w = 2 * P * T + 2.0 * T * V * C;
    int32_t *ids = malloc(sizeof(int32_t) * (T + 1));
    uint64_t r = 12345;
    for (int i = 0; i <= T; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((r >> 33) % (uint64_t)m->n_vocab);
    }
    if (runs > 16) runs = 16;

    /* the scoring forward */
    double t_score = 0, cpu_score = 0;
    {
        terse_ctx_params cp = terse_ctx_default_params();
        cp.n_ctx = T;
        terse_ctx *c = NULL;
        float *s = malloc(sizeof(float) * T);
        if (terse_ctx_new(m, cp, &c) == 0) {
            double ts[16], c0 = bench_cpu_seconds();
            for (int k = 0; k < runs; k++) {
                double t0 = terse_now();
                terse_score(c, ids, T, s);
                ts[k] = terse_now() - t0;
            }
            t_score = bench_median(ts, runs);
            cpu_score = (bench_cpu_seconds() - c0) / runs;
        }
        terse_ctx_free(c);
        free(s);
    }
    float *dl = malloc(sizeof(float) * (size_t)T * m->n_vocab);
    float *d_embd = malloc(sizeof(float) * (size_t)T * m->n_embd);
    for (int mode = 0; mode < 3; mode++) { /* input, input + f32_cache, weights */
        const int wg = mode == 2, cache = mode == 1;
        if (wg && m->weight_type != TERSE_TYPE_F32) continue;
        if (cache && m->weight_type == TERSE_TYPE_F32) continue;
        nn_grad *g = NULL;
        if (nn_grad_new(m, (nn_grad_params){.max_tokens = T, .weight_grads = wg, .f32_cache = cache}, &g)) {
            fprintf(stderr, "nn_grad_new: %s\n", terse_last_error());
            continue;
        }
        double tf[16], tl[16], tb[16];
        double loss = 0, c0 = bench_cpu_seconds();
        for (int k = 0; k < runs; k++) {
            const float *lg;
            double t0 = terse_now();
            nn_grad_forward(g, ids, NULL, T, NULL, &lg);
            double t1 = terse_now();
            loss = nn_loss_ce(lg, ids + 1, T, m->n_vocab, dl);
            double t2 = terse_now();
            nn_grad_backward(g, dl, d_embd);
            double t3 = terse_now();
            tf[k] = t1 - t0, tl[k] = t2 - t1, tb[k] = t3 - t2;
        }
        double cpu_step = (bench_cpu_seconds() - c0) / runs;
        double f = bench_median(tf, runs), l = bench_median(tl, runs), b = bench_median(tb, runs);
        double step = f + l + b;
        double flops = fwd_flops + bwd_in + (wg ? bwd_w : 0);
        double peak = bench_peak_gflops(0);
        double expect = (double)m->file_bytes / 1048576.0 + (double)nn_grad_bytes(g) / 1048576.0 +
                        (double)T * (V + C) * 4 / 1048576.0;
        printf("%-10s %-7s %5d %7.3f %7.3f %7.3f %7.3f %7.3f %6.2fx %6.2fx %8.1f %8.1f %6.1f%% "
               "%6.0f %8.0f %8.0f %7.2f %7.2f %6.2fx %5.1f (CE %.3f)\n",
               label, wg ? "weights" : cache ? "in+f32" : "input", T, t_score, f, l, b, step, step / t_score,
               step / f, T / step, flops / step / 1e9, 100.0 * flops / step / 1e9 / peak, peak,
               bench_max_rss_mb(), expect, cpu_score, cpu_step, cpu_step / cpu_score, bench_load_avg(), loss);
        fflush(stdout);
        nn_grad_free(g);
    }
    free(dl), free(d_embd), free(ids);
    terse_model_free(m);
}

int main(int argc, char **argv) {
    const char *only = NULL;
    int only_T = 0, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--T") && i + 1 < argc) only_T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--model gpt2|default] [--T n] [--runs n]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    printf("step = training forward + CE loss + backward; score = terse_score (the scoring "
           "forward) of the same T tokens; times are medians of %d runs, %d threads; peak = best "
           "2048^3 nn_sgemm right after each row; the machine is shared, numbers are noisy\n",
           runs, terse_default_threads());
    printf("%-10s %-7s %5s %7s %7s %7s %7s %7s %7s %7s %8s %8s %7s %6s %8s %8s %7s %7s %7s %5s\n",
           "model", "grads", "T", "score_s", "fwd_s", "loss_s", "bwd_s", "step_s", "st/scr",
           "st/fwd", "tok/s", "GFLOP/s", "%peak", "peak", "rss_MB", "expect", "cpu_scr",
           "cpu_st", "cpu_rat", "load");
    if (!only || !strcmp(only, "gpt2")) {
        const terse_random_params p = {"gpt2", 50257, 8192, 768, 12, 12, 12, 3072,
                                       TERSE_TYPE_F32, 1, 0, 0};
        const char *path = "/tmp/terse_bench_gpt2-124m_0.gguf"; /* shared with bench_forward */
        if (bench_ensure_model(path, &p)) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        bench("gpt2-124m", path, only_T ? only_T : 256, runs);
    }
    if (!only || !strcmp(only, "default")) {
        char path[1024];
        if (terse_default_model_path(path, sizeof path) < 0) {
            fprintf(stderr, "default model: %s\n", terse_last_error());
            return 1;
        }
        bench("default", path, only_T ? only_T : 512, runs);
    }
    return 0;
}
