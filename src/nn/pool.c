/* pool.c - the runtime's thread pool (see pool.h): n - 1 workers that sleep on a condition
 * variable between jobs, a generation counter to start a job, a countdown to finish it.
 * The caller's thread takes range 0 itself. Nothing else: no queue, no work stealing.
 * A forward starts several hundred jobs back to back, and waking a sleeping thread costs tens
 * of microseconds (more in a virtual machine, where the idle CPU has to be woken too): so a
 * worker that finishes a job first watches the generation counter for about SPIN_NS before it
 * goes to sleep, and the caller watches the countdown as long before it waits on `done`.
 */
#include "nn/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

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

#define SPIN_NS 100000      /* how long a thread watches for the next job before sleeping */

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Watch *v (read without the lock) until it differs from `from` or SPIN_NS pass; one body for
 * the generation counter (uint64_t) and the countdown (int). */
#define SPIN_WHILE_EQ(v, from)                                                                   \
    do {                                                                                         \
        int64_t t0_ = mono_ns();                                                                 \
        for (int i_ = 0; __atomic_load_n((v), __ATOMIC_ACQUIRE) == (from); i_++)                 \
            if ((i_ & 63) == 63 && mono_ns() - t0_ > SPIN_NS) break;                             \
            else cpu_relax();                                                                    \
    } while (0)

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
        if (p->gen == seen && !p->quit) { /* watch for the next job a while before sleeping */
            pthread_mutex_unlock(&p->mu);
            SPIN_WHILE_EQ(&p->gen, seen);
            pthread_mutex_lock(&p->mu);
        }
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
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&p->done);
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
    __atomic_store_n(&p->pending, p->n_threads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    int64_t i0, i1;
    range_of(n, p->n_threads, 0, &i0, &i1);
    if (i1 > i0) fn(arg, i0, i1);
    SPIN_WHILE_EQ(&p->pending, p->n_threads - 1);
    if (p->n_threads > 2) /* the countdown moved: watch it down to 0 too */
        for (int left; (left = __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE)) > 0;) {
            SPIN_WHILE_EQ(&p->pending, left);
            if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) == left) break;
        }
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
