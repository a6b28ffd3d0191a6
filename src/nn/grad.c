/* grad.c - the training engine (grad.h): the model's forward over one sequence keeping its
 * activations in one arena, and its backward, the forward's call list reversed.
 *
 * Forward, per layer l (x = res[l], the residual stream entering the layer):
 *     xn1 = norm1(x)                       (stats kept)
 *     q, k, v = xn1 Wq^T + bq, ...         (gpt2: the rows of Wqkv)
 *     q, k = rope(q), rope(k)              (llama adjacent pairs, qwen2 halves; not gpt2)
 *     att = attention(q, k, v)             (log-sum-exp kept)
 *     mid = x + att Wo^T (+ bo)
 *     xn2 = norm2(mid)
 *     llama/qwen2: ha = xn2 Wgate^T, hb = xn2 Wup^T, hc = silu(ha) hb
 *     gpt2:        ha = xn2 Wup^T + b_up, hc = gelu(ha)
 *     res[l+1] = mid + hc Wdown^T (+ b_down)
 * then hn = out_norm(res[L]) and logits = hn Wout^T.
 * Backward walks the same list from the end with grad_ops.h's X_backward. Without weight
 * gradients the inputs of the matrix products (xn1, xn2, hc, hn) are not needed and share
 * one buffer across layers; q, k, v, the attention output, the norms' inputs and statistics
 * and the activations' inputs are kept per layer.
 *
 * Weights: with weight_grads, every trainable tensor (grad.h) is copied into an F32 master
 * block and the forward reads the masters through the same nn_matrix / vector fields the
 * model uses (a private copy of the layer table); gradients live in a parallel block.
 * With f32_cache the frozen (quantised) matrices are dequantised once into an F32 block the
 * same way, so no pass dequantises.
 * Not here: the ops themselves (grad_ops.c), optimisers (src/train).
 *
 * Shapes: T tokens, TT = max_tokens, C embd, H heads, KV = Hkv * D, F ff, V vocab, L layers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/grad.h"
#include "nn/grad_ops.h"
#include "nn/quant.h"
#include "nn/simd.h"

#define DEFAULT_MAX_TOKENS 512
#define MAX_TOKENS (1 << 16)

/* Gradient pointers of one layer (NULL: absent or frozen). */
typedef struct {
    float *attn_norm, *attn_norm_b, *wq, *wk, *wv, *bq, *bk, *bv, *wqkv, *bqkv, *wo, *bo;
    float *ffn_norm, *ffn_norm_b, *w_gate, *w_up, *w_down, *b_up, *b_down;
} layer_grad;

struct nn_grad {
    const terse_model *m;
    nn_grad_params p;
    int32_t TT, T;               /* capacity; tokens of the last forward (0: none yet) */
    nn_pool *pool;

    /* the weights the forward reads: the model's, or the masters */
    nn_matrix tok_embd, pos_embd, output;
    const float *out_norm, *out_norm_b;
    nn_layer *lay;               /* (L) */

    /* trainable tensors */
    nn_grad_tensor *tensors;
    int n_tensors;
    float *masters, *grads;
    size_t n_master;
    float *cache;                /* f32_cache: frozen matrices as F32 */
    size_t n_cache;
    layer_grad *lg;              /* (L) */
    float *g_tok, *g_pos, *g_out, *g_out_norm, *g_out_norm_b;

    /* activations: per layer arrays are strided by TT rows */
    void *arena;
    size_t arena_bytes;
    float *res;                  /* (L+1, TT, C) */
    float *mid;                  /* (L, TT, C) */
    float *xn1, *xn2;            /* (L or 1, TT, C) */
    float *m1, *r1, *m2, *r2;    /* (L, TT) norm statistics */
    float *q, *k, *v, *att;      /* (L, TT, C) (L, TT, KV) (L, TT, KV) (L, TT, C) */
    float *lse;                  /* (L, H, TT) */
    float *ha, *hb, *hc;         /* (L, TT, F) (L or 0, TT, F) (L or 1, TT, F) */
    float *hn, *mf, *rf;         /* (TT, C) (TT) (TT) */
    float *logits;               /* (TT, V) */
    float *rope_cos, *rope_sin;  /* (TT, n_rot/2) */
    /* backward scratch */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dha, *dhb, *dhc;
    float *att_scratch, *tmp;
    nn_grad_ws ws;               /* the products' buffers (work, tbuf, wbuf) and the pool */
    int32_t *ids;                /* (TT) copy; -1 for embd rows */
    uint8_t *mask;               /* (TT, TT) copy */
    int has_mask;
    int tied;                    /* nn_output_tied: output.weight is token_embd (or a copy) */
};

