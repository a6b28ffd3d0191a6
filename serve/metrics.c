/* metrics.c - the counters behind GET /metrics, in Prometheus' text format (0.0.4): requests
 * by path and status, a latency histogram per path, tokens in and out, queue depth, busy
 * workers, upstream answers (proxy) and the process's resident memory. */
#include "serve.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const serve_route_path[R_COUNT] = {"/health", "/metrics", "/v1/compress", "/v1/score",
                                               "/v1/tokenize", "/v1/chat/completions", "other"};

#define N_CODES 24
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define N_BUCKETS (int)(sizeof buckets / sizeof *buckets)

typedef struct {
    int code;
    int64_t n;
} code_count;

static struct {
    pthread_mutex_t mu;
    code_count codes[R_COUNT][N_CODES];
    int64_t hist[R_COUNT][N_BUCKETS + 1];
    double sum[R_COUNT];
    int64_t count[R_COUNT];
    int64_t tokens_in, tokens_out;
    code_count upstream[N_CODES];
} M = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void bump(code_count *c, int code) {
    for (int i = 0; i < N_CODES; i++) {
        if (c[i].n && c[i].code == code) { c[i].n++; return; }
        if (!c[i].n) { c[i].code = code; c[i].n = 1; return; }
    }
}

void metrics_request(int route, int status, double seconds) {
    if (route < 0 || route >= R_COUNT) route = R_OTHER;
    pthread_mutex_lock(&M.mu);
    bump(M.codes[route], status);
    int b = 0;
    while (b < N_BUCKETS && seconds > buckets[b]) b++;
    M.hist[route][b]++;
    M.sum[route] += seconds;
    M.count[route]++;
    pthread_mutex_unlock(&M.mu);
}

void metrics_tokens(int64_t in, int64_t out) {
    pthread_mutex_lock(&M.mu);
    M.tokens_in += in;
    M.tokens_out += out;
    pthread_mutex_unlock(&M.mu);
}

void metrics_upstream(int status) {
    pthread_mutex_lock(&M.mu);
    bump(M.upstream, status);
    pthread_mutex_unlock(&M.mu);
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

char *metrics_text(const serve_state *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int queued = 0, busy = 0, cap = 0;
    serve_pool_stats(s->pool, &queued, &busy, &cap, NULL);
    pthread_mutex_lock(&M.mu);
    fprintf(f, "# HELP terse_requests_total Requests answered, by path and HTTP status.\n"
               "# TYPE terse_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int i = 0; i < N_CODES && M.codes[r][i].n; i++)
            fprintf(f, "terse_requests_total{path=\"%s\",code=\"%d\"} %lld\n", serve_route_path[r],
                    M.codes[r][i].code, (long long)M.codes[r][i].n);
    fprintf(f, "# HELP terse_request_duration_seconds Time from arrival to answer.\n"
               "# TYPE terse_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++) {
        if (!M.count[r]) continue;
        int64_t cum = 0;
        for (int b = 0; b < N_BUCKETS; b++) {
            cum += M.hist[r][b];
            fprintf(f, "terse_request_duration_seconds_bucket{path=\"%s\",le=\"%g\"} %lld\n",
                    serve_route_path[r], buckets[b], (long long)cum);
        }
        fprintf(f, "terse_request_duration_seconds_bucket{path=\"%s\",le=\"+Inf\"} %lld\n"
                   "terse_request_duration_seconds_sum{path=\"%s\"} %.6f\n"
                   "terse_request_duration_seconds_count{path=\"%s\"} %lld\n",
                serve_route_path[r], (long long)M.count[r], serve_route_path[r], M.sum[r],
                serve_route_path[r], (long long)M.count[r]);
    }
    fprintf(f, "# HELP terse_tokens_in_total Prompt tokens received for compression.\n"
               "# TYPE terse_tokens_in_total counter\nterse_tokens_in_total %lld\n"
               "# HELP terse_tokens_out_total Tokens of the compressed prompts.\n"
               "# TYPE terse_tokens_out_total counter\nterse_tokens_out_total %lld\n",
            (long long)M.tokens_in, (long long)M.tokens_out);
    if (s->cfg->upstream) {
        fprintf(f, "# HELP terse_upstream_responses_total Upstream answers by status (0: none).\n"
                   "# TYPE terse_upstream_responses_total counter\n");
        for (int i = 0; i < N_CODES && M.upstream[i].n; i++)
            fprintf(f, "terse_upstream_responses_total{code=\"%d\"} %lld\n", M.upstream[i].code,
                    (long long)M.upstream[i].n);
    }
    pthread_mutex_unlock(&M.mu);
    fprintf(f, "# HELP terse_queue_depth Requests waiting for a worker.\n"
               "# TYPE terse_queue_depth gauge\nterse_queue_depth %d\n"
               "# HELP terse_queue_capacity Longest queue before 503.\n"
               "# TYPE terse_queue_capacity gauge\nterse_queue_capacity %d\n"
               "# HELP terse_workers_busy Workers running a request.\n"
               "# TYPE terse_workers_busy gauge\nterse_workers_busy %d\n"
               "# HELP terse_workers Workers (one model context each).\n"
               "# TYPE terse_workers gauge\nterse_workers %d\n"
               "# HELP process_resident_memory_bytes Resident memory.\n"
               "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
            queued, cap, busy, s->cfg->workers, rss_bytes());
    if (fclose(f)) { free(buf); return NULL; }
    return buf;
}
