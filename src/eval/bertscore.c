/* bertscore.c - a BERTScore-style F1 (Zhang et al. 2020, "BERTScore: Evaluating Text
 * Generation with BERT") computed with terse's own runtime instead of RoBERTa:
 *
 *   encoder:    the given context's model (the eval harness passes the target model, by
 *               default models/terse-default.gguf, a 23M llama); each text is run alone,
 *               after BOS, with causal attention;
 *   embeddings: the final hidden state of each token (after the output norm: the vector the
 *               LM head reads), L2-normalised; BOS is not a token of the text and is skipped;
 *   score:      S = cosine similarities (candidate tokens x reference tokens);
 *               P = mean over candidate tokens of their best S, R = mean over reference tokens
 *               of their best S, F = 2PR / (P + R). No idf weights, no baseline rescaling
 *               (BERTScore's defaults), so values sit near 1 and only differences matter.
 *
 * The hidden states are read from the context after terse_eval (terse_eval_hidden);
 * the public API has no call for them yet (a terse_eval_hidden() is proposed in the eval
 * report). A causal LM sees only the left context, unlike BERT, and its last layer is tuned
 * for next-token prediction, not similarity: treat the numbers as a relative measure.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* Tokens of text after BOS, run through the model; *emb gets (n, C) unit vectors. */
static int embed(terse_ctx *c, const char *text, float **emb, int32_t *n_out, int32_t *C_out) {
    *emb = NULL;
    *n_out = 0;
    terse_model_info info;
    terse_model_get_info(terse_ctx_model(c), &info);
    const terse_vocab *v = terse_model_vocab(terse_ctx_model(c));
    if (!v) return terse_err(TERSE_ERR_INVALID, "BERTScore: the model has no vocabulary");
    int32_t C = info.n_embd;
    *C_out = C;
    size_t len = strlen(text);
    int64_t n = terse_token_count(v, text, len);
    if (n < 0) return (int)n;
    if (n == 0) return TERSE_OK;
    int32_t bos = terse_vocab_bos(v), has_bos = bos >= 0;
    int32_t cap = terse_ctx_n_ctx(c);
    if (n + has_bos > cap) n = cap - has_bos; /* long texts: their first n_ctx tokens */
    int32_t *ids = terse_malloc((size_t)(n + 1) * sizeof *ids, "BERTScore ids");
    if (!ids) return TERSE_ERR_NOMEM;
    int64_t all = terse_token_count(v, text, len);
    int32_t *tmp = terse_malloc((size_t)(all + 1) * sizeof *tmp, "BERTScore ids");
    if (!tmp) { free(ids); return TERSE_ERR_NOMEM; }
    int64_t got = terse_tokenize(v, text, len, 0, tmp, NULL, all + 1);
    if (got < 0) { free(ids); free(tmp); return (int)got; }
    if (has_bos) ids[0] = bos;
    memcpy(ids + has_bos, tmp, (size_t)n * sizeof *ids);
    free(tmp);
    terse_kv_clear(c);
    terse_batch b = {.n = (int32_t)n + has_bos, .ids = ids};
    int rc = terse_eval(c, &b);
    free(ids);
    if (rc) return rc;
    float *e = terse_malloc((size_t)n * (size_t)C * sizeof *e, "BERTScore embeddings");
    if (!e) return TERSE_ERR_NOMEM;
    if ((rc = terse_eval_hidden(c, has_bos, (int32_t)n, e))) { /* (n, C) */
        free(e);
        return rc;
    }
    for (int64_t i = 0; i < n; i++) {
        float *h = e + (size_t)i * (size_t)C;
        double ss = 0;
        for (int32_t k = 0; k < C; k++) ss += (double)h[k] * h[k];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int32_t k = 0; k < C; k++) h[k] *= inv;
    }
    *emb = e;
    *n_out = (int32_t)n;
    return TERSE_OK;
}

int terse_bertscore(terse_ctx *ctx, const char *candidate, const char *reference,
                    terse_prf *out) {
    if (!ctx || !candidate || !reference || !out)
        return terse_err(TERSE_ERR_INVALID, "terse_bertscore: NULL argument");
    memset(out, 0, sizeof *out);
    float *ec = NULL, *er = NULL;
    int32_t nc = 0, nr = 0, C = 0;
    int rc = embed(ctx, candidate, &ec, &nc, &C);
    if (!rc) rc = embed(ctx, reference, &er, &nr, &C);
    if (!rc && nc > 0 && nr > 0) {
        double *best_r = terse_malloc((size_t)nr * sizeof *best_r, "BERTScore");
        if (!best_r) rc = TERSE_ERR_NOMEM;
        for (int32_t j = 0; !rc && j < nr; j++) best_r[j] = -2;
        double sum_p = 0;
        for (int32_t i = 0; !rc && i < nc; i++) {
            double best = -2;
            for (int32_t j = 0; j < nr; j++) {
                double s = 0;
                const float *a = ec + (size_t)i * C, *b = er + (size_t)j * C;
                for (int32_t k = 0; k < C; k++) s += (double)a[k] * b[k];
                if (s > best) best = s;
                if (s > best_r[j]) best_r[j] = s;
            }
            sum_p += best;
        }
        if (!rc) {
            double sum_r = 0;
            for (int32_t j = 0; j < nr; j++) sum_r += best_r[j];
            out->p = sum_p / nc;
            out->r = sum_r / nr;
            out->f = ev_f1(out->p, out->r);
        }
        free(best_r);
    }
    free(ec);
    free(er);
    return rc;
}
