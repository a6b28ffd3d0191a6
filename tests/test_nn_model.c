/* test_nn_model.c - loading models: random models of every architecture and type load with
 * the right info and vocabulary, the generator is deterministic, and each loader failure
 * class (missing tensor, wrong shape, wrong type, unknown architecture, bad or missing
 * hyper-parameters) is one rewritten file that fails with a message naming what is wrong.
 * Packing F32 weights at load (terse_model_params.pack) on or off: the same log-probs. */
#include "harness.h"
#include "nn/nn.h"

static const char *base_path = "/tmp/terse_test_nn_model.gguf";
static const char *bad_path = "/tmp/terse_test_nn_model_bad.gguf";

/* Rewrite base_path to bad_path: kv `key` replaced (type 'u' u32, 's' string, 'f' f32) or
 * dropped (kind 'x'); tensor `drop` left out; tensor `reshape` given ne0 x ne1 F32 zeros;
 * tensor `retype` stored as I32 zeros (a type the runtime does not compute with). */
typedef struct {
    const char *key;
    char kind;
    uint32_t u;
    const char *s;
    float f;
    const char *drop, *reshape, *retype;
    int64_t ne0, ne1;
} edit;

static int rewrite(const edit *e) {
    gguf_file *g = NULL;
    int rc = gguf_open(base_path, 1, &g);
    if (rc) return rc;
    gguf_writer *w = gguf_writer_new();
    void *zeros = calloc(1 << 20, 1);
    for (uint64_t i = 0; !rc && i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (e->key && gguf_str_eq(kv->key, e->key)) {
            if (e->kind == 'u') rc = gguf_writer_set_u32(w, e->key, e->u);
            if (e->kind == 's') rc = gguf_writer_set_str(w, e->key, e->s);
            if (e->kind == 'f') rc = gguf_writer_set_f32(w, e->key, e->f);
            continue;
        }
        rc = gguf_writer_copy_kv(w, kv);
    }
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (e->drop && strcmp(name, e->drop) == 0) continue;
        if (e->reshape && strcmp(name, e->reshape) == 0) {
            int64_t ne[2] = {e->ne0, e->ne1};
            rc = gguf_writer_add_tensor(w, name, GGML_F32, 2, ne, zeros, (uint64_t)(e->ne0 * e->ne1 * 4));
        } else if (e->retype && strcmp(name, e->retype) == 0) {
            rc = gguf_writer_add_tensor(w, name, GGML_I32, t->n_dims, t->ne, zeros,
                                        gguf_type_row_bytes(GGML_I32, t->ne[0]) * (uint64_t)t->ne[1]);
        } else {
            rc = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
        }
    }
    if (!rc) rc = gguf_writer_write(w, bad_path);
    gguf_writer_free(w);
    gguf_close(g);
    free(zeros);
    return rc;
}

