/* terse.h - the one public header of terse, a prompt-compression library.
 *
 * Usage (score every token of a text with a GGUF model):
 *
 *     terse_model *m;
 *     if (terse_model_load("model.gguf", terse_model_default_params(), &m) != TERSE_OK) {
 *         fprintf(stderr, "%s\n", terse_last_error());
 *         return 1;
 *     }
 *     terse_ctx *c;
 *     terse_ctx_new(m, terse_ctx_default_params(), &c);
 *     const terse_vocab *v = terse_model_vocab(m);
 *     int32_t n = terse_tokenize(v, text, len, 1, ids, spans, cap);  // ids + byte spans
 *     terse_score(c, ids, n, surprisal);                            // nats, surprisal[0] = 0
 *     terse_ctx_free(c);
 *     terse_model_free(m);
 *
 * Thread safety: a terse_model and a terse_vocab are immutable after loading and may be shared
 * by any number of threads. A terse_ctx (KV cache + scratch) belongs to one thread at a time.
 * Error messages are kept per thread: after a call returns a negative status,
 * terse_last_error() on the same thread says what went wrong, naming the field and value.
 *
 * Conventions: functions return TERSE_OK (0) or a negative terse_status. Output buffers are the
 * caller's, with a capacity; when too small, the call returns the size needed (see each call).
 * terse_X_free(NULL) is a no-op. Sizes are int64_t/size_t, token ids int32_t. Nothing in the
 * library exits or aborts on bad input.
 */
#ifndef TERSE_H
#define TERSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TERSE_VERSION "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Status                                                                                      */

typedef enum {
    TERSE_OK            =  0,
    TERSE_ERR_IO        = -1,  /* file missing, unreadable, short read */
    TERSE_ERR_FORMAT    = -2,  /* corrupt or unsupported file content */
    TERSE_ERR_NOMEM     = -3,  /* allocation failed or a size would overflow */
    TERSE_ERR_INVALID   = -4,  /* bad argument: id out of range, empty input, bad rate... */
    TERSE_ERR_RANGE     = -5,  /* sequence longer than the context, cache full */
    TERSE_ERR_UNSUPPORTED = -6,/* known format, feature not implemented (architecture, type) */
    TERSE_ERR_INTERNAL  = -7,  /* a bug: please report */
} terse_status;

/* Short fixed description of a status ("corrupt file", ...). */
const char *terse_status_str(int status);
/* The detailed message of the last failing call on this thread ("" if none). */
const char *terse_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Vocabularies and tokenization                                                               */

typedef struct terse_vocab terse_vocab;

/* A token's origin in the input: bytes [begin, end). The spans of all tokens of one call,
 * in order, tile the input exactly; special tokens that were added (BOS) have begin == end. */
typedef struct {
    int64_t begin;
    int64_t end;
} terse_span;

typedef enum {
    TERSE_VOCAB_NONE      = 0,
    TERSE_VOCAB_SPM       = 1, /* SentencePiece-style BPE with scores and byte fallback */
    TERSE_VOCAB_BPE       = 2, /* byte-level BPE with a named pre-tokenizer */
    TERSE_VOCAB_WPM       = 3, /* WordPiece (BERT) */
    TERSE_VOCAB_TIKTOKEN  = 4, /* tiktoken rank file, for counting */
} terse_vocab_type;

/* Load a vocabulary from a GGUF file (model or vocab-only; recognised by its magic) or a
 * tiktoken rank file (a name ending in ".tiktoken": "base64(token) rank" per line; it gets
 * cl100k_base's pre-tokenizer and no special tokens). */
int  terse_vocab_load(const char *path, terse_vocab **out);
void terse_vocab_free(terse_vocab *v);

terse_vocab_type terse_vocab_kind(const terse_vocab *v);
int32_t terse_vocab_size(const terse_vocab *v);
int32_t terse_vocab_bos(const terse_vocab *v);   /* -1 if none */
int32_t terse_vocab_eos(const terse_vocab *v);   /* -1 if none */
/* The piece of token id as stored in the vocabulary (NUL-terminated, NULL if out of range). */
const char *terse_vocab_piece(const terse_vocab *v, int32_t id);

