/* forward.c - contexts and the forward pass: KV cache, embeddings, norms, rotary embeddings,
 * attention, feed-forward, over a batch of tokens appended to the cache.
 *
 * Every large product goes to the runtime's own sgemm (gemm.c; the system OpenBLAS runs SSE3
 * kernels on this CPU, docs/architecture.md): the linear layers over the whole batch
 * (linear.c) and attention, head by head, in blocks of query rows so the scores stay
 * (q_block x cached):
 *     S = scale * Q_h K_g^T     (nn_sgemm, keys straight from the cache)
 *     P = softmax(S) with the causal or caller-supplied mask (pool threads over rows)
 *     O_h = P V_g / rowsum      (nn_sgemm, then one scaling pass)
 * One query row (decoding) uses OpenBLAS's sgemv instead: sgemm would copy K and V first.
 * With the causal mask only the columns a block can see are computed. Everything else (norms,
 * rotary, activations, softmax) runs on the context's thread pool (pool.h: workers that sleep
 * between jobs, so the BLAS threads get the cores back), never around an sgemm call.
 *
 * Numerics follow Hugging Face: RMSNorm y = w * (x / sqrt(mean(x^2) + eps)); LayerNorm with the
 * biased variance; rotary angle = float(pos) * inv_freq in f32 with
 * inv_freq = 1 / base^(2j/n_rot) / rope_freqs[j]; GELU tanh approximation; attention scale
 * 1/sqrt(D) unless the model says otherwise; soft-capping cap * tanh(s / cap) on the scaled
 * scores; a sliding window of W lets query i see cache entries j with i - j < W.
 * The architecture's description (nn.h, model.c) says which parts a block has: norm kind,
 * fused or split projections, per-head q/k norms, parallel attention + MLP, post norms,
 * gated or plain activation.
 * Not here: the output projection and scoring (output.c), sampling (generate.c).
 *
 * Shapes: T tokens in the batch, C embd, H heads, Hkv kv heads, D head dim, KV = Hkv*D,
 * F ff, N = n_ctx (cache), L layers, QB = q_block.
 */
#include <cblas.h>

#include "nn/gemm.h"
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/nn.h"
#include "nn/pool.h"
#include "nn/quant.h"
#include "nn/simd.h"

/* ---------------------------------------------------------------------------------------- */
/* Context                                                                                   */

#define DEFAULT_N_BATCH 512
#define DEFAULT_VOCAB_CHUNK 4096
#define DEFAULT_Q_BLOCK 256
#define MAX_DEFAULT_CTX 8192
#define WBUF_FLOATS (1 << 20) /* dequantisation block: 4 MB */

terse_ctx_params terse_ctx_default_params(void) {
    terse_ctx_params p = {.n_ctx = 0, .n_batch = 0, .n_threads = 0, .vocab_chunk = 0};
    return p;
}

/* One allocation for all scratch: sizes in floats, each piece 64-byte aligned. */
typedef struct {
    float **dst;
    size_t n;
} piece;

#define MAX_THREADS 1024

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

