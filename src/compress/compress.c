/* compress.c - terse_compress: from a terse_prompt to a cmp_job, the method, and the result.
 *
 * 1. validate params and prompt; 2. assemble the text, splitting contexts at <llmlingua ...>
 * tags into segments; 3. tokenize segment by segment (ids + byte spans); 4. flag fixed and
 * protected tokens (force tokens, digits, PCRE2 patterns); 5. set the budget; 6. run the
 * method (or return the prompt unchanged when the budget allows everything); 7. count and
 * fill the terse_result (text, stats, warning, per-token detail), also as JSON (jansson).
 * Not here: scoring (score.c), output building and budget fitting (budget.c), methods.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "compress/compress.h"
#include "nn/nn.h"
#include "text/text.h"

static const char SEP[] = "\n\n";

/* memmem (a GNU extension, so written out): first occurrence of w[0..wl) in s[0..n). */
static const char *find_bytes(const char *s, size_t n, const char *w, size_t wl) {
    if (wl == 0 || wl > n) return NULL;
    for (const char *p = s; (p = memchr(p, w[0], n - (size_t)(p - s) - wl + 1)); p++)
        if (!memcmp(p, w, wl)) return p;
    return NULL;
}

terse_compress_params terse_compress_default_params(void) {
    terse_compress_params p;
    memset(&p, 0, sizeof p);
    p.method = TERSE_METHOD_SELECTIVE;
    p.unit = TERSE_UNIT_PHRASE;
    p.rate = 0.5;
    p.structured = 1;
    p.iterative_size = 200;
    p.context_budget_mul = 1.0;
    p.context_budget_add = 100.0;
    p.token_budget_ratio = 1.4;
    p.use_context_filter = 1;
    p.use_token_filter = 1;
    p.concate_question = 1;
    p.high_priority_bonus = 100.0;
    p.keep_layout = 1;
    p.context_level_rate = 1.0;
    p.target_context = -1;
    p.condition_compare = -1;
    p.reorder = TERSE_REORDER_AUTO;
    p.dynamic_ratio = -1.0;
    return p;
}

struct terse_result {
    char *text;
    size_t len;
    char *source;
    size_t source_len;
    terse_compress_stats st;
    char warning[512];
    terse_token_info *tokens;
    int64_t n_tokens;
    terse_method method;
    terse_unit unit;
    int compat;
};

