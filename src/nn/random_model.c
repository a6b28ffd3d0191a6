/* random_model.c - write a GGUF model of any supported shape with seeded random weights, in
 * llama.cpp's conventions, so that tests and benchmarks need no downloaded model.
 *
 * Weights ~ N(0, init_std) (a sum of four uniforms, close enough to normal and fast), norm
 * weights 1, biases N(0, init_std); 1-D tensors are F32, matrices in the requested type (Q8_0
 * falls back to F16 for rows that are not whole blocks, as llama.cpp's quantizer does). Each
 * tensor draws from its own stream (seed, tensor index), so the same params give the same
 * bytes. The vocabulary is byte-level BPE ("gpt2") without merges: ids 0..255 are the bytes
 * in GPT-2's byte-to-unicode form, 256 is "<|endoftext|>" (BOS and EOS), the rest are fillers.
 * The tensors are the architecture's table (model.c, nn_tensor_specs), so every architecture
 * the loader knows can be written (phi2 with half-rotary heads, gemma2 with llama.cpp's
 * window and soft-cap defaults written out).
 * Not here: meaningful weights, merges, other tokenizer models.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/nn.h"
#include "nn/quant.h"

/* ---------------------------------------------------------------------------------------- */
/* Random numbers                                                                            */

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* approximately N(0, 1): sum of four 16-bit uniforms, centred and scaled to unit variance */
static float rand_normal(uint64_t *s) {
    *s = mix64(*s);
    uint64_t r = *s;
    float u = 0;
    for (int k = 0; k < 4; k++, r >>= 16) u += (float)(r & 0xFFFF) / 65536.0f;
    return (u - 2.0f) * 1.7320508f;
}

/* ---------------------------------------------------------------------------------------- */
/* Tensors                                                                                   */

typedef struct {
    gguf_writer *w;
    void **bufs;           /* tensor data kept alive until the write */
    int n_bufs, cap_bufs;
    uint32_t type;
    float std;
    uint64_t seed;
    int index;             /* tensor counter: stream id */
    int32_t n_layer;
    int has_output;        /* output.weight written (llama.cpp's type rules differ) */
} gen;

static int keep(gen *g, void *p) {
    if (g->n_bufs == g->cap_bufs) {
        int cap = g->cap_bufs ? 2 * g->cap_bufs : 64;
        void **b = terse_reallocarray(g->bufs, (size_t)cap, sizeof *b, "random model buffers");
        if (!b) return TERSE_ERR_NOMEM;
        g->bufs = b;
        g->cap_bufs = cap;
    }
    g->bufs[g->n_bufs++] = p;
    return TERSE_OK;
}

/* kind: 'w' random matrix, 'n' ones (norm), 'b' random vector (bias). stream: the random
 * stream (0: the next one; a tied output.weight repeats token_embd's). */
static int add_stream(gen *g, const char *name, int64_t ne0, int64_t ne1, char kind, int stream) {
    uint32_t type = GGML_F32;
    if (kind == 'w') type = quant_pick_type(g->type, name, ne0, g->n_layer, g->has_output);
    size_t row = quant_row_bytes(type, ne0), bytes;
    if (!size_mul(row, (size_t)ne1, &bytes))
        return terse_err(TERSE_ERR_NOMEM, "random model: tensor %s too large", name);
    uint8_t *data = terse_malloc(bytes, name);
    if (!data) return TERSE_ERR_NOMEM;
    if (keep(g, data)) {
        free(data);
        return TERSE_ERR_NOMEM;
    }
    float *tmp = terse_malloc((size_t)ne0 * sizeof *tmp, "random model row");
    if (!tmp) return TERSE_ERR_NOMEM;
    uint64_t s = mix64(g->seed ^ mix64((uint64_t)(stream ? stream : ++g->index)));
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t j = 0; j < ne0; j++) tmp[j] = kind == 'n' ? 1.0f : g->std * rand_normal(&s);
        quantize_row(type, tmp, data + (size_t)r * row, ne0);
    }
    free(tmp);
    int64_t ne[2] = {ne0, ne1};
    return gguf_writer_add_tensor(g->w, name, type, ne1 == 1 && kind != 'w' ? 1 : 2, ne, data,
                                  bytes);
}

