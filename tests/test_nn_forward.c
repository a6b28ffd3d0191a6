/* test_nn_forward.c - the runtime's forward pass and scoring, on small random models of each
 * architecture (written to /tmp by terse_write_random_model):
 *   - cached incremental evaluation equals one-shot evaluation, and internal batch splits too
 *   - chunked log-probs equal a naive full-logit log-softmax in double precision
 *   - a mask equal to the causal one changes nothing; a mask hiding a prefix equals evaluating
 *     without it (positions supplied); embedding input equals looking up the ids
 *   - truncate + re-eval equals a fresh eval
 *   - F16 / BF16 / Q8_0 weights stay close to F32
 *   - top-k, generation (greedy = step-by-step argmax, seeded sampling repeatable)
 *   - every bad argument gets TERSE_ERR_INVALID / TERSE_ERR_RANGE naming the value
 */
#include <math.h>

#include "harness.h"
#include "nn/nn.h"

#define NTOK 50

static const char *arch_name;

static char *model_path(const char *arch, int type) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/terse_test_nn_forward_%s_%d.gguf", arch, type);
    return buf;
}

static terse_model *make(const char *arch, terse_type type) {
    terse_random_params rp = {arch, 300, 128, 64, 2, 4, 2, 128, type, 7, 0.2f, 0};
    if (strcmp(arch, "gpt2") == 0) rp.n_head_kv = 4, rp.n_ff = 256;
    const char *path = model_path(arch, type);
    terse_model *m = NULL;
    CHECK_OK(terse_write_random_model(path, &rp));
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    return m;
}

static terse_ctx *ctx(const terse_model *m, int n_batch, int vocab_chunk) {
    terse_ctx_params p = terse_ctx_default_params();
    p.n_batch = n_batch;
    p.vocab_chunk = vocab_chunk;
    terse_ctx *c = NULL;
    CHECK_OK(terse_ctx_new(m, p, &c));
    return c;
}

static double max_diff(const float *a, const float *b, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
    }
    return e;
}

static void eval_ids(terse_ctx *c, const int32_t *ids, int n, const int32_t *pos,
                     const uint8_t *mask) {
    terse_batch b = {.n = n, .ids = ids, .pos = pos, .mask = mask};
    CHECK_OK(terse_eval(c, &b));
}

/* ---------------------------------------------------------------------------------------- */

static void test_incremental(terse_model *m, const int32_t *ids, const float *ref) {
    /* internal batch splitting in terse_score */
    terse_ctx *c = ctx(m, 8, 0);
    float s[NTOK];
    CHECK_OK(terse_score(c, ids, NTOK, s));
    CHECK(max_diff(s, ref, NTOK) < 1e-4, "%s: score with n_batch 8 vs 512: %g", arch_name,
          max_diff(s, ref, NTOK));
    /* the cache grown by hand: 13, 1, 36 tokens */
    terse_kv_clear(c);
    const int cut[] = {0, 13, 14, NTOK};
    float lp[NTOK];
    for (int k = 0; k < 3; k++) {
        int n = cut[k + 1] - cut[k];
        eval_ids(c, ids + cut[k], n, NULL, NULL);
        int nt = cut[k + 1] < NTOK ? n : n - 1;
        CHECK_OK(terse_eval_logprobs(c, ids + cut[k] + 1, nt, lp + cut[k] + 1));
    }
    CHECK(terse_kv_len(c) == NTOK, "kv_len %d", terse_kv_len(c));
    double e = 0;
    for (int i = 1; i < NTOK; i++) e = fmax(e, fabs(-lp[i] - ref[i]));
    CHECK(e < 1e-4, "%s: incremental vs one-shot: %g", arch_name, e);
    /* a big eval split internally (n > n_batch) */
    terse_kv_clear(c);
    eval_ids(c, ids, NTOK, NULL, NULL);
    CHECK_OK(terse_eval_logprobs(c, ids + 1, NTOK - 1, lp + 1));
    e = 0;
    for (int i = 1; i < NTOK; i++) e = fmax(e, fabs(-lp[i] - ref[i]));
    CHECK(e < 1e-4, "%s: eval of 50 with n_batch 8: %g", arch_name, e);
    terse_ctx_free(c);
}