int terse_ctx_new(const terse_model *m, terse_ctx_params p, terse_ctx **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_ctx_new: out is NULL");
    *out = NULL;
    if (!m) return terse_err(TERSE_ERR_INVALID, "terse_ctx_new: model is NULL");
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0 || p.vocab_chunk < 0)
        return terse_err(TERSE_ERR_INVALID, "terse_ctx_new: negative parameter (n_ctx %d, "
                         "n_batch %d, n_threads %d, vocab_chunk %d)", p.n_ctx, p.n_batch,
                         p.n_threads, p.vocab_chunk);
    if (p.n_threads > MAX_THREADS) /* each is a pthread with its own stack */
        return terse_err(TERSE_ERR_INVALID, "terse_ctx_new: n_threads %d above %d", p.n_threads,
                         MAX_THREADS);
    int32_t n_ctx = p.n_ctx ? p.n_ctx
                            : (m->n_ctx_train < MAX_DEFAULT_CTX ? m->n_ctx_train : MAX_DEFAULT_CTX);
    if (m->enc) n_ctx = 16; /* an encoder runs through nn_encoder_probs, with its own scratch */
    if (m->d && m->d->pos_embd && n_ctx > m->n_ctx_train)
        return terse_err(TERSE_ERR_RANGE, "terse_ctx_new: n_ctx %d exceeds the %d positions of "
                         "this %s model", n_ctx, m->n_ctx_train, m->arch_name);
    if (n_ctx > (1 << 24))
        return terse_err(TERSE_ERR_RANGE, "terse_ctx_new: n_ctx %d too large (max %d)", n_ctx,
                         1 << 24);
    terse_ctx *c = terse_calloc(1, sizeof *c, "context");
    if (!c) return TERSE_ERR_NOMEM;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = p.n_batch ? p.n_batch : DEFAULT_N_BATCH;
    if (c->n_batch > n_ctx) c->n_batch = n_ctx;
    c->n_threads = p.n_threads ? p.n_threads : terse_default_threads();
    c->vocab_chunk = p.vocab_chunk ? p.vocab_chunk : DEFAULT_VOCAB_CHUNK;
    if (c->vocab_chunk > m->n_vocab) c->vocab_chunk = m->n_vocab;
    /* query rows per attention item: up to 256, fewer so that the threads' score blocks
     * together stay within about the batch's own (n_batch, N) */
    c->q_block = c->n_batch < DEFAULT_Q_BLOCK ? c->n_batch : DEFAULT_Q_BLOCK;
    while (c->q_block > 16 && (int64_t)c->q_block * c->n_threads > (int64_t)c->n_batch)
        c->q_block /= 2;

    size_t B = (size_t)c->n_batch, C = (size_t)m->n_embd, F = (size_t)m->n_ff, Q = (size_t)m->n_q;
    size_t KV = (size_t)m->n_head_kv * (size_t)m->head_dim, N = (size_t)n_ctx;
    size_t cache = 0;
    if (!size_mul((size_t)m->n_layer * N, KV * sizeof(float), &cache)) {
        free(c);
        return terse_err(TERSE_ERR_NOMEM, "terse_ctx_new: KV cache size overflows");
    }
    c->k_cache = nn_alloc_big(cache, "KV cache (keys)");
    c->v_cache = c->k_cache ? nn_alloc_big(cache, "KV cache (values)") : NULL;
    float *pos_as_float = NULL;
    c->wbuf_cap = WBUF_FLOATS;
    if ((int64_t)c->wbuf_cap < m->max_in) c->wbuf_cap = m->max_in;
    int64_t gw = nn_gemm_workspace(c->n_threads, c->n_batch, m->max_in > n_ctx ? m->max_in : n_ctx);
    if ((int64_t)c->wbuf_cap < gw) c->wbuf_cap = gw;
    /* each thread's packing buffers for its attention items (products of depth D and N) */
    c->att_work = nn_gemm_workspace(1, c->q_block, n_ctx > m->head_dim ? n_ctx : m->head_dim);
    if ((int64_t)c->wbuf_cap < c->att_work * c->n_threads) c->wbuf_cap = c->att_work * c->n_threads;
    piece pieces[] = {
        {&c->x, B * C}, {&c->xn, B * C}, {&c->q, B * Q}, {&c->att, B * Q},
        {&c->hb, B * F}, {&c->hb2, m->d && m->d->act == NN_ACT_GELU ? 0 : B * F},
        {&c->scores, (size_t)c->n_threads * c->q_block * N},
        {&c->row_inv, (size_t)c->n_threads * c->q_block},
        {&c->rope_cos, B * (size_t)(m->n_rot / 2)}, {&c->rope_sin, B * (size_t)(m->n_rot / 2)},
        {&c->wbuf, (size_t)c->wbuf_cap}, {&c->logit_chunk, B * (size_t)c->vocab_chunk},
        {&c->run_max, B}, {&c->run_sum, B}, {&c->pick, B}, {&c->vrow, (size_t)m->n_vocab},
        {&pos_as_float, B},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) total += round16(pieces[i].n);
    if (c->v_cache) c->block = nn_alloc_big(total * sizeof(float) + 64, "context scratch");
    if (!c->block) {
        terse_ctx_free(c);
        return TERSE_ERR_NOMEM;
    }
    float *f = (float *)(((uintptr_t)c->block + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        *pieces[i].dst = f;
        f += round16(pieces[i].n);
    }
    c->pos_buf = (int32_t *)pos_as_float;
    nn_blas_begin(c->n_threads); /* OpenBLAS's threads follow from now on (blas_threads.c) */
    nn_blas_end();
    int rc = nn_pool_new(c->n_threads, &c->pool);
    if (rc) {
        terse_ctx_free(c);
        return rc;
    }
    *out = c;
    return TERSE_OK;
}

void terse_ctx_free(terse_ctx *c) {
    if (!c) return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->hidden);
    free(c->block);
    nn_pool_free(c->pool);
    free(c);
}

int32_t terse_kv_len(const terse_ctx *c) { return c ? c->kv_len : 0; }
const terse_model *terse_ctx_model(const terse_ctx *c) { return c ? c->m : NULL; }
int32_t terse_ctx_n_ctx(const terse_ctx *c) { return c ? c->n_ctx : 0; }

