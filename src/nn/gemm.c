/* gemm.c - single-precision matrix product with packing and register-tile kernels (see
 * gemm.h). Loop nest, outermost first, per thread over its own range of C's columns:
 *   jc: NC columns (weight rows)  -> pc: KC-deep slice of K -> pack B slice (KC x NC)
 *   ic: MC rows of A              -> pack A block (MC x KC, alpha folded in)
 *   jr: NR columns                -> ir: MR rows -> kernel: C tile (MR x NR) over KC
 * Packed layouts: an A micro-panel holds, for each k, MR values of consecutive rows; a B
 * micro-panel, for each k, NR values of consecutive columns; both zero-padded at the edges,
 * so the kernels always run full tiles (an edge tile goes through a small buffer).
 * Why these sizes: a B micro-panel (KC x 32 floats = 32 KB) stays in L1 while the ir loop
 * sweeps the A block (MC x KC = 120 KB) from L2; KC = 256 is also one K-quant super-block,
 * so quantised rows dequantise in whole blocks straight into the panel.
 */
#include "nn/gemm.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/nn.h"
#include "nn/quant.h"

#define KC 256
#define MC 120    /* multiple of every MR */
#define NC 512    /* multiple of every NR */
#define MR_MAX 12
#define NR_MAX 32

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GEMM_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX512_FN __attribute__((target("avx512f,avx2,fma")))
#else
#define GEMM_X86 0
#endif

/* mode: 0 C = acc, 1 C += acc, 2 C = beta C + acc */
typedef void (*kernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                          int mode, float beta);

typedef struct {
    const char *name;
    int mr, nr;
    kernel_fn k;
} kernel_desc;

/* ---------------------------------------------------------------------------------------- */
/* Kernels                                                                                   */

static void kernel_c(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mode,
                     float beta) {
    float acc[4][8] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += 4, b += 8)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) {
            float *o = &c[i * ldc + j];
            *o = mode == 0 ? acc[i][j] : mode == 1 ? *o + acc[i][j] : beta * *o + acc[i][j];
        }
}

#if GEMM_X86
AVX2_FN static void kernel_avx2(int64_t kc, const float *a, const float *b, float *c,
                                int64_t ldc, int mode, float beta) {
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            float *o = c + i * ldc + 8 * h;
            __m256 v = acc[i][h];
            if (mode == 1) v = _mm256_add_ps(_mm256_loadu_ps(o), v);
            else if (mode == 2) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(o), v);
            _mm256_storeu_ps(o, v);
        }
}

AVX512_FN static void kernel_avx512(int64_t kc, const float *a, const float *b, float *c,
                                    int64_t ldc, int mode, float beta) {
    __m512 acc[12][2];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, a += 12, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            float *o = c + i * ldc + 16 * h;
            __m512 v = acc[i][h];
            if (mode == 1) v = _mm512_add_ps(_mm512_loadu_ps(o), v);
            else if (mode == 2) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(o), v);
            _mm512_storeu_ps(o, v);
        }
}
#endif

static const kernel_desc kernels[] = {
#if GEMM_X86
    {"avx512", 12, 32, kernel_avx512},
    {"avx2", 6, 16, kernel_avx2},
#endif
    {"scalar", 4, 8, kernel_c},
};

static const kernel_desc *chosen;

static int cpu_has(const char *name) {
#if GEMM_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx512")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(name, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return !strcmp(name, "scalar");
}

static const kernel_desc *pick(void) {
    if (!chosen)
        for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
            if (cpu_has(kernels[i].name)) {
                chosen = &kernels[i];
                break;
            }
    return chosen;
}

const char *nn_gemm_kernel(void) { return pick()->name; }

int nn_gemm_force(const char *name) {
    if (!name) {
        chosen = NULL;
        return 1;
    }
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(kernels[i].name, name) && cpu_has(name)) {
            chosen = &kernels[i];
            return 1;
        }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Packing                                                                                   */

/* A rows [i0, i0+mc), k [k0, k0+kc) -> ap: mr-row micro-panels, alpha folded in. */
static void pack_a(float *ap, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                   int64_t kc, float alpha, int mr) {
    for (int64_t p = 0; p < mc; p += mr, ap += mr * kc)
        for (int r = 0; r < mr; r++) {
            if (p + r >= mc) {
                for (int64_t k = 0; k < kc; k++) ap[k * mr + r] = 0.0f;
                continue;
            }
            const float *src = A + (i0 + p + r) * lda + k0;
            if (alpha == 1.0f)
                for (int64_t k = 0; k < kc; k++) ap[k * mr + r] = src[k];
            else
                for (int64_t k = 0; k < kc; k++) ap[k * mr + r] = alpha * src[k];
        }
}

/* B columns [j0, j0+nc), k [k0, k0+kc) -> bp: nr-column micro-panels. rows: nr * kc floats
 * of scratch for dequantised row slices. The transposition reads nr rows side by side and
 * writes each k's nr values contiguously. */
