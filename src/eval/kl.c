/* kl.c - KL divergence between next-token distributions, the quantity that conditioning-
 * context compression minimises (Wingate et al. 2022): how far the target model's prediction
 * after a compressed prompt is from its prediction after the original, along the same text.
 *
 * terse_kl() is the divergence of two log-softmax rows; ev_next_logprobs() evaluates a prompt
 * followed by a continuation and writes the rows that predict each continuation token, which
 * the harness compares row by row (original prompt's rows = p, compressed prompt's = q).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

double terse_kl(const float *logp, const float *logq, int32_t n) {
    if (!logp || !logq || n <= 0) return 0.0;
    double kl = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double lp = logp[i];
        if (lp == -INFINITY) continue; /* p_i = 0 contributes nothing */
        double lq = logq[i];
        if (lq == -INFINITY) return INFINITY;
        kl += exp(lp) * (lp - lq);
    }
    return kl > 0 ? kl : 0.0; /* rounding can leave -1e-9 for equal rows */
}

int ev_next_logprobs(terse_ctx *c, const int32_t *prompt, int32_t np, const int32_t *cont,
                     int32_t nc, int32_t n_vocab, float *rows) {
    if (np < 1 || nc < 1) return terse_err(TERSE_ERR_INVALID, "next-token rows: %d + %d tokens",
                                           np, nc);
    int32_t n = np + nc - 1;
    if (n > terse_ctx_n_ctx(c))
        return terse_err(TERSE_ERR_RANGE, "prompt %d + continuation %d tokens exceed n_ctx %d",
                         np, nc, terse_ctx_n_ctx(c));
    int32_t *ids = terse_malloc((size_t)n * sizeof *ids, "prompt + continuation");
    if (!ids) return TERSE_ERR_NOMEM;
    memcpy(ids, prompt, (size_t)np * sizeof *ids);
    memcpy(ids + np, cont, (size_t)(nc - 1) * sizeof *ids);
    terse_kv_clear(c);
    terse_batch b = {.n = n, .ids = ids};
    int rc = terse_eval(c, &b);
    for (int32_t i = 0; i < nc && !rc; i++)
        rc = terse_eval_logits(c, np - 1 + i, rows + (size_t)i * (size_t)n_vocab, 1);
    free(ids);
    return rc;
}
