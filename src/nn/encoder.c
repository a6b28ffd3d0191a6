/* encoder.c - BERT / XLM-RoBERTa token classifiers: loading (every tensor checked) and a
 * batched bidirectional forward pass that returns per-token label probabilities.
 *
 * A pass takes several whole sequences packed back to back (T tokens in all): embeddings,
 * then per layer the q/k/v, output and feed-forward products are single sgemm calls over all T
 * rows (linear.c), and attention runs per sequence and head:
 *     S = Q_h K_h^T / sqrt(D)   (sgemm, n x n for a sequence of n tokens)
 *     P = softmax(S) by rows    (pool threads)
 *     O_h = P V_h               (sgemm, written into the head's columns)
 * Nothing is padded: a sequence's tokens only see each other, which is what a padded batch
 * with an attention mask computes. Numerics follow Hugging Face: LayerNorm with the biased
 * variance and eps inside the square root, GELU in its exact erf form, softmax in f32.
 * Shapes: T tokens in a pass, C embd, H heads, D = C/H, F ff, P positions, L labels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/encoder.h"
#include "nn/pool.h"
#include "nn/quant.h"

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                   */

static int hp(const gguf_file *g, const char *key, int required, uint32_t def, uint32_t hi,
              int32_t *out) {
    uint32_t v = def;
    if (required && gguf_find(g, key) < 0)
        return terse_err(TERSE_ERR_FORMAT, "model: hyper-parameter %s missing", key);
    int rc = gguf_get_u32_or(g, key, def, &v);
    if (rc) return rc;
    if (v < 1 || v > hi) return terse_err(TERSE_ERR_FORMAT, "model: %s = %u, expected 1..%u", key, v, hi);
    *out = (int32_t)v;
    return TERSE_OK;
}

/* Tensor `name` of shape [ne0, ne1] (ne1 = 0: a vector of ne0; ne1 < 0: any row count). */
static const gguf_tensor *want(const gguf_file *g, const char *name, int64_t ne0, int64_t ne1,
                               int *rc) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) {
        *rc = terse_err(TERSE_ERR_FORMAT, "model: tensor '%s' missing", name);
        return NULL;
    }
    int vec = ne1 == 0;
    if (vec ? !(t->type == GGML_F32 || t->type == GGML_F16 || t->type == GGML_BF16)
            : !quant_supported(t->type)) {
        *rc = terse_err(TERSE_ERR_UNSUPPORTED, "model: tensor '%s' has type %s", name,
                        gguf_type_name(t->type));
        return NULL;
    }
    if (t->ne[0] != ne0 || (vec ? t->ne[1] != 1 : (ne1 > 0 && t->ne[1] != ne1) || t->ne[1] < 1) ||
        t->ne[2] != 1 || t->ne[3] != 1 || quant_row_bytes(t->type, t->ne[0]) == 0) {
        *rc = terse_err(TERSE_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld, %lld, %lld], "
                        "expected [%lld, %lld]", name, (long long)t->ne[0], (long long)t->ne[1],
                        (long long)t->ne[2], (long long)t->ne[3], (long long)ne0,
                        (long long)(vec ? 1 : ne1));
        return NULL;
    }
    return t;
}

typedef struct {
    terse_model *m;
    float *vec;        /* next free float of m->vectors */
    int rc;
} binder;

static void bind_mat(binder *b, nn_matrix *x, const char *name, int64_t ne0, int64_t ne1) {
    if (b->rc) return;
    const gguf_tensor *t = want(b->m->g, name, ne0, ne1, &b->rc);
    if (!t) return;
    *x = (nn_matrix){t->type, t->data, t->ne[1], t->ne[0], quant_row_bytes(t->type, t->ne[0]), NULL};
    if (x->cols > b->m->max_in) b->m->max_in = x->cols;
}

static void bind_vec(binder *b, const float **x, const char *name, int64_t n) {
    if (b->rc) return;
    const gguf_tensor *t = want(b->m->g, name, n, 0, &b->rc);
    if (!t) return;
    if (b->vec) {
        dequantize_row(t->type, t->data, b->vec, n);
        *x = b->vec;
        b->vec += n;
    }
}

