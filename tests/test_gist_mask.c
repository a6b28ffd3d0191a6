/* test_gist_mask.c - the gist attention masks (nn/gist.h) on random llama, qwen2 and gpt2
 * models:
 *   - the masks themselves (the paper's docstring example a b c G d, AND-ed with causal);
 *   - for the gist mask and both controls, the training forward (nn_grad_forward) and the
 *     scoring forward (terse_eval with the same bytes) give the same logits;
 *   - the gist mask is what gist caching computes: the prefix (instruction + gists) run
 *     causally, the instruction's cache entries dropped, the rest run at positions last+1..
 *     gives the masked full-sequence logits;
 *   - the negative control: post-gist logits do not depend on the instruction or the gists;
 *     the positive control is the causal mask;
 *   - bad arguments are refused.
 */
#include "helpers.h"
#include "nn/gist.h"
#include "nn/grad.h"
#include "terse.h"

enum { T = 16, FIRST = 6, LAST = 7 }; /* instruction 0..5, two gists 6..7, then 8 tokens */

static uint64_t rng = 777;
static int32_t rid(int32_t V) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((rng >> 33) % (uint64_t)V);
}

/* logits of all T rows through terse_eval with mask (NULL: causal) */
static int eval_all(terse_ctx *c, const int32_t *ids, const uint8_t *mask, float *out, int V) {
    terse_kv_clear(c);
    terse_batch b = {T, ids, NULL, NULL, mask};
    int rc = terse_eval(c, &b);
    for (int i = 0; i < T && !rc; i++) rc = terse_eval_logits(c, i, out + (size_t)i * V, 0);
    return rc;
}

static double maxdiff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void shapes(void) {
    /* a b c G d: first = last = 3 */
    uint8_t m[25];
    static const uint8_t gist[25] = {1,0,0,0,0, 1,1,0,0,0, 1,1,1,0,0, 1,1,1,1,0, 0,0,0,1,1};
    static const uint8_t neg[25]  = {1,0,0,0,0, 1,1,0,0,0, 1,1,1,0,0, 1,1,1,1,0, 0,0,0,0,1};
    static const uint8_t pos[25]  = {1,0,0,0,0, 1,1,0,0,0, 1,1,1,0,0, 1,1,1,1,0, 1,1,1,1,1};
    CHECK_OK(gist_mask_build(GIST_MASK_GIST, 5, 3, 3, m));
    CHECK(!memcmp(m, gist, 25), "gist mask of a b c G d");
    CHECK_OK(gist_mask_build(GIST_MASK_NEG, 5, 3, 3, m));
    CHECK(!memcmp(m, neg, 25), "negative control of a b c G d");
    CHECK_OK(gist_mask_build(GIST_MASK_POS, 5, 3, 3, m));
    CHECK(!memcmp(m, pos, 25), "positive control of a b c G d");
    CHECK_OK(gist_mask_build(GIST_MASK_GIST, 5, -1, -1, m));
    CHECK(!memcmp(m, pos, 25), "no gists: causal");
    /* several gists: a G G b -> b sees G G b */
    uint8_t m4[16];
    CHECK_OK(gist_mask_build(GIST_MASK_GIST, 4, 1, 2, m4));
    CHECK(m4[12] == 0 && m4[13] && m4[14] && m4[15], "K = 2: last row sees the gists only");
    CHECK(m4[8] && m4[9] && m4[10] && !m4[11], "K = 2: second gist sees the prefix");
    /* errors */
    CHECK(gist_mask_build(GIST_MASK_GIST, 0, -1, -1, m) == TERSE_ERR_INVALID, "T = 0");
    CHECK(gist_mask_build(GIST_MASK_GIST, 5, 3, 5, m) == TERSE_ERR_INVALID, "last past T");
    CHECK(gist_mask_build(GIST_MASK_GIST, 5, 3, 2, m) == TERSE_ERR_INVALID, "last < first");
    CHECK(gist_mask_build(GIST_MASK_GIST, 5, -1, 2, m) == TERSE_ERR_INVALID, "first -1 alone");
    CHECK(gist_mask_build((gist_mask_kind)7, 5, 3, 3, m) == TERSE_ERR_INVALID, "bad kind");
    CHECK(gist_mask_build(GIST_MASK_GIST, 5, 3, 3, NULL) == TERSE_ERR_INVALID, "NULL mask");
    CHECK(gist_mask_kind_parse("gist") == GIST_MASK_GIST && gist_mask_kind_parse("pos") ==
          GIST_MASK_POS && gist_mask_kind_parse("neg") == GIST_MASK_NEG &&
          gist_mask_kind_parse("x") == -1 && gist_mask_kind_parse(NULL) == -1, "kind names");
}

