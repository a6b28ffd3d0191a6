/* test_gist_cache.c - gist caching (terse_gist_*, src/nn/gist_cache.c) on random llama,
 * qwen2 and gpt2 gist models:
 *   - the cached gists + the input give the logits of the full sequence (BOS, instruction,
 *     gists, input) under the gist mask (max |diff| <= 1e-4), before and after a save/load;
 *   - K gists keep the positions after the instruction (the input continues at next_pos);
 *   - the model's hash is computed once per loaded model and kept (loads compare with it);
 *   - a cache for another model, a truncated file, a model without a gist token, K = 0 or
 *     65, an instruction longer than the context: clear errors.
 */
#include "harness.h"
#include "nn/gist.h"
#include "nn/nn.h"
#include "terse.h"
#include "train/gist.h"

static const char *INSTR = "Translate the sentence into French.";
static const char *INPUT = "The cat sleeps.";

static terse_model *gist_model(const char *label, terse_random_params rp, char *path, size_t cap) {
    char base[256];
    snprintf(base, sizeof base, "%s", test_tmp_path(label));
    snprintf(path, cap, "%s.gist", base);
    CHECK_OK(terse_write_random_model(base, &rp));
    CHECK_OK(gist_model_make(base, path));
    remove(base);
    terse_model *m = NULL;
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    return m;
}

static void run(const char *label, terse_random_params rp, int32_t K) {
    char mpath[300], gpath[300], tpath[300];
    terse_model *m = gist_model(label, rp, mpath, sizeof mpath);
    if (!m) return;
    snprintf(gpath, sizeof gpath, "%s.g.gguf", mpath);
    snprintf(tpath, sizeof tpath, "%s.t.gguf", mpath);
    const int V = m->n_vocab;
    terse_ctx *c = NULL;
    terse_gist *g = NULL, *g2 = NULL;
    CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
    CHECK_OK(terse_gist_compute(c, INSTR, strlen(INSTR), K, &g));
    if (!c || !g) goto done;
    /* the full sequence, built as the training code does */
    gist_example ex;
    CHECK_OK(gist_example_build(m, gist_token_id(m), K, INSTR, INPUT, "x", 256, &ex));
    CHECK(ex.first == terse_gist_instruction_tokens(g) && ex.last + 1 == terse_gist_next_pos(g),
          "%s: gist positions %d..%d = cache's %d, next %d", label, ex.first, ex.last,
          terse_gist_instruction_tokens(g), terse_gist_next_pos(g));
    int32_t in[64];
    int64_t n_in = terse_gist_input_ids(m, INPUT, strlen(INPUT), in, 64);
    CHECK(n_in > 0 && ex.last + 1 + n_in == ex.n_prompt &&
          !memcmp(in, ex.ids + ex.last + 1, (size_t)n_in * sizeof *in), "%s: input ids", label);
    const int32_t T = ex.n_prompt;
    uint8_t *mask = malloc((size_t)T * T);
    float *full = malloc(sizeof(float) * (size_t)T * V), *row = malloc(sizeof(float) * V);
    CHECK_OK(gist_mask_build(GIST_MASK_GIST, T, ex.first, ex.last, mask));
    terse_kv_clear(c);
    terse_batch b = {T, ex.ids, NULL, NULL, mask};
    CHECK_OK(terse_eval(c, &b));
    for (int32_t i = 0; i < T; i++) CHECK_OK(terse_eval_logits(c, i, full + (size_t)i * V, 0));
    CHECK_OK(terse_gist_save(g, gpath));
    {   /* the model's hash: computed once (by terse_gist_compute), kept, = a fresh pass */
        CHECK(m->content_hash_set, "%s: hash kept in the model after the first use", label);
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint64_t t = 0; t < m->g->n_tensors; t++) {
            const uint8_t *p = m->g->tensors[t].data;
            for (uint64_t i = 0; i < m->g->tensors[t].nbytes; i++) h = (h ^ p[i]) * 0x100000001b3ull;
        }
        CHECK(nn_model_content_hash(m) == h && m->content_hash == h, "%s: kept hash = FNV-1a of "
              "the tensors", label);
        m->content_hash ^= 1; /* proof that loads read the kept value, not a new pass */
        terse_gist *t = NULL;
        CHECK(terse_gist_load(m, gpath, &t) == TERSE_ERR_INVALID && !t, "%s: load uses the kept "
              "hash", label);
        m->content_hash ^= 1;
    }
    CHECK_OK(terse_gist_load(m, gpath, &g2));
    for (int pass = 0; pass < 2 && g2; pass++) {
        CHECK_OK(terse_gist_apply(c, pass ? g2 : g));
        CHECK(terse_kv_len(c) == K, "%s: cache holds the K gists", label);
        terse_batch bi = {(int32_t)n_in, in, NULL, NULL, NULL};
        CHECK_OK(terse_eval(c, &bi));
        double d = 0;
        for (int32_t i = 0; i < n_in; i++) {
            CHECK_OK(terse_eval_logits(c, i, row, 0));
            for (int v = 0; v < V; v++)
                d = fmax(d, fabs((double)row[v] - full[(size_t)(ex.last + 1 + i) * V + v]));
        }
        printf("  %-6s K=%d %s: cached gists + input vs gist-masked full sequence: max |diff| "
               "%.2e\n", label, K, pass ? "loaded" : "computed", d);
        CHECK(d <= 1e-4, "%s: gist cache differs from the gist mask by %g", label, d);
    }
    /* truncated file */
    {
        FILE *f = fopen(gpath, "rb"), *o = fopen(tpath, "wb");
        char buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (o) fwrite(buf, 1, n > 600 ? 600 : n / 2, o);
        if (f) fclose(f);
        if (o) fclose(o);
        terse_gist *t = NULL;
        int rc = terse_gist_load(m, tpath, &t);
        CHECK(rc != TERSE_OK && !t, "%s: truncated gist file refused (%s)", label, terse_last_error());
        remove(tpath);
    }
    gist_example_free(&ex);
    free(mask), free(full), free(row);
