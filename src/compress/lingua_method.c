/* lingua_method.c - the LLMLingua / LongLLMLingua driver: from a cmp_job to keep flags or an
 * output text, in two modes.
 *
 * compat (j->p.compat): microsoft/LLMLingua 0.2.2's compress_prompt step by step: budget in
 * scoring-model tokens with BOS counted (target_token = (L_ins + L_q + sum L_ctx) * rate - L_ins
 * - L_q), coarse ranking (perplexity of each context alone, descending; or the question's
 * perplexity after each context + the restrictive statement, ascending), the budget walk with
 * context_budget, forced contexts, reordering and the dynamic-ratio ramp; then the joint
 * tokenization of "\n\n".join([prefix] + contexts) and lingua_compat_run (quirks included);
 * tagged prompts get token_segment's exact windows with per-token rates. The output is
 * "\n\n".join(instruction, compressed, question) from the original bytes of the kept tokens.
 *
 * default: the same stages with the quirks fixed: scores aligned with their tokens, every
 * window compressed (short prompts too), a per-window quota that sums to the budget, scoring
 * windows longer than the context, and a final fit on the rendered text (cmp_fit_budget) so
 * the output meets the target within one token. Protected and compress=False tokens are never
 * dropped (contexts holding them survive the coarse filter).
 *
 * Not here: the engines and pure pieces (lingua_core.c), the job (compress.c).
 * The sentence filter (use_sentence_filter) runs in default mode with text_sentences(); compat
 * refuses it (nltk's Punkt splitter is not reproduced).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lingua_core.h"
#include "compress/lingua_method.h"
#include "text/text.h"

/* ---------------------------------------------------------------------------------------- */
/* Driver state and small helpers                                                            */

typedef struct {
    cmp_job *j;
    int long_mode;
    terse_condition cond; /* coarse ranking condition, normalised as upstream */
    int cond_flag;        /* question prefix at token level ("_condition") */
    int contrast;         /* condition_compare: contrastive token scores */
    int32_t nc;           /* contexts */
    const cmp_part **cp;  /* (nc) part of each context */
    const cmp_part *ins, *q;
    lingua_lm lm;
    lingua_ctx_adapter ad;
    terse_ctx *c2; /* second context for the stream without the question */
    lingua_lm lm2;
    lingua_ctx_adapter ad2;
} drv;

static const char *part_text(const drv *d, const cmp_part *p, size_t *n) {
    if (!p) {
        *n = 0;
        return "";
    }
    *n = (size_t)(p->end - p->begin);
    return d->j->text + p->begin;
}

/* Tokenize s[0..n) into malloc'ed ids (+ spans if sp != NULL). */
static int64_t tok_all(const terse_vocab *v, const char *s, size_t n, int special, int32_t **ids,
                       terse_span **sp) {
    *ids = NULL;
    if (sp) *sp = NULL;
    int64_t cap = (int64_t)n + 8;
    *ids = terse_malloc((size_t)cap * sizeof **ids, "lingua: token ids");
    if (sp) *sp = terse_malloc((size_t)cap * sizeof **sp, "lingua: token spans");
    if (!*ids || (sp && !*sp)) return TERSE_ERR_NOMEM;
    int64_t k = terse_tokenize(v, s, n, special, *ids, sp ? *sp : NULL, cap);
    if (k > cap) { /* more tokens than bytes + 8: cannot happen for byte-level vocabularies */
        free(*ids);
        if (sp) free(*sp);
        cap = k;
        *ids = terse_malloc((size_t)cap * sizeof **ids, "lingua: token ids");
        if (sp) *sp = terse_malloc((size_t)cap * sizeof **sp, "lingua: token spans");
        if (!*ids || (sp && !*sp)) return TERSE_ERR_NOMEM;
        k = terse_tokenize(v, s, n, special, *ids, sp ? *sp : NULL, cap);
    }
    return k;
}

static int64_t tok_len(const terse_vocab *v, const char *s, size_t n, int special) {
    int32_t *ids;
    int64_t k = tok_all(v, s, n, special, &ids, NULL);
    free(ids);
    return k;
}

static int has_visible(const char *s, size_t n) { /* Python's s.strip() != "" (ASCII + UTF-8) */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == ' ' || (c >= 9 && c <= 13))) return 1;
    }
    return 0;
}

static int ctx_has_must(const drv *d, int32_t i) {
    for (int64_t t = d->cp[i]->tok0; t < d->cp[i]->tok1; t++)
        if (cmp_must_keep(d->j, t)) return 1;
    return 0;
}

static int ctx_has_fixed_tag(const drv *d, int32_t i) {
    for (int32_t s = d->cp[i]->seg0; s < d->cp[i]->seg1; s++)
        if (d->j->segs[s].tagged && !d->j->segs[s].compress) return 1;
    return 0;
}

