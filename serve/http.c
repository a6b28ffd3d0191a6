/* http.c - the HTTP side of `terse serve` (libmicrohttpd, a thread per connection): routing,
 * authentication, limits (body size, prompt tokens, time), the JSON endpoints
 * (/v1/compress, /v1/score, /v1/tokenize, /health, /metrics), error answers, and the graceful
 * shutdown on SIGTERM. Compression runs in the pool's workers; this file only parses, checks,
 * queues and answers. Every error is a JSON object {"error": {"message", "type", "code"}}. */
#define _GNU_SOURCE 1    /* POLLRDHUP */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double serve_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *serve_error_json(int status, const char *type, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:{s:o,s:s,s:i}}", "error", "message", terse_json_bytes(msg, strlen(msg)),
                          "type", type, "code", status);
    char *s = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Answers                                                                                   */

typedef struct {
    int route;
    double t0;
    char *body;
    size_t len, cap;
    int too_big, answered;
} conn_state;

static volatile int in_flight;      /* connections with a request being handled */
static pthread_mutex_t flight_mu = PTHREAD_MUTEX_INITIALIZER;

static enum MHD_Result reply(struct MHD_Connection *c, conn_state *cs, int status, const char *ctype,
                             char *body, const char *const *headers) {
    if (!body) { status = 500; body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}"); }
    size_t n = body ? strlen(body) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", ctype);
    for (int i = 0; headers && headers[i]; i += 2) MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (cs) {
        cs->answered = 1;
        metrics_request(cs->route, status, serve_now() - cs->t0);
    }
    return ok;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, conn_state *cs, int status, char *body) {
    if (body) {   /* one line per answer, newline-terminated */
        size_t n = strlen(body);
        char *b = realloc(body, n + 2);
        if (b) { b[n] = '\n'; b[n + 1] = 0; body = b; }
    }
    return reply(c, cs, status, "application/json", body, NULL);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, conn_state *cs, int status,
                                   const char *type, const char *msg) {
    return reply_json(c, cs, status, serve_error_json(status, type, "%s", msg));
}

char *serve_raw_error(int status, const char *reason, const char *type, const char *msg, size_t *len) {
    char *body = serve_error_json(status, type, "%s", msg);
    if (!body) return NULL;
    size_t bn = strlen(body);
    char head[256];
    int hn = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, reason, bn + 1);
    char *all = hn > 0 && (size_t)hn < sizeof head ? malloc((size_t)hn + bn + 2) : NULL;
    if (all) {
        memcpy(all, head, (size_t)hn);
        memcpy(all + hn, body, bn);
        all[(size_t)hn + bn] = '\n';   /* one line per answer, like reply_json */
        all[(size_t)hn + bn + 1] = 0;
        *len = (size_t)hn + bn + 1;
    }
    free(body);
    return all;
}

/* An error answer while the body is still arriving. libmicrohttpd 0.9.75 refuses
 * MHD_queue_response until the body is complete, so the answer is written on the connection's
 * socket here (this is the connection's own thread, and nothing else writes to it while the
 * body is read), followed by a FIN; what the client still sends within 200 ms is read and
 * dropped, so that closing does not reset the connection under the answer. The caller then
 * returns MHD_NO: libmicrohttpd closes the connection. */
static void reply_early(struct MHD_Connection *c, int status, const char *reason, const char *type,
                        const char *msg) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    size_t n = 0;
    char *all = ci ? serve_raw_error(status, reason, type, msg, &n) : NULL;
    if (!all) return;
    MHD_socket fd = ci->connect_fd;
    double end = serve_now() + 1.0;
    for (size_t off = 0; off < n && serve_now() < end;) {
        ssize_t w = send(fd, all + off, n - off, MSG_NOSIGNAL);
        if (w > 0) { off += (size_t)w; continue; }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, 50);
    }
    free(all);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    for (end = serve_now() + 0.2; serve_now() < end;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) continue;
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    }
}

