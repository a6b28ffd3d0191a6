/* model.c - loading a GGUF model: architecture, hyper-parameters, and every tensor checked
 * for presence, type and shape before anything runs. Weights stay in the read-only mapping
 * (the model keeps the gguf_file open); only the small 1-D weights (norms, biases) are
 * converted to one f32 block. The vocabulary comes from the same file's tokenizer metadata.
 *
 * One description per architecture (nn_arch_descs below, nn.h says what each field means)
 * and one tensor table built from it (arch_tensors), with llama.cpp's names:
 *   token_embd, position_embd (gpt2), output_norm(.bias for LayerNorm archs), output
 *   (absent = tied to token_embd), output.bias (phi2), rope_freqs (optional),
 *   blk.N.attn_norm(.bias), attn_q/attn_k/attn_v or attn_qkv (.bias per arch),
 *   attn_q_norm, attn_k_norm (qwen3), attn_output(.bias), post_attention_norm (gemma2),
 *   ffn_norm(.bias) (not phi2: attention and MLP share attn_norm), ffn_gate (not with GELU
 *   or phi3's fused ffn_up), ffn_up(.bias), ffn_down(.bias), post_ffw_norm (gemma2).
 *   llama  RMSNorm, SwiGLU, rotary on adjacent pairs, optional biases
 *   qwen2  llama + q/k/v biases, rotary in NEOX (rotate-half) layout
 *   qwen3  qwen2 without biases, with per-head q/k RMS norms; head_dim from key_length
 *   gpt2   LayerNorm, GELU, learned positions, fused qkv, biases everywhere
 *   phi2   LayerNorm, GELU, parallel attention + MLP, partial NEOX rotary, biases, output.bias
 *   phi3   llama with fused attn_qkv and fused gate+up in ffn_up, NEOX rotary
 *   gemma  NEOX rotary, GeGLU (tanh GELU gate), embeddings times sqrt(C), tied output; the
 *          (1 + w) of its RMSNorm is folded into the stored weights, as llama.cpp's converter does
 *   gemma2 gemma + post-attention/post-MLP norms, attention and final logit soft-capping,
 *          sliding window on even layers
 * Keys beyond the basic shape: <arch>.attention.key_length (head_dim), .attention.scale,
 * .attention.sliding_window, .attn_logit_softcapping, .final_logit_softcapping,
 * .rope.scaling.type none | linear (.rope.scaling.factor) | llama3 (.rope.scaling.factor,
 * .rope.scaling.original_context_length, .rope.scaling.low_freq_factor, .high_freq_factor;
 * llama.cpp itself stores Llama 3 scaling as the rope_freqs tensor, read as such).
 * Not here: the forward pass (forward.c), yarn/longrope scaling, MoE, other archs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nn/encoder.h"
#include "nn/gemm.h"
#include "nn/nn.h"
#include "nn/quant.h"
#include "tok/tok.h"

terse_model_params terse_model_default_params(void) {
    terse_model_params p = {.use_mmap = 1, .n_threads = 0, .pack = 1};
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Architectures                                                                             */

/*  name      arch           norm           act            rope           qkv
 *  qkv_bias     out_bias     ffn_bias  pos gate_up par qk_norm post embd_scale out_b swa_even
 *  eps theta attn_softcap final_softcap swa */
