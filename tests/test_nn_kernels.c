/* test_nn_kernels.c - each fast kernel of the runtime against its naive reference: vector
 * exp/softmax/activations (simd.c), dequantisation and Q8_0 quantisation (quant.c), linear
 * layers through the BLAS with row blocks (linear.c), blocked attention with causal and
 * custom masks (forward.c). */
#include <math.h>

#include "harness.h"
#include "nn/nn.h"
#include "nn/quant.h"
#include "nn/simd.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

static double max_rel(const float *a, const float *b, int64_t n, double floor) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), floor);
        if (!(d <= m)) m = d; /* NaN sticks */
    }
    return m;
}

/* ---------------------------------------------------------------------------------------- */

static void test_simd(void) {
    enum { N = 1003 };
    float x[N], y[N], r[N], u[N];
    /* exp over the whole useful range, and 0 below it */
    double worst = 0;
    for (int i = 0; i < 20000; i++) {
        float v = -87.0f + 175.0f * (float)i / 20000.0f;
        float e = v;
        simd_exp_inplace(&e, 1, 0.0f);
        double d = fabs((double)e - exp((double)v)) / exp((double)v);
        if (d > worst) worst = d;
    }
    CHECK(worst < 3e-7, "simd exp max rel error %g", worst);
    float z[3] = {-INFINITY, -100.0f, 0.0f};
    float s = simd_exp_inplace(z, 3, 0.0f);
    CHECK(z[0] == 0.0f && z[1] == 0.0f && z[2] == 1.0f && s == 1.0f, "exp tails %g %g %g", z[0],
          z[1], z[2]);

    for (int i = 0; i < N; i++) x[i] = 8.0f * frand(), u[i] = frand();
    float m = simd_max(x, N), mr = -INFINITY;
    for (int i = 0; i < N; i++) mr = fmaxf(mr, x[i]);
    CHECK(m == mr, "max %g vs %g", m, mr);
    for (int n = 0; n <= 17; n++) { /* every tail length */
        float a = simd_sum_exp(x, n, m), b = simd_sum_exp_ref(x, n, m);
        CHECK(fabsf(a - b) <= 1e-6f * fmaxf(b, 1.0f), "sum_exp n=%d %g vs %g", n, a, b);
        float d = simd_dot(x, u, n), dr = simd_dot_ref(x, u, n);
        CHECK(fabsf(d - dr) < 1e-5f * (1 + fabsf(dr)), "dot n=%d %g vs %g", n, d, dr);
    }
    float a = simd_sum_exp(x, N, m), b = simd_sum_exp_ref(x, N, m);
    CHECK(fabs(a - b) / b < 1e-6, "sum_exp %g vs %g", a, b);

    memcpy(y, x, sizeof y), memcpy(r, x, sizeof r);
    simd_gelu(y, N), simd_gelu_ref(r, N);
    /* absolute: the reference 0.5x(1 + tanh) itself cancels for negative x */
    double e = max_rel(y, r, N, 1.0);
    CHECK(e < 1e-6, "gelu max error %g", e);
    memcpy(y, x, sizeof y), memcpy(r, x, sizeof r);
    simd_swiglu(y, u, N), simd_swiglu_ref(r, u, N);
    e = max_rel(y, r, N, 1e-3);
    CHECK(e < 1e-5, "swiglu max rel error %g", e);
    /* extreme inputs stay finite */
    float big[4] = {-200.0f, 200.0f, -1e30f, 1e30f}, one[4] = {1, 1, 1, 1};
    simd_swiglu(big, one, 4);
    CHECK(fabsf(big[0]) < 1e-30f && big[1] == 200.0f && big[3] == 1e30f, "swiglu extremes %g %g %g",
          big[0], big[1], big[3]);
    float g4[4] = {-200.0f, 200.0f, -10.0f, 10.0f};
    simd_gelu(g4, 4);
    CHECK(fabsf(g4[0]) < 1e-30f && g4[1] == 200.0f && isfinite(g4[2]), "gelu extremes %g %g",
          g4[0], g4[1]);
}

/* ---------------------------------------------------------------------------------------- */

