/* idle.c - clients that go silent: a connection that sends nothing, or stops in the middle of
 * its headers or its body, for --idle-timeout seconds gets a JSON 408 and is closed, so that silent sockets cannot hold the server's connection
 * threads. libmicrohttpd's own connection timeout closes without a word (and, before the
 * headers are in, without calling the handler at all), so a watchdog thread does it.
 *
 * Each connection has a record (libmicrohttpd's socket context, from idle_attach at accept to
 * idle_detach before its socket is closed) in one list under one mutex. The watchdog is the
 * server's (serve_state.idle): every call names it, it reaches the callbacks through their
 * cls pointer, and nothing here is process-global. The handler claims the
 * connection (idle_busy) whenever it runs, and gives it back (idle_reading) when it returns
 * waiting for more of the request; a request answered, the connection is back to reading
 * (silent then, between keep-alive requests, it is closed without an answer, as its client
 * may be sending the next request while a 408 is on its way). The
 * watchdog answers only connections that are reading and have been silent too long, under the
 * same mutex, so it never writes while the handler or libmicrohttpd does, nor to a socket that
 * was closed. After its 408 it shuts the socket down both ways: libmicrohttpd's thread sees the
 * end of the stream and closes the connection. */
#include "serve.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { W_READING, W_BUSY, W_DROPPED };

typedef struct idle_conn {
    MHD_socket fd;
    double since;                 /* last sign of life: accept, a piece of the request, an answer */
    int state, route;
    int between;                  /* a request answered, the next not begun: keep-alive idle */
    struct idle_conn *prev, *next;
} idle_conn;

struct serve_idle {
    double limit;
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    idle_conn *head;
};

static idle_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The 408, written whole or not at all (never blocks: the mutex is held), then the end. */
static void answer_408(const idle_conn *w, double limit) {
    char msg[128];
    snprintf(msg, sizeof msg, "no complete request after %g s of silence (--idle-timeout)", limit);
    size_t n = 0;
    char *all = serve_raw_error(408, "Request Timeout", "timeout", msg, &n);
    if (all) (void)!send(w->fd, all, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(all);
    shutdown(w->fd, SHUT_RDWR);
}

static void *watch(void *arg) {
    serve_idle *d = arg;
    pthread_mutex_lock(&d->mu);
    while (d->running) {
        double now = serve_now();
        for (idle_conn *w = d->head; w; w = w->next)
            if (w->state == W_READING && now - w->since >= d->limit) {
                w->state = W_DROPPED;
                if (w->between) {      /* no request to answer: close, as keep-alive ends */
                    shutdown(w->fd, SHUT_RDWR);
                    continue;
                }
                answer_408(w, d->limit);
                metrics_request(w->route, 408, now - w->since);
            }
        double step = d->limit / 4 < 0.25 ? d->limit / 4 : 0.25;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(step * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

serve_idle *idle_start(double limit) {
    serve_idle *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->limit = limit;
    d->running = 1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, watch, d)) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
        return NULL;
    }
    return d;
}

void idle_stop(serve_idle *d) {
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->running = 0;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    for (idle_conn *w = d->head, *n; w; w = n) n = w->next, free(w);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

void idle_attach(serve_idle *d, struct MHD_Connection *c, void **socket_context) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    idle_conn *w = d && ci ? calloc(1, sizeof *w) : NULL;
    *socket_context = w;
    if (!w) return;               /* out of memory: this connection is not watched */
    w->fd = ci->connect_fd;
    w->route = R_OTHER;
    w->since = serve_now();
    pthread_mutex_lock(&d->mu);
    w->next = d->head;
    if (d->head) d->head->prev = w;
    d->head = w;
    pthread_mutex_unlock(&d->mu);
}

void idle_detach(serve_idle *d, void *socket_context) {
    idle_conn *w = socket_context;
    if (!d || !w) return;
    pthread_mutex_lock(&d->mu);
    if (w->prev) w->prev->next = w->next;
    else d->head = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&d->mu);
    free(w);
}

/* Under the mutex: the connection's record moves from any state but W_DROPPED to `to`. */
static int move_to(serve_idle *d, struct MHD_Connection *c, int to, int route, int between) {
    idle_conn *w = conn_of(c);
    if (!d || !w) return 1;
    pthread_mutex_lock(&d->mu);
    int ok = w->state != W_DROPPED;
    if (ok) {
        w->state = to;
        w->route = route;
        w->between = between;
        w->since = serve_now();
    }
    pthread_mutex_unlock(&d->mu);
    return ok;
}

int idle_busy(serve_idle *d, struct MHD_Connection *c, int route) { return move_to(d, c, W_BUSY, route, 0); }
void idle_reading(serve_idle *d, struct MHD_Connection *c, int route) { move_to(d, c, W_READING, route, 0); }
int idle_done(serve_idle *d, struct MHD_Connection *c) { return !move_to(d, c, W_READING, R_OTHER, 1); }
