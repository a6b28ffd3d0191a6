/* grad_ops.c - forward and backward of every op of the training forward (grad_ops.h), and the
 * losses (grad.h): embedding, RMSNorm, LayerNorm, rotary, attention, linear, SwiGLU, GELU,
 * log-softmax, cross-entropy, KL.
 *
 * Derivations, per row (g = w * dy where a norm has a weight):
 *   RMSNorm   y = w x r,  r = (mean(x^2) + eps)^-1/2:   dx = r g - r^3/C x sum(g x)
 *   LayerNorm xh = (x - mu) r:                          dx = r (g - mean(g) - xh mean(g xh))
 *   rotary    a 2x2 rotation per pair:                  dx = R(-angle) dy
 *   attention P = softmax(S), S = s q k^T:              dS = P (dP - rowsum(dO O)), dP = dO v^T
 *   SwiGLU    h = g sig(g) u:                           dg = dh u sig(g) (1 + g (1 - sig(g)))
 *   GELU      y = x/2 (1 + tanh(a)), a = k (x + c x^3): dx = dy (1/2 (1 + t) + x/2 (1 - t^2) k (1 + 3 c x^2))
 *   log-softmax                                          dx = dy - softmax(x) sum(dy)
 * The forwards reuse the scoring path's kernels (simd.h) so the two compute the same numbers.
 * Attention runs in query blocks of qb rows (with the causal mask a block only computes the
 * columns it can see); the backward recomputes a block's probabilities from the saved
 * log-sum-exp instead of keeping them.
 * Not here: the model's composition of the ops (grad.c), optimisers (src/train).
 */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "nn/grad.h"
#include "nn/grad_ops.h"
#include "nn/quant.h"
#include "nn/simd.h"

/* ---------------------------------------------------------------------------------------- */
/* Embedding                                                                                 */

void nn_embed_forward(float *x, const int32_t *ids, const float *embd, const nn_matrix *tok,
                      const nn_matrix *pos, int64_t T, int64_t C, float *tmp) {
    for (int64_t i = 0; i < T; i++) {
        float *xi = x + i * C;
        if (ids && ids[i] >= 0) nn_matrix_row(tok, ids[i], xi);
        else memcpy(xi, embd + i * C, (size_t)C * sizeof *xi);
        if (pos) {
            nn_matrix_row(pos, i, tmp);
            simd_add(xi, tmp, C);
        }
    }
}

void nn_embed_backward(float *d_embd, float *d_tok, float *d_pos, const float *dx,
                       const int32_t *ids, int64_t T, int64_t C) {
    for (int64_t i = 0; i < T; i++) {
        const float *di = dx + i * C;
        if (d_embd) simd_add(d_embd + i * C, di, C);
        if (d_tok && ids && ids[i] >= 0) simd_add(d_tok + (int64_t)ids[i] * C, di, C);
        if (d_pos) simd_add(d_pos + i * C, di, C);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Norms                                                                                     */

typedef struct {
    float *y, *dx, *mean, *rstd;
    const float *x, *w, *b, *dy;
    const float *cmean, *crstd;
    int64_t C;
    float eps;
} norm_job;

static void rms_fwd_range(void *arg, int64_t i0, int64_t i1) {
    const norm_job *j = arg;
    const int64_t C = j->C;
    for (int64_t i = i0; i < i1; i++) {
        const float *x = j->x + i * C;
        float ss = simd_dot(x, x, C) / (float)C;
        float r = 1.0f / sqrtf(ss + j->eps);
        j->rstd[i] = r;
        simd_rms_apply(j->y + i * C, x, r, j->w, C);
    }
}

void nn_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t C, float eps, nn_pool *pool) {
    norm_job j = {.y = y, .rstd = rstd, .x = x, .w = w, .C = C, .eps = eps};
    nn_pool_run(pool, T, 4, rms_fwd_range, &j);
}

static void rms_bwd_range(void *arg, int64_t i0, int64_t i1) {
    const norm_job *j = arg;
    const int64_t C = j->C;
    for (int64_t i = i0; i < i1; i++) {
        const float *x = j->x + i * C, *dy = j->dy + i * C;
        float *dx = j->dx + i * C;
        const float r = j->crstd[i];
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += (double)(j->w[c] * dy[c]) * x[c];
        const float k = (float)(s / (double)C) * r * r * r;
        for (int64_t c = 0; c < C; c++) dx[c] += r * j->w[c] * dy[c] - k * x[c];
    }
}

void nn_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         const float *rstd, int64_t T, int64_t C, nn_pool *pool) {
    norm_job j = {.dx = dx, .dy = dy, .x = x, .w = w, .crstd = rstd, .C = C};
    if (dx) nn_pool_run(pool, T, 4, rms_bwd_range, &j);
    if (dw)
        for (int64_t i = 0; i < T; i++) {
            const float *xi = x + i * C, *di = dy + i * C;
            const float r = rstd[i];
            for (int64_t c = 0; c < C; c++) dw[c] += di[c] * xi[c] * r;
        }
}

