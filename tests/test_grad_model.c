/* test_grad_model.c - the training engine (nn/grad.h) on whole random-weight models, without
 * a reference library (tests/test_grad_golden.c has PyTorch's numbers):
 *   - the training forward gives the scoring path's logits (terse_eval), causal and masked,
 *     with mixed token / embedding input rows;
 *   - directional derivatives of the KL and CE losses along random directions, by central
 *     differences of the F32 forward, equal <gradient, direction> for the input rows and for
 *     several weight tensors (llama with GQA, qwen2, gpt2, tied llama, Q8_0 llama);
 *   - quantised matrices are frozen (not listed), gradients accumulate and zero;
 *   - bad arguments give the documented errors.
 * F32 differences limit the directional checks to about 1e-3; the bound is 1e-2.
 */
#include "helpers.h"
#include "nn/grad.h"
#include "terse.h"

enum { T = 20, NE = 4 }; /* tokens; the first NE rows are embedding rows */

static uint64_t rng = 12345;
static double urand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

typedef struct {
    nn_grad *g;
    int32_t ids[T];
    float *embd, *teacher, *dlogits;
    uint8_t *mask;
    int32_t V, C;
    int ce;
} setup;

static double loss_of(setup *s, int with_grad) {
    const float *lg;
    if (nn_grad_forward(s->g, s->ids, s->embd, T, s->mask, &lg)) return NAN;
    if (s->ce) {
        int32_t tg[T];
        for (int i = 0; i < T; i++) /* next id; every 4th row ignored */
            tg[i] = i % 4 == 3 ? -1 : i + 1 < T && s->ids[i + 1] >= 0 ? s->ids[i + 1] : 7;
        return nn_loss_ce(lg, tg, T, s->V, with_grad ? s->dlogits : NULL);
    }
    return nn_loss_kl(lg, s->teacher, NULL, T, s->V, 0, with_grad ? s->dlogits : NULL);
}

/* Central difference of L along u at step h (w perturbed in place, then restored). */
static double central(setup *s, float *w, const float *w0, const float *u, int64_t n, double h) {
    for (int64_t i = 0; i < n; i++) w[i] = (float)(w0[i] + h * u[i]);
    double lp = loss_of(s, 0);
    for (int64_t i = 0; i < n; i++) w[i] = (float)(w0[i] - h * u[i]);
    double lm = loss_of(s, 0);
    memcpy(w, w0, sizeof(float) * (size_t)n);
    return (lp - lm) / (2 * h);
}

/* d/dh L(w + h u) at 0, by central differences at h and h/2 with Richardson extrapolation,
 * against <grad, u>. The F32 loss is only smooth to ~1e-7 relative: the bound is 1e-2 of
 * the derivative plus that noise divided by the step. */
static void directional(setup *s, const char *label, const char *what, float *w,
                        const float *grad, int64_t n) {
    float *u = malloc(sizeof(float) * (size_t)n), *w0 = malloc(sizeof(float) * (size_t)n);
    memcpy(w0, w, sizeof(float) * (size_t)n);
    double an = 0, wn = 0;
    for (int64_t i = 0; i < n; i++) {
        u[i] = (float)urand();
        an += (double)grad[i] * u[i];
        wn = fmax(wn, fabs(w0[i]));
    }
    const double h = 2e-3 * fmax(wn, 0.1), L = fabs(loss_of(s, 0));
    double d1 = central(s, w, w0, u, n, h), d2 = central(s, w, w0, u, n, h / 2);
    double fdv = (4 * d2 - d1) / 3, tol = 1e-2 * fabs(fdv) + 20 * 6e-8 * fmax(L, 1) / h;
    printf("  %-14s %-26s <g,u> %+.6e  FD %+.6e  |diff| %.1e (bound %.1e)\n", label, what, an,
           fdv, fabs(fdv - an), tol);
    CHECK(fabs(fdv - an) <= tol, "%s %s: directional derivative %g vs FD %g", label, what, an, fdv);
    free(u), free(w0);
}

