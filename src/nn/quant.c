/* quant.c - tensor element types (see quant.h): sizes, dequantisation, quantisation.
 * Dequantisation is vectorised through simd.h; a one-value-at-a-time reference is kept for
 * tests. No matrix products here.
 */
#include "nn/quant.h"

#include <assert.h>
#include <math.h>

#include "base/base.h"
#include "gguf/gguf.h"
#include "nn/simd.h"

int quant_supported(uint32_t type) {
    return type == GGML_F32 || type == GGML_F16 || type == GGML_BF16 || type == GGML_Q8_0;
}

int64_t quant_block_values(uint32_t type) {
    switch (type) {
    case GGML_F32: case GGML_F16: case GGML_BF16: return 1;
    case GGML_Q8_0: return QK8_0;
    default: return 0;
    }
}

int64_t quant_block_bytes(uint32_t type) {
    switch (type) {
    case GGML_F32: return 4;
    case GGML_F16: case GGML_BF16: return 2;
    case GGML_Q8_0: return 2 + QK8_0;
    default: return 0;
    }
}

size_t quant_row_bytes(uint32_t type, int64_t n) {
    int64_t bv = quant_block_values(type);
    if (bv == 0 || n < 0 || n % bv != 0) return 0;
    return (size_t)(n / bv) * (size_t)quant_block_bytes(type);
}

const char *quant_type_name(uint32_t type) {
    switch (type) {
    case GGML_F32: return "F32";
    case GGML_F16: return "F16";
    case GGML_BF16: return "BF16";
    case GGML_Q8_0: return "Q8_0";
    default: return "unknown";
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dequantisation                                                                            */

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    assert(quant_row_bytes(type, n) > 0 || n == 0);
    switch (type) {
    case GGML_F32:
        memcpy(dst, src, (size_t)n * 4);
        break;
    case GGML_F16:
        simd_f16_to_f32((const uint16_t *)src, dst, n);
        break;
    case GGML_BF16:
        simd_bf16_to_f32((const uint16_t *)src, dst, n);
        break;
    case GGML_Q8_0: {
        const uint8_t *p = src;
        for (int64_t b = 0; b < n / QK8_0; b++, p += 2 + QK8_0)
            simd_q8_block_to_f32(terse_f16_to_f32(rd16(p)), (const int8_t *)(p + 2), dst + b * QK8_0);
        break;
    }
    default:
        assert(!"dequantize_row: unsupported type");
    }
}

void dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        switch (type) {
        case GGML_F32: memcpy(&dst[i], p + 4 * i, 4); break;
        case GGML_F16: dst[i] = terse_f16_to_f32(rd16(p + 2 * i)); break;
        case GGML_BF16: dst[i] = terse_bf16_to_f32(rd16(p + 2 * i)); break;
        case GGML_Q8_0: {
            const uint8_t *blk = p + (i / QK8_0) * (2 + QK8_0);
            dst[i] = terse_f16_to_f32(rd16(blk)) * (float)(int8_t)blk[2 + i % QK8_0];
            break;
        }
        default: assert(!"dequantize_row_ref: unsupported type");
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Quantisation                                                                              */

int quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    if (!quant_supported(type))
        return terse_err(TERSE_ERR_UNSUPPORTED, "quantize: tensor type %u (%s) not supported",
                         type, gguf_type_name(type));
    if (n < 0 || n % quant_block_values(type) != 0)
        return terse_err(TERSE_ERR_INVALID, "quantize: row of %lld values is not a multiple of "
                         "the %s block size %lld", (long long)n, quant_type_name(type),
                         (long long)quant_block_values(type));
    uint8_t *p = dst;
    switch (type) {
    case GGML_F32:
        memcpy(dst, src, (size_t)n * 4);
        break;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = terse_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        break;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = terse_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        break;
    case GGML_Q8_0:
        for (int64_t b = 0; b < n / QK8_0; b++, p += 2 + QK8_0) {
            const float *x = src + b * QK8_0;
            float amax = 0.0f;
            for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
            float d = amax / 127.0f;
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            uint16_t dh = terse_f32_to_f16(d);
            memcpy(p, &dh, 2);
            for (int j = 0; j < QK8_0; j++) p[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        }
        break;
    }
    return TERSE_OK;
}
