/* lingua_core.c - the model-independent machinery of LLMLingua / LongLLMLingua.
 *
 * Chapters: small pure pieces (top-k threshold, argsort, window plan,
 * ramp, reorder, coarse budget walk); the compat token-level engine, a line-by-line model of
 * microsoft/LLMLingua 0.2.2's iterative_compress_prompt + get_compressed_input (global
 * threshold over the whole loss vector, the keep mask shifted by one token, the trailing
 * partial window never compressed, Python's negative-slice wrap-around for short prompts, KV
 * eviction past the context); the default engine (per-window quotas from a water-filled
 * budget, scores aligned with their tokens, every window compressed, the KV cache of the
 * kept prefix reused).
 *
 * Not here: texts, tags, jobs and outputs (llmlingua.c, longllmlingua.c, compress.c);
 * recover() (recover.c).
 * Notation: I = window size, n = tokens, loss = surprisal in nats.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lingua_core.h"

static int lm_forward(lingua_lm *lm, const int32_t *ids, int32_t n, const int32_t *targets,
                      int32_t nt, float *loss) {
    double t0 = terse_now();
    int rc = lm->forward(lm->u, ids, n, targets, nt, loss);
    lm->fwd_seconds += terse_now() - t0;
    lm->fwd_tokens += n;
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Small pure pieces                                                                         */

static void swapf(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

/* k-th largest of v[0..n) (0-based), v reordered (quickselect, median of three). */
static float kth_largest(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] > v[lo]) swapf(&v[mid], &v[lo]);
        if (v[hi] > v[lo]) swapf(&v[hi], &v[lo]);
        if (v[hi] > v[mid]) swapf(&v[hi], &v[mid]);
        float pv = v[mid]; /* descending: larger first */
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pv) i++;
            while (v[j] < pv) j--;
            if (i <= j) swapf(&v[i++], &v[j--]);
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

float lingua_threshold_topk(const float *v, int64_t n, double ratio, float *scratch) {
    if (ratio == 1.0) return -INFINITY;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (v[i] != 10000.0f && !isnan(v[i])) scratch[m++] = v[i];
    if (m == 0) return -INFINITY;
    int64_t k = (int64_t)((double)m * ratio) - 1; /* Python int() truncates toward zero */
    if (k > m - 1) k = m - 1;
    if (k < 0) k = 0;
    return kth_largest(scratch, m, k);
}

typedef struct {
    double s;
    int32_t i;
} scored_idx;