static int add(gen *g, const char *name, int64_t ne0, int64_t ne1, char kind) {
    return add_stream(g, name, ne0, ne1, kind, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Vocabulary                                                                                */

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest are shifted to
 * code points 256, 257, ... in byte order. */
static uint32_t byte_to_unicode(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    uint32_t n = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174 && k <= 255))) n++;
    return 256 + n;
}

static int write_vocab(gguf_writer *w, int32_t n_vocab) {
    char **tok = terse_calloc((size_t)n_vocab, sizeof *tok, "random vocab");
    int32_t *type = terse_calloc((size_t)n_vocab, sizeof *type, "random vocab types");
    char *arena = terse_malloc((size_t)n_vocab * 24, "random vocab pieces");
    int rc = TERSE_ERR_NOMEM;
    if (!tok || !type || !arena) goto done;
    for (int32_t i = 0; i < n_vocab; i++) {
        char *p = arena + (size_t)i * 24;
        if (i < 256) {
            p[terse_utf8_encode(byte_to_unicode(i), p)] = 0;
            type[i] = 1; /* normal */
        } else if (i == 256) {
            snprintf(p, 24, "<|endoftext|>");
            type[i] = 3; /* control */
        } else {
            snprintf(p, 24, "<|fill_%d|>", i);
            type[i] = 1;
        }
        tok[i] = p;
    }
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, NULL,
                                      (uint64_t)n_vocab)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n_vocab)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, NULL, 0)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 256)))
        goto done;
done:
    free(tok);
    free(type);
    free(arena);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The model                                                                                 */

#define RANDOM_MAX_BYTES (16.0 * (1 << 30)) /* weights held in memory before the write */

/* The loader's view of the shape: the architecture's description and what it derives. */
static int shape_model(const terse_random_params *p, terse_model *m) {
    if (!p->arch || !(m->d = nn_arch_find(p->arch, strlen(p->arch))))
        return terse_err(TERSE_ERR_UNSUPPORTED, "random model: architecture '%s' (%s)",
                         p->arch ? p->arch : "(null)", nn_arch_names());
    if (!quant_can_write_file((uint32_t)p->type))
        return terse_err(TERSE_ERR_UNSUPPORTED, "random model: type %d (F32, F16, BF16, Q8_0, "
                         "Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M)", (int)p->type);
    const struct { const char *name; int32_t v, lo, hi; } dims[] = {
        {"n_vocab", p->n_vocab, 257, 1 << 24}, {"n_ctx", p->n_ctx, 1, 1 << 24},
        {"n_embd", p->n_embd, 1, 1 << 16},     {"n_layer", p->n_layer, 1, 4096},
        {"n_head", p->n_head, 1, 1 << 16},     {"n_head_kv", p->n_head_kv, 0, 1 << 16},
        {"n_ff", p->n_ff, 1, 1 << 20},
    }; /* the loader's limits (src/nn/model.c) */
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < dims[i].lo || dims[i].v > dims[i].hi)
            return terse_err(TERSE_ERR_INVALID, "random model: %s = %d, expected %d..%d",
                             dims[i].name, dims[i].v, dims[i].lo, dims[i].hi);
    const nn_arch_desc *d = m->d;
    int32_t hkv = p->n_head_kv ? p->n_head_kv : p->n_head;
    if (p->n_embd % p->n_head || p->n_head % hkv)
        return terse_err(TERSE_ERR_INVALID, "random model: n_embd %d, n_head %d, n_head_kv %d do "
                         "not divide", p->n_embd, p->n_head, hkv);
    if (d->qkv == NN_QKV_FUSED && d->pos_embd && hkv != p->n_head)
        return terse_err(TERSE_ERR_INVALID, "random model: %s has n_head_kv = n_head", d->name);
    int32_t D = p->n_embd / p->n_head;
    /* phi2 rotates half of each head (partial_rotary_factor 0.5, as phi-2 has) */
    int32_t n_rot = d->rope == NN_ROPE_NONE ? 0 : d->arch == NN_ARCH_PHI2 ? D / 2 : D;
    if (d->rope != NN_ROPE_NONE && (n_rot < 2 || n_rot % 2))
        return terse_err(TERSE_ERR_INVALID, "random model: %d rotary dimensions per head (head "
                         "dim %d) must be even", n_rot, D);
    if (!(p->init_std >= 0.0f) || p->tie_output < 0 || p->tie_output > 2)
        return terse_err(TERSE_ERR_INVALID, "random model: init_std %g, tie_output %d",
                         (double)p->init_std, p->tie_output);
    m->arch = d->arch;
    m->n_vocab = p->n_vocab, m->n_ctx_train = p->n_ctx, m->n_embd = p->n_embd;
    m->n_layer = p->n_layer, m->n_head = p->n_head, m->n_head_kv = hkv, m->n_ff = p->n_ff;
    m->head_dim = D, m->n_q = p->n_embd, m->n_rot = n_rot;
    return TERSE_OK;
}

