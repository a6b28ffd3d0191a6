/* budget.c - from keep flags to output text, token counting, and the budget contract.
 *
 * The output is always the original bytes of the tokens in the output, in order, parts joined
 * by their "\n\n" separators (cmp_render); nothing is ever decoded from ids. The budget is met
 * on the rendered text as the budget vocabulary tokenizes it (a concatenation of kept pieces
 * can tokenize differently from the sum of its pieces), so cmp_fit_budget searches over how
 * many ranked units to keep with real counts: a binary search for the largest prefix of the
 * ranking that fits, then a short greedy pass that adds later units that still fit.
 * Also numpy's percentile (linear interpolation), used by the reference-compatible modes.
 * Not here: scores and rankings (methods), the assembled prompt (compress.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "text/text.h"

int64_t cmp_count(const terse_vocab *v, const char *s, size_t n) {
    if (n == 0) return 0;
    return terse_token_count(v, s, n);
}

int64_t cmp_count_budget(const cmp_job *j, const char *s, size_t n) {
    return cmp_count(j->budget.vocab, s, n);
}

/* ---------------------------------------------------------------------------------------- */
/* Rendering                                                                                 */

static bool is_nl(char c) { return c == '\n' || c == '\r'; }

/* Length of the line end at s[i] ("\r\n", "\n", "\r"), 0 if none. */
static int line_end_at(const char *s, int64_t i, int64_t end) {
    if (s[i] == '\r') return i + 1 < end && s[i + 1] == '\n' ? 2 : 1;
    return s[i] == '\n' ? 1 : 0;
}

/* The code point ending just before s[e] (s[b..e) valid UTF-8 up to e), 0 if none. */
static uint32_t cp_before(const char *s, int64_t b, int64_t e) {
    if (e <= b) return 0;
    int64_t i = e - 1;
    while (i > b && ((uint8_t)s[i] & 0xc0) == 0x80) i--;
    uint32_t cp;
    return terse_utf8_decode((const uint8_t *)s + i, (size_t)(e - i), &cp) > 0 ? cp : 0xfffd;
}

static uint32_t cp_after(const char *s, int64_t b, int64_t e, int *len) {
    uint32_t cp;
    int l = b < e ? terse_utf8_decode((const uint8_t *)s + b, (size_t)(e - b), &cp) : 0;
    if (l <= 0) {
        *len = b < e ? 1 : 0;
        return b < e ? 0xfffd : 0;
    }
    *len = l;
    return cp;
}

/* What the dropped gap text[a, b) leaves between output buf[..n) and the next kept piece,
 * whose first code point is next (see cmp_build_text in compress.h). */
/* Flag CMP_SEPTOK on the tokens holding bytes [i, i + l) of the text (when marking). */
static void mark_sep(const cmp_job *j, uint8_t *mark, int64_t i, int l) {
    if (!mark) return;
    int64_t lo = 0, hi = j->tok.n; /* first token with end > i */
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (j->tok.spans[mid].end > i) hi = mid;
        else lo = mid + 1;
    }
    for (; lo < j->tok.n && j->tok.spans[lo].begin < i + l; lo++) mark[lo] |= CMP_SEPTOK;
}

