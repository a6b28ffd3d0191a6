/* selective.c - Selective Context (Li et al., EMNLP 2023): drop the lexical units (tokens,
 * phrases or sentences) that carry the least self-information.
 *
 * Default mode (sc_default): layout kept (no whitespace collapse); contexts split into
 * sentences by text_sentences (lines kept), each sentence scored alone after BOS as the
 * reference does (short sentences packed into one masked pass; a sentence longer than the
 * context scored in windows with carried-over context); units from text_words / text_phrases /
 * text_sentences snapped to token boundaries by byte offsets; unit score = mean surprisal of
 * its tokens; the budget is met in tokens by cmp_fit_budget (highest-scoring units first).
 * Segments tagged with their own rate keep their best units up to rate x their tokens.
 *
 * Compat mode (sc_compat): the reference pipeline, quirks included: whitespace collapse,
 * the reference sentence regex, each sentence tokenized and scored alone after BOS, units
 * aligned by character lengths (sc_unit_info), the count percentile threshold with numpy's
 * linear interpolation over reduce_ratio = 1 - rate, and the reference's joins (sentences with
 * " " over all sentences, dropped ones as "", phrases and tokens with "", so the token level
 * glues sentences together). Phrases come
 * from text_phrases instead of spaCy (see text.h). One quirk is not reproduced: a sentence
 * longer than the context crashes the reference (issue #23); here it is scored in windows and
 * the result carries a warning.
 *
 * Quirks reproduced in compat mode (each pinned by a test, named in its comment):
 * whitespace-collapse; the reference splitter (bang-no-split, the \w\.\w. and [A-Z][a-z]\.
 * guards, "Mrs." splitting, CJK 。 not splitting: test_text_segment); per-sentence scoring after
 * BOS with no cross-sentence context; token-level-glues-sentences; sentence-join-space (a
 * dropped sentence still leaves its " ", so gaps show as double spaces);
 * phrase-leading-space; mean-not-sum; the character alignment (straddle-into, split-by-k,
 * space-skip, unscored unit NaN); nan-kept; strict-less-than; count-percentile over units with
 * numpy's linear interpolation (and its lerp form); tags-outside-dropped. Not reproduced: the
 * crash past the context (windows + warning instead) and spaCy's phrases (text_phrases
 * instead). A token that splits a UTF-8 character comes out as U+FFFD, as the reference's
 * per-token decode() gives it.
 * Protected spans (not in the reference) keep every compat unit they touch.
 * The compat budget is the reference's: reduce_ratio = 1 - rate (target -> rate = target /
 * prompt tokens), a fraction of units, so the token count achieved is whatever follows.
 * Not here: segmentation (src/text), scoring machinery (score.c), budget fitting (budget.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "compress/selective.h"
#include "text/text.h"

/* ---------------------------------------------------------------------------------------- */
/* Model-free pieces (selective.h)                                                           */

