/* pool.c - the workers of `terse serve`: one thread and one terse_ctx (KV cache + scratch) per
 * worker, over the one shared model, fed by a bounded FIFO queue. A request that finds the
 * queue full is refused at once (the caller answers 503). A caller that stops waiting (deadline
 * passed, client gone) takes a queued job out of the queue at once, or abandons a running
 * one, which the worker then destroys instead of handing back. */
#include "serve.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { QUEUED, RUNNING, DONE };

struct serve_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;      /* a job was queued, or stopping */
    pthread_cond_t done;      /* some job finished */
    serve_job *head, *tail;
    int queued, busy, capacity, n_workers, n_ctxs, stopping;
    double total_s;           /* seconds of finished jobs, for the Retry-After estimate */
    int64_t n_done;
    pthread_t *threads;
    terse_ctx **ctxs;
};

typedef struct {
    serve_pool *p;
    int i;
} worker_arg;

static void *worker(void *arg) {
    worker_arg *w = arg;
    serve_pool *p = w->p;
    terse_ctx *ctx = p->ctxs[w->i];
    free(w);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) pthread_cond_wait(&p->work, &p->mu);
        if (!p->head) break;                      /* stopping and nothing left */
        serve_job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->queued--;
        if (j->abandoned) { pthread_mutex_unlock(&p->mu); j->destroy(j); pthread_mutex_lock(&p->mu); continue; }
        j->state = RUNNING;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        double t0 = serve_now();
        j->run(j, ctx);
        double dt = serve_now() - t0;
        pthread_mutex_lock(&p->mu);
        p->busy--;
        p->total_s += dt;
        p->n_done++;
        j->state = DONE;
        if (j->abandoned) {
            pthread_mutex_unlock(&p->mu);
            j->destroy(j);
            pthread_mutex_lock(&p->mu);
        } else {
            pthread_cond_broadcast(&p->done);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int serve_pool_new(const terse_model *m, int workers, int queue, int threads, serve_pool **out) {
    *out = NULL;
    serve_pool *p = calloc(1, sizeof *p);
    if (!p) return TERSE_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->capacity = queue;
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    p->ctxs = calloc((size_t)workers, sizeof *p->ctxs);
    if (!p->threads || !p->ctxs) { serve_pool_free(p); return TERSE_ERR_NOMEM; }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = threads;
    for (int i = 0; i < workers; i++) {
        int st = terse_ctx_new(m, cp, &p->ctxs[i]);
        if (st) { serve_pool_free(p); return st; }
        p->n_ctxs++;
    }
    for (int i = 0; i < workers; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (!w) { serve_pool_free(p); return TERSE_ERR_NOMEM; }
        w->p = p;
        w->i = i;
        if (pthread_create(&p->threads[i], NULL, worker, w)) { free(w); serve_pool_free(p); return TERSE_ERR_NOMEM; }
        p->n_workers++;
    }
    *out = p;
    return TERSE_OK;
}

int serve_pool_submit(serve_pool *p, serve_job *j) {
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (p->stopping) rc = -2;
    else if (p->queued >= p->capacity) rc = -1;
    else {
        j->state = QUEUED;
        j->abandoned = 0;
        j->next = NULL;
        if (p->tail) p->tail->next = j; else p->head = j;
        p->tail = j;
        p->queued++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int serve_pool_wait(serve_pool *p, serve_job *j, double deadline, int (*gone)(void *), void *arg) {
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (j->state != DONE) {
        /* wake at the deadline, and every 0.25 s to ask whether the client is still there */
        double now = serve_now(), until = deadline;
        if (gone && until > now + 0.25) until = now + 0.25;
        double left = until - now;
        if (left < 0) left = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)left;
        ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        if (pthread_cond_timedwait(&p->done, &p->mu, &ts) != ETIMEDOUT || j->state == DONE) continue;
        int stop = serve_now() >= deadline ? -1 : 0;
        if (!stop && gone) {
            pthread_mutex_unlock(&p->mu);
            stop = gone(arg) ? -2 : 0;
            pthread_mutex_lock(&p->mu);
        }
        if (stop && j->state == QUEUED) {   /* still waiting: out of the queue at once */
            serve_job **pp = &p->head, *prev = NULL;
            while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
            if (*pp) {
                *pp = j->next;
                if (p->tail == j) p->tail = prev;
                p->queued--;
            }
            pthread_mutex_unlock(&p->mu);
            j->destroy(j);
            return stop;
        }
        if (stop && j->state != DONE) {
            j->abandoned = 1;   /* running: the worker destroys it when it ends */
            rc = stop;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void serve_pool_stats(serve_pool *p, int *queued, int *busy, int *capacity, double *mean_s) {
    pthread_mutex_lock(&p->mu);
    if (queued) *queued = p->queued;
    if (busy) *busy = p->busy;
    if (capacity) *capacity = p->capacity;
    if (mean_s) *mean_s = p->n_done ? p->total_s / (double)p->n_done : 1.0;
    pthread_mutex_unlock(&p->mu);
}

void serve_pool_free(serve_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; i < p->n_ctxs; i++) terse_ctx_free(p->ctxs[i]);
    free(p->threads);
    free(p->ctxs);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}
