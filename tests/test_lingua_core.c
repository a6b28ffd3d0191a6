/* test_lingua_core.c - the model-independent pieces of LLMLingua / LongLLMLingua, driven by a
 * fake language model whose surprisal depends only on the target id, so every compat quirk
 * can be checked by hand: the window plan (upstream's own unit-test numbers), the global
 * top-k threshold, the keep mask shifted by one token, the uncompressed tail window, the
 * negative-slice wrap-around of prompts shorter than a window, KV eviction past the context;
 * then the default engine's budget contract over many random cases, the ramp, reordering,
 * the coarse walk and recover(). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lingua_core.h"
#include "helpers.h"

/* ---------------------------------------------------------------------------------------- */
/* A fake model: loss(target) = tab[target]                                                  */

typedef struct {
    int32_t kv, n_ctx;
    const float *tab;
    int n_fwd, n_evict;
    int64_t tokens;
} fake;

static int32_t f_kv_len(void *u) { return ((fake *)u)->kv; }
static int f_trunc(void *u, int32_t n) {
    fake *f = u;
    if (n < 0 || n > f->kv) return -5;
    f->kv = n;
    return 0;
}
static int f_evict(void *u, int32_t s, int32_t e) {
    fake *f = u;
    if (s < 0 || e < 0) return -4;
    if (s > f->kv) s = f->kv;
    if (s + e > f->kv) e = f->kv - s;
    f->kv -= e;
    f->n_evict++;
    return 0;
}
static int f_forward(void *u, const int32_t *ids, int32_t n, const int32_t *t, int32_t nt,
                     float *loss) {
    fake *f = u;
    (void)ids;
    if (f->kv + n > f->n_ctx) return -5;
    f->kv += n;
    f->n_fwd++;
    f->tokens += n;
    for (int32_t i = 0; i < nt; i++) loss[i] = f->tab[t[i]];
    return 0;
}
static void fake_lm(lingua_lm *lm, fake *f, const float *tab, int32_t n_ctx) {
    memset(f, 0, sizeof *f);
    f->tab = tab;
    f->n_ctx = n_ctx;
    memset(lm, 0, sizeof *lm);
    lm->u = f;
    lm->n_ctx = n_ctx;
    lm->kv_len = f_kv_len;
    lm->kv_truncate = f_trunc;
    lm->kv_evict = f_evict;
    lm->forward = f_forward;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) { return (uint32_t)(test_xorshift(&rng) >> 16); }

/* compat run over ids 0..n-1 with one context of n tokens at ratio tau */
static int run_compat(int32_t n, const float *tab, double target, int32_t I, int32_t n_ctx,
                      uint8_t *keep, fake *f) {
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) ids[i] = i;
    int64_t len = n + 2;
    lingua_plan plan;
    int rc = lingua_plan_build(&plan, &len, NULL, 1, target, I);
    if (rc) return rc;
    lingua_lm lm;
    fake_lm(&lm, f, tab, n_ctx);
    lingua_compat_in in = {.ids = ids, .n = n, .plan = &plan, .I = I, .cache_bos_num = 10};
    rc = lingua_compat_run(&lm, &in, keep);
    lingua_plan_free(&plan);
    free(ids);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */

static void test_plan(void) {
    /* upstream tests/test_llmlingua.py case 1: 392 GPT-2 tokens, l = 394, target 150 */
    int64_t l1 = 394;
    lingua_plan p;
    CHECK_OK(lingua_plan_build(&p, &l1, NULL, 1, 150, 200));
    CHECK(p.n_windows == 2, "windows %d", p.n_windows);
    CHECK(p.piece[0].n == 199 && p.piece[1].n == 195, "%d %d", p.piece[0].n, p.piece[1].n);
    CHECK(fabs(p.piece[0].ratio - 150.0 / 395) < 1e-12, "tau %f", p.piece[0].ratio);
    lingua_plan_free(&p);
    /* LongLLMLingua multi-context case: demos of 279 and 300 tokens, offsets +-0.4, target 250:
     * [(199,.828)], [(82,.828),(118,.028)], [(184,.028)] */
    int64_t l2[2] = {281, 302};
    double dyn[2] = {0.4, -0.4};
    CHECK_OK(lingua_plan_build(&p, l2, dyn, 2, 250, 200));
    CHECK(p.n_windows == 3, "windows %d", p.n_windows);
    CHECK(p.first[1] == 1 && p.first[2] == 3 && p.first[3] == 4, "firsts");
    CHECK(p.piece[0].n == 199 && p.piece[1].n == 82 && p.piece[2].n == 118 && p.piece[3].n == 184,
          "pieces %d %d %d %d", p.piece[0].n, p.piece[1].n, p.piece[2].n, p.piece[3].n);
    CHECK(fabs(p.piece[0].ratio - (250.0 / 584 + 0.4)) < 1e-12 &&
          fabs(p.piece[2].ratio - (250.0 / 584 - 0.4)) < 1e-12, "ratios");
    lingua_plan_free(&p);
}

