/* score.c - per-token surprisal for the compression methods: one sequence in windows with a
 * fixed prefix and carried-over context (cmp_score_ids), many short independent sequences
 * packed into masked forward passes (cmp_score_packed), and the timed wrappers around the
 * runtime (cmp_eval, cmp_logprobs) that measure the share of time spent in the model.
 * Not here: what the scores are used for (methods), the runtime itself (src/nn).
 *
 * Shapes: W = n_ctx (cache capacity), B = n_batch, P = prefix length, K = carry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "nn/nn.h"

int cmp_eval(cmp_job *j, const terse_batch *b) {
    double t0 = terse_now();
    int rc = terse_eval(j->ctx, b);
    j->t_model += terse_now() - t0;
    return rc;
}

int cmp_logprobs(cmp_job *j, const int32_t *targets, int32_t n, float *logp) {
    double t0 = terse_now();
    int rc = terse_eval_logprobs(j->ctx, targets, n, logp);
    j->t_model += terse_now() - t0;
    return rc;
}

void cmp_progress(cmp_job *j, int64_t n) {
    j->done += n;
    if (j->p.progress) j->p.progress(j->p.progress_user, j->done, j->total);
}

/* Append seq[0..L) to the cache in chunks of B; for every position q in [from, L-1),
 * sur[q] = -log p(seq[q+1] | cache, seq[0..q]). sur has L entries (the last is unused). */
static int eval_scored(cmp_job *j, const int32_t *seq, int32_t L, int32_t from, float *sur) {
    int32_t B = j->ctx->n_batch;
    for (int32_t c0 = 0; c0 < L; c0 += B) {
        int32_t nb = L - c0 < B ? L - c0 : B;
        terse_batch b = {.n = nb, .ids = seq + c0};
        int rc = cmp_eval(j, &b);
        if (rc) return rc;
        int32_t nt = c0 + nb < L ? nb : nb - 1; /* positions that have a next token */
        if (nt <= 0 || c0 + nt <= from) continue;
        if ((rc = cmp_logprobs(j, seq + c0 + 1, nt, sur + c0))) return rc;
        for (int32_t i = 0; i < nt; i++) sur[c0 + i] = -sur[c0 + i];
    }
    return TERSE_OK;
}

int cmp_score_ids(cmp_job *j, const int32_t *prefix, int32_t n_prefix, const int32_t *ids,
                  int64_t n, float *out) {
    if (n <= 0) return TERSE_OK;
    const int32_t W = j->n_ctx;
    if (n_prefix < 0 || n_prefix >= W - 1)
        return terse_err(TERSE_ERR_RANGE, "compress: scoring prefix of %d tokens leaves no room in a "
                         "context of %d", n_prefix, W);
    /* Window layout: prefix[0..P-1) stays cached; each window evaluates
     * [prefix[P-1]] + ids[ws..we) (or ids[ws..we) without a prefix). */
    const int32_t P = n_prefix;
    int32_t room = W - P;                     /* ids per window (the prefix's last token is
                                                 re-evaluated but already counted in P) */
    int32_t K = j->p.carry;
    if (K > room / 2) K = room / 2;
    int32_t *seq = terse_malloc((size_t)(room + 1) * sizeof *seq, "compress: window");
    float *sur = terse_malloc((size_t)(room + 1) * sizeof *sur, "compress: window scores");
    int rc = (!seq || !sur) ? TERSE_ERR_NOMEM : TERSE_OK;
    if (!rc) {
        terse_kv_clear(j->ctx);
        if (P > 1) {
            terse_batch b = {.n = P - 1, .ids = prefix};
            rc = cmp_eval(j, &b);
        }
    }
    if (!rc && P == 0) out[0] = 0.0f;
    for (int64_t s = 0; !rc && s < n;) {        /* s: first id this window scores */
        int64_t ws = s == 0 ? 0 : s - K;          /* first id of the window */
        int64_t we = ws + room < n ? ws + room : n;
        int32_t L = 0, off;                        /* seq = [prefix last] + ids[ws..we) */
        if (P > 0) seq[L++] = prefix[P - 1];
        off = L;
        for (int64_t t = ws; t < we; t++) seq[L++] = ids[t];
        rc = terse_kv_truncate(j->ctx, P > 0 ? P - 1 : 0);
        /* id t sits at seq position off + (t - ws); its score is sur at the position before */
        int32_t from = off + (int32_t)(s - ws) - 1;
        if (from < 0) from = 0;
        if (!rc) rc = eval_scored(j, seq, L, from, sur);
        if (!rc) {
            for (int64_t t = s; t < we; t++) {
                int32_t q = off + (int32_t)(t - ws) - 1;
                if (q >= 0) out[t] = sur[q];
            }
            cmp_progress(j, we - s);
        }
        s = we;
    }
    free(seq);
    free(sur);
    return rc;
}