static void ln_fwd_range(void *arg, int64_t i0, int64_t i1) {
    const norm_job *j = arg;
    const int64_t C = j->C;
    for (int64_t i = i0; i < i1; i++) {
        const float *x = j->x + i * C;
        float mu = simd_sum(x, C) / (float)C;
        float var = 0;
        for (int64_t c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        var /= (float)C;
        float r = 1.0f / sqrtf(var + j->eps);
        j->mean[i] = mu;
        j->rstd[i] = r;
        simd_ln_apply(j->y + i * C, x, mu, r, j->w, j->b, C);
    }
}

void nn_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t C, float eps, nn_pool *pool) {
    norm_job j = {.y = y, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .C = C, .eps = eps};
    nn_pool_run(pool, T, 4, ln_fwd_range, &j);
}

static void ln_bwd_range(void *arg, int64_t i0, int64_t i1) {
    const norm_job *j = arg;
    const int64_t C = j->C;
    for (int64_t i = i0; i < i1; i++) {
        const float *x = j->x + i * C, *dy = j->dy + i * C;
        float *dx = j->dx + i * C;
        const float mu = j->cmean[i], r = j->crstd[i];
        double sg = 0, sgx = 0;
        for (int64_t c = 0; c < C; c++) {
            float g = j->w[c] * dy[c];
            sg += g;
            sgx += (double)g * ((x[c] - mu) * r);
        }
        const float mg = (float)(sg / (double)C), mgx = (float)(sgx / (double)C);
        for (int64_t c = 0; c < C; c++)
            dx[c] += r * (j->w[c] * dy[c] - mg - (x[c] - mu) * r * mgx);
    }
}

