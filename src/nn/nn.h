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
 * D = head_dim (C / H unless key_length says otherwise), Q = H * D, KV = Hkv * D,
 * F = n_ff, V = n_vocab, L = n_layer, N = n_ctx.
 * A matrix weight is GGML-shaped: ne[0] = in (contiguous), ne[1] = out, i.e. row-major
 * (out, in), and a linear layer is y = x W^T (+ b).
 */
#ifndef TERSE_NN_H
#define TERSE_NN_H

#include "base/base.h"
#include "gguf/gguf.h"
#include "nn/pool.h"

typedef enum {
    NN_ARCH_LLAMA, NN_ARCH_QWEN2, NN_ARCH_GPT2, NN_ARCH_PHI2, NN_ARCH_PHI3, NN_ARCH_GEMMA,
    NN_ARCH_GEMMA2, NN_ARCH_QWEN3, NN_ARCH_BERT
} nn_arch;

/* Encoder models (BERT, XLM-RoBERTa token classifiers): encoder.h. They have no nn_arch_desc
 * (m->d is NULL): encoder.c loads and runs them. */
typedef struct nn_encoder nn_encoder;

/* What one architecture's blocks are made of: model.c holds one of these per architecture
 * (nn_arch_descs), and the loader, the forward pass and the random-model writer all read it.
 * The GGUF tensor names of each part are listed in model.c (arch_tensors). */
typedef enum { NN_NORM_RMS, NN_NORM_LAYER } nn_norm;       /* LayerNorm has a bias */
typedef enum { NN_ACT_SWIGLU, NN_ACT_GEGLU, NN_ACT_GELU } nn_act; /* GELU: no gate */
typedef enum { NN_ROPE_NONE, NN_ROPE_NORM, NN_ROPE_NEOX } nn_rope; /* adjacent pairs / halves */
typedef enum { NN_NO, NN_OPTIONAL, NN_YES } nn_has;
typedef enum { NN_QKV_SPLIT, NN_QKV_FUSED, NN_QKV_EITHER } nn_qkv;

typedef struct {
    const char *name;      /* general.architecture */
    nn_arch arch;
    nn_norm norm;
    nn_act act;
    nn_rope rope;
    nn_qkv qkv;            /* attn_q/k/v, or attn_qkv (rows Q, K, V) */
    nn_has qkv_bias, out_bias, ffn_bias; /* attention q/k/v, attn_output, ffn_up/down biases */
    int pos_embd;          /* learned absolute positions (position_embd) */
    int fused_gate_up;     /* ffn_up holds gate then up rows (2F, C) */
    int parallel;          /* attention and MLP both read the one normed input (no ffn_norm) */
    int qk_norm;           /* RMS norms of each query and key head (attn_q_norm, attn_k_norm) */
    int post_norms;        /* norms of the attention and MLP outputs before the residual add */
    int embd_scale;        /* token embeddings times sqrt(n_embd) */
    int output_bias;       /* output.bias */
    int swa_even_layers;   /* the sliding window applies to layers 0, 2, 4, ... only */
    float eps, theta;      /* defaults of the norm epsilon and rope base */
    float attn_softcap, final_softcap, swa; /* defaults (llama.cpp's) when the keys are absent */
} nn_arch_desc;

/* The description of general.architecture `name`, or NULL. */
const nn_arch_desc *nn_arch_find(const char *name, size_t len);
/* The names of every architecture, for messages ("llama, qwen2, ..."). */
const char *nn_arch_names(void);

/* A 2-D weight inside the mapping: rows (out) of cols (in) values of a GGML type. packed: an
 * F32 matrix's rows in the gemm's panel layout (gemm.h, NN_PANEL), made at load, or NULL; when
 * set, the products read it and data's pages are left to the page cache (data stays valid). */
typedef struct {
    uint32_t type;
    const uint8_t *data;
    int64_t rows, cols;
    size_t row_bytes;
    const float *packed;
} nn_matrix;