static int64_t gap(const cmp_job *j, uint8_t *mark, int64_t a, int64_t b, char *buf, int64_t n,
                   int64_t body, uint32_t next) {
    const char *s = j->text;
    if (j->p.keep_layout && j->layout < 2) {
        int64_t best_at = -1, best_len = 0, best_cnt = 0, run_at = -1, run_len = 0, run_cnt = 0;
        for (int64_t i = a; i < b;) {
            int l = line_end_at(s, i, b);
            if (l) {
                if (run_at < 0) run_at = i, run_len = 0, run_cnt = 0;
                run_len = i + l - run_at;
                run_cnt++;
                if (run_cnt > best_cnt) best_at = run_at, best_len = run_len, best_cnt = run_cnt;
                if (j->layout == 1) break;
                i += l;
                continue;
            }
            if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\f' || s[i] == '\v')) run_at = -1;
            i++;
        }
        if (best_cnt) { /* the line ends of the run, without the spaces between them */
            for (int64_t i = best_at; i < best_at + best_len; i++)
                if (is_nl(s[i])) {
                    mark_sep(j, mark, i, 1);
                    buf[n++] = s[i];
                }
            return n;
        }
    }
    uint32_t prev = cp_before(buf, body, n);
    if (!prev || !next || text_is_space(prev) || text_is_space(next)) return n;
    int64_t other = -1, nl = -1; /* separator: a space (cheapest), else a line end */
    bool other_in_num = false;
    for (int64_t i = a; i < b;) {
        int l;
        uint32_t cp = cp_after(s, i, b, &l);
        if (text_is_space(cp)) {
            int le = line_end_at(s, i, b);
            if (!le) {
                mark_sep(j, mark, i, l);
                memcpy(buf + n, s + i, (size_t)l);
                return n + l;
            }
            if (nl < 0) nl = i;
            l = le;
        } else if (!text_is_word(cp)) { /* rather not an operator inside a dropped number */
            bool in_num = i > a && i + l < b && s[i - 1] >= '0' && s[i - 1] <= '9' &&
                          s[i + l] >= '0' && s[i + l] <= '9';
            if (other < 0 || (other_in_num && !in_num)) other = i, other_in_num = in_num;
        }
        i += l;
    }
    if (nl >= 0) {
        int l = line_end_at(s, nl, b);
        mark_sep(j, mark, nl, l);
        memcpy(buf + n, s + nl, (size_t)l);
        return n + l;
    }
    if (other >= 0 && text_is_word(prev) && text_is_word(next)) {
        int l;
        cp_after(s, other, b, &l);
        mark_sep(j, mark, other, l);
        memcpy(buf + n, s + other, (size_t)l);
        n += l;
    }
    return n;
}

/* One part's kept tokens (default mode: with the gap rule) appended at buf[n]. */
static int64_t render_part(const cmp_job *j, uint8_t *mark, const cmp_part *pa, char *buf, int64_t n) {
    const int64_t body = n;
    int64_t prev_end = -1;
    for (int64_t t = pa->tok0; t < pa->tok1; t++) {
        if (!cmp_in_output(j, t)) continue;
        const terse_span sp = j->tok.spans[t];
        if (!j->p.compat && prev_end >= 0 && sp.begin > prev_end) {
            int l;
            n = gap(j, mark, prev_end, sp.begin, buf, n, body, cp_after(j->text, sp.begin, sp.end, &l));
        }
        memcpy(buf + n, j->text + sp.begin, (size_t)(sp.end - sp.begin));
        n += sp.end - sp.begin;
        prev_end = sp.end;
    }
    return n;
}