static double pairwise(const double *a, int64_t n) {
    if (n < 8) {
        double r = 0.0;
        for (int64_t i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++) r[k] = a[k];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

double sc_np_mean(const float *v, int64_t n) {
    if (n <= 0) return NAN;
    double *d = malloc((size_t)n * sizeof *d);
    if (!d) return NAN;
    for (int64_t i = 0; i < n; i++) d[i] = (double)v[i];
    double s = d[0] + pairwise(d + 1, n - 1);
    free(d);
    return s / (double)n;
}

int64_t sc_char_len(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; c++) {
        int v;
        i += text_utf8_step(s, n, i, &v);
    }
    return c;
}

int sc_beautify(const char *s, size_t n, char **out, size_t *out_n, int64_t **map) {
    char *o = terse_malloc(n + 1, "selective: beautified text");
    int64_t *m = terse_malloc((n + 1) * sizeof *m, "selective: offset map");
    if (!o || !m) {
        free(o);
        free(m);
        return TERSE_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = terse_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (l > 0 && text_is_space(cp)) {
            m[k] = (int64_t)i;
            o[k++] = ' ';
            while (i < n && (l = terse_utf8_decode((const uint8_t *)s + i, n - i, &cp)) > 0 && text_is_space(cp))
                i += (size_t)l;
            continue;
        }
        if (l <= 0) l = 1;
        for (int q = 0; q < l; q++) {
            m[k] = (int64_t)(i + (size_t)q);
            o[k++] = s[i + (size_t)q];
        }
        i += (size_t)l;
    }
    o[k] = 0;
    m[k] = (int64_t)n;
    *out = o;
    *out_n = k;
    *map = m;
    return TERSE_OK;
}

int sc_unit_info(const int64_t *tok_len, const bool *tok_space, const float *info, int64_t nt,
                 const int64_t *unit_len, int64_t nu, double *unit_score) {
    /* values in push order: (unit, value) pairs */
    size_t cap = (size_t)(nt + nu + 1) * 2;
    int64_t *pu = terse_malloc(cap * sizeof *pu, "selective: unit info");
    float *pv = terse_malloc(cap * sizeof *pv, "selective: unit info");
    if (!pu || !pv) {
        free(pu);
        free(pv);
        return TERSE_ERR_NOMEM;
    }
    size_t np_ = 0;
#define PUSH(u, v)                                                                              \
    do {                                                                                        \
        if (np_ == cap) {                                                                       \
            cap *= 2;                                                                           \
            int64_t *u2 = terse_reallocarray(pu, cap, sizeof *pu, "selective: unit info");      \
            float *v2 = u2 ? terse_reallocarray(pv, cap, sizeof *pv, "selective: unit info") : NULL; \
            if (!u2 || !v2) { free(u2 ? u2 : pu); if (!v2 && u2) free(pv); return TERSE_ERR_NOMEM; } \
            pu = u2; pv = v2;                                                                   \
        }                                                                                       \
        pu[np_] = (u); pv[np_] = (v); np_++;                                                    \
    } while (0)
    int64_t cur = 0, pos = 0;
    for (int64_t t = 0; t < nt && cur < nu; t++) {
        pos += tok_len[t];
        if (pos == unit_len[cur]) {
            PUSH(cur, info[t]);
            pos -= unit_len[cur];
            cur++;
        } else if (pos > unit_len[cur]) {
            int64_t counter = 1;
            pos -= unit_len[cur];
            cur++;
            while (cur < nu && pos >= unit_len[cur]) {
                counter++;
                pos -= unit_len[cur];
                cur++;
            }
            float partial = (float)((double)info[t] / (double)counter);
            for (int64_t k = 0; k < counter; k++) PUSH(cur - 1 - k, partial);
        } else {
            if (tok_space[t]) continue;
            PUSH(cur, info[t]);
        }
    }
#undef PUSH
    /* per-unit means in push order */
    float *vals = terse_malloc((np_ + 1) * sizeof *vals, "selective: unit values");
    if (!vals) {
        free(pu);
        free(pv);
        return TERSE_ERR_NOMEM;
    }
    int64_t *cnt = terse_calloc((size_t)nu + 1, sizeof *cnt, "selective: unit counts");
    int64_t *start = terse_calloc((size_t)nu + 1, sizeof *start, "selective: unit starts");
    if (!cnt || !start) {
        free(pu); free(pv); free(vals); free(cnt); free(start);
        return TERSE_ERR_NOMEM;
    }
    for (size_t i = 0; i < np_; i++) cnt[pu[i]]++;
    for (int64_t u = 1; u <= nu; u++) start[u] = start[u - 1] + cnt[u - 1];
    memset(cnt, 0, ((size_t)nu + 1) * sizeof *cnt);
    for (size_t i = 0; i < np_; i++) vals[start[pu[i]] + cnt[pu[i]]++] = pv[i];
    for (int64_t u = 0; u < nu; u++) unit_score[u] = sc_np_mean(vals + start[u], cnt[u]);
    free(pu);
    free(pv);
    free(vals);
    free(cnt);
    free(start);
    return TERSE_OK;
}

double sc_threshold(const double *score, int64_t n, double reduce_ratio, uint8_t *keep) {
    double thr = cmp_percentile(score, n, reduce_ratio * 100.0);
    for (int64_t i = 0; i < n; i++) keep[i] = !(score[i] < thr);
    return thr;
}

/* ---------------------------------------------------------------------------------------- */
/* Default mode                                                                              */

/* Unit spans (bytes relative to segment g) -> token boundaries within g's tokens: unit k
 * starts at the first token that begins at or after its first byte. Writes the boundaries
 * (strictly increasing, first = g->tok0, last = g->tok1) to bnd; returns their count. */
static int64_t snap(const cmp_job *j, const cmp_segment *g, const terse_span *u, int64_t nu,
                    int64_t *bnd) {
    int64_t nb = 0, t = g->tok0;
    bnd[nb++] = g->tok0;
    for (int64_t k = 1; k < nu; k++) {
        int64_t at = g->begin + u[k].begin;
        while (t < g->tok1 && j->tok.spans[t].begin < at) t++;
        if (t >= g->tok1) break;
        if (t > bnd[nb - 1]) bnd[nb++] = t;
    }
    if (g->tok1 > bnd[nb - 1]) bnd[nb++] = g->tok1;
    else if (nb == 1) bnd[nb++] = g->tok1; /* empty segment: one empty range */
    return nb;
}

typedef int64_t (*segmenter)(const char *, size_t, terse_span **);

/* Token ranges of the units of segment g at the given level, appended to a growing list. */
static int segment_units(const cmp_job *j, const cmp_segment *g, segmenter seg, int64_t **bnd,
                         int64_t *nb) {
    *bnd = NULL;
    *nb = 0;
    int64_t nt = g->tok1 - g->tok0;
    if (nt <= 0) return TERSE_OK;
    int64_t *b = terse_malloc((size_t)(nt + 2) * sizeof *b, "selective: unit bounds");
    if (!b) return TERSE_ERR_NOMEM;
    if (!seg) { /* token level: atoms (a character, a line end, a number stay whole) */
        int64_t k = 0;
        for (int64_t t = g->tok0; t < g->tok1; t = cmp_atom_end(j, t)) b[k++] = t;
        b[k++] = g->tok1;
        *bnd = b;
        *nb = k;
        return TERSE_OK;
    }
    terse_span *u;
    int64_t nu = seg(j->text + g->begin, (size_t)(g->end - g->begin), &u);
    if (nu < 0) {
        free(b);
        return (int)nu;
    }
    *nb = snap(j, g, u, nu > 0 ? nu : 1, b);
    free(u);
    int64_t k = 1; /* no boundary inside an atom */
    for (int64_t i = 1; i < *nb; i++)
        if (i == *nb - 1 || !j->tok.glue[b[i]]) b[k++] = b[i];
    *nb = k;
    *bnd = b;
    return TERSE_OK;
}

/* Does unit x rank before unit y? Higher key first, ties by position. */
static bool ranks_before(const double *key, int64_t x, int64_t y) {
    if (key[x] != key[y]) return key[x] > key[y];
    return x < y;
}

/* order = unit indices by rank (a bottom-up merge sort: stable, no global state): higher score
 * first, NaN (unscored) first as the reference keeps NaN units, punctuation held back behind
 * its words (cmp_cap_punct). */
static int64_t *rank(const cmp_job *j, const cmp_unit *units, int64_t n) {
    double *u = terse_malloc((size_t)(n > 0 ? n : 1) * sizeof *u, "selective: ranking");
    if (!u) return NULL;
    for (int64_t i = 0; i < n; i++) u[i] = isnan(units[i].score) ? DBL_MAX : units[i].score;
    cmp_cap_punct(j, units, n, u);
    size_t sz = (size_t)(n > 0 ? n : 1) * sizeof(int64_t);
    int64_t *a = terse_malloc(sz, "selective: ranking"), *b = terse_malloc(sz, "selective: ranking");
    if (!a || !b) {
        free(a);
        free(b);
        free(u);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) a[i] = i;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, k = mid, o = lo;
            while (i < mid && k < hi) b[o++] = ranks_before(u, a[k], a[i]) ? a[k++] : a[i++];
            while (i < mid) b[o++] = a[i++];
            while (k < hi) b[o++] = a[k++];
        }
        int64_t *t = a;
        a = b;
        b = t;
    }
    free(b);
    free(u);
    return a;
}

