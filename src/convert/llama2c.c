/* llama2c.c - llama2.c checkpoints (Karpathy's legacy "version 0" format) and their
 * tokenizer files -> a `llama` GGUF that follows llama.cpp's conventions.
 *
 * Checkpoint: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; vocab_size < 0 means the classifier is a separate matrix), then f32
 * arrays: token embedding (V, C), attention RMSNorm (L, C), wq (L, C, C), wk (L, KV, C),
 * wv (L, KV, C), wo (L, C, C), FFN RMSNorm (L, C), w1 (L, H, C), w2 (L, C, H), w3 (L, H, C),
 * final RMSNorm (C), the legacy RoPE tables freq_cis_real/imag (S, D/2 each; skipped), and
 * the classifier (V, C) when vocab_size < 0. C = dim, H = hidden_dim, D = C / n_heads,
 * KV = D * n_kv_heads, S = seq_len. The file size must match the header exactly.
 *
 * llama2.c rotates adjacent pairs (x[2i], x[2i+1]) with theta 10000 and normalises with
 * eps 1e-5: that is llama.cpp's `llama` layout, so q/k are copied without permutation.
 *
 * Tokenizer (tok512.bin and friends): int32 max_token_length, then per token a f32 score,
 * an int32 byte length and the bytes. Pieces use real spaces; they become U+2581 as
 * SentencePiece stores them. BOS/EOS are stored as "\n<s>\n" / "\n</s>\n" by llama2.c's
 * exporter and are written as "<s>" / "</s>".
 *
 * Not handled: llama2.c's newer export versions 1 and 2 (256-byte header starting with the
 * uint32 0x616b3432, "ak42"), which are recognised and refused.
 */
#include "convert/convert.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} l2c_config;

/* ---------------------------------------------------------------------------------------- */
/* Checkpoint header                                                                          */

/* Checks the header against sanity limits and the file size; *shared = classifier is the
 * embedding table. */
