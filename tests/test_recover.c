/* test_recover.c - LongLLMLingua's recover() (src/compress/recover.c): the defects of issue 9
 * (a response that starts with copied text, a word before a newline, quadratic time), the
 * fast matcher against a plain transcription of upstream's algorithm on random texts, and the
 * default model's byte-level vocabulary end to end. Timings are printed, never asserted. */
#include <time.h>

#include "compress/lingua_core.h"
#include "helpers.h"
#include "terse.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* first occurrence of needle[0..m) in hay[0..n), or NULL (memmem is a GNU extension) */
static const char *find(const char *hay, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

static int blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---------------------------------------------------------------------------------------- */
/* A word tokenizer: id = hash of the word, each span with the blanks before it             */

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
        while (i < n && blank(s[i])) i++;
        size_t w0 = i;
        while (i < n && !blank(s[i])) i++;
        if (i == w0) break;
        if (k < cap) {
            ids[k] = word_id(s + w0, i - w0);
            if (spans) spans[k] = (terse_span){(int64_t)b, (int64_t)i};
        }
        k++;
    }
    return k;
}

/* recover with the word tokenizer; the result is malloc'ed (NULL on error) */
static char *recover_words(const char *orig, const char *comp, const char *resp) {
    size_t on = strlen(orig);
    int32_t *ids = malloc((on + 1) * sizeof *ids);
    terse_span *spans = malloc((on + 1) * sizeof *spans);
    int64_t n = word_tok(spans, orig, on, ids, (int64_t)on + 1);
    char *out = NULL;
    size_t out_len = 0;
    int rc = lingua_recover(orig, on, ids, spans, (int32_t)n, comp, strlen(comp), resp,
                            strlen(resp), word_tok, NULL, &out, &out_len);
    CHECK(rc == 0 && out && strlen(out) == out_len, "recover -> %d: %s", rc, terse_last_error());
    free(ids);
    free(spans);
    return rc ? NULL : out;
}

static void expect(const char *orig, const char *comp, const char *resp, const char *want) {
    char *out = recover_words(orig, comp, resp);
    CHECK(out && strcmp(out, want) == 0, "'%s' -> '%s', want '%s'", resp, out ? out : "(error)",
          want);
    free(out);
}

static void test_defects(void) {
    const char *orig = "The quick brown fox jumps over the lazy dog";
    const char *comp = "quick fox jumps lazy dog";
    /* issue 9: a response that starts with copied text maps back */
    expect(orig, comp, "quick fox jumps high", "quick brown fox jumps high");
    /* issue 9: a word followed by a newline (or a tab, or CRLF) matches; the blanks stay */
    expect(orig, comp, "it was the lazy dog\n", "it was the lazy dog\n");
    expect(orig, comp, "so: quick fox\n", "so: quick brown fox\n");
    expect(orig, comp, "quick fox\r\nlazy dog\t!", "quick brown fox\r\nlazy dog\t!");
    /* words the compressed prompt lacks are copied, blanks as they were */
    expect(orig, comp, "  the  fox jumps   high ", "  the  fox jumps   high ");
    expect(orig, comp, "", "");
    expect(orig, comp, " \n ", " \n ");
    /* a run whose tokens are mostly not in the original is copied, not shrunk to one token */
    expect("ab ab ab cd", "ab ef gh ij", "ab ef gh ij", "ab ef gh ij");
    /* the run's last word is not within reach in the original (upstream drops it): it is
     * recovered on its own */
    expect("p q r s t u v w x y z end", "p end", "so p end", "so p end");
    expect("p q r s t u v w x y z end", "p end", "p end.", "p end.");
    /* UTF-8: the recovered span is widened to whole characters */
    expect("caf\xc3\xa9 au lait chaud", "caf\xc3\xa9 chaud", "un caf\xc3\xa9 chaud",
           "un caf\xc3\xa9 au lait chaud");
}

/* ---------------------------------------------------------------------------------------- */
/* Upstream's algorithm, transcribed plainly (whitespace words, the half rule), as reference,
 * with terse's one departure: a run whose last token is not matched is shortened by its last
 * word (upstream loses that word) */

