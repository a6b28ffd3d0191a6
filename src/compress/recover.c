/* recover.c - LongLLMLingua's recover(): map a response that an LLM wrote under a compressed
 * prompt back to the original prompt's bytes (upstream: PromptCompressor.recover and its
 * match_from_compressed, microsoft/LLMLingua 0.2.2).
 *
 * The story, as upstream tells it:
 *   1. Cut the response into words. Upstream splits on ' ' only, so "Paris\n" is one word
 *      that never occurs in the compressed prompt; here a word is a maximal run of
 *      non-blank bytes and the blanks between words are copied through unchanged.
 *   2. From each word, take the longest run of words (with the blanks between them) that
 *      occurs verbatim in the compressed prompt. Upstream tests each extension with Python's
 *      `in` (a scan of the compressed prompt per extra word); here one suffix automaton of
 *      the compressed prompt answers "longest prefix from here that occurs there" in time
 *      linear in the prefix, so step 2 is O(|compressed| + |response|) overall.
 *   3. Tokenize the run and find the original tokens it came from: for every occurrence of
 *      its first token, walk its later tokens, each to its next occurrence at most 10 tokens
 *      ahead (else skipped); keep the start with the most tokens matched, then the shortest
 *      span, then the earliest (upstream's rule exactly). The run is tried bare and with a
 *      leading space (byte-level vocabularies glue the space to the word, so "quick" and
 *      " quick" are different tokens; upstream's SentencePiece tokenizer adds the space
 *      itself): the variant with the larger share of its tokens matched wins, then the one
 *      that skips fewer original tokens, then the bare one.
 *   4. Replace the run by the original bytes of that span (widened to whole UTF-8 characters,
 *      leading blanks dropped: the separator is already out), when at least half of the
 *      run's tokens were matched; else copy the run (upstream puts the bytes of the one or
 *      two tokens it matched in place of the whole run). When the run's last token is not
 *      matched (its separator space sits inside it: " A" of "+ A" where the original has
 *      "12A"), the span ends before it and upstream loses the last word; here the run is
 *      shortened by that word and matched again, and the word becomes a run of its own.
 *
 * Cost of step 3: upstream walks every occurrence of the first token over the whole run,
 * O(occurrences x run tokens), 35 s for 40 KB of "abab...". Here each step scans at most 10
 * tokens, a walk that meets the previous walk's path (same token, same position) stops there
 * and takes its known future, a walk that can no longer beat the best is dropped, a perfect
 * match (every token, contiguous) ends the search, and the walks of one run take at most
 * RECOVER_BUDGET x (run tokens + 64) steps in all: past that, later starts are not tried and
 * the best so far is used (only text where one token repeats thousands of times with long
 * runs gets there; ties go to the earliest start anyway).
 *
 * Not here: tokenizing the original prompt (the caller gives its ids and spans).
 */
#include <stdlib.h>
#include <string.h>

#include "compress/lingua_core.h"

#define RECOVER_GAP 10      /* upstream: the next token at most 10 positions ahead */
#define RECOVER_BUDGET 128  /* walk steps per run token (see the header comment) */

/* ---------------------------------------------------------------------------------------- */
/* Suffix automaton of the compressed prompt (bytes)                                         */

typedef struct {
    int32_t len, link, edge; /* longest string, suffix link, first outgoing edge (-1) */
} sam_state;

typedef struct {
    int32_t to, next;
    uint8_t c;
} sam_edge;

typedef struct {
    sam_state *st;
    sam_edge *ed;
    int32_t n_st, n_ed, cap_ed, last;
    int32_t root[256]; /* the root's edges, direct (0 = none: no edge leads to the root) */
} sam;

static int32_t sam_get(const sam *a, int32_t p, uint8_t c) {
    if (p == 0) return a->root[c];
    for (int32_t e = a->st[p].edge; e >= 0; e = a->ed[e].next)
        if (a->ed[e].c == c) return a->ed[e].to;
    return 0;
}

static int sam_set(sam *a, int32_t p, uint8_t c, int32_t q) {
    if (p == 0) {
        a->root[c] = q;
        return TERSE_OK;
    }
    for (int32_t e = a->st[p].edge; e >= 0; e = a->ed[e].next)
        if (a->ed[e].c == c) {
            a->ed[e].to = q;
            return TERSE_OK;
        }
    if (a->n_ed == a->cap_ed) {
        int32_t cap = a->cap_ed ? a->cap_ed * 2 : 1024;
        sam_edge *t = terse_reallocarray(a->ed, (size_t)cap, sizeof *t, "recover: automaton");
        if (!t) return TERSE_ERR_NOMEM;
        a->ed = t;
        a->cap_ed = cap;
    }
    a->ed[a->n_ed] = (sam_edge){q, a->st[p].edge, c};
    a->st[p].edge = a->n_ed++;
    return TERSE_OK;
}

