/* bench/util.h - what the benchmarks share: the machine's measured sgemm peak, process CPU
 * time, peak RSS, the load average, medians, and random models written once to /tmp.
 * Linked into every bench/bench_*.c binary (Makefile); not part of the library. */
#ifndef TERSE_BENCH_UTIL_H
#define TERSE_BENCH_UTIL_H

#include "terse.h"

/* The ceiling: GFLOP/s of the best of 3 products 2048 x 2048 x 2048 by the runtime's own
 * sgemm (nn_sgemm, the kernel every linear layer uses) on n_threads threads (0 = all cores).
 * Call it right after the measured work so that it sees the same machine load. (The system
 * OpenBLAS is not the reference: on this CPU it picks its SSE3 kernels.) */
double bench_peak_gflops(int n_threads);

double bench_cpu_seconds(void); /* CPU seconds of this process, all threads */
double bench_max_rss_mb(void);  /* ru_maxrss of this process, MiB */
double bench_load_avg(void);    /* 1-minute load average, -1 when unknown */

int bench_cmp_double(const void *a, const void *b); /* qsort order for doubles */
double bench_median(double *t, int n);              /* sorts t */

/* Writes a random model to path unless it exists, in a child process (so that its write
 * buffers do not count in this process's peak RSS). 0 or -1. */
int bench_ensure_model(const char *path, const terse_random_params *p);

#endif