static void test_quant(void) {
    CHECK(quant_row_bytes(GGML_F32, 10) == 40, "f32 row");
    CHECK(quant_row_bytes(GGML_F16, 10) == 20, "f16 row");
    CHECK(quant_row_bytes(GGML_BF16, 10) == 20, "bf16 row");
    CHECK(quant_row_bytes(GGML_Q8_0, 64) == 68, "q8_0 row");
    CHECK(quant_row_bytes(GGML_Q8_0, 33) == 0, "q8_0 partial block");
    CHECK(quant_row_bytes(GGML_IQ2_XXS, 256) == 0 && !quant_supported(GGML_IQ2_XXS),
          "iq2_xxs unsupported");
    CHECK(quant_row_bytes(GGML_Q4_K, 512) == 288 && quant_row_bytes(GGML_Q4_K, 32) == 0, "q4_k row");
    enum { N = 256 };
    float x[N], y[N], r[N];
    uint8_t buf[N * 4];
    for (int i = 0; i < N; i++) x[i] = 3.0f * frand();
    x[5] = 0.0f;
    const uint32_t types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0};
    const double tol[] = {0, 1.0 / 2048, 1.0 / 256, 0};
    for (int t = 0; t < 4; t++) {
        CHECK_OK(quantize_row(types[t], x, buf, N));
        dequantize_row(types[t], buf, y, N);
        dequantize_row_ref(types[t], buf, r, N);
        CHECK(memcmp(y, r, sizeof y) == 0, "%s: fast and reference dequantisation differ",
              quant_type_name(types[t]));
        for (int i = 0; i < N; i++) {
            double err = fabs((double)y[i] - x[i]);
            double lim = tol[t] * fabs(x[i]);
            if (types[t] == GGML_Q8_0) { /* half a step of the block's scale (+ f16 scale) */
                float amax = 0;
                for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = fmaxf(amax, fabsf(x[j]));
                lim = amax / 127.0 * 0.5 + amax * 1e-3;
            }
            if (err > lim) {
                CHECK(0, "%s: value %d: %g -> %g", quant_type_name(types[t]), i, x[i], y[i]);
                break;
            }
        }
    }
    /* Q8_0 layout: scale f16 then int8; the block max maps to +-127 */
    float blk[32] = {0};
    blk[3] = -2.54f, blk[7] = 1.27f;
    CHECK_OK(quantize_row(GGML_Q8_0, blk, buf, 32));
    uint16_t d;
    memcpy(&d, buf, 2);
    CHECK(fabsf(terse_f16_to_f32(d) - 0.02f) < 1e-5f, "q8_0 scale %g", terse_f16_to_f32(d));
    CHECK((int8_t)buf[2 + 3] == -127 && (int8_t)buf[2 + 7] == 64 && buf[2] == 0, "q8_0 values %d %d",
          (int8_t)buf[5], (int8_t)buf[9]);
    float zero[32] = {0};
    CHECK_OK(quantize_row(GGML_Q8_0, zero, buf, 32));
    dequantize_row(GGML_Q8_0, buf, y, 32);
    CHECK(y[0] == 0.0f && y[31] == 0.0f, "q8_0 zero block");
    CHECK(quantize_row(GGML_Q8_0, x, buf, 33) == TERSE_ERR_INVALID, "q8_0 partial block rejected");
    CHECK(quantize_row(GGML_IQ2_XXS, x, buf, 256) == TERSE_ERR_UNSUPPORTED, "iq2_xxs rejected");
    CHECK(quantize_row(GGML_IQ4_XS, x, buf, 256) == TERSE_ERR_UNSUPPORTED, "iq4_xs not written");
}

/* ---------------------------------------------------------------------------------------- */

static void test_linear(void) {
    enum { T = 37, K = 96, R = 70 };
    float *w = malloc(sizeof(float) * R * K), *x = malloc(sizeof(float) * T * K);
    float *y = malloc(sizeof(float) * T * R), *yr = malloc(sizeof(float) * T * R);
    uint8_t *q = malloc(R * K * 4);
    float *scratch = malloc(sizeof(float) * 40 * K);
    for (int i = 0; i < R * K; i++) w[i] = frand();
    for (int i = 0; i < T * K; i++) x[i] = frand();
    const uint32_t types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0};
    nn_pool *pool = NULL;
    CHECK_OK(nn_pool_new(2, &pool));
    for (int t = 0; t < 4; t++) {
        size_t rb = quant_row_bytes(types[t], K);
        for (int r = 0; r < R; r++) quantize_row(types[t], w + r * K, q + r * rb, K);
        nn_matrix mat = {types[t], q, R, K, rb, NULL};
        for (int beta = 0; beta <= 1; beta++)
            for (int n = 1; n <= T; n += 2 * n + 1) { /* 1, 3 (sgemv path), 7, 15, 31 */
                for (int i = 0; i < T * R; i++) y[i] = yr[i] = frand();
                /* rows [5, 5+60) into columns with ldy = R; scratch of 40 rows: two blocks */
                nn_linear(x, n, K, &mat, 5, 60, y, R, (float)beta, scratch, 40 * K, pool);
                nn_linear_ref(x, n, K, &mat, 5, 60, yr, R, (float)beta);
                double e = 0;
                for (int i = 0; i < T * R; i++) e = fmax(e, fabs((double)y[i] - yr[i]));
                CHECK(e < 1e-4, "linear %s beta %d n %d: max abs diff %g",
                      quant_type_name(types[t]), beta, n, e);
            }
    }
    nn_pool_free(pool);
    free(w), free(x), free(y), free(yr), free(q), free(scratch);
}

