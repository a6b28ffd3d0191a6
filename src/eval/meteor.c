/* meteor.c - METEOR as NLTK 3.8 computes it (nltk/translate/meteor_score.py,
 * single_meteor_score; Banerjee & Lavie 2005 with NLTK's defaults alpha 0.9, beta 3,
 * gamma 0.5):
 *
 *   1. lowercase every word of hypothesis and reference;
 *   2. three matching stages, each over the words still unmatched: exact, then Porter stems,
 *      then WordNet synonyms (a hypothesis word matches a reference word found among the
 *      lemma names of the hypothesis word's synsets). In each stage the hypothesis is walked
 *      from its last word to its first, and each word takes the LAST unmatched reference word
 *      that qualifies. As in NLTK, the synonym stage sees the stemmed words of stage two.
 *   3. P = m / |hyp|, R = m / |ref|, Fmean = PR / (alpha P + (1 - alpha) R); chunks = runs of
 *      matches adjacent in both texts (matches ordered by hypothesis position);
 *      penalty = gamma (chunks / m)^beta; score = (1 - penalty) Fmean; 0 when m = 0.
 *
 * Differences from NLTK: the stemmer is libstemmer's Porter (original algorithm) where NLTK
 * uses its NLTK_EXTENSIONS variant, and lowercasing covers ASCII, Latin-1, Greek and basic
 * Cyrillic rather than all of Unicode. Not here: multiple references (take the max, as
 * NLTK's meteor_score does), METEOR 1.5's paraphrase tables and parameter sets.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* ---------------------------------------------------------------------------------------- */
/* Lowercasing                                                                               */