static int sc_default(cmp_job *j) {
    segmenter unit_seg = j->p.unit == TERSE_UNIT_TOKEN ? NULL
                         : j->p.unit == TERSE_UNIT_PHRASE ? text_phrases : text_sentences;
    int rc = TERSE_OK;
    /* 1. sentences (scoring ranges) and units of every compressible segment */
    int64_t ns = 0, ns_cap = 0, nu = 0, nu_cap = 0;
    int64_t *sb = NULL, *se = NULL;
    cmp_unit *units = NULL;
    int32_t *unit_seg_of = NULL;
    for (int32_t s = 0; s < j->n_segs && !rc; s++) {
        const cmp_segment *g = &j->segs[s];
        if (!g->compress || g->tok1 <= g->tok0) continue;
        int64_t *bs, nbs, *bu, nbu;
        if ((rc = segment_units(j, g, text_sentences, &bs, &nbs))) break;
        if ((rc = segment_units(j, g, unit_seg, &bu, &nbu))) {
            free(bs);
            break;
        }
        if (ns + nbs > ns_cap) {
            ns_cap = 2 * (ns + nbs);
            int64_t *a = terse_reallocarray(sb, (size_t)ns_cap, sizeof *a, "selective: sentences");
            int64_t *c = a ? terse_reallocarray(se, (size_t)ns_cap, sizeof *c, "selective: sentences") : NULL;
            if (a) sb = a;
            if (c) se = c;
            if (!a || !c) rc = TERSE_ERR_NOMEM;
        }
        if (!rc && nu + nbu > nu_cap) {
            nu_cap = 2 * (nu + nbu);
            cmp_unit *a = terse_reallocarray(units, (size_t)nu_cap, sizeof *a, "selective: units");
            int32_t *c = a ? terse_reallocarray(unit_seg_of, (size_t)nu_cap, sizeof *c, "selective: units") : NULL;
            if (a) units = a;
            if (c) unit_seg_of = c;
            if (!a || !c) rc = TERSE_ERR_NOMEM;
        }
        for (int64_t k = 0; !rc && k + 1 < nbs; k++) {
            sb[ns] = bs[k];
            se[ns++] = bs[k + 1];
        }
        for (int64_t k = 0; !rc && k + 1 < nbu; k++) {
            int64_t a = bu[k], e = bu[k + 1];
            if (j->p.keep_layout) { /* line ends are the gaps' business (cmp_render) */
                while (a < e && (j->tok.flags[a] & CMP_LAYOUT)) a++;
                while (e > a && (j->tok.flags[e - 1] & CMP_LAYOUT)) e--;
            }
            if (a == e) continue;
            units[nu].tok0 = a;
            units[nu].tok1 = e;
            units[nu].score = NAN;
            unit_seg_of[nu++] = s;
        }
        free(bs);
        free(bu);
    }
    /* 2. score every sentence alone after BOS */
    if (!rc) {
        j->total = 0;
        for (int64_t k = 0; k < ns; k++) j->total += se[k] - sb[k];
        rc = cmp_score_packed(j, j->tok.ids, sb, se, ns, j->tok.score);
    }
    /* 3. unit scores: mean token surprisal */
    for (int64_t k = 0; !rc && k < nu; k++) /* tokens: the atom's sum (a split character's
                                                 information is that of its tokens together) */
        units[k].score = unit_seg == NULL
                             ? (double)sc_np_mean(j->tok.score + units[k].tok0, units[k].tok1 - units[k].tok0) *
                                   (double)(units[k].tok1 - units[k].tok0)
                             : sc_np_mean(j->tok.score + units[k].tok0, units[k].tok1 - units[k].tok0);
    /* 4. segments with their own rate: best units up to rate x tokens */
    int64_t tagged_units = 0, tagged_kept = 0, nfree = 0;
    int64_t *order = NULL;
    if (!rc) order = rank(j, units, nu);
    if (!rc && !order) rc = TERSE_ERR_NOMEM;
    for (int32_t s = 0; !rc && s < j->n_segs; s++) {
        const cmp_segment *g = &j->segs[s];
        if (!g->compress || g->rate < 0) continue;
        int64_t quota = (int64_t)floor(g->rate * (double)(g->tok1 - g->tok0)), used = 0;
        for (int64_t i = 0; i < nu; i++) {
            const cmp_unit *u = &units[order[i]];
            if (unit_seg_of[order[i]] != s) continue;
            tagged_units++;
            int64_t l = u->tok1 - u->tok0;
            if (used + l > quota) continue;
            used += l;
            tagged_kept++;
            for (int64_t t = u->tok0; t < u->tok1; t++) j->tok.flags[t] |= CMP_KEEP;
        }
    }
    /* 5. the rest against the global budget */
    if (!rc) {
        for (int64_t i = 0; i < nu; i++)
            if (j->segs[unit_seg_of[order[i]]].rate < 0) order[nfree++] = order[i];
        rc = cmp_fit_budget(j, units, nfree, order);
        j->n_units += tagged_units;
        j->n_units_kept += tagged_kept;
    }
    free(order);
    free(sb);
    free(se);
    free(units);
    free(unit_seg_of);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Compat mode                                                                               */

/* Append s[0..n) as the reference hands a unit over: decoded with errors="replace" (each
 * token of the token level is decoded alone, so a character split over two tokens gives
 * U+FFFD for each part; phrases and sentences come from the text and are whole). */
static int sb_add_decoded(terse_buf *b, const char *s, size_t n) {
    if (!text_utf8_invalid(s, n)) return terse_buf_put(b, s, n);
    char *r = terse_malloc(3 * n + 1, "selective: decoded unit");
    if (!r) return TERSE_ERR_NOMEM;
    int rc = terse_buf_put(b, r, (size_t)text_utf8_replace(s, n, r));
    free(r);
    return rc;
}

/* Mark j->tok tokens that overlap original bytes [a, b) (score and/or keep), for display
 * (the reference tokenizes the whitespace-collapsed sentences, so its tokens need not start
 * where the prompt's do: " They" after ". " is "They" in a sentence of its own). */
static void mark_orig(cmp_job *j, int64_t a, int64_t b, float score, bool set_score, bool keep) {
    int64_t lo = 0, hi = j->tok.n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (j->tok.spans[mid].end > a) hi = mid;
        else lo = mid + 1;
    }
    for (int64_t t = lo; t < j->tok.n && j->tok.spans[t].begin < b; t++) {
        if (set_score && isnan(j->tok.score[t])) j->tok.score[t] = score;
        if (keep) j->tok.flags[t] |= CMP_KEEP;
    }
}

