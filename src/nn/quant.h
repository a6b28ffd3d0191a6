/* quant.h - tensor element types of the runtime: F32, F16, BF16 and Q8_0 (GGML layouts).
 * Row sizes, dequantisation to f32 and quantisation from f32. Internal header.
 *
 * Q8_0 (GGML block layout): per 32 values, an f16 scale d followed by 32 int8 q; value = d*q.
 * Quantisation follows llama.cpp's reference: amax = max |x|, d = amax/127, id = 1/d (0 when
 * d == 0), q = roundf(x*id), d stored as f16.
 *
 * Type values are GGML's (GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 in gguf/gguf.h; the same
 * numbers as terse_type). Other GGML types are "unknown" here: quant_supported() says 0.
 */
#ifndef TERSE_NN_QUANT_H
#define TERSE_NN_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if the runtime can read tensors of this GGML type. */
int quant_supported(uint32_t type);

/* Values per block (1 for F32/F16/BF16, 32 for Q8_0); 0 for an unsupported type. */
int64_t quant_block_values(uint32_t type);

/* Bytes per block (4, 2, 2, 34); 0 for an unsupported type. */
int64_t quant_block_bytes(uint32_t type);

/* Bytes of a row of n values; 0 if the type is unsupported, n < 0, or n is not a multiple of
 * the block size (n = 0 gives 0 as well). */
size_t quant_row_bytes(uint32_t type, int64_t n);

/* "F32", "F16", "BF16", "Q8_0", or "unknown". */
const char *quant_type_name(uint32_t type);

/* dst[0..n) = the values of one row of n elements at src. The type must be supported and n a
 * multiple of its block size (programmer errors: checked with assert). */
void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Encode src[0..n) as type into dst (quant_row_bytes(type, n) bytes).
 * Returns TERSE_OK, or TERSE_ERR_UNSUPPORTED / TERSE_ERR_INVALID (n not a multiple of the
 * block size) with a message. */
int quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Naive reference dequantiser (one value at a time, no SIMD); tests compare against it. */
void dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n);

#endif