static const nn_arch_desc nn_arch_descs[] = {
    {"llama", NN_ARCH_LLAMA, NN_NORM_RMS, NN_ACT_SWIGLU, NN_ROPE_NORM, NN_QKV_SPLIT,
     NN_OPTIONAL, NN_OPTIONAL, NN_NO, 0, 0, 0, 0, 0, 0, 0, 0, 1e-5f, 10000.0f, 0, 0, 0},
    {"qwen2", NN_ARCH_QWEN2, NN_NORM_RMS, NN_ACT_SWIGLU, NN_ROPE_NEOX, NN_QKV_SPLIT,
     NN_YES, NN_OPTIONAL, NN_NO, 0, 0, 0, 0, 0, 0, 0, 0, 1e-6f, 1000000.0f, 0, 0, 0},
    {"gpt2", NN_ARCH_GPT2, NN_NORM_LAYER, NN_ACT_GELU, NN_ROPE_NONE, NN_QKV_FUSED,
     NN_YES, NN_YES, NN_YES, 1, 0, 0, 0, 0, 0, 0, 0, 1e-5f, 0, 0, 0, 0},
    {"phi2", NN_ARCH_PHI2, NN_NORM_LAYER, NN_ACT_GELU, NN_ROPE_NEOX, NN_QKV_EITHER,
     NN_YES, NN_YES, NN_YES, 0, 0, 1, 0, 0, 0, 1, 0, 1e-5f, 10000.0f, 0, 0, 0},
    {"phi3", NN_ARCH_PHI3, NN_NORM_RMS, NN_ACT_SWIGLU, NN_ROPE_NEOX, NN_QKV_EITHER,
     NN_NO, NN_NO, NN_NO, 0, 1, 0, 0, 0, 0, 0, 0, 1e-5f, 10000.0f, 0, 0, 0},
    {"gemma", NN_ARCH_GEMMA, NN_NORM_RMS, NN_ACT_GEGLU, NN_ROPE_NEOX, NN_QKV_SPLIT,
     NN_NO, NN_NO, NN_NO, 0, 0, 0, 0, 0, 1, 0, 0, 1e-6f, 10000.0f, 0, 0, 0},
    {"gemma2", NN_ARCH_GEMMA2, NN_NORM_RMS, NN_ACT_GEGLU, NN_ROPE_NEOX, NN_QKV_SPLIT,
     NN_NO, NN_NO, NN_NO, 0, 0, 0, 0, 1, 1, 0, 1, 1e-6f, 10000.0f, 50.0f, 30.0f, 4096},
    {"qwen3", NN_ARCH_QWEN3, NN_NORM_RMS, NN_ACT_SWIGLU, NN_ROPE_NEOX, NN_QKV_SPLIT,
     NN_OPTIONAL, NN_NO, NN_NO, 0, 0, 0, 1, 0, 0, 0, 0, 1e-6f, 1000000.0f, 0, 0, 0},
};

const nn_arch_desc *nn_arch_find(const char *name, size_t len) {
    for (size_t k = 0; k < sizeof nn_arch_descs / sizeof nn_arch_descs[0]; k++)
        if (strlen(nn_arch_descs[k].name) == len && !memcmp(nn_arch_descs[k].name, name, len))
            return &nn_arch_descs[k];
    return NULL;
}

const char *nn_arch_names(void) { return "llama, qwen2, qwen3, gpt2, phi2, phi3, gemma, gemma2"; }

/* ---------------------------------------------------------------------------------------- */
/* Hyper-parameters                                                                          */

static int hp_u32(const gguf_file *g, const char *arch, const char *suffix, int required,
                  uint32_t def, uint32_t lo, uint32_t hi, int32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = def;
    int rc;
    if (required && gguf_find(g, key) < 0)
        return terse_err(TERSE_ERR_FORMAT, "model: hyper-parameter %s missing", key);
    if ((rc = gguf_get_u32_or(g, key, def, &v))) return rc;
    if (v < lo || v > hi)
        return terse_err(TERSE_ERR_FORMAT, "model: %s = %u, expected %u..%u", key, v, lo, hi);
    *out = (int32_t)v;
    return TERSE_OK;
}

static int hp_f32(const gguf_file *g, const char *arch, const char *suffix, float def,
                  float lo, float hi, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_f32_or(g, key, def, out);
    if (rc) return rc;
    if (!(*out >= lo && *out <= hi))
        return terse_err(TERSE_ERR_FORMAT, "model: %s = %g, expected %g..%g", key, (double)*out,
                         (double)lo, (double)hi);
    return TERSE_OK;
}

/* Rotary scaling from the rope.scaling.* keys: none, linear (positions / factor) or llama3
 * (per-frequency divisors, Meta's formula). A rope_freqs tensor, read later, takes precedence. */
static int read_rope_scaling(terse_model *m) {
    const gguf_file *g = m->g;
    const char *a = m->arch_name;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (gguf_find(g, key) < 0) return TERSE_OK;
    gguf_str s;
    int rc;
    if ((rc = gguf_get_str(g, key, &s))) return rc;
    if (gguf_str_eq(s, "none")) return TERSE_OK;
    int linear = gguf_str_eq(s, "linear"), llama3 = gguf_str_eq(s, "llama3");
    if (!linear && !llama3)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s = '%.*s' (none, linear and llama3 "
                         "are supported)", key, (int)(s.len > 32 ? 32 : s.len), s.ptr);
    float factor, lo = 1.0f, hi = 4.0f;
    int32_t orig = 8192;
    if ((rc = hp_f32(g, a, "rope.scaling.factor", 1.0f, 1e-6f, 1e6f, &factor))) return rc;
    const int half = m->n_rot / 2;
    if (linear) {
        for (int k = 0; k < half; k++) m->rope_freqs_buf[k] = factor;
    } else {
        if ((rc = hp_u32(g, a, "rope.scaling.original_context_length", 0, 8192, 1, 1u << 24, &orig)) ||
            (rc = hp_f32(g, a, "rope.scaling.low_freq_factor", 1.0f, 1e-6f, 1e6f, &lo)) ||
            (rc = hp_f32(g, a, "rope.scaling.high_freq_factor", 4.0f, 1e-6f, 1e6f, &hi)))
            return rc;
        if (!(hi > lo))
            return terse_err(TERSE_ERR_FORMAT, "model: %s.rope.scaling.high_freq_factor %g must "
                             "exceed low_freq_factor %g", a, (double)hi, (double)lo);
        const double lo_wl = orig / lo, hi_wl = orig / hi;
        for (int k = 0; k < half; k++) {
            double f = 1.0 / pow(m->rope_base, 2.0 * k / m->n_rot), wl = 2 * M_PI / f, div;
            if (wl < hi_wl) div = 1.0;
            else if (wl > lo_wl) div = factor;
            else {
                double sm = (orig / wl - lo) / (hi - lo);
                div = 1.0 / ((1 - sm) / factor + sm);
            }
            m->rope_freqs_buf[k] = (float)div;
        }
    }
    m->rope_freqs = m->rope_freqs_buf;
    return TERSE_OK;
}