/* ---------------------------------------------------------------------------------------- */
/* Trainable tensors and masters                                                             */

typedef struct {
    nn_grad *g;
    int pass;                    /* 0: count, 1: assign */
    size_t off;                  /* floats assigned so far */
    int n;
} tensor_walk;

/* A matrix: trainable when F32/F16/BF16. *grad gets its gradient or NULL. */
static void walk_matrix(tensor_walk *w, const char *name, nn_matrix *mat, float **grad,
                        int decay) {
    *grad = NULL;
    if (!mat->data || !(mat->type == GGML_F32 || mat->type == GGML_F16 || mat->type == GGML_BF16))
        return;
    const int64_t n = mat->rows * mat->cols;
    if (w->pass == 1) {
        float *dst = w->g->masters + w->off;
        for (int64_t r = 0; r < mat->rows; r++) nn_matrix_row(mat, r, dst + r * mat->cols);
        nn_grad_tensor *t = &w->g->tensors[w->n];
        *t = (nn_grad_tensor){NULL, dst, w->g->grads + w->off, n, mat->rows, mat->cols, decay};
        t->name = strdup(name);
        *grad = t->g;
        *mat = (nn_matrix){GGML_F32, (const uint8_t *)dst, mat->rows, mat->cols,
                           (size_t)mat->cols * sizeof(float), NULL};
    }
    w->off += (size_t)n;
    w->n++;
}

static void walk_vector(tensor_walk *w, const char *name, const float **vec, int64_t n,
                        float **grad) {
    *grad = NULL;
    if (!*vec) return;
    if (w->pass == 1) {
        float *dst = w->g->masters + w->off;
        memcpy(dst, *vec, (size_t)n * sizeof *dst);
        nn_grad_tensor *t = &w->g->tensors[w->n];
        *t = (nn_grad_tensor){NULL, dst, w->g->grads + w->off, n, 1, n, 0};
        t->name = strdup(name);
        *grad = t->g;
        *vec = dst;
    }
    w->off += (size_t)n;
    w->n++;
}

static void walk_all(tensor_walk *w) {
    nn_grad *g = w->g;
    const terse_model *m = g->m;
    const int64_t C = m->n_embd, F = m->n_ff, KV = (int64_t)m->n_head_kv * m->head_dim;
    const int tied = g->tied;
    char nm[96];
    walk_matrix(w, "token_embd.weight", &g->tok_embd, &g->g_tok, 0);
    if (m->arch == NN_ARCH_GPT2) walk_matrix(w, "position_embd.weight", &g->pos_embd, &g->g_pos, 0);
    walk_vector(w, "output_norm.weight", &g->out_norm, C, &g->g_out_norm);
    walk_vector(w, "output_norm.bias", &g->out_norm_b, C, &g->g_out_norm_b);
    if (tied) {
        g->output = g->tok_embd;
        g->g_out = g->g_tok;
    } else {
        walk_matrix(w, "output.weight", &g->output, &g->g_out, 1);
    }
    for (int l = 0; l < m->n_layer; l++) {
        nn_layer *y = &g->lay[l];
        layer_grad *d = &g->lg[l];
#define MATRIX(field, gguf) (snprintf(nm, sizeof nm, "blk.%d." gguf, l), walk_matrix(w, nm, &y->field, &d->field, 1))
#define VECTOR(field, gguf, n) (snprintf(nm, sizeof nm, "blk.%d." gguf, l), walk_vector(w, nm, &y->field, n, &d->field))
        VECTOR(attn_norm, "attn_norm.weight", C);
        VECTOR(attn_norm_b, "attn_norm.bias", C);
        MATRIX(wq, "attn_q.weight");
        MATRIX(wk, "attn_k.weight");
        MATRIX(wv, "attn_v.weight");
        VECTOR(bq, "attn_q.bias", C);
        VECTOR(bk, "attn_k.bias", KV);
        VECTOR(bv, "attn_v.bias", KV);
        MATRIX(wqkv, "attn_qkv.weight");
        VECTOR(bqkv, "attn_qkv.bias", 3 * C);
        MATRIX(wo, "attn_output.weight");
        VECTOR(bo, "attn_output.bias", C);
        VECTOR(ffn_norm, "ffn_norm.weight", C);
        VECTOR(ffn_norm_b, "ffn_norm.bias", C);
        MATRIX(w_gate, "ffn_gate.weight");
        MATRIX(w_up, "ffn_up.weight");
        MATRIX(w_down, "ffn_down.weight");
        VECTOR(b_up, "ffn_up.bias", F);
        VECTOR(b_down, "ffn_down.bias", C);
#undef MATRIX
#undef VECTOR
    }
}

