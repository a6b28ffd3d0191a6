/* bench_compress.c - speed of terse_compress with the default model on prompts of about 2k, 8k
 * and 32k tokens, for every method (selective at token, phrase and sentence level; llmlingua
 * and longllmlingua, skipped with a note while they return TERSE_ERR_UNSUPPORTED).
 *
 * Prompts: the GSM8K 8-shot prompt (../shared/data/gsm8k/prompt_hardest.txt) followed by
 * held-out corpus text (../shared/corpus/val.txt.xz, read through `xz -dc`), cut at a token
 * boundary at the size wanted, split into contexts at blank lines (at most 64 contexts, the
 * rest joined into the last), with a GSM8K question.
 * Reported per run: wall time, prompt tokens per second, the share of the time spent outside
 * the model's forward passes (the compression machinery itself; goal < 10%), and the achieved
 * rate at a requested rate of 0.5.
 *
 * Usage: bench_compress [--sizes 2048,8192,32768] [--methods all|selective] [-m MODEL] [-t N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "terse.h"

static char *read_xz(const char *path, size_t limit, size_t *len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "xz -dc '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    char *buf = malloc(limit + 1);
    size_t n = buf ? fread(buf, 1, limit, f) : 0;
    pclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The first `tokens` tokens of text (cut at a token boundary), as a new string. */
static char *cut_tokens(const terse_vocab *v, const char *text, size_t len, int64_t tokens) {
    int64_t n = terse_tokenize(v, text, len, 0, NULL, NULL, 0);
    if (n < 0) return NULL;
    int32_t *ids = malloc((size_t)(n + 1) * sizeof *ids);
    terse_span *sp = malloc((size_t)(n + 1) * sizeof *sp);
    if (!ids || !sp) return NULL;
    terse_tokenize(v, text, len, 0, ids, sp, n);
    size_t end = tokens < n ? (size_t)sp[tokens - 1].end : len;
    char *s = malloc(end + 1);
    memcpy(s, text, end);
    s[end] = 0;
    free(ids);
    free(sp);
    return s;
}

