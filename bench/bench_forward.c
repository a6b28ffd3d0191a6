/* bench_forward.c - speed and memory of terse_score (a prefill with per-token surprisal) on
 * random models of two shapes, against this machine's measured sgemm peak.
 *
 *   gpt2-124m : gpt2, V 50257, C 768, L 12, H 12, F 3072, ctx 8192 (F32)
 *   llama-0.44b: llama, V 32000, C 1024, L 24, H 16, Hkv 8, F 4096, ctx 8192 (F32); the shape
 *                of `terse random --preset llama-0.5b`, 443M weights (377M non-embedding)
 *
 * FLOPs counted per scored sequence of T tokens: 2 * non-embedding matrix params * T
 * + causal attention 2 * 2 * T*T/2 * C per layer + output projection 2 * T * V * C.
 * Peak: the best of a few 2048^3 nn_sgemm (bench/util.c), measured right after each row so that it sees
 * the same machine load. Memory: ru_maxrss of this
 * process (models are generated in a child process so their write buffers do not count)
 * against weights + KV cache + the context's scratch.
 *
 * Usage: bench_forward [--full] [--model gpt2|llama] [--T n] [--runs n] [--threads n]
 *                      [--type f32|f16|bf16|q8_0|q6_k|q4_k_m]
 * Default: gpt2 at T=512 (3 runs, median) and 2048, llama at T=512 (a few minutes on 2 cores).
 * --full adds T=8192 for both and llama at 2048 (TERSE_BENCH_FULL=1 does the same).
 * Models are cached under /tmp (terse_bench_*.gguf).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/gemm.h"
#include "terse.h"
#include "util.h"

typedef struct {
    const char *label;
    terse_random_params p;
} shape;

static int n_threads; /* --threads: the context's n_threads (0 = all cores) */
static const char *type_label = "f32";

static void bench(const shape *s, const char *path, int T, int runs) {
    terse_model *m = NULL;
    if (terse_model_load(path, terse_model_default_params(), &m)) {
        fprintf(stderr, "load: %s\n", terse_last_error());
        return;
    }
    terse_model_info info;
    terse_model_get_info(m, &info);
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_ctx = T;
    cp.n_threads = n_threads;
    terse_ctx *c = NULL;
    if (terse_ctx_new(m, cp, &c)) {
        fprintf(stderr, "ctx: %s\n", terse_last_error());
        terse_model_free(m);
        return;
    }
    int32_t *ids = malloc(sizeof(int32_t) * T);
    float *out = malloc(sizeof(float) * T);
    uint64_t r = 12345;
    for (int i = 0; i < T; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((r >> 33) % (uint64_t)info.n_vocab);
    }
    double times[16], cpus[16];
    if (runs > 16) runs = 16;
    for (int k = 0; k < runs; k++) {
        double t0 = terse_now(), c0 = bench_cpu_seconds();
        if (terse_score(c, ids, T, out)) fprintf(stderr, "score: %s\n", terse_last_error());
        times[k] = terse_now() - t0;
        cpus[k] = bench_cpu_seconds() - c0;
    }
    qsort(times, (size_t)runs, sizeof times[0], bench_cmp_double);
    qsort(cpus, (size_t)runs, sizeof cpus[0], bench_cmp_double);
    double t = times[runs / 2], cpu = cpus[runs / 2];
    double peak = bench_peak_gflops(n_threads); /* right after, under the same load */
    const double C = info.n_embd, V = info.n_vocab, L = info.n_layer, F = info.n_ff;
    const double KV = C / info.n_head * info.n_head_kv;
    double layer_params = C * C * 2 + 2 * C * KV + (s->p.arch[0] == 'g' ? 2 : 3) * C * F;
    if (s->p.arch[0] == 'g') layer_params = 4 * C * C + 2 * C * F;
    double flops = 2 * layer_params * L * T + L * 2.0 * 2.0 * T * T / 2 * C + 2.0 * T * V * C;
    double gfs = flops / t / 1e9;
    double weights_mb = (double)info.file_bytes / 1048576.0;
    double kv_mb = 2.0 * L * T * KV * 4 / 1048576.0;
    double ws = (double)nn_gemm_workspace(n_threads ? n_threads : terse_default_threads(), 512,
                                          F > C ? (F > T ? F : T) : (C > T ? C : T));
    double scratch_mb = (512.0 * (4 * C + 2 * F + 4096) + 256.0 * T + (ws > (1 << 20) ? ws : (1 << 20)) + V) * 4 / 1048576.0;
    printf("%-12s %-7s %2d %5d %4d %8.2f %8.2f %9.1f %8.1f %8.1f %8.1f %6.0f %6.1f%% %9.0f %9.0f %5.1f (w %.0f + kv %.0f + scratch %.0f)\n",
           s->label, type_label, n_threads ? n_threads : terse_default_threads(), T, runs, t, cpu,
           T / t, flops / 1e9, gfs, flops / cpu / 1e9, peak, 100.0 * gfs / peak, bench_max_rss_mb(),
           weights_mb + kv_mb + scratch_mb, bench_load_avg(), weights_mb, kv_mb, scratch_mb);
    fflush(stdout);
    free(ids), free(out);
    terse_ctx_free(c);
    terse_model_free(m);
}