/* One block. Q = H * D (the query width, = C unless key_length says otherwise). */
typedef struct {
    const float *attn_norm, *attn_norm_b;   /* (C), (C) LayerNorm archs */
    nn_matrix wq, wk, wv;                   /* (Q, C) (KV, C) (KV, C) */
    const float *bq, *bk, *bv;              /* (Q) (KV) (KV); qwen2, phi2 */
    nn_matrix wqkv;                         /* (Q + 2 KV, C): gpt2, phi3 (wq.data NULL then) */
    const float *bqkv;                      /* (Q + 2 KV); gpt2 */
    const float *q_norm, *k_norm;           /* (D), (D); qwen3 */
    nn_matrix wo;                           /* (C, Q) */
    const float *bo;                        /* (C); gpt2, phi2 */
    const float *post_attn_norm;            /* (C); gemma2 */
    const float *ffn_norm, *ffn_norm_b;     /* (C), (C) gpt2 */
    nn_matrix w_gate, w_up, w_down;         /* (F, C), (F, C) or (2F, C) fused, (C, F) */
    const float *b_up, *b_down;             /* (F), (C); gpt2, phi2 */
    const float *post_ffn_norm;             /* (C); gemma2 */
} nn_layer;

struct terse_model {
    gguf_file *g;
    terse_vocab *vocab;
    nn_arch arch;
    const nn_arch_desc *d;
    char arch_name[16];
    char name[128];
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t head_dim, n_rot;
    float norm_eps, rope_base;
    int rope_neox;                /* 1: rotate halves (qwen2), 0: adjacent pairs (llama) */
    const float *rope_freqs;      /* (n_rot/2) frequency divisors, or NULL */
    float rope_freqs_buf[512];    /* rope_freqs when computed from rope.scaling.* keys */
    int32_t n_q;                  /* H * D: width of the queries and the attention output */
    float attn_scale;             /* scores = attn_scale * q.k (1/sqrt(D) by default) */
    float attn_softcap;           /* > 0: scores = cap * tanh(scores / cap) (gemma2) */
    float final_softcap;          /* > 0: the same on the output logits (gemma2) */
    int32_t swa;                  /* > 0: a query sees keys less than swa positions back */
    const float *output_b;        /* (V) output bias, or NULL (phi2) */
    nn_matrix tok_embd;           /* (V, C) */
    nn_matrix pos_embd;           /* (n_ctx_train, C); gpt2 */
    nn_matrix output;             /* (V, C); = tok_embd without output.weight (nn_output_tied) */
    const float *out_norm, *out_norm_b; /* (C), (C) gpt2 */
    nn_layer *layers;             /* (L) */
    float *vectors;               /* every 1-D weight, converted to f32 (one allocation) */
    int64_t n_params;
    int64_t file_bytes;
    int32_t weight_type;
    int64_t max_in;               /* largest `cols` of any matrix (dequantisation scratch) */
    nn_encoder *enc;              /* arch bert: the encoder's own tensors (encoder.h), else NULL */
    float *packed;                /* every packed F32 matrix (nn_matrix.packed), one allocation */
    uint64_t content_hash;        /* FNV-1a of every tensor's bytes (gist_cache.c), computed */
    int content_hash_set;         /* once per loaded model, when first needed */
};

/* FNV-1a (64-bit) of every tensor's bytes in file order: what a gist cache records as its
 * model's identity; computed on first use, then kept in m (gist_cache.c). */
uint64_t nn_model_content_hash(const terse_model *m);

/* One tensor of an architecture's table (model.c), for writers of model files. */
typedef struct {
    char name[64];
    int64_t ne0, ne1;      /* ne1 = 1 for vectors */
    char kind;             /* 'w' matrix, 'n' norm weight, 'b' bias, 'r' rope_freqs */
    int optional;
} nn_tensor_spec;

/* The tensors of m's architecture (m->d) and shape (n_* fields, n_q, head_dim, n_rot; layers
 * allocated), in file order; fused: attn_qkv rather than attn_q/k/v where the arch allows
 * either. *out is malloc'ed. */
int nn_tensor_specs(terse_model *m, int fused, nn_tensor_spec **out, size_t *n);

