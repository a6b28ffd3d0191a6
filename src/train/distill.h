/* distill.h - the soft-prompt training loop (conditioning contexts, Wingate et al. 2022).
 * Internal header (not API); compress/soft.c wraps it into terse_distill() and the file.
 *
 *   continuations: n_samples sequences x of cont_len tokens, sampled from the model after
 *       BOS + prompt with the ordinary (fast, cached) forward, or cut from the caller's lines;
 *   teacher rows:  p(. | BOS, prompt, x_<t) for t = 0..cont_len-1, log-softmaxed, computed once;
 *   student:       the same model on [BOS, P_1..P_N, x_0..x_{L-2}] through nn_grad_forward,
 *                  rows N..N+L-1 (after BOS: the row of P_N predicts x_0) against the teacher's;
 *   loss:          mean over x's positions of KL(p || q) (reverse: KL(q || p)), gradient with
 *                  respect to the input rows of P only, AdamW on P.
 */
#ifndef TERSE_TRAIN_DISTILL_H
#define TERSE_TRAIN_DISTILL_H

#include "base/base.h"

typedef struct {
    double kl_initial;      /* mean loss over all training continuations, before training */
    double kl_final;        /* the same after the last step */
    double seconds;         /* wall time, sampling included */
    double seconds_teacher; /* of which sampling + teacher rows */
    int32_t steps;
} distill_stats;

/* The initial N x C vectors: the embeddings of the prompt's tokens prompt[0..n) (no BOS) at
 * evenly spaced positions (round((i + 0.5) * n / N)), or of N random vocabulary rows (seeded);
 * a prompt shorter than N repeats. */
int distill_init(const terse_model *m, const int32_t *prompt, int32_t n, int32_t N,
                 terse_soft_init init, uint64_t seed, float *P);

/* Train P (N x C; holds the initial vectors on entry) for prompt[0..n) (no BOS). bos: the
 * vocabulary's BOS id or -1. Parameters are validated by the caller. */
int distill_run(const terse_model *m, const int32_t *prompt, int32_t n, int32_t bos,
                const terse_distill_params *p, float *P, distill_stats *st);

/* Continuations: the cache of c is cleared and ids[0..n) (BOS + prompt, n >= 1) evaluated;
 * then n_samples sequences of L tokens are sampled after it (sample i from a stream seeded
 * with seed + i, at the given temperature, EOS allowed as a token) into xs (n_samples x L),
 * with the log-softmax rows they were drawn from into rows (n_samples x L x V; NULL: not
 * kept). Groups of samples run side by side in the cache, each masked to see the prompt and
 * its own tokens (so c's n_ctx bounds the group size, not the result). */
int distill_sample(terse_ctx *c, const int32_t *ids, int32_t n, int32_t n_samples, int32_t L,
                   float temperature, uint64_t seed, int32_t *xs, float *rows);

/* Rows of the model's log-softmax after a prefix already in c's cache (kv_len k) whose last
 * row's log-softmax is first (V): for each sequence x (L tokens) rows[s][0] = first and
 * rows[s][t] = log p(. | prefix, x_<t) for t in [1, L); sequences are evaluated side by side
 * after the prefix (masked as in distill_sample), the cache cut back to k between groups.
 * rows: n_samples x L x V. */
int distill_rows(terse_ctx *c, const float *first, const int32_t *xs, int32_t n_samples,
                 int32_t L, float *rows);

#endif