static void test_threshold(void) {
    float v[6] = {3, 1, 10000, 2, 5, 4}, s[6];
    /* 5 valid values, ratio 0.5: k = int(2.5) - 1 = 1 -> 2nd largest = 4 */
    CHECK(lingua_threshold_topk(v, 6, 0.5, s) == 4.0f, "got %f", lingua_threshold_topk(v, 6, 0.5, s));
    CHECK(lingua_threshold_topk(v, 6, 0.1, s) == 5.0f, "k clamps at 0");
    CHECK(lingua_threshold_topk(v, 6, 0.99, s) == 2.0f, "k = int(4.95) - 1 = 3");
    CHECK(isinf(lingua_threshold_topk(v, 6, 1.0, s)), "ratio 1 keeps all");
    CHECK(isinf(lingua_threshold_topk(v, 0, 0.5, s)), "empty");
    /* against a sort on random data */
    float big[1000], sc[1000], sorted[1000];
    for (int t = 0; t < 20; t++) {
        int n = 1 + (int)(rnd() % 1000);
        for (int i = 0; i < n; i++) big[i] = (float)(rnd() % 300) / 7.0f;
        memcpy(sorted, big, (size_t)n * sizeof(float));
        for (int i = 1; i < n; i++) /* insertion sort, descending */
            for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
                float x = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = x;
            }
        double r = (rnd() % 1000) / 1000.0;
        int k = (int)(n * r) - 1;
        if (k > n - 1) k = n - 1;
        if (k < 0) k = 0;
        CHECK(lingua_threshold_topk(big, n, r, sc) == sorted[k], "quickselect n %d", n);
    }
}

/* Quirk "off-by-one keep mask" and "short prompt barely touched" (100 <= N < 200: exactly the
 * two tokens [2N-I, 2N-I+2) can go). */
static void test_quirk_short_prompt_and_offset(void) {
    enum { N = 150 };
    float tab[N];
    for (int i = 0; i < N; i++) tab[i] = (float)i;
    tab[101] = 0.5f;  /* token 101 unsurprising ... */
    tab[102] = 200.f; /* ... token 102 very surprising */
    uint8_t keep[N];
    fake f;
    CHECK_OK(run_compat(N, tab, 0.5 * (N + 3), 200, 2048, keep, &f));
    int kept = 0;
    for (int i = 0; i < N; i++) kept += keep[i];
    /* gamma = 75: token 100 goes because its successor 101 is unsurprising; 101 stays because
     * 102 is surprising (the mask is shifted by one); nothing outside [100, 102) can go */
    CHECK(!keep[100], "quirk one-token offset: token 100 should be dropped");
    CHECK(keep[101], "quirk one-token offset: token 101 kept for its successor");
    CHECK(kept == N - 1, "quirk short prompt: only [100,102) compressible, kept %d", kept);
    CHECK(f.n_fwd == 1, "one pass for a prompt under one window (%d)", f.n_fwd);

    /* N = 80: tokens [0, 3N+2-I) = [0, 42) are compressible (need[:win_end] wraps) */
    float t2[80];
    for (int i = 0; i < 80; i++) t2[i] = 0.1f; /* everything unsurprising */
    uint8_t k2[80];
    CHECK_OK(run_compat(80, t2, 0.2 * 83, 200, 2048, k2, &f));
    int kept2 = 0, kept_tail = 0;
    for (int i = 0; i < 80; i++) {
        kept2 += k2[i];
        kept_tail += i >= 42 && k2[i];
    }
    CHECK(kept_tail == 38, "quirk short prompt N=80: tokens 42.. verbatim (%d)", kept_tail);
    CHECK(kept2 < 80, "quirk short prompt N=80: something in [0,42) dropped");
    /* N = 50: nothing compressible at all (issue #138: 18 tokens -> "1.0x") */
    uint8_t k3[50];
    CHECK_OK(run_compat(50, t2, 0.1 * 53, 200, 2048, k3, &f));
    int kept3 = 0;
    for (int i = 0; i < 50; i++) kept3 += k3[i];
    CHECK(kept3 == 50, "quirk short prompt N=50: untouched (%d)", kept3);
}

