/* test_gguf.c - the GGUF reader and writer: real files load, the writer round-trips, and
 * one handcrafted corrupt file per failure class gets a clear error naming field and value
 * (no crash, no leak: run under ASan by `make debug`). Every truncation of a valid file is
 * rejected too. */
#include "gguf/gguf.h"
#include "harness.h"

/* ---------------------------------------------------------------------------------------- */
/* A tiny byte builder for handcrafted files                                                 */

typedef struct {
    uint8_t b[4096];
    size_t n;
} buf;

static void u32(buf *b, uint32_t v) { memcpy(b->b + b->n, &v, 4); b->n += 4; }
static void u64(buf *b, uint64_t v) { memcpy(b->b + b->n, &v, 8); b->n += 8; }
static void raw(buf *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n); b->n += n; }
static void str(buf *b, const char *s) { u64(b, strlen(s)); raw(b, s, strlen(s)); }
static void align(buf *b, size_t a) { while (b->n % a) b->b[b->n++] = 0; }

/* header: magic, version, n_tensors, n_kv */
static void header(buf *b, uint32_t version, uint64_t nt, uint64_t nkv) {
    b->n = 0;
    raw(b, "GGUF", 4);
    u32(b, version);
    u64(b, nt);
    u64(b, nkv);
}

/* tensor info: name, dims, type, offset */
static void tinfo(buf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type,
                  uint64_t off) {
    str(b, name);
    u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}

static int expect_fail(buf *b, const char *needle, const char *label) {
    gguf_file *g = NULL;
    int rc = gguf_open_memory(b->b, b->n, &g);
    const char *msg = terse_last_error();
    CHECK(rc == TERSE_ERR_FORMAT && g == NULL, "%s: rc=%d", label, rc);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", label, msg, needle);
    if (g) gguf_close(g);
    return rc;
}

/* A valid file with one kv and two F32 tensors of 8 floats each. */
static void valid(buf *b) {
    header(b, 3, 2, 1);
    str(b, "general.architecture");
    u32(b, GGUF_STRING);
    str(b, "llama");
    uint64_t ne[1] = {8};
    tinfo(b, "a", 1, ne, GGML_F32, 0);
    tinfo(b, "b", 1, ne, GGML_F32, 32);
    align(b, 32);
    for (int i = 0; i < 16; i++) {
        float f = (float)i;
        raw(b, &f, 4);
    }
}