/* ---------------------------------------------------------------------------------------- */

static void test_attention(const char *path) {
    terse_random_params rp = {"llama", 300, 64, 64, 1, 4, 2, 64, TERSE_TYPE_F32, 3, 0.2f, 0};
    CHECK_OK(terse_write_random_model(path, &rp));
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    if (!m) return;
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_batch = 32;
    CHECK_OK(terse_ctx_new(m, cp, &c));
    if (!c) {
        terse_model_free(m);
        return;
    }
    c->q_block = 7; /* several query blocks, one ragged */
    const int64_t C = 64, KVd = 32;
    for (int64_t i = 0; i < 64 * KVd; i++) c->k_cache[i] = 2 * frand(), c->v_cache[i] = frand();
    for (int64_t i = 0; i < 32 * C; i++) c->q[i] = 2 * frand();
    float *ref = malloc(sizeof(float) * 32 * C);
    uint8_t *mask = malloc(20 * 30);
    const int P = 10, n = 20;
    /* causal, with and without cached entries */
    for (int p = 0; p <= P; p += P) {
        nn_attention(c, 0, n, p, NULL, 0);
        nn_attention_ref(c, 0, n, p, NULL, 0, ref);
        double e = max_rel(c->att, ref, n * C, 1e-2);
        CHECK(e < 1e-4, "attention causal P=%d: max rel diff %g", p, e);
    }
    /* one query (the sgemv path), after 10 cached entries */
    nn_attention(c, 0, 1, P, NULL, 0);
    nn_attention_ref(c, 0, 1, P, NULL, 0, ref);
    CHECK(max_rel(c->att, ref, C, 1e-2) < 1e-4, "attention single query: %g",
          max_rel(c->att, ref, C, 1e-2));
    /* custom mask (random, one row fully hidden, one row seeing only the last column) */
    for (int i = 0; i < n * (P + n); i++) mask[i] = frand() > 0;
    memset(mask + 3 * (P + n), 0, P + n);
    memset(mask + 4 * (P + n), 0, P + n);
    mask[4 * (P + n) + P + n - 1] = 1;
    nn_attention(c, 0, n, P, mask, P + n);
    nn_attention_ref(c, 0, n, P, mask, P + n, ref);
    double e = max_rel(c->att, ref, n * C, 1e-2);
    CHECK(e < 1e-4, "attention masked: max rel diff %g", e);
    CHECK(c->att[3 * C] == 0.0f && c->att[3 * C + 63] == 0.0f, "hidden row attends to nothing");
    /* a fully hidden block */
    memset(mask, 0, n * (P + n));
    nn_attention(c, 0, n, P, mask, P + n);
    CHECK(c->att[0] == 0.0f && c->att[(n - 1) * C + 5] == 0.0f, "all-hidden mask gives zeros");
    free(ref), free(mask);
    terse_ctx_free(c);
    terse_model_free(m);
    remove(path);
}

/* ---------------------------------------------------------------------------------------- */

static void count_range(void *arg, int64_t i0, int64_t i1) {
    int *hits = arg;
    for (int64_t i = i0; i < i1; i++) hits[i]++;
}

static void test_pool(void) {
    for (int nt = 1; nt <= 3; nt++) {
        nn_pool *p = NULL;
        CHECK_OK(nn_pool_new(nt, &p));
        CHECK(nn_pool_threads(p) == nt, "pool threads %d", nn_pool_threads(p));
        int ok = 1;
        for (int rep = 0; rep < 200; rep++) {
            int hits[37] = {0};
            int n = rep % 37 + 1;
            nn_pool_run(p, n, 1, count_range, hits);
            for (int i = 0; i < 37; i++) ok &= hits[i] == (i < n);
        }
        CHECK(ok, "pool of %d: every item exactly once", nt);
        nn_pool_free(p);
    }
    int hits[5] = {0};
    nn_pool_run(NULL, 5, 1, count_range, hits);
    CHECK(hits[0] == 1 && hits[4] == 1, "NULL pool runs inline");
}

int main(void) {
    test_pool();
    test_simd();
    test_quant();
    test_linear();
    test_attention("/tmp/terse_test_nn_kernels.gguf");
    return test_summary("nn_kernels");
}