static char *naive_recover(const char *orig, const char *comp, const char *resp) {
    size_t on = strlen(orig), cn = strlen(comp), rn = strlen(resp);
    int32_t *ids = malloc((on + 1) * sizeof *ids), q[4096];
    terse_span *sp = malloc((on + 1) * sizeof *sp);
    int32_t n = (int32_t)word_tok(sp, orig, on, ids, (int64_t)on + 1);
    char *out = malloc(on * (rn + 1) + rn + 1);
    size_t k = 0, at = 0;
    while (at < rn) {
        while (at < rn && blank(resp[at])) out[k++] = resp[at++];
        if (at == rn) break;
        size_t e = at;
        while (e < rn && !blank(resp[e])) e++;
        if (!find(comp, cn, resp + at, e - at)) {
            memcpy(out + k, resp + at, e - at);
            k += e - at;
            at = e;
            continue;
        }
        for (;;) { /* " ".join(words[l..r+1]) in compressed_prompt */
            size_t f = e;
            while (f < rn && blank(resp[f])) f++;
            if (f == rn) break;
            while (f < rn && !blank(resp[f])) f++;
            if (!find(comp, cn, resp + at, f - at)) break;
            e = f;
        }
    shorter:;
        int32_t nt = (int32_t)word_tok(NULL, resp + at, e - at, q, 4096);
        int found = 0, res_last = 0;
        int32_t res_c = 1, res_l = 0, res_y = 0;
        int64_t res_min = INT64_MAX;
        for (int32_t l = 0; l < n; l++) {
            if (ids[l] != q[0]) continue;
            int32_t y = l, c = 1, last = 1;
            for (int32_t x = 1; x < nt; x++) {
                int32_t z = y + 1;
                last = 0;
                while (z < n && ids[z] != q[x]) z++; /* bisect_right: next occurrence */
                if (z >= n || z - y > 10) continue;
                c++;
                y = z;
                last = 1;
            }
            if (c > res_c || (c == res_c && y - l + 1 < res_min)) {
                res_c = c, res_min = y - l + 1, res_l = l, res_y = y, found = 1, res_last = last;
            }
        }
        if (found && 2 * res_c >= nt && !res_last && nt > 1) { /* terse: shorten the run */
            while (!blank(resp[e - 1])) e--;
            while (blank(resp[e - 1])) e--;
            goto shorter;
        }
        int64_t s0 = found ? sp[res_l].begin : 0, s1 = found ? sp[res_y].end : 0;
        while (s0 < s1 && blank(orig[s0])) s0++;
        if (found && 2 * res_c >= nt && s0 < s1) {
            memcpy(out + k, orig + s0, (size_t)(s1 - s0));
            k += (size_t)(s1 - s0);
        } else {
            memcpy(out + k, resp + at, e - at);
            k += e - at;
        }
        at = e;
    }
    out[k] = 0;
    free(ids);
    free(sp);
    return out;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) { return (uint32_t)(test_xorshift(&rng) % n); }

static void test_against_upstream(void) {
    static const char *vocab[] = {"the", "a", "cat", "dog", "sat", "on", "mat", "and", "ran"};
    static const char *blanks[] = {" ", " ", " ", "\n", "  ", "\t", " \n"};
    static const char *other[] = {"zz", "qq", "the.", "dog,"};
    char orig[4096], comp[4096], resp[4096];
    int same = 0, cases = 300, changed = 0;
    for (int t = 0; t < cases; t++) {
        int nw = 5 + (int)rnd(150), V = 2 + (int)rnd(8), nc = 0;
        const char *w[160];
        size_t ol = 0, cl = 0, rl = 0;
        for (int i = 0; i < nw; i++) {
            w[i] = vocab[rnd((uint32_t)V)];
            ol += (size_t)sprintf(orig + ol, "%s%s", i ? blanks[rnd(7)] : "", w[i]);
            if (rnd(10) < 6) cl += (size_t)sprintf(comp + cl, "%s%s", nc++ ? " " : "", w[i]);
        }
        /* the response: stretches of the compressed prompt's words and other words */
        const char *cw[160];
        int ncw = 0;
        for (char *p = comp; *p && ncw < 160;) {
            cw[ncw++] = p;
            p += strcspn(p, " ");
            if (*p) p++;
        }
        int at = ncw ? (int)rnd((uint32_t)ncw) : 0;
        for (int i = 0, m = 1 + (int)rnd(40); i < m; i++) {
            if (i) rl += (size_t)sprintf(resp + rl, "%s", blanks[rnd(7)]);
            if (ncw && rnd(10) < 8) {
                size_t len = strcspn(cw[at], " ");
                memcpy(resp + rl, cw[at], len);
                rl += len;
                at = rnd(6) ? (at + 1) % ncw : (int)rnd((uint32_t)ncw);
            } else {
                rl += (size_t)sprintf(resp + rl, "%s", other[rnd(4)]);
            }
        }
        resp[rl] = 0;
        char *want = naive_recover(orig, comp, resp), *got = recover_words(orig, comp, resp);
        changed += got && strcmp(got, resp) != 0;
        if (got && strcmp(got, want) == 0) same++;
        else if (same == t)
            fprintf(stderr, "case %d:\n orig '%s'\n comp '%s'\n resp '%s'\n want '%s'\n got  '%s'\n",
                    t, orig, comp, resp, want, got ? got : "(error)");
        free(want);
        free(got);
    }
    CHECK(same == cases, "%d of %d random cases as upstream's algorithm", same, cases);
    CHECK(changed > cases / 2, "only %d responses changed", changed);
    printf("  %d of %d random cases recovered as upstream's algorithm does (%d changed)\n",
           same, cases, changed);
}

/* ---------------------------------------------------------------------------------------- */
/* The default model's vocabulary (byte-level BPE: " quick" and "quick" differ)              */