/* Quirk "global threshold" and "uncompressed tail window": window 0 very surprising, the rest
 * mildly so; gamma is a quantile of the whole loss vector, so window 1 loses every token,
 * and the trailing partial window stays verbatim. */
static void test_quirk_global_threshold_tail(void) {
    enum { N = 450 };
    float tab[N];
    for (int i = 0; i < N; i++) tab[i] = i < 200 ? 100.f + i * 0.001f : i * 0.01f;
    uint8_t keep[N];
    fake f;
    CHECK_OK(run_compat(N, tab, 0.5 * (N + 3), 200, 2048, keep, &f));
    int w0 = 0, w1 = 0, tail = 0;
    for (int i = 0; i < N; i++) {
        if (i < 199) w0 += keep[i];
        else if (i < 399) w1 += keep[i];
        else tail += keep[i];
    }
    CHECK(w0 == 199, "window 0 kept whole (%d)", w0);
    CHECK(w1 == 0, "quirk global threshold: window 1 fully dropped (%d kept)", w1);
    CHECK(tail == 51, "quirk uncompressed tail: last 51 tokens verbatim (%d)", tail);
    CHECK(f.n_fwd == 2, "passes %d (full pass + one window pass)", f.n_fwd);
}

/* Quirk "short prompt loses prefix tokens": with a 14-token question prefix, one context of
 * 67 tokens and I = 157, need[:-76] wraps to need[:5], so prefix tokens 5.. are compressible;
 * upstream then returns ids[:, start:], skipping the first 14 survivors, so context tokens
 * 14..18 vanish with the prefix. */
static void test_quirk_prefix_dropped(void) {
    enum { N = 81, S = 14 };
    float tab[N];
    for (int i = 0; i < N; i++) tab[i] = 10.0f + (float)i;
    for (int i = 6; i <= 10; i++) tab[i] = 0.1f; /* tokens 5..9 lose their successor test */
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = i;
    int64_t len = (N - S) + 2;
    lingua_plan plan;
    /* ratio 0.9: k = int(80 * 0.9) - 1 = 71, gamma = 14 (loss of token 4) */
    CHECK_OK(lingua_plan_build(&plan, &len, NULL, 1, 0.9 * (double)(len + 1), 157));
    lingua_lm lm;
    fake f;
    fake_lm(&lm, &f, tab, 2048);
    uint8_t keep[N];
    lingua_compat_in in = {.ids = ids, .n = N, .start = S, .plan = &plan, .I = 157,
                           .cache_bos_num = 10};
    CHECK_OK(lingua_compat_run(&lm, &in, keep));
    int first = -1, kept = 0;
    for (int i = 0; i < N; i++)
        if (keep[i]) {
            if (first < 0) first = i;
            kept++;
        }
    CHECK(first == 19 && kept == N - 19, "quirk prefix dropped: output starts at token %d (want "
          "19), %d kept", first, kept);
    lingua_plan_free(&plan);
}

/* KV eviction past the context: runs, keeps the tail, evicts. */
static void test_compat_eviction(void) {
    enum { N = 1000 };
    float tab[N];
    for (int i = 0; i < N; i++) tab[i] = (float)((i * 37) % 101);
    uint8_t keep[N];
    fake f;
    CHECK_OK(run_compat(N, tab, 0.3 * (N + 3), 100, 300, keep, &f));
    int kept = 0;
    for (int i = 0; i < N; i++) kept += keep[i];
    CHECK(f.n_evict > 0, "eviction happened");
    CHECK(kept > 0 && kept < N, "kept %d", kept);
}

/* Random plans, prefixes, contrastive streams and small contexts: the compat engine always
 * finishes and keeps the trailing token. */