int terse_kv_truncate(terse_ctx *c, int32_t n) {
    if (!c) return terse_err(TERSE_ERR_INVALID, "terse_kv_truncate: context is NULL");
    if (n < 0 || n > c->kv_len)
        return terse_err(TERSE_ERR_RANGE, "terse_kv_truncate: %d outside [0, kv_len %d]", n,
                         c->kv_len);
    c->kv_len = n;
    c->n_out = 0;
    return TERSE_OK;
}

int terse_kv_remove(terse_ctx *c, int32_t begin, int32_t end) {
    if (!c) return terse_err(TERSE_ERR_INVALID, "terse_kv_remove: context is NULL");
    if (begin < 0 || end < begin || end > c->kv_len)
        return terse_err(TERSE_ERR_RANGE, "terse_kv_remove: [%d, %d) outside [0, kv_len %d]",
                         begin, end, c->kv_len);
    const size_t KVd = (size_t)c->m->n_head_kv * c->m->head_dim;
    const size_t tail = (size_t)(c->kv_len - end) * KVd * sizeof(float);
    for (int l = 0; l < c->m->n_layer; l++) {
        float *k = c->k_cache + (size_t)l * c->n_ctx * KVd, *v = c->v_cache + (size_t)l * c->n_ctx * KVd;
        memmove(k + begin * KVd, k + end * KVd, tail);
        memmove(v + begin * KVd, v + end * KVd, tail);
    }
    c->kv_len -= end - begin;
    c->n_out = 0;
    return TERSE_OK;
}

