/* grad.h - the training engine: a forward pass over one sequence that keeps its activations,
 * the backward pass through it, and the losses that start it. Internal header (not API); the
 * layers above (src/train, the distill command) build on it.
 *
 * On the model of llm.c: every op's X_forward sits beside its X_backward (grad_ops.h), one
 * activation arena per nn_grad, and the model's backward is its forward call list reversed.
 * The scoring path (forward.c, terse_ctx) is untouched and keeps nothing.
 *
 * Usage (soft prompt: gradients w.r.t. the input rows only, weights frozen):
 *     nn_grad *g;  nn_grad_params p = {.max_tokens = 512};
 *     if (nn_grad_new(model, p, &g)) { ... terse_last_error() ... }
 *     const float *logits;
 *     nn_grad_forward(g, ids, embd, T, NULL, &logits);          // ids[i] < 0: row i of embd
 *     double kl = nn_loss_kl(logits, teacher_logp, NULL, T, V, 0, dlogits);
 *     nn_grad_backward(g, dlogits, d_embd);                     // d_embd (T, C)
 *     nn_grad_free(g);
 * With weight_grads = 1 the trainable weights are F32 master copies (nn_grad_tensors) that
 * the forward reads and an optimiser updates; gradients accumulate over backward calls until
 * nn_grad_zero.
 *
 * Which weights train: every 1-D weight (norms, biases) and every matrix stored as F32, F16
 * or BF16 (its master is the exact F32 value). Quantised matrices (Q8_0) stay frozen: the
 * forward reads them from the model file and only input gradients flow through them.
 *
 * Thread safety: an nn_grad is used by one thread at a time; several may share a model.
 * Errors: functions returning int give TERSE_OK or a negative terse status with the message
 * in terse_last_error(). Unknown architectures or weight types give TERSE_ERR_UNSUPPORTED.
 *
 * Shapes: T tokens (positions 0..T-1), C = n_embd, V = n_vocab.
 */
#ifndef TERSE_NN_GRAD_H
#define TERSE_NN_GRAD_H

#include "nn/nn.h"

typedef struct nn_grad nn_grad;

typedef struct {
    int32_t max_tokens;   /* longest sequence forward will take; 0 = min(n_ctx_train, 512);
                             the activation arena is sized for it once, in nn_grad_new */
    int weight_grads;     /* 0: gradients w.r.t. the input rows only (weights read in place);
                             1: F32 master weights and their gradients (nn_grad_tensors) */
    int32_t n_threads;    /* threads for the element-wise work; 0 = all cores. Matrix
                             products use OpenBLAS's own threads (OPENBLAS_NUM_THREADS). */
    int f32_cache;        /* 1: keep an F32 copy of every frozen non-F32 matrix (4 bytes per
                             weight), so that no pass dequantises. Same results. It paid when
                             the products went to OpenBLAS (-30% CPU per step at T = 72 on the
                             default model); the runtime's gemm dequantises into its packing
                             panels for free, and with it the cache is a few % slower (more
                             memory traffic): leave 0 unless a profile says otherwise. */
} nn_grad_params;

/* One trainable tensor: its master weights w and gradient g, n floats each (row-major
 * (rows, cols); rows = 1 for a vector). decay: 1 for matrices, 0 for vectors (norm weights,
 * biases) and the embedding tables, the usual weight-decay split. name: the GGUF name. */
typedef struct {
    const char *name;
    float *w, *g;
    int64_t n, rows, cols;
    int decay;
} nn_grad_tensor;

int  nn_grad_new(const terse_model *m, nn_grad_params p, nn_grad **out);
void nn_grad_free(nn_grad *g);                    /* NULL: no-op */

/* Forward over one sequence at positions 0..T-1 (1 <= T <= max_tokens, and gpt2: <= its
 * position table). Input row i is the token embedding of ids[i], or row i of embd (T, C)
 * when ids is NULL or ids[i] < 0 (as terse_batch.embd: it replaces the token-embedding
 * lookup; gpt2 still adds position embeddings). mask: NULL = causal, else T x T bytes, row i
 * column j nonzero when token i may attend to token j (a row that sees nothing gets a zero
 * attention output, as in terse_eval). Keeps every activation the backward needs, including
 * a copy of ids and mask; *logits (T, V) points into g's memory, valid until the next
 * forward or nn_grad_free. Errors: T out of range, an id outside [0, V), an embd row needed
 * but embd NULL -> TERSE_ERR_INVALID / TERSE_ERR_RANGE. */
int  nn_grad_forward(nn_grad *g, const int32_t *ids, const float *embd, int32_t T,
                     const uint8_t *mask, const float **logits);

/* Backward from dlogits (T, V) = dL/dlogits of the last forward. d_embd (T, C) receives
 * (overwritten, not accumulated) dL/d(input row i) for every row, token or embd; NULL skips
 * it. With weight_grads, the weights' gradients accumulate (+=) into nn_grad_tensors()[k].g
 * (the rows of token_embd that were looked up, position_embd rows 0..T-1, everything else).
 * May be called more than once after one forward. Error: no forward yet -> TERSE_ERR_INVALID. */
int  nn_grad_backward(nn_grad *g, const float *dlogits, float *d_embd);

/* Sets every weight gradient to 0 (no-op without weight_grads). */
void nn_grad_zero(nn_grad *g);

/* The trainable tensors (NULL and *n = 0 without weight_grads). A tied output projection is
 * the token_embd tensor (listed once). The array belongs to g. */
nn_grad_tensor *nn_grad_tensors(nn_grad *g, int *n);

/* The tensor named name (GGUF name), or NULL. */
nn_grad_tensor *nn_grad_find(nn_grad *g, const char *name);

/* Bytes g holds (arena, masters, gradients), for the benchmarks' memory accounting. */
size_t nn_grad_bytes(const nn_grad *g);

/* Losses. logits (T, V) row-major. Each returns the loss and, when dlogits is not NULL,
 * writes (overwrites) dL/dlogits (T, V). Arguments are the caller's to get right (asserted).
 *
 * Cross-entropy, the mean over the counted rows of -log softmax(logits[t])[targets[t]];
 * targets[t] < 0: row t ignored (zero gradient). No counted row: 0, gradient 0. */
double nn_loss_ce(const float *logits, const int32_t *targets, int32_t T, int32_t V,
                  float *dlogits);

/* KL divergence between the teacher p_t = exp(teacher_logp[t]) (T, V log-probabilities) and
 * the model q_t = softmax(logits[t]):
 *     reverse = 0: KL(p || q) = sum_v p (log p - log q)      (forward KL, distillation)
 *     reverse = 1: KL(q || p) = sum_v q (log q - log p)      (Wingate et al.'s code)
 * averaged over rows with weights: L = sum_t w_t KL_t / sum_t w_t (row_weight NULL: all 1;
 * w_t = 0 skips row t). teacher_logp may hold -INFINITY (p = 0): such entries add nothing to
 * the forward KL and make the reverse KL infinite if q gives them mass. */
double nn_loss_kl(const float *logits, const float *teacher_logp, const float *row_weight,
                  int32_t T, int32_t V, int reverse, float *dlogits);

#endif