/* 503 with Retry-After: the queue is full (or the server is stopping). */
static enum MHD_Result reply_busy(serve_state *s, struct MHD_Connection *c, conn_state *cs,
                                  const char *msg) {
    int queued = 0, cap = 0;
    double mean = 1;
    serve_pool_stats(s->pool, &queued, NULL, &cap, &mean);
    double wait = ceil(mean * (double)(queued + 1) / (double)(s->cfg->workers > 0 ? s->cfg->workers : 1));
    if (wait < 1) wait = 1;
    if (wait > 3600) wait = 3600;
    char ra[32];
    snprintf(ra, sizeof ra, "%.0f", wait);
    const char *h[] = {"Retry-After", ra, NULL};
    char *body = serve_error_json(503, "overloaded", "%s", msg);
    if (body) { size_t n = strlen(body); char *b = realloc(body, n + 2); if (b) { b[n] = '\n'; b[n + 1] = 0; body = b; } }
    return reply(c, cs, 503, "application/json", body, h);
}

/* HTTP status for a library status. */
static int http_status(int st) {
    switch (st) {
    case TERSE_ERR_INVALID: return 400;
    case TERSE_ERR_RANGE: return 413;
    case TERSE_ERR_UNSUPPORTED: return 422;
    case TERSE_ERR_NOMEM: return 503;
    default: return 500;
    }
}

static const char *error_type(int status) {
    return status == 413 ? "too_large" : status < 500 ? "invalid_request_error" : "server_error";
}

/* ---------------------------------------------------------------------------------------- */
/* Jobs                                                                                      */

typedef struct {
    serve_job job;
    serve_state *s;
    terse_request *req;     /* compress */
    json_t *root;           /* score: owns text */
    const char *text;
    size_t text_len;
    int bos;
} api_job;

static void api_destroy(serve_job *j) {
    api_job *a = (api_job *)j;
    terse_request_free(a->req);
    json_decref(a->root);
    free(j->body);
    free(a);
}

static void set_error(serve_job *j, int st) {
    j->status = http_status(st);
    j->body = serve_error_json(j->status, error_type(j->status), "%s", terse_last_error());
}

static void run_compress(serve_job *j, terse_ctx *ctx) {
    api_job *a = (api_job *)j;
    terse_compress_params p = terse_request_params(a->req);
    p.count_vocab = a->s->count_vocab;
    terse_result *r = NULL;
    int st = terse_compress(ctx, terse_request_prompt(a->req), p, &r);
    if (!st) st = terse_result_json(r, p.return_tokens, &j->body);
    if (st) { set_error(j, st); terse_result_free(r); return; }
    terse_compress_stats cs;
    terse_result_get_stats(r, &cs);
    j->tokens_in = cs.origin_tokens;
    j->tokens_out = cs.compressed_tokens;
    j->status = 200;
    terse_result_free(r);
}

/* The fields of `terse score --json`, plus the model's path. */
static void run_score(serve_job *j, terse_ctx *ctx) {
    api_job *a = (api_job *)j;
    const terse_vocab *v = a->s->vocab;
    int64_t n = terse_tokenize(v, a->text, a->text_len, a->bos, NULL, NULL, 0);
    if (n < 0) { set_error(j, (int)n); return; }
    if (n == 0) {
        j->status = 400;
        j->body = serve_error_json(400, "invalid_request_error", "\"text\" gives no tokens to score");
        return;
    }
    if (n > terse_ctx_n_ctx(ctx) || n > a->s->cfg->max_tokens) {
        int64_t lim = terse_ctx_n_ctx(ctx) < a->s->cfg->max_tokens ? terse_ctx_n_ctx(ctx) : a->s->cfg->max_tokens;
        j->status = 413;
        j->body = serve_error_json(413, "too_large", "\"text\" has %lld tokens; at most %lld can be scored",
                                   (long long)n, (long long)lim);
        return;
    }
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    terse_span *sp = malloc((size_t)n * sizeof *sp);
    float *s = malloc((size_t)n * sizeof *s);
    json_t *o = NULL, *arr = NULL;
    int st = !ids || !sp || !s ? TERSE_ERR_NOMEM : 0;
    if (!st) { int64_t m = terse_tokenize(v, a->text, a->text_len, a->bos, ids, sp, n); if (m < 0) st = (int)m; }
    if (!st) st = terse_score(ctx, ids, (int32_t)n, s);
    if (st) { set_error(j, st); goto done; }
    double total = 0;
    for (int64_t i = 1; i < n; i++) total += s[i];
    arr = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:i,s:I,s:I,s:o,s:f}", "i", (json_int_t)i, "id", ids[i],
                                             "begin", (json_int_t)sp[i].begin, "end", (json_int_t)sp[i].end,
                                             "text", terse_json_bytes(a->text + sp[i].begin, (size_t)(sp[i].end - sp[i].begin)),
                                             "surprisal", (double)s[i]));
    o = json_pack("{s:s,s:I,s:f,s:f,s:O}", "model", a->s->cfg->model_path, "n_tokens", (json_int_t)n,
                  "total_nats", total, "mean_nats", n > 1 ? total / (double)(n - 1) : 0.0, "tokens", arr);
    j->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    j->status = j->body ? 200 : 500;
    if (!j->body) j->body = serve_error_json(500, "server_error", "score: out of memory");
    j->tokens_in = n;