static int read_hparams(terse_model *m) {
    const gguf_file *g = m->g;
    const nn_arch_desc *d = m->d;
    const char *a = m->arch_name;
    int rc;
    if ((rc = hp_u32(g, a, "context_length", 1, 0, 1, 1u << 24, &m->n_ctx_train)) ||
        (rc = hp_u32(g, a, "embedding_length", 1, 0, 1, 1u << 16, &m->n_embd)) ||
        (rc = hp_u32(g, a, "block_count", 1, 0, 1, 4096, &m->n_layer)) ||
        (rc = hp_u32(g, a, "feed_forward_length", 1, 0, 1, 1u << 20, &m->n_ff)) ||
        (rc = hp_u32(g, a, "attention.head_count", 1, 0, 1, (uint32_t)m->n_embd, &m->n_head)) ||
        (rc = hp_u32(g, a, "attention.head_count_kv", 0, (uint32_t)m->n_head, 1,
                     (uint32_t)m->n_head, &m->n_head_kv)))
        return rc;
    if (m->n_head % m->n_head_kv != 0)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.attention.head_count %d is not a multiple "
                         "of %s.attention.head_count_kv %d", a, m->n_head, a, m->n_head_kv);
    /* head_dim: key_length, by default embedding_length / head_count */
    int has_kl = 0;
    {
        char key[128];
        snprintf(key, sizeof key, "%s.attention.key_length", a);
        has_kl = gguf_find(g, key) >= 0;
    }
    if (!has_kl && m->n_embd % m->n_head != 0)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.embedding_length %d is not a multiple of "
                         "%s.attention.head_count %d", a, m->n_embd, a, m->n_head);
    int32_t vl;
    if ((rc = hp_u32(g, a, "attention.key_length", 0, has_kl ? 0 : (uint32_t)(m->n_embd / m->n_head),
                     1, 1u << 12, &m->head_dim)) ||
        (rc = hp_u32(g, a, "attention.value_length", 0, (uint32_t)m->head_dim, 1, 1u << 12, &vl)))
        return rc;
    if (vl != m->head_dim)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s.attention.value_length %d differs from "
                         "key_length %d", a, vl, m->head_dim);
    if ((int64_t)m->n_head * m->head_dim > (1 << 16))
        return terse_err(TERSE_ERR_FORMAT, "model: %d heads of %d exceed %d", m->n_head,
                         m->head_dim, 1 << 16);
    m->n_q = m->n_head * m->head_dim;
    if ((d->qkv == NN_QKV_FUSED || d->pos_embd) && m->n_q != m->n_embd)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s.attention.key_length %d differs from "
                         "embedding_length / head_count = %d", a, m->head_dim,
                         m->n_embd / m->n_head);
    float scale;
    if ((rc = hp_f32(g, a, "attention.scale", 0.0f, 0.0f, 1e6f, &scale)) ||
        (rc = hp_f32(g, a, "attn_logit_softcapping", d->attn_softcap, 0.0f, 1e6f, &m->attn_softcap)) ||
        (rc = hp_f32(g, a, "final_logit_softcapping", d->final_softcap, 0.0f, 1e6f, &m->final_softcap)) ||
        (rc = hp_u32(g, a, "attention.sliding_window", 0, (uint32_t)d->swa, 0, INT32_MAX, &m->swa)))
        return rc;
    /* llama.cpp: Gemma 2 27B (46 layers) scales by 1/sqrt(n_embd / n_head), not 1/sqrt(D) */
    if (scale == 0.0f && d->arch == NN_ARCH_GEMMA2 && m->n_layer == 46)
        scale = 1.0f / sqrtf((float)(m->n_embd / m->n_head));
    m->attn_scale = scale > 0.0f ? scale : 1.0f / sqrtf((float)m->head_dim);
    if (d->rope == NN_ROPE_NONE) {
        m->n_rot = 0;
        return hp_f32(g, a, "attention.layer_norm_epsilon", d->eps, 0.0f, 1.0f, &m->norm_eps);
    }
    if ((rc = hp_f32(g, a, d->norm == NN_NORM_LAYER ? "attention.layer_norm_epsilon"
                                                    : "attention.layer_norm_rms_epsilon",
                     d->eps, 0.0f, 1.0f, &m->norm_eps)) ||
        (rc = hp_f32(g, a, "rope.freq_base", d->theta, 1e-3f, 1e30f, &m->rope_base)) ||
        (rc = hp_u32(g, a, "rope.dimension_count", 0, (uint32_t)m->head_dim, 2,
                     (uint32_t)m->head_dim, &m->n_rot)))
        return rc;
    if (m->n_rot % 2)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.rope.dimension_count %d is odd", a, m->n_rot);
    if (m->n_rot > 1024)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s.rope.dimension_count %d (at most 1024)",
                         a, m->n_rot);
    return read_rope_scaling(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Tensor table: what the architecture needs, checked, then bound                            */

typedef struct {
    char name[64];
    int64_t ne0, ne1;      /* expected shape; ne1 = 1 for vectors */
    int vector;            /* 1: converted to f32 into m->vectors */
    int optional;
    char kind;             /* 'w' matrix, 'n' norm weight, 'b' bias (random models) */
    nn_matrix *mat;        /* destination of a matrix */
    const float **vec;     /* destination of a vector */
} want;

typedef struct {
    want *w;
    size_t n, cap;
} want_list;

static int want_add(want_list *l, char kind, int optional, int64_t ne0, int64_t ne1,
                    void *dst, const char *fmt, int layer) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        want *w = terse_reallocarray(l->w, cap, sizeof *w, "model tensor table");
        if (!w) return TERSE_ERR_NOMEM;
        l->w = w;
        l->cap = cap;
    }
    want *w = &l->w[l->n++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, fmt, layer);
    w->ne0 = ne0, w->ne1 = ne1, w->vector = kind != 'w', w->optional = optional, w->kind = kind;
    if (w->vector) w->vec = dst;
    else w->mat = dst;
    return TERSE_OK;
}

