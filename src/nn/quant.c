/* quant.c - tensor element types (see quant.h): one table of sizes and kernels per GGML type,
 * dequantisation (SIMD where quant_simd.c has a body for this CPU, the plain C block code
 * otherwise), quantisation, and scale checks. The block formats are in quant_legacy.c,
 * quant_k.c and quant_iq.c. No matrix products here.
 */
#include "nn/quant.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "base/base.h"
#include "gguf/gguf.h"
#include "nn/quant_blocks.h"
#include "nn/simd.h"

static void deq_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void deq_f16(const uint8_t *src, float *dst, int64_t n) {
    simd_f16_to_f32((const uint16_t *)(const void *)src, dst, n);
}
static void deq_bf16(const uint8_t *src, float *dst, int64_t n) {
    simd_bf16_to_f32((const uint16_t *)(const void *)src, dst, n);
}
static void deq_q8_0(const uint8_t *p, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 2 + QK8_0, y += QK8_0)
        simd_q8_block_to_f32(qb_half(p), (const int8_t *)(p + 2), y);
}

static void qnt_f32(const float *src, uint8_t *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void qnt_f16(const float *src, uint8_t *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) qb_wr_half(p + 2 * i, src[i]);
}
static void qnt_bf16(const float *src, uint8_t *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = terse_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
/* llama.cpp's reference: d = amax / 127, q = round(x / d). */
static void qnt_q8_0(const float *src, uint8_t *p, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, p += 2 + QK8_0, src += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(src[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        qb_wr_half(p, d);
        for (int j = 0; j < QK8_0; j++) p[2 + j] = (uint8_t)(int8_t)roundf(src[j] * id);
    }
}

/* Byte offsets of a block's f16 scales (-1: none). */
typedef struct {
    const char *name;
    int32_t values, bytes;
    qb_deq_fn deq;            /* plain C, nb blocks */
    qb_qnt_fn qnt;            /* NULL: read only */
    int16_t scale_off[2];
} type_desc;

static const type_desc types[GGML_MAX_TYPE] = {
    [GGML_F32] = {"F32", 1, 4, deq_f32, qnt_f32, {-1, -1}},
    [GGML_F16] = {"F16", 1, 2, deq_f16, qnt_f16, {-1, -1}},
    [GGML_BF16] = {"BF16", 1, 2, deq_bf16, qnt_bf16, {-1, -1}},
    [GGML_Q8_0] = {"Q8_0", 32, 34, deq_q8_0, qnt_q8_0, {0, -1}},
    [GGML_Q4_0] = {"Q4_0", 32, 18, deq_q4_0, qnt_q4_0, {0, -1}},
    [GGML_Q4_1] = {"Q4_1", 32, 20, deq_q4_1, qnt_q4_1, {0, 2}},
    [GGML_Q5_0] = {"Q5_0", 32, 22, deq_q5_0, qnt_q5_0, {0, -1}},
    [GGML_Q5_1] = {"Q5_1", 32, 24, deq_q5_1, qnt_q5_1, {0, 2}},
    [GGML_Q2_K] = {"Q2_K", 256, 84, deq_q2_k, NULL, {80, 82}},
    [GGML_Q3_K] = {"Q3_K", 256, 110, deq_q3_k, NULL, {108, -1}},
    [GGML_Q4_K] = {"Q4_K", 256, 144, deq_q4_k, qnt_q4_k, {0, 2}},
    [GGML_Q5_K] = {"Q5_K", 256, 176, deq_q5_k, qnt_q5_k, {0, 2}},
    [GGML_Q6_K] = {"Q6_K", 256, 210, deq_q6_k, qnt_q6_k, {208, -1}},
    [GGML_IQ4_NL] = {"IQ4_NL", 32, 18, deq_iq4_nl, NULL, {0, -1}},
    [GGML_IQ4_XS] = {"IQ4_XS", 256, 136, deq_iq4_xs, NULL, {0, -1}},
};

static const type_desc *desc(uint32_t type) {
    return type < GGML_MAX_TYPE && types[type].name ? &types[type] : NULL;
}

int quant_supported(uint32_t type) { return desc(type) != NULL; }
int quant_can_write(uint32_t type) { return desc(type) && desc(type)->qnt; }

const char *quant_supported_names(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, "
           "IQ4_XS";
}

int64_t quant_block_values(uint32_t type) { return desc(type) ? desc(type)->values : 0; }
int64_t quant_block_bytes(uint32_t type) { return desc(type) ? desc(type)->bytes : 0; }

size_t quant_row_bytes(uint32_t type, int64_t n) {
    int64_t bv = quant_block_values(type);
    if (bv == 0 || n < 0 || n % bv != 0) return 0;
    return (size_t)(n / bv) * (size_t)quant_block_bytes(type);
}

const char *quant_type_name(uint32_t type) { return desc(type) ? desc(type)->name : "unknown"; }

const char *quant_simd_level(void) { return qb_simd_level(); }

/* ---------------------------------------------------------------------------------------- */
/* Dequantisation                                                                            */

void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const type_desc *t = desc(type);
    assert(t && n % t->values == 0);
    if (!t || n <= 0) return;
    qb_deq_fn f = qb_fast_deq(type);
    (f ? f : t->deq)(src, dst, n / t->values);
}

void dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n) {
    const type_desc *t = desc(type);
    assert(t && n % t->values == 0);
    if (!t || n <= 0) return;
    if (type == GGML_Q8_0) { /* one value at a time, independent of simd.c */
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *blk = p + (i / QK8_0) * (2 + QK8_0);
            dst[i] = qb_half(blk) * (float)(int8_t)blk[2 + i % QK8_0];
        }
        return;
    }
    if (type == GGML_F16) {
        for (int64_t i = 0; i < n; i++) dst[i] = qb_half((const uint8_t *)src + 2 * i);
        return;
    }
    t->deq(src, dst, n / t->values);
}