static int render(const cmp_job *j, uint8_t *mark, char **out, int64_t *out_len) {
    char *buf = terse_malloc((size_t)j->len + 1, "compress: output");
    if (!buf) return TERSE_ERR_NOMEM;
    int64_t n = 0;
    bool any = false;
    int32_t np = j->part_order ? j->n_part_order : j->n_parts;
    for (int32_t k = 0; k < np; k++) {
        const cmp_part *pa = &j->parts[j->part_order ? j->part_order[k] : k];
        if (pa->kind == CMP_PART_SEP) continue;
        int64_t start = n;
        /* room for the separator first; moved into place if the part is not empty */
        if (any) n += 2;
        int64_t body = n;
        n = render_part(j, mark, pa, buf, n);
        if (n == body) {
            n = start; /* empty: no separator either */
            continue;
        }
        if (any) memcpy(buf + start, "\n\n", 2);
        any = true;
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return TERSE_OK;
}

int cmp_render(const cmp_job *j, char **out, int64_t *out_len) { return render(j, NULL, out, out_len); }

/* ---------------------------------------------------------------------------------------- */
/* Atoms                                                                                     */

int64_t cmp_atom_end(const cmp_job *j, int64_t t) {
    t++;
    while (t < j->tok.n && j->tok.glue[t]) t++;
    return t;
}

int64_t cmp_atom_begin(const cmp_job *j, int64_t t) {
    while (t > 0 && j->tok.glue[t]) t--;
    return t;
}

int64_t cmp_atom_units(const cmp_job *j, int64_t tok0, int64_t tok1, cmp_unit *u) {
    int64_t n = 0;
    for (int64_t t = tok0; t < tok1;) {
        int64_t e = cmp_atom_end(j, t);
        if (e > tok1) e = tok1;
        bool skip = cmp_must_keep(j, t) || (j->p.keep_layout && (j->tok.flags[t] & CMP_LAYOUT));
        if (!skip) {
            double sc = 0;
            for (int64_t k = t; k < e; k++) sc += j->tok.score[k];
            u[n++] = (cmp_unit){t, e, sc};
        }
        t = e;
    }
    return n;
}

bool cmp_has_word(const cmp_job *j, int64_t tok0, int64_t tok1) {
    if (tok1 <= tok0) return false;
    int64_t a = j->tok.spans[tok0].begin, b = j->tok.spans[tok1 - 1].end;
    for (int64_t i = a; i < b;) {
        int l;
        uint32_t cp = cp_after(j->text, i, b, &l);
        if (text_is_word(cp)) return true;
        i += l;
    }
    return false;
}

void cmp_cap_punct(const cmp_job *j, const cmp_unit *u, int64_t n, double *key) {
    uint8_t *w = malloc((size_t)(n > 0 ? n : 1));
    if (!w) return; /* ranking without the cap: still correct, only less careful */
    for (int64_t i = 0; i < n; i++) w[i] = cmp_has_word(j, u[i].tok0, u[i].tok1);
    int64_t last = -1; /* nearest word unit before i in the same part */
    for (int64_t i = 0; i < n; i++) {
        int32_t part = j->segs[j->tok.seg[u[i].tok0]].part;
        if (last >= 0 && j->segs[j->tok.seg[u[last].tok0]].part != part) last = -1;
        if (w[i]) {
            last = i;
            continue;
        }
        int64_t next = i + 1;
        while (next < n && !w[next]) next++;
        if (next < n && j->segs[j->tok.seg[u[next].tok0]].part != part) next = n;
        double cap = -INFINITY;
        if (last >= 0) cap = key[last];
        if (next < n && key[next] > cap) cap = key[next];
        if (last < 0 && next >= n) continue; /* no words around: as scored */
        cap = nextafter(cap, -INFINITY);
        if (!(key[i] <= cap)) key[i] = cap;
    }
    free(w);
}

int cmp_set_output(cmp_job *j, const char *s, size_t n) {
    char *o = terse_malloc(n + 1, "compress: output");
    if (!o) return TERSE_ERR_NOMEM;
    memcpy(o, s, n);
    o[n] = 0;
    free(j->out);
    j->out = o;
    j->out_len = (int64_t)n;
    return TERSE_OK;
}

int cmp_build_text(cmp_job *j) {
    char *o;
    int64_t n;
    for (int64_t t = 0; t < j->tok.n; t++) j->tok.flags[t] &= (uint8_t)~CMP_SEPTOK;
    int rc = render(j, j->tok.flags, &o, &n);
    if (rc) return rc;
    free(j->out);
    j->out = o;
    j->out_len = n;
    return TERSE_OK;
}

/* Tokens of the current rendering in the budget vocabulary. */
static int64_t rendered_count(const cmp_job *j) {
    char *o;
    int64_t n;
    int rc = cmp_render(j, &o, &n);
    if (rc) return rc;
    int64_t c = cmp_count_budget(j, o, (size_t)n);
    free(o);
    return c;
}

static void set_unit(cmp_job *j, const cmp_unit *u, bool keep) {
    for (int64_t t = u->tok0; t < u->tok1; t++) {
        if (keep) j->tok.flags[t] |= CMP_KEEP;
        else j->tok.flags[t] &= (uint8_t)~CMP_KEEP;
    }
}

#define FILL_TRIES 24 /* greedy additions tried after the binary search */

/* The search: the largest prefix of the order that fits, then up to FILL_TRIES later units
 * that still fit. Units start all dropped. Returns the units kept or a negative status. */
static int64_t fit_search(cmp_job *j, const cmp_unit *units, int64_t n, const int64_t *order) {
    const int64_t target = j->budget.target;
#define U(i) (&units[order ? order[i] : (i)])
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) set_unit(j, U(i), true);
    k = n;
    int64_t cn = rendered_count(j);
    if (cn < 0) return cn;
    if (cn <= target) return n;
    int64_t lo = 0, hi = n; /* count(lo) <= target < count(hi) */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        while (k < mid) set_unit(j, U(k++), true);
        while (k > mid) set_unit(j, U(--k), false);
        int64_t c = rendered_count(j);
        if (c < 0) return c;
        if (c <= target) lo = mid;
        else hi = mid;
    }
    while (k < lo) set_unit(j, U(k++), true);
    while (k > lo) set_unit(j, U(--k), false);
    int64_t kept = lo;
    for (int64_t i = lo + 1, tries = 0; i < n && tries < FILL_TRIES; i++, tries++) {
        set_unit(j, U(i), true);
        int64_t ci = rendered_count(j);
        if (ci < 0) return ci;
        if (ci <= target) {
            kept++;
            if (ci == target) break;
        } else {
            set_unit(j, U(i), false);
        }
    }
    return kept;
