/* quant_legacy.c - GGML's first block formats (see quant_blocks.h): 32 values per block.
 *
 *   Q4_0 (18 B): half d; u8 qs[16]           value = (q - 8) * d
 *   Q4_1 (20 B): half d, m; u8 qs[16]        value = q * d + m
 *   Q5_0 (22 B): half d; u32 qh; u8 qs[16]   value = (q - 16) * d
 *   Q5_1 (24 B): half d, m; u32 qh; u8 qs[16] value = q * d + m
 *
 * Nibbles: byte j holds value j (low) and value j+16 (high); Q5's fifth bit of value j is bit j
 * of qh. Quantisers: llama.cpp's reference rules (no importance matrix), which is what
 * llama-quantize runs for these types: Q4_0/Q5_0 scale by the signed value of largest
 * magnitude (d = max / -8, / -16), Q4_1/Q5_1 span [min, max] in 15 / 31 steps, and round by
 * truncating x + 0.5.
 */
#include <float.h>
#include <math.h>

#include "nn/quant_blocks.h"

void deq_q4_0(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 18, y += 32) {
        const float d = qb_half(p);
        const uint8_t *qs = p + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void deq_q4_1(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 20, y += 32) {
        const float d = qb_half(p), m = qb_half(p + 2);
        const uint8_t *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

void deq_q5_0(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 22, y += 32) {
        const float d = qb_half(p);
        const uint32_t qh = rd32(p + 2);
        const uint8_t *qs = p + 6;
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)(((qs[j] & 0xF) | h0 << 4) - 16) * d;
            y[j + 16] = (float)(((qs[j] >> 4) | h1 << 4) - 16) * d;
        }
    }
}

void deq_q5_1(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 24, y += 32) {
        const float d = qb_half(p), m = qb_half(p + 2);
        const uint32_t qh = rd32(p + 4);
        const uint8_t *qs = p + 8;
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)((qs[j] & 0xF) | h0 << 4) * d + m;
            y[j + 16] = (float)((qs[j] >> 4) | h1 << 4) * d + m;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Quantisation                                                                              */

/* The value of largest magnitude, with its sign (the first one on ties). */
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
    return max;
}

static void min_max(const float *x, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo, *mx = hi;
}

/* Truncation of a value already clamped to [0, lim]: what (int) of x + 0.5 gives. */
static inline int trunc_to(float v, int lim) {
    if (!(v > 0.0f)) return 0;          /* also NaN */
    if (v >= (float)lim) return lim;
    return (int)v;
}

void qnt_q4_0(const float *x, uint8_t *p, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += 32, p += 18) {
        const float d = signed_absmax(x) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        qb_wr_half(p, d);
        for (int j = 0; j < 16; j++)
            p[2 + j] = (uint8_t)(trunc_to(x[j] * id + 8.5f, 15) |
                                 trunc_to(x[j + 16] * id + 8.5f, 15) << 4);
    }
}

void qnt_q4_1(const float *x, uint8_t *p, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += 32, p += 20) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        qb_wr_half(p, d);
        qb_wr_half(p + 2, mn);
        for (int j = 0; j < 16; j++)
            p[4 + j] = (uint8_t)(trunc_to((x[j] - mn) * id + 0.5f, 15) |
                                 trunc_to((x[j + 16] - mn) * id + 0.5f, 15) << 4);
    }
}

void qnt_q5_0(const float *x, uint8_t *p, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += 32, p += 22) {
        const float d = signed_absmax(x) / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        qb_wr_half(p, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = trunc_to(x[j] * id + 16.5f, 31), c = trunc_to(x[j + 16] * id + 16.5f, 31);
            p[6 + j] = (uint8_t)((a & 0xF) | (c & 0xF) << 4);
            qh |= (uint32_t)(a >> 4) << j | (uint32_t)(c >> 4) << (j + 16);
        }
        memcpy(p + 2, &qh, 4);
    }
}

void qnt_q5_1(const float *x, uint8_t *p, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += 32, p += 24) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        qb_wr_half(p, d);
        qb_wr_half(p + 2, mn);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = trunc_to((x[j] - mn) * id + 0.5f, 31);
            int c = trunc_to((x[j + 16] - mn) * id + 0.5f, 31);
            p[8 + j] = (uint8_t)((a & 0xF) | (c & 0xF) << 4);
            qh |= (uint32_t)(a >> 4) << j | (uint32_t)(c >> 4) << (j + 16);
        }
        memcpy(p + 4, &qh, 4);
    }
}
