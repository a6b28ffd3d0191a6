/* model.c - loading a GGUF model: architecture, hyper-parameters, and every tensor checked
 * for presence, type and shape before anything runs. Weights stay in the read-only mapping
 * (the model keeps the gguf_file open); only the small 1-D weights (norms, biases) are
 * converted to one f32 block. The vocabulary comes from the same file's tokenizer metadata.
 *
 * Architectures and their llama.cpp names:
 *   llama  token_embd, output_norm, output (absent = tied to token_embd), rope_freqs
 *          (optional), blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 *          ffn_gate, ffn_up, ffn_down}.weight, optional blk.N.attn_{q,k,v,output}.bias
 *   qwen2  the same with blk.N.attn_{q,k,v}.bias required; rotary in NEOX (rotate-half) layout
 *   gpt2   token_embd, position_embd, output_norm(.weight, .bias), output (optional),
 *          blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down}.{weight,bias}
 * Not here: the forward pass (forward.c), rope scaling beyond rope_freqs, MoE, other archs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/encoder.h"
#include "nn/nn.h"
#include "nn/quant.h"
#include "tok/tok.h"

terse_model_params terse_model_default_params(void) {
    terse_model_params p = {.use_mmap = 1, .n_threads = 0};
    return p;
}

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

static int read_hparams(terse_model *m) {
    const gguf_file *g = m->g;
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
    if (m->n_embd % m->n_head != 0)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.embedding_length %d is not a multiple of "
                         "%s.attention.head_count %d", a, m->n_embd, a, m->n_head);
    if (m->n_head % m->n_head_kv != 0)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.attention.head_count %d is not a multiple "
                         "of %s.attention.head_count_kv %d", a, m->n_head, a, m->n_head_kv);
    m->head_dim = m->n_embd / m->n_head;
    int32_t kl = m->head_dim;
    if ((rc = hp_u32(g, a, "attention.key_length", 0, (uint32_t)m->head_dim, 1, 1u << 16, &kl)))
        return rc;
    if (kl != m->head_dim)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s.attention.key_length %d differs from "
                         "embedding_length / head_count = %d", a, kl, m->head_dim);
    if (m->arch == NN_ARCH_GPT2) {
        m->n_rot = 0;
        return hp_f32(g, a, "attention.layer_norm_epsilon", 1e-5f, 0.0f, 1.0f, &m->norm_eps);
    }
    if ((rc = hp_f32(g, a, "attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f, &m->norm_eps)) ||
        (rc = hp_f32(g, a, "rope.freq_base", 10000.0f, 1e-3f, 1e30f, &m->rope_base)) ||
        (rc = hp_u32(g, a, "rope.dimension_count", 0, (uint32_t)m->head_dim, 2,
                     (uint32_t)m->head_dim, &m->n_rot)))
        return rc;
    if (m->n_rot % 2)
        return terse_err(TERSE_ERR_FORMAT, "model: %s.rope.dimension_count %d is odd", a, m->n_rot);
    if (m->n_rot > 1024)
        return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s.rope.dimension_count %d (at most 1024)",
                         a, m->n_rot);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (gguf_find(g, key) >= 0) {
        gguf_str s;
        if ((rc = gguf_get_str(g, key, &s))) return rc;
        if (!gguf_str_eq(s, "none"))
            return terse_err(TERSE_ERR_UNSUPPORTED, "model: %s = '%.*s' (only none supported)",
                             key, (int)(s.len > 32 ? 32 : s.len), s.ptr);
    }
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Tensor table: what the architecture needs, checked, then bound                            */

typedef struct {
    char name[64];
    int64_t ne0, ne1;      /* expected shape; ne1 = 1 for vectors */
    int vector;            /* 1: converted to f32 into m->vectors */
    int optional;
    nn_matrix *mat;        /* destination of a matrix */
    const float **vec;     /* destination of a vector */
} want;

typedef struct {
    want *w;
    size_t n, cap;
} want_list;

static int want_add(want_list *l, int vector, int optional, int64_t ne0, int64_t ne1,
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
    w->ne0 = ne0, w->ne1 = ne1, w->vector = vector, w->optional = optional;
    if (vector) w->vec = dst;
    else w->mat = dst;
    return TERSE_OK;
}

#define MAT(ne0, ne1, dst, fmt) ((rc = want_add(&l, 0, 0, ne0, ne1, dst, fmt, i)))
#define VEC(ne0, dst, fmt) ((rc = want_add(&l, 1, 0, ne0, 1, dst, fmt, i)))
#define VEC_OPT(ne0, dst, fmt) ((rc = want_add(&l, 1, 1, ne0, 1, dst, fmt, i)))