static void run(const char *label, terse_random_params rp) {
    terse_model *m = test_random_model(label, &rp);
    if (!m) return;
    setup s = {0};
    s.V = m->n_vocab, s.C = m->n_embd;
    nn_grad_params gp = {.max_tokens = 32, .weight_grads = 1, .n_threads = 2};
    CHECK_OK(nn_grad_new(m, gp, &s.g));
    if (!s.g) goto done;
    s.embd = malloc(sizeof(float) * T * s.C);
    s.teacher = malloc(sizeof(float) * T * s.V);
    s.dlogits = malloc(sizeof(float) * T * s.V);
    s.mask = malloc(T * T);
    for (int i = 0; i < T; i++) s.ids[i] = i < NE ? -1 : (int32_t)((urand() + 1) * 0.5 * s.V) % s.V;
    for (int i = 0; i < T * s.C; i++) s.embd[i] = (float)(0.5 * urand());
    for (int i = 0; i < T * s.V; i++) s.teacher[i] = (float)(2 * urand());
    for (int t = 0; t < T; t++) {
        float *r = s.teacher + (size_t)t * s.V;
        double mx = -1e30, z = 0;
        for (int v = 0; v < s.V; v++) mx = fmax(mx, r[v]);
        for (int v = 0; v < s.V; v++) z += exp(r[v] - mx);
        for (int v = 0; v < s.V; v++) r[v] -= (float)(mx + log(z));
    }
    for (int i = 0; i < T; i++) /* gist-like: rows >= 12 cannot see 4..7; row 2 sees 3 */
        for (int j = 0; j < T; j++)
            s.mask[i * T + j] = (j <= i && !(i >= 12 && j >= 4 && j < 8)) || (i == 2 && j == 3);

    /* 1. the training forward against the scoring path, causal and masked */
    {
        terse_ctx *c = NULL;
        CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
        float *full = malloc(sizeof(float) * T * s.C), *row = malloc(sizeof(float) * s.V);
        for (int i = 0; i < T; i++) {
            if (s.ids[i] >= 0) nn_matrix_row(&m->tok_embd, s.ids[i], full + i * s.C);
            else memcpy(full + i * s.C, s.embd + i * s.C, sizeof(float) * s.C);
        }
        for (int masked = 0; masked < 2 && c; masked++) {
            const float *lg;
            CHECK_OK(nn_grad_forward(s.g, s.ids, s.embd, T, masked ? s.mask : NULL, &lg));
            terse_kv_clear(c);
            terse_batch b = {T, NULL, full, NULL, masked ? s.mask : NULL};
            CHECK_OK(terse_eval(c, &b));
            double d = 0, mx = 0;
            for (int i = 0; i < T; i++) {
                CHECK_OK(terse_eval_logits(c, i, row, 0));
                for (int v = 0; v < s.V; v++) {
                    d = fmax(d, fabs((double)row[v] - lg[(size_t)i * s.V + v]));
                    mx = fmax(mx, fabs((double)row[v]));
                }
            }
            printf("  %-14s forward vs terse_eval (%s): max |diff| %.2e (logits up to %.2f)\n",
                   label, masked ? "mask" : "causal", d, mx);
            CHECK(d <= 1e-4 * fmax(1.0, mx), "%s: training forward differs from terse_eval by %g",
                  label, d);
        }
        free(full), free(row);
        terse_ctx_free(c);
    }

    /* 2. directional derivatives: KL with the mask, CE causal */
    for (int pass = 0; pass < 2; pass++) {
        s.ce = pass == 1;
        uint8_t *mk = s.mask;
        if (s.ce) s.mask = NULL;
        float *d_embd = malloc(sizeof(float) * T * s.C);
        nn_grad_zero(s.g);
        loss_of(&s, 1);
        CHECK_OK(nn_grad_backward(s.g, s.dlogits, d_embd));
        /* the gradient w.r.t. embd rows only (token rows are w.r.t. the table) */
        float *de = calloc((size_t)T * s.C, sizeof(float));
        memcpy(de, d_embd, sizeof(float) * NE * s.C);
        directional(&s, label, s.ce ? "CE d/d embd rows" : "KL+mask d/d embd rows", s.embd, de,
                    (int64_t)T * s.C);
        /* snapshot the gradients: the loss evaluations below run forwards only */
        int n = 0;
        nn_grad_tensor *ts = nn_grad_tensors(s.g, &n);
        static const char *names[] = {"blk.0.attn_q.weight", "blk.0.attn_qkv.weight",
                                      "blk.1.attn_k.weight", "blk.0.attn_v.bias",
                                      "blk.1.ffn_down.weight", "blk.0.ffn_gate.weight",
                                      "blk.1.ffn_norm.weight", "blk.0.attn_norm.bias",
                                      "output_norm.weight", "output.weight",
                                      "token_embd.weight", "position_embd.weight"};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            nn_grad_tensor *t = nn_grad_find(s.g, names[k]);
            if (!t) continue;
            float *gcopy = malloc(sizeof(float) * (size_t)t->n);
            memcpy(gcopy, t->g, sizeof(float) * (size_t)t->n);
            char what[96];
            snprintf(what, sizeof what, "%s %s", s.ce ? "CE" : "KL", names[k]);
            directional(&s, label, what, t->w, gcopy, t->n);
            free(gcopy);
        }
        /* accumulation: a second backward doubles every gradient */
        if (pass == 0 && n > 0) {
            float g0 = ts[n - 1].g[0];
            loss_of(&s, 1);
            CHECK_OK(nn_grad_backward(s.g, s.dlogits, NULL));
            CHECK(fabsf(ts[n - 1].g[0] - 2 * g0) <= 1e-5f * fabsf(g0) + 1e-12f,
                  "%s: gradients accumulate (%g vs 2 x %g)", label, ts[n - 1].g[0], g0);
            nn_grad_zero(s.g);
            CHECK(ts[n - 1].g[0] == 0.0f, "%s: nn_grad_zero", label);
        }
        free(d_embd), free(de);
        s.mask = mk;
    }

    /* 3. f32_cache: the same numbers without dequantising in every pass */
    {
        nn_grad *gc = NULL;
        CHECK_OK(nn_grad_new(m, (nn_grad_params){.max_tokens = 32, .f32_cache = 1}, &gc));
        const float *l1, *l2;
        float *d1 = malloc(sizeof(float) * T * s.C), *d2 = malloc(sizeof(float) * T * s.C);
        double dmax = 0, lmax = 0, dd = 0, dn = 0;
        if (gc && nn_grad_forward(s.g, s.ids, s.embd, T, s.mask, &l1) == 0 &&
            nn_grad_forward(gc, s.ids, s.embd, T, s.mask, &l2) == 0) {
            for (int i = 0; i < T * s.V; i++) {
                dmax = fmax(dmax, fabs(l1[i] - l2[i]));
                lmax = fmax(lmax, fabs(l1[i]));
                s.dlogits[i] = (float)(1e-3 * urand());
            }
            CHECK_OK(nn_grad_backward(s.g, s.dlogits, d1));
            CHECK_OK(nn_grad_backward(gc, s.dlogits, d2));
            for (int i = 0; i < T * s.C; i++) dd += (d1[i] - d2[i]) * (d1[i] - d2[i]), dn += d1[i] * d1[i];
        } else {
            dmax = INFINITY;
        }
        printf("  %-14s f32_cache: logits max |diff| %.1e, d_embd rel %.1e, %.1f MB held\n", label,
               dmax, sqrt(dd / fmax(dn, 1e-30)), gc ? (double)nn_grad_bytes(gc) / 1048576.0 : 0.0);
        CHECK(dmax <= 1e-5 * fmax(1, lmax) && sqrt(dd / fmax(dn, 1e-30)) <= 1e-5,
              "%s: f32_cache changes the results (%g)", label, dmax);
        nn_grad_free(gc);
        free(d1), free(d2);
    }

    /* 4. frozen quantised matrices */
    int n = 0;
    nn_grad_tensors(s.g, &n);
    int has_q = nn_grad_find(s.g, "blk.0.attn_q.weight") || nn_grad_find(s.g, "blk.0.attn_qkv.weight");
    CHECK(has_q == (rp.type != TERSE_TYPE_Q8_0), "%s: matrices trainable iff not quantised", label);
    printf("  %-14s %d trainable tensors, %.1f MB held\n", label, n,
           (double)nn_grad_bytes(s.g) / 1048576.0);