int64_t quant_row_bad_block(uint32_t type, const void *src, int64_t n) {
    const type_desc *t = desc(type);
    if (!t || t->values == 1 || n <= 0) return -1;
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / t->values; b++, p += t->bytes)
        for (int k = 0; k < 2; k++)
            if (t->scale_off[k] >= 0 && (qb_rd16(p + t->scale_off[k]) & 0x7c00) == 0x7c00)
                return b; /* exponent all ones: inf or NaN */
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Quantisation                                                                              */

int quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    const type_desc *t = desc(type);
    if (!t || !t->qnt)
        return terse_err(TERSE_ERR_UNSUPPORTED, "quantize: writing tensor type %u (%s) is not "
                         "supported", type, gguf_type_name(type));
    if (n < 0 || n % t->values != 0)
        return terse_err(TERSE_ERR_INVALID, "quantize: row of %lld values is not a multiple of "
                         "the %s block size %d", (long long)n, t->name, t->values);
    t->qnt(src, dst, n / t->values);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Per-tensor type choice (llama-quantize's rules for the types terse writes)               */

static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int layer_of(const char *name) {
    int l = -1;
    if (strncmp(name, "blk.", 4) == 0) l = atoi(name + 4);
    return l;
}

uint32_t quant_pick_type(uint32_t want, const char *name, int64_t ne0, int32_t n_layer,
                         int has_output) {
    uint32_t t = want;
    if (want == QUANT_MIX_Q4_K_M || want == QUANT_MIX_Q5_K_M) {
        int q4 = want == QUANT_MIX_Q4_K_M, l = layer_of(name);
        t = q4 ? GGML_Q4_K : GGML_Q5_K;
        if (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight")))
            t = ne0 % QK_K ? GGML_Q8_0 : GGML_Q6_K;
        else if (strstr(name, "attn_v.weight") && l >= 0 && more_bits(l, n_layer))
            t = GGML_Q6_K;
        else if (strstr(name, "ffn_down") && l >= 0 && more_bits(l, n_layer))
            t = GGML_Q6_K;
        else if (strstr(name, "attn_qkv.weight"))
            t = q4 ? GGML_Q5_K : GGML_Q6_K;
    }
    if (!quant_can_write(t)) return GGML_F32;
    if (ne0 % quant_block_values(t)) {
        t = t == GGML_Q4_K ? GGML_Q5_0 : t == GGML_Q5_K ? GGML_Q5_1 : t == GGML_Q6_K ? GGML_Q8_0 : t;
        if (ne0 % quant_block_values(t)) t = GGML_F16;
    }
    return t;
}

int quant_can_write_file(uint32_t want) {
    return want == QUANT_MIX_Q4_K_M || want == QUANT_MIX_Q5_K_M || quant_can_write(want);
}

uint32_t quant_file_type(uint32_t want) {
    switch (want) {
    case GGML_F16: return 1;
    case GGML_Q4_0: return 2;
    case GGML_Q4_1: return 3;
    case GGML_Q8_0: return 7;
    case GGML_Q5_0: return 8;
    case GGML_Q5_1: return 9;
    case GGML_Q4_K: return 14;  /* Q4_K_S: "mostly Q4_K" */
    case QUANT_MIX_Q4_K_M: return 15;
    case GGML_Q5_K: return 16;  /* Q5_K_S */
    case QUANT_MIX_Q5_K_M: return 17;
    case GGML_Q6_K: return 18;
    case GGML_BF16: return 32;
    default: return 0;
    }
}