/* Build the automaton of s[0..n) (n <= INT32_MAX / 2: at most 2n states). */
static int sam_build(sam *a, const char *s, size_t n) {
    memset(a, 0, sizeof *a);
    a->st = terse_reallocarray(NULL, 2 * n + 2, sizeof *a->st, "recover: automaton");
    if (!a->st) return TERSE_ERR_NOMEM;
    a->st[0] = (sam_state){0, -1, -1};
    a->n_st = 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        int32_t cur = a->n_st++, p = a->last;
        a->st[cur] = (sam_state){a->st[p].len + 1, 0, -1};
        for (; p >= 0 && !sam_get(a, p, c); p = a->st[p].link)
            if (sam_set(a, p, c, cur)) return TERSE_ERR_NOMEM;
        if (p >= 0) {
            int32_t q = sam_get(a, p, c);
            if (a->st[p].len + 1 == a->st[q].len) {
                a->st[cur].link = q;
            } else {
                int32_t cl = a->n_st++;
                a->st[cl] = (sam_state){a->st[p].len + 1, a->st[q].link, -1};
                for (int32_t e = a->st[q].edge; e >= 0; e = a->ed[e].next)
                    if (sam_set(a, cl, a->ed[e].c, a->ed[e].to)) return TERSE_ERR_NOMEM;
                for (; p >= 0 && sam_get(a, p, c) == q; p = a->st[p].link)
                    if (sam_set(a, p, c, cl)) return TERSE_ERR_NOMEM;
                a->st[q].link = a->st[cur].link = cl;
            }
        }
        a->last = cur;
    }
    return TERSE_OK;
}

static void sam_free(sam *a) {
    free(a->st);
    free(a->ed);
}

/* Length of the longest prefix of s[0..n) that occurs in the automaton's text. */
static size_t sam_longest(const sam *a, const char *s, size_t n) {
    int32_t p = 0;
    size_t k = 0;
    while (k < n && (p = sam_get(a, p, (uint8_t)s[k])) != 0) k++;
    return k;
}

/* ---------------------------------------------------------------------------------------- */
/* match_from_compressed: the original span of a run's tokens                               */

typedef struct {
    int32_t id, pos;
} id_pos;

static int cmp_id_pos(const void *a, const void *b) {
    const id_pos *x = a, *y = b;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    return (x->pos > y->pos) - (x->pos < y->pos);
}

typedef struct {
    const int32_t *ids;     /* (n) the original's tokens */
    int32_t n;
    id_pos *tab;            /* (n) sorted by id, then position */
    int32_t *path, *rem;    /* (cap) the last complete walk: position after each step, and
                               tokens it still matched after that step */
    uint8_t *phit;          /* (cap) whether each step of the last complete walk matched */
    int32_t *cur;           /* (cap) the walk in progress */
    uint8_t *hit;           /* (cap) whether each step of it matched */
    int32_t cap;
} matcher;

typedef struct {
    int found;
    int32_t c, l, y; /* tokens matched, original span [l, y] */
    int last;        /* the run's last token is among them */
} match;

static int matcher_reserve(matcher *m, int64_t nt) {
    if (nt <= m->cap) return TERSE_OK;
    if (nt > INT32_MAX) return terse_err(TERSE_ERR_RANGE, "recover: a run of %lld tokens", (long long)nt);
    int32_t cap = (int32_t)nt;
    free(m->path);
    free(m->rem);
    free(m->phit);
    free(m->cur);
    free(m->hit);
    m->path = terse_reallocarray(NULL, (size_t)cap, sizeof *m->path, "recover: walk");
    m->phit = terse_reallocarray(NULL, (size_t)cap, 1, "recover: walk");
    m->rem = terse_reallocarray(NULL, (size_t)cap, sizeof *m->rem, "recover: walk");
    m->cur = terse_reallocarray(NULL, (size_t)cap, sizeof *m->cur, "recover: walk");
    m->hit = terse_reallocarray(NULL, (size_t)cap, 1, "recover: walk");
    m->cap = m->path && m->rem && m->phit && m->cur && m->hit ? cap : 0;
    return m->cap ? TERSE_OK : TERSE_ERR_NOMEM;
}