/* Split at blank lines into at most cap contexts (pointers into s, which is modified). */
static int split_contexts(char *s, const char **cs, int cap) {
    int n = 0;
    char *p = s;
    cs[n++] = p;
    while (n < cap && (p = strstr(p, "\n\n"))) {
        *p = 0;
        p += 2;
        while (*p == '\n' || *p == '\r') p++;
        if (*p) cs[n++] = p;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *sizes = "2048,8192,32768", *methods = "all";
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc) sizes = argv[++i];
        else if (!strcmp(argv[i], "--methods") && i + 1 < argc) methods = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_compress [--sizes a,b,c] [--methods all|selective] [-m MODEL] [-t N]\n"); return 2; }
    }
    char def[4096];
    if (!model_path) {
        if (terse_default_model_path(def, sizeof def) < 0) {
            printf("bench_compress: default model not found (%s): skipped\n", terse_last_error());
            return 0;
        }
        model_path = def;
    }
    const char *shared = getenv("TERSE_SHARED") ? getenv("TERSE_SHARED") : "../shared";
    char gp[512], vp[512];
    snprintf(gp, sizeof gp, "%s/data/gsm8k/prompt_hardest.txt", shared);
    snprintf(vp, sizeof vp, "%s/corpus/val.txt.xz", shared);
    char *gsm;
    size_t glen, vlen = 0;
    if (terse_read_all(gp, &gsm, &glen)) {
        printf("bench_compress: %s missing: skipped\n", gp);
        return 0;
    }
    char *val = read_xz(vp, 600000, &vlen);
    if (!val || vlen == 0) {
        printf("bench_compress: %s unreadable (xz needed): skipped\n", vp);
        return 0;
    }
    size_t alen = glen + 2 + vlen;
    char *all = malloc(alen + 1);
    memcpy(all, gsm, glen);
    memcpy(all + glen, "\n\n", 2);
    memcpy(all + glen + 2, val, vlen);
    all[alen] = 0;

    terse_model *m;
    terse_ctx *c;
    if (terse_model_load(model_path, terse_model_default_params(), &m)) {
        fprintf(stderr, "bench_compress: %s\n", terse_last_error());
        return 1;
    }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = threads;
    if (terse_ctx_new(m, cp, &c)) {
        fprintf(stderr, "bench_compress: %s\n", terse_last_error());
        return 1;
    }
    const terse_vocab *v = terse_model_vocab(m);
    terse_model_info info;
    terse_model_get_info(m, &info);
    printf("model %s (%.1fM params, ctx %d), rate 0.5, threads %d\n", model_path, info.n_params / 1e6,
           info.n_ctx_train, threads);
    printf("%-8s %-24s %9s %9s %10s %9s %10s\n", "tokens", "method", "wall s", "tok/s", "outside %", "kept",
           "rate");

    struct { terse_method m; terse_unit u; const char *name; } runs[] = {
        {TERSE_METHOD_SELECTIVE, TERSE_UNIT_TOKEN, "selective/token"},
        {TERSE_METHOD_SELECTIVE, TERSE_UNIT_PHRASE, "selective/phrase"},
        {TERSE_METHOD_SELECTIVE, TERSE_UNIT_SENTENCE, "selective/sentence"},
        {TERSE_METHOD_LLMLINGUA, TERSE_UNIT_TOKEN, "llmlingua"},
        {TERSE_METHOD_LONGLLMLINGUA, TERSE_UNIT_TOKEN, "longllmlingua"},
    };
    int nruns = strcmp(methods, "selective") ? 5 : 3;
    const char *question = "Question: Janet's ducks lay 16 eggs per day. She eats three for breakfast every "
                           "morning and bakes muffins for her friends every day with four. She sells the "
                           "remainder at the farmers' market daily for $2 per fresh duck egg. How much in "
                           "dollars does she make every day at the farmers' market?";
    char *sz = strdup(sizes);
    for (char *tok = strtok(sz, ","); tok; tok = strtok(NULL, ",")) {
        int64_t want = atoll(tok);
        if (want <= 0) continue;
        for (int r = 0; r < nruns; r++) {
            char *text = cut_tokens(v, all, alen, want);
            const char *cs[64];
            int nc = split_contexts(text, cs, 64);
            terse_prompt pr = {.contexts = cs, .n_contexts = nc,
                               .question = runs[r].m == TERSE_METHOD_SELECTIVE ? NULL : question};
            terse_compress_params p = terse_compress_default_params();
            p.method = runs[r].m;
            p.unit = runs[r].u;
            p.rate = 0.5;
            terse_result *res = NULL;
            double t0 = terse_now();
            int rc = terse_compress(c, &pr, p, &res);
            double wall = terse_now() - t0;
            if (rc == TERSE_ERR_UNSUPPORTED) {
                printf("%-8lld %-24s skipped: %s\n", (long long)want, runs[r].name, terse_last_error());
            } else if (rc) {
                printf("%-8lld %-24s FAILED: %s\n", (long long)want, runs[r].name, terse_last_error());
            } else {
                terse_compress_stats st;
                terse_result_get_stats(res, &st);
                printf("%-8lld %-24s %9.2f %9.0f %9.1f%% %9lld %9.1f%%\n", (long long)st.origin_model_tokens,
                       runs[r].name, wall, st.origin_model_tokens / wall,
                       100.0 * (1.0 - st.seconds_model / wall), (long long)st.compressed_tokens, 100.0 * st.rate);
            }
            fflush(stdout);
            terse_result_free(res);
            free(text);
        }
    }
    free(sz);
    terse_ctx_free(c);
    terse_model_free(m);
    free(all);
    free(gsm);
    free(val);
    return 0;
}
