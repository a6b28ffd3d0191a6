/* bleu.c - BLEU as sacreBLEU 2.x computes it (Post 2018, "A Call for Clarity in Reporting BLEU
 * Scores"): the 13a tokenizer (mteval-v13a's rules), clipped n-gram statistics against one or
 * more references, the closest reference length, and the four smoothing methods of
 * sacreBLEU's compute_bleu (exp, none, floor, add-k; Chen & Cherry 2014).
 *
 * The tokenizer is the four regular expressions of sacrebleu/tokenizers/tokenizer_re.py done
 * as byte scans; each scan reproduces Python's re.sub semantics (left to right,
 * non-overlapping matches), which the tests check on the examples of sacreBLEU's test suite.
 * Not here: the other tokenizers (intl, zh, ja-mecab, char), lowercasing, chrF, TER.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* ---------------------------------------------------------------------------------------- */
/* Tokenizer 13a                                                                             */

/* Replace every occurrence of pat in s (malloc'ed, NUL-terminated) by rep; returns the new
 * string (s freed) or NULL. */
static char *replace_all(char *s, const char *pat, const char *rep) {
    if (!s || !strstr(s, pat)) return s;
    terse_buf b = {0};
    size_t lp = strlen(pat);
    const char *p = s, *q;
    while ((q = strstr(p, pat))) {
        terse_buf_put(&b, p, (size_t)(q - p));
        terse_buf_puts(&b, rep);
        p = q + lp;
    }
    terse_buf_puts(&b, p);
    free(s);
    char *out;
    return terse_buf_take(&b, &out) ? NULL : out;
}

/* [{-~ [-` space-& (-+ :-@ /]: ASCII punctuation except ' , - . */
static bool punct_13a(uint8_t c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }
static bool dot_comma(uint8_t c) { return c == '.' || c == ','; }

/* Python's str.split() whitespace at s (ASCII and the Unicode spaces); returns its byte
 * length or 0. */
static size_t py_space(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c < 0x80) return 0;
    uint32_t cp;
    int k = terse_utf8_decode(s, n, &cp);
    if (k == 0) return 0;
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return (size_t)k;
    return 0;
}

int terse_bleu_tokenize_13a(const char *text, char **out) {
    if (!text || !out) return terse_err(TERSE_ERR_INVALID, "terse_bleu_tokenize_13a: NULL");
    *out = NULL;
    /* sacreBLEU strips trailing whitespace before tokenizing (_preprocess_segment) */
    size_t n = strlen(text);
    while (n > 0 && py_space((const uint8_t *)text + n - 1, 1)) n--;
    char *s = terse_malloc(n + 1, "13a line");
    if (!s) return TERSE_ERR_NOMEM;
    memcpy(s, text, n);
    s[n] = 0;
    s = replace_all(s, "<skipped>", "");
    s = replace_all(s, "-\n", "");
    s = replace_all(s, "\n", " ");
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");
    if (!s) return TERSE_ERR_NOMEM;

    /* pass 1: " " + line + " ", punctuation surrounded by spaces */
    terse_buf a = {0};
    terse_buf_put(&a, " ", 1);
    for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
        if (punct_13a(*p)) {
            char t[3] = {' ', (char)*p, ' '};
            terse_buf_put(&a, t, 3);
        } else {
            terse_buf_put(&a, (const char *)p, 1);
        }
    }
    terse_buf_put(&a, " ", 1);
    free(s);
    if (a.err) return terse_buf_take(&a, &s);

    /* pass 2: ([^0-9])([.,]) -> "\1 \2 " */
    terse_buf b = {0};
    for (size_t i = 0; i < a.n;) {
        if (i + 1 < a.n && !digit((uint8_t)a.s[i]) && dot_comma((uint8_t)a.s[i + 1])) {
            char t[4] = {a.s[i], ' ', a.s[i + 1], ' '};
            terse_buf_put(&b, t, 4);
            i += 2;
        } else {
            terse_buf_put(&b, a.s + i, 1);
            i++;
        }
    }
    terse_buf_free(&a);

    /* pass 3: ([.,])([^0-9]) -> " \1 \2" */
    for (size_t i = 0; i < b.n;) {
        if (i + 1 < b.n && dot_comma((uint8_t)b.s[i]) && !digit((uint8_t)b.s[i + 1])) {
            char t[4] = {' ', b.s[i], ' ', b.s[i + 1]};
            terse_buf_put(&a, t, 4);
            i += 2;
        } else {
            terse_buf_put(&a, b.s + i, 1);
            i++;
        }
    }
    terse_buf_free(&b);

    /* pass 4: ([0-9])(-) -> "\1 \2 " */
    for (size_t i = 0; i < a.n;) {
        if (i + 1 < a.n && digit((uint8_t)a.s[i]) && a.s[i + 1] == '-') {
            char t[4] = {a.s[i], ' ', '-', ' '};
            terse_buf_put(&b, t, 4);
            i += 2;
        } else {
            terse_buf_put(&b, a.s + i, 1);
            i++;
        }
    }
    terse_buf_free(&a);

    /* ' '.join(line.split()) */
    const uint8_t *u = (const uint8_t *)b.s;
    for (size_t i = 0; i < b.n;) {
        size_t k = py_space(u + i, b.n - i);
        if (k) { i += k; continue; }
        size_t j = i;
        while (j < b.n && !py_space(u + j, b.n - j)) j++;
        if (a.n) terse_buf_put(&a, " ", 1);
        terse_buf_put(&a, b.s + i, j - i);
        i = j;
    }
    if (b.err) a.err = b.err;
    terse_buf_free(&b);
    return terse_buf_take(&a, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Statistics                                                                                */

/* tokens of a 13a-tokenized line (split on single spaces) */
static int split_spaces(const char *tok, ev_words *w) {
    memset(w, 0, sizeof *w);
    const char *p = tok;
    while (*p) {
        const char *q = strchr(p, ' ');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n) ev_words_push(w, p, n);
        p += n + (q ? 1 : 0);
    }
    int rc = ev_words_done(w);
    if (rc) ev_words_free(w);
    return rc;
}