done:
    terse_gist_free(g), terse_gist_free(g2);
    terse_ctx_free(c);
    terse_model_free(m);
    remove(mpath);
    /* another model (other seed) refuses this file */
    rp.seed += 100;
    terse_model *m2 = gist_model("other", rp, mpath, sizeof mpath);
    if (m2) {
        terse_gist *t = NULL;
        CHECK(terse_gist_load(m2, gpath, &t) == TERSE_ERR_INVALID && !t, "%s: other model's cache", label);
        CHECK(strstr(terse_last_error(), "made with model") != NULL, "message: %s", terse_last_error());
        terse_model_free(m2);
        remove(mpath);
    }
    remove(gpath);
}

static void errors(void) {
    terse_random_params rp = {"llama", 300, 32, 32, 1, 4, 2, 48, TERSE_TYPE_F32, 9, 0.3f, 0};
    char base[256], mpath[300];
    snprintf(base, sizeof base, "%s", test_tmp_path("plain.gguf"));
    CHECK_OK(terse_write_random_model(base, &rp));
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    terse_gist *g = NULL;
    CHECK_OK(terse_model_load(base, terse_model_default_params(), &m));
    if (m) {
        CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
        CHECK(terse_gist_compute(c, "a", 1, 1, &g) == TERSE_ERR_INVALID && !g, "no gist token");
        CHECK(strstr(terse_last_error(), "no gist token") != NULL, "message: %s", terse_last_error());
        terse_ctx_free(c), c = NULL;
        terse_model_free(m);
    }
    remove(base);
    m = gist_model("small", rp, mpath, sizeof mpath);
    if (m) {
        CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
        CHECK(terse_gist_compute(c, "a", 1, 0, &g) == TERSE_ERR_INVALID, "K = 0");
        CHECK(terse_gist_compute(c, "a", 1, 65, &g) == TERSE_ERR_INVALID, "K = 65");
        char longtext[200];
        memset(longtext, 'x', sizeof longtext);
        CHECK(terse_gist_compute(c, longtext, sizeof longtext, 1, &g) == TERSE_ERR_RANGE && !g,
              "instruction longer than the context");
        CHECK(terse_gist_load(m, "/nonexistent/g.gguf", &g) != TERSE_OK && !g, "missing file");
        CHECK(terse_gist_load(m, mpath, &g) == TERSE_ERR_FORMAT && !g, "a model is not a gist file");
        terse_ctx_free(c);
        terse_model_free(m);
    }
    remove(mpath);
}

int main(void) {
    /* arch, V, ctx, C, L, H, Hkv, F, type, seed, std, tie */
    run("llama", (terse_random_params){"llama", 300, 128, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 31, 0.3f, 0}, 1);
    run("qwen2", (terse_random_params){"qwen2", 300, 128, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 32, 0.3f, 0}, 3);
    run("gpt2", (terse_random_params){"gpt2", 300, 128, 32, 2, 4, 0, 48, TERSE_TYPE_F32, 33, 0.3f, 0}, 2);
    errors();
    return test_summary("test_gist_cache");
}