static int make_masters(nn_grad *g) {
    tensor_walk w = {g, 0, 0, 0};
    /* pass 0 on scratch copies: only counts */
    nn_matrix te = g->tok_embd, pe = g->pos_embd, out = g->output;
    const float *on = g->out_norm, *onb = g->out_norm_b;
    walk_all(&w);
    g->tok_embd = te, g->pos_embd = pe, g->output = out, g->out_norm = on, g->out_norm_b = onb;
    if (w.n == 0) return TERSE_OK; /* everything quantised: nothing trains */
    size_t bytes;
    if (!size_mul(w.off, sizeof(float), &bytes))
        return terse_err(TERSE_ERR_NOMEM, "nn_grad_new: master weights size overflows");
    g->masters = terse_malloc(bytes, "master weights");
    g->grads = g->masters ? terse_calloc(w.off, sizeof(float), "weight gradients") : NULL;
    g->tensors = g->grads ? terse_calloc((size_t)w.n, sizeof *g->tensors, "tensor table") : NULL;
    if (!g->tensors) return TERSE_ERR_NOMEM;
    g->n_master = w.off;
    tensor_walk w1 = {g, 1, 0, 0};
    walk_all(&w1);
    g->n_tensors = w1.n;
    for (int i = 0; i < g->n_tensors; i++)
        if (!g->tensors[i].name) return terse_err(TERSE_ERR_NOMEM, "nn_grad_new: tensor names");
    return TERSE_OK;
}

/* f32_cache: every matrix of the view still not F32 (frozen) gets an F32 copy. */
static int make_cache(nn_grad *g) {
    const terse_model *m = g->m;
    const int tied = g->tied;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        for (int k = -3; k < 8 * m->n_layer; k++) {
            nn_layer *y = k >= 0 ? &g->lay[k / 8] : NULL;
            nn_matrix *x = k == -3 ? &g->tok_embd : k == -2 ? &g->pos_embd
                         : k == -1 ? (tied ? NULL : &g->output)
                         : (nn_matrix *[]){&y->wq, &y->wk, &y->wv, &y->wqkv, &y->wo, &y->w_gate,
                                           &y->w_up, &y->w_down}[k % 8];
            if (!x || !x->data || x->type == GGML_F32) continue;
            if (pass == 1) {
                float *dst = g->cache + off;
                for (int64_t r = 0; r < x->rows; r++) nn_matrix_row(x, r, dst + r * x->cols);
                *x = (nn_matrix){GGML_F32, (const uint8_t *)dst, x->rows, x->cols,
                                 (size_t)x->cols * sizeof(float), NULL};
            }
            off += (size_t)(x->rows * x->cols);
        }
        if (pass == 0) {
            if (off == 0) return TERSE_OK;
            size_t bytes;
            if (!size_mul(off, sizeof(float), &bytes) ||
                !(g->cache = terse_malloc(bytes, "F32 weight cache")))
                return TERSE_ERR_NOMEM;
            g->n_cache = off;
        }
    }
    if (tied) g->output = g->tok_embd;
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Creation                                                                                  */

typedef struct {
    float **dst;
    size_t n;                    /* floats */
} piece;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