/* Tied output: gpt2 and gemma tie by default, the others write output.weight. */
static int is_tied(const terse_random_params *p, const nn_arch_desc *d) {
    return p->tie_output == 1 ||
           (p->tie_output == 0 && (d->arch == NN_ARCH_GPT2 || d->arch == NN_ARCH_GEMMA ||
                                   d->arch == NN_ARCH_GEMMA2));
}

/* output.weight is written: untied, or gpt2 (llama.cpp's gpt2 loader requires it; a tied head
 * is written as a copy of token_embd's values). */
static int has_output(const terse_random_params *p, const nn_arch_desc *d) {
    return !is_tied(p, d) || d->arch == NN_ARCH_GPT2;
}

/* Every tensor is held in memory until the write: refuse shapes past RANDOM_MAX_BYTES before
 * allocating anything. Counted in double (exact enough, cannot overflow). */
static int check_size(const terse_random_params *p, const terse_model *m,
                      const nn_tensor_spec *t, size_t n) {
    double n_w = has_output(p, m->d) ? (double)m->n_vocab * m->n_embd : 0;
    for (size_t k = 0; k < n; k++)
        if (t[k].kind == 'w') n_w += (double)t[k].ne0 * (double)t[k].ne1;
    double per_w = p->type == TERSE_TYPE_F32 ? 4.0 : 2.0; /* quantised types: at most 2 */
    double bytes = n_w * per_w;
    if (bytes > RANDOM_MAX_BYTES)
        return terse_err(TERSE_ERR_INVALID, "random model: %.3g weights (%.1f GiB) exceed the "
                         "%.0f GiB this writer holds in memory (n_vocab %d, n_embd %d, n_layer "
                         "%d, n_ff %d)", n_w, bytes / (1 << 30), RANDOM_MAX_BYTES / (1 << 30),
                         p->n_vocab, p->n_embd, p->n_layer, p->n_ff);
    return TERSE_OK;
}

