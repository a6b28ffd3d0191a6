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
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"

int64_t cmp_count(const terse_vocab *v, const char *s, size_t n) {
    if (n == 0) return 0;
    return terse_token_count(v, s, n);
}

int64_t cmp_count_budget(const cmp_job *j, const char *s, size_t n) {
    return cmp_count(j->budget.vocab, s, n);
}

int cmp_render(const cmp_job *j, char **out, int64_t *out_len) {
    char *buf = terse_malloc((size_t)j->len + 1, "compress: output");
    if (!buf) return TERSE_ERR_NOMEM;
    int64_t n = 0;
    bool any = false;
    for (int32_t p = 0; p < j->n_parts; p++) {
        const cmp_part *pa = &j->parts[p];
        if (pa->kind == CMP_PART_SEP) continue;
        int64_t start = n;
        /* room for the separator first; moved into place if the part is not empty */
        if (any) n += 2;
        int64_t body = n;
        for (int64_t t = pa->tok0; t < pa->tok1; t++) {
            if (!cmp_in_output(j, t)) continue;
            int64_t l = j->tok.spans[t].end - j->tok.spans[t].begin;
            memcpy(buf + n, j->text + j->tok.spans[t].begin, (size_t)l);
            n += l;
        }
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
    int rc = cmp_render(j, &o, &n);
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

int cmp_fit_budget(cmp_job *j, const cmp_unit *units, int64_t n, const int64_t *order) {
    const int64_t target = j->budget.target;
#define U(i) (&units[order ? order[i] : (i)])
    for (int64_t i = 0; i < n; i++) set_unit(j, U(i), false);
    j->n_units = n;
    j->n_units_kept = 0;
    int64_t c0 = rendered_count(j);
    if (c0 < 0) return (int)c0;
    if (c0 > target) {
        j->over_budget = true;
        cmp_warn(j, "text that must be kept (instruction, question, protected or compress=False "
                    "spans, the shares of segments with their own rate) takes %lld tokens, above the "
                    "target %lld: only it is kept",
                 (long long)c0, (long long)target);
        return TERSE_OK;
    }
    /* k units kept = order[0..k); keep a running k to flip only the difference */
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) set_unit(j, U(i), true);
    k = n;
    int64_t cn = rendered_count(j);
    if (cn < 0) return (int)cn;
    if (cn <= target) {
        j->n_units_kept = n;
        return TERSE_OK;
    }
    int64_t lo = 0, hi = n; /* count(lo) <= target < count(hi) */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        while (k < mid) set_unit(j, U(k++), true);
        while (k > mid) set_unit(j, U(--k), false);
        int64_t c = rendered_count(j);
        if (c < 0) return (int)c;
        if (c <= target) lo = mid;
        else hi = mid;
    }
    while (k < lo) set_unit(j, U(k++), true);
    while (k > lo) set_unit(j, U(--k), false);
    int64_t kept = lo, c = -1;
    for (int64_t i = lo + 1, tries = 0; i < n && tries < FILL_TRIES; i++, tries++) {
        set_unit(j, U(i), true);
        int64_t ci = rendered_count(j);
        if (ci < 0) return (int)ci;
        if (ci <= target) {
            kept++;
            c = ci;
            if (c == target) break;
        } else {
            set_unit(j, U(i), false);
        }
    }
    (void)c;
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
