/* cmd_batch.c - `terse batch`: compress a JSONL file, one request object per line (the body
 * of POST /v1/compress), into one JSON result per line, in order. Every input line gives one
 * output line (an {"error": ...} object for a bad line), so --resume can continue a stopped
 * run from the number of complete lines already written. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char batch_usage[] =
    "usage: terse batch [MODEL] -f IN.jsonl -o OUT.jsonl [options]\n"
    "  Each input line is a JSON request: {\"context\": ..., \"instruction\": ..., \"question\": ...,\n"
    "  \"rate\": ..., \"method\": ...} (the fields of POST /v1/compress; unknown fields ignored).\n"
    "  Each output line is the result of `terse compress --json` on one line, or {\"error\": ...}.\n"
    "  -m MODEL            scoring model (default: the default model)\n"
    "  --resume            keep the complete lines OUT.jsonl has and continue after them\n"
    "  --rate R, --target N, --method M   defaults for lines that do not say\n"
    "  --count-vocab V     count budgets and results in V (.tiktoken/.gguf, or cl100k)\n"
    "  --progress          progress on stderr (default: when stderr is a terminal)\n"
    "  -t N                threads (default: all cores)\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Complete lines in path (0 if missing); truncates a partial last line away. */
static long complete_lines(const char *path, int *err) {
    *err = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    long n = 0, end = 0, pos = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        pos++;
        if (c == '\n') { n++; end = pos; }
    }
    fclose(f);
    if (end != pos && truncate(path, end)) { fprintf(stderr, "terse batch: cannot truncate %s\n", path); *err = 1; }
    return n;
}

/* One output line (without newline) for one input line; malloc'ed. */
static char *do_line(terse_ctx *c, const terse_vocab *cv, const char *line, size_t len, long lineno,
                     json_t *defaults) {
    char *out = NULL;
    json_t *o = json_loadb(line, len, 0, NULL);
    char *req = NULL;
    if (o && json_is_object(o) && json_object_size(defaults)) {
        json_object_update_missing(o, defaults);
        req = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(o);
    int st = terse_compress_json(c, req ? req : line, req ? strlen(req) : len, TERSE_REQUEST_COMPACT, cv, &out);
    free(req);
    if (st == TERSE_OK) return out;
    json_t *e = json_pack("{s:{s:s,s:i,s:s}}", "error", "message", terse_last_error(), "line", (int)lineno,
                          "status", terse_status_str(st));
    out = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    return out;
}

int cmd_batch(int argc, char **argv) {
    const char *model_path = NULL, *in_path = NULL, *out_path = NULL, *count_vocab = NULL;
    int resume = 0, progress = isatty(2);
    long threads = 0;
    json_t *defaults = json_object();
    int rc = 1;
    double rate = -1;
    long target = 0;
    const char *method = NULL;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &in_path),
        CLI_OPT_STR("-o", &out_path),
        CLI_OPT_SET("--resume", &resume, 1),
        CLI_OPT_SET("--progress", &progress, 1),
        CLI_OPT_SET("--no-progress", &progress, 0),
        CLI_OPT_STR("--count-vocab", &count_vocab),
        CLI_OPT_NUM("--rate", &rate, 0, 1),
        CLI_OPT_NUM("--target", &target, 1, INT32_MAX),
        CLI_OPT_STR("--method", &method),
        CLI_OPT_END};
    const cli_cmd cmd = {"batch", batch_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) { json_decref(defaults); return k; }
    model_path = o.model;
    threads = o.threads;
    if (rate >= 0) json_object_set_new(defaults, "rate", json_real(rate));
    if (target > 0) json_object_set_new(defaults, "target_token", json_integer(target));
    if (method) json_object_set_new(defaults, "method", json_string(method));
    if (!in_path || !out_path) { fputs(batch_usage, stderr); goto usage; }
    FILE *in = fopen(in_path, "rb");
    if (!in) { fprintf(stderr, "terse batch: cannot open %s\n", in_path); json_decref(defaults); return 1; }
    long total = 0, skip = 0;
    int ch, last = '\n';
    while ((ch = getc(in)) != EOF) { if (ch == '\n') total++; last = ch; }
    if (last != '\n') total++;
    rewind(in);
    int err = 0;
    if (resume) skip = complete_lines(out_path, &err);
    FILE *out = err ? NULL : fopen(out_path, resume ? "ab" : "wb");
    if (!out) { if (!err) fprintf(stderr, "terse batch: cannot write %s\n", out_path); fclose(in); json_decref(defaults); return 1; }
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    terse_vocab *cv = NULL;
    char *line = NULL;
    size_t cap = 0;
    char def[4096];
    if (count_vocab && load_count_vocab(count_vocab, &cv)) goto done;
    if (!model_path) {
        if (terse_default_model_path(def, sizeof def) < 0) { cli_fail("finding the model"); goto done; }
        model_path = def;
    }
    if (terse_model_load(model_path, cli_model_params(threads), &m)) { cli_fail("loading model"); goto done; }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    if (terse_ctx_new(m, cp, &c)) { cli_fail("creating context"); goto done; }
    if (skip && progress) fprintf(stderr, "terse batch: resuming after line %ld of %ld\n", skip, total);
    long lineno = 0, errors = 0;
    double t0 = now_s();
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (lineno <= skip) continue;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        char *o = do_line(c, cv, line, (size_t)n, lineno, defaults);
        if (!o) { fprintf(stderr, "terse batch: out of memory at line %ld\n", lineno); goto done; }
        if (!strncmp(o, "{\"error\"", 8)) errors++;
        int bad = fputs(o, out) < 0 || fputc('\n', out) == EOF || fflush(out);
        free(o);
        if (bad) { fprintf(stderr, "terse batch: error writing %s\n", out_path); goto done; }
        if (progress) {
            double dt = now_s() - t0;
            long done_now = lineno - skip;
            fprintf(stderr, "\rterse batch: line %ld / %ld, %ld error%s, %.2f s/line", lineno, total, errors,
                    errors == 1 ? "" : "s", dt / (double)done_now);
        }
    }
    if (progress) fputc('\n', stderr);
    if (errors) fprintf(stderr, "terse batch: %ld line%s failed (see their \"error\" objects)\n", errors, errors == 1 ? "" : "s");
    rc = 0;
done:
    free(line);
    fclose(in);
    if (fclose(out) && rc == 0) { fprintf(stderr, "terse batch: error writing %s\n", out_path); rc = 1; }
    terse_ctx_free(c);
    terse_model_free(m);
    terse_vocab_free(cv);
    json_decref(defaults);
    return rc;
usage:
    json_decref(defaults);
    return 2;
}
