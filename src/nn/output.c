/* output.c - the output distribution after terse_eval: per-token log-probabilities, full
 * log-softmax rows, top-k, and terse_score over a whole sequence.
 *
 * The output projection (V, C) is streamed in chunks of vocab_chunk rows: for each chunk one
 * sgemm of the hidden states (T, C) against the chunk (chunk, C)^T gives (T, chunk) logits,
 * (plus the output bias of phi2 and the final soft-cap of gemma2, in nn_logits_chunk, so that
 * every consumer sees the same logits), from which each row keeps a running max and sum of exponentials (rescaled when the max
 * grows) and picks its target's logit. Memory is O(T x chunk); T x V logits never exist.
 * Not here: the layers (forward.c) and sampling (generate.c).
 *
 * Shapes: T rows (hidden states of the last eval), C embd, V vocab, W = vocab_chunk.
 */
#include <math.h>
#include <stdlib.h>

#include "nn/nn.h"
#include "nn/simd.h"

void nn_logits_chunk(terse_ctx *c, const float *h, int32_t n, int32_t v0, int32_t v1, float *out) {
    const terse_model *m = c->m;
    nn_linear(h, n, m->n_embd, &m->output, v0, v1 - v0, out, v1 - v0, 0.0f, c->wbuf,
              c->wbuf_cap, c->pool);
    if (m->output_b) /* phi2 */
        for (int32_t i = 0; i < n; i++) simd_add(out + (size_t)i * (v1 - v0), m->output_b + v0, v1 - v0);
    if (m->final_softcap > 0.0f) { /* gemma2: cap * tanh(logit / cap) */
        const float cap = m->final_softcap;
        for (size_t k = 0; k < (size_t)n * (size_t)(v1 - v0); k++) out[k] = cap * tanhf(out[k] / cap);
    }
}

/* Fold one chunk of logits into each row's running (max, sum of exp), pick the target. */
typedef struct {
    terse_ctx *c;
    const float *L;        /* (n, w) */
    int32_t w, v0;
    const int32_t *targets;
} lse_job;

static void lse_range(void *arg, int64_t i0, int64_t i1) {
    const lse_job *j = arg;
    terse_ctx *c = j->c;
    for (int64_t i = i0; i < i1; i++) {
        const float *row = j->L + (size_t)i * j->w;
        float mx = simd_max(row, j->w), M = c->run_max[i];
        float nm = mx > M ? mx : M;
        c->run_sum[i] = c->run_sum[i] * expf(M - nm) + simd_sum_exp(row, j->w, nm);
        c->run_max[i] = nm;
        int32_t t = j->targets[i];
        if (t >= j->v0 && t < j->v0 + j->w) c->pick[i] = row[t - j->v0];
    }
}

/* logp[i] for rows h (n, C), n <= n_batch, targets in range. */
static void logprobs_block(terse_ctx *c, const float *h, int32_t n, const int32_t *targets,
                           float *logp) {
    const int32_t V = c->m->n_vocab, W = c->vocab_chunk;
    for (int32_t i = 0; i < n; i++) {
        c->run_max[i] = -INFINITY;
        c->run_sum[i] = 0.0f;
        c->pick[i] = 0.0f;
    }
    for (int32_t v0 = 0; v0 < V; v0 += W) {
        const int32_t w = V - v0 < W ? V - v0 : W;
        float *L = c->logit_chunk; /* (n, w) */
        nn_logits_chunk(c, h, n, v0, v0 + w, L);
        lse_job j = {c, L, w, v0, targets};
        nn_pool_run(c->pool, n, 2, lse_range, &j);
    }
    for (int32_t i = 0; i < n; i++) logp[i] = (c->pick[i] - c->run_max[i]) - logf(c->run_sum[i]);
}

