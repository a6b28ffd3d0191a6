/* test_default_model.c - the shipped default model (models/terse-default.gguf) against
 * PyTorch on held-out text (tests/golden/default, made by tools/regen_default.sh from the
 * device run of tools/train_default.py; see models/README.md):
 *   - its shape is the one model.txt records (vocabulary, parameters, context);
 *   - terse's tokenizer gives exactly the ids Hugging Face's tokenizer gave for text.txt;
 *   - the C runtime's log-probabilities match a float64 PyTorch forward on the same dequantised
 *     weights as shipped (tools/ref_gguf.py, logprobs_gguf.txt): max |diff| <= 1e-3;
 *   - and stay close to PyTorch on the F16 weights the model was exported with
 *     (logprobs_f16.txt; the cost of the shipped quantisation): max and mean |diff| within
 *     the bounds model.txt gives (twice what was measured when the goldens were made). */
#include "harness.h"
#include "terse.h"

#define N_IDS 1024

static int read_floats(const char *path, double *v, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < cap && fscanf(f, "%lf", &v[n]) == 1) n++;
    fclose(f);
    return n;
}

/* model.txt: "key value" lines (vocab, params, ctx, f16_max, f16_mean; type is a word) */
static double golden_value(const char *key) {
    FILE *f = fopen("tests/golden/default/model.txt", "r");
    char line[256], k[64];
    double v, found = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %lf", k, &v) == 2 && !strcmp(k, key)) found = v;
    fclose(f);
    return found;
}

static void compare(const char *label, const float *surprisal, const double *ref, int n,
                    double max_tol, double mean_tol) {
    double mx = 0, sum = 0;
    int at = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(-(double)surprisal[i + 1] - ref[i]);
        sum += d;
        if (d > mx) { mx = d; at = i + 1; }
    }
    printf("default model vs %s: max |dlogp| %.3g (token %d), mean %.3g over %d tokens\n", label,
           mx, at, sum / n, n);
    CHECK(mx <= max_tol, "%s: max diff %.3g > %.3g", label, mx, max_tol);
    CHECK(sum / n <= mean_tol, "%s: mean diff %.3g > %.3g", label, sum / n, mean_tol);
}

int main(void) {
    char path[4096];
    int rc = terse_default_model_path(path, sizeof path);
    CHECK(rc > 0, "default model found: %s", terse_last_error());
    if (rc <= 0) return test_summary("default_model");

    terse_model *m = NULL;
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    if (!m) return test_summary("default_model");
    terse_model_info in;
    terse_model_get_info(m, &in);
    double want_vocab = golden_value("vocab"), want_params = golden_value("params");
    double want_ctx = golden_value("ctx"), f16_max = golden_value("f16_max");
    double f16_mean = golden_value("f16_mean");
    CHECK(want_vocab > 0 && want_params > 0 && want_ctx > 0 && f16_max > 0 && f16_mean > 0,
          "tests/golden/default/model.txt complete");
    CHECK(!strcmp(in.arch, "llama") && in.n_ctx_train == (int)want_ctx &&
          in.n_vocab == (int)want_vocab, "shape: %s ctx %d vocab %d (model.txt: ctx %.0f vocab %.0f)",
          in.arch, in.n_ctx_train, in.n_vocab, want_ctx, want_vocab);
    CHECK(in.n_params == (int64_t)want_params, "params %lld (model.txt: %.0f)",
          (long long)in.n_params, want_params);

    /* tokenizer: exact ids (with BOS) on held-out text */
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen("tests/golden/default/text.txt", "rb");
    CHECK(f != NULL, "golden text");
    if (f) {
        text = malloc(1 << 16);
        len = fread(text, 1, 1 << 16, f);
        fclose(f);
    }
    double ref_ids[N_IDS], ref_q[N_IDS], ref_f16[N_IDS];
    int n_ids = read_floats("tests/golden/default/ids.txt", ref_ids, N_IDS);
    CHECK(n_ids == N_IDS, "ids.txt has %d ids", n_ids);
    const terse_vocab *v = terse_model_vocab(m);
    static int32_t ids[1 << 15];
    int64_t n = text && v ? terse_tokenize(v, text, len, 1, ids, NULL, 1 << 15) : -1;
    CHECK(n >= N_IDS, "tokenized %lld tokens", (long long)n);
    int same = n >= N_IDS;
    for (int i = 0; same && i < N_IDS; i++)
        if (ids[i] != (int32_t)ref_ids[i]) {
            fprintf(stderr, "token %d: terse %d, Hugging Face %d\n", i, ids[i], (int)ref_ids[i]);
            same = 0;
        }
    CHECK(same, "tokenizer ids match Hugging Face's on held-out text");
    free(text);

    /* runtime: log-probabilities of the golden ids */
    for (int i = 0; i < N_IDS; i++) ids[i] = (int32_t)ref_ids[i];
    terse_ctx *c = NULL;
    CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
    static float s[N_IDS];
    if (c) CHECK_OK(terse_score(c, ids, N_IDS, s));
    int nq = read_floats("tests/golden/default/logprobs_gguf.txt", ref_q, N_IDS);
    int nf = read_floats("tests/golden/default/logprobs_f16.txt", ref_f16, N_IDS);
    CHECK(nq == N_IDS - 1 && nf == N_IDS - 1, "golden log-prob files (%d, %d)", nq, nf);
    if (c && nq == N_IDS - 1) compare("PyTorch, same weights as shipped", s, ref_q, nq, 1e-3, 1e-4);
    if (c && nf == N_IDS - 1) compare("PyTorch, F16 export", s, ref_f16, nf, f16_max, f16_mean);

    terse_ctx_free(c);
    terse_model_free(m);
    return test_summary("default_model");
}