int nn_grad_new(const terse_model *m, nn_grad_params p, nn_grad **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "nn_grad_new: out is NULL");
    *out = NULL;
    if (!m) return terse_err(TERSE_ERR_INVALID, "nn_grad_new: model is NULL");
    if (m->arch != NN_ARCH_LLAMA && m->arch != NN_ARCH_QWEN2 && m->arch != NN_ARCH_GPT2)
        return terse_err(TERSE_ERR_UNSUPPORTED, "nn_grad_new: architecture '%s' has no backward "
                         "(llama, qwen2, gpt2 have)", m->arch_name);
    /* the attention variants the forward pass knows but this backward does not */
    if (m->swa > 0 || m->attn_softcap > 0 || m->final_softcap > 0 || m->output_b ||
        m->n_q != m->n_embd || fabsf(m->attn_scale * sqrtf((float)m->head_dim) - 1.0f) > 1e-6f)
        return terse_err(TERSE_ERR_UNSUPPORTED, "nn_grad_new: this %s model has a sliding window, "
                         "soft-caps, an output bias, a head_dim other than embedding/heads or its "
                         "own attention scale, which the backward does not handle", m->arch_name);
    if (p.max_tokens < 0 || p.n_threads < 0 || p.n_threads > 1024 || p.weight_grads < 0 ||
        p.weight_grads > 1 || p.f32_cache < 0 || p.f32_cache > 1)
        return terse_err(TERSE_ERR_INVALID, "nn_grad_new: max_tokens %d, weight_grads %d, "
                         "n_threads %d, f32_cache %d (expected >= 0, 0/1, 0..1024, 0/1)",
                         p.max_tokens, p.weight_grads, p.n_threads, p.f32_cache);
    int32_t TT = p.max_tokens ? p.max_tokens
                              : (m->n_ctx_train < DEFAULT_MAX_TOKENS ? m->n_ctx_train : DEFAULT_MAX_TOKENS);
    if (TT > MAX_TOKENS)
        return terse_err(TERSE_ERR_RANGE, "nn_grad_new: max_tokens %d above %d", TT, MAX_TOKENS);
    if (m->arch == NN_ARCH_GPT2 && TT > m->n_ctx_train)
        return terse_err(TERSE_ERR_RANGE, "nn_grad_new: max_tokens %d exceeds the %d positions of "
                         "this gpt2 model", TT, m->n_ctx_train);
    nn_grad *g = terse_calloc(1, sizeof *g, "nn_grad");
    if (!g) return TERSE_ERR_NOMEM;
    g->m = m;
    g->p = p;
    g->TT = TT;
    g->tied = nn_output_tied(m);
    g->tok_embd = m->tok_embd, g->pos_embd = m->pos_embd, g->output = m->output;
    g->out_norm = m->out_norm, g->out_norm_b = m->out_norm_b;
    g->lay = terse_calloc((size_t)m->n_layer, sizeof *g->lay, "layer table");
    g->lg = g->lay ? terse_calloc((size_t)m->n_layer, sizeof *g->lg, "layer gradients") : NULL;
    int rc = g->lg ? TERSE_OK : TERSE_ERR_NOMEM;
    if (rc) goto fail;
    memcpy(g->lay, m->layers, (size_t)m->n_layer * sizeof *g->lay);
    if (p.weight_grads && (rc = make_masters(g))) goto fail;
    if (p.f32_cache && (rc = make_cache(g))) goto fail;

    /* the arena */
    const size_t T = (size_t)TT, C = (size_t)m->n_embd, F = (size_t)m->n_ff, V = (size_t)m->n_vocab;
    const size_t L = (size_t)m->n_layer, H = (size_t)m->n_head;
    const size_t KV = (size_t)m->n_head_kv * (size_t)m->head_dim, half = (size_t)m->n_rot / 2;
    const size_t LW = p.weight_grads ? L : 1, gpt2 = m->arch == NN_ARCH_GPT2;
    const int n_threads = p.n_threads ? p.n_threads : terse_default_threads();
    int64_t work_cap, tbuf_cap, wbuf_cap;
    nn_grad_ws_sizes(n_threads, TT, m->max_in, NN_ATT_BLOCK, &work_cap, &tbuf_cap, &wbuf_cap);
    g->ws.work_cap = work_cap, g->ws.tbuf_cap = tbuf_cap, g->ws.wbuf_cap = wbuf_cap;
    /* sizes are counted in double first: a shape that cannot fit is refused, not wrapped */
    double need = ((double)(L + 1) + L + 2.0 * LW + 2.0 * L + 1 + 4) * T * (double)C +
                  (2.0 * L + 2) * T * (double)KV + (L + (gpt2 ? 0 : L) + LW + 3.0) * T * (double)F +
                  (double)T * (double)V + (double)L * H * T + 8.0 * L * T;
    if (need * sizeof(float) > (double)SIZE_MAX / 2)
        return nn_grad_free(g), terse_err(TERSE_ERR_NOMEM, "nn_grad_new: activations for %d "
                                          "tokens overflow", TT);
    piece pieces[] = {
        {&g->res, (L + 1) * T * C}, {&g->mid, L * T * C}, {&g->xn1, LW * T * C},
        {&g->xn2, LW * T * C}, {&g->m1, L * T}, {&g->r1, L * T}, {&g->m2, L * T},
        {&g->r2, L * T}, {&g->q, L * T * C}, {&g->k, L * T * KV}, {&g->v, L * T * KV},
        {&g->att, L * T * C}, {&g->lse, L * H * T}, {&g->ha, L * T * F},
        {&g->hb, gpt2 ? 0 : L * T * F}, {&g->hc, LW * T * F}, {&g->hn, T * C}, {&g->mf, T},
        {&g->rf, T}, {&g->logits, T * V}, {&g->rope_cos, T * half}, {&g->rope_sin, T * half},
        {&g->dx, T * C}, {&g->dxn, T * C}, {&g->dq, T * C}, {&g->dk, T * KV}, {&g->dv, T * KV},
        {&g->datt, T * C}, {&g->dha, T * F}, {&g->dhb, gpt2 ? 0 : T * F}, {&g->dhc, T * F},
        {&g->att_scratch, (size_t)nn_attention_scratch(TT, NN_ATT_BLOCK)},
        {&g->ws.work, (size_t)work_cap}, {&g->ws.tbuf, (size_t)tbuf_cap},
        {&g->ws.wbuf, (size_t)wbuf_cap}, {&g->tmp, C},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) total += round16(pieces[i].n);
    g->arena_bytes = total * sizeof(float) + 64 + T * sizeof(int32_t) + T * T;
    g->arena = terse_malloc(g->arena_bytes, "activation arena");
    if (!g->arena) {
        rc = TERSE_ERR_NOMEM;
        goto fail;
    }
    float *f = (float *)(((uintptr_t)g->arena + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        *pieces[i].dst = f;
        f += round16(pieces[i].n);
    }
    g->ids = (int32_t *)f;
    g->mask = (uint8_t *)(g->ids + T);
    if (m->n_rot) nn_rope_tables(g->rope_cos, g->rope_sin, TT, m->n_rot, m->rope_base, m->rope_freqs);
    if ((rc = nn_pool_new(n_threads, &g->pool))) goto fail;
    g->ws.pool = g->pool;
    *out = g;
    return TERSE_OK;
fail:
    nn_grad_free(g);
    return rc;
}

