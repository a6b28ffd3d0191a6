/* pool.c - the runtime's thread pool (see pool.h): n - 1 workers that sleep on a condition
 * variable between jobs, a generation counter to start a job, a countdown to finish it.
 * The caller's thread takes range 0 itself. Nothing else: no queue, no work stealing.
 */
#include "nn/pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/base.h"

struct nn_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    uint64_t gen;           /* incremented per job */
    int pending;            /* workers still running the current job */
    int quit;
    nn_range_fn fn;
    void *arg;
    int64_t n;
};

typedef struct {
    nn_pool *p;
    int index;              /* 1..n_threads-1 */
} worker_arg;

static void range_of(int64_t n, int parts, int k, int64_t *i0, int64_t *i1) {
    *i0 = n * k / parts;
    *i1 = n * (k + 1) / parts;
}

static void *worker(void *a) {
    worker_arg *wa = a;
    nn_pool *p = wa->p;
    const int k = wa->index;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        nn_range_fn fn = p->fn;
        void *arg = p->arg;
        int64_t i0, i1;
        range_of(p->n, p->n_threads, k, &i0, &i1);
        pthread_mutex_unlock(&p->mu);
        if (i1 > i0) fn(arg, i0, i1);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int nn_pool_new(int n_threads, nn_pool **out) {
    *out = NULL;
    nn_pool *p = terse_calloc(1, sizeof *p, "thread pool");
    if (!p) return TERSE_ERR_NOMEM;
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->n_threads > 1) {
        p->threads = terse_calloc((size_t)p->n_threads - 1, sizeof *p->threads, "pool threads");
        if (!p->threads) {
            nn_pool_free(p);
            return TERSE_ERR_NOMEM;
        }
        for (int k = 1; k < p->n_threads; k++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa || (wa->p = p, wa->index = k,
                        pthread_create(&p->threads[k - 1], NULL, worker, wa) != 0)) {
                free(wa);
                p->n_threads = k; /* the ones started so far are joined by free */
                nn_pool_free(p);
                return terse_err(TERSE_ERR_NOMEM, "thread pool: cannot start thread %d", k);
            }
        }
    }
    *out = p;
    return TERSE_OK;
}

void nn_pool_free(nn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    if (p->threads)
        for (int k = 1; k < p->n_threads; k++) pthread_join(p->threads[k - 1], NULL);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int nn_pool_threads(const nn_pool *p) { return p ? p->n_threads : 1; }

void nn_pool_run(nn_pool *p, int64_t n, int64_t min_items, nn_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (!p || p->n_threads == 1 || n < min_items || n < 2) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->arg = arg, p->n = n;
    p->pending = p->n_threads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    int64_t i0, i1;
    range_of(n, p->n_threads, 0, &i0, &i1);
    if (i1 > i0) fn(arg, i0, i1);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