void nn_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                           const float *w, const float *mean, const float *rstd, int64_t T,
                           int64_t C, nn_pool *pool) {
    norm_job j = {.dx = dx, .dy = dy, .x = x, .w = w, .cmean = mean, .crstd = rstd, .C = C};
    if (dx) nn_pool_run(pool, T, 4, ln_bwd_range, &j);
    for (int64_t i = 0; i < T && (dw || db); i++) {
        const float *xi = x + i * C, *di = dy + i * C;
        const float mu = mean[i], r = rstd[i];
        if (dw)
            for (int64_t c = 0; c < C; c++) dw[c] += di[c] * (xi[c] - mu) * r;
        if (db) simd_add(db, di, C);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Rotary embeddings                                                                         */

void nn_rope_tables(float *cos_t, float *sin_t, int64_t T, int32_t n_rot, float base,
                    const float *freqs) {
    const int32_t half = n_rot / 2;
    for (int32_t k = 0; k < half; k++) { /* inv_freq exactly as forward.c computes it */
        float e = (float)(2 * k) / (float)n_rot;
        float inv = 1.0f / powf(base, e);
        if (freqs) inv /= freqs[k];
        for (int64_t i = 0; i < T; i++) {
            float a = (float)i * inv;
            cos_t[i * half + k] = cosf(a);
            sin_t[i * half + k] = sinf(a);
        }
    }
}

typedef struct {
    float *x;
    int64_t nh, D;
    int32_t n_rot;
    int neox;
    float sign;            /* +1 forward, -1 backward (inverse rotation) */
    const float *cs, *sn;
} rope_job;

static void rope_range(void *arg, int64_t i0, int64_t i1) {
    const rope_job *j = arg;
    const int32_t half = j->n_rot / 2;
    const int64_t step = j->neox ? 1 : 2, off = j->neox ? half : 1;
    for (int64_t i = i0; i < i1; i++) {
        const float *cs = j->cs + i * half, *sn = j->sn + i * half;
        for (int64_t h = 0; h < j->nh; h++) {
            float *v = j->x + (i * j->nh + h) * j->D;
            for (int32_t k = 0; k < half; k++) {
                float *pa = v + k * step, *pb = pa + off;
                float a = *pa, b = *pb, s = j->sign * sn[k];
                *pa = a * cs[k] - b * s;
                *pb = b * cs[k] + a * s;
            }
        }
    }
}

void nn_rope_forward(float *x, int64_t T, int64_t nh, int64_t D, int32_t n_rot, int neox,
                     const float *cos_t, const float *sin_t, nn_pool *pool) {
    rope_job j = {x, nh, D, n_rot, neox, 1.0f, cos_t, sin_t};
    nn_pool_run(pool, T, 8, rope_range, &j);
}

void nn_rope_backward(float *dx, int64_t T, int64_t nh, int64_t D, int32_t n_rot, int neox,
                      const float *cos_t, const float *sin_t, nn_pool *pool) {
    rope_job j = {dx, nh, D, n_rot, neox, -1.0f, cos_t, sin_t};
    nn_pool_run(pool, T, 8, rope_range, &j);
}

/* ---------------------------------------------------------------------------------------- */
/* Attention                                                                                 */

int64_t nn_attention_scratch(int64_t T, int64_t qb) {
    if (qb > T) qb = T;
    return 2 * qb * T + qb;
}

/* The columns rows [i0, i0+nq) need: causal i0+nq, with a mask 1 + the last visible one. */
static int64_t block_cols(const uint8_t *mask, int64_t T, int64_t i0, int64_t nq) {
    if (!mask) return i0 + nq;
    int64_t ncols = 0;
    for (int64_t r = 0; r < nq; r++) {
        const uint8_t *mr = mask + (i0 + r) * T;
        for (int64_t j = T - 1; j >= ncols; j--)
            if (mr[j]) {
                ncols = j + 1;
                break;
            }
    }
    return ncols;
}

typedef struct {
    float *S, *dP;         /* (nq, ncols) */
    float *lse;            /* this head's (T) */
    float *Di;             /* (nq) */
    const float *out, *dout; /* this head's first row, stride HD */
    const uint8_t *mask;   /* NULL or (T, T) */
    int64_t T, i0, ncols, HD, D;
    float scale;
} att_job;

/* Visible length of row i0+r among ncols (causal), masking entries of a custom mask. */
static int64_t visible(const att_job *j, float *row, int64_t r) {
    if (!j->mask) return j->i0 + r + 1;
    const uint8_t *mr = j->mask + (j->i0 + r) * j->T;
    for (int64_t c = 0; c < j->ncols; c++)
        if (!mr[c]) row[c] = -INFINITY;
    return j->ncols;
}

/* forward: S rows -> normalised probabilities, lse saved */
static void att_softmax_range(void *arg, int64_t r0, int64_t r1) {
    const att_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        float *row = j->S + r * j->ncols;
        int64_t len = visible(j, row, r);
        float mx = simd_max(row, len);
        if (mx == -INFINITY) {
            memset(row, 0, (size_t)j->ncols * sizeof *row);
            j->lse[j->i0 + r] = -INFINITY;
            continue;
        }
        float s = simd_exp_inplace(row, len, mx);
        simd_scale(row, 1.0f / s, len);
        if (len < j->ncols) memset(row + len, 0, (size_t)(j->ncols - len) * sizeof *row);
        j->lse[j->i0 + r] = mx + logf(s);
    }
}

/* backward, first half: S rows -> probabilities from lse; Di = dot(dO, O) */
static void att_prob_range(void *arg, int64_t r0, int64_t r1) {
    const att_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        float *row = j->S + r * j->ncols;
        const float l = j->lse[j->i0 + r];
        int64_t len = visible(j, row, r);
        if (l == -INFINITY) {
            memset(row, 0, (size_t)j->ncols * sizeof *row);
        } else {
            simd_exp_inplace(row, len, l);
            if (len < j->ncols) memset(row + len, 0, (size_t)(j->ncols - len) * sizeof *row);
        }
        j->Di[r] = simd_dot(j->dout + r * j->HD, j->out + r * j->HD, j->D);
    }
}

