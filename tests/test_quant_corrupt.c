/* test_quant_corrupt.c - hostile quantised files give precise errors, never crashes:
 *   - a block scale that is inf or NaN (Q4_K d, Q4_K dmin, Q6_K d, Q8_0 d) -> model load fails
 *     naming the tensor, the row and the block;
 *   - a file cut short inside the tensor data -> gguf_open fails;
 *   - a row length that is not a whole number of the type's blocks, an unknown type id, a
 *     byte count that does not match the shape -> gguf_open fails naming the tensor;
 *   - a type the runtime cannot compute with (IQ2_XXS) -> model load fails naming it.
 * The fixtures are ../shared/quant (skipped without them); synthetic files for the rest.
 */
#include "gguf/gguf.h"
#include "harness.h"
#include "nn/quant.h"
#include "terse.h"

static char tmp[256];

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

static void expect_load_fail(const char *label, int want_rc, const char *needle) {
    terse_model *m = NULL;
    int rc = terse_model_load(tmp, terse_model_default_params(), &m);
    const char *msg = terse_last_error();
    CHECK(rc == want_rc && m == NULL, "%s: rc %d (want %d): %s", label, rc, want_rc, msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", label, msg, needle);
    if (getenv("TERSE_TEST_VERBOSE")) printf("%s: %s\n", label, msg);
    terse_model_free(m);
}

/* Poke a 16-bit value into block `blk` of tensor `name` at byte `off` of the block. */
static void bad_scale(const char *fixture, const char *name, int64_t blk, int off, uint16_t v,
                      const char *label, const char *needle) {
    size_t n = 0;
    char *b = test_read_file(fixture, &n);
    if (!b) return;
    gguf_file *g = NULL;
    CHECK_OK(gguf_open_memory(b, n, &g));
    const gguf_tensor *t = g ? gguf_find_tensor(g, name) : NULL;
    CHECK(t != NULL, "%s: %s", label, name);
    if (t) {
        size_t at = (size_t)((const char *)t->data - b) + (size_t)blk * quant_block_bytes(t->type) + off;
        memcpy(b + at, &v, 2);
        write_bytes(tmp, b, n);
        expect_load_fail(label, TERSE_ERR_FORMAT, needle);
    }
    gguf_close(g);
    free(b);
}

static void truncated(const char *fixture) {
    size_t n = 0;
    char *b = test_read_file(fixture, &n);
    if (!b) return;
    write_bytes(tmp, b, n - 1000);
    gguf_file *g = NULL;
    int rc = gguf_open(tmp, 1, &g);
    CHECK(rc == TERSE_ERR_FORMAT && g == NULL, "truncated: rc %d: %s", rc, terse_last_error());
    if (getenv("TERSE_TEST_VERBOSE")) printf("truncated: %s\n", terse_last_error());
    expect_load_fail("truncated (model)", TERSE_ERR_FORMAT, "");
    free(b);
}

/* A hand-made GGUF: one tensor info with the given type, shape and data size. */
static size_t put(uint8_t *p, const void *v, size_t n) { memcpy(p, v, n); return n; }
static void raw_file(uint32_t type, int64_t ne0, int64_t ne1, size_t data_bytes) {
    static uint8_t b[16384];
    memset(b, 0, sizeof b);
    if (data_bytes > sizeof b - 256) data_bytes = sizeof b - 256;
    size_t o = 0;
    uint32_t u32;
    uint64_t u64;
    o += put(b + o, "GGUF", 4);
    u32 = 3, o += put(b + o, &u32, 4);
    u64 = 1, o += put(b + o, &u64, 8);   /* tensors */
    u64 = 0, o += put(b + o, &u64, 8);   /* kv */
    u64 = 6, o += put(b + o, &u64, 8);
    o += put(b + o, "w.test", 6);
    u32 = 2, o += put(b + o, &u32, 4);
    o += put(b + o, &ne0, 8);
    o += put(b + o, &ne1, 8);
    o += put(b + o, &type, 4);
    u64 = 0, o += put(b + o, &u64, 8);
    o = (o + 31) / 32 * 32;
    write_bytes(tmp, b, o + data_bytes);
}

static void expect_open_fail(const char *label, const char *needle) {
    gguf_file *g = NULL;
    int rc = gguf_open(tmp, 1, &g);
    CHECK(rc != TERSE_OK && g == NULL, "%s: opened", label);
    CHECK(strstr(terse_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", label,
          terse_last_error(), needle);
    if (getenv("TERSE_TEST_VERBOSE")) printf("%s: %s\n", label, terse_last_error());
    gguf_close(g);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", test_tmp_path("corrupt.gguf"));
    char q4k[600], q6k[600], q80[600];
    snprintf(q4k, sizeof q4k, "%s/quant/llama-Q4_K_M.gguf", test_shared_dir());
    snprintf(q6k, sizeof q6k, "%s/quant/llama-Q6_K.gguf", test_shared_dir());
    snprintf(q80, sizeof q80, "%s/quant/llama-Q8_0.gguf", test_shared_dir());
    FILE *f = fopen(q4k, "rb");
    if (f) {
        fclose(f);
        /* attn_q is Q4_K [256, 256]: one block per row; block 37 = row 37 */
        bad_scale(q4k, "blk.0.attn_q.weight", 37, 0, 0x7C00, "Q4_K d = inf",
                  "'blk.0.attn_q.weight' (Q4_K): block 0 of row 37 has a non-finite scale");
        bad_scale(q4k, "blk.0.attn_q.weight", 3, 2, 0xFE00, "Q4_K dmin = NaN", "row 3 has a non-finite");
        /* ffn_down is Q6_K [512, 256]: two blocks per row; block 9 = row 4, block 1 */
        bad_scale(q4k, "blk.0.ffn_down.weight", 9, 208, 0x7E01, "Q6_K d = NaN",
                  "'blk.0.ffn_down.weight' (Q6_K): block 1 of row 4");
        bad_scale(q6k, "token_embd.weight", 0, 208, 0xFC00, "Q6_K token_embd d = -inf",
                  "'token_embd.weight' (Q6_K): block 0 of row 0");
        bad_scale(q80, "output.weight", 100, 0, 0x7C00, "Q8_0 d = inf",
                  "'output.weight' (Q8_0): block 4 of row 12");
        truncated(q4k);
    } else {
        printf("test_quant_corrupt: %s not found, fixture cases skipped\n", q4k);
    }
    raw_file(GGML_Q4_K, 100, 2, 4096);
    expect_open_fail("Q4_K row of 100", "w.test");
    raw_file(GGML_Q4_K, 256, 4, 144 * 3);
    expect_open_fail("Q4_K data short", "w.test");
    raw_file(31, 32, 1, 64);
    expect_open_fail("type 31 (removed Q4_0_4_4)", "type");
    raw_file(GGML_IQ4_XS, 256, 1, 136);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(tmp, 1, &g)); /* a whole IQ4_XS row: fine */
    gguf_close(g);

    /* a matrix of a type the runtime does not compute with: an IQ2_XXS attn_q */
    raw_file(GGML_IQ2_XXS, 256, 1, 66);
    CHECK_OK(gguf_open(tmp, 1, &g)); /* the reader knows its size */
    gguf_close(g);
    terse_random_params rp = {"llama", 260, 32, 256, 1, 4, 2, 256, TERSE_TYPE_F32, 9, 0, 0};
    CHECK_OK(terse_write_random_model(tmp, &rp));
    gguf_file *src = NULL;
    CHECK_OK(gguf_open(tmp, 1, &src));
    gguf_writer *w = gguf_writer_new();
    uint8_t *iq = calloc(256, 66);
    for (uint64_t i = 0; src && i < src->n_kv; i++) gguf_writer_copy_kv(w, &src->kv[i]);
    for (uint64_t i = 0; src && i < src->n_tensors; i++) {
        const gguf_tensor *s = &src->tensors[i];
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)s->name.len, s->name.ptr);
        if (!strcmp(name, "blk.0.attn_q.weight"))
            gguf_writer_add_tensor(w, name, GGML_IQ2_XXS, s->n_dims, s->ne, iq, 256 * 66);
        else
            gguf_writer_add_tensor(w, name, s->type, s->n_dims, s->ne, s->data, s->nbytes);
    }
    char tmp2[300];
    snprintf(tmp2, sizeof tmp2, "%s.2", tmp);
    CHECK_OK(gguf_writer_write(w, tmp2));
    gguf_writer_free(w);
    gguf_close(src);
    free(iq);
    rename(tmp2, tmp);
    expect_load_fail("IQ2_XXS matrix", TERSE_ERR_UNSUPPORTED,
                     "'blk.0.attn_q.weight' has type IQ2_XXS, supported: F32, F16, BF16, Q8_0");
    unlink(tmp);
    return test_summary("quant_corrupt");
}
