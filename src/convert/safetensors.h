/* safetensors.h - a validating reader for Hugging Face .safetensors files (internal).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 *   {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
 * then the data; offsets are relative to the data start. Every entry is checked (dtype,
 * shape, byte count = elements x element size, offsets inside the file) before use.
 * A folder is read from model.safetensors or, for sharded models, from
 * model.safetensors.index.json ("weight_map": name -> shard file in the same folder).
 * Files are mmap'ed; tensor data pointers point into the mappings (possibly unaligned).
 */
#ifndef TERSE_SAFETENSORS_H
#define TERSE_SAFETENSORS_H

#include "base/base.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_OTHER } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    char dtype_name[16];      /* as in the file ("F32", "I64", ...) */
    int n_dims;
    int64_t shape[ST_MAX_DIMS];  /* row-major: shape[n_dims-1] is contiguous */
    int64_t n_elems;
    const uint8_t *data;      /* inside the mapping, maybe unaligned */
    uint64_t nbytes;
    int used;                 /* set by the caller when it consumed the tensor */
} st_tensor;

typedef struct {
    terse_file *files;        /* (n_files) */
    int n_files;
    st_tensor *t;             /* (n) */
    int64_t n;
} st_set;

/* Open dir/model.safetensors, or the shards named by dir/model.safetensors.index.json. */
int  st_open_dir(const char *dir, st_set *s);
/* Add one file's tensors to s (s zero-initialised before the first call). */
int  st_open_file(st_set *s, const char *path);
void st_close(st_set *s);

/* Tensor by name, or NULL. */
st_tensor *st_find(const st_set *s, const char *name);

/* dst[0..n_elems) = the tensor's values as f32 (F32/F16/BF16; others: TERSE_ERR_UNSUPPORTED). */
int st_to_f32(const st_tensor *t, float *dst);

#endif
