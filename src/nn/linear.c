/* linear.c - linear layers over a batch: y = x W^T (+ beta y).
 *
 * More than a few rows: the runtime's own gemm (gemm.c) on the pool's threads, reading the
 * weights straight from the mapping; quantised weights are dequantised 256 values at a time
 * into its packed panels, never a whole matrix.
 * A few rows (decoding): the BLAS's sgemv, F32 weights straight from the mapping, others
 * dequantised in row blocks of at most `cap` floats (dequantisation on the pool). The same
 * path serves as the fallback when the gemm cannot get its packing buffers.
 * F32 matrices packed at load (model.c, nn_matrix.packed) go to the gemm without packing, and
 * a few rows through the packed layout's own gemv (gemm.c), so that the rows' original pages
 * are not read again.
 * A naive triple loop with the same contract is kept for tests.
 */
#include <cblas.h>
#include <stdlib.h>

#include "nn/gemm.h"
#include "nn/nn.h"
#include "nn/quant.h"

void nn_matrix_row(const nn_matrix *w, int64_t r, float *dst) {
    dequantize_row(w->type, w->data + (size_t)r * w->row_bytes, dst, w->cols);
}

typedef struct {
    const nn_matrix *w;
    int64_t row0;
    float *dst;            /* (rows, cols) */
} dequant_job;

static void dequant_range(void *arg, int64_t r0, int64_t r1) {
    const dequant_job *j = arg;
    for (int64_t r = r0; r < r1; r++) nn_matrix_row(j->w, j->row0 + r, j->dst + r * j->w->cols);
}

/* y (n, nr) = beta y + x (n, K) W (nr, K)^T for an f32 block W. A few rows go through sgemv:
 * sgemm would pack (copy) the whole weight block for them, which costs more than the
 * product itself when decoding one token at a time. */
#define GEMV_MAX_ROWS 4

static void product(const float *x, int64_t n, int64_t ldx, const float *W, int64_t nr,
                    int64_t K, float *y, int64_t ldy, float beta) {
    if (n <= GEMV_MAX_ROWS) {
        for (int64_t r = 0; r < n; r++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nr, (int)K, 1.0f, W, (int)K,
                        x + r * ldx, 1, beta, y + r * ldy, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nr, (int)K, 1.0f, x,
                (int)ldx, W, (int)K, beta, y, (int)ldy);
}

void nn_linear(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
               int64_t nrows, float *y, int64_t ldy, float beta, float *scratch, int64_t cap,
               nn_pool *pool) {
    const int64_t K = w->cols;
    if (n <= 0 || nrows <= 0) return;
    if (w->packed && n <= GEMV_MAX_ROWS) {
        nn_gemv_packed(x, n, ldx, w->packed, K, row0, nrows, y, ldy, beta, pool);
        return;
    }
    if (w->packed && row0 % NN_PANEL == 0) {
        nn_gemm_b b = {NN_B_PACKED, w->packed, K, 0, NULL, 0, row0};
        if (nn_gemm(n, nrows, K, 1.0f, x, ldx, &b, beta, y, ldy, pool, scratch, cap) == TERSE_OK)
            return;
    }
    if (n > GEMV_MAX_ROWS) {
        nn_gemm_b b = {NN_B_MATRIX, NULL, K, w->type, w->data, w->row_bytes, row0};
        if (w->type == GGML_F32)
            b = (nn_gemm_b){NN_B_ROWS, (const float *)(w->data + (size_t)row0 * w->row_bytes), K,
                            0, NULL, 0, 0};
        if (nn_gemm(n, nrows, K, 1.0f, x, ldx, &b, beta, y, ldy, pool, scratch, cap) == TERSE_OK)
            return;
    }
    nn_blas_begin(nn_pool_threads(pool)); /* OpenBLAS works with the context's threads */
    if (w->type == GGML_F32) {
        product(x, n, ldx, (const float *)(w->data + (size_t)row0 * w->row_bytes), nrows, K, y,
                ldy, beta);
        nn_blas_end();
        return;
    }
    int64_t blk = cap / K;
    if (blk > 16) blk -= blk % 16;
    if (blk < 1) blk = 1;
    for (int64_t r0 = 0; r0 < nrows; r0 += blk) {
        int64_t nr = nrows - r0 < blk ? nrows - r0 : blk;
        dequant_job j = {w, row0 + r0, scratch};
        nn_pool_run(pool, nr, 65536 / K + 1, dequant_range, &j);
        product(x, n, ldx, scratch, nr, K, y + r0, ldy, beta);
    }
    nn_blas_end();
}

void nn_linear_multi(const float *x, int64_t n, int64_t ldx, const nn_linear_out *outs,
                     int n_outs, float *scratch, int64_t cap, nn_pool *pool) {
    int all_packed = n > GEMV_MAX_ROWS && n_outs <= GEMM_OUTS_MAX;
    for (int i = 0; i < n_outs; i++)
        all_packed &= outs[i].w->packed && outs[i].row0 % NN_PANEL == 0 &&
                      outs[i].w->cols == outs[0].w->cols;
    if (all_packed) {
        nn_gemm_b b[GEMM_OUTS_MAX];
        nn_gemm_out o[GEMM_OUTS_MAX];
        for (int i = 0; i < n_outs; i++) {
            const nn_linear_out *l = &outs[i];
            b[i] = (nn_gemm_b){NN_B_PACKED, l->w->packed, l->w->cols, 0, NULL, 0, l->row0};
            o[i] = (nn_gemm_out){&b[i], l->nrows, l->beta, l->y, l->ldy};
        }
        const int64_t K = outs[0].w->cols;
        if (nn_gemm_multi(n, K, 1.0f, x, ldx, o, n_outs, pool, scratch, cap) == TERSE_OK) return;
    }
    for (int i = 0; i < n_outs; i++) {
        const nn_linear_out *l = &outs[i];
        nn_linear(x, n, ldx, l->w, l->row0, l->nrows, l->y, l->ldy, l->beta, scratch, cap, pool);
    }
}

void nn_linear_ref(const float *x, int64_t n, int64_t ldx, const nn_matrix *w, int64_t row0,
                   int64_t nrows, float *y, int64_t ldy, float beta) {
    float *row = malloc((size_t)w->cols * sizeof *row);
    if (!row) return;
    for (int64_t j = 0; j < nrows; j++) {
        dequantize_row_ref(w->type, w->data + (size_t)(row0 + j) * w->row_bytes, row, w->cols);
        for (int64_t r = 0; r < n; r++) {
            double s = 0;
            for (int64_t k = 0; k < w->cols; k++) s += (double)x[r * ldx + k] * row[k];
            float *o = &y[r * ldy + j];
            *o = (float)(beta == 0.0f ? s : beta * *o + s);
        }
    }
    free(row);
}