#define MAT(ne0, ne1, dst, fmt) ((rc = want_add(&l, 'w', 0, ne0, ne1, dst, fmt, i)))
#define NORM(ne0, dst, fmt) ((rc = want_add(&l, 'n', 0, ne0, 1, dst, fmt, i)))
#define BIAS(has, ne0, dst, fmt) \
    ((has) != NN_NO && (rc = want_add(&l, 'b', (has) == NN_OPTIONAL, ne0, 1, dst, fmt, i)))

/* The tensors of m's architecture and shape, in file order. fused: attn_qkv rather than
 * attn_q/k/v (for NN_QKV_EITHER archs; the loader looks at the file, writers choose). */
static int build_table(terse_model *m, int fused, want_list *out, const float **rope_freqs) {
    const nn_arch_desc *d = m->d;
    want_list l = {0};
    int rc = 0;
    const int64_t C = m->n_embd, V = m->n_vocab, F = m->n_ff, Q = m->n_q, D = m->head_dim;
    const int64_t KV = (int64_t)m->n_head_kv * m->head_dim;
    const nn_has ln_bias = d->norm == NN_NORM_LAYER ? NN_YES : NN_NO;
    int i = 0;
    if (MAT(C, V, &m->tok_embd, "token_embd.weight")) goto done;
    if (d->pos_embd && MAT(C, m->n_ctx_train, &m->pos_embd, "position_embd.weight")) goto done;
    if (d->rope != NN_ROPE_NONE &&
        (rc = want_add(&l, 'r', 1, m->n_rot / 2, 1, rope_freqs, "rope_freqs.weight", 0)))
        goto done;
    if (NORM(C, &m->out_norm, "output_norm.weight") ||
        BIAS(ln_bias, C, &m->out_norm_b, "output_norm.bias") ||
        BIAS(d->output_bias ? NN_YES : NN_NO, V, &m->output_b, "output.bias"))
        goto done;
    for (i = 0; i < m->n_layer; i++) {
        nn_layer *y = &m->layers[i];
        if (NORM(C, &y->attn_norm, "blk.%d.attn_norm.weight") ||
            BIAS(ln_bias, C, &y->attn_norm_b, "blk.%d.attn_norm.bias"))
            goto done;
        if (fused) {
            if (MAT(C, Q + 2 * KV, &y->wqkv, "blk.%d.attn_qkv.weight") ||
                BIAS(d->qkv_bias, Q + 2 * KV, &y->bqkv, "blk.%d.attn_qkv.bias"))
                goto done;
        } else if (MAT(C, Q, &y->wq, "blk.%d.attn_q.weight") ||
                   MAT(C, KV, &y->wk, "blk.%d.attn_k.weight") ||
                   MAT(C, KV, &y->wv, "blk.%d.attn_v.weight") ||
                   BIAS(d->qkv_bias, Q, &y->bq, "blk.%d.attn_q.bias") ||
                   BIAS(d->qkv_bias, KV, &y->bk, "blk.%d.attn_k.bias") ||
                   BIAS(d->qkv_bias, KV, &y->bv, "blk.%d.attn_v.bias")) {
            goto done;
        }
        if (d->qk_norm && (NORM(D, &y->q_norm, "blk.%d.attn_q_norm.weight") ||
                           NORM(D, &y->k_norm, "blk.%d.attn_k_norm.weight")))
            goto done;
        if (MAT(Q, C, &y->wo, "blk.%d.attn_output.weight") ||
            BIAS(d->out_bias, C, &y->bo, "blk.%d.attn_output.bias"))
            goto done;
        if (d->post_norms && NORM(C, &y->post_attn_norm, "blk.%d.post_attention_norm.weight"))
            goto done;
        if (!d->parallel && (NORM(C, &y->ffn_norm, "blk.%d.ffn_norm.weight") ||
                             BIAS(ln_bias, C, &y->ffn_norm_b, "blk.%d.ffn_norm.bias")))
            goto done;
        if (d->act != NN_ACT_GELU && !d->fused_gate_up &&
            MAT(C, F, &y->w_gate, "blk.%d.ffn_gate.weight"))
            goto done;
        if (MAT(C, d->fused_gate_up ? 2 * F : F, &y->w_up, "blk.%d.ffn_up.weight") ||
            BIAS(d->ffn_bias, F, &y->b_up, "blk.%d.ffn_up.bias") ||
            MAT(F, C, &y->w_down, "blk.%d.ffn_down.weight") ||
            BIAS(d->ffn_bias, C, &y->b_down, "blk.%d.ffn_down.bias"))
            goto done;
        if (d->post_norms && NORM(C, &y->post_ffn_norm, "blk.%d.post_ffw_norm.weight")) goto done;
    }
done:
    if (rc) free(l.w);
    else *out = l;
    return rc;
}