static int ensure_c2(drv *d) {
    if (d->c2) return TERSE_OK;
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_ctx = d->j->n_ctx;
    int rc = terse_ctx_new(d->j->model, cp, &d->c2);
    if (rc) return rc;
    lingua_lm_ctx(&d->lm2, &d->ad2, d->j, d->c2);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Coarse ranking                                                                            */

/* compat get_ppl(text) mean over loss[from:], tokenized with BOS, cut at the context length */
static int compat_mean_ppl(drv *d, const char *s, size_t n, int64_t from, double *out) {
    int32_t *ids;
    int64_t m = tok_all(d->j->vocab, s, n, 1, &ids, NULL);
    if (m < 0) {
        free(ids);
        return (int)m;
    }
    if (m > d->j->n_ctx) m = d->j->n_ctx;
    *out = NAN;
    int rc = TERSE_OK;
    if (m >= 2) {
        float *loss = terse_malloc((size_t)m * sizeof *loss, "lingua: losses");
        if (!loss) rc = TERSE_ERR_NOMEM;
        if (!rc) rc = d->lm.kv_truncate(d->lm.u, 0);
        if (!rc) rc = d->lm.forward(d->lm.u, ids, (int32_t)m, ids + 1, (int32_t)m - 1, loss);
        if (!rc) {
            double sum = 0;
            int64_t k = 0;
            for (int64_t i = from < 0 ? 0 : from; i < m - 1; i++, k++) sum += loss[i];
            if (k) *out = sum / (double)k;
        }
        free(loss);
    }
    free(ids);
    return rc;
}

static int rank_compat(drv *d, double *score) {
    cmp_job *j = d->j;
    size_t ql;
    const char *qs = part_text(d, d->q, &ql);
    terse_buf b = {0};
    int rc = TERSE_OK;
    for (int32_t i = 0; i < d->nc && !rc; i++) {
        size_t cl;
        const char *cs = part_text(d, d->cp[i], &cl);
        b.n = 0;
        if (d->cond == TERSE_CONDITION_NONE) {
            rc = compat_mean_ppl(d, cs, cl, 0, &score[i]);
        } else if (d->cond == TERSE_CONDITION_AFTER) {
            int64_t lt = tok_len(j->vocab, cs, cl, 1);
            if ((rc = lt < 0 ? (int)lt : 0)) break;
            rc = terse_buf_put(&b, cs, cl);
            if (!rc) rc = terse_buf_put(&b, qs, ql);
            if (!rc) rc = terse_buf_put(&b, LINGUA_RESTRICT, strlen(LINGUA_RESTRICT));
            if (!rc) rc = compat_mean_ppl(d, b.s, b.n, lt - 1, &score[i]);
        } else {
            size_t rl = strlen(LINGUA_RESTRICT);
            rc = terse_buf_put(&b, qs, ql);
            if (!rc) rc = terse_buf_put(&b, LINGUA_RESTRICT, rl);
            int64_t lq = rc ? 0 : tok_len(j->vocab, b.s, b.n, 1);
            if (!rc && lq < 0) rc = (int)lq;
            if (!rc) rc = terse_buf_put(&b, cs, cl);
            if (!rc) rc = compat_mean_ppl(d, b.s, b.n, lq - 1, &score[i]);
        }
    }
    free(b.s);
    return rc;
}

/* default: mean surprisal of the context (NONE), of the query after it (AFTER) or of the
 * context after the query (BEFORE), each sequence scored alone after BOS, short ones packed
 * into shared forward passes and long ones in windows (cmp_score_packed) */
static int rank_default(drv *d, double *score) {
    cmp_job *j = d->j;
    int rc = TERSE_OK;
    int32_t *qids = NULL, *seq = NULL;
    int64_t *b = NULL, *e = NULL;
    float *sur = NULL;
    int64_t nq = 0;
    if (d->cond != TERSE_CONDITION_NONE) {
        size_t ql;
        const char *qs = part_text(d, d->q, &ql);
        terse_buf qb = {0};
        rc = terse_buf_put(&qb, qs, ql);
        if (!rc) rc = terse_buf_put(&qb, LINGUA_RESTRICT, strlen(LINGUA_RESTRICT));
        if (!rc) nq = tok_all(j->vocab, qb.s, qb.n, 0, &qids, NULL);
        free(qb.s);
        if (!rc && nq < 0) rc = (int)nq;
        if (!rc && nq > j->n_ctx / 4) nq = j->n_ctx / 4; /* a long question: its start */
    }
    int64_t tot = 0;
    for (int32_t i = 0; i < d->nc; i++) tot += d->cp[i]->tok1 - d->cp[i]->tok0 + nq;
    if (!rc) {
        seq = terse_malloc((size_t)(tot + 1) * sizeof *seq, "lingua: ranking ids");
        sur = terse_malloc((size_t)(tot + 1) * sizeof *sur, "lingua: ranking scores");
        b = terse_malloc((size_t)d->nc * sizeof *b, "lingua: ranking ranges");
        e = terse_malloc((size_t)d->nc * sizeof *e, "lingua: ranking ranges");
        if (!seq || !sur || !b || !e) rc = TERSE_ERR_NOMEM;
    }
    if (!rc) {
        int64_t at = 0;
        for (int32_t i = 0; i < d->nc; i++) {
            const cmp_part *p = d->cp[i];
            b[i] = at;
            if (d->cond == TERSE_CONDITION_BEFORE)
                for (int64_t k = 0; k < nq; k++) seq[at++] = qids[k];
            for (int64_t t = p->tok0; t < p->tok1; t++) seq[at++] = j->tok.ids[t];
            if (d->cond == TERSE_CONDITION_AFTER)
                for (int64_t k = 0; k < nq; k++) seq[at++] = qids[k];
            e[i] = at;
        }
        rc = cmp_score_packed(j, seq, b, e, d->nc, sur);
    }
    for (int32_t i = 0; !rc && i < d->nc; i++) {
        int64_t n = d->cp[i]->tok1 - d->cp[i]->tok0, from = b[i];
        if (d->cond == TERSE_CONDITION_AFTER) from += n;
        else if (d->cond == TERSE_CONDITION_BEFORE) from += nq;
        if (from == b[i] && j->bos < 0) from++; /* no BOS: the first token has no score */
        double sum = 0;
        for (int64_t t = from; t < e[i]; t++) sum += sur[t];
        score[i] = e[i] > from ? sum / (double)(e[i] - from) : NAN;
    }
    free(qids);
    free(seq);
    free(sur);
    free(b);
    free(e);
    return rc;
}

/* The coarse filter: used (capacity nc) in final order, dyn (nc) per used position.
 * budget_tokens: upstream target_token (may be negative). len: context lengths. */
static int coarse(drv *d, double budget_tokens, const int64_t *len, int32_t *used,
                  int32_t *n_used, double *dyn) {
    cmp_job *j = d->j;
    const int32_t nc = d->nc;
    double *score = terse_malloc((size_t)nc * sizeof *score, "lingua: context scores");
    int32_t *rank = terse_malloc((size_t)nc * sizeof *rank, "lingua: ranking");
    int32_t *forced = terse_malloc((size_t)(nc + j->p.n_force_context_ids + 1) * sizeof *forced,
                                   "lingua: forced contexts");
    int rc = (!score || !rank || !forced) ? TERSE_ERR_NOMEM : TERSE_OK;
    if (!rc) rc = j->p.compat ? rank_compat(d, score) : rank_default(d, score);
    if (!rc) {
        lingua_argsort(score, nc, d->cond == TERSE_CONDITION_NONE, rank);
        int32_t nf = 0;
        for (int32_t i = 0; i < j->p.n_force_context_ids; i++) {
            int32_t f = j->p.force_context_ids[i];
            if (f < 0 || f >= nc) {
                rc = terse_err(TERSE_ERR_INVALID, "compress: force_context_ids[%d] = %d outside "
                               "[0, %d)", i, f, nc);
                break;
            }
            forced[nf++] = f;
        }
        for (int32_t i = 0; !rc && i < nc; i++)
            if (j->p.compat ? ctx_has_fixed_tag(d, i) : ctx_has_must(d, i)) forced[nf++] = i;
        if (!rc) {
            double t = budget_tokens < 0 ? 100 : budget_tokens;
            double budget = t * j->p.context_budget_mul + j->p.context_budget_add;
            *n_used = lingua_budget_walk(rank, nc, len, nc, budget, forced, nf, used);
            /* ramp in rank order (before reordering), then follow each context */
            double *ramp = terse_malloc((size_t)nc * sizeof *ramp, "lingua: ramp");
            int32_t *pre = terse_malloc((size_t)nc * sizeof *pre, "lingua: ramp order");
            if (!ramp || !pre) rc = TERSE_ERR_NOMEM;
            if (!rc) {
                memcpy(pre, used, (size_t)*n_used * sizeof *pre);
                if (j->p.dynamic_ratio > 0) lingua_dynamic_ramp(*n_used, j->p.dynamic_ratio, ramp);
                else memset(ramp, 0, (size_t)nc * sizeof *ramp);
                lingua_reorder(used, *n_used, (int)j->p.reorder);
                for (int32_t u = 0; u < *n_used; u++)
                    for (int32_t k = 0; k < *n_used; k++)
                        if (pre[k] == used[u]) dyn[u] = ramp[k];
            }
            free(ramp);
            free(pre);
        }
    }
    free(score);
    free(rank);
    free(forced);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Compat                                                                                    */

/* Which segment holds byte offset off of j->text (within context part p). */
static int32_t seg_at(const cmp_job *j, const cmp_part *p, int64_t off) {
    for (int32_t s = p->seg0; s < p->seg1; s++)
        if (off >= j->segs[s].begin && off < j->segs[s].end) return s;
    return p->seg1 - 1;
}

/* token_segment: exact I-token windows over ids[start..n) with per-token rates */
static int plan_structured(drv *d, const terse_span *sp, int64_t n, int32_t start,
                           const int64_t *ctx_off, const int32_t *used, int32_t n_used,
                           double grate, lingua_plan *plan) {
    cmp_job *j = d->j;
    const int32_t I = j->p.iterative_size;
    memset(plan, 0, sizeof *plan);
    plan->first = terse_malloc(sizeof(int32_t) * (size_t)(n / I + 3), "lingua: plan");
    plan->piece = terse_malloc(sizeof(lingua_piece) * (size_t)(n + 2), "lingua: plan");
    if (!plan->first || !plan->piece) return TERSE_ERR_NOMEM;
    plan->first[0] = 0;
    double last_rate = -1;
    int64_t seen = start;
    for (int64_t t = start; t < n; t++) {
        /* segments the token's bytes overlap: any compress=False -> 1, else the minimum */
        double r = 2;
        int fixed = 0;
        for (int32_t u = 0; u < n_used; u++) {
            int64_t cb = ctx_off[u], ce = ctx_off[u + 1]; /* context u, its "\n\n" included */
            if (sp[t].end <= cb || sp[t].begin >= ce) continue;
            const cmp_part *p = d->cp[used[u]];
            int64_t b0 = sp[t].begin > cb ? sp[t].begin : cb;
            int64_t e0 = sp[t].end < ce ? sp[t].end : ce;
            int64_t plen = p->end - p->begin;
            for (int64_t o = b0; o < e0; o++) {
                int64_t in = o - cb;
                if (in >= plen) in = plen - 1; /* the separator joins the last segment */
                const cmp_segment *sg = &j->segs[seg_at(j, p, p->begin + in)];
                if (!sg->compress) fixed = 1;
                double sr = sg->rate > 0 ? sg->rate : grate;
                if (sr < r) r = sr;
            }
        }
        double nr = fixed ? 1.0 : (r > 1 ? grate : r);
        if (nr != last_rate && t - seen) {
            plan->piece[plan->n_pieces++] = (lingua_piece){(int32_t)(t - seen), last_rate};
            seen = t;
        }
        last_rate = nr;
        if ((t - start + 1) % I == 0) {
            if (seen != t + 1) {
                plan->piece[plan->n_pieces++] = (lingua_piece){(int32_t)(t + 1 - seen), last_rate};
                seen = t + 1;
            }
            plan->first[++plan->n_windows] = plan->n_pieces;
        }
    }
    if (seen != n) plan->piece[plan->n_pieces++] = (lingua_piece){(int32_t)(n - seen), last_rate};
    if (plan->first[plan->n_windows] != plan->n_pieces) plan->first[++plan->n_windows] = plan->n_pieces;
    return TERSE_OK;
}

/* Per-token detail of a compat run (--json --tokens, --html): the prompt's tokens that overlap
 * a kept token of the joined tokenization are marked kept, and take the score it was decided
 * by; the question, when not appended, leaves the output. */
static void mark_compat(drv *d, const terse_span *sp, int64_t n, const uint8_t *keep,
                        const float *score, const int64_t *ctx_off, const int32_t *used,
                        int32_t n_used) {
    cmp_job *j = d->j;
    if (d->q && !j->p.concate_question)
        for (int64_t t = d->q->tok0; t < d->q->tok1; t++)
            j->tok.flags[t] &= (uint8_t) ~(CMP_FIXED | CMP_KEEP | CMP_PROTECT);
    for (int32_t u = 0; u < n_used; u++) {
        const cmp_part *p = d->cp[used[u]];
        int64_t cb = ctx_off[u], ce = cb + (p->end - p->begin);
        int64_t x0 = p->tok0; /* both tokenizations in byte order: one pass */
        for (int64_t t = 0; t < n; t++) {
            if (sp[t].end <= cb || sp[t].begin >= ce) continue;
            int64_t a = (sp[t].begin > cb ? sp[t].begin : cb) - cb + p->begin;
            int64_t b = (sp[t].end < ce ? sp[t].end : ce) - cb + p->begin;
            while (x0 < p->tok1 && j->tok.spans[x0].end <= a) x0++;
            for (int64_t x = x0; x < p->tok1 && j->tok.spans[x].begin < b; x++) {
                if (keep[t]) j->tok.flags[x] |= CMP_KEEP;
                if (isnan(j->tok.score[x])) j->tok.score[x] = score[t];
            }
        }
    }
}

static int compat_run(drv *d) {
    cmp_job *j = d->j;
    const terse_vocab *v = j->vocab;
    const int32_t nc = d->nc, I = j->p.iterative_size;
    if (j->p.use_sentence_filter)
        return terse_err(TERSE_ERR_UNSUPPORTED, "compress: compat mode does not reproduce the "
                         "nltk sentence filter (use_sentence_filter); use the default mode");
    int rc = TERSE_OK;
    size_t il, ql;
    const char *is = part_text(d, d->ins, &il), *qs = part_text(d, d->q, &ql);
    int64_t *len = terse_malloc((size_t)nc * sizeof *len, "lingua: lengths");
    int64_t *len_ns = terse_malloc((size_t)(nc + 1) * sizeof *len_ns, "lingua: lengths");
    int32_t *used = terse_malloc((size_t)nc * sizeof *used, "lingua: used");
    double *dyn = terse_calloc((size_t)nc + 1, sizeof *dyn, "lingua: ratios");
    int64_t *ctx_off = terse_malloc((size_t)(nc + 2) * sizeof *ctx_off, "lingua: offsets");
    int32_t *ids = NULL;
    terse_span *sp = NULL;
    uint8_t *keep = NULL;
    float *jscore = NULL;
    terse_buf joined = {0}, out = {0};
    lingua_plan plan = {0};
    if (!len || !len_ns || !used || !dyn || !ctx_off) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    /* 1. budget in scoring-model tokens, BOS counted */
    int64_t L_ins = tok_len(v, is, il, 1), L_q = tok_len(v, qs, ql, 1), L_sum = 0;
    if (L_ins < 0 || L_q < 0) {
        rc = (int)(L_ins < 0 ? L_ins : L_q);
        goto done;
    }
    for (int32_t i = 0; i < nc; i++) {
        size_t cl;
        const char *cs = part_text(d, d->cp[i], &cl);
        len[i] = tok_len(v, cs, cl, 1);
        if (len[i] < 0) {
            rc = (int)len[i];
            goto done;
        }
        L_sum += len[i];
    }
    double rate = j->p.rate, target;
    if (j->p.target > 0) {
        target = (double)j->p.target;
        rate = L_sum ? target / (double)L_sum : 1.0;
    } else {
        target = (double)(L_ins + L_q + L_sum) * rate - (double)L_ins -
                 (j->p.concate_question ? (double)L_q : 0);
    }
    /* 2. coarse filter */
    int32_t n_used = nc;
    for (int32_t i = 0; i < nc; i++) used[i] = i;
    if (nc > 1 && j->p.use_context_filter && (rc = coarse(d, target, len, used, &n_used, dyn)))
        goto done;
    /* 3. prefix and the joined text */
    int64_t pre_len = 0;
    if (d->cond_flag) {
        terse_buf pre = {0};
        if ((rc = terse_buf_put(&pre, qs, ql))) goto done;
        if (j->p.add_instruction && ((rc = terse_buf_put(&pre, "\n\n", 2)) || (rc = terse_buf_put(&pre, is, il)))) {
            free(pre.s);
            goto done;
        }
        int32_t *pids;
        terse_span *psp;
        terse_buf tmp = {0};
        rc = terse_buf_put(&tmp, pre.s, pre.n);
        if (!rc) rc = terse_buf_put(&tmp, "\n\n", 2);
        int64_t lp = rc ? 0 : tok_len(v, tmp.s, tmp.n, 1);
        free(tmp.s);
        if (!rc && lp + 2 * (int64_t)I > j->n_ctx) { /* keep the first 100 and the last tokens */
            int64_t np = tok_all(v, pre.s, pre.n, 0, &pids, &psp);
            int64_t tail_from = np - j->n_ctx + 2 + 100 + 2 * (int64_t)I;
            if (np >= 0 && tail_from > 100 && tail_from <= np) {
                rc = terse_buf_put(&joined, pre.s, (size_t)psp[99].end);
                if (!rc && tail_from < np)
                    rc = terse_buf_put(&joined, pre.s + psp[tail_from].begin,
                              (size_t)(pre.n - (size_t)psp[tail_from].begin));
            } else {
                rc = terse_buf_put(&joined, pre.s, pre.n);
            }
            free(pids);
            free(psp);
        } else if (!rc) {
            rc = terse_buf_put(&joined, pre.s, pre.n);
        }
        free(pre.s);
        if (!rc) rc = terse_buf_put(&joined, "\n\n", 2);
        if (rc) goto done;
        pre_len = (int64_t)joined.n;
    }
    for (int32_t u = 0; u < n_used; u++) {
        size_t cl;
        const char *cs = part_text(d, d->cp[used[u]], &cl);
        if (u && (rc = terse_buf_put(&joined, "\n\n", 2))) goto done;
        ctx_off[u] = (int64_t)joined.n;
        if ((rc = terse_buf_put(&joined, cs, cl))) goto done;
        len_ns[u] = tok_len(v, cs, cl, 0);
        if (len_ns[u] < 0) {
            rc = (int)len_ns[u];
            goto done;
        }
        len_ns[u] += 2;
    }
    ctx_off[n_used] = (int64_t)joined.n + 2;
    if (!joined.s && (rc = terse_buf_put(&joined, "", 0))) goto done;
    /* 4. token level */
    terse_buf comp = {0};
    if (!j->p.use_token_filter) {
        rc = terse_buf_put(&comp, joined.s + pre_len, joined.n - (size_t)pre_len);
    } else {
        int64_t n = tok_all(v, joined.s, joined.n, 0, &ids, &sp);
        if (n < 0) {
            rc = (int)n;
            goto done;
        }
        int32_t start = 0;
        if (d->cond_flag)
            while (start < n && sp[start].begin < pre_len) start++;
        int tagged = 0;
        for (int32_t u = 0; u < n_used; u++)
            for (int32_t s = d->cp[used[u]]->seg0; s < d->cp[used[u]]->seg1; s++)
                tagged |= j->segs[s].tagged;
        if (tagged) {
            double grate = j->p.target > 0 ? (L_sum ? target / (double)L_sum : 1.0) : j->p.rate;
            rc = plan_structured(d, sp, n, start, ctx_off, used, n_used, grate, &plan);
        } else {
            rc = lingua_plan_build(&plan, len_ns, dyn, n_used, target, I);
        }
        if (!rc) {
            keep = terse_malloc((size_t)(n > 0 ? n : 1), "lingua: keep flags");
            jscore = terse_malloc((size_t)(n > 0 ? n : 1) * sizeof *jscore, "lingua: scores");
            if (!keep || !jscore) rc = TERSE_ERR_NOMEM;
        }
        if (!rc && d->contrast) rc = ensure_c2(d);
        if (!rc) {
            lingua_compat_in in = {.ids = ids, .n = (int32_t)n, .start = start, .plan = &plan,
                                   .I = I, .cache_bos_num = 10,
                                   .self_lm = d->contrast ? &d->lm2 : NULL, .score = jscore};
            rc = lingua_compat_run(&d->lm, &in, keep);
        }
        int64_t kept = 0;
        for (int64_t t = 0; !rc && t < n; t++)
            if (keep[t]) {
                kept++;
                rc = terse_buf_put(&comp, joined.s + sp[t].begin, (size_t)(sp[t].end - sp[t].begin));
            }
        if (!rc) mark_compat(d, sp, n, keep, jscore, ctx_off, used, n_used);
        j->n_units = n - start;
        j->n_units_kept = kept;
    }
    if (!rc && !comp.s) rc = terse_buf_put(&comp, "", 0);
    /* the reference decodes the kept ids in one piece, with errors="replace": a character
     * split by the compression becomes U+FFFD (one per maximal invalid subsequence) */
    if (!rc && text_utf8_invalid(comp.s, comp.n)) {
        char *r = terse_malloc(3 * comp.n + 1, "lingua: decoded text");
        if (!r) rc = TERSE_ERR_NOMEM;
        else {
            comp.n = (size_t)text_utf8_replace(comp.s, comp.n, r);
            r[comp.n] = 0;
            free(comp.s);
            comp.s = r;
            comp.cap = comp.n + 1;
        }
    }
    /* 5. "\n\n".join(instruction, compressed, question) */
    int any = 0;
    if (!rc && il) {
        rc = terse_buf_put(&out, is, il);
        any = 1;
    }
    if (!rc && has_visible(comp.s, comp.n)) {
        if (any) rc = terse_buf_put(&out, "\n\n", 2);
        if (!rc) rc = terse_buf_put(&out, comp.s, comp.n);
        any = 1;
    }
    if (!rc && ql && j->p.concate_question) {
        if (any) rc = terse_buf_put(&out, "\n\n", 2);
        if (!rc) rc = terse_buf_put(&out, qs, ql);
    }
    free(comp.s);
    if (!rc) rc = cmp_set_output(j, out.s ? out.s : "", out.n);
done:
    free(len);
    free(len_ns);
    free(used);
    free(dyn);
    free(ctx_off);
    free(ids);
    free(sp);
    free(keep);
    free(jscore);
    free(joined.s);
    free(out.s);
    lingua_plan_free(&plan);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Sentence filter (default mode)                                                            */
/*
 * control_sentence_budget with our sentence splitter: sentences of the kept contexts ranked by
 * perplexity (alone, descending) or, for LongLLMLingua, by the question's perplexity after
 * them (ascending); keep_first/last_sentence and keep_sentence_number bonuses (LongLLMLingua
 * only, as upstream, but pushing kept sentences the right way in ascending mode); a budget of
 * target * token_budget_ratio walked down the ranking (the crossing sentence is kept);
 * sentences holding protected tokens are kept. drop[t] = 1 for the tokens of the others.
 */
static int sentence_filter(drv *d, const int32_t *used, int32_t n_used, double target,
                           uint8_t *drop) {
    cmp_job *j = d->j;
    int rc = TERSE_OK;
    int64_t cap = 64, ns = 0;
    int64_t *sa = terse_malloc((size_t)cap * sizeof *sa, "lingua: sentences");
    int64_t *se = terse_malloc((size_t)cap * sizeof *se, "lingua: sentences");
    int32_t *sc = terse_malloc((size_t)cap * sizeof *sc, "lingua: sentences");
    if (!sa || !se || !sc) rc = TERSE_ERR_NOMEM;
    for (int32_t u = 0; !rc && u < n_used; u++) {
        const cmp_part *p = d->cp[used[u]];
        terse_span *sp = NULL;
        int64_t k = text_sentences(j->text + p->begin, (size_t)(p->end - p->begin), &sp);
        if (k < 0) {
            rc = (int)k;
            break;
        }
        int64_t t = p->tok0;
        for (int64_t i = 0; i < k && !rc; i++) {
            int64_t end = p->begin + sp[i].end, a = t;
            while (t < p->tok1 && (i == k - 1 || j->tok.spans[t].begin < end)) t++;
            if (t == a) continue;
            if (ns == cap) {
                cap *= 2;
                int64_t *x = terse_reallocarray(sa, (size_t)cap, sizeof *sa, "lingua: sentences");
                if (x) sa = x;
                int64_t *y = terse_reallocarray(se, (size_t)cap, sizeof *se, "lingua: sentences");
                if (y) se = y;
                int32_t *z = terse_reallocarray(sc, (size_t)cap, sizeof *sc, "lingua: sentences");
                if (z) sc = z;
                if (!x || !y || !z) {
                    rc = TERSE_ERR_NOMEM;
                    break;
                }
            }
            sa[ns] = a;
            se[ns] = t;
            sc[ns++] = u;
        }
        free(sp);
    }
    if (rc || ns <= 1) goto out;
    /* scores */
    double *score = terse_malloc((size_t)ns * sizeof *score, "lingua: sentence scores");
    int32_t *rank = terse_malloc((size_t)ns * sizeof *rank, "lingua: sentence ranks");
    uint8_t *flag = terse_calloc((size_t)ns, 1, "lingua: sentence flags");
    int32_t *qids = NULL, *seq = NULL;
    int64_t *b = NULL, *e = NULL;
    float *sur = NULL;
    if (!score || !rank || !flag) rc = TERSE_ERR_NOMEM;
    int64_t nq = 0;
    if (!rc && d->cond != TERSE_CONDITION_NONE) {
        size_t ql;
        const char *qs = part_text(d, d->q, &ql);
        nq = tok_all(j->vocab, qs, ql, 0, &qids, NULL);
        if (nq < 0) rc = (int)nq;
        if (nq > j->n_ctx / 4) nq = j->n_ctx / 4;
    }
    if (!rc) {
        int64_t tot = 0;
        for (int64_t i = 0; i < ns; i++) tot += se[i] - sa[i] + nq;
        seq = terse_malloc((size_t)(tot + 1) * sizeof *seq, "lingua: sentence ids");
        sur = terse_malloc((size_t)(tot + 1) * sizeof *sur, "lingua: sentence scores");
        b = terse_malloc((size_t)ns * sizeof *b, "lingua: sentence ranges");
        e = terse_malloc((size_t)ns * sizeof *e, "lingua: sentence ranges");
        if (!seq || !sur || !b || !e) rc = TERSE_ERR_NOMEM;
    }
    if (!rc) {
        int64_t at = 0;
        for (int64_t i = 0; i < ns; i++) {
            b[i] = at;
            if (d->cond == TERSE_CONDITION_BEFORE)
                for (int64_t k = 0; k < nq; k++) seq[at++] = qids[k];
            for (int64_t t = sa[i]; t < se[i]; t++) seq[at++] = j->tok.ids[t];
            if (d->cond == TERSE_CONDITION_AFTER)
                for (int64_t k = 0; k < nq; k++) seq[at++] = qids[k];
            e[i] = at;
        }
        rc = cmp_score_packed(j, seq, b, e, ns, sur);
    }
    for (int64_t i = 0; !rc && i < ns; i++) {
        int64_t n_s = se[i] - sa[i], from = b[i], to = e[i];
        if (d->cond == TERSE_CONDITION_AFTER) from = b[i] + n_s;
        else if (d->cond == TERSE_CONDITION_BEFORE) from = b[i] + nq;
        if (from == b[i] && j->bos < 0) from++;
        double sum = 0;
        for (int64_t t = from; t < to; t++) sum += sur[t];
        score[i] = to > from ? sum / (double)(to - from) : NAN;
    }
    if (!rc) {
        const int desc = d->cond == TERSE_CONDITION_NONE;
        const double bonus = desc ? j->p.high_priority_bonus : -j->p.high_priority_bonus;
        if (d->long_mode) {
            for (int64_t i = 0; i < ns && i < j->p.keep_first_sentence; i++) score[i] += bonus;
            for (int64_t i = 0; i < ns && i < j->p.keep_last_sentence; i++) score[ns - 1 - i] += bonus;
            for (int32_t u = 0; u < n_used && j->p.keep_sentence_number > 0; u++) {
                /* the k lowest-scored sentences of each context (upstream's choice) */
                for (int32_t r = 0; r < j->p.keep_sentence_number; r++) {
                    int64_t best = -1;
                    for (int64_t i = 0; i < ns; i++)
                        if (sc[i] == u && !flag[i] && (best < 0 || score[i] < score[best])) best = i;
                    if (best < 0) break;
                    flag[best] = 1;
                }
                for (int64_t i = 0; i < ns; i++)
                    if (sc[i] == u && flag[i]) score[i] += bonus, flag[i] = 0;
            }
        }
        lingua_argsort(score, (int32_t)ns, desc, rank);
        double budget = (target >= 0 ? target : 100) * j->p.token_budget_ratio;
        for (int64_t r = 0; r < ns; r++) {
            int64_t i = rank[r];
            budget -= (double)(se[i] - sa[i]);
            flag[i] = 1;
            if (budget < 0) break;
        }
        for (int64_t i = 0; i < ns; i++) {
            for (int64_t t = sa[i]; t < se[i] && !flag[i]; t++) flag[i] = cmp_must_keep(j, t);
            if (!flag[i])
                for (int64_t t = sa[i]; t < se[i]; t++) drop[t] = 1;
        }
    }
    free(score);
    free(rank);
    free(flag);
    free(qids);
    free(seq);
    free(sur);
    free(b);
    free(e);
out:
    free(sa);
    free(se);
    free(sc);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Default                                                                                   */

static int default_run(drv *d) {
    cmp_job *j = d->j;
    const int32_t nc = d->nc;
    int rc = TERSE_OK;
    int32_t *used = terse_malloc((size_t)nc * sizeof *used, "lingua: used");
    double *dyn = terse_calloc((size_t)nc + 1, sizeof *dyn, "lingua: ratios");
    int64_t *len = terse_malloc((size_t)nc * sizeof *len, "lingua: lengths");
    int32_t *sep = NULL, *prefix = NULL, *sids = NULL, *smap = NULL;
    uint8_t *sprot = NULL, *skeep = NULL, *drop = NULL;
    float *sw = NULL, *sscore = NULL;
    cmp_unit *units = NULL;
    int64_t *order = NULL;
    int32_t *porder = NULL;
    if (!used || !dyn || !len) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    /* question not appended: its tokens leave the output */
    if (d->q && !j->p.concate_question)
        for (int64_t t = d->q->tok0; t < d->q->tok1; t++)
            j->tok.flags[t] &= (uint8_t) ~(CMP_FIXED | CMP_KEEP | CMP_PROTECT);
    for (int64_t t = 0; t < j->tok.n; t++) j->tok.flags[t] &= (uint8_t)~CMP_KEEP;
    /* budget in model tokens for the contexts */
    int64_t n_sep = terse_token_count(j->vocab, "\n\n", 2);
    if (n_sep < 0) {
        rc = (int)n_sep;
        goto done;
    }
    double f = j->budget.origin > 0 ? (double)j->tok.n / (double)j->budget.origin : 1.0;
    if (j->budget.vocab == j->vocab) f = 1.0;
    int64_t outside = 0;
    if (d->ins) outside += d->ins->tok1 - d->ins->tok0 + n_sep;
    if (d->q && j->p.concate_question) outside += d->q->tok1 - d->q->tok0 + n_sep;
    int64_t k_ctx = llround((double)j->budget.target * f) - outside;
    /* coarse filter */
    int32_t n_used = nc;
    for (int32_t i = 0; i < nc; i++) {
        used[i] = i;
        len[i] = d->cp[i]->tok1 - d->cp[i]->tok0;
    }
    if (nc > 1 && j->p.use_context_filter &&
        (rc = coarse(d, (double)(k_ctx > 0 ? k_ctx : 0), len, used, &n_used, dyn)))
        goto done;
    /* optional sentence filter, then the stream: used contexts in order, "\n\n" between */
    if (j->p.use_sentence_filter) {
        drop = terse_calloc((size_t)j->tok.n + 1, 1, "lingua: sentence drops");
        if (!drop) {
            rc = TERSE_ERR_NOMEM;
            goto done;
        }
        if ((rc = sentence_filter(d, used, n_used, (double)k_ctx, drop))) goto done;
        for (int64_t t = 0; t < j->tok.n;) { /* an atom is dropped whole or not at all */
            int64_t e = cmp_atom_end(j, t), keep = 0;
            for (int64_t x = t; x < e; x++) keep |= !drop[x];
            for (int64_t x = t; x < e && keep; x++) drop[x] = 0;
            t = e;
        }
    }
    int64_t n_sep_ids = tok_all(j->vocab, "\n\n", 2, 0, &sep, NULL);
    if (n_sep_ids != n_sep) {
        rc = n_sep_ids < 0 ? (int)n_sep_ids : terse_err(TERSE_ERR_INTERNAL, "lingua: separator");
        goto done;
    }
    int64_t ns = 0;
    for (int32_t u = 0; u < n_used; u++) ns += len[used[u]] + (u ? n_sep : 0);
    int32_t n_parts_in = 0; /* contexts with tokens left after the sentence filter */
    sids = terse_malloc((size_t)(ns + 1) * sizeof *sids, "lingua: stream");
    smap = terse_malloc((size_t)(ns + 1) * sizeof *smap, "lingua: stream");
    sprot = terse_malloc((size_t)(ns + 1), "lingua: stream");
    skeep = terse_malloc((size_t)(ns + 1), "lingua: stream");
    sw = terse_malloc((size_t)(ns + 1) * sizeof *sw, "lingua: stream");
    sscore = terse_malloc((size_t)(ns + 1) * sizeof *sscore, "lingua: stream");
    if (!sids || !smap || !sprot || !skeep || !sw || !sscore) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    double grate = j->budget.rate;
    int64_t s = 0;
    for (int32_t u = 0; u < n_used; u++) {
        const cmp_part *p = d->cp[used[u]];
        int64_t left = 0;
        for (int64_t t = p->tok0; t < p->tok1; t++) left += !(drop && drop[t]);
        if (!left) continue;
        if (n_parts_in++)
            for (int64_t k = 0; k < n_sep; k++, s++) {
                sids[s] = sep[k];
                smap[s] = -1;
                sprot[s] = 1;
                sw[s] = 1;
            }
        for (int64_t t = p->tok0; t < p->tok1; t++) {
            if (drop && drop[t]) continue;
            const cmp_segment *sg = &j->segs[j->tok.seg[t]];
            double r = (sg->tagged && sg->rate > 0 ? sg->rate : grate) + dyn[u];
            sids[s] = j->tok.ids[t];
            smap[s] = (int32_t)t;
            sprot[s] = cmp_must_keep(j, t);
            sw[s] = (float)(r < 0.01 ? 0.01 : (r > 1 ? 1 : r));
            s++;
        }
    }
    ns = s;
    /* conditioning prefix: the question (and instruction), at most a quarter of the context */
    int32_t n_prefix = 0;
    if (d->cond_flag && d->q) {
        int64_t nq = d->q->tok1 - d->q->tok0, ni = d->ins ? d->ins->tok1 - d->ins->tok0 : 0;
        int64_t cap = nq + (j->p.add_instruction ? n_sep + ni : 0);
        prefix = terse_malloc((size_t)(cap + 1) * sizeof *prefix, "lingua: prefix");
        if (!prefix) {
            rc = TERSE_ERR_NOMEM;
            goto done;
        }
        for (int64_t t = 0; t < nq; t++) prefix[n_prefix++] = j->tok.ids[d->q->tok0 + t];
        if (j->p.add_instruction && d->ins) {
            for (int64_t k = 0; k < n_sep; k++) prefix[n_prefix++] = sep[k];
            for (int64_t t = 0; t < ni; t++) prefix[n_prefix++] = j->tok.ids[d->ins->tok0 + t];
        }
        int32_t lim = j->n_ctx / 4 - 1;
        if (n_prefix > lim) { /* keep the first 100 tokens and the last ones */
            int32_t head = lim > 100 ? 100 : lim / 2, tail = lim - head;
            memmove(prefix + head, prefix + n_prefix - tail, (size_t)tail * sizeof *prefix);
            n_prefix = lim;
        }
    }
    int32_t I = j->p.iterative_size;
    if (I + n_prefix + 2 > j->n_ctx / 2) { /* leave room for the kept text before the window */
        int32_t fit = (j->n_ctx - n_prefix - 2) / 2;
        if (fit < 1) fit = 1;
        if (fit < I) {
            cmp_warn(j, "iterative_size %d does not fit the context of %d with a %d-token "
                     "question prefix: windows of %d tokens used", I, j->n_ctx, n_prefix, fit);
            I = fit;
        }
    }
    if (d->contrast && (rc = ensure_c2(d))) goto done;
    int64_t k_stream = k_ctx + (n_parts_in > 1 ? (int64_t)(n_parts_in - 1) * n_sep : 0);
    lingua_default_in in = {.ids = sids, .n = (int32_t)ns, .protect = sprot, .weight = sw,
                            .target = k_stream, .I = I, .bos = j->bos, .prefix = prefix,
                            .n_prefix = n_prefix, .self_lm = d->contrast ? &d->lm2 : NULL,
                            .score = sscore, .carry = j->p.carry};
    if (j->p.use_token_filter) {
        if ((rc = lingua_default_run(&d->lm, &in, skeep))) goto done;
    } else {
        memset(skeep, 1, (size_t)ns);
        for (int64_t t = 0; t < ns; t++) sscore[t] = (float)(ns - t); /* fit trims the end */
    }
    /* the final fit on the rendered text: engine's choice first, best scores first */
    int64_t nu = 0;
    units = terse_malloc((size_t)(ns + 1) * sizeof *units, "lingua: units");
    order = terse_malloc((size_t)(ns + 1) * sizeof *order, "lingua: units");
    double *us = terse_malloc((size_t)(ns + 1) * sizeof *us, "lingua: units");
    int32_t *ui = terse_malloc((size_t)(ns + 1) * sizeof *ui, "lingua: units");
    if (!units || !order || !us || !ui) {
        free(us);
        free(ui);
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    for (int64_t t = 0; t < ns; t++)
        if (smap[t] >= 0) j->tok.score[smap[t]] = sscore[t];
    /* units: the atoms of the kept contexts (a character, a line end, a number stay whole;
     * line ends come from the gaps), in text order; the engine's choice first (an atom it
     * kept any token of), then the sum of the scores; punctuation behind its words */
    for (int64_t t = 0; t < ns;) {
        if (smap[t] < 0) {
            t++;
            continue;
        }
        int64_t t0 = t;
        while (t < ns && smap[t] >= 0 && (t == t0 || smap[t] == smap[t - 1] + 1)) t++;
        int64_t m = cmp_atom_units(j, smap[t0], smap[t - 1] + 1, units + nu);
        for (int64_t k = nu; k < nu + m; k++) {
            int eng = 0;
            double sc = 0;
            for (int64_t x = units[k].tok0; x < units[k].tok1; x++) {
                int64_t st = t0 + (x - smap[t0]);
                eng |= skeep[st];
                sc += isnan(sscore[st]) ? 0 : sscore[st];
            }
            us[k] = (eng ? 1e9 : 0) + sc;
        }
        nu += m;
    }
    /* text order for the neighbour rule: contexts appear in used order, which may differ */
    cmp_cap_punct(j, units, nu, us);
    lingua_argsort(us, (int32_t)nu, 1, ui);
    for (int64_t k = 0; k < nu; k++) order[k] = ui[k];
    free(us);
    free(ui);
    /* reordered contexts are rendered (and counted) in their new order */
    int reordered = 0;
    for (int32_t u = 1; u < n_used; u++) reordered |= used[u] < used[u - 1];
    if (reordered) {
        porder = terse_malloc((size_t)j->n_parts * sizeof *porder, "lingua: part order");
        if (!porder) {
            rc = TERSE_ERR_NOMEM;
            goto done;
        }
        int32_t np = 0;
        if (d->ins) porder[np++] = (int32_t)(d->ins - j->parts);
        for (int32_t u = 0; u < n_used; u++) porder[np++] = (int32_t)(d->cp[used[u]] - j->parts);
        for (int32_t i = 0; i < nc; i++) { /* dropped contexts: anywhere, they render empty */
            int in_used = 0;
            for (int32_t u = 0; u < n_used; u++) in_used |= used[u] == i;
            if (!in_used) porder[np++] = (int32_t)(d->cp[i] - j->parts);
        }
        if (d->q) porder[np++] = (int32_t)(d->q - j->parts);
        j->part_order = porder;
        j->n_part_order = np;
    }
    rc = cmp_fit_budget(j, units, nu, order);
    if (!rc && reordered) rc = cmp_build_text(j);
    j->part_order = NULL;
done:
    free(used);
    free(dyn);
    free(len);
    free(sep);
    free(prefix);
    free(sids);
    free(smap);
    free(sprot);
    free(skeep);
    free(sw);
    free(sscore);
    free(drop);
    free(units);
    free(order);
    free(porder);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Entry                                                                                     */

int lingua_method_run(cmp_job *j, int long_mode) {
    drv d;
    memset(&d, 0, sizeof d);
    d.j = j;
    d.long_mode = long_mode;
    const char *name = long_mode ? "longllmlingua" : "llmlingua";
    if (j->p.iterative_size < 1)
        return terse_err(TERSE_ERR_INVALID, "compress: %s: iterative_size %d < 1", name,
                         j->p.iterative_size);
    if (j->p.context_budget_mul < 0 || isnan(j->p.context_budget_mul) ||
        isnan(j->p.context_budget_add))
        return terse_err(TERSE_ERR_INVALID, "compress: %s: context budget %g * target + %g", name,
                         j->p.context_budget_mul, j->p.context_budget_add);
    if (!(j->p.token_budget_ratio > 0) || !isfinite(j->p.token_budget_ratio) ||
        !isfinite(j->p.high_priority_bonus))
        return terse_err(TERSE_ERR_INVALID, "compress: %s: token_budget_ratio %g (want > 0), "
                         "high_priority_bonus %g (want finite)", name, j->p.token_budget_ratio,
                         j->p.high_priority_bonus);
    /* the method's defaults: LongLLMLingua's recommended settings in default mode (question
     * after the context for ranking, contrastive token scores, sort, dynamic ratio 0.3),
     * upstream compress_prompt's defaults otherwise */
    const int paper = long_mode && !j->p.compat;
    if (j->p.condition_compare < 0) j->p.condition_compare = paper;
    if ((int)j->p.reorder == TERSE_REORDER_AUTO) j->p.reorder = paper ? TERSE_REORDER_SORT : TERSE_REORDER_ORIGINAL;
    if (j->p.dynamic_ratio < 0 && !isnan(j->p.dynamic_ratio)) j->p.dynamic_ratio = paper ? 0.3 : 0.0;
    if (j->p.dynamic_ratio < 0 || j->p.dynamic_ratio > 1 || isnan(j->p.dynamic_ratio))
        return terse_err(TERSE_ERR_INVALID, "compress: %s: dynamic_ratio %g outside [0, 1]", name,
                         j->p.dynamic_ratio);
    if ((unsigned)j->p.reorder > TERSE_REORDER_TWO_STAGE ||
        (unsigned)j->p.condition_in_question > TERSE_CONDITION_AFTER)
        return terse_err(TERSE_ERR_INVALID, "compress: %s: reorder %d / condition %d unknown",
                         name, (int)j->p.reorder, (int)j->p.condition_in_question);
    for (int32_t p = 0; p < j->n_parts; p++) {
        const cmp_part *pa = &j->parts[p];
        if (pa->kind == CMP_PART_CONTEXT) d.nc++;
        else if (pa->kind == CMP_PART_INSTRUCTION) d.ins = pa;
        else if (pa->kind == CMP_PART_QUESTION) d.q = pa;
    }
    int has_q = d.q && d.q->end > d.q->begin;
    if (long_mode && !has_q)
        return terse_err(TERSE_ERR_INVALID, "compress: longllmlingua needs a question (the coarse "
                         "ranking and the contrastive scores are conditioned on it)");
    if (d.nc == 0) return terse_err(TERSE_ERR_INVALID, "compress: %s: no contexts", name);
    d.cp = terse_malloc((size_t)d.nc * sizeof *d.cp, "lingua: contexts");
    if (!d.cp) return TERSE_ERR_NOMEM;
    int32_t k = 0;
    for (int32_t p = 0; p < j->n_parts; p++)
        if (j->parts[p].kind == CMP_PART_CONTEXT) d.cp[k++] = &j->parts[p];
    /* condition normalisation, in upstream's order */
    d.contrast = j->p.condition_compare && has_q;
    d.cond_flag = d.contrast;
    d.cond = j->p.condition_in_question;
    if (long_mode) {
        /* upstream: "none" becomes "after" only without condition_compare (the suffix was
         * added first); default mode ranks by the question whenever there is one */
        if (d.cond == TERSE_CONDITION_NONE && (!j->p.compat || !j->p.condition_compare))
            d.cond = TERSE_CONDITION_AFTER;
    } else {
        d.cond = TERSE_CONDITION_NONE;
    }
    if (!has_q) d.cond = TERSE_CONDITION_NONE;
    lingua_lm_ctx(&d.lm, &d.ad, j, j->ctx);
    int rc = j->p.compat ? compat_run(&d) : default_run(&d);
    free(d.cp);
    terse_ctx_free(d.c2);
    return rc;
}
