/* test_convert.c - model converters: stories260K (llama2.c checkpoint) end to end, synthetic
 * Hugging Face folders (names, q/k permutation, Conv1D transposition, dtypes, shards), and
 * one hostile input per failure class for both readers.
 *
 * The end-to-end check: the converted stories260K, decoding greedily from BOS for llama2.c's
 * default 256 steps (`./run stories260K.bin -z tok512.bin -t 0.0`), must print exactly the
 * text in ../shared/models/stories260K/README.md.
 */
#include "harness.h"
#include "terse.h"
#include "gguf/gguf.h"
#include "nn/quant.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int64_t get_u32(const gguf_file *g, const char *key) {
    uint32_t v;
    return gguf_get_u32(g, key, &v) == 0 ? (int64_t)v : -1;
}

static int str_is(const gguf_file *g, const char *key, const char *want) {
    gguf_str s;
    return gguf_get_str(g, key, &s) == 0 && gguf_str_eq(s, want);
}

/* The tensor as f32 (any supported type); NULL if absent. Caller frees. */
static float *tensor_f32(const gguf_file *g, const char *name, int64_t *n_out) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) return NULL;
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3], rows = n / t->ne[0];
    float *f = malloc((size_t)n * sizeof *f);
    size_t rb = quant_row_bytes(t->type, t->ne[0]);
    for (int64_t r = 0; r < rows; r++)
        dequantize_row(t->type, (const uint8_t *)t->data + r * rb, f + r * t->ne[0], t->ne[0]);
    *n_out = n;
    return f;
}

/* ---------------------------------------------------------------------------------------- */
/* stories260K                                                                                */

static char ckpt[512], tokf[512];

static void test_stories_structure(void) {
    char out[256];
    tmp_path(out, sizeof out, "s_F32.gguf");
    CHECK_OK(terse_convert_llama2c(ckpt, tokf, out, TERSE_TYPE_F32));
    gguf_file *g;
    CHECK_OK(gguf_open(out, 1, &g));
    if (!g) return;
    CHECK(str_is(g, "general.architecture", "llama"), "arch");
    CHECK(get_u32(g, "llama.context_length") == 512, "context_length");
    CHECK(get_u32(g, "llama.embedding_length") == 64, "embedding_length");
    CHECK(get_u32(g, "llama.block_count") == 5, "block_count");
    CHECK(get_u32(g, "llama.feed_forward_length") == 172, "ffn");
    CHECK(get_u32(g, "llama.attention.head_count") == 8, "heads");
    CHECK(get_u32(g, "llama.attention.head_count_kv") == 4, "kv heads");
    CHECK(get_u32(g, "llama.rope.dimension_count") == 8, "rope dims");
    float eps = 0;
    CHECK(gguf_get_f32_or(g, "llama.attention.layer_norm_rms_epsilon", 0, &eps) == 0 && eps == 1e-5f,
          "eps %g", eps);
    CHECK(g->n_tensors == 1 + 5 * 9 + 1, "n_tensors %llu (tied output: no output.weight)",
          (unsigned long long)g->n_tensors);
    CHECK(gguf_find_tensor(g, "output.weight") == NULL, "no output.weight when shared");
    const gguf_tensor *t = gguf_find_tensor(g, "blk.4.attn_k.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 32 && t->type == GGML_F32, "attn_k shape");
    t = gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK(t && t->ne[0] == 172 && t->ne[1] == 64, "ffn_down shape");

    /* Tokenizer metadata. */
    CHECK(str_is(g, "tokenizer.ggml.model", "llama"), "tokenizer model");
    const gguf_kv *tok = NULL, *tt = NULL, *sc = NULL;
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tok));
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &tt));
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32, &sc));
    if (tok && tt && sc) {
        CHECK(tok->n == 512 && tt->n == 512 && sc->n == 512, "vocab arrays");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 0), "<unk>") && gguf_arr_i32(tt, 0) == 2, "unk");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 1), "<s>") && gguf_arr_i32(tt, 1) == 3, "bos");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 2), "</s>") && gguf_arr_i32(tt, 2) == 3, "eos");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 3), "<0x00>") && gguf_arr_i32(tt, 3) == 6, "byte 0");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 258), "<0xFF>") && gguf_arr_i32(tt, 258) == 6, "byte ff");
        CHECK(gguf_str_eq(gguf_arr_str(tok, 259), "\xe2\x96\x81t") && gguf_arr_i32(tt, 259) == 1,
              "space -> U+2581");
        CHECK(gguf_arr_f32(sc, 260) == -1.0f, "score");
    }
    CHECK(get_u32(g, "tokenizer.ggml.bos_token_id") == 1, "bos id");
    CHECK(get_u32(g, "tokenizer.ggml.eos_token_id") == 2, "eos id");

    /* Values: the embedding table and the last layer's w3 are the checkpoint's floats. */
    size_t n;
    uint8_t *raw = (uint8_t *)test_read_file(ckpt, &n);
    if (raw) {
        const gguf_tensor *e = gguf_find_tensor(g, "token_embd.weight");
        CHECK(e && e->nbytes == 512 * 64 * 4 && memcmp(e->data, raw + 28, e->nbytes) == 0,
              "token_embd bytes");
        /* w3 is the 10th array: offset = 28 + 4 * (V*C + L*(C + C*C + 2*KV*C + C*C + C + 2*H*C)) */
        size_t off = 28 + 4 * (size_t)(512 * 64 + 5 * (64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 2 * 172 * 64));
        const gguf_tensor *u = gguf_find_tensor(g, "blk.0.ffn_up.weight");
        CHECK(u && memcmp(u->data, raw + off, 172 * 64 * 4) == 0, "blk.0.ffn_up bytes");
        const gguf_tensor *u4 = gguf_find_tensor(g, "blk.4.ffn_up.weight");
        CHECK(u4 && memcmp(u4->data, raw + off + 4 * 4 * 172 * 64, 172 * 64 * 4) == 0,
              "blk.4.ffn_up bytes");
        const gguf_tensor *on = gguf_find_tensor(g, "output_norm.weight");
        CHECK(on && memcmp(on->data, raw + off + 5 * 4 * 172 * 64, 64 * 4) == 0, "output_norm bytes");
        free(raw);
    }
    gguf_close(g);
}