/* Two passes over the same table: count the vector floats (vec == NULL), then bind. */
static int bind_all(terse_model *m, nn_encoder *e, float *vec) {
    binder b = {m, vec, 0};
    const int64_t C = m->n_embd, F = m->n_ff;
    char k[96];
    bind_mat(&b, &m->tok_embd, "token_embd.weight", C, m->n_vocab);
    bind_mat(&b, &e->pos_embd, "position_embd.weight", C, -1);
    bind_mat(&b, &e->type_embd, "token_types.weight", C, -1);
    bind_vec(&b, &e->embd_norm, "token_embd_norm.weight", C);
    bind_vec(&b, &e->embd_norm_b, "token_embd_norm.bias", C);
    for (int32_t l = 0; l < m->n_layer && !b.rc; l++) {
        nn_enc_layer *y = &e->layers[l];
#define M(f, n0, n1, s) (snprintf(k, sizeof k, "blk.%d." s, l), bind_mat(&b, &y->f, k, n0, n1))
#define V(f, n, s) (snprintf(k, sizeof k, "blk.%d." s, l), bind_vec(&b, &y->f, k, n))
        M(wq, C, C, "attn_q.weight"), V(bq, C, "attn_q.bias");
        M(wk, C, C, "attn_k.weight"), V(bk, C, "attn_k.bias");
        M(wv, C, C, "attn_v.weight"), V(bv, C, "attn_v.bias");
        M(wo, C, C, "attn_output.weight"), V(bo, C, "attn_output.bias");
        V(attn_norm, C, "attn_output_norm.weight"), V(attn_norm_b, C, "attn_output_norm.bias");
        M(w_up, C, F, "ffn_up.weight"), V(b_up, F, "ffn_up.bias");
        M(w_down, F, C, "ffn_down.weight"), V(b_down, C, "ffn_down.bias");
        V(out_norm, C, "layer_output_norm.weight"), V(out_norm_b, C, "layer_output_norm.bias");
#undef M
#undef V
    }
    bind_mat(&b, &e->cls, "cls.weight", C, -1);
    if (!b.rc) e->n_labels = (int32_t)e->cls.rows;
    bind_vec(&b, &e->cls_b, "cls.bias", e->n_labels);
    return b.rc;
}

int nn_encoder_load(terse_model *m) {
    const gguf_file *g = m->g;
    int rc;
    if ((rc = hp(g, "bert.context_length", 1, 0, 1u << 16, &m->n_ctx_train)) ||
        (rc = hp(g, "bert.embedding_length", 1, 0, 1u << 16, &m->n_embd)) ||
        (rc = hp(g, "bert.block_count", 1, 0, 4096, &m->n_layer)) ||
        (rc = hp(g, "bert.feed_forward_length", 1, 0, 1u << 20, &m->n_ff)) ||
        (rc = hp(g, "bert.attention.head_count", 1, 0, (uint32_t)m->n_embd, &m->n_head)))
        return rc;
    if (m->n_embd % m->n_head)
        return terse_err(TERSE_ERR_FORMAT, "model: bert.embedding_length %d is not a multiple of "
                         "bert.attention.head_count %d", m->n_embd, m->n_head);
    m->n_head_kv = m->n_head;
    m->head_dim = m->n_embd / m->n_head;
    if ((rc = gguf_get_f32_or(g, "bert.attention.layer_norm_epsilon", 1e-12f, &m->norm_eps)))
        return rc;
    if (!(m->norm_eps >= 0.0f && m->norm_eps <= 1.0f))
        return terse_err(TERSE_ERR_FORMAT, "model: bert.attention.layer_norm_epsilon = %g",
                         (double)m->norm_eps);
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->ne[1] < 1 || te->ne[1] > INT32_MAX)
        return terse_err(TERSE_ERR_FORMAT, "model: tensor 'token_embd.weight' missing or empty");
    m->n_vocab = (int32_t)te->ne[1];
    nn_encoder *e = terse_calloc(1, sizeof *e, "encoder");
    if (!e) return TERSE_ERR_NOMEM;
    m->enc = e;
    e->layers = terse_calloc((size_t)m->n_layer, sizeof *e->layers, "encoder layers");
    if (!e->layers) return TERSE_ERR_NOMEM;
    /* vector floats: 2C (embedding norm), per layer 9C + F (biases, norms), the labels */
    size_t n_vec = 2 * (size_t)m->n_embd +
                   (size_t)m->n_layer * (9 * (size_t)m->n_embd + (size_t)m->n_ff);
    if ((rc = bind_all(m, e, NULL))) return rc;
    n_vec += (size_t)e->n_labels;
    if (!(m->vectors = terse_malloc(n_vec * sizeof(float), "encoder vectors"))) return TERSE_ERR_NOMEM;
    if ((rc = bind_all(m, e, m->vectors))) return rc;
    if (e->pos_embd.rows < m->n_ctx_train)
        return terse_err(TERSE_ERR_FORMAT, "model: position_embd.weight has %lld rows for "
                         "bert.context_length %d", (long long)e->pos_embd.rows, m->n_ctx_train);
    if (e->n_labels < 2 || e->n_labels > 4096)
        return terse_err(TERSE_ERR_FORMAT, "model: cls.weight has %d labels (2..4096)", e->n_labels);
    e->n_pos = m->n_ctx_train;
    e->n_types = (int32_t)e->type_embd.rows;
    m->arch = NN_ARCH_BERT;
    snprintf(m->arch_name, sizeof m->arch_name, "bert");
    return TERSE_OK;
}

