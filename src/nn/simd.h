/* simd.h - the runtime's small vector kernels, the only place with intrinsics.
 *
 * Each kernel has an AVX2+FMA(+F16C) body and a plain C fallback (some kept callable as
 * simd_*_ref for tests). The body is fixed at compile time when the compiler targets those
 * extensions (-march=native), else chosen per call from the CPU (x86-64 with GCC or clang:
 * make PORTABLE=1). Big matrix products are not here: they go to the BLAS.
 *
 * Accuracy: simd_exp is within ~2 ulp of expf on [-87.3, 88.7] and returns exactly 0 below
 * -87.3 (so a masked score of -INFINITY contributes nothing); sums use several partial
 * accumulators, so they differ from a sequential sum by rounding only.
 */
#ifndef TERSE_NN_SIMD_H
#define TERSE_NN_SIMD_H

#include <stdint.h>

/* 1 when the vector bodies run (compiled in, and the CPU has them), 0 for the fallbacks. */
int simd_enabled(void);

/* Conversions. */
void simd_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
void simd_bf16_to_f32(const uint16_t *src, float *dst, int64_t n);
/* dst[0..32) = d * q[0..32) (one Q8_0 block) */
void simd_q8_block_to_f32(float d, const int8_t *q, float *dst);

/* Reductions. */
float simd_dot(const float *a, const float *b, int64_t n);
float simd_sum(const float *x, int64_t n);
float simd_max(const float *x, int64_t n);                /* -INFINITY for n == 0 */
/* sum of exp(x[i] - m), x untouched */
float simd_sum_exp(const float *x, int64_t n, float m);
/* x[i] = exp(x[i] - m) in place; returns the sum */
float simd_exp_inplace(float *x, int64_t n, float m);

/* Elementwise. */
void simd_scale(float *x, float s, int64_t n);            /* x *= s */
void simd_add(float *y, const float *x, int64_t n);       /* y += x */
void simd_mul(float *y, const float *x, int64_t n);       /* y *= x */
/* y = x * rs * w  (RMSNorm output; rs = 1/sqrt(mean(x^2) + eps)) */
void simd_rms_apply(float *y, const float *x, float rs, const float *w, int64_t n);
/* y = (x - mean) * rs * w + b  (LayerNorm output) */
void simd_ln_apply(float *y, const float *x, float mean, float rs, const float *w,
                   const float *b, int64_t n);
/* g = silu(g) * u  (SwiGLU) */
void simd_swiglu(float *g, const float *u, int64_t n);
/* x = gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void simd_gelu(float *x, int64_t n);

/* Plain C versions of the kernels above (same contracts), for tests and reference paths. */
float simd_exp_ref(float x);
float simd_sum_exp_ref(const float *x, int64_t n, float m);
void  simd_swiglu_ref(float *g, const float *u, int64_t n);
void  simd_gelu_ref(float *x, int64_t n);
float simd_dot_ref(const float *a, const float *b, int64_t n);

#endif