static int build_table(terse_model *m, want_list *out, const float **rope_freqs) {
    want_list l = {0};
    int rc = 0;
    int64_t C = m->n_embd, V = m->n_vocab, F = m->n_ff, KV = (int64_t)m->n_head_kv * m->head_dim;
    int i = 0;
    if (MAT(C, V, &m->tok_embd, "token_embd.weight")) goto done;
    if (m->arch == NN_ARCH_GPT2) {
        if (MAT(C, m->n_ctx_train, &m->pos_embd, "position_embd.weight") ||
            VEC(C, &m->out_norm_b, "output_norm.bias"))
            goto done;
    } else if (VEC_OPT(m->n_rot / 2, rope_freqs, "rope_freqs.weight")) {
        goto done;
    }
    if (VEC(C, &m->out_norm, "output_norm.weight")) goto done;
    for (i = 0; i < m->n_layer; i++) {
        nn_layer *y = &m->layers[i];
        if (VEC(C, &y->attn_norm, "blk.%d.attn_norm.weight") ||
            MAT(C, C, &y->wo, "blk.%d.attn_output.weight") ||
            VEC(C, &y->ffn_norm, "blk.%d.ffn_norm.weight") ||
            MAT(C, F, &y->w_up, "blk.%d.ffn_up.weight") ||
            MAT(F, C, &y->w_down, "blk.%d.ffn_down.weight"))
            goto done;
        if (m->arch == NN_ARCH_GPT2) {
            if (VEC(C, &y->attn_norm_b, "blk.%d.attn_norm.bias") ||
                MAT(C, 3 * C, &y->wqkv, "blk.%d.attn_qkv.weight") ||
                VEC(3 * C, &y->bqkv, "blk.%d.attn_qkv.bias") ||
                VEC(C, &y->bo, "blk.%d.attn_output.bias") ||
                VEC(C, &y->ffn_norm_b, "blk.%d.ffn_norm.bias") ||
                VEC(F, &y->b_up, "blk.%d.ffn_up.bias") ||
                VEC(C, &y->b_down, "blk.%d.ffn_down.bias"))
                goto done;
        } else {
            int opt = m->arch == NN_ARCH_LLAMA;
            if (MAT(C, C, &y->wq, "blk.%d.attn_q.weight") ||
                MAT(C, KV, &y->wk, "blk.%d.attn_k.weight") ||
                MAT(C, KV, &y->wv, "blk.%d.attn_v.weight") ||
                MAT(C, F, &y->w_gate, "blk.%d.ffn_gate.weight") ||
                (rc = want_add(&l, 1, opt, C, 1, &y->bq, "blk.%d.attn_q.bias", i)) ||
                (rc = want_add(&l, 1, opt, KV, 1, &y->bk, "blk.%d.attn_k.bias", i)) ||
                (rc = want_add(&l, 1, opt, KV, 1, &y->bv, "blk.%d.attn_v.bias", i)) ||
                VEC_OPT(C, &y->bo, "blk.%d.attn_output.bias"))
                goto done;
        }
    }
done:
    if (rc) free(l.w);
    else *out = l;
    return rc;
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
    int rc = build_table(m, &l, &rope_freqs);
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
        m->output = (nn_matrix){t->type, t->data, t->ne[1], t->ne[0], quant_row_bytes(t->type, t->ne[0])};
        /* A copy of the embedding (gpt2 files carry one for llama.cpp's loader) is a tied head:
         * one matrix, so that training sees one parameter. memcmp stops at the first
         * difference, so an untied head costs a few bytes of comparison. */
        if (t->type == m->tok_embd.type && m->output.row_bytes == m->tok_embd.row_bytes &&
            !memcmp(m->output.data, m->tok_embd.data, (size_t)m->n_vocab * m->output.row_bytes))
            m->output = m->tok_embd;
    } else {
        m->output = m->tok_embd;
    }
done:
    free(l.w);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Load                                                                                      */

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
    static const struct { const char *name; nn_arch arch; } known[] = {
        {"llama", NN_ARCH_LLAMA}, {"qwen2", NN_ARCH_QWEN2}, {"gpt2", NN_ARCH_GPT2},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (gguf_str_eq(a, known[k].name)) {
            m->arch = known[k].arch;
            snprintf(m->arch_name, sizeof m->arch_name, "%s", known[k].name);
            m->rope_neox = m->arch == NN_ARCH_QWEN2;
            return TERSE_OK;
        }
    return terse_err(TERSE_ERR_UNSUPPORTED, "model: architecture '%.*s' not supported (llama, "
                     "qwen2, gpt2, bert are)", (int)(a.len > 64 ? 64 : a.len), a.ptr);
}

int terse_model_load(const char *path, terse_model_params p, terse_model **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_model_load: out is NULL");
    *out = NULL;
    if (!path) return terse_err(TERSE_ERR_INVALID, "terse_model_load: path is NULL");
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