#undef U
}

/* Tokens, in the budget vocabulary, of the concatenated text of the tokens t with
 * (flags[t] & want) && !(flags[t] & not) in parts of kind kind (-1: any part). */
static int64_t count_where(const cmp_job *j, uint8_t want, uint8_t not, int kind) {
    char *b = terse_malloc((size_t)j->len + 1, "compress: count");
    if (!b) return TERSE_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t t = 0; t < j->tok.n; t++) {
        uint8_t f = j->tok.flags[t];
        if (!(f & want) || (f & not)) continue;
        if (kind >= 0 && (int)j->parts[j->segs[j->tok.seg[t]].part].kind != kind) continue;
        memcpy(b + n, j->text + j->tok.spans[t].begin, (size_t)(j->tok.spans[t].end - j->tok.spans[t].begin));
        n += j->tok.spans[t].end - j->tok.spans[t].begin;
    }
    int64_t c = cmp_count_budget(j, b, (size_t)n);
    free(b);
    return c;
}

/* The over-budget warning: what the must-keep text is made of. */
static int warn_over(cmp_job *j, int64_t c0) {
    int64_t ins = count_where(j, CMP_FIXED, 0, CMP_PART_INSTRUCTION);
    int64_t q = count_where(j, CMP_FIXED, 0, CMP_PART_QUESTION);
    int64_t fixed = count_where(j, CMP_FIXED, 0, CMP_PART_CONTEXT);
    int64_t prot = count_where(j, CMP_PROTECT, CMP_FIXED, -1);
    int64_t rate = count_where(j, CMP_KEEP, CMP_FIXED | CMP_PROTECT, -1);
    if (ins < 0 || q < 0 || fixed < 0 || prot < 0 || rate < 0)
        return (int)(ins < 0 ? ins : q < 0 ? q : fixed < 0 ? fixed : prot < 0 ? prot : rate);
    int64_t rest = c0 - ins - q - fixed - prot - rate;
    char what[320];
    int w = 0;
    const char *name[6] = {"instruction", "question", "protected spans (--force, --keep-digits, --protect)",
                           "compress=False text", "segments with their own rate",
                           "separators and line ends"};
    int64_t v[6] = {ins, q, prot, fixed, rate, rest > 0 ? rest : 0};
    for (int k = 0; k < 6; k++)
        if (v[k] > 0)
            w += snprintf(what + w, sizeof what - (size_t)w, "%s%s %lld", w ? ", " : "", name[k],
                          (long long)v[k]);
    cmp_warn(j, "the text that must be kept takes %lld tokens, above the target %lld (%s): only "
                "it is kept", (long long)c0, (long long)j->budget.target, w ? what : "separators");
    return TERSE_OK;
}