void nn_grad_free(nn_grad *g) {
    if (!g) return;
    for (int i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    free(g->masters);
    free(g->grads);
    free(g->cache);
    free(g->lay);
    free(g->lg);
    free(g->arena);
    nn_pool_free(g->pool);
    free(g);
}

nn_grad_tensor *nn_grad_tensors(nn_grad *g, int *n) {
    if (n) *n = g ? g->n_tensors : 0;
    return g && g->n_tensors ? g->tensors : NULL;
}

nn_grad_tensor *nn_grad_find(nn_grad *g, const char *name) {
    for (int i = 0; g && name && i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

void nn_grad_zero(nn_grad *g) {
    if (g && g->grads) memset(g->grads, 0, g->n_master * sizeof *g->grads);
}

size_t nn_grad_bytes(const nn_grad *g) {
    return g ? g->arena_bytes + (2 * g->n_master + g->n_cache) * sizeof(float) : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                   */

static void norm_fwd(nn_grad *g, float *y, float *mean, float *rstd, const float *x,
                     const float *w, const float *b, int32_t T) {
    const terse_model *m = g->m;
    if (m->arch == NN_ARCH_GPT2)
        nn_layernorm_forward(y, mean, rstd, x, w, b, T, m->n_embd, m->norm_eps, g->pool);
    else
        nn_rmsnorm_forward(y, rstd, x, w, T, m->n_embd, m->norm_eps, g->pool);
}

static void norm_bwd(nn_grad *g, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const float *mean, const float *rstd,
                     int32_t T) {
    const terse_model *m = g->m;
    if (m->arch == NN_ARCH_GPT2)
        nn_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, T, m->n_embd, g->pool);
    else
        nn_rmsnorm_backward(dx, dw, dy, x, w, rstd, T, m->n_embd, g->pool);
}

static void matmul_fwd(nn_grad *g, float *y, const float *x, const nn_matrix *w, int64_t row0,
                       int64_t nrows, const float *b, int32_t T) {
    nn_matmul_forward(y, x, w, row0, nrows, b, T, &g->ws);
}

static void matmul_bwd(nn_grad *g, float *dx, float *dw, float *db, const float *dy,
                       const float *x, const nn_matrix *w, int64_t row0, int64_t nrows,
                       int32_t T) {
    nn_matmul_backward(dx, dw, db, dy, x, w, row0, nrows, T, &g->ws);
}

/* y (T, C) = x + a W^T (+ b): a residual branch added */
static void residual_fwd(nn_grad *g, float *y, const float *x, const float *a,
                         const nn_matrix *w, const float *b, int32_t T) {
    const int64_t C = g->m->n_embd;
    memcpy(y, x, (size_t)T * C * sizeof *y);
    nn_linear(a, T, w->cols, w, 0, C, y, C, 1.0f, g->ws.work, g->ws.work_cap, g->pool);
    if (b)
        for (int32_t i = 0; i < T; i++) simd_add(y + i * C, b, C);
}

int nn_grad_forward(nn_grad *g, const int32_t *ids, const float *embd, int32_t T,
                    const uint8_t *mask, const float **logits) {
    if (!g) return terse_err(TERSE_ERR_INVALID, "nn_grad_forward: nn_grad is NULL");
    const terse_model *m = g->m;
    if (T < 1 || T > g->TT)
        return terse_err(TERSE_ERR_RANGE, "nn_grad_forward: %d tokens outside [1, max_tokens %d]",
                         T, g->TT);
    for (int32_t i = 0; i < T; i++) {
        int32_t id = ids ? ids[i] : -1;
        if (id >= m->n_vocab)
            return terse_err(TERSE_ERR_INVALID, "nn_grad_forward: token id %d at %d outside "
                             "[0, %d)", id, i, m->n_vocab);
        if (id < 0 && !embd)
            return terse_err(TERSE_ERR_INVALID, "nn_grad_forward: row %d needs an embedding "
                             "(ids %s) but embd is NULL", i, ids ? "< 0" : "NULL");
    }
    /* valid: from here on the last forward's state is replaced */
    for (int32_t i = 0; i < T; i++) g->ids[i] = ids && ids[i] >= 0 ? ids[i] : -1;
    g->has_mask = mask != NULL;
    if (mask)
        for (int32_t i = 0; i < T; i++) memcpy(g->mask + (size_t)i * T, mask + (size_t)i * T, (size_t)T);
    const uint8_t *mk = mask ? g->mask : NULL;
    const int64_t C = m->n_embd, F = m->n_ff, H = m->n_head, Hkv = m->n_head_kv;
    const int64_t D = m->head_dim, KV = Hkv * D, TT = g->TT;
    const int gpt2 = m->arch == NN_ARCH_GPT2, wg = g->p.weight_grads;

    nn_embed_forward(g->res, g->ids, embd, &g->tok_embd, gpt2 ? &g->pos_embd : NULL, T, C, g->tmp);
    for (int l = 0; l < m->n_layer; l++) {
        const nn_layer *y = &g->lay[l];
        float *x = g->res + l * TT * C, *mid = g->mid + l * TT * C;
        float *xn1 = g->xn1 + (wg ? l : 0) * TT * C, *xn2 = g->xn2 + (wg ? l : 0) * TT * C;
        float *q = g->q + l * TT * C, *k = g->k + l * TT * KV, *v = g->v + l * TT * KV;
        float *att = g->att + l * TT * C, *lse = g->lse + l * H * TT;
        float *ha = g->ha + l * TT * F, *hc = g->hc + (wg ? l : 0) * TT * F;

        norm_fwd(g, xn1, g->m1 + l * TT, g->r1 + l * TT, x, y->attn_norm, y->attn_norm_b, T);
        if (gpt2) {
            matmul_fwd(g, q, xn1, &y->wqkv, 0, C, y->bqkv, T);
            matmul_fwd(g, k, xn1, &y->wqkv, C, C, y->bqkv + C, T);
            matmul_fwd(g, v, xn1, &y->wqkv, 2 * C, C, y->bqkv + 2 * C, T);
        } else {
            matmul_fwd(g, q, xn1, &y->wq, 0, C, y->bq, T);
            matmul_fwd(g, k, xn1, &y->wk, 0, KV, y->bk, T);
            matmul_fwd(g, v, xn1, &y->wv, 0, KV, y->bv, T);
            nn_rope_forward(q, T, H, D, m->n_rot, m->rope_neox, g->rope_cos, g->rope_sin, g->pool);
            nn_rope_forward(k, T, Hkv, D, m->n_rot, m->rope_neox, g->rope_cos, g->rope_sin, g->pool);
        }
        /* attention reads the mask with row stride T: compact copy above */
        nn_attention_forward(att, lse, q, k, v, mk, T, H, Hkv, D, NN_ATT_BLOCK, g->att_scratch, &g->ws);
        residual_fwd(g, mid, x, att, &y->wo, y->bo, T);

        norm_fwd(g, xn2, g->m2 + l * TT, g->r2 + l * TT, mid, y->ffn_norm, y->ffn_norm_b, T);
        if (gpt2) {
            matmul_fwd(g, ha, xn2, &y->w_up, 0, F, y->b_up, T);
            nn_gelu_forward(hc, ha, T * F, g->pool);
        } else {
            float *hb = g->hb + l * TT * F;
            matmul_fwd(g, ha, xn2, &y->w_gate, 0, F, NULL, T);
            matmul_fwd(g, hb, xn2, &y->w_up, 0, F, NULL, T);
            nn_swiglu_forward(hc, ha, hb, T * F, g->pool);
        }
        residual_fwd(g, g->res + (l + 1) * TT * C, mid, hc, &y->w_down, y->b_down, T);
    }
    norm_fwd(g, g->hn, g->mf, g->rf, g->res + m->n_layer * TT * C, g->out_norm, g->out_norm_b, T);
    matmul_fwd(g, g->logits, g->hn, &g->output, 0, m->n_vocab, NULL, T);
    g->T = T;
    if (logits) *logits = g->logits;
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward                                                                                  */

int nn_grad_backward(nn_grad *g, const float *dlogits, float *d_embd) {
    if (!g || !dlogits)
        return terse_err(TERSE_ERR_INVALID, "nn_grad_backward: NULL argument");
    if (g->T == 0) return terse_err(TERSE_ERR_INVALID, "nn_grad_backward: no forward yet");
    const terse_model *m = g->m;
    const int32_t T = g->T;
    const int64_t C = m->n_embd, F = m->n_ff, H = m->n_head, Hkv = m->n_head_kv;
    const int64_t D = m->head_dim, KV = Hkv * D, TT = g->TT;
    const int gpt2 = m->arch == NN_ARCH_GPT2, wg = g->p.weight_grads;
    const uint8_t *mk = g->has_mask ? g->mask : NULL;
    const size_t TC = (size_t)T * C * sizeof(float), TKV = (size_t)T * KV * sizeof(float);
    const size_t TF = (size_t)T * F * sizeof(float);
    float *dx = g->dx, *dxn = g->dxn;

    /* head and output norm */
    memset(dxn, 0, TC);
    matmul_bwd(g, dxn, g->g_out, NULL, dlogits, g->hn, &g->output, 0, m->n_vocab, T);
    memset(dx, 0, TC);
    norm_bwd(g, dx, g->g_out_norm, g->g_out_norm_b, dxn, g->res + m->n_layer * TT * C,
             g->out_norm, g->mf, g->rf, T);

    for (int l = m->n_layer - 1; l >= 0; l--) {
        const nn_layer *y = &g->lay[l];
        const layer_grad *d = &g->lg[l];
        float *x = g->res + l * TT * C, *mid = g->mid + l * TT * C;
        float *xn1 = g->xn1 + (wg ? l : 0) * TT * C, *xn2 = g->xn2 + (wg ? l : 0) * TT * C;
        float *q = g->q + l * TT * C, *k = g->k + l * TT * KV, *v = g->v + l * TT * KV;
        float *att = g->att + l * TT * C, *lse = g->lse + l * H * TT;
        float *ha = g->ha + l * TT * F, *hc = g->hc + (wg ? l : 0) * TT * F;

        /* feed-forward block: dx is d res[l+1], and becomes d mid */
        memset(g->dhc, 0, TF);
        matmul_bwd(g, g->dhc, d->w_down, d->b_down, dx, hc, &y->w_down, 0, C, T);
        memset(g->dha, 0, TF);
        memset(dxn, 0, TC);
        if (gpt2) {
            nn_gelu_backward(g->dha, g->dhc, ha, T * F, g->pool);
            matmul_bwd(g, dxn, d->w_up, d->b_up, g->dha, xn2, &y->w_up, 0, F, T);
        } else {
            float *hb = g->hb + l * TT * F;
            memset(g->dhb, 0, TF);
            nn_swiglu_backward(g->dha, g->dhb, g->dhc, ha, hb, T * F, g->pool);
            matmul_bwd(g, dxn, d->w_gate, NULL, g->dha, xn2, &y->w_gate, 0, F, T);
            matmul_bwd(g, dxn, d->w_up, NULL, g->dhb, xn2, &y->w_up, 0, F, T);
        }
        norm_bwd(g, dx, d->ffn_norm, d->ffn_norm_b, dxn, mid, y->ffn_norm, g->m2 + l * TT,
                 g->r2 + l * TT, T);

        /* attention block: dx is d mid, and becomes d res[l] */
        memset(g->datt, 0, TC);
        matmul_bwd(g, g->datt, d->wo, d->bo, dx, att, &y->wo, 0, C, T);
        memset(g->dq, 0, TC);
        memset(g->dk, 0, TKV);
        memset(g->dv, 0, TKV);
        nn_attention_backward(g->dq, g->dk, g->dv, g->datt, att, q, k, v, lse, mk, T, H, Hkv, D,
                              NN_ATT_BLOCK, g->att_scratch, &g->ws);
        memset(dxn, 0, TC);
        if (gpt2) {
            float *dW = d->wqkv, *db = d->bqkv;
            matmul_bwd(g, dxn, dW, db, g->dq, xn1, &y->wqkv, 0, C, T);
            matmul_bwd(g, dxn, dW ? dW + C * C : NULL, db ? db + C : NULL, g->dk, xn1, &y->wqkv,
                       C, C, T);
            matmul_bwd(g, dxn, dW ? dW + 2 * C * C : NULL, db ? db + 2 * C : NULL, g->dv, xn1,
                       &y->wqkv, 2 * C, C, T);
        } else {
            nn_rope_backward(g->dq, T, H, D, m->n_rot, m->rope_neox, g->rope_cos, g->rope_sin, g->pool);
            nn_rope_backward(g->dk, T, Hkv, D, m->n_rot, m->rope_neox, g->rope_cos, g->rope_sin, g->pool);
            matmul_bwd(g, dxn, d->wq, d->bq, g->dq, xn1, &y->wq, 0, C, T);
            matmul_bwd(g, dxn, d->wk, d->bk, g->dk, xn1, &y->wk, 0, KV, T);
            matmul_bwd(g, dxn, d->wv, d->bv, g->dv, xn1, &y->wv, 0, KV, T);
        }
        norm_bwd(g, dx, d->attn_norm, d->attn_norm_b, dxn, x, y->attn_norm, g->m1 + l * TT,
                 g->r1 + l * TT, T);
    }
    if (d_embd) memset(d_embd, 0, TC);
    nn_embed_backward(d_embd, g->g_tok, gpt2 ? g->g_pos : NULL, dx, g->ids, T, C);
    return TERSE_OK;
}
