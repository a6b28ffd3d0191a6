/* test_gemm.c - the runtime's gemm (src/nn/gemm.c) against a double-precision triple loop:
 * every kernel this CPU has (AVX-512, AVX2, plain C), all three B sources (rows, columns,
 * quantised matrix rows of every type), beta 0 / 1 / other, alpha, edge tiles (M, N, K not
 * multiples of the tile or slice sizes), 1 and 3 threads (with 3 and enough rows, one row
 * group per thread), caller-given and own workspace.
 * Weights packed once (NN_B_PACKED, rows from a panel start inside a larger matrix, so the
 * last panel holds real rows past N) and the packed gemv (a few rows, any first row) with
 * each kernel (forcing "avx2" runs its AVX2 gemv on an AVX-512 machine too).
 * Several products of one A at once (nn_gemm_multi) against one call each.
 */
#include "harness.h"
#include "gguf/gguf.h"
#include "nn/gemm.h"
#include "nn/quant.h"
#include "terse.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* C = alpha A op(B) + beta C in double; Bf: op(B) as (K, N) floats */
static void ref(int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *Bkn,
                float beta, float *C) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)A[i * K + k] * Bkn[k * N + j];
            C[i * N + j] = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * C[i * N + j]));
        }
}

static void one(const char *kern, int64_t M, int64_t N, int64_t K, int kind, uint32_t type,
                float alpha, float beta, nn_pool *pool, int own_ws) {
    float *A = malloc(sizeof(float) * M * K), *Bkn = malloc(sizeof(float) * K * N);
    float *Bnk = malloc(sizeof(float) * N * K), *C = malloc(sizeof(float) * M * N);
    float *R = malloc(sizeof(float) * M * N);
    size_t rb = quant_row_bytes(type, K);
    uint8_t *q = malloc(rb * (size_t)(N + 3) + 1);
    for (int64_t i = 0; i < M * K; i++) A[i] = frand();
    for (int64_t i = 0; i < N * K; i++) Bnk[i] = frand();
    if (kind == NN_B_MATRIX) /* B = rows [3, 3+N) of a quantised matrix: compare on its values */
        for (int64_t j = 0; j < N + 3; j++) {
            float row[4096];
            for (int64_t k = 0; k < K; k++) row[k] = frand();
            quantize_row(type, row, q + j * rb, K);
            if (j >= 3) dequantize_row_ref(type, q + j * rb, Bnk + (j - 3) * K, K);
        }
    for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++) Bkn[k * N + j] = Bnk[j * K + k];
    for (int64_t i = 0; i < M * N; i++) C[i] = R[i] = beta == 0.0f ? NAN : frand();
    ref(M, N, K, alpha, A, Bkn, beta, R);
    nn_gemm_b b = {kind, kind == NN_B_ROWS ? Bnk : Bkn, kind == NN_B_ROWS ? K : N, type, q, rb, 3};
    float *W = NULL, *P = NULL; /* NN_B_PACKED: B = rows [32, 32 + N) of W (N + 45 rows) */
    if (kind == NN_B_PACKED) {
        W = malloc(sizeof(float) * (N + 45) * K);
        P = malloc(sizeof(float) * nn_gemm_packed_floats(N + 45, K));
        for (int64_t i = 0; i < (N + 45) * K; i++) W[i] = frand();
        memcpy(W + 32 * K, Bnk, sizeof(float) * N * K);
        nn_gemm_pack_rows(W, N + 45, K, P, pool);
        b = (nn_gemm_b){NN_B_PACKED, P, K, 0, NULL, 0, 32};
    }
    int64_t cap = nn_gemm_workspace(3, M, K);
    float *ws = own_ws ? NULL : malloc(sizeof(float) * cap);
    CHECK_OK(nn_gemm(M, N, K, alpha, A, K, &b, beta, C, N, pool, ws, cap));
    double e = 0, mag = 0;
    for (int64_t i = 0; i < M * N; i++) {
        double d = fabs((double)C[i] - R[i]);
        e = d > e || d != d ? d : e;
        mag = fmax(mag, fabs(R[i]));
    }
    CHECK(e <= 2e-5 * (mag + 1) * sqrt((double)K), "%s M %lld N %lld K %lld kind %d type %s "
          "alpha %g beta %g: max diff %g (|C| %g)", kern, (long long)M, (long long)N,
          (long long)K, kind, quant_type_name(type), alpha, beta, e, mag);
    free(A), free(Bkn), free(Bnk), free(C), free(R), free(q), free(ws), free(W), free(P);
}

