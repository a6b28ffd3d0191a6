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
#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/* One body per block type, written once over a vector of W int32/float lanes and
 * instantiated for AVX2 (W = 8) and AVX-512 (W = 16). LD8(p): W bytes zero-extended to int32
 * lanes; the rest are the obvious lane-wise operations. Value order and arithmetic are the
 * scalar code's: (float)q * d [- m], no fused multiply-add. */
#define DEQ_BODIES(SFX, FN, W, VF, VI, LD8, LDS8, AND, SRLI, SLLI, OR, SUBI, SET1I, CVT, MUL, ADD,    \
                   SUB, SET1, ST)                                                                   \
    FN static void deq_q4_k_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m4 = SET1I(0xF);                                                                   \
        for (int64_t b = 0; b < nb; b++, p += 144) {                                                \
            const float d = qb_half(p), dmin = qb_half(p + 2);                                      \
            const uint8_t *s = p + 4, *q = p + 16;                                                  \
            for (int j = 0; j < 8; j += 2, q += 32, y += 64) {                                      \
                uint8_t sc, m;                                                                      \
                qb_scale_min_k4(j, s, &sc, &m);                                                     \
                const VF d1 = SET1(d * (float)sc), m1 = SET1(dmin * (float)m);                      \
                qb_scale_min_k4(j + 1, s, &sc, &m);                                                 \
                const VF d2 = SET1(d * (float)sc), m2 = SET1(dmin * (float)m);                      \
                for (int l = 0; l < 32; l += W) {                                                   \
                    VI v = LD8(q + l);                                                              \
                    ST(y + l, SUB(MUL(d1, CVT(AND(v, m4))), m1));                                   \
                    ST(y + 32 + l, SUB(MUL(d2, CVT(SRLI(v, 4))), m2));                              \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q5_k_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m4 = SET1I(0xF), one = SET1I(1);                                                   \
        for (int64_t b = 0; b < nb; b++, p += 176) {                                                \
            const float d = qb_half(p), dmin = qb_half(p + 2);                                      \
            const uint8_t *s = p + 4, *qh = p + 16, *q = p + 48;                                    \
            for (int j = 0; j < 8; j += 2, q += 32, y += 64) {                                      \
                uint8_t sc, m;                                                                      \
                qb_scale_min_k4(j, s, &sc, &m);                                                     \
                const VF d1 = SET1(d * (float)sc), m1 = SET1(dmin * (float)m);                      \
                qb_scale_min_k4(j + 1, s, &sc, &m);                                                 \
                const VF d2 = SET1(d * (float)sc), m2 = SET1(dmin * (float)m);                      \
                for (int l = 0; l < 32; l += W) {                                                   \
                    VI v = LD8(q + l), h = LD8(qh + l);                                             \
                    VI h1 = SLLI(AND(SRLI(h, j), one), 4), h2 = SLLI(AND(SRLI(h, j + 1), one), 4);  \
                    ST(y + l, SUB(MUL(d1, CVT(OR(AND(v, m4), h1))), m1));                           \
                    ST(y + 32 + l, SUB(MUL(d2, CVT(OR(SRLI(v, 4), h2))), m2));                      \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q6_k_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m4 = SET1I(0xF), m2 = SET1I(3), k32 = SET1I(32);                                   \
        for (int64_t b = 0; b < nb; b++, p += 210) {                                                \
            const uint8_t *ql = p, *qh = p + 128;                                                   \
            const int8_t *sc = (const int8_t *)(p + 192);                                           \
            const float d = qb_half(p + 208);                                                       \
            for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)               \
                for (int l = 0; l < 32; l += W) {                                                   \
                    const int is = l / 16;                                                          \
                    VI a = LD8(ql + l), c = LD8(ql + l + 32), h = LD8(qh + l);                      \
                    VI q1 = SUBI(OR(AND(a, m4), SLLI(AND(h, m2), 4)), k32);                         \
                    VI q2 = SUBI(OR(AND(c, m4), SLLI(AND(SRLI(h, 2), m2), 4)), k32);                \
                    VI q3 = SUBI(OR(SRLI(a, 4), SLLI(AND(SRLI(h, 4), m2), 4)), k32);                \
                    VI q4 = SUBI(OR(SRLI(c, 4), SLLI(SRLI(h, 6), 4)), k32);                         \
                    ST(y + l, MUL(SET1(d * (float)sc[is]), CVT(q1)));                               \
                    ST(y + l + 32, MUL(SET1(d * (float)sc[is + 2]), CVT(q2)));                      \
                    ST(y + l + 64, MUL(SET1(d * (float)sc[is + 4]), CVT(q3)));                      \
                    ST(y + l + 96, MUL(SET1(d * (float)sc[is + 6]), CVT(q4)));                      \
                }                                                                                   \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q2_k_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m3 = SET1I(3);                                                                     \
        for (int64_t b = 0; b < nb; b++, p += 84) {                                                 \
            const uint8_t *sc = p, *q = p + 16;                                                     \
            const float d = qb_half(p + 80), dmin = qb_half(p + 82);                                \
            int is = 0;                                                                             \
            for (int n = 0; n < 256; n += 128, q += 32)                                             \
                for (int shift = 0; shift < 8; shift += 2)                                          \
                    for (int half = 0; half < 2; half++, is++, y += 16) {                           \
                        const VF dl = SET1(d * (float)(sc[is] & 0xF));                              \
                        const VF ml = SET1(dmin * (float)(sc[is] >> 4));                            \
                        for (int l = 0; l < 16; l += W)                                             \
                            ST(y + l, SUB(MUL(dl, CVT(AND(SRLI(LD8(q + 16 * half + l), shift), m3))), \
                                          ml));                                                     \
                    }                                                                               \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q3_k_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m3 = SET1I(3), one = SET1I(1);                                                     \
        for (int64_t b = 0; b < nb; b++, p += 110) {                                                \
            const uint8_t *hm = p, *q = p + 32;                                                     \
            int8_t sc[16];                                                                          \
            qb_q3_scales(p + 96, sc);                                                               \
            const float d = qb_half(p + 108);                                                       \
            int is = 0, bit = 0;                                                                    \
            for (int n = 0; n < 256; n += 128, q += 32)                                             \
                for (int shift = 0; shift < 8; shift += 2, bit++)                                   \
                    for (int half = 0; half < 2; half++, is++, y += 16) {                           \
                        const VF dl = SET1(d * (float)sc[is]);                                      \
                        for (int l = 0; l < 16; l += W) {                                           \
                            VI v = AND(SRLI(LD8(q + 16 * half + l), shift), m3);                    \
                            VI h = AND(SRLI(LD8(hm + 16 * half + l), bit), one);                    \
                            ST(y + l, MUL(dl, CVT(SUBI(v, SLLI(SUBI(one, h), 2)))));                \
                        }                                                                           \
                    }                                                                               \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q4_0_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        const VI m4 = SET1I(0xF), k8 = SET1I(8);                                                    \
        for (int64_t b = 0; b < nb; b++, p += 18, y += 32) {                                        \
            const VF d = SET1(qb_half(p));                                                          \
            for (int l = 0; l < 16; l += W) {                                                       \
                VI v = LD8(p + 2 + l);                                                              \
                ST(y + l, MUL(CVT(SUBI(AND(v, m4), k8)), d));                                       \
                ST(y + 16 + l, MUL(CVT(SUBI(SRLI(v, 4), k8)), d));                                  \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    FN static void deq_q8_0_##SFX(const uint8_t *p, float *y, int64_t nb) {                         \
        for (int64_t b = 0; b < nb; b++, p += 34, y += 32) {                                        \
            const VF d = SET1(qb_half(p));                                                          \
            for (int l = 0; l < 32; l += W) ST(y + l, MUL(d, CVT(LDS8(p + 2 + l))));                \
        }                                                                                           \
    }

/* The rest: 4-bit types with a min (Q4_1), a fifth bit (Q5_0, Q5_1) or a value table
 * (IQ4_NL, IQ4_XS). IOTA: lanes 0..W-1; SRLV: per-lane shift; LUT(i): table[i] per lane. */
#define DEQ_BODIES2(SFX, FN, W, VF, VI, LD8, AND, SRLI, SLLI, OR, SUBI, ADDI, SET1I, IOTA, SRLV,  \
                    LUT, CVT, MUL, ADD, SET1, ST)                                                  \
    FN static void deq_q4_1_##SFX(const uint8_t *p, float *y, int64_t nb) {                        \
        const VI m4 = SET1I(0xF);                                                                  \
        for (int64_t b = 0; b < nb; b++, p += 20, y += 32) {                                       \
            const VF d = SET1(qb_half(p)), m = SET1(qb_half(p + 2));                               \
            for (int l = 0; l < 16; l += W) {                                                      \
                VI v = LD8(p + 4 + l);                                                             \
                ST(y + l, ADD(MUL(CVT(AND(v, m4)), d), m));                                        \
                ST(y + 16 + l, ADD(MUL(CVT(SRLI(v, 4)), d), m));                                   \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    FN static void deq_q5_0_##SFX(const uint8_t *p, float *y, int64_t nb) {                        \
        const VI m4 = SET1I(0xF), one = SET1I(1), k16 = SET1I(16);                                 \
        for (int64_t b = 0; b < nb; b++, p += 22, y += 32) {                                       \
            const VF d = SET1(qb_half(p));                                                         \
            uint32_t qh32;                                                                         \
            memcpy(&qh32, p + 2, 4);                                                               \
            const VI qh = SET1I((int)qh32);                                                        \
            for (int l = 0; l < 16; l += W) {                                                      \
                VI v = LD8(p + 6 + l), sh = ADDI(IOTA, SET1I(l));                                  \
                VI h0 = SLLI(AND(SRLV(qh, sh), one), 4);                                           \
                VI h1 = SLLI(AND(SRLV(qh, ADDI(sh, k16)), one), 4);                                \
                ST(y + l, MUL(CVT(SUBI(OR(AND(v, m4), h0), k16)), d));                             \
                ST(y + 16 + l, MUL(CVT(SUBI(OR(SRLI(v, 4), h1), k16)), d));                        \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    FN static void deq_q5_1_##SFX(const uint8_t *p, float *y, int64_t nb) {                        \
        const VI m4 = SET1I(0xF), one = SET1I(1), k16 = SET1I(16);                                 \
        for (int64_t b = 0; b < nb; b++, p += 24, y += 32) {                                       \
            const VF d = SET1(qb_half(p)), m = SET1(qb_half(p + 2));                               \
            uint32_t qh32;                                                                         \
            memcpy(&qh32, p + 4, 4);                                                               \
            const VI qh = SET1I((int)qh32);                                                        \
            for (int l = 0; l < 16; l += W) {                                                      \
                VI v = LD8(p + 8 + l), sh = ADDI(IOTA, SET1I(l));                                  \
                VI h0 = SLLI(AND(SRLV(qh, sh), one), 4);                                           \
                VI h1 = SLLI(AND(SRLV(qh, ADDI(sh, k16)), one), 4);                                \
                ST(y + l, ADD(MUL(CVT(OR(AND(v, m4), h0)), d), m));                                \
                ST(y + 16 + l, ADD(MUL(CVT(OR(SRLI(v, 4), h1)), d), m));                           \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    FN static void deq_iq4_nl_##SFX(const uint8_t *p, float *y, int64_t nb) {                      \
        const VI m4 = SET1I(0xF);                                                                  \
        for (int64_t b = 0; b < nb; b++, p += 18, y += 32) {                                       \
            const VF d = SET1(qb_half(p));                                                         \
            for (int l = 0; l < 16; l += W) {                                                      \
                VI v = LD8(p + 2 + l);                                                             \
                ST(y + l, MUL(d, LUT(AND(v, m4))));                                                \
                ST(y + 16 + l, MUL(d, LUT(SRLI(v, 4))));                                           \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    FN static void deq_iq4_xs_##SFX(const uint8_t *p, float *y, int64_t nb) {                      \
        const VI m4 = SET1I(0xF);                                                                  \
        for (int64_t b = 0; b < nb; b++, p += 136) {                                               \
            const float d = qb_half(p);                                                            \
            const uint16_t sh = qb_rd16(p + 2);                                                    \
            const uint8_t *sl = p + 4, *qs = p + 8;                                                \
            for (int ib = 0; ib < 8; ib++, qs += 16, y += 32) {                                    \
                int ls = ((sl[ib / 2] >> 4 * (ib % 2)) & 0xF) | ((sh >> 2 * ib) & 3) << 4;         \
                const VF dl = SET1(d * (float)(ls - 32));                                          \
                for (int l = 0; l < 16; l += W) {                                                  \
                    VI v = LD8(qs + l);                                                            \
                    ST(y + l, MUL(dl, LUT(AND(v, m4))));                                           \
                    ST(y + 16 + l, MUL(dl, LUT(SRLI(v, 4))));                                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/* qb_iq4nl_values as floats */
static const float iq4_table[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

AVX2_FN static inline __m256 lut_avx2(__m256i i) {
    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(iq4_table), i);
    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(iq4_table + 8), i);
    __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)); /* bit 3 -> sign bit */
    return _mm256_blendv_ps(lo, hi, sel);
}
AVX512_FN static inline __m512 lut_avx512(__m512i i) {
    return _mm512_permutexvar_ps(i, _mm512_loadu_ps(iq4_table));
}

#define LD8_256(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
#define LDS8_256(p) _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
DEQ_BODIES(avx2, AVX2_FN, 8, __m256, __m256i, LD8_256, LDS8_256, _mm256_and_si256,
           _mm256_srli_epi32, _mm256_slli_epi32, _mm256_or_si256, _mm256_sub_epi32,
           _mm256_set1_epi32, _mm256_cvtepi32_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_sub_ps,
           _mm256_set1_ps, _mm256_storeu_ps)
DEQ_BODIES2(avx2, AVX2_FN, 8, __m256, __m256i, LD8_256, _mm256_and_si256, _mm256_srli_epi32,
            _mm256_slli_epi32, _mm256_or_si256, _mm256_sub_epi32, _mm256_add_epi32,
            _mm256_set1_epi32, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_srlv_epi32,
            lut_avx2, _mm256_cvtepi32_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_set1_ps,
            _mm256_storeu_ps)

#define LD8_512(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define LDS8_512(p) _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
DEQ_BODIES(avx512, AVX512_FN, 16, __m512, __m512i, LD8_512, LDS8_512, _mm512_and_si512,
           _mm512_srli_epi32, _mm512_slli_epi32, _mm512_or_si512, _mm512_sub_epi32,
           _mm512_set1_epi32, _mm512_cvtepi32_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_sub_ps,
           _mm512_set1_ps, _mm512_storeu_ps)
DEQ_BODIES2(avx512, AVX512_FN, 16, __m512, __m512i, LD8_512, _mm512_and_si512, _mm512_srli_epi32,
            _mm512_slli_epi32, _mm512_or_si512, _mm512_sub_epi32, _mm512_add_epi32,
            _mm512_set1_epi32,
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_srlv_epi32, lut_avx512, _mm512_cvtepi32_ps, _mm512_mul_ps, _mm512_add_ps,
            _mm512_set1_ps, _mm512_storeu_ps)

#endif /* QS_X86 */

static int level = -1; /* 0 scalar, 1 avx2, 2 avx512 */

static int detect(void) {
#if QS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
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
#if QS_X86
    if (level == 2) switch (type) {
        case GGML_Q2_K: return deq_q2_k_avx512;
        case GGML_Q3_K: return deq_q3_k_avx512;
        case GGML_Q4_K: return deq_q4_k_avx512;
        case GGML_Q5_K: return deq_q5_k_avx512;
        case GGML_Q6_K: return deq_q6_k_avx512;
        case GGML_Q4_0: return deq_q4_0_avx512;
        case GGML_Q8_0: return deq_q8_0_avx512;
        case GGML_Q4_1: return deq_q4_1_avx512;
        case GGML_Q5_0: return deq_q5_0_avx512;
        case GGML_Q5_1: return deq_q5_1_avx512;
        case GGML_IQ4_NL: return deq_iq4_nl_avx512;
        case GGML_IQ4_XS: return deq_iq4_xs_avx512;
        default: return NULL;
        }
    if (level == 1) switch (type) {
        case GGML_Q2_K: return deq_q2_k_avx2;
        case GGML_Q3_K: return deq_q3_k_avx2;
        case GGML_Q4_K: return deq_q4_k_avx2;
        case GGML_Q5_K: return deq_q5_k_avx2;
        case GGML_Q6_K: return deq_q6_k_avx2;
        case GGML_Q4_0: return deq_q4_0_avx2;
        case GGML_Q8_0: return deq_q8_0_avx2;
        case GGML_Q4_1: return deq_q4_1_avx2;
        case GGML_Q5_0: return deq_q5_0_avx2;
        case GGML_Q5_1: return deq_q5_1_avx2;
        case GGML_IQ4_NL: return deq_iq4_nl_avx2;
        case GGML_IQ4_XS: return deq_iq4_xs_avx2;
        default: return NULL;
        }
#endif
    (void)type;
    return NULL;
}

/* Tests: force a level (0 scalar, 1 avx2, 2 avx512) if the CPU has it; -1 back to detection. */
int qb_force_level(int l) {
    int best = detect();
    if (l < 0) { level = best; return 1; }
    if (l > best) return 0;
    level = l;
    return 1;
}