static char *recover_vocab(const terse_vocab *v, const char *orig, size_t on, const char *comp,
                           size_t cn, const char *resp, size_t rn, double *secs) {
    char *out = NULL;
    size_t n = 0;
    double t0 = now();
    int rc = terse_compress_recover(v, orig, on, comp, cn, resp, rn, &out, &n);
    if (secs) *secs = now() - t0;
    CHECK(rc == 0, "terse_compress_recover -> %d: %s", rc, terse_last_error());
    return rc ? NULL : out;
}

static void test_vocab(void) {
    char path[4096];
    terse_vocab *v = NULL;
    if (terse_default_model_path(path, sizeof path) < 0 || terse_vocab_load(path, &v) != 0) {
        printf("  default model not found: vocabulary cases skipped\n");
        return;
    }
    const char *orig = "The quick brown fox jumps over the lazy dog. It was a sunny day in Paris.";
    const char *comp = "quick brown fox jumps lazy dog. sunny day Paris.";
    struct { const char *resp, *want; } cases[] = {
        {"fox jumps lazy dog. Yes", "fox jumps over the lazy dog. Yes"},      /* starts copied */
        {"It was a sunny day Paris.\n", "It was a sunny day in Paris.\n"},    /* before \n */
        {"Answer: jumps lazy dog.\n\n", "Answer: jumps over the lazy dog.\n\n"},
        {"quick brown fox", "quick brown fox"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = recover_vocab(v, orig, strlen(orig), comp, strlen(comp), cases[i].resp,
                                  strlen(cases[i].resp), NULL);
        CHECK(out && strcmp(out, cases[i].want) == 0, "'%s' -> '%s', want '%s'", cases[i].resp,
              out ? out : "(error)", cases[i].want);
        free(out);
    }
    /* the separator space inside the last token: " A" of "+ A" is not in the original, which
     * has "12A"; the span used to end at " +" and lose "A" */
    const char *o9 = "we bought 12 watermelons and 12 apples for $60, then we know that $60 = 12W + 12A";
    const char *c9 = "bought 12 wat apples 60 $60 = 12W + A";
    const char *r9[][2] = {{"$60 = 12W + A", "$60 = 12W + A"}, {"so = 12W + A.", "so = 12W + A."},
                           {"apples 60 $60 = 12W + A",
                            "apples for $60, then we know that $60 = 12W + A"}};
    for (size_t i = 0; i < sizeof r9 / sizeof *r9; i++) {
        char *out = recover_vocab(v, o9, strlen(o9), c9, strlen(c9), r9[i][0], strlen(r9[i][0]), NULL);
        CHECK(out && strcmp(out, r9[i][1]) == 0, "'%s' -> '%s', want '%s'", r9[i][0],
              out ? out : "(error)", r9[i][1]);
        free(out);
    }

    /* issue 9: 40 KB of repetitive text took 24-35 s (quadratic); print the time */
    size_t n = 40000;
    char *ab = malloc(n + 1), *per = malloc(n + 1), *gap = malloc(n + 1), *resp = malloc(n + 8);
    for (size_t i = 0; i < n; i++) ab[i] = "ab"[i % 2];
    ab[n] = 0;
    const char *unit = "The cat sat on the mat and the dog ran to the park. ";
    size_t ul = strlen(unit), gl = 0;
    for (size_t i = 0; i < n; i++) per[i] = unit[i % ul];
    per[n] = 0;
    for (const char *p = per; *p;) { /* every third word dropped */
        static int k;
        size_t wl = strcspn(p, " ");
        if (k++ % 3) {
            if (gl) gap[gl++] = ' ';
            memcpy(gap + gl, p, wl);
            gl += wl;
        }
        p += wl + (p[wl] == ' ');
    }
    gap[gl] = 0;
    double t1, t2, t3;
    char *o1 = recover_vocab(v, ab, n, ab, n, ab, n, &t1);
    CHECK(o1 && strcmp(o1, ab) == 0, "40 KB of 'abab...' recovered as itself");
    snprintf(resp, n + 8, "So %s", gap);
    char *o2 = recover_vocab(v, per, n, gap, gl, resp, strlen(resp), &t2);
    CHECK(o2 && strncmp(o2, "So ", 3) == 0 && strlen(o2) > gl, "periodic text with gaps");
    char *o3 = recover_vocab(v, per, n, per, n, per, n, &t3);
    CHECK(o3 && strcmp(o3, per) == 0, "40 KB periodic text recovered as itself");
    printf("  40 KB: 'abab...' %.3f s, periodic with every third word dropped %.3f s, "
           "periodic %.3f s\n", t1, t2, t3);
    free(o1);
    free(o2);
    free(o3);
    free(ab);
    free(per);
    free(gap);
    free(resp);
    terse_vocab_free(v);
}

int main(void) {
    test_defects();
    test_against_upstream();
    test_vocab();
    return test_summary("recover");
}