int cmp_fit_budget(cmp_job *j, const cmp_unit *units, int64_t n, const int64_t *order) {
    const int64_t target = j->budget.target;
#define U(i) (&units[order ? order[i] : (i)])
    for (int64_t i = 0; i < n; i++) set_unit(j, U(i), false);
    j->n_units = n;
    j->n_units_kept = 0;
    const bool layout = j->p.keep_layout && !j->p.compat;
    j->layout = 0;
    int64_t c0 = rendered_count(j);
    if (c0 < 0) return (int)c0;
    if (c0 > target && layout) {
        j->layout = 1;
        c0 = rendered_count(j);
        if (c0 < 0) return (int)c0;
    }
    if (c0 > target) {
        j->over_budget = true;
        return warn_over(j, c0);
    }
    int64_t kept = fit_search(j, units, n, order);
    if (kept < 0) return (int)kept;
    if (layout && j->layout == 0 && kept < n) {
        /* would fewer line ends hold more content? level 1: one line end per gap; level 2: a
         * space where the gap has one. The lowest level within 10% of the most content wins. */
        uint8_t *save[3] = {0};
        int64_t content[3] = {0}, kept_at[3] = {kept, 0, 0};
        int rc = TERSE_OK;
        for (int lv = 0; lv < 3 && !rc; lv++) {
            if (lv) {
                for (int64_t i = 0; i < n; i++) set_unit(j, U(i), false);
                j->layout = lv;
                kept_at[lv] = fit_search(j, units, n, order);
                if (kept_at[lv] < 0) {
                    rc = (int)kept_at[lv];
                    break;
                }
            }
            for (int64_t i = 0; i < n; i++)
                if (j->tok.flags[U(i)->tok0] & CMP_KEEP) content[lv] += U(i)->tok1 - U(i)->tok0;
            save[lv] = terse_malloc((size_t)j->tok.n + 1, "compress: flags");
            if (!save[lv]) rc = TERSE_ERR_NOMEM;
            else memcpy(save[lv], j->tok.flags, (size_t)j->tok.n);
        }
        if (!rc) {
            int64_t best = content[0];
            for (int lv = 1; lv < 3; lv++) best = content[lv] > best ? content[lv] : best;
            int lv = 0;
            while (lv < 2 && (double)content[lv] < 0.9 * (double)best) lv++;
            memcpy(j->tok.flags, save[lv], (size_t)j->tok.n);
            j->layout = lv;
            kept = kept_at[lv];
        }
        for (int lv = 0; lv < 3; lv++) free(save[lv]);
        if (rc) return rc;
    }
    if (kept == 0 && n > 0 && c0 == 0) { /* keep at least one unit */
        set_unit(j, U(0), true);
        kept = 1;
        int64_t c = rendered_count(j);
        if (c < 0) return (int)c;
        j->over_budget = c > target;
        cmp_warn(j, "no unit fits the target of %lld tokens; the best one (%lld tokens) is kept, "
                    "as a non-empty prompt always keeps at least one unit",
                 (long long)target, (long long)c);
    }
    j->n_units_kept = kept;
    return TERSE_OK;
#undef U
}

/* numpy.percentile(..., method="linear") over the non-NaN values (nanpercentile). */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cmp_percentile(const double *v, int64_t n, double q) {
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (!s) return NAN;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(v[i])) s[m++] = v[i];
    if (m == 0) {
        free(s);
        return NAN;
    }
    qsort(s, (size_t)m, sizeof *s, cmp_double);
    /* numpy: virtual index = (q / 100) * (m - 1); lerp(a, b, t) = a + (b - a) * t, computed
     * as b - (b - a) * (1 - t) when t >= 0.5 */
    double idx = (q / 100.0) * (double)(m - 1);
    double fl = floor(idx);
    int64_t i0 = (int64_t)fl;
    if (i0 < 0) i0 = 0;
    if (i0 > m - 1) i0 = m - 1;
    int64_t i1 = i0 + 1 < m ? i0 + 1 : m - 1;
    double t = idx - fl, a = s[i0], b = s[i1];
    double d = b - a;
    double r = t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
    if (a == b) r = a;
    free(s);
    return r;
}
