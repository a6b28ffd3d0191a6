/* adamw.h - the optimiser: AdamW (decoupled weight decay, Loshchilov & Hutter) with a linear
 * warm-up then cosine learning-rate schedule, global-norm gradient clipping, a seeded random
 * stream for the caller's sampling, and state files that resume bit for bit.
 *
 * The optimiser does not own the tensors: it is given (w, g, n) triples (e.g. from
 * nn_grad_tensors, or one soft-prompt matrix) and updates w from g in place. One step:
 *     lr_t   = schedule(step)                           (see train_adamw_lr)
 *     norm   = sqrt(sum over all tensors of g^2)        (double accumulation)
 *     s      = clip > 0 && norm > clip ? clip / norm : 1
 *     m      = b1 m + (1 - b1) s g;   v = b2 v + (1 - b2) (s g)^2
 *     w     -= lr_t (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * w)   (wd only
 *              where the tensor says decay)
 * Deterministic: the same tensors, gradients and params give the same bits on one machine.
 *
 * State file (train_adamw_save): "TRSADAMW", version, the step, the random stream's state,
 * and per tensor n, w, m, v; then a 64-bit FNV-1a of everything before it. Loading checks the
 * magic, the version, that the tensor count and sizes equal this optimiser's, and the
 * checksum, before it changes anything. The file is written to a temporary name and renamed,
 * so a crash never leaves half a state.
 * Not here: the gradients themselves (nn/grad.h), data order, learning-rate search.
 */
#ifndef TERSE_TRAIN_ADAMW_H
#define TERSE_TRAIN_ADAMW_H

#include "base/base.h"

typedef struct {
    float lr;              /* peak learning rate (after warm-up); > 0 */
    float min_lr;          /* learning rate reached at total_steps by the cosine; >= 0 */
    int64_t warmup_steps;  /* linear warm-up from lr/warmup_steps to lr; 0 = none */
    int64_t total_steps;   /* cosine decay ends here (constant min_lr after); 0 = no decay */
    float beta1, beta2;    /* 0.9, 0.999 by default */
    float eps;             /* 1e-8 */
    float weight_decay;    /* decoupled decay, on tensors with decay = 1; 0 = none */
    float clip_norm;       /* global gradient-norm clip; 0 = none */
    uint64_t seed;         /* random stream (train_adamw_rand) */
} train_adamw_params;

/* lr 1e-3, min_lr 0, no warm-up, no decay, betas 0.9 / 0.999, eps 1e-8, wd 0, no clip, seed 1 */
train_adamw_params train_adamw_default_params(void);

/* One tensor to optimise: w updated in place from g (n floats each). */
typedef struct {
    float *w;
    const float *g;
    int64_t n;
    int decay;
} train_tensor;

typedef struct train_adamw train_adamw;

/* Copies the table of tensors (not their data) and allocates m and v (zeroed).
 * Errors: no tensors, a NULL pointer or n < 1, bad params -> TERSE_ERR_INVALID. */
int  train_adamw_new(const train_adamw_params *p, const train_tensor *t, int n_tensors,
                     train_adamw **out);
void train_adamw_free(train_adamw *o);    /* NULL: no-op */

/* One update from the current gradients. Returns TERSE_OK, or TERSE_ERR_RANGE (nothing
 * changed) when the gradient norm is not finite. Optional outputs: the norm before clipping
 * and the learning rate used. */
int  train_adamw_step(train_adamw *o, double *grad_norm, float *lr);

/* Steps taken so far (the next step is number step + 1). */
int64_t train_adamw_steps(const train_adamw *o);

/* The schedule: learning rate of step s (1-based). */
float train_adamw_lr(const train_adamw_params *p, int64_t s);

/* The seeded random stream, saved with the state: uniform in [0, 1) and a 64-bit draw. */
double   train_adamw_rand(train_adamw *o);
uint64_t train_adamw_rand_u64(train_adamw *o);

/* Save / load the whole state (step, random stream, and per tensor w, m, v). */
int  train_adamw_save(const train_adamw *o, const char *path);
int  train_adamw_load(train_adamw *o, const char *path);

#endif