done:
    json_decref(o);
    json_decref(arr);
    free(ids);
    free(sp);
    free(s);
}

int serve_client_gone(void *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info((struct MHD_Connection *)conn,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Submit, wait until the deadline, answer. Takes ownership of a. */
static enum MHD_Result run_job(serve_state *s, struct MHD_Connection *c, conn_state *cs, api_job *a) {
    int q = serve_pool_submit(s->pool, &a->job);
    if (q) {
        api_destroy(&a->job);
        return reply_busy(s, c, cs, q == -1 ? "the request queue is full; retry later"
                                            : "the server is shutting down");
    }
    int w = serve_pool_wait(s->pool, &a->job, cs->t0 + s->cfg->timeout, serve_client_gone, c);
    if (w == -2) {                                  /* nobody to answer */
        cs->answered = 1;
        metrics_request(cs->route, 499, serve_now() - cs->t0);
        return MHD_NO;
    }
    if (w) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request took longer than the server's limit of %g s", s->cfg->timeout);
        return reply_error(c, cs, 504, "timeout", msg);   /* the pool destroys the job */
    }
    metrics_tokens(a->job.tokens_in, a->job.tokens_out);
    int status = a->job.status;
    char *body = a->job.body;
    a->job.body = NULL;
    api_destroy(&a->job);
    return reply_json(c, cs, status, body);
}

/* ---------------------------------------------------------------------------------------- */
/* Endpoints                                                                                 */

static enum MHD_Result do_compress(serve_state *s, struct MHD_Connection *c, conn_state *cs) {
    terse_request *req;
    if (terse_request_parse(cs->body, cs->len, TERSE_REQUEST_STRICT, &req))
        return reply_error(c, cs, 400, "invalid_request_error", terse_last_error());
    const terse_prompt *pr = terse_request_prompt(req);
    int64_t total = 0;
    const char *parts[2] = {pr->instruction, pr->question};
    for (int32_t i = 0; i < pr->n_contexts + 2; i++) {
        const char *t = i < pr->n_contexts ? pr->contexts[i] : parts[i - pr->n_contexts];
        if (!t) continue;
        int64_t n = terse_token_count(s->vocab, t, strlen(t));
        if (n < 0) { terse_request_free(req); return reply_error(c, cs, 400, "invalid_request_error", terse_last_error()); }
        total += n;
    }
    if (total > s->cfg->max_tokens) {
        terse_request_free(req);
        char msg[160];
        snprintf(msg, sizeof msg, "the prompt has %lld tokens; this server compresses at most %lld "
                 "(--max-tokens)", (long long)total, (long long)s->cfg->max_tokens);
        return reply_error(c, cs, 413, "too_large", msg);
    }
    api_job *a = calloc(1, sizeof *a);
    if (!a) { terse_request_free(req); return reply_error(c, cs, 503, "server_error", "out of memory"); }
    a->s = s;
    a->req = req;
    a->job.run = run_compress;
    a->job.destroy = api_destroy;
    return run_job(s, c, cs, a);
}

/* {"text": string, "bos"|"special": bool}: the two small endpoints' body. */
static int parse_text_body(conn_state *cs, const char *flag, int def, json_t **root,
                           const char **text, size_t *len, int *flag_value, char *err, size_t errcap) {
    json_error_t je;
    *root = json_loadb(cs->body, cs->len, JSON_REJECT_DUPLICATES, &je);
    if (!*root) { snprintf(err, errcap, "request: invalid JSON at line %d, column %d: %s", je.line, je.column, je.text); return -1; }
    if (!json_is_object(*root)) { snprintf(err, errcap, "request: the body is not a JSON object"); return -1; }
    *text = NULL;
    *flag_value = def;
    const char *k;
    json_t *v;
    json_object_foreach(*root, k, v) {
        if (!strcmp(k, "text")) {
            if (!json_is_string(v)) { snprintf(err, errcap, "request: \"text\" is not a string"); return -1; }
            *text = json_string_value(v);
            *len = json_string_length(v);
        } else if (!strcmp(k, flag)) {
            if (!json_is_boolean(v)) { snprintf(err, errcap, "request: \"%s\" is not true or false", flag); return -1; }
            *flag_value = json_is_true(v);
        } else {
            snprintf(err, errcap, "request: unknown field \"%.64s\" (expected \"text\" and \"%s\")", k, flag);
            return -1;
        }
    }
    if (!*text) { snprintf(err, errcap, "request: no \"text\""); return -1; }
    return 0;
}

static enum MHD_Result do_score(serve_state *s, struct MHD_Connection *c, conn_state *cs) {
    api_job *a = calloc(1, sizeof *a);
    if (!a) return reply_error(c, cs, 503, "server_error", "out of memory");
    char err[256];
    if (parse_text_body(cs, "bos", 1, &a->root, &a->text, &a->text_len, &a->bos, err, sizeof err)) {
        api_destroy(&a->job);
        return reply_error(c, cs, 400, "invalid_request_error", err);
    }
    a->s = s;
    a->job.run = run_score;
    a->job.destroy = api_destroy;
    return run_job(s, c, cs, a);
}

/* Tokenizing is cheap and needs no context: answered in the connection's thread. */
static enum MHD_Result do_tokenize(serve_state *s, struct MHD_Connection *c, conn_state *cs) {
    json_t *root = NULL;
    const char *text;
    size_t len;
    int special;
    char err[256];
    if (parse_text_body(cs, "special", 0, &root, &text, &len, &special, err, sizeof err)) {
        json_decref(root);
        return reply_error(c, cs, 400, "invalid_request_error", err);
    }
    int64_t n = terse_tokenize(s->vocab, text, len, special, NULL, NULL, 0);
    int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    terse_span *sp = n > 0 ? malloc((size_t)n * sizeof *sp) : NULL;
    if (n < 0 || (n > 0 && (!ids || !sp || terse_tokenize(s->vocab, text, len, special, ids, sp, n) != n))) {
        free(ids); free(sp); json_decref(root);
        return reply_error(c, cs, 500, "server_error", terse_last_error());
    }
    json_t *arr = json_array();
    for (int64_t i = 0; i < n; i++) {
        const char *piece = terse_vocab_piece(s->vocab, ids[i]);
        json_array_append_new(arr, json_pack("{s:i,s:I,s:I,s:o,s:o}", "id", ids[i], "begin", (json_int_t)sp[i].begin,
                                             "end", (json_int_t)sp[i].end, "piece", terse_json_bytes(piece ? piece : "", piece ? strlen(piece) : 0),
                                             "text", terse_json_bytes(text + sp[i].begin, (size_t)(sp[i].end - sp[i].begin))));
    }
    json_t *o = json_pack("{s:I,s:o}", "n_tokens", (json_int_t)n, "tokens", arr);
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    json_decref(root);
    free(ids);
    free(sp);
    return reply_json(c, cs, 200, body);
}

static enum MHD_Result do_health(serve_state *s, struct MHD_Connection *c, conn_state *cs) {
    int queued = 0, busy = 0, cap = 0;
    serve_pool_stats(s->pool, &queued, &busy, &cap, NULL);
    terse_model_info mi;
    terse_model_get_info(s->model, &mi);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:b}", "status", s->draining ? "draining" : "ok",
                          "version", TERSE_VERSION, "model", s->cfg->model_path, "arch", mi.arch,
                          "workers", s->cfg->workers, "busy", busy, "queued", queued, "queue_capacity", cap,
                          "proxy", s->cfg->upstream != NULL);
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return reply_json(c, cs, s->draining ? 503 : 200, body);
}