/* Does any protected token of j->tok overlap original bytes [a, b)? */
static bool any_protected(const cmp_job *j, int64_t a, int64_t b) {
    int64_t lo = 0, hi = j->tok.n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (j->tok.spans[mid].end > a) hi = mid;
        else lo = mid + 1;
    }
    for (int64_t t = lo; t < j->tok.n && j->tok.spans[t].begin < b; t++)
        if (j->tok.flags[t] & CMP_PROTECT) return true;
    return false;
}

/* One call of the reference on segment text [g->begin, g->end), appended to out. */
static int compat_segment(cmp_job *j, const cmp_segment *g, double reduce, terse_buf *out) {
    const char *src = j->text + g->begin;
    size_t n = (size_t)(g->end - g->begin);
    char *bt = NULL;
    size_t bn = 0;
    int64_t *map = NULL;
    terse_span *sent = NULL;
    int32_t *ids = NULL;
    terse_span *sp = NULL;
    int64_t *sb = NULL, *se = NULL;
    float *sc = NULL;
    double *us = NULL;
    uint8_t *keep = NULL;
    terse_span *ut = NULL; /* unit byte spans in bt */
    bool *space_prefix = NULL;
    int64_t nu = 0;
    int rc = sc_beautify(src, n, &bt, &bn, &map);
    int64_t nsent = rc ? 0 : text_sentences_ref(bt, bn, &sent);
    if (nsent < 0) rc = (int)nsent;
    /* tokenize every sentence alone */
    int64_t cap = (int64_t)bn + nsent + 1, nt = 0;
    if (!rc) {
        ids = terse_malloc((size_t)cap * sizeof *ids, "selective: ids");
        sp = terse_malloc((size_t)cap * sizeof *sp, "selective: spans");
        sb = terse_malloc((size_t)(nsent + 1) * sizeof *sb, "selective: sentences");
        se = terse_malloc((size_t)(nsent + 1) * sizeof *se, "selective: sentences");
        sc = terse_malloc((size_t)cap * sizeof *sc, "selective: scores");
        if (!ids || !sp || !sb || !se || !sc) rc = TERSE_ERR_NOMEM;
    }
    for (int64_t s = 0; !rc && s < nsent; s++) {
        int64_t k = terse_tokenize(j->vocab, bt + sent[s].begin, (size_t)(sent[s].end - sent[s].begin), 0,
                                   ids + nt, sp + nt, cap - nt);
        if (k < 0) {
            rc = (int)k;
            break;
        }
        for (int64_t t = nt; t < nt + k; t++) {
            sp[t].begin += sent[s].begin;
            sp[t].end += sent[s].begin;
        }
        sb[s] = nt;
        nt += k;
        se[s] = nt;
        if (k + 1 > j->n_ctx)
            cmp_warn(j, "compat: a sentence of %lld tokens exceeds the model's context %d; scored in "
                        "windows (the reference crashes here, Selective_Context issue #23)",
                     (long long)k, j->n_ctx);
    }
    if (!rc) {
        j->total += nt;
        rc = cmp_score_packed(j, ids, sb, se, nsent, sc);
    }
    /* units */
    if (!rc) {
        int64_t ucap = j->p.unit == TERSE_UNIT_SENTENCE ? nsent : nt;
        ut = terse_malloc((size_t)(ucap + 1) * sizeof *ut, "selective: units");
        us = terse_malloc((size_t)(ucap + 1) * sizeof *us, "selective: unit scores");
        keep = terse_malloc((size_t)(ucap + 1), "selective: unit keep");
        space_prefix = terse_calloc((size_t)(ucap + 1), sizeof *space_prefix, "selective: unit prefix");
        if (!ut || !us || !keep || !space_prefix) rc = TERSE_ERR_NOMEM;
    }
    if (!rc && j->p.unit == TERSE_UNIT_TOKEN) {
        for (int64_t t = 0; t < nt; t++) {
            ut[nu] = sp[t];
            us[nu++] = sc[t];
        }
    } else if (!rc && j->p.unit == TERSE_UNIT_SENTENCE) {
        for (int64_t s = 0; s < nsent; s++) {
            ut[nu] = sent[s];
            us[nu++] = sc_np_mean(sc + sb[s], se[s] - sb[s]);
        }
    } else if (!rc) { /* phrases, with the character-length alignment */
        for (int64_t s = 0; !rc && s < nsent; s++) {
            terse_span *ph;
            const char *st = bt + sent[s].begin;
            int64_t np = text_phrases(st, (size_t)(sent[s].end - sent[s].begin), &ph);
            if (np < 0) {
                rc = (int)np;
                break;
            }
            int64_t ntk = se[s] - sb[s];
            int64_t *tl = terse_malloc((size_t)(ntk + 1) * sizeof *tl, "selective: lengths");
            bool *tsp = terse_malloc((size_t)(ntk + 1) * sizeof *tsp, "selective: lengths");
            int64_t *ul = terse_malloc((size_t)(np + 1) * sizeof *ul, "selective: lengths");
            if (!tl || !tsp || !ul) rc = TERSE_ERR_NOMEM;
            if (!rc && nu + np > (int64_t)nt + 1) { /* more phrases than tokens: grow */
                size_t c2 = (size_t)(nu + np + 1);
                terse_span *a = terse_reallocarray(ut, c2, sizeof *a, "selective: units");
                if (a) ut = a;
                double *b2 = a ? terse_reallocarray(us, c2, sizeof *b2, "selective: units") : NULL;
                if (b2) us = b2;
                uint8_t *k2 = b2 ? terse_realloc(keep, c2, "selective: units") : NULL;
                if (k2) keep = k2;
                bool *p2 = k2 ? terse_reallocarray(space_prefix, c2, sizeof *p2, "selective: units") : NULL;
                if (p2) space_prefix = p2;
                if (!p2) rc = TERSE_ERR_NOMEM;
            }
            for (int64_t t = 0; !rc && t < ntk; t++) {
                const char *tb = bt + sp[sb[s] + t].begin;
                size_t tn = (size_t)(sp[sb[s] + t].end - sp[sb[s] + t].begin);
                tl[t] = sc_char_len(tb, tn);
                tsp[t] = tn == 1 && tb[0] == ' ';
            }
            for (int64_t u = 0; !rc && u < np; u++) ul[u] = sc_char_len(st + ph[u].begin, (size_t)(ph[u].end - ph[u].begin));
            if (!rc) rc = sc_unit_info(tl, tsp, sc + sb[s], ntk, ul, np, us + nu);
            for (int64_t u = 0; !rc && u < np; u++) {
                ut[nu + u].begin = sent[s].begin + ph[u].begin;
                ut[nu + u].end = sent[s].begin + ph[u].end;
                space_prefix[nu + u] = (u == 0 && nu > 0); /* " " before a later sentence's first phrase */
            }
            if (!rc) nu += np;
            free(ph);
            free(tl);
            free(tsp);
            free(ul);
        }
    }
    if (!rc && nu > 0) {
        sc_threshold(us, nu, reduce, keep);
        for (int64_t u = 0; u < nu; u++) /* protected spans (force tokens, digits, regexes) */
            if (!keep[u] && any_protected(j, g->begin + map[ut[u].begin], g->begin + map[ut[u].end - 1] + 1))
                keep[u] = 1;
        int64_t kept = 0;
        for (int64_t u = 0; u < nu && !rc; u++) {
            /* sentence level: " ".join over ALL units, a dropped one being "" */
            if (j->p.unit == TERSE_UNIT_SENTENCE && u > 0) rc = terse_buf_put(out, " ", 1);
            if (rc || !keep[u]) continue;
            if (space_prefix[u]) rc = terse_buf_put(out, " ", 1);
            if (!rc) rc = sb_add_decoded(out, bt + ut[u].begin, (size_t)(ut[u].end - ut[u].begin));
            kept++;
            mark_orig(j, g->begin + map[ut[u].begin], g->begin + map[ut[u].end - 1] + 1, 0, false, true);
        }
        j->n_units += nu;
        j->n_units_kept += kept;
        for (int64_t t = 0; t < nt; t++)
            mark_orig(j, g->begin + map[sp[t].begin], g->begin + map[sp[t].end - 1] + 1, sc[t], true, false);
    }
    free(bt);
    free(map);
    free(sent);
    free(ids);
    free(sp);
    free(sb);
    free(se);
    free(sc);
    free(us);
    free(keep);
    free(ut);
    free(space_prefix);
    return rc;
}