static int check_checkpoint(const terse_file *f, const char *path, l2c_config *c, int *shared) {
    uint32_t magic = 0;
    if (f->size >= 8) memcpy(&magic, f->data, 4);
    if (magic == 0x616b3432u) { /* "ak42" as a little-endian uint32, then int32 version */
        int32_t version;
        memcpy(&version, f->data + 4, 4);
        return terse_err(TERSE_ERR_UNSUPPORTED, "llama2c: '%s' is a version %d llama2.c export "
                         "(magic ak42); only the legacy (version 0) format is supported", path,
                         (int)version);
    }
    if (f->size < sizeof *c)
        return terse_err(TERSE_ERR_FORMAT, "llama2c: '%s' has %zu bytes, shorter than the "
                         "28-byte header", path, f->size);
    memcpy(c, f->data, sizeof *c);
    *shared = c->vocab_size > 0;
    const struct { const char *name; int32_t v, max; } dims[] = {
        {"dim", c->dim, 1 << 16}, {"hidden_dim", c->hidden_dim, 1 << 20},
        {"n_layers", c->n_layers, 1 << 10}, {"n_heads", c->n_heads, 1 << 10},
        {"n_kv_heads", c->n_kv_heads, 1 << 10},
        {"vocab_size", c->vocab_size == INT32_MIN ? 0 : abs(c->vocab_size), 1 << 24},
        {"seq_len", c->seq_len, 1 << 24},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v <= 0 || dims[i].v > dims[i].max)
            return terse_err(TERSE_ERR_FORMAT, "llama2c: '%s': %s = %d (must be 1..%d)", path,
                             dims[i].name, (int)dims[i].v, (int)dims[i].max);
    c->vocab_size = abs(c->vocab_size);
    if (c->dim % c->n_heads != 0 || (c->dim / c->n_heads) % 2 != 0)
        return terse_err(TERSE_ERR_FORMAT, "llama2c: '%s': dim %d is not n_heads %d times an "
                         "even head size", path, (int)c->dim, (int)c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return terse_err(TERSE_ERR_FORMAT, "llama2c: '%s': n_heads %d is not a multiple of "
                         "n_kv_heads %d", path, (int)c->n_heads, (int)c->n_kv_heads);

    /* Expected float count; every factor is bounded above, so 64-bit arithmetic is exact. */
    uint64_t C = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t V = (uint64_t)c->vocab_size, S = (uint64_t)c->seq_len;
    uint64_t D = C / (uint64_t)c->n_heads, KV = D * (uint64_t)c->n_kv_heads;
    uint64_t n = V * C + L * (C + C * C + 2 * KV * C + C * C + C + 3 * H * C) + C + S * D;
    if (!*shared) n += V * C;
    uint64_t want = sizeof *c + 4 * n;
    if ((uint64_t)f->size != want)
        return terse_err(TERSE_ERR_FORMAT, "llama2c: '%s' has %zu bytes but its header (dim %d, "
                         "hidden %d, layers %d, heads %d/%d, vocab %d%s, seq_len %d) needs %llu",
                         path, f->size, (int)c->dim, (int)c->hidden_dim, (int)c->n_layers,
                         (int)c->n_heads, (int)c->n_kv_heads, (int)c->vocab_size,
                         *shared ? "" : " + classifier", (int)c->seq_len,
                         (unsigned long long)want);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokenizer file -> tokenizer.ggml.* metadata                                                */

static int is_byte_piece(const uint8_t *s, int32_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    for (int i = 3; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F'))) return 0;
    return 1;
}

static int write_tokenizer(gguf_writer *w, const char *path, int32_t n_vocab) {
    terse_file f;
    int rc = terse_file_open(path, 1, &f);
    if (rc) return terse_err_wrap(rc, "llama2c tokenizer");
    char **piece = terse_calloc((size_t)n_vocab, sizeof *piece, "llama2c pieces");
    uint64_t *len = terse_calloc((size_t)n_vocab, sizeof *len, "llama2c piece lengths");
    float *score = terse_calloc((size_t)n_vocab, sizeof *score, "llama2c scores");
    int32_t *ttype = terse_calloc((size_t)n_vocab, sizeof *ttype, "llama2c token types");
    if (!piece || !len || !score || !ttype) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    size_t pos = 4;
    int32_t max_len;
    if (f.size < 4) {
        rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': %zu bytes, no header", path,
                       f.size);
        goto done;
    }
    memcpy(&max_len, f.data, 4);
    if (max_len <= 0 || max_len > (1 << 20)) {
        rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': max_token_length %d", path,
                       (int)max_len);
        goto done;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        int32_t n;
        if (f.size - pos < 8) {
            rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': truncated at token %d of "
                           "%d (byte %zu of %zu)", path, (int)i, (int)n_vocab, pos, f.size);
            goto done;
        }
        memcpy(&score[i], f.data + pos, 4);
        memcpy(&n, f.data + pos + 4, 4);
        pos += 8;
        if (n < 0 || n > max_len || (size_t)n > f.size - pos) {
            rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': token %d has length %d "
                           "(max_token_length %d, %zu bytes left)", path, (int)i, (int)n,
                           (int)max_len, f.size - pos);
            goto done;
        }
        const uint8_t *s = f.data + pos;
        pos += (size_t)n;
        if (score[i] != score[i]) {
            rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': token %d has a NaN score",
                           path, (int)i);
            goto done;
        }
        /* Special pieces as llama2.c's exporter wrote them -> SentencePiece's. */
        if (i == 1 && n == 5 && memcmp(s, "\n<s>\n", 5) == 0) s = (const uint8_t *)"<s>", n = 3;
        if (i == 2 && n == 6 && memcmp(s, "\n</s>\n", 6) == 0) s = (const uint8_t *)"</s>", n = 4;
        /* Spaces -> U+2581 (3 bytes each). */
        size_t spaces = 0;
        for (int32_t k = 0; k < n; k++) spaces += s[k] == ' ';
        char *p = terse_malloc((size_t)n + 2 * spaces + 1, "llama2c piece");
        if (!p) {
            rc = TERSE_ERR_NOMEM;
            goto done;
        }
        size_t m = 0;
        for (int32_t k = 0; k < n; k++) {
            if (s[k] == ' ') {
                memcpy(p + m, "\xe2\x96\x81", 3);
                m += 3;
            } else {
                p[m++] = (char)s[k];
            }
        }
        p[m] = 0;
        piece[i] = p;
        len[i] = m;
        ttype[i] = i == 0 ? 2 : (i == 1 || i == 2) ? 3 : is_byte_piece(s, n) ? 6 : 1;
    }
    if (pos != f.size) {
        rc = terse_err(TERSE_ERR_FORMAT, "llama2c tokenizer '%s': %zu bytes left after %d tokens "
                       "(vocab size mismatch with the checkpoint?)", path, f.size - pos,
                       (int)n_vocab);
        goto done;
    }
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)piece, len,
                                      (uint64_t)n_vocab)) ||
        (rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", score, (uint64_t)n_vocab)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", ttype, (uint64_t)n_vocab)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)))
        goto done;
done:
    if (piece)
        for (int32_t i = 0; i < n_vocab; i++) free(piece[i]);
    free(piece);
    free(len);
    free(score);
    free(ttype);
    terse_file_close(&f);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Weights                                                                                    */