static int cmp_desc(const void *a, const void *b) {
    const scored_idx *x = a, *y = b;
    int xn = isnan(x->s), yn = isnan(y->s);
    if (xn != yn) return xn - yn;
    if (!xn && x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_asc(const void *a, const void *b) {
    const scored_idx *x = a, *y = b;
    int xn = isnan(x->s), yn = isnan(y->s);
    if (xn != yn) return xn - yn;
    if (!xn && x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

void lingua_argsort(const double *score, int32_t n, int desc, int32_t *idx) {
    scored_idx *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (!t) { /* ordering is advisory here: fall back to index order */
        for (int32_t i = 0; i < n; i++) idx[i] = i;
        return;
    }
    for (int32_t i = 0; i < n; i++) t[i] = (scored_idx){score[i], i};
    qsort(t, (size_t)n, sizeof *t, desc ? cmp_desc : cmp_asc);
    for (int32_t i = 0; i < n; i++) idx[i] = t[i].i;
    free(t);
}

static int plan_push(lingua_plan *p, int32_t n, double r) {
    if (p->n_pieces == p->cap_pieces) {
        int32_t cap = p->cap_pieces ? 2 * p->cap_pieces : 16;
        lingua_piece *q = terse_reallocarray(p->piece, (size_t)cap, sizeof *q, "window plan");
        if (!q) return TERSE_ERR_NOMEM;
        p->piece = q;
        p->cap_pieces = cap;
    }
    p->piece[p->n_pieces++] = (lingua_piece){n, r};
    return TERSE_OK;
}

/* close the current window: it is the pieces [first[n_windows], n_pieces) */
static int plan_close(lingua_plan *p) {
    if (p->n_windows + 2 > p->cap_windows) {
        int32_t cap = p->cap_windows ? 2 * p->cap_windows : 16;
        int32_t *q = terse_reallocarray(p->first, (size_t)cap, sizeof *q, "window plan");
        if (!q) return TERSE_ERR_NOMEM;
        if (!p->first) q[0] = 0;
        p->first = q;
        p->cap_windows = cap;
    }
    p->first[++p->n_windows] = p->n_pieces;
    return TERSE_OK;
}

static double clamp01(double x) { return x > 1 ? 1 : (x < 0 ? 0 : x); }

int lingua_plan_build(lingua_plan *p, const int64_t *len, const double *dyn, int32_t n_ctx,
                      double target, int32_t I) {
    memset(p, 0, sizeof *p);
    if (I < 1) return terse_err(TERSE_ERR_INVALID, "lingua: iterative_size %d < 1", I);
    int rc = plan_close(p); /* allocate first[] (first[0] = 0) */
    if (rc) return rc;
    p->n_windows = 0;
    double sum = 0;
    for (int32_t i = 0; i < n_ctx; i++) sum += (double)len[i];
    const double tau = target / (sum + 1);
    int64_t last = 1;
    int open = 0; /* pieces pending in the current window (last_target non-empty) */
    for (int32_t i = 0; i < n_ctx && !rc; i++) {
        double r = clamp01(tau + (dyn ? dyn[i] : 0.0));
        if (last + len[i] >= I) {
            rc = plan_push(p, (int32_t)(I - last), r);
            if (!rc) rc = plan_close(p);
            last = last + len[i] - I;
            if (last > I) {
                int64_t k = last / I;
                for (int64_t q = 0; q < k && !rc; q++) {
                    rc = plan_push(p, I, r);
                    if (!rc) rc = plan_close(p);
                }
                last -= k * I;
            }
            open = 0;
            if (last && !rc) {
                rc = plan_push(p, (int32_t)last, r);
                open = 1;
            }
        } else {
            last += len[i];
            rc = plan_push(p, (int32_t)len[i], r);
            open = 1;
        }
    }
    if (!rc && open) rc = plan_close(p);
    if (rc) lingua_plan_free(p);
    return rc;
}

void lingua_plan_free(lingua_plan *p) {
    free(p->piece);
    free(p->first);
    memset(p, 0, sizeof *p);
}

void lingua_dynamic_ramp(int32_t n, double d, double *out) {
    for (int32_t j = 0; j < n; j++) {
        int32_t i = n - 1 - 2 * j; /* range(-(n-1), n, 2) reversed */
        out[j] = n > 1 ? (double)i * (fabs(d) / (double)(n - 1)) : 0.0;
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void lingua_reorder(int32_t *idx, int32_t n, int order) {
    if (order == LINGUA_ORDER_ORIGINAL) {
        qsort(idx, (size_t)n, sizeof *idx, cmp_i32);
    } else if (order == LINGUA_ORDER_TWO_STAGE && n > 2) {
        int32_t *t = malloc((size_t)n * sizeof *t);
        if (!t) return;
        int32_t k = 0;
        for (int32_t i = 0; i < n; i += 2) t[k++] = idx[i];
        int32_t last_odd = (n - 1) % 2 == 1 ? n - 1 : n - 2;
        for (int32_t i = last_odd; i >= 1; i -= 2) t[k++] = idx[i];
        memcpy(idx, t, (size_t)n * sizeof *t);
        free(t);
    }
}

int32_t lingua_budget_walk(const int32_t *rank, int32_t n_rank, const int64_t *len,
                           int32_t n_ctx, double budget, const int32_t *forced,
                           int32_t n_forced, int32_t *used) {
    int32_t n = 0;
    for (int32_t i = 0; i < n_forced; i++) {
        int dup = 0;
        for (int32_t k = 0; k < n; k++) dup |= used[k] == forced[i];
        if (!dup && forced[i] >= 0 && forced[i] < n_ctx) used[n++] = forced[i];
    }
    for (int32_t r = 0; r < n_rank; r++) {
        int32_t idx = rank[r];
        if (idx < 0 || idx >= n_ctx) continue;
        budget -= (double)len[idx];
        int dup = 0;
        for (int32_t k = 0; k < n; k++) dup |= used[k] == idx;
        if (!dup) used[n++] = idx;
        if (budget < 0) break;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Compat engine: iterative_compress_prompt                                                  */
/*
 * State mirrors the Python variables: cur (compressed_input_ids, with each id's original
 * index in org), past_loss (loss of cur[j+1] at j, stale where not rescored), self_loss for
 * the stream without the prefix (condition_compare), end / ready_end, and whether each
 * past_key_values is None (kv_live).
 */

typedef struct {
    int32_t *cur, *org;       /* (n) current ids and their original indices */
    int32_t n_cur;
    int32_t *pop;             /* original indices evicted from the front (kept) */
    int32_t n_pop;
    float *loss, *self_loss;  /* (cap) past_loss, self_past_loss */
    int32_t n_loss, n_self, cap;
    uint8_t *need;            /* (cap) scratch mask */
    float *tmp, *scratch;     /* (cap) */
    int32_t start;
    float *score;   /* (n) optional: the value each decided token was compared with */
} compat_state;

/* Python's slice bound: x in a[:x] / a[x:] for a of length m */
static int32_t py_bound(int64_t x, int32_t m) {
    if (x < 0) x += m;
    if (x < 0) x = 0;
    if (x > m) x = m;
    return (int32_t)x;
}

/* get_compressed_input for one piece: win_end = end of the piece, delta = its size. */
static int32_t compat_piece(compat_state *s, int64_t win_end, int32_t delta, float thr,
                            int contrast) {
    uint8_t *need = s->need;
    int32_t m = 0;
    const int32_t start = s->start;
    if (contrast) {
        int32_t a = start < s->n_loss ? start : s->n_loss;
        for (int32_t j = 0; j < a; j++) need[m++] = s->loss[j] > 0;
        int32_t b = s->n_loss - start > 0 ? s->n_loss - start : 0;
        if (b > s->n_self) b = s->n_self;
        for (int32_t j = 0; j < b; j++) need[m++] = s->self_loss[j] - s->loss[start + j] > thr;
    } else {
        for (int32_t j = 0; j < s->n_loss; j++) need[m++] = s->loss[j] > thr;
    }
    if (s->n_loss > 0) need[m++] = s->loss[0] > 0; /* the appended loss[:1] > 0 */
    if (s->score) /* for display: what the tokens of this piece were compared with */
        for (int32_t j = py_bound(win_end - delta, m); j < py_bound(win_end, m) && j < s->n_cur; j++) {
            float v = NAN;
            if (!contrast && j < s->n_loss) v = s->loss[j];
            else if (contrast && j >= start && j - start < s->n_self && j < s->n_loss)
                v = s->self_loss[j - start] - s->loss[j];
            s->score[s->org[j]] = v;
        }
    for (int32_t j = py_bound(win_end, m); j < m; j++) need[j] = 1;
    for (int32_t j = 0; j < py_bound(win_end - delta, m); j++) need[j] = 1;
    /* loss = loss[need[:-1]] */
    int32_t w = 0, lim = m - 1 < s->n_loss ? m - 1 : s->n_loss;
    for (int32_t j = 0; j < lim; j++)
        if (need[j]) s->loss[w++] = s->loss[j];
    s->n_loss = w;
    if (contrast) {
        while (m < s->n_self + start + 1) need[m++] = 1;
        w = 0;
        for (int32_t j = 0; j < s->n_self; j++)
            if (need[start + j]) s->self_loss[w++] = s->self_loss[j];
        s->n_self = w;
    }
    while (m < s->n_cur) need[m++] = 1;
    if (m > s->n_cur) m = s->n_cur;
    int32_t dropped_before = 0, eb = py_bound(win_end, m);
    for (int32_t j = 0; j < eb; j++) dropped_before += !need[j];
    w = 0;
    for (int32_t j = 0; j < s->n_cur; j++)
        if (need[j]) {
            s->cur[w] = s->cur[j];
            s->org[w++] = s->org[j];
        }
    s->n_cur = w;
    return (int32_t)(win_end - dropped_before);
}

/* get_ppl over cur (or cur[start:] for the self stream) with its cache; writes the losses
 * into *dst at ready_end, extending with zeros like the Python code. Returns the number of
 * losses, 0 when none (the caller stops), or a negative status. */
static int compat_ppl(lingua_lm *lm, int kv_live, const int32_t *ids, int32_t n_ids,
                      int32_t idx, int64_t end, int32_t ready_end, float **dst, int32_t *n_dst,
                      int32_t cap, float *tmp, int first) {
    int32_t past = kv_live ? lm->kv_len(lm->u) : 0;
    if (!kv_live) {
        int rc = lm->kv_truncate(lm->u, 0);
        if (rc) return rc;
    }
    int64_t e = idx ? end : n_ids;
    if (e > (int64_t)past + lm->n_ctx) e = (int64_t)past + lm->n_ctx;
    if (e > n_ids) e = n_ids;
    int32_t nf = (int32_t)(e - past);
    if (nf <= 1) return 0;
    int rc = lm_forward(lm, ids + past, nf, ids + past + 1, nf - 1, tmp);
    if (rc) return rc;
    int32_t nl = nf - 1;
    float *L = *dst;
    if (first) {
        memcpy(L, tmp, (size_t)nl * sizeof *L);
        *n_dst = nl;
        return nl;
    }
    if (end - 1 > *n_dst) { /* torch.zeros_like(loss)[: end - 1 - len] */
        int64_t add = end - 1 - *n_dst;
        if (add > nl) add = nl;
        for (int64_t k = 0; k < add && *n_dst < cap; k++) L[(*n_dst)++] = 0;
    }
    for (int32_t k = 0; k < nl; k++) {
        int64_t at = (int64_t)ready_end + k;
        if (at < 0 || at >= *n_dst)
            return terse_err(TERSE_ERR_INTERNAL, "lingua compat: loss slot %lld outside %d",
                             (long long)at, *n_dst);
        L[at] = tmp[k];
    }
    return nl;
}

int lingua_compat_run(lingua_lm *lm, const lingua_compat_in *in, uint8_t *keep) {
    const int32_t n = in->n, I = in->I, start = in->start;
    const int contrast = in->self_lm != NULL;
    memset(keep, 0, (size_t)n);
    if (n <= 0) return TERSE_OK;
    if (I < 1) return terse_err(TERSE_ERR_INVALID, "lingua: iterative_size %d < 1", I);
    compat_state s = {0};
    s.start = start;
    s.score = in->score;
    if (s.score)
        for (int32_t i = 0; i < n; i++) s.score[i] = NAN;
    s.cap = n + 2;
    s.cur = malloc((size_t)s.cap * sizeof(int32_t));
    s.org = malloc((size_t)s.cap * sizeof(int32_t));
    s.pop = malloc((size_t)s.cap * sizeof(int32_t));
    s.loss = malloc((size_t)s.cap * sizeof(float));
    s.self_loss = malloc((size_t)s.cap * sizeof(float));
    s.tmp = malloc((size_t)s.cap * sizeof(float));
    s.scratch = malloc((size_t)s.cap * sizeof(float));
    s.need = malloc((size_t)s.cap);
    int rc = TERSE_OK;
    if (!s.cur || !s.org || !s.pop || !s.loss || !s.self_loss || !s.tmp || !s.scratch ||
        !s.need) {
        rc = terse_err(TERSE_ERR_NOMEM, "lingua compat: %d tokens", n);
        goto done;
    }
    memcpy(s.cur, in->ids, (size_t)n * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) s.org[i] = i;
    s.n_cur = n;
    const int32_t max_pos = lm->n_ctx;
    int64_t end = (int64_t)I + start < n ? (int64_t)I + start : n;
    int32_t ready_end = 0, self_ready_end = 0, idx = 0;
    int kv_live = 0, self_live = 0, have_loss = 0, have_self = 0;
    lingua_lm *sl = in->self_lm;
    while (end <= s.n_cur) {
        if (end > max_pos && kv_live) { /* KV-cache compression */
            int32_t e = (int32_t)(end - max_pos);
            int32_t sb = in->cache_bos_num + start < max_pos ? in->cache_bos_num + start : max_pos;
            for (int32_t k = 0; k < e && k < s.n_cur; k++) s.pop[s.n_pop++] = s.org[k];
            memmove(s.cur, s.cur + e, (size_t)(s.n_cur - e) * sizeof(int32_t));
            memmove(s.org, s.org + e, (size_t)(s.n_cur - e) * sizeof(int32_t));
            s.n_cur -= e;
            if ((rc = lm->kv_evict(lm->u, sb, e))) goto done;
            end -= e;
            ready_end -= e;
            if (contrast) {
                int32_t s2 = sl->kv_len(sl->u) - e;
                if (sb < s2) s2 = sb;
                self_ready_end -= e;
                if ((rc = sl->kv_evict(sl->u, s2, e))) goto done;
            }
        }
        int r = compat_ppl(lm, kv_live, s.cur, s.n_cur, idx, end, ready_end, &s.loss, &s.n_loss,
                           s.cap, s.tmp, !have_loss);
        if (r < 0) {
            rc = r;
            goto done;
        }
        if (r == 0) break;
        have_loss = 1;
        if (idx) {
            int64_t t = end - I;
            if (t < 0) t = 0;
            if (t < lm->kv_len(lm->u) && (rc = lm->kv_truncate(lm->u, (int32_t)t))) goto done;
            kv_live = 1;
        } else {
            kv_live = 0;
        }
        if (contrast) {
            int32_t ns = s.n_cur - start > 0 ? s.n_cur - start : 0;
            r = compat_ppl(sl, self_live, s.cur + start, ns, idx, end - start, self_ready_end,
                           &s.self_loss, &s.n_self, s.cap, s.tmp, !have_self);
            if (r < 0) {
                rc = r;
                goto done;
            }
            if (r > 0) have_self = 1;
            if (idx) {
                int64_t t = end - I - start;
                if (t < 0) t = 0;
                if (t < sl->kv_len(sl->u) && (rc = sl->kv_truncate(sl->u, (int32_t)t)))
                    goto done;
                self_live = 1;
            } else {
                self_live = 0;
            }
            self_ready_end = (start && idx == 0) ? 0 : (int32_t)(end - start - I);
        }
        ready_end = (start && idx == 0) ? 0 : (int32_t)(end - I);
        if (idx >= in->plan->n_windows) break; /* Python would raise IndexError */
        for (int32_t pi = in->plan->first[idx]; pi < in->plan->first[idx + 1]; pi++) {
            const lingua_piece *pc = &in->plan->piece[pi];
            float thr;
            if (contrast) {
                int32_t b = s.n_loss - start > 0 ? s.n_loss - start : 0;
                if (b > s.n_self) b = s.n_self;
                for (int32_t k = 0; k < b; k++) s.tmp[k] = s.self_loss[k] - s.loss[start + k];
                thr = lingua_threshold_topk(s.tmp, b, pc->ratio, s.scratch);
            } else {
                thr = lingua_threshold_topk(s.loss, s.n_loss, pc->ratio, s.scratch);
            }
            int32_t ne = compat_piece(&s, end - I + pc->n, pc->n, thr, contrast);
            end = (int64_t)ne + I;
        }
        idx++;
    }
    for (int32_t k = 0; k < s.n_pop; k++) keep[s.pop[k]] = 1;
    for (int32_t k = 0; k < s.n_cur; k++) keep[s.org[k]] = 1;
    /* return compressed_input_ids[:, start:]: the first `start` survivors go, whatever they
     * are (a short prompt can lose prefix tokens, and then context tokens go in their place) */
    for (int32_t t = 0, skipped = 0; t < n && skipped < start; t++)
        if (keep[t]) {
            keep[t] = 0;
            skipped++;
        }
done:
    free(s.cur);
    free(s.org);
    free(s.pop);
    free(s.loss);
    free(s.self_loss);
    free(s.tmp);
    free(s.scratch);
    free(s.need);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Default engine                                                                            */
/*
 * Each stream (the conditioned one, and the plain one for contrastive scores) keeps a mirror
 * of its cache (base = BOS + prefix, then kept tokens) and the kept tokens not yet in it
 * (pending). Scoring window [a, b): append pending minus its last token, then one batch of
 * [last pending, ids[a .. b-1)] whose outputs are the surprisals of ids[a .. b); drop the
 * window from the cache again. When the cache would overflow, it is rebuilt from the base and
 * the `carry` most recent kept tokens (clean positions, no eviction; cost: carry tokens
 * re-encoded per rebuild).
 */

typedef struct {
    lingua_lm *lm;
    int32_t *cache, n_cache; /* mirror of the lm's cache */
    int32_t *pend, n_pend;
    int32_t n_base;          /* cache[0..n_base) = BOS + prefix, always kept */
    int32_t *base;
    int32_t *kept, n_kept;   /* every kept token so far (after the base) */
    int32_t cap, carry;
} dstream;

static int ds_init(dstream *d, lingua_lm *lm, const int32_t *base, int32_t n_base, int32_t n,
                   int32_t carry) {
    memset(d, 0, sizeof *d);
    d->lm = lm;
    d->carry = carry > 0 ? carry : lm->n_ctx / 8;
    d->cap = lm->n_ctx + 1;
    d->cache = malloc((size_t)d->cap * sizeof(int32_t));
    d->pend = malloc((size_t)(d->cap + n + 1) * sizeof(int32_t));
    d->kept = malloc((size_t)(n + 1) * sizeof(int32_t));
    d->base = malloc((size_t)(n_base + 1) * sizeof(int32_t));
    if (!d->cache || !d->pend || !d->kept || !d->base)
        return terse_err(TERSE_ERR_NOMEM, "lingua: stream buffers for %d tokens", n);
    memcpy(d->base, base, (size_t)n_base * sizeof(int32_t));
    d->n_base = n_base;
    memcpy(d->pend, base, (size_t)n_base * sizeof(int32_t));
    d->n_pend = n_base;
    return lm->kv_truncate(lm->u, 0);
}

static void ds_free(dstream *d) {
    free(d->cache);
    free(d->pend);
    free(d->kept);
    free(d->base);
}

/* loss[i] = surprisal of w[i] given the stream's content and w[0..i), i < m */
static int ds_score(dstream *d, const int32_t *w, int32_t m, float *loss, int32_t *tmp) {
    lingua_lm *lm = d->lm;
    int rc;
    if ((int64_t)d->n_cache + d->n_pend + m > lm->n_ctx) { /* rebuild */
        int64_t room = (int64_t)lm->n_ctx - m - d->n_base;
        int32_t keep_n = (int32_t)(room / 2 > 1 ? room / 2 : 1);
        if (keep_n > d->carry) keep_n = d->carry;
        if (room < 1)
            return terse_err(TERSE_ERR_RANGE, "lingua: prefix of %d tokens plus a window of %d "
                             "exceed the context of %d", d->n_base, m, lm->n_ctx);
        if (keep_n > d->n_kept) keep_n = d->n_kept;
        if ((rc = lm->kv_truncate(lm->u, 0))) return rc;
        d->n_cache = 0;
        memcpy(d->pend, d->base, (size_t)d->n_base * sizeof(int32_t));
        memcpy(d->pend + d->n_base, d->kept + d->n_kept - keep_n, (size_t)keep_n * sizeof(int32_t));
        d->n_pend = d->n_base + keep_n;
    }
    if (d->n_pend == 0) { /* re-feed the last cached token to read its output */
        if (d->n_cache == 0)
            return terse_err(TERSE_ERR_INTERNAL, "lingua: nothing to condition on");
        d->pend[0] = d->cache[--d->n_cache];
        d->n_pend = 1;
        if ((rc = lm->kv_truncate(lm->u, d->n_cache))) return rc;
    }
    if (d->n_pend > 1 && (rc = lm_forward(lm, d->pend, d->n_pend - 1, NULL, 0, NULL))) return rc;
    tmp[0] = d->pend[d->n_pend - 1];
    memcpy(tmp + 1, w, (size_t)(m - 1) * sizeof(int32_t));
    if ((rc = lm_forward(lm, tmp, m, w, m, loss))) return rc;
    memcpy(d->cache + d->n_cache, d->pend, (size_t)d->n_pend * sizeof(int32_t));
    d->n_cache += d->n_pend;
    d->n_pend = 0;
    return lm->kv_truncate(lm->u, d->n_cache);
}

static void ds_keep(dstream *d, int32_t id) {
    d->pend[d->n_pend++] = id;
    d->kept[d->n_kept++] = id;
}

void lingua_waterfill(const float *w, const uint8_t *sel, int32_t n, int64_t k, double *q) {
    int64_t n_sel = 0;
    for (int32_t t = 0; t < n; t++) n_sel += sel[t] != 0;
    for (int32_t t = 0; t < n; t++) q[t] = 0;
    if (k <= 0 || n_sel == 0) return;
    if (k >= n_sel) {
        for (int32_t t = 0; t < n; t++) q[t] = sel[t] ? 1.0 : 0.0;
        return;
    }
    /* weights floored at a small positive value so the quotas can always be met */
    uint8_t *sat = calloc((size_t)n, 1);
    for (int iter = 0; iter < 64; iter++) {
        double rest = 0;
        int64_t n_sat = 0;
        for (int32_t t = 0; t < n; t++) {
            if (!sel[t]) continue;
            if (sat && sat[t]) n_sat++;
            else rest += w ? fmax((double)w[t], 1e-6) : 1.0;
        }
        double s = rest > 0 ? (double)(k - n_sat) / rest : 0;
        int changed = 0;
        for (int32_t t = 0; t < n; t++) {
            if (!sel[t]) continue;
            if (sat && sat[t]) {
                q[t] = 1.0;
                continue;
            }
            double v = s * (w ? fmax((double)w[t], 1e-6) : 1.0);
            if (v >= 1.0 && sat) {
                sat[t] = 1;
                changed = 1;
                v = 1.0;
            }
            q[t] = v > 1.0 ? 1.0 : v;
        }
        if (!changed) break;
    }
    free(sat);
}

int lingua_default_run(lingua_lm *lm, const lingua_default_in *in, uint8_t *keep) {
    const int32_t n = in->n, I = in->I;
    memset(keep, 0, (size_t)(n > 0 ? n : 0));
    if (n <= 0) return TERSE_OK;
    if (I < 1) return terse_err(TERSE_ERR_INVALID, "lingua: iterative_size %d < 1", I);
    int rc = TERSE_OK;
    dstream ds = {0}, dself = {0};
    uint8_t *sel = malloc((size_t)n);
    double *q = malloc((size_t)n * sizeof *q);
    float *loss = malloc((size_t)(I + 1) * sizeof *loss);
    float *sloss = malloc((size_t)(I + 1) * sizeof *sloss);
    int32_t *tmp = malloc((size_t)(I + 1) * sizeof *tmp);
    scored_idx *cand = malloc((size_t)(I + 1) * sizeof *cand);
    int32_t *base = malloc((size_t)(in->n_prefix + 2) * sizeof *base);
    if (!sel || !q || !loss || !sloss || !tmp || !cand || !base) {
        rc = terse_err(TERSE_ERR_NOMEM, "lingua: buffers for %d tokens", n);
        goto done;
    }
    /* which tokens the budget chooses among */
    int32_t first = 0, n_base = 0;
    if (in->bos >= 0) base[n_base++] = in->bos;
    else first = 1; /* no BOS: token 0 has no surprisal; it is kept and conditions the rest */
    int64_t must = 0;
    for (int32_t t = 0; t < n; t++) {
        sel[t] = !(t < first || (in->protect && in->protect[t]));
        must += !sel[t];
        if (!sel[t]) keep[t] = 1;
    }
    lingua_waterfill(in->weight, sel, n, in->target - must, q);
    /* streams */
    int32_t nb_main = n_base;
    for (int32_t i = 0; i < in->n_prefix; i++) base[nb_main++] = in->prefix[i];
    if ((rc = ds_init(&ds, lm, base, nb_main, n, in->carry))) goto done;
    if (in->self_lm && (rc = ds_init(&dself, in->self_lm, base, n_base, n, in->carry))) goto done;
    for (int32_t t = 0; t < first; t++) {
        ds_keep(&ds, in->ids[t]);
        if (in->self_lm) ds_keep(&dself, in->ids[t]);
    }
    double acc = 0;
    int64_t given = 0, total = in->target - must;
    for (int32_t a = first; a < n; a += I) {
        int32_t b = a + I < n ? a + I : n, m = b - a;
        if ((rc = ds_score(&ds, in->ids + a, m, loss, tmp))) goto done;
        if (in->self_lm) {
            if ((rc = ds_score(&dself, in->ids + a, m, sloss, tmp))) goto done;
            for (int32_t i = 0; i < m; i++) loss[i] = sloss[i] - loss[i];
        }
        if (in->score)
            for (int32_t i = 0; i < m; i++) in->score[a + i] = loss[i];
        /* this window's quota: rounded cumulative share of the budget */
        for (int32_t t = a; t < b; t++) acc += q[t];
        int64_t hi = b == n ? (total > 0 ? total : 0) : llround(acc);
        int64_t quota = hi - given;
        int32_t nc = 0;
        for (int32_t t = a; t < b; t++)
            if (sel[t]) cand[nc++] = (scored_idx){isnan(loss[t - a]) ? -INFINITY : loss[t - a], t};
        if (quota > nc) quota = nc;
        if (quota < 0) quota = 0;
        qsort(cand, (size_t)nc, sizeof *cand, cmp_desc);
        for (int64_t k = 0; k < quota; k++) keep[cand[k].i] = 1;
        given += quota;
        for (int32_t t = a; t < b; t++)
            if (keep[t]) {
                ds_keep(&ds, in->ids[t]);
                if (in->self_lm) ds_keep(&dself, in->ids[t]);
            }
    }
done:
    ds_free(&ds);
    if (in->self_lm) ds_free(&dself);
    free(sel);
    free(q);
    free(loss);
    free(sloss);
    free(tmp);
    free(cand);
    free(base);
    return rc;
}