int main(int argc, char **argv) {
    int full = getenv("TERSE_BENCH_FULL") && atoi(getenv("TERSE_BENCH_FULL"));
    const char *only = NULL;
    int only_T = 0, runs_arg = 0;
    terse_type type = TERSE_TYPE_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) full = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--T") && i + 1 < argc) only_T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs_arg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            type_label = t;
            type = !strcmp(t, "f16") ? TERSE_TYPE_F16 : !strcmp(t, "bf16") ? TERSE_TYPE_BF16
                 : !strcmp(t, "q8_0") ? TERSE_TYPE_Q8_0 : !strcmp(t, "q6_k") ? TERSE_TYPE_Q6_K
                 : !strcmp(t, "q4_k_m") ? TERSE_TYPE_Q4_K_M : TERSE_TYPE_F32;
        } else {
            fprintf(stderr, "usage: %s [--full] [--model gpt2|llama] [--T n] [--runs n] "
                    "[--type f32|f16|bf16|q8_0|q6_k|q4_k_m]\n", argv[0]);
            return 2;
        }
    }
    const shape shapes[] = {
        {"gpt2-124m", {"gpt2", 50257, 8192, 768, 12, 12, 12, 3072, type, 1, 0, 0}},
        {"llama-0.44b", {"llama", 32000, 8192, 1024, 24, 16, 8, 4096, type, 1, 0, 0}},
    };
    const int Ts[] = {512, 2048, 8192};
    printf("peak = best of 3 terse sgemm 2048^3 (gemm kernel %s), same threads, measured right "
           "after each row (same load); time = median of `runs`; cpu_s = CPU seconds of "
           "all threads during a run, GF/cpu_s = GFLOP per CPU second (less sensitive to other "
           "load than wall time); load = 1-min load average after the row (the machine is "
           "shared, numbers are noisy)\n", nn_gemm_kernel());
    printf("%-12s %-7s %2s %5s %4s %8s %8s %9s %8s %8s %8s %6s %7s %9s %9s %5s\n", "model", "type",
           "th", "T", "runs", "time_s", "cpu_s", "tok/s", "GFLOP", "GFLOP/s", "GF/cpu_s", "peak",
           "%peak", "maxrss_MB", "expect_MB", "load");
    for (int k = 0; k < 2; k++) {
        const shape *s = &shapes[k];
        if (only && strncmp(s->label, only, strlen(only))) continue;
        char path[256];
        snprintf(path, sizeof path, "/tmp/terse_bench_%s_%d.gguf", s->label, (int)type);
        if (bench_ensure_model(path, &s->p)) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        for (int j = 0; j < 3; j++) {
            int T = Ts[j];
            if (only_T && T != only_T) continue;
            if (!only_T && !full && (T == 8192 || (k == 1 && T == 2048))) continue;
            int runs = runs_arg ? runs_arg : (T == 512 && k == 0 ? 3 : 1);
            bench(s, path, T, runs);
        }
    }
    return 0;
}