/* nn_gemm_multi: three products of one A (two ranges of a packed matrix, one plain B; beta 0,
 * 1, 0.5) must equal three nn_gemm calls bit for bit (each C value sums the same K slices in
 * the same order, whatever the chunks and row groups). */
static void multi(const char *kern, int64_t M, int64_t K, nn_pool *pool) {
    const int64_t Ns[3] = {64, 70, 37}, rows = 200;
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * rows * K);
    float *P = malloc(sizeof(float) * nn_gemm_packed_floats(rows, K));
    float *Bp = malloc(sizeof(float) * Ns[2] * K), *C[3], *S[3];
    for (int64_t i = 0; i < M * K; i++) A[i] = frand();
    for (int64_t i = 0; i < rows * K; i++) W[i] = frand();
    for (int64_t i = 0; i < Ns[2] * K; i++) Bp[i] = frand();
    nn_gemm_pack_rows(W, rows, K, P, pool);
    const nn_gemm_b b[3] = {{NN_B_PACKED, P, K, 0, NULL, 0, 0}, {NN_B_PACKED, P, K, 0, NULL, 0, 96},
                            {NN_B_ROWS, Bp, K, 0, NULL, 0, 0}};
    const float betas[3] = {0.0f, 1.0f, 0.5f};
    nn_gemm_out o[3];
    for (int i = 0; i < 3; i++) {
        C[i] = malloc(sizeof(float) * M * Ns[i]), S[i] = malloc(sizeof(float) * M * Ns[i]);
        for (int64_t j = 0; j < M * Ns[i]; j++) C[i][j] = S[i][j] = frand();
        o[i] = (nn_gemm_out){&b[i], Ns[i], betas[i], C[i], Ns[i]};
        CHECK_OK(nn_gemm(M, Ns[i], K, 0.5f, A, K, &b[i], betas[i], S[i], Ns[i], pool, NULL, 0));
    }
    CHECK_OK(nn_gemm_multi(M, K, 0.5f, A, K, o, 3, pool, NULL, 0));
    for (int i = 0; i < 3; i++)
        CHECK(!memcmp(C[i], S[i], sizeof(float) * M * Ns[i]), "%s multi M %lld K %lld: output %d "
              "differs from its own product", kern, (long long)M, (long long)K, i);
    for (int i = 0; i < 3; i++) free(C[i]), free(S[i]);
    free(A), free(W), free(P), free(Bp);
}

