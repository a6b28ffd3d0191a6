/* rouge.c - ROUGE-1, ROUGE-2 and ROUGE-L as Google's rouge-score package computes them
 * (google-research/google-research, rouge/rouge_scorer.py and rouge/tokenize.py):
 *
 *   tokens: lowercase; every run of characters outside [a-z0-9] becomes a space; split;
 *           with use_stemmer, words longer than 3 characters are Porter-stemmed;
 *   ROUGE-N: overlap = sum over target n-grams of min(count in target, count in prediction);
 *            precision = overlap / max(prediction n-grams, 1), recall = overlap / max(target
 *            n-grams, 1), F = 2PR / (P + R);
 *   ROUGE-L: LCS of the two token lists over their lengths (0 when either is empty).
 *
 * The stemmer is libstemmer's "porter" (Porter's original algorithm), while rouge-score uses
 * NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode; the two differ on a few words
 * (NLTK's irregular forms such as "dying" -> "die", and its "-alli"/"-fulli" rules), see
 * docs/eval/README.md for the measured disagreement. Lowercasing is ASCII (non-ASCII letters
 * are removed by the next rule anyway). Not here: ROUGE-Lsum, ROUGE-W, bootstrap aggregation.
 */
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* rouge-score's tokenize(): lowercase alphanumeric words, optionally stemmed */
static int rouge_tokens(const char *text, int use_stemmer, ev_words *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *s = (const uint8_t *)text;
    char word[256], stem[512];
    size_t i = 0;
    int rc = TERSE_OK;
    while (s[i] && !rc) {
        uint8_t c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum) { i++; continue; }
        size_t j = i;
        terse_buf w = {0};
        while (s[j]) {
            uint8_t d = s[j];
            if (d >= 'A' && d <= 'Z') d = (uint8_t)(d - 'A' + 'a');
            else if (!((d >= 'a' && d <= 'z') || (d >= '0' && d <= '9'))) break;
            terse_buf_put(&w, (const char *)&d, 1);
            j++;
        }
        if (w.err) { terse_buf_free(&w); rc = TERSE_ERR_NOMEM; break; }
        if (use_stemmer && w.n > 3 && w.n < sizeof word) {
            memcpy(word, w.s, w.n + 1);
            int k = ev_porter_stem(word, w.n, stem, sizeof stem);
            if (k < 0) rc = k;
            else ev_words_push(out, stem, (size_t)k);
        } else {
            ev_words_push(out, w.s, w.n);
        }
        terse_buf_free(&w);
        i = j;
    }
    if (!rc) rc = ev_words_done(out);
    if (rc) ev_words_free(out);
    return rc;
}

static terse_prf rouge_n(const int32_t *t, int32_t nt, const int32_t *p, int32_t np, int32_t n,
                         int *rc) {
    terse_prf r = {0, 0, 0};
    ev_grams gt, gp;
    memset(&gt, 0, sizeof gt);
    memset(&gp, 0, sizeof gp);
    if ((*rc = ev_grams_build(t, nt, n, &gt)) || (*rc = ev_grams_build(p, np, n, &gp))) {
        ev_grams_free(&gt);
        ev_grams_free(&gp);
        return r;
    }
    double overlap = (double)ev_grams_clipped(&gt, &gp, 1);
    r.p = overlap / (double)(gp.m > 1 ? gp.m : 1);
    r.r = overlap / (double)(gt.m > 1 ? gt.m : 1);
    r.f = ev_f1(r.p, r.r);
    ev_grams_free(&gt);
    ev_grams_free(&gp);
    return r;
}

/* length of the longest common subsequence, O(nt * np) time, O(np) memory */
static int64_t lcs_length(const int32_t *t, int32_t nt, const int32_t *p, int32_t np, int *rc) {
    int64_t *row = terse_calloc((size_t)np + 1, sizeof *row, "LCS row");
    if (!row) { *rc = TERSE_ERR_NOMEM; return 0; }
    for (int32_t i = 1; i <= nt; i++) {
        int64_t diag = 0; /* row[j-1] of the previous i */
        for (int32_t j = 1; j <= np; j++) {
            int64_t up = row[j];
            if (t[i - 1] == p[j - 1]) row[j] = diag + 1;
            else if (row[j - 1] > row[j]) row[j] = row[j - 1];
            diag = up;
        }
    }
    int64_t len = row[np];
    free(row);
    return len;
}

int terse_rouge_score(const char *target, const char *prediction, int use_stemmer,
                      terse_rouge *out) {
    if (!target || !prediction || !out)
        return terse_err(TERSE_ERR_INVALID, "terse_rouge_score: NULL argument");
    memset(out, 0, sizeof *out);
    ev_words wt, wp;
    int rc = rouge_tokens(target, use_stemmer, &wt);
    if (rc) return rc;
    if ((rc = rouge_tokens(prediction, use_stemmer, &wp))) { ev_words_free(&wt); return rc; }
    ev_words *lists[2] = {&wt, &wp};
    int32_t *ids[2];
    if (!(rc = ev_intern(lists, 2, ids))) {
        out->rouge1 = rouge_n(ids[0], wt.n, ids[1], wp.n, 1, &rc);
        if (!rc) out->rouge2 = rouge_n(ids[0], wt.n, ids[1], wp.n, 2, &rc);
        if (!rc && wt.n > 0 && wp.n > 0) {
            double lcs = (double)lcs_length(ids[0], wt.n, ids[1], wp.n, &rc);
            out->rougeL.p = lcs / wp.n;
            out->rougeL.r = lcs / wt.n;
            out->rougeL.f = ev_f1(out->rougeL.p, out->rougeL.r);
        }
        free(ids[0]);
        free(ids[1]);
    }
    ev_words_free(&wt);
    ev_words_free(&wp);
    return rc;
}