static void expect_fail(const edit *e, int status, const char *needle, const char *label) {
    CHECK_OK(rewrite(e));
    terse_model *m = NULL;
    int rc = terse_model_load(bad_path, terse_model_default_params(), &m);
    const char *msg = terse_last_error();
    CHECK(rc == status && m == NULL, "%s: rc %d (want %d): %s", label, rc, status, msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", label, msg, needle);
    terse_model_free(m);
}

static void test_failures(void) {
    terse_random_params rp = {"llama", 300, 64, 64, 2, 4, 2, 96, TERSE_TYPE_F32, 1, 0, 0};
    CHECK_OK(terse_write_random_model(base_path, &rp));
    edit e;
    /* the unmodified rewrite loads */
    memset(&e, 0, sizeof e);
    CHECK_OK(rewrite(&e));
    terse_model *m = NULL;
    CHECK_OK(terse_model_load(bad_path, terse_model_default_params(), &m));
    terse_model_free(m);

    e = (edit){.drop = "blk.1.ffn_gate.weight"};
    expect_fail(&e, TERSE_ERR_FORMAT, "'blk.1.ffn_gate.weight' missing", "missing tensor");
    e = (edit){.drop = "output_norm.weight"};
    expect_fail(&e, TERSE_ERR_FORMAT, "output_norm.weight", "missing norm");
    e = (edit){.reshape = "blk.0.attn_k.weight", .ne0 = 64, .ne1 = 64};
    expect_fail(&e, TERSE_ERR_FORMAT, "'blk.0.attn_k.weight' has shape [64, 64, 1, 1], expected [64, 32]",
                "wrong shape");
    e = (edit){.reshape = "output.weight", .ne0 = 64, .ne1 = 299};
    expect_fail(&e, TERSE_ERR_FORMAT, "'output.weight' has shape [64, 299", "wrong output shape");
    e = (edit){.retype = "blk.0.attn_q.weight"};
    expect_fail(&e, TERSE_ERR_UNSUPPORTED, "'blk.0.attn_q.weight' has type I32", "unsupported type");
    e = (edit){.key = "general.architecture", .kind = 's', .s = "mamba"};
    expect_fail(&e, TERSE_ERR_UNSUPPORTED, "architecture 'mamba' not supported", "unknown arch");
    e = (edit){.key = "llama.block_count", .kind = 'x'};
    expect_fail(&e, TERSE_ERR_FORMAT, "llama.block_count missing", "missing hparam");
    e = (edit){.key = "llama.attention.head_count", .kind = 'u', .u = 5};
    expect_fail(&e, TERSE_ERR_FORMAT, "not a multiple", "heads do not divide");
    e = (edit){.key = "llama.attention.head_count_kv", .kind = 'u', .u = 3};
    expect_fail(&e, TERSE_ERR_FORMAT, "head_count_kv", "kv heads do not divide");
    e = (edit){.key = "llama.embedding_length", .kind = 'u', .u = 0};
    expect_fail(&e, TERSE_ERR_FORMAT, "llama.embedding_length = 0", "zero embedding");
    e = (edit){.key = "llama.block_count", .kind = 'u', .u = 3};
    expect_fail(&e, TERSE_ERR_FORMAT, "'blk.2.attn_norm.weight' missing", "more layers than tensors");
    e = (edit){.key = "llama.attention.layer_norm_rms_epsilon", .kind = 'f', .f = -1.0f};
    expect_fail(&e, TERSE_ERR_FORMAT, "layer_norm_rms_epsilon = -1", "negative eps");
    e = (edit){.key = "llama.rope.dimension_count", .kind = 'u', .u = 15};
    expect_fail(&e, TERSE_ERR_FORMAT, "rope.dimension_count", "odd rope dims");
    e = (edit){.key = "llama.rope.freq_base", .kind = 's', .s = "big"};
    expect_fail(&e, TERSE_ERR_FORMAT, "llama.rope.freq_base", "rope base of the wrong type");

    m = NULL;
    CHECK(terse_model_load("/nonexistent/terse.gguf", terse_model_default_params(), &m) ==
          TERSE_ERR_IO && !m, "missing file");
    remove(bad_path);
    remove(base_path);
}

/* ---------------------------------------------------------------------------------------- */

static void test_load_all(void) {
    const char *archs[] = {"llama", "qwen2", "gpt2"};
    const terse_type types[] = {TERSE_TYPE_F32, TERSE_TYPE_F16, TERSE_TYPE_BF16, TERSE_TYPE_Q8_0};
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < 4; t++) {
            /* n_ff 80: Q8_0 falls back to F16 for ffn_down (rows of 80) */
            terse_random_params rp = {archs[a], 260, 32, 64, 1, 4, a == 0 ? 1 : 4, 80, types[t], 9, 0, 0};
            CHECK_OK(terse_write_random_model(base_path, &rp));
            terse_model *m = NULL;
            CHECK_OK(terse_model_load(base_path, terse_model_default_params(), &m));
            if (!m) continue;
            terse_model_info info;
            terse_model_get_info(m, &info);
            CHECK(strcmp(info.arch, archs[a]) == 0 && info.n_vocab == 260 && info.n_embd == 64 &&
                  info.n_layer == 1 && info.n_head == 4 && info.n_head_kv == rp.n_head_kv &&
                  info.n_ff == 80 && info.n_ctx_train == 32, "%s info", archs[a]);
            CHECK(info.weight_type == (int32_t)types[t], "%s weight type %d vs %d", archs[a],
                  info.weight_type, types[t]);
            CHECK(strstr(info.name, "terse-random") != NULL, "name '%s'", info.name);
            /* gpt2's tied head is written out as output.weight (llama.cpp's loader wants it), a
             * copy of token_embd, which is tied again (one matrix, as the model has): by
             * nn_output_tied, asked by training, not by the loader (no pass over both) */
            CHECK(gguf_find_tensor(m->g, "output.weight") != NULL, "%s output.weight present", archs[a]);
            if (a == 2)
                CHECK(nn_output_tied(m), "gpt2's output.weight copy is tied");
            else
                CHECK(!nn_output_tied(m), "%s's own output.weight is not tied", archs[a]);
            const terse_vocab *v = terse_model_vocab(m);
            CHECK(v && terse_vocab_size(v) == 260 && terse_vocab_eos(v) == 256, "vocab");
            if (v && t == 0) {
                int32_t ids[8];
                int64_t n = terse_tokenize(v, "hi", 2, 0, ids, NULL, 8);
                CHECK(n == 2 && ids[0] == 'h' && ids[1] == 'i', "byte tokens: n %lld", (long long)n);
            }
            terse_model_free(m);
        }
    /* read into memory instead of mapped: same info */
    {
        terse_random_params rp = {"qwen2", 260, 32, 64, 1, 4, 2, 64, TERSE_TYPE_F16, 9, 0, 0};
        CHECK_OK(terse_write_random_model(base_path, &rp));
        terse_model_params mp = terse_model_default_params();
        mp.use_mmap = 0;
        terse_model *m = NULL;
        CHECK_OK(terse_model_load(base_path, mp, &m));
        terse_model_info info;
        terse_model_get_info(m, &info);
        CHECK(m && info.n_head_kv == 2 && info.weight_type == TERSE_TYPE_F16, "loaded without mmap");
        terse_model_free(m);
    }
    /* tie_output = 1 for llama: no output.weight */
    terse_random_params rp = {"llama", 260, 32, 64, 1, 4, 4, 64, TERSE_TYPE_F32, 9, 0, 1};
    CHECK_OK(terse_write_random_model(base_path, &rp));
    terse_model *m = NULL;
    CHECK_OK(terse_model_load(base_path, terse_model_default_params(), &m));
    CHECK(m && m->output.data == m->tok_embd.data && nn_output_tied(m), "llama tied");
    terse_model_free(m);
    /* determinism: same params, same bytes */
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    rp.tie_output = 0;
    rp.type = TERSE_TYPE_Q8_0;
    CHECK_OK(terse_write_random_model(base_path, &rp));
    CHECK_OK(terse_read_all(base_path, &a, &la));
    CHECK_OK(terse_write_random_model(bad_path, &rp));
    CHECK_OK(terse_read_all(bad_path, &b, &lb));
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0, "random model deterministic");
    free(a), free(b);
    /* bad generator params */
    rp.n_vocab = 100;
    CHECK(terse_write_random_model(base_path, &rp) == TERSE_ERR_INVALID, "n_vocab 100 rejected");
    CHECK(strstr(terse_last_error(), "n_vocab = 100"), "names n_vocab: %s", terse_last_error());
    /* absurd shapes are refused before anything is allocated (would be terabytes) */
    terse_random_params huge = rp;
    huge.n_vocab = 1 << 24, huge.n_embd = 1 << 16, huge.n_head = 64, huge.n_head_kv = 64;
    huge.n_ff = 1 << 20, huge.n_layer = 4096;
    CHECK(terse_write_random_model(base_path, &huge) == TERSE_ERR_INVALID, "huge shape rejected");
    CHECK(strstr(terse_last_error(), "16 GiB"), "says the limit: %s", terse_last_error());
    huge = rp;
    huge.n_vocab = INT32_MAX;
    CHECK(terse_write_random_model(base_path, &huge) == TERSE_ERR_INVALID, "huge vocab rejected");
    CHECK(strstr(terse_last_error(), "n_vocab = 2147483647"), "names n_vocab: %s", terse_last_error());
    rp.n_vocab = 260, rp.arch = "mamba";
    CHECK(terse_write_random_model(base_path, &rp) == TERSE_ERR_UNSUPPORTED, "arch rejected");
    remove(base_path);
    remove(bad_path);
}

