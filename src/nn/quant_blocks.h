/* quant_blocks.h - the block formats behind quant.c, one family per file (internal header):
 *   quant_legacy.c  Q4_0, Q4_1, Q5_0, Q5_1        (32-value blocks, one scale [+ min])
 *   quant_k.c       Q2_K, Q3_K, Q4_K, Q5_K, Q6_K  (256-value super-blocks, 6/8-bit sub-scales)
 *   quant_iq.c      IQ4_NL, IQ4_XS                (4-bit indices into a fixed non-linear table)
 *   quant_simd.c    AVX2 and AVX-512 bodies of the hot dequantisers, picked at run time
 *
 * Layouts are GGML's (ggml-common.h; ../shared/quant/README.md lists them): little-endian,
 * `half` = IEEE fp16. Every dequantiser here computes exactly what GGML's reference
 * dequantiser computes, in the same float operation order (a product then a difference, never
 * a fused multiply-add), so results are bit-identical to llama.cpp's and gguf-py's.
 *
 * deq_* : nb whole blocks at src into dst (nb * block values), plain C.
 * qnt_* : nb whole blocks of src into dst, llama.cpp's reference quantisers (no importance
 *         matrix), so the bytes match llama-quantize's where the float arithmetic agrees.
 */
#ifndef TERSE_NN_QUANT_BLOCKS_H
#define TERSE_NN_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

#include "base/base.h"

#define QK_K 256

static inline uint16_t qb_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float qb_half(const uint8_t *p) { return terse_f16_to_f32(qb_rd16(p)); }
static inline void qb_wr_half(uint8_t *p, float f) {
    uint16_t h = terse_f32_to_f16(f);
    memcpy(p, &h, 2);
}

typedef void (*qb_deq_fn)(const uint8_t *src, float *dst, int64_t nb);
typedef void (*qb_qnt_fn)(const float *src, uint8_t *dst, int64_t nb);

void deq_q4_0(const uint8_t *src, float *dst, int64_t nb);
void deq_q4_1(const uint8_t *src, float *dst, int64_t nb);
void deq_q5_0(const uint8_t *src, float *dst, int64_t nb);
void deq_q5_1(const uint8_t *src, float *dst, int64_t nb);
void deq_q2_k(const uint8_t *src, float *dst, int64_t nb);
void deq_q3_k(const uint8_t *src, float *dst, int64_t nb);
void deq_q4_k(const uint8_t *src, float *dst, int64_t nb);
void deq_q5_k(const uint8_t *src, float *dst, int64_t nb);
void deq_q6_k(const uint8_t *src, float *dst, int64_t nb);
void deq_iq4_nl(const uint8_t *src, float *dst, int64_t nb);
void deq_iq4_xs(const uint8_t *src, float *dst, int64_t nb);

void qnt_q4_0(const float *src, uint8_t *dst, int64_t nb);
void qnt_q4_1(const float *src, uint8_t *dst, int64_t nb);
void qnt_q5_0(const float *src, uint8_t *dst, int64_t nb);
void qnt_q5_1(const float *src, uint8_t *dst, int64_t nb);
void qnt_q4_k(const float *src, uint8_t *dst, int64_t nb);
void qnt_q5_k(const float *src, uint8_t *dst, int64_t nb);
void qnt_q6_k(const float *src, uint8_t *dst, int64_t nb);

/* IQ4_NL / IQ4_XS value table. */
extern const int8_t qb_iq4nl_values[16];

/* Q4_K / Q5_K packed 6-bit scale and min of sub-block j (0..7) from the 12 scale bytes. */
static inline void qb_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K: the 16 signed 6-bit scales of a block (already minus 32) from its 12 scale bytes. */
void qb_q3_scales(const uint8_t *s, int8_t out[16]);

/* Fast (SIMD) dequantiser for a type, or NULL when only the plain C one exists on this CPU.
 * Chosen once from the CPU's features (AVX-512 BW, else AVX2+FMA+F16C). */
qb_deq_fn qb_fast_deq(uint32_t type);
/* Tests: use SIMD level l (0 scalar, 1 AVX2, 2 AVX-512) if the CPU has it (returns 0 if not);
 * -1: back to the best one. */
int qb_force_level(int l);
/* "avx512", "avx2" or "scalar": what qb_fast_deq picks on this CPU. */
const char *qb_simd_level(void);

#endif
