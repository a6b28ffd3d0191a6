/* blas_threads.c - OpenBLAS's threads follow the context's n_threads.
 *
 * OpenBLAS (the pthread build) starts its own pool when the library loads: one thread per
 * core, or OPENBLAS_NUM_THREADS. How many of them work is a process-wide setting. Every BLAS
 * section of the runtime (a forward pass, a linear layer) opens with nn_blas_begin(n): the
 * setting becomes the context's n_threads (openblas_set_num_threads), and going down to one
 * thread also stops OpenBLAS's idle workers (blas_thread_shutdown_, which OpenBLAS exports for
 * its fork handler; they are started again when a later context wants more), so that a
 * one-thread context is one thread in /proc/self/task. Above one, the surplus workers that
 * OpenBLAS started at load time stay, asleep: at most n threads ever work.
 *
 * The setting is changed only when no other thread of the process is inside a BLAS section
 * (changing it under a running sgemm is not safe): contexts with different n_threads used at
 * the same moment from several threads share the setting of the first one in.
 * Not here: terse's own pool (pool.c), which is sized by the context directly.
 */
#include <cblas.h>
#include <pthread.h>

#include "nn/pool.h"

extern int blas_thread_shutdown_(void) __attribute__((weak));

static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int in_flight; /* threads inside a BLAS section (nested sections count again) */
static int current;   /* the last setting made here; 0 = none yet */

void nn_blas_begin(int n_threads) {
    pthread_mutex_lock(&blas_mu);
    if (in_flight++ == 0 && n_threads >= 1 && n_threads != current) {
        openblas_set_num_threads(n_threads);
        if (n_threads == 1 && blas_thread_shutdown_) blas_thread_shutdown_();
        current = n_threads;
    }
    pthread_mutex_unlock(&blas_mu);
}

void nn_blas_end(void) {
    pthread_mutex_lock(&blas_mu);
    in_flight--;
    pthread_mutex_unlock(&blas_mu);
}
