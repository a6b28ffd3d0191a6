/* quant_k.c - GGML's K-quants (see quant_blocks.h): 256-value super-blocks split into 16 or 8
 * sub-blocks, each with a small integer scale (and min) relative to the super-block's half
 * scales d (and dmin).
 *
 *   Q2_K  (84 B): u8 scales[16] (lo nibble scale, hi nibble min); u8 qs[64] (2-bit); half d, dmin
 *   Q3_K (110 B): u8 hmask[32] (3rd bit); u8 qs[64] (2-bit); u8 scales[12] (16 x 6-bit, -32);
 *                 half d. value = d * (scale - 32) * (q - (hmask bit ? 0 : 4))
 *   Q4_K (144 B): half d, dmin; u8 scales[12] (8 x 6-bit scale + 8 x 6-bit min); u8 qs[128]
 *   Q5_K (176 B): as Q4_K + u8 qh[32] (5th bit) before qs
 *   Q6_K (210 B): u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits); i8 scales[16]; half d
 *
 * Within a super-block the values run in groups of 128 (Q2/Q3/Q6) or 64 (Q4/Q5): byte l of a
 * 32-byte run of qs holds value l of successive 32-value sub-blocks in successive bit fields.
 *
 * Quantisers for Q4_K, Q5_K and Q6_K follow llama.cpp's reference rules (what llama-quantize
 * runs without an importance matrix): per sub-block a weighted least-squares search of scale
 * and min over a few candidate grids (Q4_K/Q5_K, weights av|x| + |x_i|) or of a symmetric
 * scale (Q6_K, weights x_i^2), then the sub-block scales are themselves quantised to 6 / 8 bits
 * and the values re-rounded against the stored scales.
 */
#include <math.h>

#include "nn/quant_blocks.h"

void deq_q2_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 84) {
        const uint8_t *sc = p, *q = p + 16;
        const float d = qb_half(p + 80), dmin = qb_half(p + 82);
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int half = 0; half < 2; half++, is++) {
                    const float dl = d * (float)(sc[is] & 0xF), ml = dmin * (float)(sc[is] >> 4);
                    const uint8_t *qq = q + 16 * half;
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((qq[l] >> shift) & 3) - ml;
                }
    }
}

/* The 16 signed 6-bit scales of a Q3_K block (already minus 32). */
void qb_q3_scales(const uint8_t *s, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

void deq_q3_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 110) {
        const uint8_t *hm = p, *q = p + 32;
        int8_t sc[16];
        qb_q3_scales(p + 96, sc);
        const float d = qb_half(p + 108);
        int is = 0;
        uint8_t m = 1;
        for (int n = 0; n < QK_K; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int half = 0; half < 2; half++, is++) {
                    const float dl = d * (float)sc[is];
                    const uint8_t *qq = q + 16 * half, *hh = hm + 16 * half;
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)(((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4));
                }
    }
}

void deq_q4_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 144) {
        const float d = qb_half(p), dmin = qb_half(p + 2);
        const uint8_t *s = p + 4, *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            qb_scale_min_k4(j, s, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            qb_scale_min_k4(j + 1, s, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void deq_q5_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 176) {
        const float d = qb_half(p), dmin = qb_half(p + 2);
        const uint8_t *s = p + 4, *qh = p + 16, *q = p + 48;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, q += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            qb_scale_min_k4(j, s, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            qb_scale_min_k4(j + 1, s, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((q[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

void deq_q6_k(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        const float d = qb_half(p + 208);
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Quantisation                                                                              */

/* Round to nearest, ties to even (the float magic-number trick; |v| < 2^22). */
static inline int nearest(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Asymmetric fit of x[0..32) to L in [0, nmax]: value ~ scale * L - min. Returns scale,
 * *neg_min = the (non-negative) min. Candidate grids: iscale = (nmax + rmin + rdelta*k)
 * / (max - min), k = 0..nstep; the lowest weighted squared error wins. */
static float fit_scale_min(const float *x, const float *w, int nmax, uint8_t *L, float *neg_min,
                           float rmin, float rdelta, int nstep) {
    enum { n = 32 };
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        memset(L, 0, n);
        *neg_min = -mn;
        return 0.0f;
    }
    float iscale = (float)nmax / (mx - mn), scale = 1.0f / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest(iscale * (x[i] - mn)), 0, nmax);
        float diff = scale * (float)L[i] + mn - x[i];
        best += w[i] * (diff * diff);
    }
    uint8_t La[n];
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (mx - mn);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(iscale * (x[i] - mn)), 0, nmax);
            La[i] = (uint8_t)l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)l * (float)l;
            sxl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sl2 - sl * sl;
        if (!(D > 0)) continue;
        float s = (sum_w * sxl - sum_x * sl) / D, m = (sl2 * sum_x - sl * sxl) / D;
        if (m > 0) {
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * (float)La[i] + m - x[i];
            err += w[i] * (diff * diff);
        }
        if (err < best) {
            memcpy(L, La, n);
            best = err, scale = s, mn = m;
        }
    }
    *neg_min = -mn;
    return scale;
}

/* Q4_K / Q5_K: nmax 15 / 31; the grid differs (rmin, nstep). */
static void qnt_k_asym(const float *x, uint8_t *p, int nmax, float rmin, int nstep, uint8_t *L) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float av = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
        scales[j] = fit_scale_min(xs, w, nmax, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_s = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_m = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t *s = p + 4;
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest(inv_s * scales[j]), lm = (uint8_t)nearest(inv_m * mins[j]);
        ls = ls > 63 ? 63 : ls;
        lm = lm > 63 ? 63 : lm;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | (lm & 0xF) << 4);
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    qb_wr_half(p, max_scale / 63.0f);
    qb_wr_half(p + 2, max_min / 63.0f);
    const float d = qb_half(p), dmin = qb_half(p + 2);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        qb_scale_min_k4(j, s, &sc, &m);
        const float dl = d * (float)sc;
        if (dl == 0.0f) continue;
        const float dm = dmin * (float)m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)clampi(nearest((x[32 * j + i] + dm) / dl), 0, nmax);
    }
}

void qnt_q4_k(const float *x, uint8_t *p, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K, p += 144) {
        qnt_k_asym(x, p, 15, -1.0f, 20, L);
        uint8_t *q = p + 16;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
    }
}

