/* simd.c - vector kernels for the runtime (see simd.h): an AVX2+FMA body per kernel and a
 * plain C fallback. The exp is a Cephes-style polynomial (range reduction by ln 2, degree-6
 * polynomial, exponent bits set directly); tails shorter than a vector go through masked
 * loads so every element sees the same arithmetic wherever it sits in an array. Nothing here
 * allocates or knows about models.
 *
 * Choosing the body: built for AVX2+FMA+F16C (-march=native on such a machine), the vector
 * bodies are called directly. Built for a baseline x86-64 (make PORTABLE=1), they are
 * compiled anyway, with a per-function target attribute, and each kernel asks the CPU at run
 * time (cpuid, once) which body to run: a portable binary is as fast as a native
 * one on AVX2 machines and still runs on the others. Elsewhere (other CPUs or compilers) only
 * the C bodies exist.
 */
#include "nn/simd.h"

#include <math.h>
#include <string.h>

#include "base/base.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SIMD_AVX2 1
#define AVX2_FN
#define use_avx2() 1
#include <immintrin.h>
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SIMD_AVX2 1
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
/* AVX2, FMA and F16C in the CPU, and the YMM registers saved by the OS (XCR0 bits 1-2). */
static int cpu_has_avx2(void) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c >> 12 & 1) || !(c >> 27 & 1) || !(c >> 28 & 1) || !(c >> 29 & 1))
        return 0; /* FMA, OSXSAVE, AVX, F16C */
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6 || __get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return b >> 5 & 1; /* AVX2 */
}
static atomic_int avx2_state = -1; /* -1: not asked yet */
static int use_avx2(void) {
    int s = atomic_load_explicit(&avx2_state, memory_order_relaxed);
    if (s < 0) atomic_store_explicit(&avx2_state, s = cpu_has_avx2(), memory_order_relaxed);
    return s;
}
#else
#define SIMD_AVX2 0
#define use_avx2() 0
#endif

int simd_enabled(void) { return use_avx2(); }

/* ---------------------------------------------------------------------------------------- */
/* Plain C reference kernels (always compiled)                                              */

#define EXP_HI 88.0f
#define EXP_LO (-87.0f)

float simd_exp_ref(float x) {
    if (x < EXP_LO) return 0.0f;
    if (x > EXP_HI) x = EXP_HI;
    return expf(x);
}

float simd_sum_exp_ref(const float *x, int64_t n, float m) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += simd_exp_ref(x[i] - m);
    return (float)s;
}

void simd_swiglu_ref(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + simd_exp_ref(-g[i])) * u[i];
}

void simd_gelu_ref(float *x, int64_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

float simd_dot_ref(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

#if SIMD_AVX2
/* ---------------------------------------------------------------------------------------- */
/* AVX2 helpers                                                                              */

AVX2_FN static inline __m256i tail_mask(int64_t r) {
    /* lanes [0, r) set, r in [0, 8] */
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), idx);
}

AVX2_FN static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

AVX2_FN static inline float hmax8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* exp(x) for 8 lanes: 0 below EXP_LO, x clamped at EXP_HI. */
AVX2_FN static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(EXP_LO);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, y);
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Conversions                                                                               */

#if SIMD_AVX2
AVX2_FN static void f16_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = terse_f16_to_f32(src[i]);
}

AVX2_FN static void bf16_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) dst[i] = terse_bf16_to_f32(src[i]);
}

AVX2_FN static void q8_avx2(float d, const int8_t *q, float *dst) {
    __m256 vd = _mm256_set1_ps(d);
    for (int j = 0; j < 32; j += 8) {
        __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + j)));
        _mm256_storeu_ps(dst + j, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(v)));
    }
}
#endif

void simd_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { f16_avx2(src, dst, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = terse_f16_to_f32(src[i]);
}

void simd_bf16_to_f32(const uint16_t *src, float *dst, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { bf16_avx2(src, dst, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = terse_bf16_to_f32(src[i]);
}

void simd_q8_block_to_f32(float d, const int8_t *q, float *dst) {
#if SIMD_AVX2
    if (use_avx2()) { q8_avx2(d, q, dst); return; }
#endif
    for (int j = 0; j < 32; j++) dst[j] = d * (float)q[j];
}

/* ---------------------------------------------------------------------------------------- */
/* Reductions                                                                                */

#if SIMD_AVX2
AVX2_FN static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i < n; i += 8) {
        __m256i m = tail_mask(n - i);
        s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s0);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

AVX2_FN static float sum_avx2(const float *x, int64_t n) {
    __m256 s0 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask(n - i < 8 ? n - i : 8);
        s0 = _mm256_add_ps(s0, _mm256_maskload_ps(x + i, m));
    }
    return hsum8(s0);
}

AVX2_FN static float max_avx2(const float *x, int64_t n) {
    int64_t i = 0;
    __m256 v = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
    float m = hmax8(v);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

AVX2_FN static float sum_exp_avx2(const float *x, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail_mask(n - i < 8 ? n - i : 8);
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm));
        s = _mm256_add_ps(s, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
    }
    return hsum8(s);
}