int nn_tensor_specs(terse_model *m, int fused, nn_tensor_spec **out, size_t *n) {
    want_list l = {0};
    const float *rf = NULL;
    *out = NULL;
    *n = 0;
    int rc = build_table(m, fused, &l, &rf);
    if (rc) return rc;
    nn_tensor_spec *s = terse_calloc(l.n ? l.n : 1, sizeof *s, "tensor specs");
    if (!s) {
        free(l.w);
        return TERSE_ERR_NOMEM;
    }
    for (size_t k = 0; k < l.n; k++) {
        memcpy(s[k].name, l.w[k].name, sizeof s[k].name);
        s[k].ne0 = l.w[k].ne0, s[k].ne1 = l.w[k].ne1;
        s[k].kind = l.w[k].kind, s[k].optional = l.w[k].optional;
    }
    free(l.w);
    *out = s;
    *n = l.n;
    return TERSE_OK;
}

static int check_tensor(const gguf_tensor *t, const want *w) {
    if (w->vector ? !(t->type == GGML_F32 || t->type == GGML_F16 || t->type == GGML_BF16)
                  : !quant_supported(t->type))
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, supported: %s",
                         w->name, gguf_type_name(t->type),
                         w->vector ? "F32, F16, BF16" : quant_supported_names());
    if (t->ne[0] != w->ne0 || t->ne[1] != w->ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return terse_err(TERSE_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld, %lld, %lld],"
                         " expected [%lld, %lld]", w->name, (long long)t->ne[0],
                         (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                         (long long)w->ne0, (long long)w->ne1);
    if (quant_row_bytes(t->type, t->ne[0]) == 0)
        return terse_err(TERSE_ERR_FORMAT, "model: tensor '%s': row of %lld is not a whole number "
                         "of %s blocks", w->name, (long long)t->ne[0], gguf_type_name(t->type));
    /* quantised blocks: every f16 scale finite (one pass over the block headers) */
    int64_t bad = quant_row_bad_block(t->type, t->data, t->ne[0] * t->ne[1]);
    if (bad >= 0) {
        int64_t per_row = t->ne[0] / quant_block_values(t->type);
        return terse_err(TERSE_ERR_FORMAT, "model: tensor '%s' (%s): block %lld of row %lld has "
                         "a non-finite scale (inf or NaN): corrupt file", w->name,
                         gguf_type_name(t->type), (long long)(bad % per_row),
                         (long long)(bad / per_row));
    }
    return TERSE_OK;
}

