/* serve.h - `terse serve`: an HTTP front-end over include/terse.h (libmicrohttpd), with an
 * OpenAI-compatible compressing proxy (libcurl). Files: main.c (options, start, signals),
 * http.c (routing, limits, the JSON endpoints), pool.c (workers, one terse_ctx each, and the
 * bounded queue), metrics.c (Prometheus text), proxy.c (/v1/chat/completions). */
#ifndef TERSE_SERVE_H
#define TERSE_SERVE_H

#include "terse.h"
#include "base/base.h" /* terse_json_bytes: internal to the library, linked from libterse.a */
#include <stddef.h>
#include <stdint.h>

#define SERVE_MAX_LIST 64

typedef struct {
    const char *model_path, *host, *api_key_file, *count_vocab_path;
    int port, workers, queue, threads;
    int64_t max_body;             /* bytes of a request body */
    int64_t max_tokens;           /* prompt tokens (model vocabulary) of one request */
    double timeout;               /* seconds from arrival to answer (queue wait included) */
    double grace;                 /* seconds SIGTERM waits for requests in flight */
    double idle_timeout;          /* seconds of silence from a client mid-request before 408 */
    /* proxy */
    const char *upstream, *upstream_key_file;
    double upstream_timeout;      /* connect, and longest silence of the upstream */
    const char *roles;            /* comma-separated roles whose messages are compressed */
    int64_t min_tokens;           /* shorter messages are forwarded as they are */
    int keep_last;                /* the last message (the question) is never compressed */
    double rate;
    int64_t target;
    const char *method;           /* selective | llmlingua | longllmlingua */
    const char *force[SERVE_MAX_LIST], *protect[SERVE_MAX_LIST];
    int n_force, n_protect;
} serve_config;

/* The state every handler sees (one per server). */
typedef struct serve_pool serve_pool;
typedef struct serve_idle serve_idle;
typedef struct {
    const serve_config *cfg;
    terse_model *model;
    const terse_vocab *vocab;     /* the model's */
    terse_vocab *count_vocab;     /* --count-vocab, or NULL */
    serve_pool *pool;
    serve_idle *idle;             /* the silent-client watchdog (idle.c), while serve_run runs */
    char *api_key;                /* NULL: no authentication */
    char *upstream_key;
    volatile int draining;        /* SIGTERM received: new requests get 503 */
} serve_state;

double serve_now(void);

/* ---- pool.c: workers, each with its own terse_ctx, fed by one bounded queue ---- */
typedef struct serve_job serve_job;
struct serve_job {
    void (*run)(serve_job *j, terse_ctx *ctx);   /* in a worker thread */
    void (*destroy)(serve_job *j);               /* frees the job (and what it owns) */
    int status;                   /* HTTP status of the answer, set by run */
    char *body;                   /* JSON answer (malloc'ed), set by run */
    int64_t tokens_in, tokens_out;
    /* private to pool.c */
    int state, abandoned;
    serve_job *next;
};

int  serve_pool_new(const terse_model *m, int workers, int queue, int threads, serve_pool **out);
/* 0: queued; -1: the queue is full; -2: the pool is stopping. */
int  serve_pool_submit(serve_pool *p, serve_job *j);
/* 0: done; -1: the deadline passed first, -2: gone(arg) said the client left (asked every
 * 0.25 s; gone may be NULL). In both cases the job is abandoned: a queued one is skipped, a
 * running one finishes, and the pool destroys it. */
int  serve_pool_wait(serve_pool *p, serve_job *j, double deadline, int (*gone)(void *), void *arg);
/* For gone: 1 when the peer of the connection's socket has closed or reset it. */
int  serve_client_gone(void *mhd_connection);
void serve_pool_stats(serve_pool *p, int *queued, int *busy, int *capacity, double *mean_s);
/* Runs what is queued, then joins the workers. */
void serve_pool_free(serve_pool *p);

/* ---- metrics.c ---- */
enum { R_HEALTH, R_METRICS, R_COMPRESS, R_SCORE, R_TOKENIZE, R_CHAT, R_OTHER, R_COUNT };
extern const char *const serve_route_path[R_COUNT];
void  metrics_request(int route, int status, double seconds);
void  metrics_tokens(int64_t in, int64_t out);
void  metrics_upstream(int status);          /* 0: no answer from the upstream */
char *metrics_text(const serve_state *s);    /* malloc'ed Prometheus text */

struct MHD_Connection;

/* ---- http.c ---- */
/* {"error": {"message": ..., "type": ..., "code": status}} (malloc'ed); OpenAI's shape. */
char *serve_error_json(int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* That error as a whole raw HTTP/1.1 answer with "Connection: close" (malloc'ed, *len bytes),
 * for answers written on the socket rather than through libmicrohttpd. */
char *serve_raw_error(int status, const char *reason, const char *type, const char *msg, size_t *len);
int serve_run(serve_state *s);               /* listen until SIGTERM/SIGINT; exit status */

/* ---- idle.c: a client silent for --idle-timeout s before its request is complete gets a
 * 408 and is closed (between keep-alive requests: closed), by a watchdog thread ---- */
serve_idle *idle_start(double limit);        /* NULL: out of memory or no thread */
void idle_stop(serve_idle *d);
/* libmicrohttpd's connection notifications: a record per connection (its socket context). */
void idle_attach(serve_idle *d, struct MHD_Connection *c, void **socket_context);
void idle_detach(serve_idle *d, void *socket_context);
/* The handler holds the connection (0: the watchdog already answered: return MHD_NO) ... */
int  idle_busy(serve_idle *d, struct MHD_Connection *c, int route);
/* ... and lets go of it while it waits for more of the request. */
void idle_reading(serve_idle *d, struct MHD_Connection *c, int route);
/* A request finished (libmicrohttpd's completed): 1 when it ended in the watchdog's 408. */
int  idle_done(serve_idle *d, struct MHD_Connection *c);

/* ---- proxy.c ---- */
/* Answer POST /v1/chat/completions: compress, forward, stream back. Returns the MHD result. */
int proxy_chat(serve_state *s, struct MHD_Connection *conn, const char *body, size_t len,
               double t0);
int proxy_global_init(void);

#endif