/* ---------------------------------------------------------------------------------------- */
/* The request handler                                                                       */

static int route_of(const char *url) {
    for (int r = 0; r < R_OTHER; r++)
        if (!strcmp(url, serve_route_path[r])) return r;
    return R_OTHER;
}

/* Constant-time comparison of the bearer token. */
static int auth_ok(serve_state *s, struct MHD_Connection *c) {
    if (!s->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)s->api_key[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    serve_state *s = cls;
    conn_state *cs = *con_cls;
    if (!idle_busy(s->idle, c, cs ? cs->route : route_of(url))) return MHD_NO;   /* answered 408: silent */
    if (!cs) {                                     /* first call: headers only */
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->t0 = serve_now();
        cs->route = route_of(url);
        pthread_mutex_lock(&flight_mu);
        in_flight++;
        pthread_mutex_unlock(&flight_mu);
        int get = cs->route == R_HEALTH || cs->route == R_METRICS;
        char msg[300];
        if (cs->route == R_OTHER || (cs->route == R_CHAT && !s->cfg->upstream)) {
            cs->route = R_OTHER;
            snprintf(msg, sizeof msg, "no such endpoint: %.40s %.200s (POST /v1/compress, /v1/score, "
                     "/v1/tokenize%s; GET /health, /metrics)", method, url,
                     s->cfg->upstream ? ", /v1/chat/completions" : "");
            return reply_error(c, cs, 404, "not_found", msg);
        }
        if (strcmp(method, get ? "GET" : "POST") && !(get && !strcmp(method, "HEAD"))) {
            snprintf(msg, sizeof msg, "%.40s is not allowed on %s; use %s", method, url, get ? "GET" : "POST");
            const char *h[] = {"Allow", get ? "GET, HEAD" : "POST", NULL};
            return reply(c, cs, 405, "application/json", serve_error_json(405, "method_not_allowed", "%s", msg), h);
        }
        if (s->draining && cs->route != R_HEALTH) return reply_busy(s, c, cs, "the server is shutting down");
        if (cs->route != R_HEALTH && !auth_ok(s, c)) {
            const char *h[] = {"WWW-Authenticate", "Bearer", NULL};
            return reply(c, cs, 401, "application/json",
                         serve_error_json(401, "unauthorized", "missing or wrong bearer token "
                                          "(Authorization: Bearer <key>)"), h);
        }
        if (!get) {
            const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
            if (ct && !strncasecmp(ct, "multipart/", 10)) {   /* any other type is read as JSON */
                snprintf(msg, sizeof msg, "Content-Type is '%.100s'; send a JSON body (application/json)", ct);
                return reply_error(c, cs, 415, "unsupported_media_type", msg);
            }
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl && strtoll(cl, NULL, 10) > s->cfg->max_body) {
                snprintf(msg, sizeof msg, "the body has %.30s bytes; this server takes at most %lld (--max-body)",
                         cl, (long long)s->cfg->max_body);
                return reply_error(c, cs, 413, "too_large", msg);
            }
        }
        idle_reading(s->idle, c, cs->route);       /* the body (or the end of the request) next */
        return MHD_YES;
    }
    if (cs->answered) { *upload_size = 0; return MHD_YES; }
    if (*upload_size) {                            /* a piece of the body */
        if (serve_now() - cs->t0 > s->cfg->timeout) {  /* too slow: 408, then closed */
            *upload_size = 0;
            cs->answered = 1;
            char msg[160];
            snprintf(msg, sizeof msg, "the body arrived slower than the server's limit of %g s "
                     "(--timeout)", s->cfg->timeout);
            reply_early(c, 408, "Request Timeout", "timeout", msg);
            metrics_request(cs->route, 408, serve_now() - cs->t0);
            return MHD_NO;
        }
        size_t n = *upload_size;
        *upload_size = 0;
        idle_reading(s->idle, c, cs->route);
        if (cs->too_big || cs->len + n > (size_t)s->cfg->max_body) { cs->too_big = 1; free(cs->body); cs->body = NULL; return MHD_YES; }
        if (cs->len + n + 1 > cs->cap) {
            size_t cap = (cs->len + n + 1) * 2;
            if (cap > (size_t)s->cfg->max_body + 1) cap = (size_t)s->cfg->max_body + 1;
            char *b = realloc(cs->body, cap);
            if (!b) return MHD_NO;
            cs->body = b;
            cs->cap = cap;
        }
        memcpy(cs->body + cs->len, upload, n);
        cs->len += n;
        cs->body[cs->len] = 0;
        return MHD_YES;
    }
    /* the whole request is here */
    if (cs->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is longer than this server's limit of %lld bytes (--max-body)",
                 (long long)s->cfg->max_body);
        return reply_error(c, cs, 413, "too_large", msg);
    }
    switch (cs->route) {
    case R_HEALTH: return do_health(s, c, cs);
    case R_METRICS: return reply(c, cs, 200, "text/plain; version=0.0.4", metrics_text(s), NULL);
    default: break;
    }
    if (!cs->body || cs->len == 0) return reply_error(c, cs, 400, "invalid_request_error", "request: the body is empty; send a JSON object");
    switch (cs->route) {
    case R_COMPRESS: return do_compress(s, c, cs);
    case R_SCORE: return do_score(s, c, cs);
    case R_TOKENIZE: return do_tokenize(s, c, cs);
    case R_CHAT: {
        enum MHD_Result r = (enum MHD_Result)proxy_chat(s, c, cs->body, cs->len, cs->t0);
        cs->answered = 1;
        return r;
    }
    default: return reply_error(c, cs, 404, "not_found", "no such endpoint");
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    serve_state *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    int dropped = idle_done(s->idle, c);           /* the watchdog answered 408 and counted it */
    if (!cs->answered && !dropped) metrics_request(cs->route, 499, serve_now() - cs->t0);  /* client gone */
    free(cs->body);
    free(cs);
    *con_cls = NULL;
    pthread_mutex_lock(&flight_mu);
    in_flight--;
    pthread_mutex_unlock(&flight_mu);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
    serve_state *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) idle_attach(s->idle, c, socket_context);
    else idle_detach(s->idle, *socket_context);
}

