/* proxy.c - POST /v1/chat/completions of `terse serve --upstream URL`: an OpenAI-compatible
 * endpoint that compresses the messages the policy names (roles, minimum length, rate or
 * target, protected strings and patterns, <llmlingua> tags honoured), forwards the request with
 * libcurl and passes the answer back as it arrives (server-sent events included), with the
 * tokens saved in X-Terse-* headers. No answer from the upstream becomes 502 (unreachable) or
 * 504 (timed out) with an OpenAI-style error object; the upstream's own errors pass through. */
#include "serve.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int proxy_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

static enum MHD_Result answer(struct MHD_Connection *c, int status, char *body, double t0,
                              const char *const *headers) {
    if (!body) { status = 500; body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}"); }
    struct MHD_Response *r = MHD_create_response_from_buffer(body ? strlen(body) : 0, body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "application/json");
    for (int i = 0; headers && headers[i]; i += 2) MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_request(R_CHAT, status, serve_now() - t0);
    return ok;
}

/* ---------------------------------------------------------------------------------------- */
/* Compressing one message in a worker                                                       */

typedef struct {
    serve_job job;
    serve_state *s;
    const char *text;
    char *out;              /* compressed text */
} msg_job;

static void msg_destroy(serve_job *j) {
    msg_job *m = (msg_job *)j;
    free(m->out);
    free(j->body);
    free(m);
}

static void msg_run(serve_job *j, terse_ctx *ctx) {
    msg_job *m = (msg_job *)j;
    const serve_config *cfg = m->s->cfg;
    terse_compress_params p = terse_compress_default_params();
    if (!strcmp(cfg->method, "llmlingua")) p.method = TERSE_METHOD_LLMLINGUA;
    else if (!strcmp(cfg->method, "longllmlingua")) p.method = TERSE_METHOD_LONGLLMLINGUA;
    p.rate = cfg->rate;
    p.target = cfg->target;
    p.force_tokens = cfg->force;
    p.n_force_tokens = cfg->n_force;
    p.protect_patterns = cfg->protect;
    p.n_protect_patterns = cfg->n_protect;
    p.count_vocab = m->s->count_vocab;
    terse_prompt pr = {.contexts = &m->text, .n_contexts = 1};
    terse_result *r = NULL;
    int st = terse_compress(ctx, &pr, p, &r);
    if (st) {
        j->status = st == TERSE_ERR_INVALID ? 400 : 500;
        j->body = serve_error_json(j->status, j->status == 400 ? "invalid_request_error" : "server_error",
                                   "compressing a message: %s", terse_last_error());
        return;
    }
    size_t n;
    const char *t = terse_result_text(r, &n);
    m->out = strndup(t, n);
    terse_compress_stats cs;
    terse_result_get_stats(r, &cs);
    j->tokens_in = cs.origin_tokens;
    j->tokens_out = cs.compressed_tokens;
    j->status = m->out ? 200 : 500;
    terse_result_free(r);
}

