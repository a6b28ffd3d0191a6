/* gguf.h - GGUF v3 files: a validating zero-copy reader and a writer. Internal header.
 *
 * The reader maps the file and checks every count, string length, array size, tensor shape,
 * type, offset and alignment against the file size before anything is used; after gguf_open
 * succeeds every pointer it hands out lies inside the file. Strings are NOT NUL-terminated:
 * they are (ptr, len) views into the mapping.
 *
 * Layout (little-endian): magic "GGUF", u32 version (3; 2 accepted), u64 n_tensors,
 * u64 n_kv, then n_kv of (string key, u32 type, value), then n_tensors of (string name,
 * u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), padding to general.alignment
 * (default 32), then tensor data; each offset is relative to the data start and aligned.
 * A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
 */
#ifndef TERSE_GGUF_H
#define TERSE_GGUF_H

#include "base/base.h"

typedef enum {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4,
    GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9,
    GGUF_UINT64 = 10, GGUF_INT64 = 11, GGUF_FLOAT64 = 12, GGUF_NTYPES
} gguf_type;

/* GGML tensor types (values are GGML's). The reader knows every type's block size, so a file
 * holding any of them opens; which types the runtime computes with is nn/quant.h's business. */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12,
    GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_IQ2_XXS = 16, GGML_IQ2_XS = 17,
    GGML_IQ3_XXS = 18, GGML_IQ1_S = 19, GGML_IQ4_NL = 20, GGML_IQ3_S = 21, GGML_IQ2_S = 22,
    GGML_IQ4_XS = 23, GGML_I8 = 24, GGML_I16 = 25, GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28,
    GGML_IQ1_M = 29, GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35
};
#define GGML_MAX_TYPE 40
#define QK8_0 32 /* Q8_0 block: f16 scale + 32 int8 */

typedef struct {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    uint32_t type;      /* gguf_type */
    uint32_t arr_type;  /* element type when type == GGUF_ARRAY */
    uint64_t n;         /* element count for arrays, else 1 */
    const uint8_t *data;/* the value (or first element) inside the mapping */
    const uint64_t *str_off; /* string arrays: offset of each element from data (n entries) */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension (row length); unused = 1 */
    uint32_t type;             /* GGML type */
    uint64_t offset;           /* relative to the data section */
    const void *data;          /* inside the mapping */
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file {
    terse_file file;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;      /* start of the tensor data section in the file */
    char *path;
} gguf_file;

/* Open and validate. On failure *out is NULL and terse_last_error() names field and value. */
int  gguf_open(const char *path, int use_mmap, gguf_file **out);
/* Same over a caller-owned buffer (kept, not copied; must outlive the gguf_file). */
int  gguf_open_memory(const void *buf, size_t len, gguf_file **out);
void gguf_close(gguf_file *g);

/* Bytes a tensor of this type and row length takes per row; 0 if the type is unknown or the
 * row length is not a multiple of the block size. */
uint64_t gguf_type_row_bytes(uint32_t type, int64_t ne0);
const char *gguf_type_name(uint32_t type);
int gguf_str_eq(gguf_str s, const char *c);

/* Key lookup: index or -1. */
int64_t gguf_find(const gguf_file *g, const char *key);
const gguf_kv *gguf_get(const gguf_file *g, const char *key);

/* Typed getters. Integer getters accept any integer type whose value fits; return TERSE_OK,
 * TERSE_ERR_FORMAT (wrong type / does not fit, message names the key) or, for a missing key,
 * TERSE_ERR_FORMAT too unless the *_or variant with a default is used. */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_u32_or(const gguf_file *g, const char *key, uint32_t def, uint32_t *out);
int gguf_get_i32_or(const gguf_file *g, const char *key, int32_t def, int32_t *out);
int gguf_get_f32_or(const gguf_file *g, const char *key, float def, float *out);
int gguf_get_bool_or(const gguf_file *g, const char *key, int def, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Array of the given element type; *n receives the count, *kv the entry. */
int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type, const gguf_kv **kv);

/* Elements of an array kv (caller checked the type). */
gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i);
static inline float gguf_arr_f32(const gguf_kv *kv, uint64_t i) {
    float f; memcpy(&f, kv->data + 4 * i, 4); return f;
}
static inline int32_t gguf_arr_i32(const gguf_kv *kv, uint64_t i) {
    int32_t v; memcpy(&v, kv->data + 4 * i, 4); return v;
}

/* Tensor lookup by name (NULL if absent). */
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* ---------------------------------------------------------------------------------------- */
/* Writer: collect metadata and tensors, then write once. Tensor data is referenced, not
 * copied, unless gguf_writer_add_tensor_copy is used; it must stay valid until the write. */

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Arrays: elements copied. */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens, uint64_t n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
int gguf_writer_set_arr_u8(gguf_writer *w, const char *key, const uint8_t *v, uint64_t n);
/* Copy one metadata entry from an open file (used by converters and re-writers). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes);
/* Same, but the writer keeps its own copy of data (freed with the writer). */
int gguf_writer_add_tensor_copy(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const int64_t *ne, const void *data, uint64_t nbytes);
int gguf_writer_write(gguf_writer *w, const char *path);

#endif