static void run(const char *label, terse_random_params rp) {
    terse_model *m = test_random_model(label, &rp);
    if (!m) return;
    const int V = m->n_vocab;
    nn_grad *g = NULL;
    terse_ctx *c = NULL;
    CHECK_OK(nn_grad_new(m, (nn_grad_params){.max_tokens = T, .n_threads = 2}, &g));
    CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
    float *a = malloc(sizeof(float) * T * V), *b = malloc(sizeof(float) * T * V);
    uint8_t mask[T * T];
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = rid(V);
    ids[FIRST] = ids[LAST] = V - 1; /* the gist token */
    if (!g || !c) goto done;

    /* 1. training forward = scoring forward, for every kind */
    for (int k = 0; k < 3; k++) {
        const float *lg;
        CHECK_OK(gist_mask_build((gist_mask_kind)k, T, FIRST, LAST, mask));
        CHECK_OK(nn_grad_forward(g, ids, NULL, T, mask, &lg));
        CHECK_OK(eval_all(c, ids, mask, a, V));
        double d = maxdiff(a, lg, (size_t)T * V);
        printf("  %-6s %-4s training forward vs terse_eval: max |diff| %.2e\n", label,
               k == 0 ? "gist" : k == 1 ? "pos" : "neg", d);
        CHECK(d <= 1e-4, "%s kind %d: forwards differ by %g", label, k, d);
    }

    /* 2. the gist mask = the gist cache: prefix causal, drop [0, FIRST), continue at LAST+1 */
    {
        CHECK_OK(gist_mask_build(GIST_MASK_GIST, T, FIRST, LAST, mask));
        CHECK_OK(eval_all(c, ids, mask, a, V));
        terse_kv_clear(c);
        terse_batch pre = {LAST + 1, ids, NULL, NULL, NULL};
        CHECK_OK(terse_eval(c, &pre));
        CHECK_OK(terse_kv_remove(c, 0, FIRST));
        int32_t pos[T];
        for (int i = 0; i < T - LAST - 1; i++) pos[i] = LAST + 1 + i;
        terse_batch rest = {T - LAST - 1, ids + LAST + 1, NULL, pos, NULL};
        CHECK_OK(terse_eval(c, &rest));
        double d = 0;
        for (int i = 0; i < T - LAST - 1; i++) {
            CHECK_OK(terse_eval_logits(c, i, b, 0));
            d = fmax(d, maxdiff(b, a + (size_t)(LAST + 1 + i) * V, (size_t)V));
        }
        printf("  %-6s gist mask vs cached gists (instruction dropped): max |diff| %.2e\n",
               label, d);
        CHECK(d <= 1e-4, "%s: gist mask and gist cache differ by %g", label, d);
    }

    /* 3. controls: pos = causal; neg hides the instruction and the gists */
    {
        CHECK_OK(gist_mask_build(GIST_MASK_POS, T, FIRST, LAST, mask));
        CHECK_OK(eval_all(c, ids, mask, a, V));
        CHECK_OK(eval_all(c, ids, NULL, b, V));
        CHECK(maxdiff(a, b, (size_t)T * V) <= 1e-5, "%s: pos control = causal", label);
        CHECK_OK(gist_mask_build(GIST_MASK_NEG, T, FIRST, LAST, mask));
        CHECK_OK(eval_all(c, ids, mask, a, V));
        int32_t ids2[T];
        memcpy(ids2, ids, sizeof ids);
        for (int i = 0; i <= LAST; i++) ids2[i] = rid(V);
        CHECK_OK(eval_all(c, ids2, mask, b, V));
        size_t off = (size_t)(LAST + 1) * V, n = (size_t)(T - LAST - 1) * V;
        double d = maxdiff(a + off, b + off, n);
        CHECK(d <= 1e-5, "%s: neg control sees the instruction (%g)", label, d);
        CHECK_OK(gist_mask_build(GIST_MASK_GIST, T, FIRST, LAST, mask));
        CHECK_OK(eval_all(c, ids, mask, a, V));
        CHECK_OK(eval_all(c, ids2, mask, b, V));
        CHECK(maxdiff(a + off, b + off, n) > 1e-3, "%s: gist rows depend on the instruction "
              "through the gists", label);
    }
done:
    free(a), free(b);
    terse_ctx_free(c);
    nn_grad_free(g);
    terse_model_free(m);
}

int main(void) {
    shapes();
    /* arch, V, ctx, C, L, H, Hkv, F, type, seed, std, tie */
    run("llama", (terse_random_params){"llama", 300, 64, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 21, 0.3f, 0});
    run("qwen2", (terse_random_params){"qwen2", 300, 64, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 22, 0.3f, 0});
    run("gpt2", (terse_random_params){"gpt2", 300, 64, 32, 2, 4, 0, 48, TERSE_TYPE_F32, 23, 0.3f, 0});
    return test_summary("test_gist_mask");
}