/* ---------------------------------------------------------------------------------------- */
/* Run until SIGTERM / SIGINT                                                                */

int serve_run(serve_state *s) {
    const serve_config *cfg = s->cfg;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "terse serve: --host '%s' is not an IPv4 address\n", cfg->host);
        return 2;
    }
    /* signals: blocked in every thread, taken by sigwait below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->idle = idle_start(cfg->idle_timeout);
    if (!s->idle) {
        fprintf(stderr, "terse serve: cannot start the idle-connection watchdog\n");
        return 1;
    }
    /* libmicrohttpd's own timeout (silent close) only as a backstop behind the watchdog's 408 */
    double mhd_timeout = fmax(fmax(30, cfg->timeout), cfg->idle_timeout + 5);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC,
        (uint16_t)cfg->port, NULL, NULL, handler, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)fmin(mhd_timeout, 1e6),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->queue + cfg->workers + 256),
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "terse serve: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, strerror(errno));
        idle_stop(s->idle);
        s->idle = NULL;
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "terse serve: listening on http://%s:%u (%d worker%s, queue %d%s%s)\n", cfg->host,
            info ? info->port : (unsigned)cfg->port, cfg->workers, cfg->workers == 1 ? "" : "s", cfg->queue,
            cfg->upstream ? ", proxy to " : "", cfg->upstream ? cfg->upstream : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "terse serve: %s: finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    s->draining = 1;
    MHD_socket ls = MHD_quiesce_daemon(d);        /* no new connections */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    double end = serve_now() + cfg->grace;
    for (;;) {
        pthread_mutex_lock(&flight_mu);
        int n = in_flight;
        pthread_mutex_unlock(&flight_mu);
        if (n <= 0 || serve_now() > end) {
            if (n > 0) fprintf(stderr, "terse serve: %d request(s) still running after %g s; stopping\n", n, cfg->grace);
            break;
        }
        usleep(20000);
    }
    MHD_stop_daemon(d);
    idle_stop(s->idle);
    s->idle = NULL;
    fprintf(stderr, "terse serve: stopped\n");
    return 0;
}
