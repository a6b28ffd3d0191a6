/* fuzz_gguf.c - libFuzzer target: GGUF files with quantised tensors.
 *
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). Run from the repository root:
 *     ./build/fuzz/fuzz_gguf -max_len=65536 -max_total_time=600 CORPUS_DIR
 * Seeds: small files of every tensor type, e.g. `terse random` tiny models (--embd 256
 * --layers 1 --ff 256 --vocab 260) in f32, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k,
 * q4_k_m, plus pieces of ../shared/quant.
 *
 * Per input: gguf_open_memory; when it opens, every tensor of a type the runtime reads is
 * dequantised row by row (plain and SIMD paths must agree bit for bit, NaN-for-NaN), its scales
 * checked, and up to 64 rows multiplied through the gemm (NN_B_MATRIX) against the plain
 * dequantised rows; then the bytes are loaded as a model (a scratch file) and, when that
 * succeeds and the model is small, 4 tokens are scored. abort() on any disagreement; crashes,
 * leaks and undefined behaviour are the sanitizers' business.
 */
#include "gguf/gguf.h"
#include "nn/gemm.h"
#include "nn/quant.h"
#include "terse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int same_bits(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

static void tensors(const gguf_file *g) {
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (!quant_supported(t->type)) continue;
        int64_t cols = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
        size_t rb = quant_row_bytes(t->type, cols);
        if (cols <= 0 || cols > 65536 || rb == 0) continue;
        if (rows > 64) rows = 64;
        float *a = malloc(sizeof(float) * (size_t)(cols * rows)), *b = malloc(sizeof(float) * (size_t)cols);
        if (!a || !b) abort();
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *src = (const uint8_t *)t->data + r * rb;
            dequantize_row(t->type, src, a + r * cols, cols);
            dequantize_row_ref(t->type, src, b, cols);
            if (!same_bits(a + r * cols, b, cols)) abort();
            (void)quant_row_bad_block(t->type, src, cols);
        }
        /* y (2, rows) = x (2, cols) W^T through the gemm, against a plain loop, finite rows */
        int finite = 1;
        for (int64_t k = 0; k < cols * rows && finite; k++) finite = isfinite(a[k]) && fabsf(a[k]) < 1e30f;
        if (finite && cols <= 4096) {
            float *x = malloc(sizeof(float) * 2 * cols), *y = malloc(sizeof(float) * 2 * rows);
            if (!x || !y) abort();
            for (int64_t k = 0; k < 2 * cols; k++) x[k] = (float)((k * 37) % 11) * 0.1f - 0.5f;
            nn_gemm_b B = {NN_B_MATRIX, NULL, 0, t->type, t->data, rb, 0};
            if (nn_gemm(2, rows, cols, 1.0f, x, cols, &B, 0.0f, y, rows, NULL, NULL, 0) == 0)
                for (int64_t r = 0; r < 2; r++)
                    for (int64_t j = 0; j < rows; j++) {
                        double s = 0, m = 0;
                        for (int64_t k = 0; k < cols; k++) {
                            s += (double)x[r * cols + k] * a[j * cols + k];
                            m += fabs((double)x[r * cols + k] * a[j * cols + k]);
                        }
                        if (isfinite(s) && fabs(y[r * rows + j] - s) > 1e-4 * (m + 1)) abort();
                    }
            free(x), free(y);
        }
        free(a), free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *g = NULL;
    if (gguf_open_memory(data, size, &g) != 0) return 0;
    tensors(g);
    gguf_close(g);

    char path[64];
    snprintf(path, sizeof path, "/tmp/terse_fuzz_gguf_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    terse_model *m = NULL;
    if (terse_model_load(path, terse_model_default_params(), &m) == 0) {
        terse_model_info info;
        terse_model_get_info(m, &info);
        terse_ctx *c = NULL;
        terse_ctx_params cp = terse_ctx_default_params();
        cp.n_ctx = 8, cp.n_threads = 1;
        if (info.n_params < 4000000 && terse_ctx_new(m, cp, &c) == 0) {
            int32_t ids[4] = {0, 1 % info.n_vocab, 2 % info.n_vocab, 3 % info.n_vocab};
            float s[4];
            (void)terse_score(c, ids, 4, s);
            terse_ctx_free(c);
        }
        terse_model_free(m);
    }
    unlink(path);
    return 0;
}