static int bind_tensors(terse_model *m) {
    want_list l = {0};
    const float *rope_freqs = NULL;
    int fused = m->d->qkv == NN_QKV_FUSED ||
                (m->d->qkv == NN_QKV_EITHER && gguf_find_tensor(m->g, "blk.0.attn_qkv.weight"));
    if (m->d->arch == NN_ARCH_PHI3 && (gguf_find_tensor(m->g, "rope_factors_long.weight") ||
                                       gguf_find_tensor(m->g, "rope_factors_short.weight")))
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: phi3 with rope_factors_long/short "
                         "(LongRoPE, the 128k models) is not supported");
    int rc = build_table(m, fused, &l, &rope_freqs);
    if (rc) return rc;
    /* pass 1: presence, type, shape; size of the vector block */
    size_t n_vec = 0;
    for (size_t k = 0; k < l.n; k++) {
        const gguf_tensor *t = gguf_find_tensor(m->g, l.w[k].name);
        if (!t) {
            if (l.w[k].optional) continue;
            rc = terse_err(TERSE_ERR_FORMAT, "model: tensor '%s' missing (expected shape "
                           "[%lld, %lld])", l.w[k].name, (long long)l.w[k].ne0,
                           (long long)l.w[k].ne1);
            goto done;
        }
        if ((rc = check_tensor(t, &l.w[k]))) goto done;
        if (l.w[k].vector) n_vec += (size_t)l.w[k].ne0;
    }
    m->vectors = terse_malloc((n_vec ? n_vec : 1) * sizeof(float), "model vectors");
    if (!m->vectors) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    /* pass 2: bind matrices, convert vectors */
    float *p = m->vectors;
    for (size_t k = 0; k < l.n; k++) {
        const want *w = &l.w[k];
        const gguf_tensor *t = gguf_find_tensor(m->g, w->name);
        if (!t) continue;
        if (w->vector) {
            dequantize_row(t->type, t->data, p, w->ne0);
            *w->vec = p;
            p += w->ne0;
        } else {
            nn_matrix *x = w->mat;
            x->type = t->type;
            x->data = t->data;
            x->cols = t->ne[0];
            x->rows = t->ne[1];
            x->row_bytes = quant_row_bytes(t->type, t->ne[0]);
            if (x->cols > m->max_in) m->max_in = x->cols;
        }
    }
    if (!rope_freqs) rope_freqs = m->rope_freqs; /* from rope.scaling.* keys, or NULL */
    if (rope_freqs)
        for (int32_t j = 0; j < m->n_rot / 2; j++)
            if (!(rope_freqs[j] > 0.0f) || !isfinite(rope_freqs[j])) {
                rc = terse_err(TERSE_ERR_FORMAT, "model: rope_freqs.weight[%d] = %g, expected > 0",
                               j, (double)rope_freqs[j]);
                goto done;
            }
    m->rope_freqs = rope_freqs;
    /* output: its own tensor, or tied to the embedding */
    const gguf_tensor *t = gguf_find_tensor(m->g, "output.weight");
    if (t) {
        want w = {.ne0 = m->n_embd, .ne1 = m->n_vocab};
        snprintf(w.name, sizeof w.name, "output.weight");
        if ((rc = check_tensor(t, &w))) goto done;
        /* its own matrix, even when it is a copy of the embedding: nn_output_tied tells */
        m->output = (nn_matrix){t->type, t->data, t->ne[1], t->ne[0], quant_row_bytes(t->type, t->ne[0]), NULL};
    } else {
        m->output = m->tok_embd;
    }
done:
    free(l.w);
    return rc;
}

/* The pages of a file mapping that lie wholly inside [p, p + n) are dropped (MADV_DONTNEED on
 * a private read-only mapping: the page cache keeps them, a later read faults them back in),
 * so that reading a matrix once does not leave it resident. Nothing for a file read into
 * memory (use_mmap 0): there it is the only copy. */
