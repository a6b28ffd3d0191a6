/* convert.c - the output side of the converters: per-tensor type choice, f32 -> F16 / BF16 /
 * Q8_0 / Q4_0..Q5_1 / Q4_K..Q6_K encoding (row by row, through nn/quant.h), buffer ownership
 * until the write.
 * It does not read any input format; llama2c.c and hf.c do. */
#include "convert/convert.h"

#include "nn/quant.h"

#include <stdlib.h>

int conv_begin(conv_out *o, terse_type type) {
    memset(o, 0, sizeof *o);
    if (!quant_can_write_file((uint32_t)type))
        return terse_err(TERSE_ERR_UNSUPPORTED, "convert: output type %d not supported (F32, F16, "
                         "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M)",
                         (int)type);
    o->type = (uint32_t)type;
    o->has_output = 1;
    if (!(o->w = gguf_writer_new())) return TERSE_ERR_NOMEM;
    int rc = gguf_writer_set_u32(o->w, "general.file_type", quant_file_type(o->type));
    if (!rc && o->type != GGML_F32 && o->type != GGML_F16 && o->type != GGML_BF16)
        rc = gguf_writer_set_u32(o->w, "general.quantization_version", 2);
    return rc;
}

void conv_end(conv_out *o) {
    if (!o) return;
    gguf_writer_free(o->w);
    for (size_t i = 0; i < o->n_bufs; i++) free(o->bufs[i]);
    free(o->bufs);
    memset(o, 0, sizeof *o);
}

int conv_keep(conv_out *o, void *buf) {
    if (o->n_bufs == o->cap_bufs) {
        size_t cap = o->cap_bufs ? 2 * o->cap_bufs : 64;
        void **b = terse_reallocarray(o->bufs, cap, sizeof *b, "converter buffers");
        if (!b) {
            free(buf);
            return TERSE_ERR_NOMEM;
        }
        o->bufs = b;
        o->cap_bufs = cap;
    }
    o->bufs[o->n_bufs++] = buf;
    return TERSE_OK;
}

uint32_t conv_pick_type(const conv_out *o, const char *name, uint32_t n_dims, int64_t ne0) {
    if (n_dims < 2 || o->type == GGML_F32) return GGML_F32;
    return quant_pick_type(o->type, name, ne0, o->n_layer, o->has_output);
}

int conv_add_f32(conv_out *o, const char *name, uint32_t n_dims, const int64_t *ne, float *data,
                 int owned) {
    int rc;
    size_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0 || !size_mul(nel, (size_t)ne[d], &nel)) {
            if (owned) free(data);
            return terse_err(TERSE_ERR_FORMAT, "convert: tensor %s: bad shape", name);
        }
    uint32_t type = conv_pick_type(o, name, n_dims, ne[0]);
    if (type == GGML_F32) {
        if (owned && (rc = conv_keep(o, data))) return rc;
        return gguf_writer_add_tensor(o->w, name, GGML_F32, n_dims, ne, data, nel * 4);
    }
    if (type != conv_pick_type(o, name, n_dims, 0)) o->n_fallback++; /* 0: any block size fits */

    /* Encode row by row into a new buffer; an owned f32 source is freed right after. */
    size_t row_bytes = quant_row_bytes(type, ne[0]), n_rows = nel / (size_t)ne[0], nbytes = 0;
    uint8_t *dst = NULL;
    if (!row_bytes || !size_mul(row_bytes, n_rows, &nbytes))
        rc = terse_err(TERSE_ERR_FORMAT, "convert: tensor %s: cannot encode as %s", name,
                       quant_type_name(type));
    else if (!(dst = terse_malloc(nbytes, name)))
        rc = TERSE_ERR_NOMEM;
    else
        rc = conv_keep(o, dst);
    for (size_t r = 0; !rc && r < n_rows; r++) {
        rc = quantize_row(type, data + r * (size_t)ne[0], dst + r * row_bytes, ne[0]);
        if (rc) rc = terse_err_wrap(rc, "convert: tensor %s", name);
    }
    if (owned) free(data);
    return rc ? rc : gguf_writer_add_tensor(o->w, name, type, n_dims, ne, dst, nbytes);
}

int conv_add_raw(conv_out *o, const char *name, uint32_t type, uint32_t n_dims,
                 const int64_t *ne, const void *data, uint64_t nbytes) {
    return gguf_writer_add_tensor(o->w, name, type, n_dims, ne, data, nbytes);
}

int conv_write(conv_out *o, const char *path) {
    return gguf_writer_write(o->w, path);
}