/* backward, second half: dP rows -> dS = scale P (dP - Di) */
static void att_ds_range(void *arg, int64_t r0, int64_t r1) {
    const att_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        const float *p = j->S + r * j->ncols;
        float *d = j->dP + r * j->ncols;
        const float di = j->Di[r];
        for (int64_t c = 0; c < j->ncols; c++) d[c] = j->scale * p[c] * (d[c] - di);
    }
}

void nn_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          const uint8_t *mask, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                          int64_t qb, float *scratch, nn_pool *pool) {
    const int64_t HD = H * D, KVd = Hkv * D, G = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    for (int64_t i0 = 0; i0 < T; i0 += qb) {
        const int64_t nq = T - i0 < qb ? T - i0 : qb;
        const int64_t ncols = block_cols(mask, T, i0, nq);
        if (ncols == 0) {
            memset(out + i0 * HD, 0, (size_t)(nq * HD) * sizeof *out);
            for (int64_t h = 0; h < H; h++)
                for (int64_t r = 0; r < nq; r++) lse[h * T + i0 + r] = -INFINITY;
            continue;
        }
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / G;
            float *S = scratch;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ncols, (int)D,
                        scale, q + i0 * HD + h * D, (int)HD, k + g * D, (int)KVd, 0.0f, S,
                        (int)ncols);
            att_job j = {.S = S, .lse = lse + h * T, .mask = mask, .T = T, .i0 = i0,
                         .ncols = ncols};
            nn_pool_run(pool, nq, 2, att_softmax_range, &j);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)ncols,
                        1.0f, S, (int)ncols, v + g * D, (int)KVd, 0.0f, out + i0 * HD + h * D,
                        (int)HD);
        }
    }
}

void nn_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                           const float *q, const float *k, const float *v, const float *lse,
                           const uint8_t *mask, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                           int64_t qb, float *scratch, nn_pool *pool) {
    const int64_t HD = H * D, KVd = Hkv * D, G = H / Hkv;
    const int64_t rows = T < qb ? T : qb;
    const float scale = 1.0f / sqrtf((float)D);
    float *S = scratch, *dP = scratch + rows * T, *Di = scratch + 2 * rows * T;
    for (int64_t i0 = 0; i0 < T; i0 += qb) {
        const int64_t nq = T - i0 < qb ? T - i0 : qb;
        const int64_t ncols = block_cols(mask, T, i0, nq);
        if (ncols == 0) continue;
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / G;
            const float *qh = q + i0 * HD + h * D, *doh = dout + i0 * HD + h * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ncols, (int)D,
                        scale, qh, (int)HD, k + g * D, (int)KVd, 0.0f, S, (int)ncols);
            att_job j = {.S = S, .dP = dP, .lse = (float *)lse + h * T, .Di = Di,
                         .out = out + i0 * HD + h * D, .dout = doh, .mask = mask, .T = T,
                         .i0 = i0, .ncols = ncols, .HD = HD, .D = D, .scale = scale};
            nn_pool_run(pool, nq, 2, att_prob_range, &j);
            /* dV += P^T dO;  dP = dO V^T */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ncols, (int)D, (int)nq,
                        1.0f, S, (int)ncols, doh, (int)HD, 1.0f, dv + g * D, (int)KVd);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ncols, (int)D,
                        1.0f, doh, (int)HD, v + g * D, (int)KVd, 0.0f, dP, (int)ncols);
            nn_pool_run(pool, nq, 2, att_ds_range, &j);
            /* dQ += dS K;  dK += dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)ncols,
                        1.0f, dP, (int)ncols, k + g * D, (int)KVd, 1.0f, dq + i0 * HD + h * D,
                        (int)HD);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ncols, (int)D, (int)nq,
                        1.0f, dP, (int)ncols, qh, (int)HD, 1.0f, dk + g * D, (int)KVd);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Linear layers                                                                             */