/* General name from the checkpoint's file name: basename without extension. */
static void model_name(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b) n = (size_t)(dot - b);
    if (n >= cap) n = cap - 1;
    memcpy(out, b, n);
    out[n] = 0;
}

int terse_convert_llama2c(const char *ckpt_path, const char *tok_path, const char *out_path,
                          terse_type type) {
    if (!ckpt_path || !tok_path || !out_path)
        return terse_err(TERSE_ERR_INVALID, "llama2c: NULL path");
    terse_file f;
    conv_out o;
    l2c_config c;
    int shared = 1, rc = conv_begin(&o, type);
    if (rc) {
        conv_end(&o);
        return rc;
    }
    if ((rc = terse_file_open(ckpt_path, 1, &f))) {
        conv_end(&o);
        return terse_err_wrap(rc, "llama2c checkpoint");
    }
    if ((rc = check_checkpoint(&f, ckpt_path, &c, &shared))) goto done;
    o.n_layer = c.n_layers;
    o.has_output = !shared;

    char name[256];
    model_name(ckpt_path, name, sizeof name);
    int32_t head_dim = c.dim / c.n_heads, kv_dim = head_dim * c.n_kv_heads;
    gguf_writer *w = o.w;
    if ((rc = gguf_writer_set_str(w, "general.architecture", "llama")) ||
        (rc = gguf_writer_set_str(w, "general.name", name)) ||
        (rc = gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c.vocab_size)) ||
        (rc = gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c.seq_len)) ||
        (rc = gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c.dim)) ||
        (rc = gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c.n_layers)) ||
        (rc = gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c.hidden_dim)) ||
        (rc = gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c.n_heads)) ||
        (rc = gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads)) ||
        (rc = gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim)) ||
        (rc = gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f)) ||
        (rc = gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)))
        goto done;
    if ((rc = write_tokenizer(w, tok_path, c.vocab_size))) goto done;

    /* The arrays in file order. Per-layer arrays are stacked (L, rows, cols) and become
     * blk.N tensors, written layer by layer as llama.cpp orders them. */
    const int64_t C = c.dim, H = c.hidden_dim, V = c.vocab_size, KV = kv_dim;
    enum { EMBD, ATTN_NORM, WQ, WK, WV, WO, FFN_NORM, W1, W2, W3, OUT_NORM, N_ARRAYS };
    const struct { const char *name; int64_t rows, cols; int vec; } arrays[N_ARRAYS] = {
        [EMBD] = {"token_embd", V, C, 0},    [ATTN_NORM] = {"attn_norm", 1, C, 1},
        [WQ] = {"attn_q", C, C, 0},          [WK] = {"attn_k", KV, C, 0},
        [WV] = {"attn_v", KV, C, 0},         [WO] = {"attn_output", C, C, 0},
        [FFN_NORM] = {"ffn_norm", 1, C, 1},  [W1] = {"ffn_gate", H, C, 0},
        [W2] = {"ffn_down", C, H, 0},        [W3] = {"ffn_up", H, C, 0},
        [OUT_NORM] = {"output_norm", 1, C, 1},
    };
    float *base[N_ARRAYS];
    float *p = (float *)(f.data + sizeof c); /* 4-aligned: the mapping + 28 */
    for (int a = 0; a < N_ARRAYS; a++) {
        base[a] = p;
        int stacked = a != EMBD && a != OUT_NORM;
        p += arrays[a].rows * arrays[a].cols * (stacked ? c.n_layers : 1);
    }
    char tname[64];
    int64_t ne[2] = {C, V};
    if ((rc = conv_add_f32(&o, "token_embd.weight", 2, ne, base[EMBD], 0))) goto done;
    for (int l = 0; l < c.n_layers; l++)
        for (int a = ATTN_NORM; a <= W3; a++) {
            snprintf(tname, sizeof tname, "blk.%d.%s.weight", l, arrays[a].name);
            ne[0] = arrays[a].cols;
            ne[1] = arrays[a].rows;
            float *src = base[a] + l * arrays[a].rows * arrays[a].cols;
            if ((rc = conv_add_f32(&o, tname, arrays[a].vec ? 1 : 2, ne, src, 0))) goto done;
        }
    ne[0] = C;
    if ((rc = conv_add_f32(&o, "output_norm.weight", 1, ne, base[OUT_NORM], 0))) goto done;
    p += (int64_t)c.seq_len * head_dim; /* freq_cis_real + freq_cis_imag, (S, D/2) each */
    if (!shared) {
        ne[0] = C;
        ne[1] = V;
        if ((rc = conv_add_f32(&o, "output.weight", 2, ne, p, 0))) goto done;
    }
    rc = conv_write(&o, out_path);
done:
    conv_end(&o);
    terse_file_close(&f);
    return rc;
}