int terse_eval_logprobs(terse_ctx *c, const int32_t *targets, int32_t n, float *logp) {
    if (!c || (n > 0 && (!targets || !logp)))
        return terse_err(TERSE_ERR_INVALID, "terse_eval_logprobs: NULL argument");
    if (n < 0 || n > c->n_out)
        return terse_err(TERSE_ERR_RANGE, "terse_eval_logprobs: %d positions requested, the last "
                         "eval has %d", n, c->n_out);
    for (int32_t i = 0; i < n; i++)
        if (targets[i] < 0 || targets[i] >= c->m->n_vocab)
            return terse_err(TERSE_ERR_INVALID, "terse_eval_logprobs: target %d at %d outside "
                             "[0, %d)", targets[i], i, c->m->n_vocab);
    const int64_t C = c->m->n_embd;
    for (int32_t r0 = 0; r0 < n; r0 += c->n_batch) {
        int32_t nr = n - r0 < c->n_batch ? n - r0 : c->n_batch;
        logprobs_block(c, c->hidden + r0 * C, nr, targets + r0, logp + r0);
    }
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* One full row                                                                              */

static int check_row(const terse_ctx *c, int32_t i, const char *fn) {
    if (!c) return terse_err(TERSE_ERR_INVALID, "%s: context is NULL", fn);
    if (i < 0 || i >= c->n_out)
        return terse_err(TERSE_ERR_RANGE, "%s: position %d outside the last eval's [0, %d)", fn,
                         i, c->n_out);
    return TERSE_OK;
}

/* out (V) = logits of hidden row i, optionally log-softmaxed */
static void full_row(terse_ctx *c, int32_t i, float *out, int log_softmax) {
    const int32_t V = c->m->n_vocab, W = c->vocab_chunk;
    const float *h = c->hidden + (size_t)i * c->m->n_embd;
    for (int32_t v0 = 0; v0 < V; v0 += W) {
        int32_t w = V - v0 < W ? V - v0 : W;
        nn_logits_chunk(c, h, 1, v0, v0 + w, out + v0);
    }
    if (log_softmax) {
        float mx = simd_max(out, V);
        float lse = mx + logf(simd_sum_exp(out, V, mx));
        for (int32_t v = 0; v < V; v++) out[v] -= lse;
    }
}

int terse_eval_hidden(const terse_ctx *c, int32_t i, int32_t n, float *out) {
    if (!c || (n > 0 && !out)) return terse_err(TERSE_ERR_INVALID, "terse_eval_hidden: NULL argument");
    if (i < 0 || n < 0 || (int64_t)i + n > c->n_out)
        return terse_err(TERSE_ERR_RANGE, "terse_eval_hidden: rows [%d, %lld) outside the last "
                         "eval's [0, %d)", i, (long long)i + n, c->n_out);
    const size_t C = (size_t)c->m->n_embd;
    memcpy(out, c->hidden + (size_t)i * C, (size_t)n * C * sizeof(float));
    return TERSE_OK;
}

int terse_eval_logits(terse_ctx *c, int32_t i, float *logits, int log_softmax) {
    int rc = check_row(c, i, "terse_eval_logits");
    if (rc) return rc;
    if (!logits) return terse_err(TERSE_ERR_INVALID, "terse_eval_logits: logits is NULL");
    full_row(c, i, logits, log_softmax);
    return TERSE_OK;
}

/* qsort has no context argument; top-k with k > 64 is rare, and a context is used by one
 * thread at a time, so a thread-local pointer to the row is enough. */
static _Thread_local const float *sort_row;
static int by_logit_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_row[x] != sort_row[y]) return sort_row[x] > sort_row[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int terse_eval_topk(terse_ctx *c, int32_t i, int32_t k, int32_t *ids, float *logp) {
    int rc = check_row(c, i, "terse_eval_topk");
    if (rc) return rc;
    const int32_t V = c->m->n_vocab;
    if (k < 1 || k > V || !ids)
        return terse_err(TERSE_ERR_INVALID, "terse_eval_topk: k %d outside [1, %d] or ids NULL",
                         k, V);
    float *row = c->vrow;
    full_row(c, i, row, 1);
    if (k > 64) { /* large k: sort all ids */
        int32_t *all = terse_malloc((size_t)V * sizeof *all, "top-k ids");
        if (!all) return TERSE_ERR_NOMEM;
        for (int32_t v = 0; v < V; v++) all[v] = v;
        sort_row = row;
        qsort(all, (size_t)V, sizeof *all, by_logit_desc);
        memcpy(ids, all, (size_t)k * sizeof *ids);
        free(all);
    } else { /* small k: keep a sorted list, most ids fail the first comparison */
        int32_t n = 0;
        for (int32_t v = 0; v < V; v++) {
            if (n == k && !(row[v] > row[ids[n - 1]])) continue;
            int32_t j = n < k ? n++ : k - 1;
            while (j > 0 && row[v] > row[ids[j - 1]]) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = v;
        }
    }
    if (logp)
        for (int32_t j = 0; j < k; j++) logp[j] = row[ids[j]];
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Whole-sequence scoring                                                                    */

int terse_score(terse_ctx *c, const int32_t *ids, int32_t n, float *out) {
    if (!c || !ids || !out) return terse_err(TERSE_ERR_INVALID, "terse_score: NULL argument");
    if (n < 1) return terse_err(TERSE_ERR_INVALID, "terse_score: %d tokens", n);
    if (n > c->n_ctx)
        return terse_err(TERSE_ERR_RANGE, "terse_score: %d tokens exceed n_ctx %d", n, c->n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->m->n_vocab)
            return terse_err(TERSE_ERR_INVALID, "terse_score: token id %d at %d outside [0, %d)",
                             ids[i], i, c->m->n_vocab);
    terse_kv_clear(c);
    out[0] = 0.0f;
    for (int32_t b0 = 0; b0 < n; b0 += c->n_batch) {
        int32_t nb = n - b0 < c->n_batch ? n - b0 : c->n_batch;
        terse_batch b = {.n = nb, .ids = ids + b0};
        int rc = terse_eval(c, &b);
        if (rc) return rc;
        int32_t nt = b0 + nb < n ? nb : nb - 1; /* positions with a next token */
        if (nt > 0) {
            float *lp = out + b0 + 1;
            if ((rc = terse_eval_logprobs(c, ids + b0 + 1, nt, lp))) return rc;
            for (int32_t i = 0; i < nt; i++) lp[i] = -lp[i];
        }
    }
    return TERSE_OK;
}