done:
    nn_grad_free(s.g);
    free(s.embd), free(s.teacher), free(s.dlogits), free(s.mask);
    terse_model_free(m);
}

static void errors(void) {
    terse_random_params rp = {"gpt2", 300, 24, 32, 1, 2, 0, 64, TERSE_TYPE_F32, 5, 0.2f, 0};
    terse_model *m = test_random_model("err.gguf", &rp);
    if (!m) return;
    nn_grad *g = NULL;
    CHECK(nn_grad_new(m, (nn_grad_params){.max_tokens = 25}, &g) == TERSE_ERR_RANGE && !g,
          "gpt2 max_tokens past its positions");
    CHECK(nn_grad_new(m, (nn_grad_params){.max_tokens = -1}, &g) == TERSE_ERR_INVALID, "negative");
    CHECK(nn_grad_new(NULL, (nn_grad_params){0}, &g) == TERSE_ERR_INVALID, "NULL model");
    { /* an architecture without a backward (a copy of the model with another arch tag) */
        terse_model fake = *m;
        fake.arch = (nn_arch)(NN_ARCH_GPT2 + 1);
        snprintf(fake.arch_name, sizeof fake.arch_name, "mamba");
        CHECK(nn_grad_new(&fake, (nn_grad_params){0}, &g) == TERSE_ERR_UNSUPPORTED && !g,
              "unsupported architecture");
        CHECK(strstr(terse_last_error(), "mamba") != NULL, "message: %s", terse_last_error());
    }
    CHECK_OK(nn_grad_new(m, (nn_grad_params){.max_tokens = 0}, &g));
    float dl[3 * 300];
    for (int i = 0; i < 3 * 300; i++) dl[i] = (float)(0.01 * urand());
    int32_t ids[3] = {1, 300, 2};
    const float *lg;
    CHECK(nn_grad_backward(g, dl, NULL) == TERSE_ERR_INVALID, "backward before forward");
    CHECK(nn_grad_forward(g, ids, NULL, 0, NULL, &lg) == TERSE_ERR_RANGE, "T = 0");
    CHECK(nn_grad_forward(g, ids, NULL, 25, NULL, &lg) == TERSE_ERR_RANGE, "T > max");
    CHECK(nn_grad_forward(g, ids, NULL, 3, NULL, &lg) == TERSE_ERR_INVALID, "id out of range");
    CHECK(strstr(terse_last_error(), "300") != NULL, "message names the id: %s", terse_last_error());
    CHECK(nn_grad_forward(g, NULL, NULL, 3, NULL, &lg) == TERSE_ERR_INVALID, "no input");
    ids[1] = -1;
    CHECK(nn_grad_forward(g, ids, NULL, 3, NULL, &lg) == TERSE_ERR_INVALID, "embd row, no embd");
    ids[1] = 5;
    CHECK_OK(nn_grad_forward(g, ids, NULL, 3, NULL, &lg));
    CHECK(nn_grad_tensors(g, NULL) == NULL, "no tensors without weight_grads");
    { /* a refused forward leaves the last one's state: backward gives the same gradient */
        float d1[3 * 32], d2[3 * 32];
        CHECK_OK(nn_grad_backward(g, dl, d1));
        int32_t bad[3] = {4, 4, 1000};
        CHECK(nn_grad_forward(g, bad, NULL, 3, NULL, &lg) == TERSE_ERR_INVALID, "bad id");
        CHECK_OK(nn_grad_backward(g, dl, d2));
        CHECK(!memcmp(d1, d2, sizeof d1) && d1[5] != 0.0f, "state kept after a refused forward");
    }
    nn_grad_free(g);
    nn_grad_free(NULL);
    terse_model_free(m);
}

int main(void) {
    /* arch, V, ctx, C, L, H, Hkv, F, type, seed, std, tie */
    run("llama-gqa", (terse_random_params){"llama", 300, 64, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 11, 0.3f, 0});
    run("qwen2", (terse_random_params){"qwen2", 300, 64, 32, 2, 4, 2, 48, TERSE_TYPE_F32, 12, 0.3f, 0});
    run("gpt2", (terse_random_params){"gpt2", 300, 64, 32, 2, 4, 0, 48, TERSE_TYPE_F32, 13, 0.3f, 0});
    run("llama-tied-f16", (terse_random_params){"llama", 300, 64, 32, 2, 4, 4, 48, TERSE_TYPE_F16, 14, 0.3f, 1});
    run("llama-q8_0", (terse_random_params){"llama", 300, 64, 64, 2, 4, 2, 64, TERSE_TYPE_Q8_0, 15, 0.3f, 0});
    errors();
    return test_summary("test_grad_model");
}