int cmp_score_packed(cmp_job *j, const int32_t *ids, const int64_t *b, const int64_t *e,
                     int64_t n_seq, float *out) {
    const int32_t B = j->ctx->n_batch, W = j->n_ctx;
    const int has_bos = j->bos >= 0;
    const int32_t cap = B < W ? B : W;            /* tokens per packed pass */
    int32_t *seq = terse_malloc((size_t)cap * sizeof *seq, "compress: packed ids");
    int32_t *pos = terse_malloc((size_t)cap * sizeof *pos, "compress: packed positions");
    int32_t *tgt = terse_malloc((size_t)cap * sizeof *tgt, "compress: packed targets");
    float *lp = terse_malloc((size_t)cap * sizeof *lp, "compress: packed scores");
    uint8_t *mask = terse_malloc((size_t)cap * (size_t)cap, "compress: packed mask");
    int rc = (!seq || !pos || !tgt || !lp || !mask) ? TERSE_ERR_NOMEM : TERSE_OK;
    int64_t i = 0;
    while (!rc && i < n_seq) {
        int64_t len = e[i] - b[i];
        if (len <= 0) {
            i++;
            continue;
        }
        if (len + has_bos > cap) { /* alone, in windows if needed */
            int32_t bos = j->bos;
            rc = cmp_score_ids(j, has_bos ? &bos : NULL, has_bos, ids + b[i], len, out + b[i]);
            i++;
            continue;
        }
        /* pack sequences i..k-1 */
        int32_t n = 0;
        int64_t k = i;
        while (k < n_seq) {
            int64_t l = e[k] - b[k];
            if (l > 0 && (n + l + has_bos > cap)) break;
            if (l > 0) {
                int32_t start = n;
                if (has_bos) seq[n++] = j->bos;
                for (int64_t t = b[k]; t < e[k]; t++) seq[n++] = ids[t];
                for (int32_t q = start; q < n; q++) pos[q] = q - start;
                for (int32_t q = start; q < n; q++) tgt[q] = q + 1 < n ? seq[q + 1] : 0;
            }
            k++;
        }
        memset(mask, 0, (size_t)n * (size_t)n);
        for (int32_t q = 0; q < n; q++) {
            int32_t s0 = q - pos[q];
            memset(mask + (size_t)q * (size_t)n + s0, 1, (size_t)(q - s0 + 1));
        }
        terse_kv_clear(j->ctx);
        terse_batch bt = {.n = n, .ids = seq, .pos = pos, .mask = mask};
        rc = cmp_eval(j, &bt);
        if (!rc) rc = cmp_logprobs(j, tgt, n, lp);
        if (rc) break;
        int32_t q = 0;
        int64_t scored = 0;
        for (int64_t s = i; s < k; s++) {
            int64_t l = e[s] - b[s];
            if (l <= 0) continue;
            if (has_bos) {
                for (int64_t t = 0; t < l; t++) out[b[s] + t] = -lp[q + t];
                q += (int32_t)l + 1;
            } else {
                out[b[s]] = 0.0f;
                for (int64_t t = 1; t < l; t++) out[b[s] + t] = -lp[q + t - 1];
                q += (int32_t)l;
            }
            scored += l;
        }
        cmp_progress(j, scored);
        i = k;
    }
    free(seq);
    free(pos);
    free(tgt);
    free(lp);
    free(mask);
    return rc;
}