void cmp_warn(cmp_job *j, const char *fmt, ...) {
    size_t used = strlen(j->warning);
    if (used + 3 >= sizeof j->warning) return;
    if (used) {
        memcpy(j->warning + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->warning + used, sizeof j->warning - used, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------- */
/* Assembly: parts and segments                                                              */

typedef struct {
    cmp_job *j;
    size_t text_cap, part_cap, seg_cap;
} builder;

static int append_text(builder *b, const char *s, size_t n) {
    cmp_job *j = b->j;
    size_t need;
    if (!size_add((size_t)j->len, n + 1, &need)) return terse_err(TERSE_ERR_NOMEM, "compress: prompt too long");
    if (need > b->text_cap) {
        size_t nc = b->text_cap ? b->text_cap : 1024;
        while (nc < need) nc *= 2;
        char *t = terse_realloc(j->text, nc, "compress: prompt text");
        if (!t) return TERSE_ERR_NOMEM;
        j->text = t;
        b->text_cap = nc;
    }
    if (text_utf8_invalid(s, n) == 0) {
        memcpy(j->text + j->len, s, n);
        j->len += (int64_t)n;
    } else { /* invalid UTF-8: Python's replacement rule, so the output is always valid */
        size_t need3;
        if (!size_add((size_t)j->len, 3 * n + 1, &need3)) return terse_err(TERSE_ERR_NOMEM, "compress: prompt too long");
        if (need3 > b->text_cap) {
            char *t = terse_realloc(j->text, need3, "compress: prompt text");
            if (!t) return TERSE_ERR_NOMEM;
            j->text = t;
            b->text_cap = need3;
        }
        j->n_invalid += text_utf8_invalid(s, n);
        j->len += text_utf8_replace(s, n, j->text + j->len);
    }
    j->text[j->len] = 0;
    return TERSE_OK;
}

static int add_segment(builder *b, int64_t begin, int64_t end, double rate, bool compress,
                       bool tagged) {
    cmp_job *j = b->j;
    if ((size_t)j->n_segs == b->seg_cap) {
        size_t nc = b->seg_cap ? 2 * b->seg_cap : 16;
        cmp_segment *v = terse_reallocarray(j->segs, nc, sizeof *v, "compress: segments");
        if (!v) return TERSE_ERR_NOMEM;
        j->segs = v;
        b->seg_cap = nc;
    }
    cmp_segment *s = &j->segs[j->n_segs++];
    memset(s, 0, sizeof *s);
    s->begin = begin;
    s->end = end;
    s->part = j->n_parts - 1;
    s->rate = rate;
    s->compress = compress;
    s->tagged = tagged;
    return TERSE_OK;
}

static int begin_part(builder *b, cmp_part_kind kind, int32_t index) {
    cmp_job *j = b->j;
    if ((size_t)j->n_parts == b->part_cap) {
        size_t nc = b->part_cap ? 2 * b->part_cap : 8;
        cmp_part *v = terse_reallocarray(j->parts, nc, sizeof *v, "compress: parts");
        if (!v) return TERSE_ERR_NOMEM;
        j->parts = v;
        b->part_cap = nc;
    }
    cmp_part *p = &j->parts[j->n_parts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->index = index;
    p->begin = j->len;
    p->seg0 = j->n_segs;
    return TERSE_OK;
}

static void end_part(builder *b) {
    cmp_part *p = &b->j->parts[b->j->n_parts - 1];
    p->end = b->j->len;
    p->seg1 = b->j->n_segs;
}

/* A whole piece as one segment (instruction, question, separator, untagged context). */
static int add_piece(builder *b, cmp_part_kind kind, int32_t index, const char *s, size_t n,
                     bool compress) {
    int rc = begin_part(b, kind, index);
    int64_t at = b->j->len;
    if (!rc) rc = append_text(b, s, n);
    if (!rc) rc = add_segment(b, at, b->j->len, -1.0, compress, false);
    if (!rc) end_part(b);
    return rc;
}

/* Parse the attributes of "<llmlingua ...>" between a and e: ", rate=R", ", compress=B". */
static int parse_tag(const char *a, const char *e, int32_t ci, double *rate, bool *compress) {
    *rate = -1.0;
    *compress = true;
    const char *p = a;
    while (p < e) {
        while (p < e && (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p >= e) break;
        if ((size_t)(e - p) > 4 && !strncmp(p, "rate", 4)) {
            p += 4;
            while (p < e && *p == ' ') p++;
            if (p >= e || *p != '=') break;
            p++;
            while (p < e && *p == ' ') p++;
            const char *v = p; /* the value as written, up to the next ',' (for the message) */
            int vlen = 0;
            while (v + vlen < e && v[vlen] != ',' && vlen < 20) vlen++;
            char num[32];
            size_t k = 0;
            while (p < e && k + 1 < sizeof num && ((*p >= '0' && *p <= '9') || *p == '.')) num[k++] = *p++;
            num[k] = 0;
            char *end;
            double r = strtod(num, &end);
            if (k == 0 || *end || !(r > 0.0 && r <= 1.0))
                return terse_err(TERSE_ERR_INVALID, "compress: context %d: <llmlingua> rate "
                                 "'%.*s' is not a number in (0, 1]", ci, vlen, v);
            *rate = r;
        } else if ((size_t)(e - p) > 8 && !strncmp(p, "compress", 8)) {
            p += 8;
            while (p < e && *p == ' ') p++;
            if (p >= e || *p != '=') break;
            p++;
            while (p < e && *p == ' ') p++;
            if ((size_t)(e - p) >= 4 && !strncmp(p, "True", 4)) {
                *compress = true;
                p += 4;
            } else if ((size_t)(e - p) >= 5 && !strncmp(p, "False", 5)) {
                *compress = false;
                p += 5;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    if (p < e)
        return terse_err(TERSE_ERR_INVALID,
                         "compress: context %d: bad <llmlingua> attribute near '%.20s'", ci, p);
    return TERSE_OK;
}

/* A context, split at its tags. Compat: text outside tags is dropped when the context has
 * tags (the reference's regex only sees tagged text). */
static int add_context(builder *b, int32_t ci, const char *s, size_t n) {
    static const char OPEN[] = "<llmlingua", CLOSE[] = "</llmlingua>";
    cmp_job *j = b->j;
    const char *first = j->p.structured ? find_bytes(s, n, OPEN, sizeof OPEN - 1) : NULL;
    if (!first) return add_piece(b, CMP_PART_CONTEXT, ci, s, n, true);
    int rc = begin_part(b, CMP_PART_CONTEXT, ci);
    const char *p = s, *end = s + n;
    while (!rc && p < end) {
        const char *t = find_bytes(p, (size_t)(end - p), OPEN, sizeof OPEN - 1);
        const char *plain_end = t ? t : end;
        if (plain_end > p && !j->p.compat) { /* untagged stretch */
            int64_t at = j->len;
            rc = append_text(b, p, (size_t)(plain_end - p));
            if (!rc) rc = add_segment(b, at, j->len, -1.0, true, false);
        }
        if (rc || !t) break;
        const char *gt = memchr(t, '>', (size_t)(end - t));
        if (!gt)
            return terse_err(TERSE_ERR_INVALID, "compress: context %d: unterminated <llmlingua tag at byte %lld",
                             ci, (long long)(t - s));
        double rate;
        bool compress;
        if ((rc = parse_tag(t + sizeof OPEN - 1, gt, ci, &rate, &compress))) return rc;
        const char *body = gt + 1;
        const char *close = find_bytes(body, (size_t)(end - body), CLOSE, sizeof CLOSE - 1);
        if (!close)
            return terse_err(TERSE_ERR_INVALID, "compress: context %d: <llmlingua> at byte %lld has no </llmlingua>",
                             ci, (long long)(t - s));
        int64_t at = j->len;
        rc = append_text(b, body, (size_t)(close - body));
        if (!rc) rc = add_segment(b, at, j->len, compress ? rate : 1.0, compress, true);
        p = close + sizeof CLOSE - 1;
    }
    if (!rc) end_part(b);
    return rc;
}

static int assemble(cmp_job *j, const terse_prompt *pr) {
    builder b = {.j = j};
    int rc = append_text(&b, "", 0);
    bool any = false;
    if (!rc && pr->instruction && pr->instruction[0]) {
        rc = add_piece(&b, CMP_PART_INSTRUCTION, -1, pr->instruction, strlen(pr->instruction), false);
        any = true;
    }
    for (int32_t i = 0; !rc && i < pr->n_contexts; i++) {
        if (any) rc = add_piece(&b, CMP_PART_SEP, -1, SEP, 2, false);
        const char *c = pr->contexts[i] ? pr->contexts[i] : "";
        if (!rc) rc = add_context(&b, i, c, strlen(c));
        any = true;
    }
    if (!rc && pr->question && pr->question[0]) {
        if (any) rc = add_piece(&b, CMP_PART_SEP, -1, SEP, 2, false);
        if (!rc) rc = add_piece(&b, CMP_PART_QUESTION, -1, pr->question, strlen(pr->question), false);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokens and flags                                                                          */

static int tokenize_segments(cmp_job *j) {
    int64_t cap = 0;
    for (int32_t s = 0; s < j->n_segs; s++) cap += j->segs[s].end - j->segs[s].begin + 1;
    cmp_tokens *t = &j->tok;
    size_t c = (size_t)cap + 1;
    t->ids = terse_malloc(c * sizeof *t->ids, "compress: ids");
    t->spans = terse_malloc(c * sizeof *t->spans, "compress: spans");
    t->seg = terse_malloc(c * sizeof *t->seg, "compress: token segments");
    t->flags = terse_calloc(c, 1, "compress: flags");
    t->score = terse_malloc(c * sizeof *t->score, "compress: scores");
    t->glue = terse_calloc(c, 1, "compress: atoms");
    if (!t->ids || !t->spans || !t->seg || !t->flags || !t->score || !t->glue) return TERSE_ERR_NOMEM;
    t->n = 0;
    for (int32_t s = 0; s < j->n_segs; s++) {
        cmp_segment *g = &j->segs[s];
        g->tok0 = t->n;
        int64_t len = g->end - g->begin;
        if (len > 0) {
            int64_t k = terse_tokenize(j->vocab, j->text + g->begin, (size_t)len, 0, t->ids + t->n,
                                       t->spans + t->n, cap - t->n);
            if (k < 0) return (int)k;
            if (k > cap - t->n) return terse_err(TERSE_ERR_INTERNAL, "compress: more tokens than bytes");
            for (int64_t i = t->n; i < t->n + k; i++) {
                t->spans[i].begin += g->begin;
                t->spans[i].end += g->begin;
                t->seg[i] = s;
                t->score[i] = NAN;
                if (!g->compress) t->flags[i] |= CMP_FIXED;
            }
            t->n += k;
        }
        g->tok1 = t->n;
    }
    for (int32_t p = 0; p < j->n_parts; p++) {
        cmp_part *pa = &j->parts[p];
        pa->tok0 = pa->seg1 > pa->seg0 ? j->segs[pa->seg0].tok0 : 0;
        pa->tok1 = pa->seg1 > pa->seg0 ? j->segs[pa->seg1 - 1].tok1 : 0;
    }
    return TERSE_OK;
}

/* Mark PROTECT on every token overlapping bytes [a, b). */
static void protect_range(cmp_job *j, int64_t a, int64_t b) {
    int64_t lo = 0, hi = j->tok.n; /* first token with end > a */
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (j->tok.spans[mid].end > a) hi = mid;
        else lo = mid + 1;
    }
    for (int64_t t = lo; t < j->tok.n && j->tok.spans[t].begin < b; t++) j->tok.flags[t] |= CMP_PROTECT;
}

static int protect(cmp_job *j) {
    const terse_compress_params *p = &j->p;
    if (p->keep_digits)
        for (int64_t t = 0; t < j->tok.n; t++)
            for (int64_t k = j->tok.spans[t].begin; k < j->tok.spans[t].end; k++)
                if (j->text[k] >= '0' && j->text[k] <= '9') {
                    j->tok.flags[t] |= CMP_PROTECT;
                    break;
                }
    for (int32_t f = 0; f < p->n_force_tokens; f++) {
        const char *w = p->force_tokens[f];
        size_t wl = w ? strlen(w) : 0;
        if (wl == 0) return terse_err(TERSE_ERR_INVALID, "compress: force_tokens[%d] is empty", f);
        const char *q = j->text, *end = j->text + j->len;
        while ((q = find_bytes(q, (size_t)(end - q), w, wl))) {
            protect_range(j, q - j->text, q - j->text + (int64_t)wl);
            q += wl;
        }
    }
    for (int32_t r = 0; r < p->n_protect_patterns; r++) {
        const char *pat = p->protect_patterns[r];
        if (!pat) return terse_err(TERSE_ERR_INVALID, "compress: protect_patterns[%d] is NULL", r);
        int err;
        PCRE2_SIZE eoff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &eoff, NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            return terse_err(TERSE_ERR_INVALID, "compress: protect_patterns[%d] '%s' at offset %zu: %s",
                             r, pat, (size_t)eoff, (char *)msg);
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) {
            pcre2_code_free(re);
            return terse_err(TERSE_ERR_NOMEM, "compress: pcre2 match data");
        }
        PCRE2_SIZE at = 0;
        while (at <= (PCRE2_SIZE)j->len) {
            int m = pcre2_match(re, (PCRE2_SPTR)j->text, (PCRE2_SIZE)j->len, at, 0, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m < 0) { /* match limit, depth limit, heap: an error, not "no more matches" */
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(m, msg, sizeof msg);
                pcre2_match_data_free(md);
                pcre2_code_free(re);
                return terse_err(TERSE_ERR_INVALID, "compress: protect_patterns[%d] '%s' failed "
                                 "at byte %zu: %s (nothing it should protect is lost silently: "
                                 "simplify the pattern)", r, pat, (size_t)at, (char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] > ov[0]) protect_range(j, (int64_t)ov[0], (int64_t)ov[1]);
            at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
    return TERSE_OK;
}

/* Default mode: atoms (compress.h) and layout flags; then PROTECT / FIXED spread over atoms. */
static int make_atoms(cmp_job *j) {
    cmp_tokens *tk = &j->tok;
    for (int32_t s = 0; s < j->n_segs; s++) {
        const cmp_segment *g = &j->segs[s];
        terse_span *num = NULL;
        int64_t nn = text_numbers(j->text + g->begin, (size_t)(g->end - g->begin), &num);
        if (nn < 0) return (int)nn;
        int64_t k = 0;
        for (int64_t t = g->tok0 + 1; t < g->tok1; t++) {
            int64_t at = tk->spans[t].begin; /* boundary between t-1 and t */
            uint8_t c = (uint8_t)j->text[at];
            bool glue = (c & 0xc0) == 0x80 || (c == '\n' && j->text[at - 1] == '\r');
            int64_t rel = at - g->begin;
            while (k < nn && num[k].end <= rel) k++;
            if (k < nn && num[k].begin < rel && rel < num[k].end) glue = true;
            tk->glue[t] = glue;
        }
        free(num);
    }
    for (int64_t t = 0; t < tk->n;) {
        int64_t e = cmp_atom_end(j, t);
        bool nl = false, ws = true;
        uint8_t must = 0;
        for (int64_t u = t; u < e; u++) {
            must |= tk->flags[u] & (CMP_PROTECT | CMP_FIXED);
            for (int64_t k = tk->spans[u].begin; k < tk->spans[u].end && ws; k++) {
                char ch = j->text[k];
                nl |= ch == '\n' || ch == '\r';
                ws = ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t' || ch == '\f' || ch == '\v';
            }
        }
        for (int64_t u = t; u < e; u++) tk->flags[u] |= must | (nl && ws ? CMP_LAYOUT : 0);
        t = e;
    }
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Validation and budget                                                                     */

static int validate(const terse_prompt *pr, const terse_compress_params *p) {
    if (!pr) return terse_err(TERSE_ERR_INVALID, "compress: prompt is NULL");
    if (pr->n_contexts < 0) return terse_err(TERSE_ERR_INVALID, "compress: n_contexts %d < 0", pr->n_contexts);
    if (pr->n_contexts > 0 && !pr->contexts)
        return terse_err(TERSE_ERR_INVALID, "compress: contexts is NULL with n_contexts %d", pr->n_contexts);
    bool has_q = pr->question && pr->question[0];
    if (pr->n_contexts == 0 && has_q)
        return terse_err(TERSE_ERR_INVALID, "compress: a question with no contexts (nothing to compress)");
    size_t total = 0;
    for (int32_t i = 0; i < pr->n_contexts; i++) total += pr->contexts[i] ? strlen(pr->contexts[i]) : 0;
    if (total == 0) return terse_err(TERSE_ERR_INVALID, "compress: empty prompt (no context text)");
    if ((unsigned)p->method > TERSE_METHOD_LLMLINGUA2)
        return terse_err(TERSE_ERR_INVALID, "compress: method %d unknown", (int)p->method);
    if ((unsigned)p->unit > TERSE_UNIT_SENTENCE)
        return terse_err(TERSE_ERR_INVALID, "compress: unit %d unknown", (int)p->unit);
    if (p->target < 0) return terse_err(TERSE_ERR_INVALID, "compress: target %lld < 0", (long long)p->target);
    if (p->target == 0 && !(p->rate > 0.0 && p->rate <= 1.0))
        return terse_err(TERSE_ERR_INVALID, "compress: rate %g outside (0, 1]", p->rate);
    if (p->n_force_tokens < 0 || (p->n_force_tokens > 0 && !p->force_tokens))
        return terse_err(TERSE_ERR_INVALID, "compress: bad force_tokens (n %d)", p->n_force_tokens);
    if (p->n_protect_patterns < 0 || (p->n_protect_patterns > 0 && !p->protect_patterns))
        return terse_err(TERSE_ERR_INVALID, "compress: bad protect_patterns (n %d)", p->n_protect_patterns);
    if (p->carry < 0) return terse_err(TERSE_ERR_INVALID, "compress: carry %d < 0", p->carry);
    return TERSE_OK;
}

static int set_budget(cmp_job *j) {
    cmp_budget *b = &j->budget;
    b->vocab = j->p.count_vocab ? j->p.count_vocab : j->vocab;
    b->origin = cmp_count(b->vocab, j->text, (size_t)j->len);
    if (b->origin < 0) return (int)b->origin;
    if (j->p.target > 0) {
        b->target = j->p.target;
        b->rate = b->origin ? (double)b->target / (double)b->origin : 1.0;
        if (b->rate > 1.0) b->rate = 1.0;
        if (b->target >= b->origin) {
            b->unchanged = true;
            if (b->target > b->origin)
                cmp_warn(j, "target %lld tokens is above the prompt's %lld: nothing to drop",
                         (long long)b->target, (long long)b->origin);
        }
    } else {
        b->rate = j->p.rate;
        b->target = (int64_t)floor(j->p.rate * (double)b->origin);
        if (j->p.rate >= 1.0) b->unchanged = true;
    }
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Result                                                                                    */

static int make_result(cmp_job *j, terse_result **out) {
    terse_result *r = terse_calloc(1, sizeof *r, "compress: result");
    if (!r) return TERSE_ERR_NOMEM;
    r->method = j->p.method;
    r->unit = j->p.unit;
    r->compat = j->p.compat;
    r->text = j->out;
    r->len = (size_t)j->out_len;
    j->out = NULL;
    terse_compress_stats *st = &r->st;
    const terse_vocab *mv = j->vocab, *cv = j->p.count_vocab;
    st->origin_model_tokens = cmp_count(mv, j->text, (size_t)j->len);
    st->compressed_model_tokens = cmp_count(mv, r->text, r->len);
    st->origin_count_tokens = cv ? j->budget.origin : -1;
    st->compressed_count_tokens = cv ? cmp_count(cv, r->text, r->len) : -1;
    st->origin_tokens = j->budget.origin;
    st->compressed_tokens = cv ? st->compressed_count_tokens : st->compressed_model_tokens;
    st->target_tokens = j->budget.target;
    if (st->compressed_model_tokens < 0 || st->compressed_tokens < 0) {
        int rc = (int)(st->compressed_model_tokens < 0 ? st->compressed_model_tokens : st->compressed_tokens);
        terse_result_free(r);
        return rc;
    }
    st->rate = st->origin_tokens ? (double)st->compressed_tokens / (double)st->origin_tokens : 1.0;
    st->ratio = st->compressed_tokens ? (double)st->origin_tokens / (double)st->compressed_tokens : 1.0;
    st->n_units = j->n_units;
    st->n_units_kept = j->n_units_kept;
    st->over_budget = j->over_budget;
    memcpy(r->warning, j->warning, sizeof r->warning);
    if (j->p.return_tokens) {
        r->source = j->text;
        r->source_len = (size_t)j->len;
        j->text = NULL;
        if (j->tok.n > 0) {
            r->tokens = terse_malloc((size_t)j->tok.n * sizeof *r->tokens, "compress: token detail");
            if (!r->tokens) {
                terse_result_free(r);
                return TERSE_ERR_NOMEM;
            }
        }
        for (int64_t t = 0; t < j->tok.n; t++) {
            terse_token_info *ti = &r->tokens[t];
            uint8_t f = j->tok.flags[t];
            ti->id = j->tok.ids[t];
            ti->span = j->tok.spans[t];
            ti->score = j->tok.score[t];
            /* compat: a method marks what the reference kept (protected spans are not
             * honoured by every reference method) */
            uint8_t kept = j->p.compat ? (CMP_KEEP | CMP_FIXED) : (CMP_KEEP | CMP_PROTECT | CMP_FIXED);
            ti->flags = (f & kept ? TERSE_TOKEN_KEPT : 0) |
                        (f & CMP_PROTECT ? TERSE_TOKEN_PROTECTED : 0) | (f & CMP_FIXED ? TERSE_TOKEN_FIXED : 0) |
                        ((f & CMP_SEPTOK) && !(f & kept) ? TERSE_TOKEN_SEPARATOR : 0);
        }
        r->n_tokens = j->tok.n;
    }
    *out = r;
    return TERSE_OK;
}

static void job_free(cmp_job *j) {
    free(j->text);
    free(j->parts);
    free(j->segs);
    free(j->tok.ids);
    free(j->tok.spans);
    free(j->tok.seg);
    free(j->tok.flags);
    free(j->tok.score);
    free(j->tok.glue);
    free(j->out);
}

int terse_compress(terse_ctx *ctx, const terse_prompt *prompt, terse_compress_params p,
                   terse_result **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_compress: out is NULL");
    *out = NULL;
    if (!ctx) return terse_err(TERSE_ERR_INVALID, "terse_compress: ctx is NULL");
    int rc = validate(prompt, &p);
    if (rc) return rc;
    cmp_job j;
    memset(&j, 0, sizeof j);
    j.t_start = terse_now();
    j.ctx = ctx;
    j.model = ctx->m;
    j.vocab = terse_model_vocab(ctx->m);
    if (!j.vocab) return terse_err(TERSE_ERR_INVALID, "terse_compress: the model has no vocabulary");
    j.p = p;
    j.n_ctx = terse_ctx_n_ctx(ctx);
    j.bos = terse_vocab_bos(j.vocab);
    if (!j.p.carry) j.p.carry = j.n_ctx / 8;
    if (!rc) rc = assemble(&j, prompt);
    if (!rc) rc = tokenize_segments(&j);
    if (!rc) rc = protect(&j);
    if (!rc && !p.compat) rc = make_atoms(&j);
    if (!rc && j.n_invalid)
        cmp_warn(&j, "the prompt had %lld invalid UTF-8 sequence%s, each replaced by U+FFFD",
                 (long long)j.n_invalid, j.n_invalid == 1 ? "" : "s");
    if (!rc) rc = set_budget(&j);
    if (!rc) {
        if (j.budget.unchanged && !p.compat) { /* compat: the reference still runs (and, e.g.,
                                                  collapses whitespace) at rate 1 */
            for (int64_t t = 0; t < j.tok.n; t++) j.tok.flags[t] |= CMP_KEEP;
            rc = cmp_set_output(&j, j.text, (size_t)j.len);
        } else if (p.method == TERSE_METHOD_SELECTIVE) {
            rc = sc_run(&j);
        } else if (p.method == TERSE_METHOD_LLMLINGUA) {
            rc = llmlingua_run(&j);
        } else if (p.method == TERSE_METHOD_LLMLINGUA2) {
            rc = llmlingua2_run(&j);
        } else {
            rc = longllmlingua_run(&j);
        }
    }
    if (!rc && !j.out) rc = cmp_build_text(&j);
    if (!rc && j.out_len == 0) /* never silent (default mode keeps a unit when there is one) */
        cmp_warn(&j, "the compressed prompt is empty%s", p.compat ? " (the reference's output)"
                                                                  : ": the prompt has no unit to keep");
    terse_result *r = NULL;
    if (!rc) rc = make_result(&j, &r);
    if (!rc) {
        r->st.seconds = terse_now() - j.t_start;
        r->st.seconds_model = j.t_model;
        *out = r;
    }
    job_free(&j);
    return rc;
}

void terse_result_free(terse_result *r) {
    if (!r) return;
    free(r->text);
    free(r->source);
    free(r->tokens);
    free(r);
}

const char *terse_result_text(const terse_result *r, size_t *len) {
    if (len) *len = r ? r->len : 0;
    return r ? r->text : NULL;
}

void terse_result_get_stats(const terse_result *r, terse_compress_stats *out) {
    if (r && out) *out = r->st;
}

const char *terse_result_warning(const terse_result *r) { return r ? r->warning : ""; }

const char *terse_result_source(const terse_result *r, size_t *len) {
    if (len) *len = r && r->source ? r->source_len : 0;
    return r ? r->source : NULL;
}

int64_t terse_result_tokens(const terse_result *r, const terse_token_info **tokens) {
    if (tokens) *tokens = r ? r->tokens : NULL;
    return r ? r->n_tokens : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                      */

static const char *method_name(terse_method m) {
    return m == TERSE_METHOD_SELECTIVE ? "selective" : m == TERSE_METHOD_LLMLINGUA ? "llmlingua" :
           m == TERSE_METHOD_LLMLINGUA2 ? "llmlingua2" : "longllmlingua";
}
static const char *unit_name(terse_unit u) {
    return u == TERSE_UNIT_TOKEN ? "token" : u == TERSE_UNIT_PHRASE ? "phrase" : "sentence";
}

int terse_result_json(const terse_result *r, int with_tokens, char **out) {
    if (!r || !out) return terse_err(TERSE_ERR_INVALID, "terse_result_json: NULL argument");
    *out = NULL;
    const terse_compress_stats *st = &r->st;
    json_t *o = json_object();
    if (!o) return terse_err(TERSE_ERR_NOMEM, "terse_result_json: object");
    char buf[64];
    json_object_set_new(o, "compressed_prompt", terse_json_bytes(r->text, r->len));
    json_object_set_new(o, "origin_tokens", json_integer(st->origin_tokens));
    json_object_set_new(o, "compressed_tokens", json_integer(st->compressed_tokens));
    snprintf(buf, sizeof buf, "%.1fx", st->ratio);
    json_object_set_new(o, "ratio", json_string(buf));
    snprintf(buf, sizeof buf, "%.1f%%", st->rate * 100.0);
    json_object_set_new(o, "rate", json_string(buf));
    snprintf(buf, sizeof buf, ", Saving $%.1f in GPT-4.",
             (double)(st->origin_tokens - st->compressed_tokens) * 0.06 / 1000.0);
    json_object_set_new(o, "saving", json_string(buf));
    json_object_set_new(o, "method", json_string(method_name(r->method)));
    if (r->method == TERSE_METHOD_SELECTIVE) json_object_set_new(o, "unit", json_string(unit_name(r->unit)));
    json_object_set_new(o, "compat", json_boolean(r->compat));
    json_object_set_new(o, "target_tokens", json_integer(st->target_tokens));
    json_object_set_new(o, "achieved_rate", json_real(st->rate));
    json_object_set_new(o, "origin_model_tokens", json_integer(st->origin_model_tokens));
    json_object_set_new(o, "compressed_model_tokens", json_integer(st->compressed_model_tokens));
    if (st->origin_count_tokens >= 0) {
        json_object_set_new(o, "origin_count_tokens", json_integer(st->origin_count_tokens));
        json_object_set_new(o, "compressed_count_tokens", json_integer(st->compressed_count_tokens));
    }
    json_object_set_new(o, "units", json_integer(st->n_units));
    json_object_set_new(o, "units_kept", json_integer(st->n_units_kept));
    json_object_set_new(o, "over_budget", json_boolean(st->over_budget));
    json_object_set_new(o, "warning", json_string(r->warning));
    json_object_set_new(o, "seconds", json_real(st->seconds));
    json_object_set_new(o, "seconds_model", json_real(st->seconds_model));
    if (with_tokens && r->tokens) {
        json_t *a = json_array();
        for (int64_t t = 0; t < r->n_tokens; t++) {
            const terse_token_info *ti = &r->tokens[t];
            json_t *e = json_object();
            json_object_set_new(e, "id", json_integer(ti->id));
            json_object_set_new(e, "text", terse_json_bytes(r->source + ti->span.begin,
                                                      (size_t)(ti->span.end - ti->span.begin)));
            json_object_set_new(e, "begin", json_integer(ti->span.begin));
            json_object_set_new(e, "end", json_integer(ti->span.end));
            json_object_set_new(e, "score", isnan(ti->score) ? json_null() : json_real(ti->score));
            json_object_set_new(e, "kept", json_boolean(ti->flags & TERSE_TOKEN_KEPT));
            if (ti->flags & TERSE_TOKEN_PROTECTED) json_object_set_new(e, "protected", json_true());
            if (ti->flags & TERSE_TOKEN_FIXED) json_object_set_new(e, "fixed", json_true());
            if (ti->flags & TERSE_TOKEN_SEPARATOR) json_object_set_new(e, "separator", json_true());
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "tokens", a);
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return terse_err(TERSE_ERR_NOMEM, "terse_result_json: dump");
    *out = s;
    return TERSE_OK;
}
