/* test_gist_train.c - the gist fine-tuning recipe (terse_finetune, src/train/gist.c) against
 * tools/gist_train.py (PyTorch, float64), reference numbers in tests/golden/gist/ (made by
 * tools/gist_golden.sh):
 *   - the tokenised examples in training order equal examples.txt (template, gist ids,
 *     response boundary, skipping of long lines, the seeded shuffle);
 *   - 20 steps (batch 2, warm-up, cosine, decay, clipping) on a random llama model: every
 *     step's loss within 1e-5 relative, every tensor's norm within 1e-5 relative and sampled
 *     weights within 2e-6 absolute of PyTorch's;
 *   - 8 steps, stop, resume from the AdamW state to 20: the same losses and weights, bit for
 *     bit;
 *   - the gist model: one more vocabulary row, "<GIST>" at id 300, its embedding the mean;
 *   - bad arguments and data give clear errors.
 */
#include "harness.h"
#include "gguf/gguf.h"
#include "nn/nn.h"
#include "terse.h"
#include "train/gist.h"

#define G "tests/golden/gist/"
enum { STEPS = 20 };

typedef struct {
    double loss[STEPS + 1];
    int stop_at;
} run_log;

static int on_step(void *ud, int32_t step, double loss, double gn, float lr) {
    run_log *r = ud;
    if (step >= 1 && step <= STEPS) r->loss[step] = loss;
    return r->stop_at && step == r->stop_at;
}

static terse_finetune_params recipe(const char *model, const char *data, size_t len) {
    terse_finetune_params p = terse_finetune_default_params();
    p.model_path = model, p.data = data, p.data_len = len;
    p.K = 2, p.max_len = 160, p.seed = 7, p.n_threads = 2;
    p.steps = STEPS, p.batch = 2, p.lr = 1e-3f, p.min_lr = 1e-4f, p.warmup = 2;
    p.weight_decay = 0.1f, p.clip = 1.0f;
    p.progress = on_step;
    return p;
}

static const float *tensor_of(gguf_file *g, const char *name, int64_t *n) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t || t->type != GGML_F32) return NULL;
    *n = (int64_t)(t->nbytes / 4);
    return t->data;
}

static void compare_golden(const char *model_path, const run_log *r) {
    FILE *f = fopen(G "ref.txt", "r");
    CHECK(f != NULL, "golden ref.txt");
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(model_path, 1, &g));
    if (!f || !g) { if (f) fclose(f); gguf_close(g); return; }
    char line[512], name[200];
    double worst_l = 0, worst_n = 0, worst_w = 0;
    int n_loss = 0, n_t = 0, n_w = 0;
    while (fgets(line, sizeof line, f)) {
        int s;
        long long cnt, idx;
        double v;
        if (sscanf(line, "loss %d %lf", &s, &v) == 2 && s >= 1 && s <= STEPS) {
            double e = fabs(r->loss[s] - v) / fabs(v);
            worst_l = fmax(worst_l, e), n_loss++;
            CHECK(e <= 1e-5, "step %d loss %.9g vs PyTorch %.9g", s, r->loss[s], v);
        } else if (sscanf(line, "tensor %199s %lld %lf", name, &cnt, &v) == 3) {
            int64_t n = 0;
            const float *w = tensor_of(g, name, &n);
            CHECK(w && n == cnt, "tensor %s in the trained model", name);
            if (!w || n != cnt) continue;
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += (double)w[i] * w[i];
            double e = fabs(sqrt(ss) - v) / v;
            worst_n = fmax(worst_n, e), n_t++;
            CHECK(e <= 1e-5, "%s norm %.9g vs %.9g", name, sqrt(ss), v);
        } else if (sscanf(line, "w %199s %lld %lf", name, &idx, &v) == 3) {
            int64_t n = 0;
            const float *w = tensor_of(g, name, &n);
            if (!w || idx >= n) { CHECK(0, "%s[%lld]", name, idx); continue; }
            double e = fabs((double)w[idx] - v);
            worst_w = fmax(worst_w, e), n_w++;
            CHECK(e <= 2e-6, "%s[%lld] %.9g vs %.9g", name, idx, (double)w[idx], v);
        }
    }
    printf("  vs PyTorch: %d losses (worst rel %.1e), %d tensor norms (worst rel %.1e), "
           "%d weights (worst abs %.1e)\n", n_loss, worst_l, n_t, worst_n, n_w, worst_w);
    CHECK(n_loss == STEPS && n_t > 10 && n_w > 80, "golden complete");
    fclose(f);
    gguf_close(g);
}