static void test_corrupt(void) {
    buf b;
    uint64_t ne8[1] = {8}, ne2[2] = {8, 2};

    valid(&b);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open_memory(b.b, b.n, &g));
    if (g) {
        const gguf_tensor *t = gguf_find_tensor(g, "b");
        CHECK(t && ((const float *)t->data)[0] == 8.0f, "tensor b data");
        gguf_str s;
        CHECK_OK(gguf_get_str(g, "general.architecture", &s));
        CHECK(gguf_str_eq(s, "llama"), "arch value");
        gguf_close(g);
    }

    /* every truncation of the valid file fails cleanly */
    size_t full = b.n;
    int all_fail = 1;
    for (size_t n = 0; n < full; n++) {
        b.n = n;
        g = NULL;
        if (gguf_open_memory(b.b, n, &g) == TERSE_OK) {
            all_fail = 0;
            fprintf(stderr, "truncated to %zu bytes loaded\n", n);
        }
        gguf_close(g);
    }
    CHECK(all_fail, "every truncation rejected");

    valid(&b); memcpy(b.b, "GGUX", 4);
    expect_fail(&b, "bad magic", "bad magic");
    valid(&b); b.b[4] = 1;
    expect_fail(&b, "version 1", "version 1");
    valid(&b); b.b[4] = 7;
    expect_fail(&b, "version 7", "version 7");

    header(&b, 3, 0, UINT64_MAX / 2);
    expect_fail(&b, "metadata count", "n_kv huge");
    header(&b, 3, 1ull << 40, 0);
    expect_fail(&b, "tensor count", "n_tensors huge");

    header(&b, 3, 0, 1); /* key string length past end */
    u64(&b, 1000); raw(&b, "abcdefghijklmnopqrstuvwxyz", 26);
    expect_fail(&b, "string length 1000", "key length");

    header(&b, 3, 0, 1); /* string value length past end */
    str(&b, "k"); u32(&b, GGUF_STRING); u64(&b, 1ull << 60);
    expect_fail(&b, "string length", "value length");

    header(&b, 3, 0, 1); /* invalid value type */
    str(&b, "k"); u32(&b, 99); u32(&b, 0);
    expect_fail(&b, "invalid value type 99", "kv type");

    header(&b, 3, 0, 1); /* array count past end */
    str(&b, "k"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_INT32); u64(&b, 1ull << 40); u32(&b, 0);
    expect_fail(&b, "array of 1099511627776", "array count");

    header(&b, 3, 0, 1); /* string array count past end */
    str(&b, "tokenizer.ggml.tokens"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_STRING); u64(&b, 1000);
    str(&b, "a");
    expect_fail(&b, "array count 1000", "string array count");

    header(&b, 3, 0, 1); /* nested arrays */
    str(&b, "k"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_ARRAY); u64(&b, 1); u64(&b, 0);
    expect_fail(&b, "invalid array element type", "nested array");

    header(&b, 3, 0, 2); /* duplicate key */
    str(&b, "k"); u32(&b, GGUF_UINT32); u32(&b, 1);
    str(&b, "k"); u32(&b, GGUF_UINT32); u32(&b, 2);
    expect_fail(&b, "duplicate key 'k'", "duplicate key");

    header(&b, 3, 0, 1); /* alignment not a power of two */
    str(&b, "general.alignment"); u32(&b, GGUF_UINT32); u32(&b, 24);
    expect_fail(&b, "not a power of two", "alignment");

    header(&b, 3, 1, 0); /* tensor data past end */
    tinfo(&b, "w", 2, ne2, GGML_F32, 0); align(&b, 32); raw(&b, "0123456789abcdef", 16);
    expect_fail(&b, "past the end of the data section", "tensor past end");

    header(&b, 3, 1, 0); /* offset far past end */
    tinfo(&b, "w", 1, ne8, GGML_F32, 1ull << 50); align(&b, 32);
    expect_fail(&b, "past the end", "offset past end");

    header(&b, 3, 1, 0); /* misaligned offset */
    tinfo(&b, "w", 1, ne8, GGML_F32, 4); align(&b, 32);
    for (int i = 0; i < 12; i++) u32(&b, 0);
    expect_fail(&b, "offset 4 is not a multiple of the alignment 32", "misaligned");

    header(&b, 3, 2, 0); /* overlapping tensors */
    tinfo(&b, "w1", 2, ne2, GGML_F32, 0); tinfo(&b, "w2", 1, ne8, GGML_F32, 32); align(&b, 32);
    for (int i = 0; i < 24; i++) u32(&b, 0);
    expect_fail(&b, "overlap", "overlap");

    header(&b, 3, 1, 0); /* unknown type */
    tinfo(&b, "w", 1, ne8, 77, 0); align(&b, 32);
    for (int i = 0; i < 8; i++) u32(&b, 0);
    expect_fail(&b, "unknown type 77", "unknown type");

    header(&b, 3, 1, 0); /* Q8_0 row not a multiple of 32 */
    tinfo(&b, "w", 1, ne8, GGML_Q8_0, 0); align(&b, 32);
    for (int i = 0; i < 16; i++) u32(&b, 0);
    expect_fail(&b, "not a multiple of the Q8_0 block size", "shape vs type");

    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    header(&b, 3, 1, 0); /* too many dims */
    tinfo(&b, "w", 5, ne5, GGML_F32, 0);
    expect_fail(&b, "n_dims 5", "n_dims");

    uint64_t ne0[2] = {8, 0};
    header(&b, 3, 1, 0); /* zero dimension */
    tinfo(&b, "w", 2, ne0, GGML_F32, 0);
    expect_fail(&b, "dimension 1 = 0", "zero dim");

    uint64_t nebig[2] = {1ull << 40, 1ull << 40};
    header(&b, 3, 1, 0); /* element count overflow */
    tinfo(&b, "w", 2, nebig, GGML_F32, 0);
    expect_fail(&b, "overflows", "overflow");

    header(&b, 3, 2, 0); /* duplicate tensor */
    tinfo(&b, "w", 1, ne8, GGML_F32, 0); tinfo(&b, "w", 1, ne8, GGML_F32, 32); align(&b, 32);
    expect_fail(&b, "duplicate tensor 'w'", "duplicate tensor");
}