typedef struct {
    float *y;
    const float *b;
    int64_t n;
} bias_job;

static void bias_range(void *arg, int64_t i0, int64_t i1) {
    const bias_job *j = arg;
    for (int64_t i = i0; i < i1; i++) simd_add(j->y + i * j->n, j->b, j->n);
}

void nn_matmul_forward(float *y, const float *x, const nn_matrix *w, int64_t row0,
                       int64_t nrows, const float *b, int64_t T, float *scratch, int64_t cap,
                       nn_pool *pool) {
    nn_linear(x, T, w->cols, w, row0, nrows, y, nrows, 0.0f, scratch, cap, pool);
    if (b) {
        bias_job j = {y, b, nrows};
        nn_pool_run(pool, T, 16, bias_range, &j);
    }
}

typedef struct {
    const nn_matrix *w;
    int64_t row0;
    float *dst;
} dq_job;

static void dq_range(void *arg, int64_t r0, int64_t r1) {
    const dq_job *j = arg;
    for (int64_t r = r0; r < r1; r++) nn_matrix_row(j->w, j->row0 + r, j->dst + r * j->w->cols);
}

void nn_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const nn_matrix *w, int64_t row0, int64_t nrows, int64_t T,
                        float *scratch, int64_t cap, nn_pool *pool) {
    const int64_t NI = w->cols;
    if (dx) {
        if (w->type == GGML_F32) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)NI, (int)nrows,
                        1.0f, dy, (int)nrows, (const float *)(w->data + (size_t)row0 * w->row_bytes),
                        (int)NI, 1.0f, dx, (int)NI);
        } else { /* dequantise a block of rows, multiply, next block */
            int64_t blk = cap / NI;
            if (blk < 1) blk = 1;
            for (int64_t r0 = 0; r0 < nrows; r0 += blk) {
                int64_t nr = nrows - r0 < blk ? nrows - r0 : blk;
                dq_job j = {w, row0 + r0, scratch};
                nn_pool_run(pool, nr, 65536 / NI + 1, dq_range, &j);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)NI, (int)nr,
                            1.0f, dy + r0, (int)nrows, scratch, (int)NI, 1.0f, dx, (int)NI);
            }
        }
    }
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nrows, (int)NI, (int)T, 1.0f,
                    dy, (int)nrows, x, (int)NI, 1.0f, dw, (int)NI);
    if (db)
        for (int64_t i = 0; i < T; i++) simd_add(db, dy + i * nrows, nrows);
}

/* ---------------------------------------------------------------------------------------- */
/* Activations                                                                               */

typedef struct {
    float *out, *d1, *d2;
    const float *a, *b, *dy;
} act_job;

#define ACT_CHUNK 4096 /* values per pool item */

typedef struct {
    act_job j;
    int64_t n;
    int kind;              /* 0 swiglu fwd, 1 swiglu bwd, 2 gelu fwd, 3 gelu bwd */
} chunk_job;

