/* grad_ops.h - the ops of the training forward (grad.c), each X_forward beside its X_backward,
 * llm.c style. Internal header; tests/test_grad_ops.c checks every backward against finite
 * differences of a float64 reference.
 *
 * Conventions: rows are tokens, row-major, T rows. X_forward writes its outputs and saves
 * what X_backward needs in caller-given buffers; X_backward ACCUMULATES (+=) into its input
 * gradients (the caller zeroes them), except the rotary backward, which transforms a gradient
 * buffer in place. Weight-gradient pointers may be NULL (frozen weight: not computed).
 * pool may be NULL (inline). Matrix products go to the runtime's gemm (nn/gemm.h, the same
 * kernels as the scoring path; the BLAS only if its packing memory cannot be had), through
 * an nn_grad_ws that holds the buffers they need.
 * Numerics of the forwards equal the scoring path's (forward.c): same norm formulas, the
 * same SIMD activations, the same rotary tables.
 *
 * Shapes: T tokens, C embd, H heads, Hkv kv heads, D head dim, I / O a matrix's in / out.
 */
#ifndef TERSE_NN_GRAD_OPS_H
#define TERSE_NN_GRAD_OPS_H

#include "nn/nn.h"
#include "nn/pool.h"

/* Buffers of the ops' matrix products, sized once by the owner (nn_grad_ws_sizes):
 *   work  nn_gemm's packing buffer (NULL/0: nn_gemm allocates per call)
 *   tbuf  a transposed operand: NN_GRAD_ROW_BLOCK x T and T x qb floats at least
 *   wbuf  dequantised weight rows (at least one row of the widest matrix)
 * The backward's weight products go NN_GRAD_ROW_BLOCK weight rows at a time. */
#define NN_GRAD_ROW_BLOCK 1024
typedef struct {
    nn_pool *pool;
    float *work, *tbuf, *wbuf;
    int64_t work_cap, tbuf_cap, wbuf_cap;
} nn_grad_ws;

/* Floats of work, tbuf and wbuf for sequences of up to T tokens, matrices of up to max_in
 * columns, attention blocks of qb rows, n_threads threads. */
void nn_grad_ws_sizes(int n_threads, int64_t T, int64_t max_in, int64_t qb, int64_t *work,
                      int64_t *tbuf, int64_t *wbuf);

/* Embedding: x[i] = tok row ids[i] (or embd row i when ids is NULL or ids[i] < 0), plus
 * pos row i when pos is not NULL (gpt2). Backward: d_embd[i] += dx[i] (for every row; NULL
 * skips), d_tok[ids[i]] += dx[i] for looked-up rows, d_pos[i] += dx[i]. */
void nn_embed_forward(float *x, const int32_t *ids, const float *embd, const nn_matrix *tok,
                      const nn_matrix *pos, int64_t T, int64_t C, float *tmp /* (C) */);
void nn_embed_backward(float *d_embd, float *d_tok, float *d_pos, const float *dx,
                       const int32_t *ids, int64_t T, int64_t C);

/* RMSNorm y = w * x * rstd, rstd = 1/sqrt(mean(x^2) + eps); saves rstd (T). */
void nn_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t C, float eps, nn_pool *pool);
void nn_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int64_t T, int64_t C, nn_pool *pool);

/* LayerNorm y = (x - mean) * rstd * w + b (biased variance); saves mean, rstd (T each). */
void nn_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t C, float eps, nn_pool *pool);
void nn_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                           const float *w, const float *mean, const float *rstd, int64_t T,
                           int64_t C, nn_pool *pool);

/* Rotary embeddings at positions 0..T-1: tables cos, sin (T, n_rot/2) with
 * angle = float(pos) * inv_freq, inv_freq = 1 / base^(2j/n_rot) (/ freqs[j] if given).
 * forward rotates the first n_rot dims of each of nh heads (D wide) of every row in place:
 * neox = 0 pairs (x[2j], x[2j+1]) (llama), neox = 1 pairs (x[j], x[j + n_rot/2]) (qwen2).
 * backward applies the inverse (transposed) rotation to a gradient buffer in place. */
void nn_rope_tables(float *cos_t, float *sin_t, int64_t T, int32_t n_rot, float base,
                    const float *freqs);
void nn_rope_forward(float *x, int64_t T, int64_t nh, int64_t D, int32_t n_rot, int neox,
                     const float *cos_t, const float *sin_t, nn_pool *pool);
void nn_rope_backward(float *dx, int64_t T, int64_t nh, int64_t D, int32_t n_rot, int neox,
                      const float *cos_t, const float *sin_t, nn_pool *pool);

/* Attention with grouped heads: head h reads kv head h / (H / Hkv).
 * out (T, H*D) = softmax(q k^T / sqrt(D), masked) v per head; q (T, H*D), k, v (T, Hkv*D).
 * mask: NULL = causal, else (T, T) bytes (row i may attend column j when nonzero); a row that
 * sees nothing gets out = 0. Saves lse (H, T): log-sum-exp of each scaled score row
 * (-INFINITY for an empty row); the backward recomputes the probabilities from it
 * (flash-attention style, so nothing T x T per head is kept). Queries go in blocks of qb rows
 * (NN_ATT_BLOCK in the model; tests use small blocks); scratch: nn_attention_scratch(T, qb)
 * floats, besides ws. */
#define NN_ATT_BLOCK 128
int64_t nn_attention_scratch(int64_t T, int64_t qb);
void nn_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          const uint8_t *mask, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                          int64_t qb, float *scratch, const nn_grad_ws *ws);
void nn_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                           const float *q, const float *k, const float *v, const float *lse,
                           const uint8_t *mask, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                           int64_t qb, float *scratch, const nn_grad_ws *ws);

/* Linear y (T, nrows) = x (T, I) W[row0 .. row0+nrows)^T (+ b (nrows)), W (O, I) of any
 * supported type (non-F32 dequantised on the way, into the gemm's panels or ws->wbuf).
 * Backward: dx (T, I) += dy W_rows; dW (nrows, I) += dy^T x (F32 gradient of those rows,
 * NULL = frozen); db (nrows) += column sums of dy. dx may be NULL. */
void nn_matmul_forward(float *y, const float *x, const nn_matrix *w, int64_t row0,
                       int64_t nrows, const float *b, int64_t T, const nn_grad_ws *ws);
void nn_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const nn_matrix *w, int64_t row0, int64_t nrows, int64_t T,
                        const nn_grad_ws *ws);

/* SwiGLU h = silu(g) * u; GELU (tanh approximation) y = gelu(x). n values. */
void nn_swiglu_forward(float *h, const float *g, const float *u, int64_t n, nn_pool *pool);
void nn_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                        int64_t n, nn_pool *pool);
void nn_gelu_forward(float *y, const float *x, int64_t n, nn_pool *pool);
void nn_gelu_backward(float *dx, const float *dy, const float *x, int64_t n, nn_pool *pool);

/* Log-softmax over rows of V: y = x - logsumexp(x); backward dx += dy - exp(y) sum(dy). */
void nn_logsoftmax_forward(float *y, const float *x, int64_t T, int64_t V);
void nn_logsoftmax_backward(float *dx, const float *dy, const float *y, int64_t T, int64_t V);

#endif