void nn_encoder_free(nn_encoder *e) {
    if (!e) return;
    free(e->layers);
    free(e);
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                   */

typedef struct {
    const terse_model *m;
    nn_pool *pool;
    float *x, *t, *q, *k, *v, *att, *h;  /* (T, C) x6, (T, F) */
    float *scores;                       /* (P, P) */
    float *wbuf;                         /* dequantisation scratch, wcap floats */
    int64_t wcap;
} enc_run;

static void linear(enc_run *r, const float *x, int64_t n, const nn_matrix *w, const float *b,
                   float *y) {
    nn_linear(x, n, w->cols, w, 0, w->rows, y, w->rows, 0.0f, r->wbuf, r->wcap, r->pool);
    if (b)
        for (int64_t i = 0; i < n; i++) {
            float *yi = y + i * w->rows;
            for (int64_t j = 0; j < w->rows; j++) yi[j] += b[j];
        }
}

typedef struct {
    float *x;              /* rows to normalise in place */
    const float *add;      /* NULL, or rows added first (residual) */
    const float *w, *b;
    int64_t C;
    float eps;
} ln_job;

static void ln_range(void *arg, int64_t i0, int64_t i1) {
    const ln_job *j = arg;
    const int64_t C = j->C;
    for (int64_t i = i0; i < i1; i++) {
        float *x = j->x + i * C;
        if (j->add)
            for (int64_t c = 0; c < C; c++) x[c] += j->add[i * C + c];
        float mean = 0, var = 0;
        for (int64_t c = 0; c < C; c++) mean += x[c];
        mean /= (float)C;
        for (int64_t c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= (float)C;
        float rs = 1.0f / sqrtf(var + j->eps);
        for (int64_t c = 0; c < C; c++) x[c] = (x[c] - mean) * rs * j->w[c] + j->b[c];
    }
}

static void layer_norm(enc_run *r, float *x, const float *add, int64_t n, const float *w,
                       const float *b) {
    ln_job j = {x, add, w, b, r->m->n_embd, r->m->norm_eps};
    nn_pool_run(r->pool, n, 16, ln_range, &j);
}

static void gelu_range(void *arg, int64_t i0, int64_t i1) {
    float *x = arg;
    for (int64_t i = i0; i < i1; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

typedef struct {
    float *s;
    int64_t n;
} softmax_job;

static void softmax_range(void *arg, int64_t i0, int64_t i1) {
    const softmax_job *j = arg;
    for (int64_t i = i0; i < i1; i++) {
        float *row = j->s + i * j->n, mx = row[0], sum = 0;
        for (int64_t c = 1; c < j->n; c++) mx = row[c] > mx ? row[c] : mx;
        for (int64_t c = 0; c < j->n; c++) sum += row[c] = expf(row[c] - mx);
        float inv = 1.0f / sum;
        for (int64_t c = 0; c < j->n; c++) row[c] *= inv;
    }
}

#include <cblas.h>

/* Attention of one sequence (rows [r0, r0+n) of q, k, v) into att. */
static void attend(enc_run *r, int64_t r0, int64_t n) {
    const terse_model *m = r->m;
    const int64_t C = m->n_embd, D = m->head_dim;
    const float scale = 1.0f / sqrtf((float)D);
    for (int32_t h = 0; h < m->n_head; h++) {
        const float *Q = r->q + r0 * C + h * D, *K = r->k + r0 * C + h * D, *Vh = r->v + r0 * C + h * D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)D, scale, Q,
                    (int)C, K, (int)C, 0.0f, r->scores, (int)n);
        softmax_job sj = {r->scores, n};
        nn_pool_run(r->pool, n, 32, softmax_range, &sj);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)n, 1.0f,
                    r->scores, (int)n, Vh, (int)C, 0.0f, r->att + r0 * C + h * D, (int)C);
    }
}