/* Upstream's rule (see the header): the best start among the occurrences of q[0]. */
static match best_match(matcher *m, const int32_t *q, int32_t nt) {
    match best = {0, 0, 0, 0, 0};
    if (nt <= 0) return best;
    int32_t lo = 0, hi = m->n;
    while (lo < hi) { /* first entry with id >= q[0] */
        int32_t mid = lo + (hi - lo) / 2;
        if (m->tab[mid].id < q[0]) lo = mid + 1;
        else hi = mid;
    }
    int64_t budget = (int64_t)RECOVER_BUDGET * (nt + 64), steps = 0;
    int32_t have = 0;     /* path/rem describe a complete walk */
    int32_t path_end = 0; /* where that walk ended */
    int32_t best_span = 0;
    for (int32_t k = lo; k < m->n && m->tab[k].id == q[0] && steps < budget; k++) {
        int32_t l0 = m->tab[k].pos, y = l0, c = 1, x = 1, end = -1;
        m->cur[0] = y;
        m->hit[0] = 1;
        for (; x < nt; x++, steps++) {
            int32_t stop = y + RECOVER_GAP < m->n - 1 ? y + RECOVER_GAP : m->n - 1, z = y + 1;
            while (z <= stop && m->ids[z] != q[x]) z++;
            m->hit[x] = z <= stop;
            if (z <= stop) y = z, c++;
            m->cur[x] = y;
            if (have && m->path[x] == y) { /* same state as the last walk: same future */
                c += m->rem[x];
                end = path_end;
                break;
            }
            int32_t left = nt - 1 - x;
            if (best.found && (c + left < best.c ||
                               (c + left == best.c && y - l0 + 1 + left >= best_span)))
                break; /* cannot beat the best any more */
        }
        if (x == nt) end = y;
        if (end < 0) continue; /* dropped: path/rem still describe the last complete walk */
        /* commit this walk's steps 0..min(x, nt-1) into path/rem */
        int32_t last = x < nt ? x : nt - 1, r = x < nt ? m->rem[x] : 0;
        for (int32_t i = last; i >= 0; i--) {
            m->path[i] = m->cur[i];
            m->phit[i] = m->hit[i];
            m->rem[i] = r;
            r += m->hit[i];
        }
        have = 1;
        path_end = end;
        int32_t span = end - l0 + 1;
        if (!best.found || c > best.c || (c == best.c && span < best_span)) {
            best = (match){1, c, l0, end, m->phit[nt - 1]};
            best_span = span;
            if (c == nt && span == nt) break; /* perfect: nothing can beat it */
        }
    }
    return best;
}

/* ---------------------------------------------------------------------------------------- */
/* recover                                                                                   */

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Tokenize s[0..n) into *ids (grown as needed). Returns the count or a negative status. */
static int64_t tokenize(lingua_tokenize_fn tok, void *u, const char *s, size_t n, int32_t **ids,
                        int64_t *cap) {
    int64_t nt = tok(u, s, n, *ids, *cap);
    if (nt > *cap) {
        int32_t *t = terse_reallocarray(*ids, (size_t)nt, sizeof *t, "recover: run tokens");
        if (!t) return TERSE_ERR_NOMEM;
        *ids = t;
        *cap = nt;
        nt = tok(u, s, n, *ids, *cap);
    }
    return nt;
}

/* Better of two matches of variants with na and nb tokens: 1 when b beats a (see header). */
static int better(match a, int64_t na, match b, int64_t nb) {
    if (!b.found) return 0;
    if (!a.found) return 1;
    int64_t ra = (int64_t)a.c * nb, rb = (int64_t)b.c * na; /* shares matched */
    if (rb != ra) return rb > ra;
    return (b.y - b.l + 1 - b.c) < (a.y - a.l + 1 - a.c); /* original tokens skipped */
}

