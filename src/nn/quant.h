/* quant.h - tensor element types of the runtime (GGML layouts): F32, F16, BF16, Q8_0, the
 * legacy Q4_0/Q4_1/Q5_0/Q5_1, the K-quants Q2_K..Q6_K and IQ4_NL/IQ4_XS. Row sizes,
 * dequantisation to f32 (bit-exact with GGML's) and quantisation from f32. Internal header.
 * The block formats live in quant_legacy.c, quant_k.c, quant_iq.c (quant_blocks.h); their
 * AVX2 / AVX-512 dequantisers in quant_simd.c, chosen at run time.
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

/* 1 if quantize_row can write this type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K, Q6_K). */
int quant_can_write(uint32_t type);

/* Values per block (1 for F32/F16/BF16, 32 or 256); 0 for an unsupported type. */
int64_t quant_block_values(uint32_t type);

/* Bytes per block; 0 for an unsupported type. */
int64_t quant_block_bytes(uint32_t type);

/* Bytes of a row of n values; 0 if the type is unsupported, n < 0, or n is not a multiple of
 * the block size (n = 0 gives 0 as well). */
size_t quant_row_bytes(uint32_t type, int64_t n);

/* GGML's name of the type ("Q4_K", ...), or "unknown". */
const char *quant_type_name(uint32_t type);

/* dst[0..n) = the values of one row of n elements at src. The type must be supported and n a
 * multiple of its block size (programmer errors: checked with assert). */
void dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Encode src[0..n) as type into dst (quant_row_bytes(type, n) bytes).
 * Returns TERSE_OK, or TERSE_ERR_UNSUPPORTED / TERSE_ERR_INVALID (n not a multiple of the
 * block size) with a message. */
int quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Plain C reference dequantiser (no SIMD); tests compare against it. */
void dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n);

/* Check every block scale of a row of n values (n a multiple of the block size): the f16
 * scales (d, and dmin / m where the type has them) must be finite. Returns the index of the
 * first bad block, or -1 when all are fine. F32/F16/BF16 rows are not checked (-1). */
int64_t quant_row_bad_block(uint32_t type, const void *src, int64_t n);

/* File-level mixtures (terse_type values beyond GGML's: 1000 + llama.cpp's ftype). */
#define QUANT_MIX_Q4_K_M 1015u
#define QUANT_MIX_Q5_K_M 1017u

/* The type a writer gives the 2-D tensor `name` (ne[0] = ne0) of a model with n_layer layers
 * when `want` is asked for: `want` itself, or for QUANT_MIX_Q4_K_M / Q5_K_M llama-quantize's
 * rules (output - or a tied token_embd - Q6_K; attn_v and ffn_down Q6_K in the first eighth,
 * the last eighth and every third layer between; attn_qkv one step up; the rest Q4_K / Q5_K).
 * Rows that are not whole blocks fall back as llama-quantize does (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0; then F16). has_output: the model has its own output.weight. */
uint32_t quant_pick_type(uint32_t want, const char *name, int64_t ne0, int32_t n_layer,
                         int has_output);
/* 1 if `want` is a writable type or a mixture above. */
int quant_can_write_file(uint32_t want);
/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a requested type or mixture (0 for F32). */
uint32_t quant_file_type(uint32_t want);

/* Names of the "supported" types, for messages: "F32, F16, BF16, Q8_0, Q4_0, ...". */
const char *quant_supported_names(void);

/* The SIMD level the dequantisers use on this CPU: "avx512", "avx2" or "scalar". */
const char *quant_simd_level(void);

#endif