/* y[r*ldy + j] (j in [0, nrows)) = beta*y + sum_k x[r*ldx + k] * W[row0 + j][k], r in [0, n):
 * the rows [row0, row0+nrows) of W applied to n inputs. Non-F32 weights are dequantised in
 * row blocks into scratch (cap floats) by the pool's threads (pool may be NULL). */
void nn_linear(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
               int64_t nrows, float *y, int64_t ldy, float beta, float *scratch, int64_t cap,
               nn_pool *pool);
/* Several nn_linear over the same x at once (q, k and v; gate and up): one product that packs
 * x once and shares all their work out in one go when every matrix is packed at load and the
 * rows are panel starts (the gemm's nn_gemm_multi); else one nn_linear each. */
typedef struct {
    const nn_matrix *w;
    int64_t row0, nrows;
    float *y;
    int64_t ldy;
    float beta;
} nn_linear_out;
void nn_linear_multi(const float *x, int64_t n, int64_t ldx, const nn_linear_out *outs,
                     int n_outs, float *scratch, int64_t cap, nn_pool *pool);
/* Naive reference (triple loop, double accumulation) of the same contract, for tests. */
void nn_linear_ref(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
                   int64_t nrows, float *y, int64_t ldy, float beta);
/* Row r of w as f32 into dst (cols values). */
void nn_matrix_row(const nn_matrix *w, int64_t r, float *dst);
/* 1 when the output projection is the token embedding: no output.weight (or one at the same
 * data), or a byte-identical copy of token_embd (gpt2 files carry one for llama.cpp's loader),
 * which training treats as one parameter. Proving a copy reads both matrices (a head that
 * differs is told by its first bytes), so it is asked where it matters (nn_grad_new), not at
 * load: inference gives the same numbers either way. */
int nn_output_tied(const terse_model *m);

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
    float *q;                     /* (n_batch, Q) queries */
    float *att;                   /* (n_batch, Q) attention output */
    float *hb, *hb2;              /* (n_batch, F) feed-forward hidden */
    float *scores;                /* (n_threads, q_block, N) attention scores, per thread */
    float *row_inv;               /* (n_threads, q_block) 1 / softmax sums */
    int64_t att_work;             /* floats of wbuf per thread for attention's products */
    int32_t *pos_buf;             /* (n_batch) default positions */
    float *rope_cos, *rope_sin;   /* (n_batch, n_rot/2) */
    float *wbuf;                  /* dequantisation scratch, wbuf_cap floats */
    int64_t wbuf_cap;
    float *logit_chunk;           /* (n_batch, vocab_chunk) */
    float *run_max, *run_sum, *pick; /* (n_batch) running log-sum-exp state */
    float *vrow;                  /* (V) one full logit row */
    void *block;                  /* the scratch allocation */
    nn_pool *pool;                /* n_threads threads for the element-wise work */
    int32_t pos_offset;           /* default positions are kv_len + pos_offset (0; a gist
                                     cache sets it to skip the dropped instruction's) */
};

/* Forward pass over n <= n_batch tokens appended at kv_len; writes the final hidden states
 * (after the output norm) to out (n, C). mask: NULL (causal) or rows of mask_stride bytes
 * indexed by cache position. Arguments already validated by the caller. */
int nn_forward_batch(terse_ctx *c, int32_t n, const int32_t *ids, const float *embd,
                     const int32_t *pos, const uint8_t *mask, int64_t mask_stride, float *out);

/* Attention of layer l for the n queries in c->q (T, Q) over cache entries [0, P+n) (the
 * batch's own keys/values already stored at [P, P+n)), into c->att (T, Q). mask as above;
 * the model's scale, soft-cap and sliding window (of layer l) apply.
 * nn_attention_ref: naive reference (double accumulation) writing to out (T, Q). */
void nn_attention(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                  int64_t mstride);
void nn_attention_ref(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                      int64_t mstride, float *out);

/* Logits of hidden rows h (n, C) against vocab rows [v0, v1) into out (n, v1-v0). */
void nn_logits_chunk(terse_ctx *c, const float *h, int32_t n, int32_t v0, int32_t v1, float *out);

#endif