static int role_listed(const char *roles, const char *role) {
    size_t n = strlen(role);
    for (const char *p = roles; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, role, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The upstream call: a libcurl transfer in its own thread, read by the MHD response          */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;
    size_t len, off, cap;
    int status, head, done, cancel;
    char ctype[160];
    CURLcode res;
    char err[CURL_ERROR_SIZE];
    CURL *h;
    struct curl_slist *hdrs;
    char *req;
    pthread_t thread;
} call;

static size_t on_header(char *b, size_t size, size_t n, void *u) {
    call *k = u;
    size_t len = size * n;
    pthread_mutex_lock(&k->mu);
    if (len >= 5 && !strncmp(b, "HTTP/", 5)) {
        const char *sp = memchr(b, ' ', len);
        k->status = sp ? atoi(sp + 1) : 0;
        k->ctype[0] = 0;
    } else if (len > 13 && !strncasecmp(b, "Content-Type:", 13)) {
        size_t i = 13;
        while (i < len && b[i] == ' ') i++;
        size_t e = len;
        while (e > i && (b[e - 1] == '\r' || b[e - 1] == '\n')) e--;
        snprintf(k->ctype, sizeof k->ctype, "%.*s", (int)(e - i), b + i);
    } else if ((len == 2 && b[0] == '\r') || (len == 1 && b[0] == '\n')) {
        if (k->status >= 200) { k->head = 1; pthread_cond_broadcast(&k->cv); }
    }
    pthread_mutex_unlock(&k->mu);
    return len;
}

static size_t on_body(char *b, size_t size, size_t n, void *u) {
    call *k = u;
    size_t len = size * n;
    pthread_mutex_lock(&k->mu);
    while (!k->cancel && k->len - k->off > (4u << 20)) pthread_cond_wait(&k->cv, &k->mu);  /* back-pressure */
    if (k->cancel) { pthread_mutex_unlock(&k->mu); return 0; }
    if (k->off && k->off == k->len) k->off = k->len = 0;
    if (k->len + len > k->cap) {
        size_t cap = (k->len + len) * 2;
        char *nb = realloc(k->buf, cap);
        if (!nb) { pthread_mutex_unlock(&k->mu); return 0; }
        k->buf = nb;
        k->cap = cap;
    }
    memcpy(k->buf + k->len, b, len);
    k->len += len;
    k->head = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return len;
}

/* Called by libcurl about once a second and on every transfer: aborts a cancelled call. */
static int on_progress(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    call *k = u;
    pthread_mutex_lock(&k->mu);
    int cancel = k->cancel;
    pthread_mutex_unlock(&k->mu);
    return cancel;
}

static void *transfer(void *u) {
    call *k = u;
    CURLcode res = curl_easy_perform(k->h);
    pthread_mutex_lock(&k->mu);
    k->res = res;
    k->done = 1;
    k->head = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void call_free(call *k) {
    pthread_mutex_lock(&k->mu);
    k->cancel = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    curl_easy_cleanup(k->h);
    curl_slist_free_all(k->hdrs);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->buf);
    free(k->req);
    free(k);
}

static ssize_t read_upstream(void *u, uint64_t pos, char *out, size_t max) {
    call *k = u;
    pthread_mutex_lock(&k->mu);
    while (k->off == k->len && !k->done) pthread_cond_wait(&k->cv, &k->mu);
    ssize_t n;
    if (k->off < k->len) {
        size_t m = k->len - k->off < max ? k->len - k->off : max;
        memcpy(out, k->buf + k->off, m);
        k->off += m;
        pthread_cond_broadcast(&k->cv);
        n = (ssize_t)m;
    } else {
        n = k->res == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}

static void free_upstream(void *u) { call_free(u); }

/* ---------------------------------------------------------------------------------------- */
/* The endpoint                                                                              */

int proxy_chat(serve_state *s, struct MHD_Connection *c, const char *body, size_t len, double t0) {
    const serve_config *cfg = s->cfg;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return answer(c, 400, serve_error_json(400, "invalid_request_error", "invalid JSON at line %d, "
                                               "column %d: %s", je.line, je.column, je.text), t0, NULL);
    json_t *msgs = json_is_object(root) ? json_object_get(root, "messages") : NULL;
    if (!json_is_array(msgs)) {
        json_decref(root);
        return answer(c, 400, serve_error_json(400, "invalid_request_error", "the body needs \"messages\": "
                                               "an array of {\"role\", \"content\"} objects"), t0, NULL);
    }
    /* the strings to compress: message contents and text parts */
    size_t nm = json_array_size(msgs);
    json_t **slot = calloc(2 * nm + 1, sizeof *slot);   /* (holder, value) pairs */
    size_t ns = 0;
    for (size_t i = 0; slot && i < nm; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_object(m) || !json_is_string(role)) {
            free(slot);
            json_decref(root);
            return answer(c, 400, serve_error_json(400, "invalid_request_error", "messages[%zu] needs a "
                                                   "string \"role\"", i), t0, NULL);
        }
        if (!role_listed(cfg->roles, json_string_value(role)) || (cfg->keep_last && i + 1 == nm)) continue;
        if (json_is_string(content)) {
            slot[2 * ns] = m;
            slot[2 * ns++ + 1] = content;
        }
        /* content as parts: compress the first text part of each message */
        for (size_t p = 0; json_is_array(content) && p < json_array_size(content); p++) {
            json_t *part = json_array_get(content, p), *t = json_object_get(part, "text");
            if (json_is_string(t)) { slot[2 * ns] = part; slot[2 * ns++ + 1] = t; break; }
        }
    }
    int64_t before = 0, after = 0;
    int compressed = 0;
    for (size_t i = 0; slot && i < ns; i++) {
        const char *t = json_string_value(slot[2 * i + 1]);
        int64_t n = terse_token_count(s->vocab, t, strlen(t));
        if (n < cfg->min_tokens) continue;
        if (n > cfg->max_tokens) {
            free(slot);
            json_decref(root);
            return answer(c, 413, serve_error_json(413, "too_large", "a message has %lld tokens; this server "
                                                   "compresses at most %lld (--max-tokens)", (long long)n,
                                                   (long long)cfg->max_tokens), t0, NULL);
        }
        msg_job *mj = calloc(1, sizeof *mj);
        if (!mj) break;
        mj->s = s;
        mj->text = t;
        mj->job.run = msg_run;
        mj->job.destroy = msg_destroy;
        int q = serve_pool_submit(s->pool, &mj->job);
        if (q) {
            msg_destroy(&mj->job);
            free(slot);
            json_decref(root);
            const char *h[] = {"Retry-After", "1", NULL};
            return answer(c, 503, serve_error_json(503, "overloaded", "%s", q == -1 ? "the request queue is "
                                                   "full; retry later" : "the server is shutting down"), t0, h);
        }
        int w = serve_pool_wait(s->pool, &mj->job, t0 + cfg->timeout, serve_client_gone, c);
        if (w) {
            free(slot);
            json_decref(root);
            if (w == -2) { metrics_request(R_CHAT, 499, serve_now() - t0); return MHD_NO; }
            return answer(c, 504, serve_error_json(504, "timeout", "compressing the messages took longer "
                                                   "than the server's limit of %g s", cfg->timeout), t0, NULL);
        }
        if (mj->job.status != 200) {
            int st = mj->job.status;
            char *b = mj->job.body;
            mj->job.body = NULL;
            msg_destroy(&mj->job);
            free(slot);
            json_decref(root);
            return answer(c, st, b, t0, NULL);
        }
        /* the holder keeps the key name: "content" for messages, "text" for parts */
        json_t *holder = slot[2 * i];
        const char *key = json_object_get(holder, "content") == slot[2 * i + 1] ? "content" : "text";
        json_object_set_new(holder, key, terse_json_bytes(mj->out, strlen(mj->out)));
        before += mj->job.tokens_in;
        after += mj->job.tokens_out;
        compressed++;
        metrics_tokens(mj->job.tokens_in, mj->job.tokens_out);
        msg_destroy(&mj->job);
    }
    free(slot);

    call *k = calloc(1, sizeof *k);
    char url[2048];
    size_t ul = strlen(cfg->upstream);
    while (ul && cfg->upstream[ul - 1] == '/') ul--;
    int has_v1 = ul >= 3 && !strncmp(cfg->upstream + ul - 3, "/v1", 3);
    snprintf(url, sizeof url, "%.*s%s", (int)ul, cfg->upstream, has_v1 ? "/chat/completions" : "/v1/chat/completions");
    if (!k || !(k->req = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)) || !(k->h = curl_easy_init())) {
        if (k) { free(k->req); free(k); }
        json_decref(root);
        return answer(c, 500, serve_error_json(500, "server_error", "out of memory"), t0, NULL);
    }
    json_decref(root);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->hdrs = curl_slist_append(k->hdrs, "Content-Type: application/json");
    k->hdrs = curl_slist_append(k->hdrs, "Expect:");
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    char line[4200];
    if (accept) { snprintf(line, sizeof line, "Accept: %.4000s", accept); k->hdrs = curl_slist_append(k->hdrs, line); }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (s->upstream_key) { snprintf(line, sizeof line, "Authorization: Bearer %.4000s", s->upstream_key); k->hdrs = curl_slist_append(k->hdrs, line); }
    else if (auth && !s->api_key) { snprintf(line, sizeof line, "Authorization: %.4000s", auth); k->hdrs = curl_slist_append(k->hdrs, line); }
    curl_easy_setopt(k->h, CURLOPT_URL, url);
    curl_easy_setopt(k->h, CURLOPT_POST, 1L);
    curl_easy_setopt(k->h, CURLOPT_POSTFIELDS, k->req);
    curl_easy_setopt(k->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(k->req));
    curl_easy_setopt(k->h, CURLOPT_HTTPHEADER, k->hdrs);
    curl_easy_setopt(k->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k->h, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(k->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k->h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, k->err);
    curl_easy_setopt(k->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k->h, CURLOPT_CONNECTTIMEOUT_MS, (long)(cfg->upstream_timeout * 1000));
    curl_easy_setopt(k->h, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* silence longer than the limit */
    curl_easy_setopt(k->h, CURLOPT_LOW_SPEED_TIME, (long)(cfg->upstream_timeout < 1 ? 1 : cfg->upstream_timeout));
    curl_easy_setopt(k->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(k->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(k->h, CURLOPT_XFERINFODATA, k);
    curl_easy_setopt(k->h, CURLOPT_NOPROGRESS, 0L);
    if (pthread_create(&k->thread, NULL, transfer, k)) {
        curl_easy_cleanup(k->h);
        curl_slist_free_all(k->hdrs);
        free(k->req);
        free(k);
        return answer(c, 500, serve_error_json(500, "server_error", "cannot start the upstream call"), t0, NULL);
    }
    /* wait for the upstream's status line and headers, at most upstream_timeout */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double w = cfg->upstream_timeout;
    ts.tv_sec += (time_t)w;
    ts.tv_nsec += (long)((w - (double)(time_t)w) * 1e9);
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&k->mu);
    int waited_out = 0;
    while (!k->head && !waited_out) waited_out = pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT;
    if (!k->head) { k->res = CURLE_OPERATION_TIMEDOUT; k->done = 1; k->status = 0; snprintf(k->err, sizeof k->err, "no answer within %g s", cfg->upstream_timeout); }
    int status = k->status, failed = k->done && k->res != CURLE_OK && k->status == 0;
    CURLcode res = k->res;
    char ctype[160], err[CURL_ERROR_SIZE];
    snprintf(ctype, sizeof ctype, "%s", k->ctype[0] ? k->ctype : "application/json");
    snprintf(err, sizeof err, "%s", k->err[0] ? k->err : curl_easy_strerror(res));
    pthread_mutex_unlock(&k->mu);
    if (failed) {
        call_free(k);
        metrics_upstream(0);
        int st = res == CURLE_OPERATION_TIMEDOUT ? 504 : 502;
        return answer(c, st, serve_error_json(st, st == 504 ? "upstream_timeout" : "upstream_error",
                                              "the upstream %s did not answer: %s", url, err), t0, NULL);
    }
    metrics_upstream(status);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_upstream, k, free_upstream);
    if (!r) { call_free(k); return MHD_NO; }
    char b[32], a[32], sv[32], nmsg[16];
    snprintf(b, sizeof b, "%lld", (long long)before);
    snprintf(a, sizeof a, "%lld", (long long)after);
    snprintf(sv, sizeof sv, "%lld", (long long)(before - after));
    snprintf(nmsg, sizeof nmsg, "%d", compressed);
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Terse-Tokens-Before", b);
    MHD_add_response_header(r, "X-Terse-Tokens-After", a);
    MHD_add_response_header(r, "X-Terse-Tokens-Saved", sv);
    MHD_add_response_header(r, "X-Terse-Messages-Compressed", nmsg);
    if (!strncasecmp(ctype, "text/event-stream", 17)) MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_request(R_CHAT, status, serve_now() - t0);
    return ok;
}