/* y (n, N) = beta y + x W[row0, row0 + N)^T through the packed gemv, against double sums. */
static void gemv(const char *kern, int64_t n, int64_t N, int64_t K, int64_t row0, float beta,
                 nn_pool *pool) {
    const int64_t rows = row0 + N + 7;
    float *W = malloc(sizeof(float) * rows * K), *P = malloc(sizeof(float) * nn_gemm_packed_floats(rows, K));
    float *x = malloc(sizeof(float) * n * K), *y = malloc(sizeof(float) * n * (N + 2));
    for (int64_t i = 0; i < rows * K; i++) W[i] = frand();
    for (int64_t i = 0; i < n * K; i++) x[i] = frand();
    for (int64_t i = 0; i < n * (N + 2); i++) y[i] = frand();
    nn_gemm_pack_rows(W, rows, K, P, pool);
    double e = 0;
    float *y0 = malloc(sizeof(float) * n * (N + 2));
    memcpy(y0, y, sizeof(float) * n * (N + 2));
    const char *want = !strcmp(kern, "avx512") && n > 4 ? "avx2" : kern;
    CHECK(!strcmp(nn_gemv_kernel(n), want), "gemm kernel %s, %lld rows: the gemv runs %s, not %s",
          kern, (long long)n, nn_gemv_kernel(n), want);
    nn_gemv_packed(x, n, K, P, K, row0, N, y, N + 2, beta, pool);
    for (int64_t r = 0; r < n; r++) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)x[r * K + k] * W[(row0 + j) * K + k];
            s += beta == 0.0f ? 0.0 : (double)beta * y0[r * (N + 2) + j];
            e = fmax(e, fabs(s - y[r * (N + 2) + j]));
        }
        e = fmax(e, fabs((double)y[r * (N + 2) + N] - y0[r * (N + 2) + N])); /* untouched */
    }
    CHECK(e <= 2e-5 * sqrt((double)K) * 2, "%s gemv n %lld N %lld K %lld row0 %lld: max diff %g",
          kern, (long long)n, (long long)N, (long long)K, (long long)row0, e);
    free(W), free(P), free(x), free(y), free(y0);
}

int main(void) {
    const char *kerns[] = {"avx512", "avx2", "scalar"};
    nn_pool *p1 = NULL, *p3 = NULL;
    CHECK_OK(nn_pool_new(1, &p1));
    CHECK_OK(nn_pool_new(3, &p3));
    const int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {12, 32, 256},
                                 {25, 70, 300}, {130, 1100, 96}, {40, 64, 530},
                                 {200, 150, 300}}; /* the last: row groups with 3 threads */
    const uint32_t qtypes[] = {GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_1, GGML_Q5_0,
                               GGML_Q5_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
    for (int k = 0; k < 3; k++) {
        if (!nn_gemm_force(kerns[k])) {
            printf("gemm kernel %s: not on this CPU, skipped\n", kerns[k]);
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int kind = 0; kind < 2; kind++)
                for (int bm = 0; bm < 3; bm++) {
                    float beta = bm == 0 ? 0.0f : bm == 1 ? 1.0f : 0.5f;
                    one(kerns[k], shapes[s][0], shapes[s][1], shapes[s][2], kind, 0,
                        bm == 2 ? 0.25f : 1.0f, beta, s % 2 ? p3 : p1, s == 3);
                }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            one(kerns[k], shapes[s][0], shapes[s][1], shapes[s][2], NN_B_PACKED, 0,
                s % 3 ? 1.0f : 0.5f, s % 2 ? 1.0f : 0.0f, s % 2 ? p3 : p1, s == 2);
        for (int64_t n = 1; n <= 5; n++) {
            gemv(kerns[k], n, 70, 300, n == 2 ? 32 : 5 * n, n % 2 ? 0.0f : 0.5f, n % 2 ? p3 : p1);
            gemv(kerns[k], n, 1, 17, 31, 1.0f, p1);
        }
        gemv(kerns[k], 3, 129, 1031, 7, 0.5f, p3);
        multi(kerns[k], 200, 300, p3);
        multi(kerns[k], 30, 64, p3);
        multi(kerns[k], 50, 260, p1);
        for (size_t t = 0; t < sizeof qtypes / sizeof qtypes[0]; t++)
            one(kerns[k], 37, 45, 512, NN_B_MATRIX, qtypes[t], 1.0f, t % 2 ? 1.0f : 0.0f, p3, 0);
    }
    nn_gemm_force(NULL);
    printf("gemm kernel in use: %s\n", nn_gemm_kernel());
    nn_pool_free(p1);
    nn_pool_free(p3);
    return test_summary("gemm");
}