static int sc_compat(cmp_job *j) {
    terse_buf out = {0};
    int rc = terse_buf_put(&out, "", 0);
    bool any = false;
    for (int32_t p = 0; !rc && p < j->n_parts; p++) {
        const cmp_part *pa = &j->parts[p];
        if (pa->kind == CMP_PART_SEP) continue;
        size_t start = out.n;
        if (any) rc = terse_buf_put(&out, "\n\n", 2);
        size_t body = out.n;
        for (int32_t s = pa->seg0; !rc && s < pa->seg1; s++) {
            const cmp_segment *g = &j->segs[s];
            if (!g->compress || pa->kind != CMP_PART_CONTEXT) {
                rc = terse_buf_put(&out, j->text + g->begin, (size_t)(g->end - g->begin));
                continue;
            }
            double rate = g->rate >= 0 ? g->rate : j->budget.rate;
            rc = compat_segment(j, g, 1.0 - rate, &out);
        }
        if (rc) break;
        if (out.n == body) {
            out.n = start;
            out.s[start] = 0;
            continue;
        }
        any = true;
    }
    if (!rc) rc = cmp_set_output(j, out.s, out.n);
    free(out.s);
    return rc;
}

int sc_run(cmp_job *j) { return j->p.compat ? sc_compat(j) : sc_default(j); }