/* terse_model_params.pack: F32 weights packed at load (the default) or read in place give the
 * same log-probabilities, to the bit for a prompt (the gemm reads either through the same
 * panels); decoding (one row: the packed gemv or the BLAS's sgemv) agrees to rounding. */
static void test_pack_switch(void) {
    const char *archs[] = {"llama", "gpt2"}; /* own output.weight; a copy of the embedding */
    for (int a = 0; a < 2; a++) {
        terse_random_params rp = {archs[a], 300, 128, 64, 2, 4, a ? 4 : 2, 128, TERSE_TYPE_F32, 5, 0, 0};
        CHECK_OK(terse_write_random_model(base_path, &rp));
        enum { T = 40, D = 6 };
        int32_t ids[T];
        for (int i = 0; i < T; i++) ids[i] = (i * 37 + 11) % 300;
        float score[2][T], logits[2][D][300];
        for (int pack = 1; pack >= 0; pack--) {
            terse_model_params mp = terse_model_default_params();
            mp.pack = pack;
            mp.n_threads = 2;
            terse_model *m = NULL;
            terse_ctx *c = NULL;
            terse_ctx_params cp = terse_ctx_default_params();
            cp.n_threads = 2;
            CHECK_OK(terse_model_load(base_path, mp, &m));
            CHECK_OK(terse_ctx_new(m, cp, &c));
            if (!m || !c) return;
            CHECK(pack ? m->packed && m->output.packed && m->layers[0].w_up.packed
                       : !m->packed && !m->output.packed && !m->layers[0].w_up.packed,
                  "%s pack %d: packed matrices %s", archs[a], pack, m->packed ? "present" : "absent");
            CHECK_OK(terse_score(c, ids, T, score[pack]));
            terse_kv_clear(c);
            for (int i = 0; i < D; i++) {
                terse_batch b = {1, ids + i, NULL, NULL, NULL};
                CHECK_OK(terse_eval(c, &b));
                CHECK_OK(terse_eval_logits(c, 0, logits[pack][i], 1));
            }
            terse_ctx_free(c);
            terse_model_free(m);
        }
        CHECK(!memcmp(score[0], score[1], sizeof score[0]), "%s: prompt log-probs packed and "
              "in place differ (first %g vs %g)", archs[a], score[1][1], score[0][1]);
        double e = 0;
        for (int i = 0; i < D; i++)
            for (int v = 0; v < 300; v++) e = fmax(e, fabs(logits[0][i][v] - logits[1][i][v]));
        CHECK(e < 1e-4, "%s: decoding log-probs packed vs in place: max diff %g", archs[a], e);
        printf("%s F32, packed vs in place: prompt log-probs identical: %s; decoding max |dlogp| %g\n",
               archs[a], memcmp(score[0], score[1], sizeof score[0]) ? "no" : "yes", e);
    }
    terse_model_params mp = terse_model_default_params();
    terse_model *m = NULL;
    mp.pack = 2;
    CHECK(terse_model_load(base_path, mp, &m) == TERSE_ERR_INVALID && !m, "pack 2 refused");
    CHECK(strstr(terse_last_error(), "pack 2"), "names pack: %s", terse_last_error());
    mp = terse_model_default_params();
    mp.n_threads = -1;
    CHECK(terse_model_load(base_path, mp, &m) == TERSE_ERR_INVALID && !m, "n_threads -1 refused");
    CHECK(strstr(terse_last_error(), "n_threads -1"), "names n_threads: %s", terse_last_error());
    remove(base_path);
}

int main(void) {
    test_failures();
    test_load_all();
    test_pack_switch();
    return test_summary("nn_model");
}