static uint32_t lower_cp(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;        /* Latin-1 */
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;       /* Greek */
    if (c >= 0x410 && c <= 0x42F) return c + 32;                     /* Cyrillic */
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static void push_lower(ev_words *out, const char *w) {
    terse_buf b = {0};
    const uint8_t *s = (const uint8_t *)w;
    size_t n = strlen(w);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = terse_utf8_decode(s + i, n - i, &cp);
        if (k == 0) { terse_buf_put(&b, w + i, 1); i++; continue; }
        char enc[4];
        int m = terse_utf8_encode(lower_cp(cp), enc);
        terse_buf_put(&b, enc, (size_t)m);
        i += (size_t)k;
    }
    ev_words_push(out, b.s ? b.s : "", b.n);
    if (b.err) out->arena.err = b.err;
    terse_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------- */
/* Alignment                                                                                 */

/* the words still unmatched: original positions and current forms */
typedef struct {
    int32_t *pos;
    const char **w;
    int32_t n;
} enum_list;

typedef struct {
    int32_t h, r;
} match;

static void enum_remove(enum_list *e, int32_t i) {
    memmove(e->pos + i, e->pos + i + 1, (size_t)(e->n - i - 1) * sizeof *e->pos);
    memmove(e->w + i, e->w + i + 1, (size_t)(e->n - i - 1) * sizeof *e->w);
    e->n--;
}

/* NLTK's _match_enums: hypothesis right to left, each takes the last equal reference word */
static void match_exact(enum_list *h, enum_list *r, match *m, int32_t *nm) {
    for (int32_t i = h->n - 1; i >= 0; i--) {
        for (int32_t j = r->n - 1; j >= 0; j--) {
            if (strcmp(h->w[i], r->w[j])) continue;
            m[(*nm)++] = (match){h->pos[i], r->pos[j]};
            enum_remove(h, i);
            enum_remove(r, j);
            break;
        }
    }
}

/* replace every word of e by its Porter stem (stored in store) */
static int stem_all(enum_list *e, ev_words *store) {
    memset(store, 0, sizeof *store);
    char stem[1024];
    for (int32_t i = 0; i < e->n; i++) {
        size_t n = strlen(e->w[i]);
        int k = n < 512 ? ev_porter_stem(e->w[i], n, stem, sizeof stem) : -1;
        if (k == TERSE_ERR_NOMEM) { ev_words_free(store); return k; }
        if (k < 0) ev_words_push(store, e->w[i], n); /* absurdly long word: left as is */
        else ev_words_push(store, stem, (size_t)k);
    }
    int rc = ev_words_done(store);
    if (rc) { ev_words_free(store); return rc; }
    for (int32_t i = 0; i < e->n; i++) e->w[i] = store->w[i];
    return TERSE_OK;
}

static int match_synonyms(const terse_wordnet *wn, enum_list *h, enum_list *r, match *m,
                          int32_t *nm) {
    for (int32_t i = h->n - 1; i >= 0; i--) {
        ev_words syn;
        int rc = ev_wordnet_synonyms(wn, h->w[i], &syn);
        if (rc) return rc;
        for (int32_t j = r->n - 1; j >= 0; j--) {
            bool found = false;
            for (int32_t k = 0; k < syn.n && !found; k++) found = !strcmp(syn.w[k], r->w[j]);
            if (!found) continue;
            m[(*nm)++] = (match){h->pos[i], r->pos[j]};
            enum_remove(h, i);
            enum_remove(r, j);
            break;
        }
        ev_words_free(&syn);
    }
    return TERSE_OK;
}

static int by_hyp(const void *a, const void *b) {
    const match *x = a, *y = b;
    return (x->h > y->h) - (x->h < y->h);
}

int terse_meteor_words(const terse_wordnet *wn, const char *const *ref, int32_t n_ref,
                       const char *const *hyp, int32_t n_hyp, double *out) {
    if (!out || n_ref < 0 || n_hyp < 0 || (n_ref && !ref) || (n_hyp && !hyp))
        return terse_err(TERSE_ERR_INVALID, "terse_meteor_words: bad arguments");
    *out = 0.0;
    if (n_ref == 0 || n_hyp == 0) return TERSE_OK;
    ev_words lh, lr, sh, sr;
    memset(&lh, 0, sizeof lh);
    memset(&lr, 0, sizeof lr);
    memset(&sh, 0, sizeof sh);
    memset(&sr, 0, sizeof sr);
    for (int32_t i = 0; i < n_hyp; i++) push_lower(&lh, hyp[i] ? hyp[i] : "");
    for (int32_t i = 0; i < n_ref; i++) push_lower(&lr, ref[i] ? ref[i] : "");
    enum_list h = {0}, r = {0};
    int32_t nm = 0;
    int32_t small = n_hyp < n_ref ? n_hyp : n_ref;
    match *m = terse_malloc((size_t)small * sizeof *m, "METEOR matches");
    h.pos = terse_malloc((size_t)n_hyp * sizeof *h.pos, "METEOR");
    h.w = terse_malloc((size_t)n_hyp * sizeof *h.w, "METEOR");
    r.pos = terse_malloc((size_t)n_ref * sizeof *r.pos, "METEOR");
    r.w = terse_malloc((size_t)n_ref * sizeof *r.w, "METEOR");
    int rc = (!m || !h.pos || !h.w || !r.pos || !r.w) ? TERSE_ERR_NOMEM : TERSE_OK;
    if (!rc) rc = ev_words_done(&lh);
    if (!rc) rc = ev_words_done(&lr);
    if (rc) goto done;
    for (int32_t i = 0; i < n_hyp; i++) h.pos[i] = i, h.w[i] = lh.w[i];
    for (int32_t i = 0; i < n_ref; i++) r.pos[i] = i, r.w[i] = lr.w[i];
    h.n = n_hyp;
    r.n = n_ref;

    match_exact(&h, &r, m, &nm);
    if ((rc = stem_all(&h, &sh)) || (rc = stem_all(&r, &sr))) goto done;
    match_exact(&h, &r, m, &nm);
    if (wn && (rc = match_synonyms(wn, &h, &r, m, &nm))) goto done;

    if (nm > 0) {
        qsort(m, (size_t)nm, sizeof *m, by_hyp);
        int32_t chunks = 1;
        for (int32_t i = 0; i + 1 < nm; i++)
            if (!(m[i + 1].h == m[i].h + 1 && m[i + 1].r == m[i].r + 1)) chunks++;
        double P = (double)nm / n_hyp, R = (double)nm / n_ref;
        const double alpha = 0.9, beta = 3.0, gamma = 0.5;
        double fmean = P * R / (alpha * P + (1 - alpha) * R);
        double frag = (double)chunks / nm;
        *out = (1.0 - gamma * pow(frag, beta)) * fmean;
    }
done:
    free(m);
    free(h.pos);
    free(h.w);
    free(r.pos);
    free(r.w);
    ev_words_free(&lh);
    ev_words_free(&lr);
    ev_words_free(&sh);
    ev_words_free(&sr);
    return rc;
}

int terse_meteor(const terse_wordnet *wn, const char *reference, const char *hypothesis,
                 double *out) {
    if (!reference || !hypothesis || !out)
        return terse_err(TERSE_ERR_INVALID, "terse_meteor: NULL argument");
    ev_words wr, wh;
    int rc = ev_split_words(reference, &wr);
    if (rc) return rc;
    if ((rc = ev_split_words(hypothesis, &wh))) { ev_words_free(&wr); return rc; }
    rc = terse_meteor_words(wn, (const char *const *)wr.w, wr.n, (const char *const *)wh.w, wh.n,
                            out);
    ev_words_free(&wr);
    ev_words_free(&wh);
    return rc;
}
