/* convert.h - what the model converters share (internal, not API): choosing each tensor's
 * output type, encoding f32 rows into it, and keeping the buffers alive until the GGUF is
 * written.
 *
 * Type policy (llama-quantize's, nn/quant.h quant_pick_type): 1-D tensors (norm weights,
 * biases) stay F32. 2-D and larger tensors take the requested type, or for the Q4_K_M / Q5_K_M
 * mixtures the type its rules give that tensor (by name and layer); a tensor whose rows
 * (ne[0]) are not whole blocks of that type falls back (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0, then F16; conv_out.n_fallback counts them).
 *
 * The converters (llama2c.c, hf.c) build the metadata on o->w with the gguf_writer_set_*
 * calls, add every tensor with conv_add_f32 / conv_add_raw, then conv_write.
 */
#ifndef TERSE_CONVERT_H
#define TERSE_CONVERT_H

#include "convert/safetensors.h"
#include "gguf/gguf.h"

typedef struct {
    gguf_writer *w;
    uint32_t type;        /* requested type: quant_can_write_file() (a GGML type or a mixture) */
    int32_t n_layer;      /* set by the converter: the mixtures' rules depend on the layer */
    int has_output;       /* set by the converter: output.weight is written */
    void **bufs;          /* (n_bufs) buffers the writer points into, freed by conv_end */
    size_t n_bufs, cap_bufs;
    int n_fallback;       /* tensors written in a fallback type: rows not whole blocks */
} conv_out;

/* Checks the type, creates the writer and records general.file_type. */
int  conv_begin(conv_out *o, terse_type type);
void conv_end(conv_out *o);

/* The GGML type the tensor `name` of this shape is written in. */
uint32_t conv_pick_type(const conv_out *o, const char *name, uint32_t n_dims, int64_t ne0);

/* Add a tensor of f32 values, row-major with ne[0] contiguous (ne as GGUF orders it).
 * owned = 1: data was malloc'ed and is taken over (freed once encoded, or by conv_end; also on
 * failure);
 * owned = 0: data must stay valid until conv_write. */
int conv_add_f32(conv_out *o, const char *name, uint32_t n_dims, const int64_t *ne, float *data,
                 int owned);

/* Add bytes already in the output type (zero-copy; data must outlive conv_write). */
int conv_add_raw(conv_out *o, const char *name, uint32_t type, uint32_t n_dims,
                 const int64_t *ne, const void *data, uint64_t nbytes);

int conv_write(conv_out *o, const char *path);

/* Keep a malloc'ed buffer until conv_end (freed now if it cannot be recorded). */
int conv_keep(conv_out *o, void *buf);

/* hf.c: the integer field key of a config.json object: required unless def >= 0 (the value
 * when it is absent or null); an error naming the key and the value unless in [lo, hi]. */
struct json_t;
int conv_cfg_int(struct json_t *root, const char *key, int64_t def, int64_t lo, int64_t hi,
                 int64_t *out);

/* hf.c: the write sequence of both Hugging Face converters: the writer (conv_begin with type;
 * n_layer and has_output as conv_out's), dir's safetensors, hparams(w, cfg), the tokenizer
 * (tok_import_hf with pre; without tokenizer files, when tok_optional, tokenizer.ggml.model
 * "none", which llama.cpp's loader still wants), move(o, s, cfg) every tensor, out_path. */
typedef struct {
    int32_t n_layer;
    int has_output;
    const char *pre;       /* pre-tokenizer name for tok_import_hf (NULL: from the files) */
    int tok_optional;
    int (*hparams)(gguf_writer *w, const void *cfg);
    int (*move)(conv_out *o, st_set *s, void *cfg);
} conv_hf_plan;
int conv_hf_write(const char *dir, const char *out_path, terse_type type, const conv_hf_plan *p,
                  void *cfg);
/* hf_encoder.c: config.json names a token classifier (BertForTokenClassification,
 * XLMRobertaForTokenClassification); then convert it to GGUF architecture "bert". */
int conv_hf_is_encoder(const char *dir);
int conv_hf_encoder(const char *dir, const char *out_path, terse_type type);

#endif
