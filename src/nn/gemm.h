/* gemm.h - the runtime's own single-precision matrix product (gemm.c), replacing the BLAS for
 * every product with more than a few rows. Internal header.
 *
 *   C (M, N; ldc) = alpha * A (M, K; lda) op(B) + beta * C
 *
 * op(B) is one of four sources, the first three read through the same packing step:
 *   NN_B_ROWS   B is (N, K) row-major (ldb): C = A B^T    - weights, attention keys
 *   NN_B_COLS   B is (K, N) row-major (ldb): C = A B      - attention values
 *   NN_B_MATRIX rows [row0, row0+N) of a weight matrix of any supported type, dequantised
 *               block by block into the packed panel (never more than one panel at a time)
 *   NN_B_PACKED rows [row0, row0+N) of an F32 matrix packed once by nn_gemm_pack_rows (b, the
 *               whole packed matrix; ldb = K; row0 a multiple of NN_PANEL): the kernels read
 *               its panels in place, nothing is packed per call
 * beta = 0 overwrites C (NaN in C does not propagate).
 *
 * Blocked as BLIS does (K in slices of 256, B packed into 256 x 512 slices, all of A packed
 * once into micro-panels, a register-tile micro-kernel), with AVX-512 (12 x 32 tile) and AVX2+FMA (6 x 16)
 * kernels chosen at run time, and a plain C kernel otherwise. Threads: the pool's threads take
 * chunks of C's columns (weight rows, at most 64 at a time) from shared counters, one per row
 * group of A (a thread's own group first), packing their own panels, so the dequantisation is
 * shared out too, no thread waits for another until the end, and a thread that the OS holds
 * up leaves its remaining chunks to the others.
 */
#ifndef TERSE_NN_GEMM_H
#define TERSE_NN_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/pool.h"

struct nn_matrix_s;

typedef enum { NN_B_ROWS, NN_B_COLS, NN_B_MATRIX, NN_B_PACKED } nn_b_kind;

typedef struct {
    nn_b_kind kind;
    const float *b;         /* NN_B_ROWS / NN_B_COLS / NN_B_PACKED */
    int64_t ldb;
    uint32_t type;          /* NN_B_MATRIX: GGML type, data, bytes per row, first row */
    const uint8_t *data;
    size_t row_bytes;
    int64_t row0;
} nn_gemm_b;

/* Packing buffers: work (work_cap floats) when it holds nn_gemm_workspace(threads of pool),
 * else allocated for the call. Returns 0, or TERSE_ERR_NOMEM with a message (C untouched). */
int nn_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
            const nn_gemm_b *B, float beta, float *C, int64_t ldc, nn_pool *pool, float *work,
            int64_t work_cap);

/* Several products of the same A at once: C_i (M, N_i; ldc_i) = alpha A op(B_i) + beta_i C_i
 * for i < n_outs (at most GEMM_OUTS_MAX): A is packed once, and the threads take the chunks of
 * all of them in one go (one wait at the end instead of one per product). The C_i must not
 * overlap each other or A. nn_gemm is the case of one output. */
#define GEMM_OUTS_MAX 4
typedef struct {
    const nn_gemm_b *B;
    int64_t N;
    float beta;
    float *C;
    int64_t ldc;
} nn_gemm_out;

int nn_gemm_multi(int64_t M, int64_t K, float alpha, const float *A, int64_t lda,
                  const nn_gemm_out *outs, int n_outs, nn_pool *pool, float *work,
                  int64_t work_cap);

/* Floats of packing buffer nn_gemm wants for n_threads threads (about 0.6 MB each) and
 * products of up to M rows of A and depth K (all of A is packed once, shared by the threads). */
int64_t nn_gemm_workspace(int n_threads, int64_t M, int64_t K);

/* Convenience for float B. trans_b = 1: B is (N, K) (C = A B^T); 0: B is (K, N). */
int nn_sgemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
             nn_pool *pool, float *work, int64_t work_cap);

/* The kernel in use: "avx512", "avx2" or "scalar". Tests may force one with
 * nn_gemm_force("avx2") (NULL: back to the CPU's best); returns 0 if the CPU lacks it. */
const char *nn_gemm_kernel(void);
int nn_gemm_force(const char *name);

/* Weights packed once (at model load): rows in panels of NN_PANEL, each panel k-major, the
 * panel's rows side by side (element (r, k) at (r / 32) * 32 * K + k * 32 + r % 32; rows past
 * N are zero). This is the layout the kernels read (AVX-512: one 32-wide micro-panel; AVX2 and
 * plain C: 16- and 8-wide parts of it, a stride of 32 apart), so a product needs no packing of
 * the weights and they stream from memory in order. */
#define NN_PANEL 32
/* A large buffer the products stream through (packed weights, KV cache, scratch): from 4 MB
 * up, 2 MB aligned and marked for transparent huge pages (fewer TLB misses and page faults);
 * free() releases it. NULL with TERSE_ERR_NOMEM's message when there is no room. */
void *nn_alloc_big(size_t bytes, const char *what);
int64_t nn_gemm_packed_floats(int64_t N, int64_t K);
void nn_gemm_pack_rows(const float *W, int64_t N, int64_t K, float *dst, nn_pool *pool);

/* y (n, nrows; ldy) = beta y + x (n, K; ldx) W^T, rows [row0, row0+nrows) of a packed W
 * (decoding: a few rows of x; any row0). */
void nn_gemv_packed(const float *x, int64_t n, int64_t ldx, const float *P, int64_t K,
                    int64_t row0, int64_t nrows, float *y, int64_t ldy, float beta, nn_pool *pool);
/* The gemv's kernel for n rows of x, chosen with the gemm's (nn_gemm_force included):
 * "avx512" (up to 4 rows; more go to AVX2), "avx2" (AVX2+FMA, any n) or "scalar". */
const char *nn_gemv_kernel(int64_t n);

#endif
