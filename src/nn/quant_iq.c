/* quant_iq.c - GGML's IQ4 formats (see quant_blocks.h): 4-bit indices into a fixed,
 * non-uniform table of 16 values (denser near zero), times a scale.
 *
 *   IQ4_NL (18 B, 32 values):  half d; u8 qs[16]             value = d * table[q]
 *   IQ4_XS (136 B, 256 values): half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
 *          8 sub-blocks of 32, each with a 6-bit scale ls (low 4 bits in scales_l, high 2
 *          in scales_h): value = d * (ls - 32) * table[q]
 * Nibble order as Q4_0: byte j of a 16-byte run holds value j (low) and j+16 (high).
 * Reading only: terse does not write these types.
 */
#include "nn/quant_blocks.h"

const int8_t qb_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

void deq_iq4_nl(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 18, y += 32) {
        const float d = qb_half(p);
        const uint8_t *qs = p + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)qb_iq4nl_values[qs[j] & 0xF];
            y[j + 16] = d * (float)qb_iq4nl_values[qs[j] >> 4];
        }
    }
}

void deq_iq4_xs(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 136) {
        const float d = qb_half(p);
        const uint16_t sh = qb_rd16(p + 2);
        const uint8_t *sl = p + 4, *qs = p + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, y += 32) {
            int ls = ((sl[ib / 2] >> 4 * (ib % 2)) & 0xF) | ((sh >> 2 * ib) & 3) << 4;
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)qb_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * (float)qb_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}