static void give_back(const terse_model *m, const uint8_t *p, size_t n) {
    if (!m->g->file.mapped) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The copy is compared 4 MB at a time, and each piece of both matrices is given back once
 * compared (with the piece before it, for the pages that straddle the two): a packed output
 * is never read through `data` again, and the embedding reads its rows one at a time, so the
 * pass leaves resident memory where it found it (a gpt2-124m F32 file: +295 MB without). */
int nn_output_tied(const terse_model *m) {
    const nn_matrix *o = &m->output, *e = &m->tok_embd;
    if (o->data == e->data) return 1;
    if (o->type != e->type || o->rows != e->rows || o->row_bytes != e->row_bytes) return 0;
    const size_t n = (size_t)o->rows * o->row_bytes, piece = (size_t)4 << 20;
    int same = 1;
    for (size_t off = 0; off < n && same; off += piece) {
        const size_t len = n - off < piece ? n - off : piece, from = off < piece ? 0 : off - piece;
        same = !memcmp(o->data + off, e->data + off, len);
        give_back(m, o->data + from, off + len - from);
        give_back(m, e->data + from, off + len - from);
    }
    return same;
}

/* ---------------------------------------------------------------------------------------- */
/* Load                                                                                      */

/* The k-th matrix a forward multiplies by (8 per layer, then the output). */
static nn_matrix *product_matrix(terse_model *m, int64_t k) {
    if (k == 8 * (int64_t)m->n_layer) return &m->output;
    nn_layer *y = &m->layers[k / 8];
    nn_matrix *c[] = {&y->wq, &y->wk, &y->wv, &y->wqkv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
    return c[k % 8];
}

/* F32 matrices of a mapped file, packed once into the gemm's panel layout (gemm.h): every
 * product then reads the weights in order, with nothing to pack per call. The mapped rows'
 * pages are given back as they are packed, a few MB at a time (give_back: a later read of
 * `data` faults them in again, e.g. for a token embedding tied to the output), so resident
 * memory does not double, not even one matrix's worth. A file read into
 * memory (use_mmap 0) is left as it is: there nothing could be given back; with
 * terse_model_params.pack 0 nothing is packed. The copying runs on a pool of the load's
 * n_threads (the CLI's -t), gone when the load returns: a model holds no threads. */
static void pack_weights(terse_model *m, int n_threads) {
    if (!m->g->file.mapped) return;
    const int64_t n = 8 * (int64_t)m->n_layer + 1;
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        const nn_matrix *x = product_matrix(m, k);
        if (x->data && x->type == GGML_F32) total += nn_gemm_packed_floats(x->rows, x->cols);
    }
    if (total == 0) return;
    m->packed = nn_alloc_big((size_t)total * sizeof(float), "packed weights");
    nn_pool *pool = NULL;
    if (!m->packed || nn_pool_new(n_threads > 0 ? n_threads : terse_default_threads(), &pool)) {
        free(m->packed); /* no room: the products pack as they go */
        m->packed = NULL;
        terse_err_clear();
        return;
    }
    float *dst = m->packed;
    for (int64_t k = 0; k < n; k++) {
        nn_matrix *x = product_matrix(m, k);
        if (!x->data || x->type != GGML_F32) continue;
        /* ~4 MB of rows (whole panels) at a time, each given back (with the block before it,
         * for the straddling pages) once packed: one matrix is never resident twice */
        int64_t blk = ((int64_t)4 << 20) / (int64_t)x->row_bytes / NN_PANEL * NN_PANEL;
        if (blk < NN_PANEL) blk = NN_PANEL;
        for (int64_t r0 = 0; r0 < x->rows; r0 += blk) {
            const int64_t nr = x->rows - r0 < blk ? x->rows - r0 : blk, from = r0 < blk ? 0 : r0 - blk;
            nn_gemm_pack_rows((const float *)(x->data + (size_t)r0 * x->row_bytes), nr, x->cols,
                              dst + r0 * x->cols, pool);
            give_back(m, x->data + (size_t)from * x->row_bytes, (size_t)(r0 + nr - from) * x->row_bytes);
        }
        x->packed = dst;
        dst += nn_gemm_packed_floats(x->rows, x->cols);
    }
    nn_pool_free(pool);
}

static void summarise(terse_model *m) {
    int64_t by_type[GGML_MAX_TYPE] = {0};
    for (uint64_t i = 0; i < m->g->n_tensors; i++) {
        const gguf_tensor *t = &m->g->tensors[i];
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        m->n_params += nel;
        m->file_bytes += (int64_t)t->nbytes;
        if (t->ne[1] > 1 && t->type < GGML_MAX_TYPE) by_type[t->type] += nel;
    }
    int32_t best = GGML_F32;
    for (int32_t k = 0; k < GGML_MAX_TYPE; k++)
        if (by_type[k] > by_type[best]) best = k;
    m->weight_type = best;
}

static int read_arch(terse_model *m) {
    gguf_str a;
    int rc = gguf_get_str(m->g, "general.architecture", &a);
    if (rc) return terse_err(TERSE_ERR_FORMAT, "model: general.architecture missing or not a "
                             "string");
    const nn_arch_desc *d = nn_arch_find(a.ptr, a.len);
    if (!d)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: architecture '%.*s' not supported (%s, "
                         "bert are)", (int)(a.len > 64 ? 64 : a.len), a.ptr, nn_arch_names());
    m->d = d;
    m->arch = d->arch;
    snprintf(m->arch_name, sizeof m->arch_name, "%s", d->name);
    m->rope_neox = d->rope == NN_ROPE_NEOX;
    return TERSE_OK;
}

int terse_model_load(const char *path, terse_model_params p, terse_model **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_model_load: out is NULL");
    *out = NULL;
    if (!path) return terse_err(TERSE_ERR_INVALID, "terse_model_load: path is NULL");
    if (p.n_threads < 0 || p.n_threads > 1024 || (p.pack != 0 && p.pack != 1))
        return terse_err(TERSE_ERR_INVALID, "terse_model_load: bad parameters (n_threads %d, "
                         "pack %d; expected 0..1024, 0/1)", p.n_threads, p.pack);
    terse_model *m = terse_calloc(1, sizeof *m, "model");
    if (!m) return TERSE_ERR_NOMEM;
    int rc = gguf_open(path, p.use_mmap, &m->g);
    if (rc) goto fail;
    gguf_str arch;
    if (gguf_get_str(m->g, "general.architecture", &arch) == 0 && gguf_str_eq(arch, "bert")) {
        if ((rc = nn_encoder_load(m)) || (rc = terse_vocab_from_gguf(m->g, &m->vocab))) goto fail;
        summarise(m);
        *out = m;
        return TERSE_OK;
    }
    if ((rc = read_arch(m)) || (rc = read_hparams(m))) goto fail;
    const gguf_tensor *te = gguf_find_tensor(m->g, "token_embd.weight");
    if (!te) {
        rc = terse_err(TERSE_ERR_FORMAT, "model: tensor 'token_embd.weight' missing");
        goto fail;
    }
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX) {
        rc = terse_err(TERSE_ERR_FORMAT, "model: token_embd.weight has %lld rows",
                       (long long)te->ne[1]);
        goto fail;
    }
    m->n_vocab = (int32_t)te->ne[1];
    int32_t vs = m->n_vocab;
    if ((rc = hp_u32(m->g, m->arch_name, "vocab_size", 0, (uint32_t)m->n_vocab, 1, INT32_MAX, &vs)))
        goto fail;
    if (vs != m->n_vocab) {
        rc = terse_err(TERSE_ERR_FORMAT, "model: %s.vocab_size %d differs from token_embd.weight "
                       "rows %d", m->arch_name, vs, m->n_vocab);
        goto fail;
    }
    m->layers = terse_calloc((size_t)m->n_layer, sizeof *m->layers, "model layers");
    if (!m->layers) {
        rc = TERSE_ERR_NOMEM;
        goto fail;
    }
    if ((rc = bind_tensors(m))) goto fail;
    if (p.pack) pack_weights(m, p.n_threads);
    gguf_str name;
    if (gguf_find(m->g, "general.name") >= 0 && gguf_get_str(m->g, "general.name", &name) == 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len > 127 ? 127 : name.len), name.ptr);
    if ((rc = terse_vocab_from_gguf(m->g, &m->vocab))) goto fail;
    summarise(m);
    *out = m;
    return TERSE_OK;
fail:
    terse_model_free(m);
    return terse_err_wrap(rc, "loading '%s'", path);
}

void terse_model_free(terse_model *m) {
    if (!m) return;
    terse_vocab_free(m->vocab);
    nn_encoder_free(m->enc);
    free(m->vectors);
    free(m->layers);
    free(m->packed);
    gguf_close(m->g);
    free(m);
}

const terse_vocab *terse_model_vocab(const terse_model *m) { return m ? m->vocab : NULL; }

void terse_model_get_info(const terse_model *m, terse_model_info *out) {
    memset(out, 0, sizeof *out);
    if (!m) return;
    out->arch = m->arch_name;
    out->name = m->name;
    out->n_vocab = m->n_vocab;
    out->n_ctx_train = m->n_ctx_train;
    out->n_embd = m->n_embd;
    out->n_layer = m->n_layer;
    out->n_head = m->n_head;
    out->n_head_kv = m->n_head_kv;
    out->n_ff = m->n_ff;
    out->n_params = m->n_params;
    out->file_bytes = m->file_bytes;
    out->weight_type = m->weight_type;
}