/* ---------------------------------------------------------------------------------------- */

static void test_roundtrip(void) {
    const char *path = "/tmp/terse_test_gguf_rt.gguf";
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL, "writer");
    float a[64];
    for (int i = 0; i < 64; i++) a[i] = (float)i * 0.5f;
    int64_t ne[2] = {32, 2};
    const char *toks[3] = {"a", "bc", ""};
    int32_t ty[3] = {1, 2, 3};
    CHECK_OK(gguf_writer_set_str(w, "general.architecture", "gpt2"));
    CHECK_OK(gguf_writer_set_u32(w, "gpt2.block_count", 12));
    CHECK_OK(gguf_writer_set_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f));
    CHECK_OK(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    CHECK_OK(gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", ty, 3));
    CHECK(gguf_writer_set_u32(w, "gpt2.block_count", 1) == TERSE_ERR_INVALID, "dup key rejected");
    CHECK_OK(gguf_writer_add_tensor(w, "x", GGML_F32, 2, ne, a, sizeof a));
    CHECK_OK(gguf_writer_add_tensor_copy(w, "y", GGML_F32, 1, ne, a, 32 * 4));
    CHECK(gguf_writer_add_tensor(w, "z", GGML_F32, 1, ne, a, 7) == TERSE_ERR_INVALID, "bad size");
    CHECK_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);

    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, 1, &g));
    if (!g) return;
    uint32_t u;
    float f;
    int bo;
    CHECK_OK(gguf_get_u32(g, "gpt2.block_count", &u));
    CHECK(u == 12, "u32 %u", u);
    CHECK_OK(gguf_get_f32_or(g, "gpt2.attention.layer_norm_epsilon", 0, &f));
    CHECK(f == 1e-5f, "f32");
    CHECK_OK(gguf_get_bool_or(g, "tokenizer.ggml.add_bos_token", 0, &bo));
    CHECK(bo == 1, "bool");
    const gguf_kv *kv;
    CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &kv));
    CHECK(kv->n == 3 && gguf_str_eq(gguf_arr_str(kv, 1), "bc") && gguf_arr_str(kv, 2).len == 0,
          "string array");
    CHECK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_INT32, &kv) == TERSE_ERR_FORMAT,
          "wrong array type");
    CHECK(gguf_get_u32(g, "missing.key", &u) == TERSE_ERR_FORMAT &&
          strstr(terse_last_error(), "missing key missing.key"), "missing key named");
    const gguf_tensor *t = gguf_find_tensor(g, "x");
    CHECK(t && t->ne[0] == 32 && t->ne[1] == 2 && memcmp(t->data, a, sizeof a) == 0, "tensor x");
    t = gguf_find_tensor(g, "y");
    CHECK(t && t->nbytes == 128 && ((uintptr_t)t->data - (uintptr_t)g->file.data) % 32 == 0,
          "tensor y aligned");
    gguf_close(g);
    remove(path);
}

static void test_real_files(void) {
    static const char *names[] = {"gpt-2", "llama-spm", "phi-3", "starcoder", "deepseek-coder",
                                  "bert-bge"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", test_shared_dir(), names[i]);
        gguf_file *g = NULL;
        int rc = gguf_open(path, 1, &g);
        CHECK(rc == 0, "%s: %s", path, terse_last_error());
        if (!g) continue;
        const gguf_kv *kv;
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &kv));
        CHECK(kv && kv->n > 1000, "%s: token count", names[i]);
        gguf_close(g);
    }
    gguf_file *g = NULL;
    CHECK(gguf_open("/nonexistent/x.gguf", 1, &g) == TERSE_ERR_IO && g == NULL, "missing file");
}

int main(void) {
    test_corrupt();
    test_roundtrip();
    test_real_files();
    return test_summary("gguf");
}