/* F16 / BF16 / Q8_0: types per tensor (norms F32; Q8_0 rows of 172 fall back to F16) and
 * values within the type's rounding. */
static void test_stories_types(void) {
    const struct { terse_type type; const char *name; double tol; } cases[] = {
        {TERSE_TYPE_F16, "F16", 1e-3}, {TERSE_TYPE_BF16, "BF16", 8e-3}, {TERSE_TYPE_Q8_0, "Q8_0", 1e-2},
    };
    char ref_path[256];
    tmp_path(ref_path, sizeof ref_path, "s_F32.gguf");
    gguf_file *ref;
    if (gguf_open(ref_path, 1, &ref) != 0) return;
    for (size_t c = 0; c < 3; c++) {
        char out[256];
        snprintf(out, sizeof out, "%s/s_%s.gguf", tmpdir, cases[c].name);
        CHECK_OK(terse_convert_llama2c(ckpt, tokf, out, cases[c].type));
        gguf_file *g;
        if (gguf_open(out, 1, &g) != 0) {
            CHECK(0, "open %s: %s", out, terse_last_error());
            continue;
        }
        const gguf_tensor *t = gguf_find_tensor(g, "blk.2.attn_q.weight");
        CHECK(t && t->type == (uint32_t)cases[c].type, "%s attn_q type", cases[c].name);
        t = gguf_find_tensor(g, "blk.2.attn_norm.weight");
        CHECK(t && t->type == GGML_F32, "%s norm stays F32", cases[c].name);
        t = gguf_find_tensor(g, "blk.2.ffn_down.weight");
        uint32_t want = cases[c].type == TERSE_TYPE_Q8_0 ? GGML_F16 : (uint32_t)cases[c].type;
        CHECK(t && t->type == want, "%s ffn_down type %u (rows of 172)", cases[c].name,
              t ? t->type : 99);
        double worst = 0;
        for (uint64_t i = 0; i < ref->n_tensors; i++) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)ref->tensors[i].name.len,
                     ref->tensors[i].name.ptr);
            int64_t na, nb;
            float *a = tensor_f32(ref, name, &na), *b = tensor_f32(g, name, &nb);
            CHECK(a && b && na == nb, "%s %s present", cases[c].name, name);
            double amax = 0, err = 0;
            for (int64_t k = 0; a && b && na == nb && k < na; k++) {
                amax = fmax(amax, fabs(a[k]));
                err = fmax(err, fabs(a[k] - b[k]));
            }
            if (amax > 0) worst = fmax(worst, err / amax);
            free(a);
            free(b);
        }
        printf("stories260K %s: worst relative error %.3g (of each tensor's max |w|)\n",
               cases[c].name, worst);
        CHECK(worst < cases[c].tol, "%s error %g", cases[c].name, worst);
        gguf_close(g);
    }
    gguf_close(ref);
}

/* The README's text block. Caller frees. */
static char *readme_golden(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/stories260K/README.md", test_shared_dir());
    size_t n;
    char *s = test_read_file(path, &n);
    if (!s) return NULL;
    s[n] = 0;
    char *h = strstr(s, "## Golden output");
    char *b = h ? strstr(h, "```\n") : NULL;
    char *e = b ? strstr(b + 4, "\n```") : NULL;
    if (!e) {
        free(s);
        return NULL;
    }
    size_t len = (size_t)(e - (b + 4));
    memmove(s, b + 4, len);
    s[len] = 0;
    return s;
}

/* Greedy from BOS for 256 new tokens (llama2.c's run loop with steps = 256 feeds positions
 * 0..255 and prints the token chosen at each; it stops early only if it samples BOS), as
 * llama2.c prints them (detokenized, the leading space after BOS dropped). */
static int greedy_text(const char *gguf, char *text, size_t cap, int32_t *n_gen) {
    terse_model *m;
    terse_ctx *c;
    int rc = terse_model_load(gguf, terse_model_default_params(), &m);
    if (rc) return rc;
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1; /* a 260K model: threads only add synchronisation */
    if ((rc = terse_ctx_new(m, cp, &c))) {
        terse_model_free(m);
        return rc;
    }
    terse_sample_params sp = terse_sample_default_params();
    sp.temperature = 0;
    sp.stop_at_eos = 0;
    int32_t bos = 1, out[256];
    int32_t n = terse_generate(c, &bos, 1, sp, out, 256);
    if (n < 0) rc = n;
    for (int32_t i = 0; rc == 0 && i < n; i++)
        if (out[i] == 1) n = i; /* llama2.c stops at BOS */
    if (rc == 0) {
        int64_t len = terse_detokenize(terse_model_vocab(m), out, n, text, (int64_t)cap);
        if (len < 0 || len >= (int64_t)cap) rc = len < 0 ? (int)len : TERSE_ERR_RANGE;
        else if (text[0] == ' ') memmove(text, text + 1, (size_t)len);
    }
    *n_gen = n;
    terse_ctx_free(c);
    terse_model_free(m);
    return rc;
}