static void test_chunked(terse_model *m, const int32_t *ids) {
    terse_ctx *c = ctx(m, 0, 64); /* 300 = 4 x 64 + 44 */
    eval_ids(c, ids, NTOK, NULL, NULL);
    float lp[NTOK], row[300];
    CHECK_OK(terse_eval_logprobs(c, ids + 1, NTOK - 1, lp));
    const int64_t C = m->n_embd;
    float *w = malloc(sizeof(float) * C);
    double e = 0, e2 = 0;
    double *logit = malloc(sizeof(double) * m->n_vocab);
    for (int i = 0; i < NTOK - 1; i++) {
        const float *h = c->hidden + i * C;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < m->n_vocab; v++) {
            nn_matrix_row(&m->output, v, w);
            double d = 0;
            for (int k = 0; k < C; k++) d += (double)h[k] * w[k];
            if (m->output_b) d += m->output_b[v];                        /* phi2 */
            if (m->final_softcap > 0) d = m->final_softcap * tanh(d / m->final_softcap); /* gemma2 */
            logit[v] = d;
            mx = fmax(mx, d);
        }
        for (int v = 0; v < m->n_vocab; v++) s += exp(logit[v] - mx);
        double naive = logit[ids[i + 1]] - mx - log(s);
        e = fmax(e, fabs(naive - lp[i]));
        CHECK_OK(terse_eval_logits(c, i, row, 1));
        e2 = fmax(e2, fabs(row[ids[i + 1]] - lp[i]));
    }
    CHECK(e < 1e-4, "%s: chunked vs naive log-probs: %g", arch_name, e);
    float hid[2 * 64];
    CHECK_OK(terse_eval_hidden(c, 3, 2, hid));
    CHECK(memcmp(hid, c->hidden + 3 * C, sizeof hid) == 0, "hidden rows copied");
    CHECK(terse_eval_hidden(c, 49, 2, hid) == TERSE_ERR_RANGE, "hidden rows past the eval");
    CHECK(terse_ctx_model(c) == m, "context's model");
    CHECK(e2 < 1e-4, "%s: chunked vs full log-softmax row: %g", arch_name, e2);
    /* top-k */
    int32_t top[100];
    float tlp[100];
    CHECK_OK(terse_eval_logits(c, 7, row, 1));
    CHECK_OK(terse_eval_topk(c, 7, 5, top, tlp));
    int best = 0;
    for (int v = 1; v < 300; v++)
        if (row[v] > row[best]) best = v;
    CHECK(top[0] == best, "top-1 %d vs argmax %d", top[0], best);
    int sorted = 1;
    for (int j = 1; j < 5; j++) sorted &= tlp[j] <= tlp[j - 1] && tlp[j] == row[top[j]];
    CHECK(sorted, "top-5 sorted with their log-probs");
    int32_t top100[100];
    CHECK_OK(terse_eval_topk(c, 7, 100, top100, NULL));
    CHECK(memcmp(top, top100, sizeof(int32_t) * 5) == 0, "top-100 starts with top-5");
    free(w);
    free(logit);
    terse_ctx_free(c);
}