static void test_compat_random(void) {
    int fails = 0;
    for (int t = 0; t < 300; t++) {
        int32_t nc = 1 + (int32_t)(rnd() % 4), start = rnd() % 2 ? (int32_t)(rnd() % 20) : 0;
        int64_t len[4];
        double dyn[4];
        int32_t n = start;
        for (int i = 0; i < nc; i++) {
            len[i] = 1 + rnd() % 300;
            n += (int32_t)len[i] + (i ? 2 : 0);
            len[i] += 2;
            dyn[i] = ((int)(rnd() % 9) - 4) / 10.0;
        }
        int32_t I = 5 + (int32_t)(rnd() % 200), n_ctx = 2 * I + start + 20 + (int32_t)(rnd() % 400);
        float tab[64];
        for (int i = 0; i < 64; i++) tab[i] = (float)(rnd() % 500) / 50.0f;
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        for (int32_t i = 0; i < n; i++) ids[i] = (int32_t)(rnd() % 64);
        lingua_plan plan;
        CHECK_OK(lingua_plan_build(&plan, len, dyn, nc, (double)(rnd() % (uint32_t)n), I));
        lingua_lm lm, sl;
        fake f, fs;
        fake_lm(&lm, &f, tab, n_ctx);
        fake_lm(&sl, &fs, tab, n_ctx);
        uint8_t *keep = malloc((size_t)n);
        lingua_compat_in in = {.ids = ids, .n = n, .start = start, .plan = &plan, .I = I,
                               .cache_bos_num = 10, .self_lm = start && rnd() % 2 ? &sl : NULL};
        int rc = lingua_compat_run(&lm, &in, keep);
        int ok = rc == 0 && (keep[n - 1] || n <= start);
        if (!ok && fails++ < 3)
            fprintf(stderr, "compat random case %d: rc %d (%s) n %d I %d ctx %d start %d\n", t, rc,
                    terse_last_error(), n, I, n_ctx, start);
        lingua_plan_free(&plan);
        free(ids);
        free(keep);
    }
    CHECK(fails == 0, "%d random compat cases failed", fails);
}

/* ---------------------------------------------------------------------------------------- */
/* Default engine                                                                            */

static void test_default_budget(void) {
    int bad = 0, cases = 0, window_bad = 0;
    for (int t = 0; t < 300; t++) {
        int32_t n = 1 + (int32_t)(rnd() % 700), I = 1 + (int32_t)(rnd() % 250);
        int32_t V = 50;
        float tab[50];
        for (int i = 0; i < V; i++) tab[i] = (float)(rnd() % 1000) / 100.0f;
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        uint8_t *prot = malloc((size_t)n), *keep = malloc((size_t)n);
        float *w = malloc((size_t)n * sizeof *w);
        int pmode = (int)(rnd() % 3), wmode = (int)(rnd() % 2);
        int64_t n_prot = 0;
        for (int32_t i = 0; i < n; i++) {
            ids[i] = (int32_t)(rnd() % (uint32_t)V);
            prot[i] = pmode == 0 ? 0 : (rnd() % (pmode == 1 ? 10 : 2)) == 0;
            n_prot += prot[i];
            w[i] = (float)(rnd() % 100) / 100.0f;
        }
        int bos = (rnd() % 4) ? 1 : -1;
        int64_t target = (int64_t)(rnd() % (uint32_t)(n + 2));
        lingua_lm lm;
        fake f;
        fake_lm(&lm, &f, tab, 1 + (int32_t)(rnd() % 3) * 300 + I + 2);
        lingua_default_in in = {.ids = ids, .n = n, .protect = prot, .weight = wmode ? w : NULL,
                                .target = target, .I = I, .bos = bos};
        int rc = lingua_default_run(&lm, &in, keep);
        CHECK(rc == 0, "default run rc %d: %s", rc, terse_last_error());
        int64_t kept = 0;
        int prot_ok = 1;
        for (int32_t i = 0; i < n; i++) {
            kept += keep[i];
            prot_ok &= !prot[i] || keep[i];
        }
        int64_t must = n_prot + (bos < 0 && !prot[0]);
        int64_t want = target > must ? target : must;
        if (want > n) want = n;
        cases++;
        if (kept != want || !prot_ok) {
            bad++;
            if (bad < 5)
                fprintf(stderr, "case n %d I %d target %lld must %lld kept %lld\n", n, I,
                        (long long)target, (long long)must, (long long)kept);
        }
        /* every full window of an unprotected uniform case gets its share (+-1) */
        if (pmode == 0 && !wmode && bos >= 0 && n >= 2 * I) {
            for (int32_t a = 0; a + I <= n; a += I) {
                int32_t kw = 0;
                for (int32_t i = a; i < a + I; i++) kw += keep[i];
                double share = (double)target * I / n;
                if (fabs(kw - share) > 1.0 + 1e-9) window_bad++;
            }
        }
        free(ids);
        free(prot);
        free(keep);
        free(w);
    }
    CHECK(bad == 0, "budget contract broken in %d of %d cases", bad, cases);
    CHECK(window_bad == 0, "%d windows off their share", window_bad);
}

static void test_waterfill(void) {
    float w[5] = {1, 1, 10, 0, 1};
    uint8_t sel[5] = {1, 1, 1, 1, 0};
    double q[5];
    lingua_waterfill(w, sel, 5, 2, q);
    CHECK(q[2] == 1.0, "heavy token saturates (%f)", q[2]);
    CHECK(fabs(q[0] + q[1] + q[2] + q[3] - 2.0) < 1e-9 && q[4] == 0, "sums to k");
}