/* Tokenize text[0..len). add_special: add BOS/EOS (and CLS/SEP) as the vocabulary says.
 * Writes up to cap ids (and spans, if spans != NULL). Returns the number of tokens; if that
 * exceeds cap, nothing beyond cap is written and the caller retries with a bigger buffer.
 * Returns a negative status on error. Any bytes are accepted, invalid UTF-8 included.
 * The text of a control or user-defined token ("<|endoftext|>", "</s>") found in the input
 * becomes that token, as Hugging Face tokenizers do by default (never for tiktoken files,
 * whose special tokens count as plain text, like tiktoken's encode_ordinary). */
int64_t terse_tokenize(const terse_vocab *v, const char *text, size_t len, int add_special,
                       int32_t *ids, terse_span *spans, int64_t cap);

/* Number of tokens text would take (no special tokens), or a negative status. */
int64_t terse_token_count(const terse_vocab *v, const char *text, size_t len);

/* The bytes of ids[0..n) as the model would print them (leading-space rules of SPM applied,
 * special tokens omitted). Returns the length; writes at most cap bytes (NUL-terminated when
 * room remains). Negative status if an id is out of range. */
int64_t terse_detokenize(const terse_vocab *v, const int32_t *ids, int64_t n, char *buf,
                         int64_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                      */

typedef struct terse_model terse_model;

typedef struct {
    int use_mmap;       /* 1 (default): map the file, weights are read in place */
    int n_threads;      /* threads for loading work; 0 = all cores (default) */
} terse_model_params;

terse_model_params terse_model_default_params(void);
int  terse_model_load(const char *path, terse_model_params p, terse_model **out);
void terse_model_free(terse_model *m);

/* The model's vocabulary (owned by the model; NULL if the file carries none). */
const terse_vocab *terse_model_vocab(const terse_model *m);

typedef struct {
    const char *arch;   /* "llama", "qwen2", "gpt2" */
    const char *name;   /* general.name or "" */
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int64_t n_params;   /* number of weights */
    int64_t file_bytes; /* size of the tensor data */
    int32_t weight_type;/* most common tensor type (terse_type) */
} terse_model_info;

void terse_model_get_info(const terse_model *m, terse_model_info *out);

typedef enum {
    TERSE_TYPE_F32  = 0,
    TERSE_TYPE_F16  = 1,
    TERSE_TYPE_Q8_0 = 8,
    TERSE_TYPE_BF16 = 30,
} terse_type; /* values are GGML's */

/* ------------------------------------------------------------------------------------------ */
/* Contexts: KV cache, forward passes, scoring                                                 */

typedef struct terse_ctx terse_ctx;

typedef struct {
    int32_t n_ctx;      /* KV cache capacity in tokens; 0 = the model's training context */
    int32_t n_batch;    /* largest batch per forward pass; 0 = 512 */
    int32_t n_threads;  /* 0 = all cores */
    int32_t vocab_chunk;/* rows of the output projection per streamed chunk; 0 = 4096 */
} terse_ctx_params;

terse_ctx_params terse_ctx_default_params(void);
int  terse_ctx_new(const terse_model *m, terse_ctx_params p, terse_ctx **out);
void terse_ctx_free(terse_ctx *c);

/* One forward pass over n new tokens appended after the cache's current contents.
 * Give either ids (n) or embd (n x n_embd, row-major input embeddings), not both.
 * pos: (n) positions, or NULL for kv_len, kv_len+1, ...
 * mask: NULL for causal attention, else (n x (kv_len + n)) bytes, row i column j nonzero when
 * token i may attend to cache entry j (entries kv_len..kv_len+n-1 are this batch).
 * n may exceed n_batch: the pass is split internally (only with mask == NULL). */
typedef struct {
    int32_t n;
    const int32_t *ids;
    const float *embd;
    const int32_t *pos;
    const uint8_t *mask;
} terse_batch;

/* Run the batch, append its keys/values to the cache and keep its final hidden states so that
 * the calls below can read the output distribution at each of its n positions. */
int terse_eval(terse_ctx *c, const terse_batch *b);

/* After terse_eval: logp[i] = log p(targets[i] | everything up to batch position i), for
 * i in [0, n). Streams the output projection in chunks; never holds n x V logits. */
int terse_eval_logprobs(terse_ctx *c, const int32_t *targets, int32_t n, float *logp);

/* After terse_eval: the full log-softmax (n_vocab floats) at batch position i. */
int terse_eval_logits(terse_ctx *c, int32_t i, float *logits, int log_softmax);

/* After terse_eval: the k most likely next tokens at batch position i, most likely first. */
int terse_eval_topk(terse_ctx *c, int32_t i, int32_t k, int32_t *ids, float *logp);

/* Cache management: number of cached tokens; drop everything from position n on. */
int32_t terse_kv_len(const terse_ctx *c);
int     terse_kv_truncate(terse_ctx *c, int32_t n);
void    terse_kv_clear(terse_ctx *c);
/* Cache capacity in tokens (n_ctx). */
int32_t terse_ctx_n_ctx(const terse_ctx *c);

/* Surprisal of every token: out[i] = -log p(ids[i] | ids[0..i)) in nats, out[0] = 0.
 * Clears the cache first; n must not exceed n_ctx. Memory O(n_batch x vocab_chunk). */
int terse_score(terse_ctx *c, const int32_t *ids, int32_t n, float *out);

/* Generation. temperature 0 = greedy. Writes up to n_max new ids, stops at EOS (not written).
 * Returns the number generated or a negative status. The cache holds prompt + output after. */
typedef struct {
    float temperature;  /* 0 = greedy (default) */
    float top_p;        /* nucleus; 1 = off (default) */
    uint64_t seed;      /* sampling seed (default 42) */
    int stop_at_eos;    /* default 1 */
} terse_sample_params;

terse_sample_params terse_sample_default_params(void);
int32_t terse_generate(terse_ctx *c, const int32_t *prompt, int32_t n_prompt,
                       terse_sample_params p, int32_t *out, int32_t n_max);

/* ------------------------------------------------------------------------------------------ */
/* Model files: conversion and random models                                                   */

/* Converters write GGUF files that follow llama.cpp's names and conventions. type is the
 * weight type: TERSE_TYPE_F32, F16, BF16 or Q8_0. 1-D tensors (norms, biases) stay F32;
 * with Q8_0, a matrix whose rows are not a multiple of 32 values is written as F16 instead.
 * Inputs are validated (sizes against headers, shapes against the config); a failure
 * returns a negative status, leaves no output file and says why in terse_last_error(). */

/* A llama2.c checkpoint (legacy format: 7 int32 header + f32 weights; vocab_size < 0 = own
 * classifier) and its tokenizer file (tok512.bin format) -> a `llama` GGUF with an SPM
 * vocabulary (BOS 1, EOS 2, UNK 0, byte tokens <0xXX>). rms eps 1e-5, rope theta 1e4. */
int terse_convert_llama2c(const char *ckpt_path, const char *tok_path, const char *out_path,
                          terse_type type);
/* A Hugging Face folder: config.json, model.safetensors or model.safetensors.index.json
 * with its shards (F32/F16/BF16), and tokenizer files when present (tokenizer.json, or
 * vocab.json + merges.txt, or encoder.json + vocab.bpe; without them the GGUF has no
 * vocabulary). Architectures: LlamaForCausalLM and MistralForCausalLM (-> `llama`, q/k rows
 * permuted to llama.cpp's rotary layout), Qwen2ForCausalLM (-> `qwen2`), GPT2LMHeadModel
 * (-> `gpt2`). A tied output projection is not written (the runtime uses token_embd).
 * Rope scaling, sliding windows and unknown tensors are refused (TERSE_ERR_UNSUPPORTED). */
int terse_convert_hf(const char *dir, const char *out_path, terse_type type);

/* Write a model of the given shape with seeded random weights, llama.cpp conventions
 * (hparams under "<arch>.", 1-D tensors F32, matrices in `type`; a matrix whose row length is
 * not a multiple of 32 falls back to F16 when type is Q8_0). Vocabulary: tokenizer.ggml.model
 * "gpt2", pre "gpt2", the 256 byte tokens in GPT-2 byte-to-unicode form, then "<|endoftext|>"
 * (BOS = EOS = 256) and filler tokens "<|fill_N|>" up to n_vocab; no merges (n_vocab >= 257).
 * Weights ~ N(0, init_std) (approximately normal), norm weights 1, biases N(0, init_std).
 * Same params -> same bytes. */
typedef struct {
    const char *arch;   /* "llama", "qwen2", "gpt2" */
    int32_t n_vocab, n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff; /* n_head_kv 0 = n_head */
    terse_type type;    /* F32, F16, BF16 or Q8_0 */
    uint64_t seed;
    float init_std;     /* 0 = 0.02 */
    int32_t tie_output; /* 0 = arch default (gpt2 tied, llama/qwen2 separate output.weight),
                           1 = tied (no output.weight), 2 = separate */
} terse_random_params;

int terse_write_random_model(const char *out_path, const terse_random_params *p);

#ifdef __cplusplus
}
#endif
#endif /* TERSE_H */