void terse_kv_clear(terse_ctx *c) {
    if (!c) return;
    c->kv_len = 0;
    c->n_out = 0;
    c->pos_offset = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Norms, rotary embeddings                                                                  */

static void rms_norm(float *y, const float *x, const float *w, int64_t C, float eps) {
    float ss = simd_dot(x, x, C) / (float)C;
    simd_rms_apply(y, x, 1.0f / sqrtf(ss + eps), w, C);
}

static void layer_norm(float *y, const float *x, const float *w, const float *b, int64_t C,
                       float eps) {
    float mean = simd_sum(x, C) / (float)C;
    float var = 0;
    for (int64_t j = 0; j < C; j++) var += (x[j] - mean) * (x[j] - mean);
    var /= (float)C;
    simd_ln_apply(y, x, mean, 1.0f / sqrtf(var + eps), w, b, C);
}

typedef struct {
    const terse_model *m;
    float *y;
    const float *x, *w, *b;
} norm_job;

static void norm_range(void *arg, int64_t i0, int64_t i1) {
    const norm_job *j = arg;
    const int64_t C = j->m->n_embd;
    for (int64_t i = i0; i < i1; i++) {
        if (j->m->d->norm == NN_NORM_LAYER) layer_norm(j->y + i * C, j->x + i * C, j->w, j->b, C, j->m->norm_eps);
        else rms_norm(j->y + i * C, j->x + i * C, j->w, C, j->m->norm_eps);
    }
}

static void norm_rows(terse_ctx *c, float *y, const float *x, int32_t n, const float *w,
                      const float *b) {
    norm_job j = {c->m, y, x, w, b};
    nn_pool_run(c->pool, n, 4, norm_range, &j);
}

/* cos/sin tables (T, n_rot/2) for the batch's positions */
typedef struct {
    terse_ctx *c;
    const int32_t *pos;
    float inv[512];
} rope_job;

static void rope_range(void *arg, int64_t i0, int64_t i1) {
    const rope_job *j = arg;
    const int32_t half = j->c->m->n_rot / 2;
    for (int64_t i = i0; i < i1; i++)
        for (int32_t k = 0; k < half; k++) {
            float a = (float)j->pos[i] * j->inv[k];
            j->c->rope_cos[(size_t)i * half + k] = cosf(a);
            j->c->rope_sin[(size_t)i * half + k] = sinf(a);
        }
}

static void rope_tables(terse_ctx *c, const int32_t *pos, int32_t n) {
    const terse_model *m = c->m;
    rope_job j = {.c = c, .pos = pos};
    for (int32_t k = 0; k < m->n_rot / 2 && k < 512; k++) {
        float e = (float)(2 * k) / (float)m->n_rot;
        j.inv[k] = 1.0f / powf(m->rope_base, e);
        if (m->rope_freqs) j.inv[k] /= m->rope_freqs[k];
    }
    nn_pool_run(c->pool, n, 16, rope_range, &j);
}

/* Rotate the first n_rot dims of each of nh heads of one row (D-sized heads). */
static void rope_row(const terse_model *m, float *x, int32_t nh, const float *cs, const float *sn) {
    const int32_t D = m->head_dim, half = m->n_rot / 2;
    for (int32_t h = 0; h < nh; h++) {
        float *v = x + (size_t)h * D;
        if (m->rope_neox) {
            for (int32_t j = 0; j < half; j++) {
                float a = v[j], b = v[j + half];
                v[j] = a * cs[j] - b * sn[j];
                v[j + half] = b * cs[j] + a * sn[j];
            }
        } else {
            for (int32_t j = 0; j < half; j++) {
                float a = v[2 * j], b = v[2 * j + 1];
                v[2 * j] = a * cs[j] - b * sn[j];
                v[2 * j + 1] = b * cs[j] + a * sn[j];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Attention                                                                                 */

/* Softmax of one score row in place; returns 1/sum (0 if every entry is masked).
 * Causal: entries [0, len) visible, the rest of [0, ncols) zeroed. Mask: mrow[j] != 0.
 * Entries before lo (sliding window) are masked too; cap > 0 soft-caps the scores first. */
static float softmax_row(float *row, int64_t ncols, int64_t len, const uint8_t *mrow, int64_t lo,
                         float cap) {
    if (mrow) len = ncols;
    if (cap > 0.0f)
        for (int64_t j = 0; j < len; j++) row[j] = cap * tanhf(row[j] / cap);
    if (mrow)
        for (int64_t j = 0; j < ncols; j++)
            if (!mrow[j]) row[j] = -INFINITY;
    for (int64_t j = 0; j < lo && j < len; j++) row[j] = -INFINITY;
    float mx = simd_max(row, len);
    if (mx == -INFINITY) {
        memset(row, 0, (size_t)ncols * sizeof *row);
        return 0.0f;
    }
    float s = simd_exp_inplace(row, len, mx);
    if (len < ncols) memset(row + len, 0, (size_t)(ncols - len) * sizeof *row);
    return 1.0f / s;
}

typedef struct {
    float *S;              /* (nq, ncols) */
    int64_t ncols, P;      /* P: cache position of the block's first query */
    const uint8_t *mask;   /* the block's first mask row, or NULL */
    int64_t mstride;
    float *inv;            /* (nq) */
    int64_t window;        /* > 0: sliding window */
    float cap;             /* > 0: soft-cap */
} softmax_job;

static void softmax_range(void *arg, int64_t r0, int64_t r1) {
    const softmax_job *j = arg;
    for (int64_t r = r0; r < r1; r++)
        j->inv[r] = softmax_row(j->S + r * j->ncols, j->ncols, j->P + r + 1,
                                j->mask ? j->mask + r * j->mstride : NULL,
                                j->window > 0 ? j->P + r + 1 - j->window : 0, j->cap);
}

/* The sliding window of layer l, 0 for none. */
static int64_t layer_window(const terse_model *m, int l) {
    if (m->swa <= 0 || (m->d->swa_even_layers && l % 2)) return 0;
    return m->swa;
}

/* Columns a query block [i0, i0+nq) computes: the causal prefix, or with a mask up to the last
 * column any of its rows may see. */
static int64_t block_cols(const uint8_t *mask, int64_t mstride, int64_t P, int64_t n, int64_t i0,
                          int64_t nq) {
    if (!mask) return P + i0 + nq;
    int64_t ncols = 0;
    for (int64_t r = 0; r < nq; r++) {
        const uint8_t *mr = mask + (i0 + r) * mstride;
        for (int64_t j = P + n - 1; j >= ncols; j--)
            if (mr[j]) {
                ncols = j + 1;
                break;
            }
    }
    return ncols;
}

/* A batch's attention as (query block, head) items, each done whole by one thread with its
 * own scores and packing buffers: no barrier between the products and the softmax. */
typedef struct {
    terse_ctx *c;
    int l;
    int64_t n, P, mstride, window, nblocks;
    const uint8_t *mask;
    atomic_int_fast64_t next;   /* next item to take */
} att_job;

static void att_item(att_job *j, int64_t item, int t) {
    terse_ctx *c = j->c;
    const terse_model *m = c->m;
    const int64_t C = m->n_q, D = m->head_dim, H = m->n_head, KVd = (int64_t)m->n_head_kv * D;
    const int64_t QB = c->q_block, b = j->nblocks - 1 - item / H, h = item % H, g = h / (H / m->n_head_kv);
    const int64_t i0 = b * QB, nq = j->n - i0 < QB ? j->n - i0 : QB;
    const int64_t ncols = block_cols(j->mask, j->mstride, j->P, j->n, i0, nq);
    float *out = c->att + i0 * C + h * D;
    if (ncols == 0) {
        for (int64_t r = 0; r < nq; r++) memset(out + r * C, 0, (size_t)D * sizeof(float));
        return;
    }
    const float *K = c->k_cache + (size_t)j->l * c->n_ctx * KVd; /* (N, KV) */
    const float *V = c->v_cache + (size_t)j->l * c->n_ctx * KVd;
    float *S = c->scores + (size_t)t * QB * c->n_ctx; /* (nq, ncols) */
    float *inv = c->row_inv + (size_t)t * QB;
    float *work = c->wbuf + (size_t)t * c->att_work;
    nn_sgemm(1, nq, ncols, D, m->attn_scale, c->q + i0 * C + h * D, C, K + g * D, KVd, 0.0f, S,
             ncols, NULL, work, c->att_work);
    softmax_job sj = {S, ncols, j->P + i0, j->mask ? j->mask + i0 * j->mstride : NULL, j->mstride,
                      inv, j->window, m->attn_softcap};
    softmax_range(&sj, 0, nq);
    nn_sgemm(0, nq, D, ncols, 1.0f, S, ncols, V + g * D, KVd, 0.0f, out, C, NULL, work,
             c->att_work);
    for (int64_t r = 0; r < nq; r++) simd_scale(out + r * C, inv[r], D);
}

static void att_range(void *arg, int64_t t0, int64_t t1) {
    att_job *j = arg;
    const int64_t items = j->nblocks * j->c->m->n_head;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t it; (it = atomic_fetch_add(&j->next, 1)) < items;) att_item(j, it, (int)t);
}

/* att (T, Q) = attention of the batch's queries q (T, Q) over cache entries of layer l.
 * P = cache length before this batch; the batch's keys/values are at [P, P+n). */
void nn_attention(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                  int64_t mstride) {
    const terse_model *m = c->m;
    const int64_t C = m->n_q, D = m->head_dim, H = m->n_head, KVd = (int64_t)m->n_head_kv * D;
    const int64_t G = H / m->n_head_kv;
    if (n > 1) { /* (block, head) items over the pool, the last (longest) blocks first */
        att_job j = {c, l, n, P, mstride, layer_window(m, l), (n + c->q_block - 1) / c->q_block,
                     mask, 0};
        nn_pool_run(c->pool, c->n_threads, 1, att_range, &j);
        return;
    }
    /* one query (decoding): sgemv per head, sgemm would copy K and V first */
    const float *K = c->k_cache + (size_t)l * c->n_ctx * KVd; /* (N, KV) */
    const float *V = c->v_cache + (size_t)l * c->n_ctx * KVd; /* (N, KV) */
    const int64_t ncols = block_cols(mask, mstride, P, n, 0, 1);
    if (ncols == 0) {
        memset(c->att, 0, (size_t)C * sizeof(float));
        return;
    }
    for (int64_t h = 0; h < H; h++) {
        const int64_t g = h / G;
        float *S = c->scores;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)ncols, (int)D, m->attn_scale, K + g * D,
                    (int)KVd, c->q + h * D, 1, 0.0f, S, 1);
        softmax_job sj = {S, ncols, P, mask, mstride, c->row_inv, layer_window(m, l),
                          m->attn_softcap};
        softmax_range(&sj, 0, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)ncols, (int)D, 1.0f, V + g * D, (int)KVd,
                    S, 1, 0.0f, c->att + h * D, 1);
        simd_scale(c->att + h * D, c->row_inv[0], D);
    }
}

/* Naive reference attention for one layer (tests): same inputs and outputs, no blocking. */
void nn_attention_ref(terse_ctx *c, int l, int32_t n, int32_t P, const uint8_t *mask,
                      int64_t mstride, float *out) {
    const terse_model *m = c->m;
    const int64_t C = m->n_q, D = m->head_dim, H = m->n_head, KVd = (int64_t)m->n_head_kv * D;
    const int64_t G = H / m->n_head_kv, W = layer_window(m, l);
    const double cap = m->attn_softcap;
    const float *K = c->k_cache + (size_t)l * c->n_ctx * KVd;
    const float *V = c->v_cache + (size_t)l * c->n_ctx * KVd;
    double *p = malloc((size_t)(P + n) * sizeof *p);
    if (!p) return;
    for (int64_t i = 0; i < n; i++)
        for (int64_t h = 0; h < H; h++) {
            const float *qi = c->q + i * C + h * D;
            double mx = -INFINITY, s = 0;
            for (int64_t j = 0; j < P + n; j++) {
                int vis = mask ? mask[i * mstride + j] != 0 : j <= P + i;
                if (W > 0 && P + i - j >= W) vis = 0;
                double d = 0;
                for (int64_t k = 0; k < D; k++) d += (double)qi[k] * K[j * KVd + (h / G) * D + k];
                d *= m->attn_scale;
                if (cap > 0) d = cap * tanh(d / cap);
                p[j] = vis ? d : -INFINITY;
                if (p[j] > mx) mx = p[j];
            }
            for (int64_t j = 0; j < P + n; j++) s += p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
            for (int64_t k = 0; k < D; k++) {
                double o = 0;
                for (int64_t j = 0; j < P + n; j++) o += p[j] * V[j * KVd + (h / G) * D + k];
                out[i * C + h * D + k] = s > 0 ? (float)(o / s) : 0.0f;
            }
        }
    free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* One batch through the layers                                                              */

static void linear(terse_ctx *c, const float *x, int32_t n, int64_t ldx, const nn_matrix *w,
                   int64_t row0, int64_t nrows, float *y, int64_t ldy, float beta) {
    nn_linear(x, n, ldx, w, row0, nrows, y, ldy, beta, c->wbuf, c->wbuf_cap, c->pool);
}

/* The element-wise steps of a layer, one job type for all: `step` says which. */
typedef enum { STEP_EMBED, STEP_QKV, STEP_BIAS, STEP_GELU, STEP_SWIGLU, STEP_GEGLU, STEP_ADD } step_kind;

typedef struct {
    step_kind step;
    terse_ctx *c;
    const nn_layer *y;
    const int32_t *ids, *pos;
    const float *embd;
    float *kc, *vc;        /* the batch's rows of the cache */
    float *dst;            /* STEP_BIAS: rows of C to add `bias` to */
    const float *bias, *bias2;
} step_job;

static void step_range(void *arg, int64_t i0, int64_t i1) {
    const step_job *j = arg;
    terse_ctx *c = j->c;
    const terse_model *m = c->m;
    const nn_layer *y = j->y;
    const int64_t C = m->n_embd, F = m->n_ff, KVd = (int64_t)m->n_head_kv * m->head_dim;
    const int64_t Q = m->n_q, D = m->head_dim;
    const int32_t half = m->n_rot / 2;
    for (int64_t i = i0; i < i1; i++) {
        switch (j->step) {
        case STEP_EMBED: /* x = token (or given) embedding (+ position embedding) */
            if (j->ids) nn_matrix_row(&m->tok_embd, j->ids[i], c->x + i * C);
            else memcpy(c->x + i * C, j->embd + i * C, (size_t)C * sizeof(float));
            if (m->d->embd_scale) simd_scale(c->x + i * C, sqrtf((float)C), C); /* gemma */
            if (m->d->pos_embd) {
                nn_matrix_row(&m->pos_embd, j->pos[i], c->xn + i * C);
                simd_add(c->x + i * C, c->xn + i * C, C);
            }
            break;
        case STEP_QKV: /* biases, per-head q/k norms, then rotary on q and k */
            if (y->bqkv) {
                simd_add(c->q + i * Q, y->bqkv, Q);
                simd_add(j->kc + i * KVd, y->bqkv + Q, KVd);
                simd_add(j->vc + i * KVd, y->bqkv + Q + KVd, KVd);
            }
            if (y->bq) simd_add(c->q + i * Q, y->bq, Q);
            if (y->bk) simd_add(j->kc + i * KVd, y->bk, KVd);
            if (y->bv) simd_add(j->vc + i * KVd, y->bv, KVd);
            if (y->q_norm) {
                for (int64_t h = 0; h < m->n_head; h++)
                    rms_norm(c->q + i * Q + h * D, c->q + i * Q + h * D, y->q_norm, D, m->norm_eps);
                for (int64_t h = 0; h < m->n_head_kv; h++)
                    rms_norm(j->kc + i * KVd + h * D, j->kc + i * KVd + h * D, y->k_norm, D,
                             m->norm_eps);
            }
            if (half == 0) break;
            rope_row(m, c->q + i * Q, m->n_head, c->rope_cos + i * half, c->rope_sin + i * half);
            rope_row(m, j->kc + i * KVd, m->n_head_kv, c->rope_cos + i * half, c->rope_sin + i * half);
            break;
        case STEP_BIAS:
            simd_add(j->dst + i * C, j->bias, C);
            break;
        case STEP_GELU: /* hb = gelu(hb + b_up) */
            if (y->b_up) simd_add(c->hb + i * F, y->b_up, F);
            simd_gelu(c->hb + i * F, F);
            break;
        case STEP_SWIGLU: /* hb = silu(hb) * hb2 */
            simd_swiglu(c->hb + i * F, c->hb2 + i * F, F);
            break;
        case STEP_GEGLU: { /* hb = gelu(hb) * hb2 */
            float *g = c->hb + i * F, *u = c->hb2 + i * F;
            simd_gelu(g, F);
            for (int64_t k = 0; k < F; k++) g[k] *= u[k];
            break;
        }
        case STEP_ADD: /* x += norm(xn) (post norms; the norm is done in place first) */
            rms_norm(c->xn + i * C, c->xn + i * C, j->bias, C, m->norm_eps);
            simd_add(c->x + i * C, c->xn + i * C, C);
            break;
        }
    }
}

static void step(terse_ctx *c, step_job j, int32_t n) {
    j.c = c;
    nn_pool_run(c->pool, n, 4, step_range, &j);
}

int nn_forward_batch(terse_ctx *c, int32_t n, const int32_t *ids, const float *embd,
                     const int32_t *pos, const uint8_t *mask, int64_t mask_stride, float *out) {
    const terse_model *m = c->m;
    const nn_arch_desc *d = m->d;
    const int64_t C = m->n_embd, F = m->n_ff, Q = m->n_q;
    const int64_t KVd = (int64_t)m->n_head_kv * m->head_dim;
    const int32_t P = c->kv_len;
    float *x = c->x, *xn = c->xn;

    nn_blas_begin(c->n_threads); /* OpenBLAS works with the context's threads (blas_threads.c) */
    step(c, (step_job){.step = STEP_EMBED, .ids = ids, .embd = embd, .pos = pos}, n); /* x (T, C) */
    if (m->n_rot) rope_tables(c, pos, n);

    for (int l = 0; l < m->n_layer; l++) {
        const nn_layer *y = &m->layers[l];
        float *kc = c->k_cache + ((size_t)l * c->n_ctx + P) * KVd; /* (T, KV) rows of the cache */
        float *vc = c->v_cache + ((size_t)l * c->n_ctx + P) * KVd;

        /* attention block: q, k, v straight into the cache, x += attention Wo^T (+ bo) */
        norm_rows(c, xn, x, n, y->attn_norm, y->attn_norm_b);
        const int fused = y->wqkv.data != NULL;
        const nn_linear_out qkv[3] = {{fused ? &y->wqkv : &y->wq, 0, Q, c->q, Q, 0.0f},
                                      {fused ? &y->wqkv : &y->wk, fused ? Q : 0, KVd, kc, KVd, 0.0f},
                                      {fused ? &y->wqkv : &y->wv, fused ? Q + KVd : 0, KVd, vc, KVd, 0.0f}};
        nn_linear_multi(xn, n, C, qkv, 3, c->wbuf, c->wbuf_cap, c->pool);
        step(c, (step_job){.step = STEP_QKV, .y = y, .kc = kc, .vc = vc}, n);
        nn_attention(c, l, n, P, mask, mask_stride);
        if (d->post_norms) { /* x += norm(att Wo^T); xn is free until the next norm */
            linear(c, c->att, n, Q, &y->wo, 0, C, xn, C, 0.0f);
            step(c, (step_job){.step = STEP_ADD, .bias = y->post_attn_norm}, n);
        } else {
            linear(c, c->att, n, Q, &y->wo, 0, C, x, C, 1.0f);
        }
        if (y->bo) step(c, (step_job){.step = STEP_BIAS, .dst = x, .bias = y->bo}, n);

        /* feed-forward block: x += down(act(up(norm(x)))); parallel archs reuse the attention
         * block's normed input (still in xn) */
        if (!d->parallel) norm_rows(c, xn, x, n, y->ffn_norm, y->ffn_norm_b);
        if (d->act == NN_ACT_GELU) {
            linear(c, xn, n, C, &y->w_up, 0, F, c->hb, F, 0.0f);
            step(c, (step_job){.step = STEP_GELU, .y = y}, n);
        } else {
            const nn_linear_out gate_up[2] = {
                {d->fused_gate_up ? &y->w_up : &y->w_gate, 0, F, c->hb, F, 0.0f},
                {&y->w_up, d->fused_gate_up ? F : 0, F, c->hb2, F, 0.0f}};
            nn_linear_multi(xn, n, C, gate_up, 2, c->wbuf, c->wbuf_cap, c->pool);
            step(c, (step_job){.step = d->act == NN_ACT_GEGLU ? STEP_GEGLU : STEP_SWIGLU, .y = y}, n);
        }
        if (d->post_norms) {
            linear(c, c->hb, n, F, &y->w_down, 0, C, xn, C, 0.0f);
            step(c, (step_job){.step = STEP_ADD, .bias = y->post_ffn_norm}, n);
        } else {
            linear(c, c->hb, n, F, &y->w_down, 0, C, x, C, 1.0f);
        }
        if (y->b_down) step(c, (step_job){.step = STEP_BIAS, .dst = x, .bias = y->b_down}, n);
    }
    norm_rows(c, out, x, n, m->out_norm, m->out_norm_b);
    c->kv_len += n;
    nn_blas_end();
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* terse_eval: validation, positions, splitting into batches                                 */

static int check_batch(const terse_ctx *c, const terse_batch *b) {
    const terse_model *m = c->m;
    if (b->n < 1) return terse_err(TERSE_ERR_INVALID, "terse_eval: batch of %d tokens", b->n);
    if ((b->ids == NULL) == (b->embd == NULL))
        return terse_err(TERSE_ERR_INVALID, "terse_eval: give exactly one of ids and embd");
    if ((int64_t)c->kv_len + b->n > c->n_ctx)
        return terse_err(TERSE_ERR_RANGE, "terse_eval: %d cached + %d new tokens exceed n_ctx %d",
                         c->kv_len, b->n, c->n_ctx);
    if (b->ids)
        for (int32_t i = 0; i < b->n; i++)
            if (b->ids[i] < 0 || b->ids[i] >= m->n_vocab)
                return terse_err(TERSE_ERR_INVALID, "terse_eval: token id %d at %d outside "
                                 "[0, %d)", b->ids[i], i, m->n_vocab);
    if (b->pos) {
        int32_t hi = m->d->pos_embd ? m->n_ctx_train : (1 << 24);
        for (int32_t i = 0; i < b->n; i++)
            if (b->pos[i] < 0 || b->pos[i] >= hi)
                return terse_err(TERSE_ERR_RANGE, "terse_eval: position %d at %d outside [0, %d)",
                                 b->pos[i], i, hi);
    } else if (m->d->pos_embd && (int64_t)c->kv_len + c->pos_offset + b->n > m->n_ctx_train) {
        return terse_err(TERSE_ERR_RANGE, "terse_eval: positions up to %d exceed the %d of this "
                         "%s model", c->kv_len + c->pos_offset + b->n - 1, m->n_ctx_train,
                         m->arch_name);
    }
    return TERSE_OK;
}

int terse_eval(terse_ctx *c, const terse_batch *b) {
    if (!c || !b) return terse_err(TERSE_ERR_INVALID, "terse_eval: NULL argument");
    if (c->m->enc)
        return terse_err(TERSE_ERR_UNSUPPORTED, "terse_eval: this model is an encoder (token "
                         "classifier), not a causal language model");
    int rc = check_batch(c, b);
    if (rc) return rc;
    const int64_t C = c->m->n_embd;
    const int32_t n = b->n, P0 = c->kv_len;
    const int64_t mstride = (int64_t)P0 + n;
    if (b->mask && n > c->n_batch) {
        /* splitting is only sound if no row sees a token of a later sub-batch */
        for (int32_t s0 = 0; s0 < n; s0 += c->n_batch) {
            int32_t s1 = n - s0 < c->n_batch ? n : s0 + c->n_batch;
            for (int32_t i = s0; i < s1; i++)
                for (int64_t j = P0 + s1; j < mstride; j++)
                    if (b->mask[i * mstride + j])
                        return terse_err(TERSE_ERR_INVALID, "terse_eval: the mask lets token %d "
                                         "see later token %lld across a batch of %d > n_batch %d",
                                         i, (long long)(j - P0), n, c->n_batch);
        }
    }
    if (n > c->hidden_cap) {
        float *h = terse_reallocarray(c->hidden, (size_t)n, (size_t)C * sizeof(float),
                                      "hidden states");
        if (!h) return TERSE_ERR_NOMEM;
        c->hidden = h;
        c->hidden_cap = n;
    }
    c->n_out = 0;
    for (int32_t s0 = 0; s0 < n; s0 += c->n_batch) {
        int32_t ns = n - s0 < c->n_batch ? n - s0 : c->n_batch;
        const int32_t *pos = b->pos ? b->pos + s0 : c->pos_buf;
        if (!b->pos)
            for (int32_t i = 0; i < ns; i++) c->pos_buf[i] = c->kv_len + c->pos_offset + i;
        rc = nn_forward_batch(c, ns, b->ids ? b->ids + s0 : NULL, b->embd ? b->embd + s0 * C : NULL,
                              pos, b->mask ? b->mask + s0 * mstride : NULL, mstride,
                              c->hidden + s0 * C);
        if (rc) {
            c->kv_len = P0;
            return rc;
        }
    }
    c->n_out = n;
    return TERSE_OK;
}
