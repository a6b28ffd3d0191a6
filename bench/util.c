/* bench/util.c - helpers the benchmarks share (see util.h). */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/gemm.h"
#include "nn/pool.h"

double bench_peak_gflops(int n_threads) {
    const int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    nn_pool *pool = NULL;
    if (!a || !b || !c || nn_pool_new(n_threads ? n_threads : terse_default_threads(), &pool)) {
        free(a), free(b), free(c);
        return -1;
    }
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = terse_now();
        nn_sgemm(1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, pool, NULL, 0);
        double t = terse_now() - t0;
        if (t < best) best = t;
    }
    nn_pool_free(pool);
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

double bench_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_max_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

double bench_load_avg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bench_cmp_double);
    return t[n / 2];
}

int bench_ensure_model(const char *path, const terse_random_params *p) {
    if (access(path, R_OK) == 0) return 0;
    fprintf(stderr, "writing %s ...\n", path);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(terse_write_random_model(path, p) == TERSE_OK ? 0 : 1);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