static void chunk_range(void *arg, int64_t c0, int64_t c1) {
    const chunk_job *cj = arg;
    const act_job *j = &cj->j;
    int64_t s = c0 * ACT_CHUNK, e = c1 * ACT_CHUNK < cj->n ? c1 * ACT_CHUNK : cj->n;
    switch (cj->kind) {
    case 0: /* h = silu(g) u, with the scoring path's kernel */
        memcpy(j->out + s, j->a + s, (size_t)(e - s) * sizeof(float));
        simd_swiglu(j->out + s, j->b + s, e - s);
        break;
    case 1:
        for (int64_t i = s; i < e; i++) {
            float g = j->a[i], u = j->b[i], sg = 1.0f / (1.0f + expf(-g));
            j->d1[i] += j->dy[i] * u * sg * (1.0f + g * (1.0f - sg));
            j->d2[i] += j->dy[i] * g * sg;
        }
        break;
    case 2:
        memcpy(j->out + s, j->a + s, (size_t)(e - s) * sizeof(float));
        simd_gelu(j->out + s, e - s);
        break;
    case 3: {
        const float k = 0.7978845608028654f, c = 0.044715f;
        for (int64_t i = s; i < e; i++) {
            float x = j->a[i], t = tanhf(k * (x + c * x * x * x));
            j->d1[i] += j->dy[i] * (0.5f * (1.0f + t) +
                                    0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x));
        }
        break;
    }
    }
}

static void run_chunks(nn_pool *pool, act_job j, int64_t n, int kind) {
    chunk_job cj = {j, n, kind};
    nn_pool_run(pool, (n + ACT_CHUNK - 1) / ACT_CHUNK, 2, chunk_range, &cj);
}

void nn_swiglu_forward(float *h, const float *g, const float *u, int64_t n, nn_pool *pool) {
    run_chunks(pool, (act_job){.out = h, .a = g, .b = u}, n, 0);
}

void nn_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                        int64_t n, nn_pool *pool) {
    run_chunks(pool, (act_job){.d1 = dg, .d2 = du, .dy = dh, .a = g, .b = u}, n, 1);
}

void nn_gelu_forward(float *y, const float *x, int64_t n, nn_pool *pool) {
    run_chunks(pool, (act_job){.out = y, .a = x}, n, 2);
}

void nn_gelu_backward(float *dx, const float *dy, const float *x, int64_t n, nn_pool *pool) {
    run_chunks(pool, (act_job){.d1 = dx, .dy = dy, .a = x}, n, 3);
}

/* ---------------------------------------------------------------------------------------- */
/* Log-softmax and the losses                                                                */

static float row_lse(const float *x, int64_t V) {
    float mx = simd_max(x, V);
    return mx + logf(simd_sum_exp(x, V, mx));
}

void nn_logsoftmax_forward(float *y, const float *x, int64_t T, int64_t V) {
    for (int64_t t = 0; t < T; t++) {
        float l = row_lse(x + t * V, V);
        for (int64_t v = 0; v < V; v++) y[t * V + v] = x[t * V + v] - l;
    }
}

void nn_logsoftmax_backward(float *dx, const float *dy, const float *y, int64_t T, int64_t V) {
    for (int64_t t = 0; t < T; t++) {
        const float *d = dy + t * V, *yr = y + t * V;
        float s = simd_sum(d, V);
        for (int64_t v = 0; v < V; v++) dx[t * V + v] += d[v] - expf(yr[v]) * s;
    }
}

/* The losses run row by row with the SIMD exponential, in chunks of EXP_CHUNK values on the
 * stack where a second array of exponentials is needed; sums are in double. */
#define EXP_CHUNK 512

double nn_loss_ce(const float *logits, const int32_t *targets, int32_t T, int32_t V,
                  float *dlogits) {
    assert(logits && targets && T >= 0 && V > 0);
    int64_t n = 0;
    for (int32_t t = 0; t < T; t++) n += targets[t] >= 0;
    double loss = 0;
    const float inv = n ? 1.0f / (float)n : 0.0f;
    for (int32_t t = 0; t < T; t++) {
        const float *z = logits + (int64_t)t * V;
        float *dz = dlogits ? dlogits + (int64_t)t * V : NULL;
        if (targets[t] < 0) {
            if (dz) memset(dz, 0, (size_t)V * sizeof *dz);
            continue;
        }
        assert(targets[t] < V);
        const float l = row_lse(z, V);
        loss += (double)l - (double)z[targets[t]];
        if (dz) { /* softmax / n - onehot / n */
            memcpy(dz, z, (size_t)V * sizeof *dz);
            simd_exp_inplace(dz, V, l);
            simd_scale(dz, inv, V);
            dz[targets[t]] -= inv;
        }
    }
    return n ? loss / (double)n : 0.0;
}