int lingua_recover(const char *orig, size_t orig_len, const int32_t *orig_ids,
                   const terse_span *orig_spans, int32_t n_orig, const char *compressed,
                   size_t comp_len, const char *response, size_t resp_len,
                   lingua_tokenize_fn tok, void *tok_u, char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (comp_len > INT32_MAX / 2 - 2)
        return terse_err(TERSE_ERR_RANGE, "recover: compressed prompt of %zu bytes (at most %d)",
                         comp_len, INT32_MAX / 2 - 2);
    terse_buf ob = {0}, sp = {0};
    sam a;
    matcher m = {.ids = orig_ids, .n = n_orig};
    int32_t *rids = NULL;
    int64_t rcap = 0;
    int rc = sam_build(&a, compressed, comp_len);
    if (!rc && !(m.tab = terse_reallocarray(NULL, (size_t)(n_orig > 0 ? n_orig : 1), sizeof *m.tab,
                                            "recover: token table")))
        rc = TERSE_ERR_NOMEM;
    if (!rc) rc = terse_buf_put(&ob, "", 0);
    if (rc) goto done;
    for (int32_t i = 0; i < n_orig; i++) m.tab[i] = (id_pos){orig_ids[i], i};
    qsort(m.tab, (size_t)n_orig, sizeof *m.tab, cmp_id_pos);

    size_t at = 0; /* response bytes before `at` are out */
    while (at < resp_len) {
        size_t w0 = at;
        while (w0 < resp_len && is_blank(response[w0])) w0++;
        if ((rc = terse_buf_put(&ob, response + at, w0 - at))) goto done; /* blanks as they are */
        if (w0 == resp_len) break;
        size_t w1 = w0;
        while (w1 < resp_len && !is_blank(response[w1])) w1++;
        /* the longest run of whole words from w0 that occurs in the compressed prompt */
        size_t L = sam_longest(&a, response + w0, resp_len - w0), run_end = w1;
        if (L < w1 - w0) { /* the word itself is not there: copied */
            if ((rc = terse_buf_put(&ob, response + w0, w1 - w0))) goto done;
            at = w1;
            continue;
        }
        for (size_t e = w1;;) { /* extend over the next word while it stays inside L */
            while (e < resp_len && is_blank(response[e])) e++;
            if (e == resp_len) break;
            size_t f = e;
            while (f < resp_len && !is_blank(response[f])) f++;
            if (f - w0 > L) break;
            run_end = e = f;
        }
    match_run:;
        const char *run = response + w0;
        size_t rn = run_end - w0;
        /* match the run bare and with a leading space; keep the better */
        match best = {0, 0, 0, 0, 0};
        int64_t best_nt = 0;
        sp.n = 0;
        if ((rc = terse_buf_put(&sp, " ", 1)) || (rc = terse_buf_put(&sp, run, rn))) goto done;
        for (int v = 0; v < 2; v++) {
            int64_t nt = v ? tokenize(tok, tok_u, sp.s, sp.n, &rids, &rcap)
                           : tokenize(tok, tok_u, run, rn, &rids, &rcap);
            if (nt < 0) {
                rc = (int)nt;
                goto done;
            }
            if ((rc = matcher_reserve(&m, nt))) goto done;
            match got = best_match(&m, rids, (int32_t)nt);
            if (better(best, best_nt, got, nt)) best = got, best_nt = nt;
            if (best.found && best.c == best_nt && best.y - best.l + 1 == best.c) break;
        }
        int64_t s0 = 0, s1 = 0;
        if (best.found && 2 * (int64_t)best.c < best_nt) best.found = 0; /* mostly unmatched */
        if (best.found && !best.last && run_end > w1) {
            /* The run's last token is not in the original's span (its separator space sits
             * inside it: " A" of "+ A" where the original has "12A"): the span would end
             * before it and lose the last word. Shorten the run by that word and try again;
             * the word is then a run of its own. */
            size_t e = run_end;
            while (e > w0 && !is_blank(response[e - 1])) e--;
            while (e > w0 && is_blank(response[e - 1])) e--;
            run_end = e;
            goto match_run;
        }
        if (best.found) {
            s0 = orig_spans[best.l].begin;
            s1 = orig_spans[best.y].end;
            if (s0 < 0 || s1 > (int64_t)orig_len || s1 < s0) {
                rc = terse_err(TERSE_ERR_INVALID, "recover: span [%lld, %lld) outside the "
                               "original of %zu bytes", (long long)s0, (long long)s1, orig_len);
                goto done;
            }
            /* whole UTF-8 characters, no leading blanks */
            while (s0 > 0 && s0 < s1 && ((uint8_t)orig[s0] & 0xc0) == 0x80) s0--;
            while (s1 < (int64_t)orig_len && ((uint8_t)orig[s1] & 0xc0) == 0x80) s1++;
            while (s0 < s1 && is_blank(orig[s0])) s0++;
        }
        if (s0 < s1) rc = terse_buf_put(&ob, orig + s0, (size_t)(s1 - s0));
        else rc = terse_buf_put(&ob, run, rn);
        if (rc) goto done;
        at = run_end;
    }
    *out = ob.s;
    if (out_len) *out_len = ob.n;
    ob.s = NULL;
done:
    sam_free(&a);
    free(ob.s);
    free(sp.s);
    free(m.tab);
    free(m.path);
    free(m.phit);
    free(m.rem);
    free(m.cur);
    free(m.hit);
    free(rids);
    return rc;
}