AVX2_FN static float exp_inplace_avx2(float *x, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    if (i < n) {
        __m256i k = tail_mask(n - i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm)),
                                 _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(x + i, k, e);
        s = _mm256_add_ps(s, e);
    }
    return hsum8(s);
}
#endif

float simd_dot(const float *a, const float *b, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) return dot_avx2(a, b, n);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

float simd_sum(const float *x, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) return sum_avx2(x, n);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

float simd_max(const float *x, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) return max_avx2(x, n);
#endif
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

float simd_sum_exp(const float *x, int64_t n, float m) {
#if SIMD_AVX2
    if (use_avx2()) return sum_exp_avx2(x, n, m);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += simd_exp_ref(x[i] - m);
    return s;
}

float simd_exp_inplace(float *x, int64_t n, float m) {
#if SIMD_AVX2
    if (use_avx2()) return exp_inplace_avx2(x, n, m);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = simd_exp_ref(x[i] - m);
        s += x[i];
    }
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Elementwise                                                                               */

#if SIMD_AVX2
AVX2_FN static void scale_avx2(float *x, float s, int64_t n) {
    int64_t i = 0;
    __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++) x[i] *= s;
}

AVX2_FN static void add_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

AVX2_FN static void mul_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] *= x[i];
}

AVX2_FN static void rms_apply_avx2(float *y, const float *x, float rs, const float *w, int64_t n) {
    int64_t i = 0;
    __m256 vr = _mm256_set1_ps(rs);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vr),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = (x[i] * rs) * w[i];
}

AVX2_FN static void ln_apply_avx2(float *y, const float *x, float mean, float rs, const float *w,
                                  const float *b, int64_t n) {
    int64_t i = 0;
    __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rs);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rs * w[i] + b[i];
}

AVX2_FN static void swiglu_avx2(float *g, const float *u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail_mask(n - i < 8 ? n - i : 8);
        __m256 v = _mm256_maskload_ps(g + i, k);
        __m256 e = exp8(_mm256_sub_ps(zero, v));
        __m256 r = _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_maskload_ps(u + i, k));
        _mm256_maskstore_ps(g + i, k, r);
    }
}

AVX2_FN static void gelu_avx2(float *x, int64_t n) {
    /* 0.5 x (1 + tanh(t)) = x / (1 + exp(-2t)),  t = sqrt(2/pi) (x + 0.044715 x^3) */
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 k2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f);
    const __m256 c = _mm256_set1_ps(0.044715f);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i k = tail_mask(n - i < 8 ? n - i : 8);
        __m256 v = _mm256_maskload_ps(x + i, k);
        __m256 t = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
        __m256 e = exp8(_mm256_mul_ps(k2, t));
        _mm256_maskstore_ps(x + i, k, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
}
#endif

void simd_scale(float *x, float s, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { scale_avx2(x, s, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void simd_add(float *y, const float *x, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { add_avx2(y, x, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void simd_mul(float *y, const float *x, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { mul_avx2(y, x, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] *= x[i];
}

void simd_rms_apply(float *y, const float *x, float rs, const float *w, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { rms_apply_avx2(y, x, rs, w, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * rs) * w[i];
}

void simd_ln_apply(float *y, const float *x, float mean, float rs, const float *w,
                   const float *b, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { ln_apply_avx2(y, x, mean, rs, w, b, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rs * w[i] + b[i];
}

void simd_swiglu(float *g, const float *u, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { swiglu_avx2(g, u, n); return; }
#endif
    simd_swiglu_ref(g, u, n);
}

void simd_gelu(float *x, int64_t n) {
#if SIMD_AVX2
    if (use_avx2()) { gelu_avx2(x, n); return; }
#endif
    simd_gelu_ref(x, n);
}