static void test_masks(terse_model *m, const int32_t *ids) {
    terse_ctx *c = ctx(m, 0, 0);
    float a[NTOK], b[NTOK];
    /* causal mask == no mask, with 12 tokens already cached */
    eval_ids(c, ids, 12, NULL, NULL);
    eval_ids(c, ids + 12, 30, NULL, NULL);
    CHECK_OK(terse_eval_logprobs(c, ids + 13, 29, a));
    CHECK_OK(terse_kv_truncate(c, 12));
    uint8_t *mask = calloc(42 * 42, 1);
    for (int i = 0; i < 30; i++)
        for (int j = 0; j <= 12 + i; j++) mask[i * 42 + j] = 1;
    eval_ids(c, ids + 12, 30, NULL, mask);
    CHECK_OK(terse_eval_logprobs(c, ids + 13, 29, b));
    CHECK(max_diff(a, b, 29) < 1e-6, "%s: causal mask vs none: %g", arch_name, max_diff(a, b, 29));

    /* prefix A (10) hidden from B (20): B with positions 0.. equals B alone */
    terse_kv_clear(c);
    memset(mask, 0, 42 * 42);
    int32_t pos[30];
    for (int i = 0; i < 30; i++) {
        pos[i] = i < 10 ? i : i - 10;
        int lo = i < 10 ? 0 : 10;
        for (int j = lo; j <= i; j++) mask[i * 30 + j] = 1;
    }
    eval_ids(c, ids, 30, pos, mask);
    CHECK_OK(terse_eval_logprobs(c, ids + 1, 29, a)); /* a[10..28] are B's */
    terse_kv_clear(c);
    eval_ids(c, ids + 10, 20, NULL, NULL);
    CHECK_OK(terse_eval_logprobs(c, ids + 11, 19, b));
    CHECK(max_diff(a + 10, b, 19) < 1e-4, "%s: hidden prefix vs without it: %g", arch_name,
          max_diff(a + 10, b, 19));

    /* embeddings instead of ids */
    const int64_t C = m->n_embd;
    float *embd = malloc(sizeof(float) * 20 * C);
    for (int i = 0; i < 20; i++) nn_matrix_row(&m->tok_embd, ids[10 + i], embd + i * C);
    terse_kv_clear(c);
    terse_batch eb = {.n = 20, .embd = embd};
    CHECK_OK(terse_eval(c, &eb));
    CHECK_OK(terse_eval_logprobs(c, ids + 11, 19, a));
    CHECK(max_diff(a, b, 19) < 1e-6, "%s: embeddings vs ids: %g", arch_name, max_diff(a, b, 19));

    /* truncate + re-eval == fresh */
    terse_kv_clear(c);
    eval_ids(c, ids, 30, NULL, NULL);
    CHECK_OK(terse_kv_truncate(c, 12));
    eval_ids(c, ids + 30, 10, NULL, NULL);
    CHECK_OK(terse_eval_logprobs(c, ids + 31, 9, a));
    int32_t joined[22];
    memcpy(joined, ids, 12 * sizeof(int32_t));
    memcpy(joined + 12, ids + 30, 10 * sizeof(int32_t));
    terse_kv_clear(c);
    eval_ids(c, joined, 22, NULL, NULL);
    CHECK_OK(terse_eval_logprobs(c, ids + 31, 9, b));
    /* b's rows are positions 0..21: the last 10 are ours */
    float b2[22];
    CHECK_OK(terse_eval_logprobs(c, joined + 1, 21, b2));
    CHECK(max_diff(a, b2 + 12, 9) < 1e-4, "%s: truncate + re-eval vs fresh: %g", arch_name,
          max_diff(a, b2 + 12, 9));

    /* removing B from a cached [A B C] then evaluating D equals D with a mask hiding B */
    {
        int32_t dpos[10];
        for (int i = 0; i < 10; i++) dpos[i] = 30 + i;
        uint8_t dmask[10 * 40] = {0};
        for (int i = 0; i < 10; i++)
            for (int j = 0; j <= 30 + i; j++) dmask[i * 40 + j] = j < 10 || j >= 20;
        terse_kv_clear(c);
        eval_ids(c, ids, 30, NULL, NULL);
        eval_ids(c, ids + 30, 10, dpos, dmask);
        float r1[9], r2[9];
        CHECK_OK(terse_eval_logprobs(c, ids + 31, 9, r1));
        CHECK_OK(terse_kv_truncate(c, 30));
        CHECK_OK(terse_kv_remove(c, 10, 20));
        CHECK(terse_kv_len(c) == 20, "kv_len after remove %d", terse_kv_len(c));
        eval_ids(c, ids + 30, 10, dpos, NULL);
        CHECK_OK(terse_eval_logprobs(c, ids + 31, 9, r2));
        CHECK(max_diff(r1, r2, 9) < 1e-4, "%s: kv_remove vs a mask hiding the entries: %g",
              arch_name, max_diff(r1, r2, 9));
        CHECK(terse_kv_remove(c, 5, 31) == TERSE_ERR_RANGE, "remove past kv_len");
        CHECK_OK(terse_kv_remove(c, 0, 0));
    }

    /* the same masked batch split into pieces of 8 (no token sees a later piece) */
    terse_ctx *small = ctx(m, 8, 0);
    float b3[29];
    eval_ids(small, ids, 30, pos, mask);
    CHECK_OK(terse_eval_logprobs(small, ids + 1, 29, b3));
    CHECK_OK(terse_kv_truncate(c, 0));
    eval_ids(c, ids, 30, pos, mask);
    float a2[29];
    CHECK_OK(terse_eval_logprobs(c, ids + 1, 29, a2));
    CHECK(max_diff(a2, b3, 29) < 1e-4, "%s: masked batch split by n_batch 8: %g", arch_name,
          max_diff(a2, b3, 29));
    terse_kv_clear(small);
    /* a mask that lets an early token see a later sub-batch cannot be split */
    memset(mask, 1, 20 * 20);
    terse_batch mb = {.n = 20, .ids = ids, .mask = mask};
    CHECK(terse_eval(small, &mb) == TERSE_ERR_INVALID, "mask across sub-batches rejected");
    CHECK(strstr(terse_last_error(), "later token") != NULL, "message: %s", terse_last_error());
    terse_ctx_free(small);
    free(embd);
    free(mask);
    terse_ctx_free(c);
}