static int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = NULL, *y = NULL;
    terse_read_all(a, &x, &la);
    terse_read_all(b, &y, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x), free(y);
    return same;
}

int main(void) {
    char base[256], out[256], init[256], exs[256], state[256], out2[256];
    snprintf(base, sizeof base, "%s", test_tmp_path("gist_base.gguf"));
    snprintf(out, sizeof out, "%s", test_tmp_path("gist_out.gguf"));
    snprintf(out2, sizeof out2, "%s", test_tmp_path("gist_out2.gguf"));
    snprintf(init, sizeof init, "%s", test_tmp_path("gist_init.gguf"));
    snprintf(exs, sizeof exs, "%s", test_tmp_path("gist_ex.txt"));
    snprintf(state, sizeof state, "%s", test_tmp_path("gist_state.bin"));
    terse_random_params rp = {"llama", 300, 256, 32, 2, 4, 2, 64, TERSE_TYPE_F32, 3, 0, 0};
    CHECK_OK(terse_write_random_model(base, &rp));
    size_t len = 0;
    char *data = NULL;
    terse_read_all(G "data.jsonl", &data, &len);
    CHECK(data != NULL, "golden data.jsonl");
    if (!data) return test_summary("test_gist_train");

    /* 1. the full run against PyTorch */
    run_log r1 = {{0}, 0};
    terse_finetune_params p = recipe(base, data, len);
    p.out_path = out, p.init_path = init, p.examples_path = exs, p.ud = &r1;
    int32_t n_ex = 0;
    CHECK_OK(terse_finetune(&p, &n_ex));
    CHECK(n_ex == 16, "16 examples of 80 lines fit 160 tokens (got %d)", n_ex);
    CHECK(same_file(exs, G "examples.txt"), "tokenised examples = golden examples.txt");
    compare_golden(out, &r1);

    /* 2. the gist model */
    {
        terse_model *m = NULL;
        CHECK_OK(terse_model_load(init, terse_model_default_params(), &m));
        gguf_file *b = NULL;
        CHECK_OK(gguf_open(base, 1, &b));
        if (m && b) {
            CHECK(m->n_vocab == 301 && gist_token_id(m) == 300, "one more token, <GIST> = 300");
            int64_t n = 0;
            const float *e0 = tensor_of(b, "token_embd.weight", &n);
            float row[32];
            nn_matrix_row(&m->tok_embd, 300, row);
            double d = 0;
            for (int c = 0; c < 32 && e0; c++) {
                double s = 0;
                for (int v = 0; v < 300; v++) s += e0[v * 32 + c];
                d = fmax(d, fabs(s / 300 - row[c]));
            }
            CHECK(e0 && d < 1e-6, "gist embedding = mean embedding (max diff %g)", d);
            char piece[16];
            int32_t id = 300;
            CHECK(terse_detokenize(terse_model_vocab(m), &id, 1, piece, sizeof piece) == 0,
                  "<GIST> is a control token (not printed)");
            CHECK(gist_model_make(init, out2) == TERSE_ERR_INVALID, "gist model of a gist model");
        }
        gguf_close(b);
        terse_model_free(m);
    }

    /* 2b. the trained K recorded in the model (terse.gist.k), kept or set by the Q8_0 copy */
    {
        char q8[512];
        snprintf(q8, sizeof q8, "%s", test_tmp_path("gist_q8.gguf"));
        const char *paths[] = {out, init, base, q8, q8};
        const int32_t want[] = {2, 1, 0, 2, 5};
        for (int i = 0; i < 5; i++) {
            if (i == 3) CHECK_OK(terse_gist_model_quantize(out, q8, 0, 0));
            if (i == 4) CHECK_OK(terse_gist_model_quantize(out, q8, 5, TERSE_TYPE_Q8_0));
            terse_model *m = NULL;
            CHECK_OK(terse_model_load(paths[i], terse_model_default_params(), &m));
            CHECK(m && terse_model_gist_k(m) == want[i], "model %d: trained K %d (want %d)", i,
                  m ? terse_model_gist_k(m) : -1, want[i]);
            terse_model_free(m);
        }
        CHECK(terse_model_gist_k(NULL) == 0, "NULL model: K 0");
        CHECK(terse_gist_model_quantize(base, q8, 0, 0) == TERSE_ERR_INVALID &&
              strstr(terse_last_error(), "no gist token"), "Q8_0 copy of a model without a gist token");
        CHECK(terse_gist_model_quantize(out, q8, 65, 0) == TERSE_ERR_INVALID, "Q8_0 copy, K = 65");
        CHECK(terse_gist_model_quantize(NULL, q8, 1, 0) == TERSE_ERR_INVALID, "Q8_0 copy, NULL path");
        CHECK(terse_gist_model_quantize(out, q8, 2, (terse_type)99) == TERSE_ERR_UNSUPPORTED &&
              strstr(terse_last_error(), "type 99"), "copy as an unknown type");
        /* Q6_K (rows that are not whole 256-blocks fall back to Q8_0, as llama-quantize does) */
        CHECK_OK(terse_gist_model_quantize(out, q8, 0, TERSE_TYPE_Q6_K));
        {
            gguf_file *g = NULL;
            CHECK_OK(gguf_open(q8, 1, &g));
            int n_q = 0, n_other = 0;
            for (uint64_t t = 0; g && t < g->n_tensors; t++) {
                const gguf_tensor *x = &g->tensors[t];
                if (x->n_dims != 2) continue;
                uint32_t want_t = x->ne[0] % 256 == 0 ? GGML_Q6_K : GGML_Q8_0;
                if (x->type == want_t) n_q++; else n_other++;
            }
            CHECK(n_q > 0 && n_other == 0, "Q6_K copy: %d matrices as Q6_K/Q8_0, %d otherwise", n_q, n_other);
            gguf_close(g);
            terse_model *m = NULL;
            CHECK_OK(terse_model_load(q8, terse_model_default_params(), &m));
            CHECK(m && terse_model_gist_k(m) == 2, "Q6_K copy keeps K");
            terse_model_free(m);
        }
        remove(q8);
    }

    /* 3. resume: 8 steps, stop, resume to 20 = the full run, bit for bit */
    {
        run_log r2 = {{0}, 8};
        terse_finetune_params q = recipe(init, data, len);
        q.out_path = out2, q.state_path = state, q.ud = &r2;
        remove(state);
        CHECK_OK(terse_finetune(&q, NULL));
        r2.stop_at = 0;
        CHECK_OK(terse_finetune(&q, NULL));
        CHECK(!memcmp(r1.loss, r2.loss, sizeof r1.loss), "resumed losses = full run's");
        CHECK(same_file(out, out2), "resumed model = full run's, bit for bit");
        remove(state);
    }

    /* 4. errors */
    {
        terse_finetune_params q = recipe(init, data, len);
        q.progress = NULL;
        q.K = 65;
        CHECK(terse_finetune(&q, NULL) == TERSE_ERR_INVALID, "K = 65");
        q.K = 2, q.mask = "half";
        CHECK(terse_finetune(&q, NULL) == TERSE_ERR_INVALID, "unknown mask");
        CHECK(strstr(terse_last_error(), "half") != NULL, "message: %s", terse_last_error());
        q.mask = "gist", q.max_len = 20;
        CHECK(terse_finetune(&q, NULL) == TERSE_ERR_INVALID, "nothing fits max_len");
        q.max_len = 160, q.data = "{\"instruction\": 1}\n", q.data_len = 19;
        CHECK(terse_finetune(&q, NULL) == TERSE_ERR_FORMAT, "bad line");
        CHECK(strstr(terse_last_error(), "line 1") != NULL, "message: %s", terse_last_error());
        q.data = data, q.data_len = len, q.model_path = "/nonexistent/x.gguf";
        CHECK(terse_finetune(&q, NULL) != TERSE_OK, "missing model");
        CHECK(terse_finetune(NULL, NULL) == TERSE_ERR_INVALID, "NULL params");
        terse_model *m = NULL;
        CHECK_OK(terse_model_load(base, terse_model_default_params(), &m));
        gist_example ex;
        CHECK(gist_example_build(m, -1, 1, "a", "", "b", 64, &ex) == TERSE_ERR_INVALID,
              "a model without a gist token asked to gist");
        CHECK(gist_example_build(m, 5, 0, "a", "", "b", 64, &ex) == TERSE_OK && ex.first == -1,
              "K = 0: no gists");
        gist_example_free(&ex);
        terse_model_free(m);
    }
    free(data);
    remove(base), remove(out), remove(out2), remove(init), remove(exs);
    return test_summary("test_gist_train");
}
