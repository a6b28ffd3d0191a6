/* random_encoder.c - a "bert" (encoder + token classifier) GGUF of any shape with seeded random
 * weights, for benchmarks: the speed of an encoder does not depend on its weights' values.
 * The tokenizer is copied from another GGUF (every tokenizer.* key), so a model of
 * xlm-roberta-large's or bert-base's shape can run on a small test vocabulary; ids then only
 * reach the embedding rows that vocabulary covers.
 * Weights ~ N(0, std) (sum of four uniforms), LayerNorm weights 1, biases 0; all F32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/encoder.h"

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    gguf_writer *w;
    float **bufs;
    int n, cap;
    uint64_t seed;
    float std;
} rgen;

static int add(rgen *g, const char *name, int64_t ne0, int64_t ne1, int kind /* 0 rand, 1 ones, 2 zeros */) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        float **b = realloc(g->bufs, (size_t)cap * sizeof *b);
        if (!b) return terse_err(TERSE_ERR_NOMEM, "random encoder: out of memory");
        g->bufs = b, g->cap = cap;
    }
    size_t n = (size_t)(ne0 * ne1);
    float *x = terse_malloc(n * sizeof *x, name);
    if (!x) return TERSE_ERR_NOMEM;
    g->bufs[g->n++] = x;
    uint64_t s = mix64(g->seed ^ ((uint64_t)g->n << 32));
    for (size_t i = 0; i < n; i++) {
        if (kind) {
            x[i] = kind == 1 ? 1.0f : 0.0f;
            continue;
        }
        s = mix64(s);
        float u = 0;
        uint64_t r = s;
        for (int k = 0; k < 4; k++, r >>= 16) u += (float)(r & 0xFFFF) / 65536.0f;
        x[i] = (u - 2.0f) * 1.7320508f * g->std;
    }
    int64_t ne[2] = {ne0, ne1};
    return gguf_writer_add_tensor(g->w, name, GGML_F32, ne1 > 1 ? 2 : 1, ne, x, n * sizeof *x);
}

int nn_write_random_encoder(const char *out, const char *vocab_gguf, int32_t n_vocab, int32_t n_pos,
                            int32_t C, int32_t L, int32_t H, int32_t F, uint64_t seed) {
    if (n_vocab < 1 || n_pos < 1 || C < 1 || L < 1 || H < 1 || F < 1 || C % H)
        return terse_err(TERSE_ERR_INVALID, "random encoder: bad shape");
    gguf_file *vf = NULL;
    int rc = gguf_open(vocab_gguf, 1, &vf);
    if (rc) return rc;
    rgen g = {.w = gguf_writer_new(), .seed = seed, .std = 0.05f};
    if (!g.w) {
        gguf_close(vf);
        return TERSE_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < vf->n_kv && !rc; i++)
        if (vf->kv[i].key.len > 10 && !memcmp(vf->kv[i].key.ptr, "tokenizer.", 10))
            rc = gguf_writer_copy_kv(g.w, &vf->kv[i]);
    if (!rc && ((rc = gguf_writer_set_str(g.w, "general.architecture", "bert")) ||
                (rc = gguf_writer_set_str(g.w, "general.name", "random encoder")) ||
                (rc = gguf_writer_set_u32(g.w, "bert.context_length", (uint32_t)n_pos)) ||
                (rc = gguf_writer_set_u32(g.w, "bert.embedding_length", (uint32_t)C)) ||
                (rc = gguf_writer_set_u32(g.w, "bert.block_count", (uint32_t)L)) ||
                (rc = gguf_writer_set_u32(g.w, "bert.feed_forward_length", (uint32_t)F)) ||
                (rc = gguf_writer_set_u32(g.w, "bert.attention.head_count", (uint32_t)H)) ||
                (rc = gguf_writer_set_f32(g.w, "bert.attention.layer_norm_epsilon", 1e-5f)))) {
        /* rc holds the failure */
    }
    if (!rc) rc = add(&g, "token_embd.weight", C, n_vocab, 0);
    if (!rc) rc = add(&g, "position_embd.weight", C, n_pos, 0);
    if (!rc) rc = add(&g, "token_types.weight", C, 1, 0);
    if (!rc) rc = add(&g, "token_embd_norm.weight", C, 1, 1);
    if (!rc) rc = add(&g, "token_embd_norm.bias", C, 1, 2);
    char k[96];
    static const char *const mats[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    for (int32_t l = 0; l < L && !rc; l++) {
        for (int i = 0; i < 4 && !rc; i++) {
            snprintf(k, sizeof k, "blk.%d.%s.weight", l, mats[i]);
            rc = add(&g, k, C, C, 0);
            snprintf(k, sizeof k, "blk.%d.%s.bias", l, mats[i]);
            if (!rc) rc = add(&g, k, C, 1, 2);
        }
        snprintf(k, sizeof k, "blk.%d.attn_output_norm.weight", l);
        if (!rc) rc = add(&g, k, C, 1, 1);
        snprintf(k, sizeof k, "blk.%d.attn_output_norm.bias", l);
        if (!rc) rc = add(&g, k, C, 1, 2);
        snprintf(k, sizeof k, "blk.%d.ffn_up.weight", l);
        if (!rc) rc = add(&g, k, C, F, 0);
        snprintf(k, sizeof k, "blk.%d.ffn_up.bias", l);
        if (!rc) rc = add(&g, k, F, 1, 2);
        snprintf(k, sizeof k, "blk.%d.ffn_down.weight", l);
        if (!rc) rc = add(&g, k, F, C, 0);
        snprintf(k, sizeof k, "blk.%d.ffn_down.bias", l);
        if (!rc) rc = add(&g, k, C, 1, 2);
        snprintf(k, sizeof k, "blk.%d.layer_output_norm.weight", l);
        if (!rc) rc = add(&g, k, C, 1, 1);
        snprintf(k, sizeof k, "blk.%d.layer_output_norm.bias", l);
        if (!rc) rc = add(&g, k, C, 1, 2);
    }
    if (!rc) rc = add(&g, "cls.weight", C, 2, 0);
    if (!rc) rc = add(&g, "cls.bias", 2, 1, 2);
    if (!rc) rc = gguf_writer_write(g.w, out);
    gguf_writer_free(g.w);
    for (int i = 0; i < g.n; i++) free(g.bufs[i]);
    free(g.bufs);
    gguf_close(vf);
    return rc;
}