static void test_types(const char *arch, const int32_t *ids, const float *ref) {
    const terse_type types[] = {TERSE_TYPE_F16, TERSE_TYPE_BF16, TERSE_TYPE_Q8_0};
    /* The test models are deliberately "sharp" (init_std 0.2, surprisals 2..10 nats), so
     * weight rounding shows: relative rounding is 2^-11 (F16), 2^-8 (BF16), ~1/250 of the
     * block max (Q8_0); observed max errors are ~5e-3, ~6e-2, ~2e-1 nats. */
    const double tol_max[] = {1.5e-2, 1.5e-1, 4e-1}, tol_mean[] = {3e-3, 3e-2, 8e-2};
    for (int t = 0; t < 3; t++) {
        terse_model *m = make(arch, types[t]);
        if (!m) continue;
        terse_model_info info;
        terse_model_get_info(m, &info);
        CHECK(info.weight_type == (int32_t)types[t], "weight type %d", info.weight_type);
        terse_ctx *c = ctx(m, 0, 0);
        float s[NTOK];
        CHECK_OK(terse_score(c, ids, NTOK, s));
        double e = max_diff(s, ref, NTOK), mean = 0;
        for (int i = 0; i < NTOK; i++) mean += fabs((double)s[i] - ref[i]) / NTOK;
        printf("%s %s: |surprisal - F32| max %.2e mean %.2e (tolerances %.0e, %.0e)\n", arch,
               t == 0 ? "F16" : t == 1 ? "BF16" : "Q8_0", e, mean, tol_max[t], tol_mean[t]);
        CHECK(e < tol_max[t] && mean < tol_mean[t], "%s type %d vs F32: max %g mean %g", arch,
              types[t], e, mean);
        terse_ctx_free(c);
        terse_model_free(m);
        remove(model_path(arch, types[t]));
    }
}

static void test_generate(terse_model *m, const int32_t *ids) {
    terse_ctx *c = ctx(m, 0, 0);
    terse_sample_params p = terse_sample_default_params();
    p.stop_at_eos = 0;
    int32_t out[10], out2[10];
    CHECK(terse_generate(c, ids, 5, p, out, 10) == 10, "greedy count: %s", terse_last_error());
    CHECK(terse_kv_len(c) == 15, "cache after generation %d", terse_kv_len(c));
    /* step by step */
    int32_t seq[15];
    memcpy(seq, ids, 5 * sizeof(int32_t));
    float row[300];
    int ok = 1;
    for (int k = 0; k < 10; k++) {
        terse_kv_clear(c);
        eval_ids(c, seq, 5 + k, NULL, NULL);
        CHECK_OK(terse_eval_logits(c, 4 + k, row, 0));
        int best = 0;
        for (int v = 1; v < 300; v++)
            if (row[v] > row[best]) best = v;
        ok &= best == out[k];
        seq[5 + k] = best;
    }
    CHECK(ok, "%s: greedy generation equals step-by-step argmax", arch_name);
    /* sampling: same seed, same tokens; a tiny top_p is greedy */
    p.temperature = 0.8f;
    p.seed = 5;
    terse_kv_clear(c);
    CHECK(terse_generate(c, ids, 5, p, out, 10) == 10, "sampled count");
    terse_kv_clear(c);
    CHECK(terse_generate(c, ids, 5, p, out2, 10) == 10, "sampled count");
    CHECK(memcmp(out, out2, sizeof out) == 0, "same seed, same sample");
    p.top_p = 1e-6f;
    terse_kv_clear(c);
    CHECK(terse_generate(c, ids, 5, p, out2, 10) == 10, "top-p count");
    CHECK(memcmp(out2, seq + 5, sizeof out2) == 0, "top_p -> 0 is greedy");
    p.top_p = 0.9f;
    terse_kv_clear(c);
    CHECK(terse_generate(c, ids, 5, p, out2, 10) == 10, "top-p 0.9");
    int in_range = 1;
    for (int k = 0; k < 10; k++) in_range &= out2[k] >= 0 && out2[k] < 300;
    CHECK(in_range, "sampled ids in range");
    p.top_p = 1.5f;
    CHECK(terse_generate(c, ids, 5, p, out2, 10) == TERSE_ERR_INVALID, "top_p 1.5 rejected");
    terse_ctx_free(c);
}