static void test_stories_greedy(void) {
    char *want = readme_golden();
    CHECK(want != NULL, "golden text in stories260K/README.md");
    if (!want) return;
    const char *types[] = {"F32", "F16", "BF16", "Q8_0"};
    for (int k = 0; k < 4; k++) {
        char path[256], text[8192];
        snprintf(path, sizeof path, "%s/s_%s.gguf", tmpdir, types[k]);
        int32_t n = 0;
        int rc = greedy_text(path, text, sizeof text, &n);
        CHECK(rc == 0, "greedy on %s: %d %s", path, rc, terse_last_error());
        if (rc) continue;
        size_t common = 0;
        while (text[common] && text[common] == want[common]) common++;
        int same = strcmp(text, want) == 0;
        if (same) printf("stories260K %s greedy: %d tokens, matches llama2.c's README\n", types[k], n);
        else printf("stories260K %s greedy: %d tokens, differs from the README from byte %zu of %zu\n",
                    types[k], n, common, strlen(want));
        if (k == 0) {
            CHECK(same, "F32 greedy text differs from README at byte %zu:\n got: %.80s\nwant: %.80s",
                  common, text + common, want + common);
        }
    }
    free(want);
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile llama2.c inputs                                                                   */

static void expect_fail(int rc, int want, const char *what, const char *needle) {
    CHECK(rc == want, "%s: rc %d (want %d): %s", what, rc, want, terse_last_error());
    if (needle) CHECK(strstr(terse_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'",
                      what, terse_last_error(), needle);
}

static void test_llama2c_hostile(void) {
    size_t n, tn;
    uint8_t *raw = (uint8_t *)test_read_file(ckpt, &n), *tok = (uint8_t *)test_read_file(tokf, &tn);
    if (!raw || !tok) {
        CHECK(0, "fixtures");
        free(raw);
        free(tok);
        return;
    }
    char bad[256], out[256], tbad[256];
    tmp_path(bad, sizeof bad, "bad.bin");
    tmp_path(tbad, sizeof tbad, "badtok.bin");
    tmp_path(out, sizeof out, "bad.gguf");
    int32_t h[7];

    write_file(bad, raw, n / 2); /* truncated weights */
    expect_fail(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "truncated", "needs 1056540");
    CHECK(!file_exists(out), "no output left behind");
    write_file(bad, raw, 20); /* truncated header */
    expect_fail(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "short header", "header");
    uint8_t *longer = malloc(n + 4);
    memcpy(longer, raw, n);
    memset(longer + n, 0, 4);
    write_file(bad, longer, n + 4); /* trailing bytes */
    expect_fail(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "trailing", "1056544 bytes");
    free(longer);

    const struct { int field; int32_t value; const char *needle; } dims[] = {
        {0, -64, "dim = -64"}, {0, 0, "dim = 0"}, {0, 1 << 30, "dim = 1073741824"},
        {1, INT32_MIN, "hidden_dim"}, {2, 100000, "n_layers"}, {3, 7, "n_heads 7"},
        {4, 3, "n_kv_heads 3"}, {5, INT32_MIN, "vocab_size"}, {6, -1, "seq_len"},
        {5, 1 << 30, "vocab_size"},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        memcpy(h, raw, 28);
        h[dims[i].field] = dims[i].value;
        memcpy(raw, h, 28);
        write_file(bad, raw, n);
        char what[64];
        snprintf(what, sizeof what, "header field %d = %d", dims[i].field, (int)dims[i].value);
        expect_fail(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, what,
                    dims[i].needle);
        h[dims[i].field] = ((const int32_t[]){64, 172, 5, 8, 4, 512, 512})[dims[i].field];
        memcpy(raw, h, 28);
    }
    write_file(bad, "24ka\1\0\0\0", 8); /* uint32 0x616b3432 ("ak42"), version 1 */
    expect_fail(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32), TERSE_ERR_UNSUPPORTED,
                "ak42", "version 1 llama2.c export");
    expect_fail(terse_convert_llama2c("/nonexistent/x.bin", tokf, out, TERSE_TYPE_F32),
                TERSE_ERR_IO, "missing", "/nonexistent/x.bin");
    expect_fail(terse_convert_llama2c(ckpt, tokf, out, TERSE_TYPE_IQ4_XS), TERSE_ERR_UNSUPPORTED,
                "type IQ4_XS (read only)", "type");

    /* Tokenizer files. */
    write_file(tbad, tok, tn - 10);
    expect_fail(terse_convert_llama2c(ckpt, tbad, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "tokenizer truncated", "token 511");
    write_file(tbad, tok, 2);
    expect_fail(terse_convert_llama2c(ckpt, tbad, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "tokenizer no header", "no header");
    uint8_t *t2 = malloc(tn + 3);
    memcpy(t2, tok, tn);
    int32_t huge = 0x7fffff00;
    memcpy(t2 + 4 + 4, &huge, 4); /* token 0's length */
    write_file(tbad, t2, tn);
    expect_fail(terse_convert_llama2c(ckpt, tbad, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "tokenizer absurd length", "token 0 has length");
    memcpy(t2, tok, tn);
    memcpy(t2 + tn, "abc", 3);
    write_file(tbad, t2, tn + 3);
    expect_fail(terse_convert_llama2c(ckpt, tbad, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT,
                "tokenizer trailing bytes", "3 bytes left");
    free(t2);
    CHECK(!file_exists(out), "no output left behind after failures");

    /* A separate classifier (negative vocab_size): written as output.weight. */
    uint8_t *sep = malloc(n + 512 * 64 * 4);
    memcpy(sep, raw, n);
    for (int i = 0; i < 512 * 64; i++) {
        float v = (float)(i % 97) * 0.01f;
        memcpy(sep + n + 4 * (size_t)i, &v, 4);
    }
    memcpy(h, raw, 28);
    h[5] = -512;
    memcpy(sep, h, 28);
    write_file(bad, sep, n + 512 * 64 * 4);
    CHECK_OK(terse_convert_llama2c(bad, tokf, out, TERSE_TYPE_F32));
    gguf_file *g;
    if (gguf_open(out, 1, &g) == 0) {
        const gguf_tensor *o = gguf_find_tensor(g, "output.weight");
        CHECK(o && o->ne[0] == 64 && o->ne[1] == 512 &&
              memcmp(o->data, sep + n, 512 * 64 * 4) == 0, "separate classifier");
        gguf_close(g);
    }
    free(sep);
    free(raw);
    free(tok);
}

/* ---------------------------------------------------------------------------------------- */
/* Synthetic Hugging Face folders                                                             */

/* Value of element (r, c) of tensor number tid: small integers, exact in F16 and BF16, and
 * distinct along the rows of one tensor so that a permutation shows. */
static float synth_value(int tid, int64_t r, int64_t c) {
    return (float)((tid * 31 + r * 7 + c) % 200 - 100);
}

typedef struct {
    char name[96];
    const char *dtype;   /* "F32", "F16", "BF16", "I64" */
    int64_t rows, cols;  /* cols == 0: 1-D */
} synth_tensor;

typedef struct {
    synth_tensor t[64];
    int n;
} synth_model;

static void synth_add(synth_model *m, const char *dtype, int64_t rows, int64_t cols,
                      const char *fmt, int layer) {
    synth_tensor *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
}

static int64_t synth_find(const synth_model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return i;
    return -1;
}

/* Writes tensors [from, to) of m as a .safetensors file. */
static void synth_write(const synth_model *m, int from, int to, const char *path) {
    char *hdr = malloc(1 << 16);
    uint8_t *data = malloc(1 << 20);
    size_t hl = 0, dl = 0;
    hl += (size_t)sprintf(hdr + hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = from; i < to; i++) {
        const synth_tensor *t = &m->t[i];
        int64_t cols = t->cols ? t->cols : 1;
        size_t es = !strcmp(t->dtype, "F32") ? 4 : !strcmp(t->dtype, "I64") ? 8 : 2, begin = dl;
        for (int64_t r = 0; r < t->rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                float v = synth_value(i, r, c);
                if (es == 4) memcpy(data + dl, &v, 4);
                else if (es == 8) {
                    int64_t iv = (int64_t)v;
                    memcpy(data + dl, &iv, 8);
                } else {
                    uint16_t h = !strcmp(t->dtype, "F16") ? terse_f32_to_f16(v) : terse_f32_to_bf16(v);
                    memcpy(data + dl, &h, 2);
                }
                dl += es;
            }
        if (t->cols)
            hl += (size_t)sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],"
                                  "\"data_offsets\":[%zu,%zu]}", t->name, t->dtype,
                                  (long long)t->rows, (long long)t->cols, begin, dl);
        else
            hl += (size_t)sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],"
                                  "\"data_offsets\":[%zu,%zu]}", t->name, t->dtype,
                                  (long long)t->rows, begin, dl);
    }
    hdr[hl++] = '}';
    while (hl % 8) hdr[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t len = hl;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    fwrite(data, 1, dl, f);
    fclose(f);
    free(hdr);
    free(data);
}

/* Tiny shapes: V 16, C 8, 2 heads of D 4, 1 kv head, F 12, 1 layer, 12 positions. */
enum { SV = 16, SC = 8, SH = 2, SHKV = 1, SD = 4, SF = 12, SPOS = 12 };

static void synth_llama(synth_model *m, const char *dtype, int qwen2, int untied) {
    m->n = 0;
    synth_add(m, dtype, SV, SC, "model.embed_tokens.weight", 0);
    synth_add(m, dtype, SC, 0, "model.layers.%d.input_layernorm.weight", 0);
    synth_add(m, dtype, SH * SD, SC, "model.layers.%d.self_attn.q_proj.weight", 0);
    synth_add(m, dtype, SHKV * SD, SC, "model.layers.%d.self_attn.k_proj.weight", 0);
    synth_add(m, dtype, SHKV * SD, SC, "model.layers.%d.self_attn.v_proj.weight", 0);
    synth_add(m, dtype, SC, SH * SD, "model.layers.%d.self_attn.o_proj.weight", 0);
    if (qwen2) {
        synth_add(m, dtype, SH * SD, 0, "model.layers.%d.self_attn.q_proj.bias", 0);
        synth_add(m, dtype, SHKV * SD, 0, "model.layers.%d.self_attn.k_proj.bias", 0);
        synth_add(m, dtype, SHKV * SD, 0, "model.layers.%d.self_attn.v_proj.bias", 0);
    }
    synth_add(m, dtype, SC, 0, "model.layers.%d.post_attention_layernorm.weight", 0);
    synth_add(m, dtype, SF, SC, "model.layers.%d.mlp.gate_proj.weight", 0);
    synth_add(m, dtype, SF, SC, "model.layers.%d.mlp.up_proj.weight", 0);
    synth_add(m, dtype, SC, SF, "model.layers.%d.mlp.down_proj.weight", 0);
    synth_add(m, dtype, SC, 0, "model.norm.weight", 0);
    if (untied) synth_add(m, dtype, SV, SC, "lm_head.weight", 0);
}

static void synth_gpt2(synth_model *m, const char *prefix) {
    char f[128];
    m->n = 0;
#define G(rows, cols, name) (snprintf(f, sizeof f, "%s" name, prefix), synth_add(m, "F32", rows, cols, f, 0))
    G(SV, SC, "wte.weight");
    G(SPOS, SC, "wpe.weight");
    G(SC, 0, "h.%%d.ln_1.weight");
    G(SC, 0, "h.%%d.ln_1.bias");
    G(SC, 3 * SC, "h.%%d.attn.c_attn.weight");
    G(3 * SC, 0, "h.%%d.attn.c_attn.bias");
    G(SC, SC, "h.%%d.attn.c_proj.weight");
    G(SC, 0, "h.%%d.attn.c_proj.bias");
    G(SC, 0, "h.%%d.ln_2.weight");
    G(SC, 0, "h.%%d.ln_2.bias");
    G(SC, SF, "h.%%d.mlp.c_fc.weight");
    G(SF, 0, "h.%%d.mlp.c_fc.bias");
    G(SF, SC, "h.%%d.mlp.c_proj.weight");
    G(SC, 0, "h.%%d.mlp.c_proj.bias");
    G(SC, 0, "ln_f.weight");
    G(SC, 0, "ln_f.bias");
    G(SPOS, SPOS, "h.%%d.attn.bias"); /* old checkpoints' causal-mask buffer: ignored */
#undef G
}

static void make_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
    mkdir(out, 0755);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    write_file(p, text, strlen(text));
}

static const char *LLAMA_CONFIG_FMT =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": 16,"
    " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"max_position_embeddings\": 12,"
    " \"rms_norm_eps\": 1e-05, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 5000.0},"
    " \"tie_word_embeddings\": %s, \"hidden_act\": \"silu\"}";

/* The tiny llama's config.json (transformers 5 style rope_parameters). */
static const char *llama_config(int tied) {
    static char buf[1024];
    snprintf(buf, sizeof buf, LLAMA_CONFIG_FMT, tied ? "true" : "false");
    return buf;
}
#define LLAMA_CONFIG llama_config(1)

/* GGUF tensor name's values vs HF tensor's, with the HF row for each GGUF row given by
 * row_map (NULL = identity); transpose: GGUF (c, r) = HF (r, c). */
static int same_values(const gguf_file *g, const char *gname, const synth_model *m,
                       const char *hfname, const int64_t *row_map, int transpose) {
    int64_t tid = synth_find(m, hfname), n;
    float *v = tensor_f32(g, gname, &n);
    if (tid < 0 || !v) {
        free(v);
        return 0;
    }
    const synth_tensor *t = &m->t[tid];
    int64_t cols = t->cols ? t->cols : 1, ok = n == t->rows * cols;
    for (int64_t r = 0; ok && r < t->rows; r++)
        for (int64_t c = 0; ok && c < cols; c++) {
            int64_t gr = transpose ? c : r, gc = transpose ? r : c, gcols = transpose ? t->rows : cols;
            int64_t hr = row_map ? row_map[gr] : gr;
            float want = transpose ? synth_value((int)tid, r, c) : synth_value((int)tid, hr, gc);
            ok = v[gr * gcols + gc] == want;
        }
    free(v);
    return (int)ok;
}

static void test_hf_llama(void) {
    char dir[256], out[256];
    synth_model m;
    synth_llama(&m, "F32", 0, 0);
    make_dir(dir, sizeof dir, "hf_llama");
    write_text(dir, "config.json", LLAMA_CONFIG);
    char st[300];
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    synth_write(&m, 0, m.n, st);
    tmp_path(out, sizeof out, "hf_llama.gguf");
    CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
    gguf_file *g;
    if (gguf_open(out, 1, &g) != 0) {
        CHECK(0, "open: %s", terse_last_error());
        return;
    }
    CHECK(str_is(g, "general.architecture", "llama"), "arch");
    CHECK(str_is(g, "general.name", "hf_llama"), "name = folder");
    CHECK(get_u32(g, "llama.attention.head_count_kv") == 1 && get_u32(g, "llama.context_length") == 12 &&
          get_u32(g, "llama.rope.dimension_count") == 4 && get_u32(g, "llama.feed_forward_length") == 12,
          "hparams");
    float theta = 0;
    gguf_get_f32_or(g, "llama.rope.freq_base", 0, &theta);
    CHECK(theta == 5000.0f, "rope theta from rope_parameters: %g", theta);
    CHECK(str_is(g, "tokenizer.ggml.model", "none"), "no tokenizer files -> tokenizer.ggml.model none (llama.cpp wants the key)");
    CHECK(g->n_tensors == 1 + 9 + 1, "n_tensors %llu", (unsigned long long)g->n_tensors);
    CHECK(gguf_find_tensor(g, "output.weight") == NULL, "tied: no output.weight");
    /* q: 2 heads of 4 rows, HF (j, i) order -> (i, j): GGUF row h*4 + 2i + j <- HF h*4 + 2j + i */
    const int64_t qmap[8] = {0, 2, 1, 3, 4, 6, 5, 7}, kmap[4] = {0, 2, 1, 3};
    CHECK(same_values(g, "blk.0.attn_q.weight", &m, "model.layers.0.self_attn.q_proj.weight", qmap, 0),
          "q permuted");
    CHECK(same_values(g, "blk.0.attn_k.weight", &m, "model.layers.0.self_attn.k_proj.weight", kmap, 0),
          "k permuted with n_head_kv");
    CHECK(same_values(g, "blk.0.attn_v.weight", &m, "model.layers.0.self_attn.v_proj.weight", NULL, 0),
          "v as is");
    CHECK(same_values(g, "blk.0.ffn_down.weight", &m, "model.layers.0.mlp.down_proj.weight", NULL, 0),
          "ffn_down");
    CHECK(same_values(g, "token_embd.weight", &m, "model.embed_tokens.weight", NULL, 0), "embd");
    const gguf_tensor *t = gguf_find_tensor(g, "blk.0.ffn_gate.weight");
    CHECK(t && t->ne[0] == SC && t->ne[1] == SF, "ffn_gate ne");
    gguf_close(g);

    /* Mistral: the llama layout; a sliding window shorter than the context is written as
     * llama.attention.sliding_window (the runtime applies it). */
    write_text(dir, "config.json",
               "{\"architectures\": [\"MistralForCausalLM\"], \"vocab_size\": 16, \"hidden_size\": 8,"
               " \"intermediate_size\": 12, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
               " \"num_key_value_heads\": 1, \"max_position_embeddings\": 12, \"sliding_window\": 6,"
               " \"rope_theta\": 10000.0, \"tie_word_embeddings\": true}");
    CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
    if (gguf_open(out, 1, &g) == 0) {
        CHECK(str_is(g, "general.architecture", "llama") && get_u32(g, "llama.context_length") == 12 &&
              get_u32(g, "llama.attention.sliding_window") == 6,
              "mistral: llama arch, sliding window 6 in its key");
        CHECK(same_values(g, "blk.0.attn_q.weight", &m, "model.layers.0.self_attn.q_proj.weight", qmap, 0),
              "mistral q permuted");
        gguf_close(g);
    }

    /* Same weights in BF16 (and F16), converted to F32, BF16 (zero-copy) and Q8_0. */
    const char *dts[] = {"BF16", "F16"};
    for (int d = 0; d < 2; d++) {
        synth_llama(&m, dts[d], 0, 1);
        write_text(dir, "config.json", llama_config(0));
        synth_write(&m, 0, m.n, st);
        const terse_type types[] = {TERSE_TYPE_F32, TERSE_TYPE_BF16, TERSE_TYPE_F16, TERSE_TYPE_Q8_0};
        for (int k = 0; k < 4; k++) {
            CHECK_OK(terse_convert_hf(dir, out, types[k]));
            if (gguf_open(out, 1, &g) != 0) continue;
            int exact = types[k] != TERSE_TYPE_Q8_0; /* integers up to 100: exact in F16/BF16 */
            t = gguf_find_tensor(g, "blk.0.attn_q.weight");
            uint32_t want = types[k] == TERSE_TYPE_Q8_0 ? GGML_F16 : (uint32_t)types[k];
            CHECK(t && t->type == want, "%s -> type %d: attn_q type %u (rows of 8: Q8_0 falls "
                  "back to F16)", dts[d], (int)types[k], t ? t->type : 99);
            CHECK(!exact || same_values(g, "blk.0.attn_q.weight", &m,
                                        "model.layers.0.self_attn.q_proj.weight", qmap, 0),
                  "%s -> %d: q values", dts[d], (int)types[k]);
            t = gguf_find_tensor(g, "blk.0.input_layernorm.weight");
            t = gguf_find_tensor(g, "blk.0.attn_norm.weight");
            CHECK(t && t->type == GGML_F32, "norm F32");
            CHECK(gguf_find_tensor(g, "output.weight") != NULL, "untied: output.weight");
            CHECK(exact ? same_values(g, "output.weight", &m, "lm_head.weight", NULL, 0) : 1,
                  "%s -> %d: lm_head values", dts[d], (int)types[k]);
            gguf_close(g);
        }
    }
}

static void test_hf_qwen2_gpt2_shards(void) {
    char dir[256], out[256], st[300];
    synth_model m;
    gguf_file *g;
    /* qwen2: biases, no permutation, untied. */
    synth_llama(&m, "F32", 1, 1);
    make_dir(dir, sizeof dir, "hf_qwen2");
    write_text(dir, "config.json",
               "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 16, \"hidden_size\": 8,"
               " \"intermediate_size\": 12, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
               " \"num_key_value_heads\": 1, \"max_position_embeddings\": 12, \"rms_norm_eps\": 1e-06,"
               " \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false, \"use_sliding_window\": false}");
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    synth_write(&m, 0, m.n, st);
    tmp_path(out, sizeof out, "hf_qwen2.gguf");
    CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
    if (gguf_open(out, 1, &g) == 0) {
        CHECK(str_is(g, "general.architecture", "qwen2"), "qwen2 arch");
        float eps = 0, theta = 0;
        gguf_get_f32_or(g, "qwen2.attention.layer_norm_rms_epsilon", 0, &eps);
        gguf_get_f32_or(g, "qwen2.rope.freq_base", 0, &theta);
        CHECK(eps == 1e-6f && theta == 1e6f, "qwen2 eps %g theta %g", eps, theta);
        CHECK(same_values(g, "blk.0.attn_q.weight", &m, "model.layers.0.self_attn.q_proj.weight", NULL, 0),
              "qwen2 q not permuted");
        CHECK(same_values(g, "blk.0.attn_k.bias", &m, "model.layers.0.self_attn.k_proj.bias", NULL, 0),
              "qwen2 k bias");
        CHECK(same_values(g, "output.weight", &m, "lm_head.weight", NULL, 0), "qwen2 output");
        gguf_close(g);
    }
    /* The same folder with Qwen2's tokenizer files: imported through tok_import_hf. */
    const char *tok_files[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                               "added_tokens.json", "special_tokens_map.json"};
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/vocab/qwen2/vocab.json", test_shared_dir());
    if (file_exists(src)) {
        for (size_t i = 0; i < sizeof tok_files / sizeof tok_files[0]; i++) {
            snprintf(src, sizeof src, "%s/vocab/qwen2/%s", test_shared_dir(), tok_files[i]);
            if (src[0] != '/') {
                char cwd[256];
                if (getcwd(cwd, sizeof cwd)) snprintf(src, sizeof src, "%s/%s/vocab/qwen2/%s", cwd,
                                                      test_shared_dir(), tok_files[i]);
            }
            snprintf(dst, sizeof dst, "%s/%s", dir, tok_files[i]);
            if (symlink(src, dst) != 0) perror("symlink");
        }
        CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
        if (gguf_open(out, 1, &g) == 0) {
            const gguf_kv *tok = NULL;
            CHECK(str_is(g, "tokenizer.ggml.model", "gpt2"), "qwen2 tokenizer model");
            CHECK(str_is(g, "tokenizer.ggml.pre", "qwen2"), "qwen2 pre-tokenizer");
            CHECK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tok) == 0 && tok &&
                  tok->n >= 151643, "qwen2 tokens: %llu", tok ? (unsigned long long)tok->n : 0ull);
            gguf_close(g);
        }
    } else {
        printf("SKIP qwen2 tokenizer import: %s not found\n", src);
    }

    /* gpt2: Conv1D transposed, "transformer." prefix, mask buffer ignored, tied. */
    const char *prefixes[] = {"transformer.", ""};
    for (int p = 0; p < 2; p++) {
        synth_gpt2(&m, prefixes[p]);
        make_dir(dir, sizeof dir, p ? "hf_gpt2b" : "hf_gpt2");
        write_text(dir, "config.json",
                   "{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 16, \"n_embd\": 8,"
                   " \"n_layer\": 1, \"n_head\": 2, \"n_positions\": 12, \"n_inner\": 12,"
                   " \"activation_function\": \"gelu_new\", \"layer_norm_epsilon\": 1e-05}");
        snprintf(st, sizeof st, "%s/model.safetensors", dir);
        synth_write(&m, 0, m.n, st);
        tmp_path(out, sizeof out, "hf_gpt2.gguf");
        CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
        if (gguf_open(out, 1, &g) != 0) continue;
        char hf[128];
        CHECK(str_is(g, "general.architecture", "gpt2"), "gpt2 arch");
        CHECK(get_u32(g, "gpt2.context_length") == 12 && get_u32(g, "gpt2.feed_forward_length") == 12,
              "gpt2 hparams");
        snprintf(hf, sizeof hf, "%sh.0.attn.c_attn.weight", prefixes[p]);
        const gguf_tensor *t = gguf_find_tensor(g, "blk.0.attn_qkv.weight");
        CHECK(t && t->ne[0] == SC && t->ne[1] == 3 * SC, "qkv ne (C, 3C)");
        CHECK(same_values(g, "blk.0.attn_qkv.weight", &m, hf, NULL, 1), "c_attn transposed");
        snprintf(hf, sizeof hf, "%sh.0.mlp.c_proj.weight", prefixes[p]);
        CHECK(same_values(g, "blk.0.ffn_down.weight", &m, hf, NULL, 1), "mlp c_proj transposed");
        snprintf(hf, sizeof hf, "%swpe.weight", prefixes[p]);
        CHECK(same_values(g, "position_embd.weight", &m, hf, NULL, 0), "wpe");
        snprintf(hf, sizeof hf, "%sln_f.bias", prefixes[p]);
        CHECK(same_values(g, "output_norm.bias", &m, hf, NULL, 0), "ln_f bias");
        /* tied: written out as a copy of wte, llama.cpp's gpt2 loader requires output.weight */
        snprintf(hf, sizeof hf, "%swte.weight", prefixes[p]);
        CHECK(same_values(g, "output.weight", &m, hf, NULL, 0), "gpt2 tied output.weight = wte");
        CHECK(g->n_tensors == 2 + 12 + 2 + 1, "gpt2 n_tensors %llu", (unsigned long long)g->n_tensors);
        gguf_close(g);
    }

    /* Sharded llama: two files and an index. */
    synth_llama(&m, "F32", 0, 1);
    make_dir(dir, sizeof dir, "hf_shard");
    write_text(dir, "config.json", llama_config(0));
    snprintf(st, sizeof st, "%s/model-00001-of-00002.safetensors", dir);
    synth_write(&m, 0, 5, st);
    snprintf(st, sizeof st, "%s/model-00002-of-00002.safetensors", dir);
    synth_write(&m, 5, m.n, st);
    char idx[8192];
    size_t k = (size_t)sprintf(idx, "{\"metadata\": {}, \"weight_map\": {");
    for (int i = 0; i < m.n; i++)
        k += (size_t)sprintf(idx + k, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
                             i ? ", " : "", m.t[i].name, i < 5 ? 1 : 2);
    sprintf(idx + k, "}}");
    write_text(dir, "model.safetensors.index.json", idx);
    tmp_path(out, sizeof out, "hf_shard.gguf");
    CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
    if (gguf_open(out, 1, &g) == 0) {
        const int64_t qmap[8] = {0, 2, 1, 3, 4, 6, 5, 7};
        CHECK(same_values(g, "blk.0.attn_q.weight", &m, "model.layers.0.self_attn.q_proj.weight", qmap, 0),
              "sharded q");
        CHECK(same_values(g, "output.weight", &m, "lm_head.weight", NULL, 0), "sharded lm_head");
        gguf_close(g);
    }
    /* an index naming a missing tensor / a path outside the folder */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\","
               " \"extra.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "index: missing tensor",
                "extra.weight");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "index: path", "not a file");
}