int terse_bleu_add(terse_bleu_stats *s, const char *hyp, const char *const *refs,
                   int32_t n_refs) {
    if (!s || !hyp || !refs || n_refs < 1)
        return terse_err(TERSE_ERR_INVALID, "terse_bleu_add: NULL argument or n_refs %d", n_refs);
    for (int32_t r = 0; r < n_refs; r++)
        if (!refs[r]) return terse_err(TERSE_ERR_INVALID, "terse_bleu_add: reference %d NULL", r);

    int32_t k = n_refs + 1, rc = TERSE_OK;
    ev_words *w = terse_calloc((size_t)k, sizeof *w, "BLEU words");
    ev_words **lists = terse_calloc((size_t)k, sizeof *lists, "BLEU lists");
    int32_t **ids = terse_calloc((size_t)k, sizeof *ids, "BLEU ids");
    ev_grams *grams = terse_calloc((size_t)k, sizeof *grams, "BLEU n-grams");
    if (!w || !lists || !ids || !grams) { rc = TERSE_ERR_NOMEM; goto done; }
    for (int32_t i = 0; i < k && !rc; i++) {
        char *tok;
        rc = terse_bleu_tokenize_13a(i == 0 ? hyp : refs[i - 1], &tok);
        if (rc) break;
        rc = split_spaces(tok, &w[i]);
        free(tok);
        lists[i] = &w[i];
    }
    if (rc || (rc = ev_intern(lists, k, ids))) goto done;

    /* the closest reference length, ties to the shorter */
    int64_t hyp_len = w[0].n, closest = -1, diff = -1;
    for (int32_t r = 1; r < k; r++) {
        int64_t len = w[r].n, d = len > hyp_len ? len - hyp_len : hyp_len - len;
        if (diff < 0 || d < diff) diff = d, closest = len;
        else if (d == diff && len < closest) closest = len;
    }
    s->sys_len += (double)hyp_len;
    s->ref_len += (double)closest;
    for (int32_t n = 1; n <= 4 && !rc; n++) {
        for (int32_t i = 0; i < k && !rc; i++) rc = ev_grams_build(ids[i], w[i].n, n, &grams[i]);
        if (!rc) {
            s->correct[n - 1] += (double)ev_grams_clipped(&grams[0], grams + 1, n_refs);
            s->total[n - 1] += (double)grams[0].m;
        }
        for (int32_t i = 0; i < k; i++) ev_grams_free(&grams[i]);
    }
done:
    for (int32_t i = 0; w && i < k; i++) ev_words_free(&w[i]);
    for (int32_t i = 0; ids && i < k; i++) free(ids[i]);
    free(w);
    free(lists);
    free(ids);
    free(grams);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Score                                                                                     */

static double my_log(double x) { return x == 0 ? -9999999999.0 : log(x); }

double terse_bleu_score(const terse_bleu_stats *s, terse_bleu_smooth smooth, double value,
                        int effective_order) {
    if (!s) return 0.0;
    if (value < 0) value = smooth == TERSE_BLEU_SMOOTH_FLOOR ? 0.1 : 1.0;
    double bp = 1.0;
    if (s->sys_len < s->ref_len) bp = s->sys_len > 0 ? exp(1.0 - s->ref_len / s->sys_len) : 0.0;
    double correct[4], total[4], prec[4] = {0, 0, 0, 0};
    bool any = false;
    for (int n = 0; n < 4; n++) {
        correct[n] = s->correct[n];
        total[n] = s->total[n];
        any |= correct[n] != 0;
    }
    if (!any) return 0.0; /* sacreBLEU's early stop (issue #141) */
    double smooth_mteval = 1.0;
    int eff_order = 4;
    for (int n = 1; n <= 4; n++) {
        if (smooth == TERSE_BLEU_SMOOTH_ADD_K && n > 1) {
            correct[n - 1] += value;
            total[n - 1] += value;
        }
        if (total[n - 1] == 0) break;
        if (effective_order) eff_order = n;
        if (correct[n - 1] == 0) {
            if (smooth == TERSE_BLEU_SMOOTH_EXP) {
                smooth_mteval *= 2;
                prec[n - 1] = 100.0 / (smooth_mteval * total[n - 1]);
            } else if (smooth == TERSE_BLEU_SMOOTH_FLOOR) {
                prec[n - 1] = 100.0 * value / total[n - 1];
            }
        } else {
            prec[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
        }
    }
    double sum = 0;
    for (int n = 0; n < eff_order; n++) sum += my_log(prec[n]);
    return bp * exp(sum / eff_order);
}

int terse_bleu_sentence(const char *hyp, const char *const *refs, int32_t n_refs, double *out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_bleu_sentence: NULL out");
    terse_bleu_stats s;
    memset(&s, 0, sizeof s);
    int rc = terse_bleu_add(&s, hyp, refs, n_refs);
    if (rc) return rc;
    *out = terse_bleu_score(&s, TERSE_BLEU_SMOOTH_EXP, -1, 1);
    return TERSE_OK;
}