void qnt_q5_k(const float *x, uint8_t *p, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K, p += 176) {
        qnt_k_asym(x, p, 31, -0.5f, 15, L);
        uint8_t *qh = p + 16, *q = p + 48;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, q += 32, m1 <<= 2, m2 <<= 2)
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) l1 -= 16, qh[j] |= m1;
                if (l2 > 15) l2 -= 16, qh[j] |= m2;
                q[j] = (uint8_t)(l1 | l2 << 4);
            }
    }
}

/* Symmetric fit of x[0..16) to L in [-nmax, nmax-1] (stored + nmax), weights x^2: starts
 * from the largest-magnitude value mapping to -nmax, then tries 18 nearby scales. */
#define GROUP_MAX_EPS 1e-15f

static float fit_scale_sym(const float *x, int nmax, int8_t *L) {
    enum { n = 16 };
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, n);
        return 0.0f;
    }
    float iscale = -(float)nmax / max, sxl = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sxl += w * x[i] * (float)l;
        sl2 += w * (float)l * (float)l;
    }
    float scale = sl2 != 0.0f ? sxl / sl2 : 0.0f, best = scale * sxl;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)k) / max;
        sxl = sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sxl += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
        }
        if (sl2 > 0 && sxl * sxl > best * sl2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest(iscale * x[i]), -nmax, nmax - 1));
            scale = sxl / sl2;
            best = scale * sxl;
        }
    }
    return scale;
}

void qnt_q6_k(const float *x, uint8_t *p, int64_t nb) {
    int8_t L[QK_K];
    float scales[16];
    for (int64_t b = 0; b < nb; b++, x += QK_K, p += 210) {
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale_sym(x + 16 * j, 32, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) max_abs = fabsf(scales[j]), max_scale = scales[j];
        }
        memset(p, 0, 210);
        if (max_abs < GROUP_MAX_EPS) continue;        /* all-zero block: d = 0 */
        float iscale = -128.0f / max_scale;
        qb_wr_half(p + 208, 1.0f / iscale);
        int8_t *sc = (int8_t *)(p + 192);
        for (int j = 0; j < 16; j++) {
            int v = nearest(iscale * scales[j]);
            sc[j] = (int8_t)(v > 127 ? 127 : v);
        }
        const float d = qb_half(p + 208);
        for (int j = 0; j < 16; j++) {
            float dl = d * (float)sc[j];
            if (dl == 0.0f) continue;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(clampi(nearest(x[16 * j + i] / dl), -32, 31) + 32);
        }
        uint8_t *ql = p, *qh = p + 128;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                int a = L[j + l], c = L[j + l + 32], e = L[j + l + 64], f = L[j + l + 96];
                ql[l] = (uint8_t)((a & 0xF) | (e & 0xF) << 4);
                ql[l + 32] = (uint8_t)((c & 0xF) | (f & 0xF) << 4);
                qh[l] = (uint8_t)(a >> 4 | (c >> 4) << 2 | (e >> 4) << 4 | (f >> 4) << 6);
            }
    }
}