/* Hostile HF folders: config and safetensors. */
static void test_hf_hostile(void) {
    char dir[256], out[256], st[300];
    synth_model m;
    make_dir(dir, sizeof dir, "hf_bad");
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    tmp_path(out, sizeof out, "hf_bad.gguf");
    synth_llama(&m, "F32", 0, 0);
    synth_write(&m, 0, m.n, st);

    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_IO, "no config", "config.json");
    write_text(dir, "config.json", "{\"architectures\": [\"BertModel\"]}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_UNSUPPORTED, "arch", "BertModel");
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "missing field",
                "hidden_size");
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": -3,"
               " \"hidden_size\": 8}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "negative",
                "'vocab_size' is -3");
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16,"
               " \"hidden_size\": \"8\"}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "string hidden_size",
                "'hidden_size' is \"8\", must be an integer");
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16,"
               " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 2, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 8.0}}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_UNSUPPORTED, "rope scaling", "yarn");
    write_text(dir, "config.json", "{not json");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_IO, "bad json", "config.json");

    /* Shape mismatch: config says 3 kv heads... no: kv heads 2 (k_proj should have 8 rows). */
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16,"
               " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"tie_word_embeddings\": true}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "shape vs config",
                "k_proj.weight' has shape [4, 8], config.json implies [8, 8]");
    write_text(dir, "config.json", LLAMA_CONFIG);
    CHECK_OK(terse_convert_hf(dir, out, TERSE_TYPE_F32));
    /* two layers in config, one in the file */
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16,"
               " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"tie_word_embeddings\": true}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "missing tensor",
                "model.layers.1.input_layernorm.weight' is missing");
    write_text(dir, "config.json", LLAMA_CONFIG);
    /* untied in config but no lm_head */
    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 16,"
               " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 2, \"num_key_value_heads\": 1}");
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_FORMAT, "no lm_head", "lm_head");
    write_text(dir, "config.json", LLAMA_CONFIG);

    /* An unknown tensor (a Qwen3-style q_norm). */
    synth_add(&m, "F32", SD, 0, "model.layers.%d.self_attn.q_norm.weight", 0);
    synth_write(&m, 0, m.n, st);
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_UNSUPPORTED, "unknown tensor",
                "q_norm");
    /* A needed tensor in I64. */
    synth_llama(&m, "F32", 0, 0);
    m.t[3].dtype = "I64";
    synth_write(&m, 0, m.n, st);
    expect_fail(terse_convert_hf(dir, out, TERSE_TYPE_F32), TERSE_ERR_UNSUPPORTED, "I64", "I64");

    /* Corrupt safetensors files. */
    synth_llama(&m, "F32", 0, 0);
    synth_write(&m, 0, m.n, st);
    size_t n;
    uint8_t *good = (uint8_t *)test_read_file(st, &n), *b = malloc(n + 16);
    uint64_t hl;
    memcpy(&hl, good, 8);
    const struct { const char *what; const char *needle; } cases[] = {
        {"header length past the end", "header length"},
        {"truncated data", "outside"},
        {"bad json", "header JSON"},
        {"byte count", "bytes for"},
        {"tiny file", "no header"},
        {"negative offset", "data_offsets [-1, 51]"},
        {"negative dim", "bad dimension"},
    };
    for (int c = 0; c < 7; c++) {
        memcpy(b, good, n);
        size_t len = n;
        char *json = (char *)b + 8, *p;
        switch (c) {
        case 0: { uint64_t big = (uint64_t)n; memcpy(b, &big, 8); break; }
        case 1: len = n - 4; break;
        case 2: json[0] = 'x'; break;
        case 3: p = strstr(json, "[16,8]"); if (p) memcpy(p, "[16,7]", 6); break;
        case 4: len = 5; break;
        case 5: p = strstr(json, "[0,512]"); if (p) memcpy(p, "[-1,51]", 7); break;
        case 6: p = strstr(json, "[16,8]"); if (p) memcpy(p, "[-1,8]", 6); break;
        }
        write_file(st, b, len);
        char what[96];
        snprintf(what, sizeof what, "safetensors: %s", cases[c].what);
        int rc = terse_convert_hf(dir, out, TERSE_TYPE_F32);
        CHECK(rc == TERSE_ERR_FORMAT, "%s: rc %d: %s", what, rc, terse_last_error());
        CHECK(strstr(terse_last_error(), cases[c].needle) != NULL, "%s: message '%s' lacks '%s'",
              what, terse_last_error(), cases[c].needle);
    }
    (void)hl;
    free(good);
    free(b);
}

/* ---------------------------------------------------------------------------------------- */

static void cleanup(const char *dir) {
    char cmd[300];
    /* the folder is ours (mkdtemp): remove it with its files */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/terse_convert_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(ckpt, sizeof ckpt, "%s/models/stories260K/stories260K.bin", test_shared_dir());
    snprintf(tokf, sizeof tokf, "%s/models/stories260K/tok512.bin", test_shared_dir());
    if (file_exists(ckpt) && file_exists(tokf)) {
        test_stories_structure();
        test_stories_types();
        test_stories_greedy();
        test_llama2c_hostile();
    } else {
        printf("SKIP stories260K: %s not found\n", ckpt);
    }
    test_hf_llama();
    test_hf_qwen2_gpt2_shards();
    test_hf_hostile();
    cleanup(tmpdir);
    return test_summary("convert");
}