/* KL of one row; writes sc * dKL/dz into dz when not NULL. */
static double kl_row(const float *z, const float *lp, int32_t V, int reverse, float sc,
                     float *dz) {
    const float l = row_lse(z, V);
    float q[EXP_CHUNK], p[EXP_CHUNK];
    double kl = 0;
    if (!reverse) { /* sum p (log p - log q);  dz = q sum(p) - p */
        const float sp = simd_sum_exp(lp, V, 0.0f);
        for (int32_t v0 = 0; v0 < V; v0 += EXP_CHUNK) {
            const int32_t nc = V - v0 < EXP_CHUNK ? V - v0 : EXP_CHUNK;
            memcpy(p, lp + v0, (size_t)nc * sizeof *p);
            simd_exp_inplace(p, nc, 0.0f);
            for (int32_t k = 0; k < nc; k++)
                if (p[k] > 0) kl += (double)p[k] * ((double)lp[v0 + k] - ((double)z[v0 + k] - l));
            if (dz) {
                memcpy(q, z + v0, (size_t)nc * sizeof *q);
                simd_exp_inplace(q, nc, l);
                for (int32_t k = 0; k < nc; k++) dz[v0 + k] = sc * (q[k] * sp - p[k]);
            }
        }
        return kl;
    }
    /* reverse: sum q (log q - log p);  dz = q (log q - log p - KL) */
    for (int32_t v0 = 0; v0 < V; v0 += EXP_CHUNK) {
        const int32_t nc = V - v0 < EXP_CHUNK ? V - v0 : EXP_CHUNK;
        memcpy(q, z + v0, (size_t)nc * sizeof *q);
        simd_exp_inplace(q, nc, l);
        for (int32_t k = 0; k < nc; k++)
            if (q[k] > 0) kl += (double)q[k] * (((double)z[v0 + k] - l) - (double)lp[v0 + k]);
    }
    if (dz)
        for (int32_t v0 = 0; v0 < V; v0 += EXP_CHUNK) {
            const int32_t nc = V - v0 < EXP_CHUNK ? V - v0 : EXP_CHUNK;
            memcpy(q, z + v0, (size_t)nc * sizeof *q);
            simd_exp_inplace(q, nc, l);
            for (int32_t k = 0; k < nc; k++)
                dz[v0 + k] = q[k] > 0 ? sc * q[k] * (float)(((double)z[v0 + k] - l) -
                                                            (double)lp[v0 + k] - kl)
                                      : 0.0f;
        }
    return kl;
}

double nn_loss_kl(const float *logits, const float *teacher_logp, const float *row_weight,
                  int32_t T, int32_t V, int reverse, float *dlogits) {
    assert(logits && teacher_logp && T >= 0 && V > 0);
    double wsum = 0;
    for (int32_t t = 0; t < T; t++) wsum += row_weight ? row_weight[t] : 1.0;
    double loss = 0;
    for (int32_t t = 0; t < T; t++) {
        const float *z = logits + (int64_t)t * V, *lp = teacher_logp + (int64_t)t * V;
        float *dz = dlogits ? dlogits + (int64_t)t * V : NULL;
        const double w = row_weight ? row_weight[t] : 1.0;
        if (w == 0 || wsum == 0) {
            if (dz) memset(dz, 0, (size_t)V * sizeof *dz);
            continue;
        }
        loss += w * kl_row(z, lp, V, reverse, (float)(w / wsum), dz);
    }
    return wsum != 0 ? loss / wsum : 0.0;
}