/* One pass over n_seq sequences (T tokens). */
static void pass(enc_run *r, const int32_t *ids, const int32_t *len, int32_t n_seq, int64_t T,
                 int32_t label, float *out) {
    const terse_model *m = r->m;
    const nn_encoder *e = m->enc;
    const int64_t C = m->n_embd;
    float *row = r->t;
    /* embeddings: word + position + token type 0, then LayerNorm */
    for (int32_t s = 0, t = 0; s < n_seq; s++)
        for (int32_t i = 0; i < len[s]; i++, t++) {
            float *x = r->x + (int64_t)t * C;
            nn_matrix_row(&m->tok_embd, ids[t], x);
            nn_matrix_row(&e->pos_embd, i, row);
            for (int64_t c = 0; c < C; c++) x[c] += row[c];
            nn_matrix_row(&e->type_embd, 0, row);
            for (int64_t c = 0; c < C; c++) x[c] += row[c];
        }
    layer_norm(r, r->x, NULL, T, e->embd_norm, e->embd_norm_b);
    for (int32_t l = 0; l < m->n_layer; l++) {
        const nn_enc_layer *y = &e->layers[l];
        linear(r, r->x, T, &y->wq, y->bq, r->q);
        linear(r, r->x, T, &y->wk, y->bk, r->k);
        linear(r, r->x, T, &y->wv, y->bv, r->v);
        for (int32_t s = 0, r0 = 0; s < n_seq; r0 += len[s], s++) attend(r, r0, len[s]);
        linear(r, r->att, T, &y->wo, y->bo, r->t);
        layer_norm(r, r->x, r->t, T, y->attn_norm, y->attn_norm_b);
        linear(r, r->x, T, &y->w_up, y->b_up, r->h);
        nn_pool_run(r->pool, T * m->n_ff, 1 << 14, gelu_range, r->h);
        linear(r, r->h, T, &y->w_down, y->b_down, r->t);
        layer_norm(r, r->x, r->t, T, y->out_norm, y->out_norm_b);
    }
    /* classifier and softmax over the labels */
    const int64_t L = e->n_labels;
    linear(r, r->x, T, &e->cls, e->cls_b, r->t);
    for (int64_t t = 0; t < T; t++) {
        const float *lg = r->t + t * L;
        float mx = lg[0], sum = 0;
        for (int64_t c = 1; c < L; c++) mx = lg[c] > mx ? lg[c] : mx;
        for (int64_t c = 0; c < L; c++) sum += expf(lg[c] - mx);
        out[t] = expf(lg[label] - mx) / sum;
    }
}

#define DEFAULT_PASS_TOKENS 4096

int nn_encoder_probs(const terse_model *m, const int32_t *ids, const int32_t *len, int32_t n_seq,
                     int32_t label, int32_t max_tokens, int32_t n_threads, float *out) {
    if (!m || !m->enc) return terse_err(TERSE_ERR_INVALID, "encoder: not an encoder model");
    const nn_encoder *e = m->enc;
    if (n_seq < 0 || (n_seq > 0 && (!ids || !len || !out)))
        return terse_err(TERSE_ERR_INVALID, "encoder: bad arguments");
    if (label < 0 || label >= e->n_labels)
        return terse_err(TERSE_ERR_RANGE, "encoder: label %d outside 0..%d", label, e->n_labels - 1);
    int64_t total = 0;
    for (int32_t s = 0; s < n_seq; s++) {
        if (len[s] < 1 || len[s] > e->n_pos)
            return terse_err(TERSE_ERR_RANGE, "encoder: sequence %d has %d tokens (1..%d)", s,
                             len[s], e->n_pos);
        for (int32_t i = 0; i < len[s]; i++)
            if (ids[total + i] < 0 || ids[total + i] >= m->n_vocab)
                return terse_err(TERSE_ERR_RANGE, "encoder: id %d outside the vocabulary (%d)",
                                 ids[total + i], m->n_vocab);
        total += len[s];
    }
    if (n_seq == 0) return TERSE_OK;
    int64_t cap = max_tokens > 0 ? max_tokens : DEFAULT_PASS_TOKENS;
    if (cap < e->n_pos) cap = e->n_pos;
    if (cap > total) cap = total;
    const int64_t C = m->n_embd, F = m->n_ff, P = e->n_pos;
    int64_t wide = C > e->n_labels ? C : e->n_labels;
    enc_run r = {.m = m};
    r.wcap = m->max_in > (1 << 20) ? m->max_in : (1 << 20);
    size_t floats = (size_t)cap * (size_t)(5 * C + wide + F) + (size_t)(P * P) + (size_t)r.wcap;
    float *blk = terse_malloc(floats * sizeof(float), "encoder scratch");
    if (!blk) return TERSE_ERR_NOMEM;
    float *f = blk;
    r.x = f, f += cap * C;
    r.t = f, f += cap * wide;
    r.q = f, f += cap * C;
    r.k = f, f += cap * C;
    r.v = f, f += cap * C;
    r.att = f, f += cap * C;
    r.h = f, f += cap * F;
    r.scores = f, f += P * P;
    r.wbuf = f;
    int rc = nn_pool_new(n_threads > 0 ? n_threads : terse_default_threads(), &r.pool);
    if (rc) {
        free(blk);
        return rc;
    }
    int64_t at = 0;
    for (int32_t s = 0; s < n_seq;) {
        int32_t s1 = s;
        int64_t T = 0;
        while (s1 < n_seq && (T + len[s1] <= cap || s1 == s)) T += len[s1++];
        pass(&r, ids + at, len + s, s1 - s, T, label, out + at);
        at += T;
        s = s1;
    }
    nn_pool_free(r.pool);
    free(blk);
    return TERSE_OK;
}