static int set_hparams(gguf_writer *w, const terse_random_params *p, const terse_model *m) {
    const nn_arch_desc *d = m->d;
    const char *a = d->name;
    char name[96];
    int rc;
    snprintf(name, sizeof name, "terse-random-%s", a);
#define KEY(s) (snprintf(key, sizeof key, "%s." s, a), key)
    char key[128];
    if ((rc = gguf_writer_set_str(w, "general.architecture", a)) ||
        (rc = gguf_writer_set_str(w, "general.name", name)) ||
        (rc = gguf_writer_set_u32(w, "general.file_type", quant_file_type((uint32_t)p->type))) ||
        (p->type != TERSE_TYPE_F32 && p->type != TERSE_TYPE_F16 && p->type != TERSE_TYPE_BF16 &&
         (rc = gguf_writer_set_u32(w, "general.quantization_version", 2))) ||
        (rc = gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)p->n_ctx)) ||
        (rc = gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)p->n_embd)) ||
        (rc = gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)p->n_layer)) ||
        (rc = gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)p->n_ff)) ||
        (rc = gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)p->n_head)))
        return rc;
    if (d->norm == NN_NORM_LAYER &&
        (rc = gguf_writer_set_f32(w, KEY("attention.layer_norm_epsilon"), d->eps)))
        return rc;
    if (d->rope == NN_ROPE_NONE) return TERSE_OK;
    if ((rc = gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)m->n_head_kv)) ||
        (d->norm == NN_NORM_RMS &&
         (rc = gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), d->eps))) ||
        (rc = gguf_writer_set_f32(w, KEY("rope.freq_base"), d->theta)) ||
        (rc = gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)m->n_rot)))
        return rc;
    if (d->arch == NN_ARCH_GEMMA2 && /* llama.cpp's defaults, written out */
        ((rc = gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)d->swa)) ||
         (rc = gguf_writer_set_f32(w, KEY("attn_logit_softcapping"), d->attn_softcap)) ||
         (rc = gguf_writer_set_f32(w, KEY("final_logit_softcapping"), d->final_softcap))))
        return rc;
#undef KEY
    return TERSE_OK;
}

/* The architecture's tensors in table order, output.weight (unless tied) after the globals;
 * optional tensors are left out. A tied gpt2 head is written as a copy of token_embd (its
 * random stream, 1, encoded in the output's own type). */
static int add_tensors(gen *g, const terse_random_params *p, const terse_model *m,
                       const nn_tensor_spec *t, size_t n) {
    int rc, out_done = !has_output(p, m->d);
    g->n_layer = m->n_layer;
    g->has_output = has_output(p, m->d);
    for (size_t k = 0; k < n; k++) {
        if (!out_done && !strncmp(t[k].name, "blk.", 4)) {
            rc = is_tied(p, m->d) ? add_stream(g, "output.weight", m->n_embd, m->n_vocab, 'w', 1)
                                  : add(g, "output.weight", m->n_embd, m->n_vocab, 'w');
            if (rc) return rc;
            out_done = 1;
        }
        if (t[k].optional) continue;
        if ((rc = add(g, t[k].name, t[k].ne0, t[k].ne1, t[k].kind))) return rc;
    }
    return TERSE_OK;
}

int terse_write_random_model(const char *out_path, const terse_random_params *p) {
    if (!out_path || !p) return terse_err(TERSE_ERR_INVALID, "terse_write_random_model: NULL argument");
    terse_model m = {0};
    nn_tensor_spec *specs = NULL;
    size_t n_specs = 0;
    int rc = shape_model(p, &m);
    if (rc) return rc;
    if (!(m.layers = terse_calloc((size_t)m.n_layer, sizeof *m.layers, "random model layers")))
        return TERSE_ERR_NOMEM;
    rc = nn_tensor_specs(&m, m.d->qkv == NN_QKV_FUSED || m.d->arch == NN_ARCH_PHI3, &specs,
                         &n_specs);
    free(m.layers);
    if (rc || (rc = check_size(p, &m, specs, n_specs))) {
        free(specs);
        return rc;
    }
    gen g = {.type = (uint32_t)p->type, .std = p->init_std > 0 ? p->init_std : 0.02f,
             .seed = p->seed};
    if (!(g.w = gguf_writer_new())) {
        free(specs);
        return terse_err(TERSE_ERR_NOMEM, "random model: writer");
    }
    if (!(rc = set_hparams(g.w, p, &m)) && !(rc = write_vocab(g.w, p->n_vocab)) &&
        !(rc = add_tensors(&g, p, &m, specs, n_specs)))
        rc = gguf_writer_write(g.w, out_path);
    gguf_writer_free(g.w);
    for (int i = 0; i < g.n_bufs; i++) free(g.bufs[i]);
    free(g.bufs);
    free(specs);
    return rc;
}
