/* pool.h - a small thread pool for the runtime's element-wise work (norms, rotary, softmax,
 * activations, dequantisation). Internal header.
 *
 * Why not OpenMP: OpenBLAS here is the pthread build with its own threads, and between two
 * sgemm calls libgomp's idle workers spin (GOMP_SPINCOUNT) on the same cores the BLAS threads
 * need; on 2 cores that halved the throughput. These workers block on a condition variable
 * as soon as their share is done, so the BLAS gets the cores back at once.
 */
#ifndef TERSE_NN_POOL_H
#define TERSE_NN_POOL_H

#include <stdint.h>

typedef struct nn_pool nn_pool;

/* fn(arg, i0, i1) handles items [i0, i1). */
typedef void (*nn_range_fn)(void *arg, int64_t i0, int64_t i1);

/* A pool running jobs on n_threads threads in all (the caller's thread included, so
 * n_threads - 1 workers are started). NULL pool or n_threads <= 1: everything runs inline. */
int  nn_pool_new(int n_threads, nn_pool **out);
void nn_pool_free(nn_pool *p);
int  nn_pool_threads(const nn_pool *p);

/* Split [0, n) into equal contiguous ranges, one per thread, and wait for all. Runs inline
 * when n < min_items (not worth waking anyone). Not reentrant: fn must not call nn_pool_run. */
void nn_pool_run(nn_pool *p, int64_t n, int64_t min_items, nn_range_fn fn, void *arg);

/* OpenBLAS's threads (blas_threads.c): a section of BLAS calls made for a context of
 * n_threads threads opens with nn_blas_begin(n_threads) and closes with nn_blas_end(); OpenBLAS
 * then works with at most n_threads threads (and with one, no worker of it is left running). */
void nn_blas_begin(int n_threads);
void nn_blas_end(void);

#endif