static void test_small_pieces(void) {
    double r[3];
    lingua_dynamic_ramp(3, 0.4, r);
    CHECK(fabs(r[0] - 0.4) < 1e-12 && r[1] == 0 && fabs(r[2] + 0.4) < 1e-12, "ramp");
    lingua_dynamic_ramp(1, 0.4, r);
    CHECK(r[0] == 0, "ramp of one");
    int32_t a[5] = {10, 11, 12, 13, 14};
    lingua_reorder(a, 5, LINGUA_ORDER_TWO_STAGE);
    CHECK(a[0] == 10 && a[1] == 12 && a[2] == 14 && a[3] == 13 && a[4] == 11, "two_stage");
    int32_t b[4] = {3, 0, 2, 1};
    lingua_reorder(b, 4, LINGUA_ORDER_ORIGINAL);
    CHECK(b[0] == 0 && b[3] == 3, "original");
    /* walk: the context that crosses the budget is kept; forced first */
    int32_t rank[3] = {2, 0, 1}, used[3];
    int64_t len[3] = {50, 100, 80};
    int32_t nu = lingua_budget_walk(rank, 3, len, 3, 120, NULL, 0, used);
    CHECK(nu == 2 && used[0] == 2 && used[1] == 0, "walk %d", nu);
    int32_t forced[1] = {1};
    nu = lingua_budget_walk(rank, 3, len, 3, 10, forced, 1, used);
    CHECK(nu == 2 && used[0] == 1 && used[1] == 2, "forced walk %d", nu);
    double sc[4] = {1, 3, 3, NAN};
    int32_t ix[4];
    lingua_argsort(sc, 4, 1, ix);
    CHECK(ix[0] == 1 && ix[1] == 2 && ix[2] == 0 && ix[3] == 3, "argsort stable desc");
}

/* ---------------------------------------------------------------------------------------- */
/* recover(): a word tokenizer (id = hash of the word), spans with the leading space         */

static int32_t word_id(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return (int32_t)(h & 0xffff);
}

static int64_t word_tok(void *u, const char *s, size_t n, int32_t *ids, int64_t cap) {
    terse_span *spans = u;
    int64_t k = 0;
    size_t i = 0;
    while (i < n) {
        size_t b = i;
        while (i < n && s[i] == ' ') i++;
        size_t w0 = i;
        while (i < n && s[i] != ' ') i++;
        if (i == w0) break;
        if (k < cap) {
            ids[k] = word_id(s + w0, i - w0);
            if (spans) spans[k] = (terse_span){(int64_t)b, (int64_t)i};
        }
        k++;
    }
    return k;
}

static void test_recover(void) {
    const char *orig = "The quick brown fox jumps over the lazy dog";
    const char *comp = "quick fox jumps lazy dog";
    const char *resp = "the fox jumps high";
    int32_t ids[16];
    terse_span spans[16];
    int64_t n = word_tok(spans, orig, strlen(orig), ids, 16);
    char *out = NULL;
    size_t out_len = 0;
    CHECK_OK(lingua_recover(orig, strlen(orig), ids, spans, (int32_t)n, comp, strlen(comp), resp,
                            strlen(resp), word_tok, NULL, &out, &out_len));
    CHECK(out && strcmp(out, "the fox jumps high") == 0, "recovered '%s'", out ? out : "");
    free(out);
    /* a span that skips a dropped word is recovered whole: "quick fox" -> "quick brown fox" */
    CHECK_OK(lingua_recover(orig, strlen(orig), ids, spans, (int32_t)n, comp, strlen(comp),
                            "quick fox", 9, word_tok, NULL, &out, &out_len));
    CHECK(out && strcmp(out, "quick brown fox") == 0, "recovered '%s'", out ? out : "");
    free(out);
    CHECK_OK(lingua_recover(orig, strlen(orig), ids, spans, (int32_t)n, comp, strlen(comp), "", 0,
                            word_tok, NULL, &out, &out_len));
    CHECK(out && out_len == 0, "empty response");
    free(out);
}

int main(void) {
    test_plan();
    test_threshold();
    test_quirk_short_prompt_and_offset();
    test_quirk_global_threshold_tail();
    test_quirk_prefix_dropped();
    test_compat_eviction();
    test_compat_random();
    test_default_budget();
    test_waterfill();
    test_small_pieces();
    test_recover();
    return test_summary("lingua_core");
}
