/* nn.h - the transformer runtime's internal structures, shared by its files:
 *   model.c        load, validate, hparams (terse_model)
 *   forward.c      contexts, KV cache, layers, attention (terse_ctx, terse_eval)
 *   output.c       output projection: chunked log-probs, logits, top-k, terse_score
 *   generate.c     greedy and sampled generation
 *   random_model.c random-weight model files
 *   quant.c, simd.c  element types and vector kernels
 *   blas_threads.c   OpenBLAS's thread count follows the context's n_threads
 * Internal header (not API).
 *
 * Shapes, named once: T tokens in a batch, C = n_embd, H = n_head, Hkv = n_head_kv,
 * D = head_dim = C / H, KV = Hkv * D, F = n_ff, V = n_vocab, L = n_layer, N = n_ctx.
 * A matrix weight is GGML-shaped: ne[0] = in (contiguous), ne[1] = out, i.e. row-major
 * (out, in), and a linear layer is y = x W^T (+ b).
 */
#ifndef TERSE_NN_H
#define TERSE_NN_H

#include "base/base.h"
#include "gguf/gguf.h"
#include "nn/pool.h"

typedef enum { NN_ARCH_LLAMA, NN_ARCH_QWEN2, NN_ARCH_GPT2 } nn_arch;

/* A 2-D weight inside the mapping: rows (out) of cols (in) values of a GGML type. */
typedef struct {
    uint32_t type;
    const uint8_t *data;
    int64_t rows, cols;
    size_t row_bytes;
} nn_matrix;

typedef struct {
    const float *attn_norm, *attn_norm_b;   /* (C), (C) gpt2 */
    nn_matrix wq, wk, wv;                   /* (C, C) (KV, C) (KV, C); llama, qwen2 */
    const float *bq, *bk, *bv;              /* (C) (KV) (KV); qwen2 */
    nn_matrix wqkv;                         /* (3C, C); gpt2 */
    const float *bqkv;                      /* (3C); gpt2 */
    nn_matrix wo;                           /* (C, C) */
    const float *bo;                        /* (C); gpt2 */
    const float *ffn_norm, *ffn_norm_b;     /* (C), (C) gpt2 */
    nn_matrix w_gate, w_up, w_down;         /* (F, C) llama/qwen2, (F, C), (C, F) */
    const float *b_up, *b_down;             /* (F), (C); gpt2 */
} nn_layer;

struct terse_model {
    gguf_file *g;
    terse_vocab *vocab;
    nn_arch arch;
    char arch_name[16];
    char name[128];
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t head_dim, n_rot;
    float norm_eps, rope_base;
    int rope_neox;                /* 1: rotate halves (qwen2), 0: adjacent pairs (llama) */
    const float *rope_freqs;      /* (n_rot/2) frequency divisors, or NULL */
    nn_matrix tok_embd;           /* (V, C) */
    nn_matrix pos_embd;           /* (n_ctx_train, C); gpt2 */
    nn_matrix output;             /* (V, C); = tok_embd when tied */
    const float *out_norm, *out_norm_b; /* (C), (C) gpt2 */
    nn_layer *layers;             /* (L) */
    float *vectors;               /* every 1-D weight, converted to f32 (one allocation) */
    int64_t n_params;
    int64_t file_bytes;
    int32_t weight_type;
    int64_t max_in;               /* largest `cols` of any matrix (dequantisation scratch) */
};

/* y[r*ldy + j] (j in [0, nrows)) = beta*y + sum_k x[r*ldx + k] * W[row0 + j][k], r in [0, n):
 * the rows [row0, row0+nrows) of W applied to n inputs. Non-F32 weights are dequantised in
 * row blocks into scratch (cap floats) by the pool's threads (pool may be NULL). */
void nn_linear(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
               int64_t nrows, float *y, int64_t ldy, float beta, float *scratch, int64_t cap,
               nn_pool *pool);
/* Naive reference (triple loop, double accumulation) of the same contract, for tests. */
void nn_linear_ref(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
                   int64_t nrows, float *y, int64_t ldy, float beta);
/* Row r of w as f32 into dst (cols values). */
void nn_matrix_row(const nn_matrix *w, int64_t r, float *dst);

struct terse_ctx {
    const terse_model *m;
    int32_t n_ctx, n_batch, n_threads, vocab_chunk;
    int32_t q_block;              /* query rows per attention block */
    int32_t kv_len;
    float *k_cache, *v_cache;     /* (L, N, KV) each; keys stored after rotary */
    /* final hidden states (after the output norm) of the last terse_eval: (n_out, C) */
    float *hidden;
    int32_t n_out, hidden_cap;
    /* per-batch scratch, carved from one allocation */
    float *x;                     /* (n_batch, C) residual stream */
    float *xn;                    /* (n_batch, C) normed input of a sub-layer */
    float *q;                     /* (n_batch, C) queries */
    float *att;                   /* (n_batch, C) attention output */
    float *hb, *hb2;              /* (n_batch, F) feed-forward hidden */
    float *scores;                /* (q_block, N) attention scores */
    float *row_inv;               /* (H, q_block) 1 / softmax sums */
    int32_t *pos_buf;             /* (n_batch) default positions */
    float *rope_cos, *rope_sin;   /* (n_batch, n_rot/2) */
    float *wbuf;                  /* dequantisation scratch, wbuf_cap floats */
    int64_t wbuf_cap;
    float *logit_chunk;           /* (n_batch, vocab_chunk) */
    float *run_max, *run_sum, *pick; /* (n_batch) running log-sum-exp state */
    float *vrow;                  /* (V) one full logit row */
    void *block;                  /* the scratch allocation */
    nn_pool *pool;                /* n_threads threads for the element-wise work */
};

/* Forward pass over n <= n_batch tokens appended at kv_len; writes the final hidden states
 * (after the output norm) to out (n, C). mask: NULL (causal) or rows of mask_stride bytes
 * indexed by cache position. Arguments already validated by the caller. */
int nn_forward_batch(terse_ctx *c, int32_t n, const int32_t *ids, const float *embd,
                     const int32_t *pos, const uint8_t *mask, int64_t mask_stride, float *out);

/* Attention of layer l for the n queries in c->q (T, C) over cache entries [0, P+n) (the
 * batch's own keys/values already stored at [P, P+n)), into c->att (T, C). mask as above.
 * nn_attention_ref: naive reference (double accumulation) writing to out (T, C). */
void nn_attention(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                  int64_t mstride);
void nn_attention_ref(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                      int64_t mstride, float *out);

/* Logits of hidden rows h (n, C) against vocab rows [v0, v1) into out (n, v1-v0). */
void nn_logits_chunk(terse_ctx *c, const float *h, int32_t n, int32_t v0, int32_t v1, float *out);

#endif