static void test_errors(terse_model *m, const int32_t *ids) {
    terse_ctx *c = ctx(m, 0, 0);
    int32_t bad[3] = {1, 300, 2};
    float s[200];
    CHECK(terse_score(c, bad, 3, s) == TERSE_ERR_INVALID, "id 300 rejected");
    CHECK(strstr(terse_last_error(), "300") != NULL, "message names the id: %s", terse_last_error());
    bad[1] = -1;
    terse_batch b = {.n = 3, .ids = bad};
    CHECK(terse_eval(c, &b) == TERSE_ERR_INVALID, "id -1 rejected");
    int32_t *longer = calloc(129, sizeof(int32_t));
    CHECK(terse_score(c, longer, 129, s) == TERSE_ERR_RANGE, "129 tokens > n_ctx 128");
    CHECK(strstr(terse_last_error(), "129") != NULL, "message: %s", terse_last_error());
    eval_ids(c, longer, 100, NULL, NULL);
    b = (terse_batch){.n = 29, .ids = longer};
    CHECK(terse_eval(c, &b) == TERSE_ERR_RANGE, "cache overflow rejected");
    CHECK(terse_kv_len(c) == 100, "cache untouched after a rejected eval");
    float e[64];
    b = (terse_batch){.n = 1, .ids = ids, .embd = e};
    CHECK(terse_eval(c, &b) == TERSE_ERR_INVALID, "ids and embd both given");
    b = (terse_batch){.n = 0, .ids = ids};
    CHECK(terse_eval(c, &b) == TERSE_ERR_INVALID, "empty batch");
    CHECK(terse_eval_logprobs(c, ids, 101, s) == TERSE_ERR_RANGE, "logprobs beyond the eval");
    CHECK(terse_eval_logits(c, 100, s, 1) == TERSE_ERR_RANGE, "logits beyond the eval");
    CHECK(terse_kv_truncate(c, 101) == TERSE_ERR_RANGE, "truncate beyond kv_len");
    int32_t pos[1] = {-3};
    b = (terse_batch){.n = 1, .ids = ids, .pos = pos};
    CHECK(terse_eval(c, &b) == TERSE_ERR_RANGE, "negative position");
    if (m->arch == NN_ARCH_GPT2) {
        terse_kv_clear(c);
        pos[0] = 128;
        CHECK(terse_eval(c, &b) == TERSE_ERR_RANGE, "gpt2 position past the table");
        terse_ctx_params p = terse_ctx_default_params();
        p.n_ctx = 129;
        terse_ctx *c2 = NULL;
        CHECK(terse_ctx_new(m, p, &c2) == TERSE_ERR_RANGE && !c2, "gpt2 n_ctx past the table");
    }
    {   /* a thread per unit: 100000 would exhaust memory before failing */
        terse_ctx_params p = terse_ctx_default_params();
        p.n_threads = 100000;
        terse_ctx *c2 = NULL;
        CHECK(terse_ctx_new(m, p, &c2) == TERSE_ERR_INVALID && !c2 &&
              strstr(terse_last_error(), "n_threads 100000"), "n_threads 100000 refused: %s",
              terse_last_error());
    }
    free(longer);
    terse_ctx_free(c);
}

int main(void) {
    const char *archs[] = {"llama", "qwen2", "gpt2", "qwen3", "phi2", "phi3", "gemma", "gemma2"};
    int32_t ids[NTOK];
    for (int i = 0; i < NTOK; i++) ids[i] = (i * 97 + 13) % 300;
    for (int a = 0; a < (int)(sizeof archs / sizeof archs[0]); a++) {
        arch_name = archs[a];
        terse_model *m = make(archs[a], TERSE_TYPE_F32);
        if (!m) continue;
        terse_ctx *c = ctx(m, 0, 0);
        float ref[NTOK];
        CHECK_OK(terse_score(c, ids, NTOK, ref));
        CHECK(ref[0] == 0.0f, "out[0] = 0");
        double spread = 0;
        for (int i = 2; i < NTOK; i++) spread = fmax(spread, fabs(ref[i] - ref[1]));
        CHECK(spread > 0.5, "%s: surprisals vary (%g): the test model has signal", archs[a], spread);
        terse_ctx_free(c);
        test_incremental(m, ids, ref);
        test_chunked(m, ids);
        test_masks(m, ids);
        test_generate(m, ids);
        test_errors(m, ids);
        test_types(archs[a], ids, ref);
        terse_model_free(m);
        remove(model_path(archs[a], TERSE_TYPE_F32));
    }
    return test_summary("nn_forward");
}