static void pack_b(float *bp, const nn_gemm_b *B, int64_t j0, int64_t nc, int64_t k0, int64_t kc,
                   int nr, float *rows) {
    for (int64_t p = 0; p < nc; p += nr, bp += nr * kc) {
        int64_t w = nc - p < nr ? nc - p : nr;
        if (B->kind == NN_B_COLS) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = B->b + (k0 + k) * B->ldb + j0 + p;
                float *dst = bp + k * nr;
                memcpy(dst, src, (size_t)w * sizeof(float));
                for (int64_t j = w; j < nr; j++) dst[j] = 0.0f;
            }
            continue;
        }
        const float *src[NR_MAX];
        for (int64_t j = 0; j < w; j++) {
            if (B->kind == NN_B_ROWS) {
                src[j] = B->b + (j0 + p + j) * B->ldb + k0;
            } else {
                const uint8_t *r = B->data + (size_t)(B->row0 + j0 + p + j) * B->row_bytes;
                dequantize_row(B->type, r + quant_row_bytes(B->type, k0), rows + j * kc, kc);
                src[j] = rows + j * kc;
            }
        }
        if (w == nr) {
            for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < nr; j++) bp[k * nr + j] = src[j][k];
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < nr; j++) bp[k * nr + j] = j < w ? src[j][k] : 0.0f;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Driver                                                                                    */

typedef struct {
    int64_t M, N, K, lda, ldc;
    float alpha, beta;
    const float *A;
    const nn_gemm_b *B;
    float *C;
    const kernel_desc *kd;
    float *buf;          /* per thread: A block, B slice, row scratch, edge tile */
    size_t per_thread;   /* floats */
    int n_parts;
} gemm_job;

static void run_part(void *arg, int64_t t0, int64_t t1) {
    const gemm_job *J = arg;
    const int mr = J->kd->mr, nr = J->kd->nr;
    const int64_t tiles = (J->N + nr - 1) / nr;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0 = tiles * t / J->n_parts * nr, c1 = tiles * (t + 1) / J->n_parts * nr;
        if (c1 > J->N) c1 = J->N;
        float *ap = J->buf + (size_t)t * J->per_thread, *bp = ap + (size_t)MC * KC;
        float *row = bp + (size_t)NC * KC, *tile = row + (size_t)NR_MAX * KC;
        for (int64_t jc = c0; jc < c1; jc += NC) {
            const int64_t nc = c1 - jc < NC ? c1 - jc : NC;
            for (int64_t pc = 0; pc < J->K; pc += KC) {
                const int64_t kc = J->K - pc < KC ? J->K - pc : KC;
                pack_b(bp, J->B, jc, nc, pc, kc, nr, row);
                const int mode = pc > 0 ? 1 : J->beta == 0.0f ? 0 : J->beta == 1.0f ? 1 : 2;
                for (int64_t ic = 0; ic < J->M; ic += MC) {
                    const int64_t mc = J->M - ic < MC ? J->M - ic : MC;
                    pack_a(ap, J->A, J->lda, ic, mc, pc, kc, J->alpha, mr);
                    for (int64_t jr = 0; jr < nc; jr += nr)
                        for (int64_t ir = 0; ir < mc; ir += mr) {
                            float *c = J->C + (ic + ir) * J->ldc + jc + jr;
                            const float *a = ap + ir * kc, *b = bp + jr * kc;
                            int64_t h = mc - ir < mr ? mc - ir : mr, w = nc - jr < nr ? nc - jr : nr;
                            if (h == mr && w == nr) {
                                J->kd->k(kc, a, b, c, J->ldc, mode, J->beta);
                                continue;
                            }
                            J->kd->k(kc, a, b, tile, nr, 0, 0.0f);
                            for (int64_t i = 0; i < h; i++)
                                for (int64_t j = 0; j < w; j++) {
                                    float *o = c + i * J->ldc + j, v = tile[i * nr + j];
                                    *o = mode == 0 ? v : mode == 1 ? *o + v : J->beta * *o + v;
                                }
                        }
                }
            }
        }
    }
}

#define PER_THREAD ((size_t)MC * KC + (size_t)NC * KC + (size_t)NR_MAX * KC + (size_t)MR_MAX * NR_MAX + 16)

int64_t nn_gemm_workspace(int n_threads) {
    return (int64_t)PER_THREAD * (n_threads < 1 ? 1 : n_threads);
}

int nn_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
            const nn_gemm_b *B, float beta, float *C, int64_t ldc, nn_pool *pool, float *work,
            int64_t work_cap) {
    if (M <= 0 || N <= 0) return TERSE_OK;
    if (K <= 0) { /* C = beta C */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return TERSE_OK;
    }
    const kernel_desc *kd = pick();
    gemm_job J = {M, N, K, lda, ldc, alpha, beta, A, B, C, kd, NULL, 0, 1};
    const int64_t tiles = (N + kd->nr - 1) / kd->nr;
    int threads = nn_pool_threads(pool);
    /* each part gets at least a few tiles' worth of work */
    J.n_parts = threads;
    if (J.n_parts > tiles) J.n_parts = (int)tiles;
    if ((double)M * (double)N * (double)K < 262144.0) J.n_parts = 1;
    J.per_thread = PER_THREAD;
    float *own = NULL;
    if (work && work_cap >= (int64_t)(J.per_thread * (size_t)J.n_parts)) {
        J.buf = work;
    } else {
        J.buf = own = malloc(J.per_thread * (size_t)J.n_parts * sizeof(float));
        if (!J.buf) return terse_err(TERSE_ERR_NOMEM, "gemm: %d packing buffers", J.n_parts);
    }
    if (J.n_parts == 1) run_part(&J, 0, 1);
    else nn_pool_run(pool, J.n_parts, 1, run_part, &J);
    free(own);
    return TERSE_OK;
}

int nn_sgemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
             nn_pool *pool, float *work, int64_t work_cap) {
    nn_gemm_b b = {trans_b ? NN_B_ROWS : NN_B_COLS, B, ldb, 0, NULL, 0, 0};
    return nn_gemm(M, N, K, alpha, A, lda, &b, beta, C, ldc, pool, work, work_cap);
}
