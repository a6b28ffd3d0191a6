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
    TERSE_ERR_UNSUPPORTED = -6,/* known format, but a feature terse does not support (architecture, type) */
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
    int n_threads;      /* threads for loading work; 0 = all cores (default); unused for now */
} terse_model_params;

terse_model_params terse_model_default_params(void);
/* Load a GGUF model (architectures llama, qwen2, gpt2; tensor types F32, F16, BF16, Q8_0).
 * Every tensor's presence, type and shape is checked against the hyper-parameters; errors
 * name the tensor or key with expected and actual values (TERSE_ERR_FORMAT), an unknown
 * architecture or type gives TERSE_ERR_UNSUPPORTED. The model keeps the file mapped. */
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

/* Where the default model is: $TERSE_MODEL if set, else models/terse-default.gguf beside the
 * executable (../models/), or under ./models/. Writes the path (NUL-terminated) into buf and
 * returns its length, or a negative status naming what was searched. */
int terse_default_model_path(char *buf, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Contexts: KV cache, forward passes, scoring                                                 */

typedef struct terse_ctx terse_ctx;

typedef struct {
    int32_t n_ctx;      /* KV cache capacity in tokens; 0 = the model's training context, at
                           most 8192 (set it explicitly for more). The cache is 2 x n_layer x
                           n_ctx x n_head_kv x head_dim floats, touched only as it fills. */
    int32_t n_batch;    /* largest batch per forward pass; 0 = 512 */
    int32_t n_threads;  /* threads for the element-wise work; 0 = all cores; at most 1024.
                           The matrix products use OpenBLAS's own threads
                           (OPENBLAS_NUM_THREADS). */
    int32_t vocab_chunk;/* rows of the output projection per streamed chunk; 0 = 4096 */
} terse_ctx_params;

terse_ctx_params terse_ctx_default_params(void);
int  terse_ctx_new(const terse_model *m, terse_ctx_params p, terse_ctx **out);
void terse_ctx_free(terse_ctx *c);

/* One forward pass over n new tokens appended after the cache's current contents.
 * Give either ids (n) or embd (n x n_embd, row-major input embeddings), not both.
 * pos: (n) positions, or NULL for kv_len, kv_len+1, ...
 * mask: NULL for causal attention, else (n x (kv_len + n)) bytes, row i column j nonzero when
 * token i may attend to cache entry j (entries kv_len..kv_len+n-1 are this batch); a row that
 * sees nothing gets a zero attention output.
 * n may exceed n_batch: the pass is split internally (with a mask, only when no token sees a
 * token of a later n_batch-sized piece; else TERSE_ERR_INVALID).
 * Errors: ids outside [0, n_vocab), both or neither of ids/embd -> TERSE_ERR_INVALID;
 * kv_len + n > n_ctx, negative positions (gpt2: >= its position table) -> TERSE_ERR_RANGE.
 * On error the cache is as before the call. */
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

/* After terse_eval: the n_vocab logits at batch position i, log-softmaxed when log_softmax
 * is nonzero. */
int terse_eval_logits(terse_ctx *c, int32_t i, float *logits, int log_softmax);

/* After terse_eval: the k (1..n_vocab) most likely next tokens at batch position i, most
 * likely first (ties: lower id first), with their log-probabilities in logp (may be NULL). */
int terse_eval_topk(terse_ctx *c, int32_t i, int32_t k, int32_t *ids, float *logp);

/* After terse_eval: copy the final hidden states (after the output norm: the vectors the
 * output projection reads) of batch positions [i, i+n) into out (n x n_embd floats). */
int terse_eval_hidden(const terse_ctx *c, int32_t i, int32_t n, float *out);

/* The model a context was created for. */
const terse_model *terse_ctx_model(const terse_ctx *c);

/* Cache management: number of cached tokens; drop everything from position n on. */
int32_t terse_kv_len(const terse_ctx *c);
int     terse_kv_truncate(terse_ctx *c, int32_t n);
void    terse_kv_clear(terse_ctx *c);
/* Drop cache entries [begin, end); later entries move down. Keys keep the rotary rotation of
 * the position they were evaluated at (as LLMLingua's KV-cache dropping does); new tokens get
 * position kv_len by default, or pass positions to terse_eval. TERSE_ERR_RANGE if not
 * 0 <= begin <= end <= kv_len. */
int     terse_kv_remove(terse_ctx *c, int32_t begin, int32_t end);
/* Cache capacity in tokens (n_ctx). */
int32_t terse_ctx_n_ctx(const terse_ctx *c);

/* Surprisal of every token: out[i] = -log p(ids[i] | ids[0..i)) in nats, out[0] = 0.
 * Clears the cache first; n must not exceed n_ctx. Memory O(n_batch x vocab_chunk). */
int terse_score(terse_ctx *c, const int32_t *ids, int32_t n, float *out);

/* Generation. temperature 0 = greedy. The prompt (n_prompt >= 1) is appended to what the
 * cache holds (terse_kv_clear first for a fresh start). Writes up to n_max new ids, stops at
 * EOS (not written) or when the cache is full. Returns the number generated or a negative
 * status. The cache holds prompt + output after (all but the last token when it stopped on a
 * full cache). Same seed, same tokens. */
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
 * Same params -> same bytes. Shapes outside the loader's limits, or whose weights would
 * take over 16 GiB (all are held in memory until the write), give TERSE_ERR_INVALID naming
 * the field and value before anything is allocated. */
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

/* ------------------------------------------------------------------------------------------ */
/* Compression                                                                                 */
/*
 * Hard prompt compression: drop the least informative parts of a prompt, keep the original
 * bytes of the rest. A prompt is an instruction, a list of contexts (demonstrations or
 * documents) and a question; only the contexts are compressed, the instruction and the
 * question are kept whole (as in the reference implementations) but count in the budget.
 * The pieces are joined with "\n\n" (the separators are kept between kept pieces only).
 *
 *     terse_prompt pr = {.contexts = (const char *[]){text}, .n_contexts = 1};
 *     terse_compress_params p = terse_compress_default_params();
 *     p.rate = 0.3;                                   // keep 30% of the tokens
 *     terse_result *r;
 *     if (terse_compress(ctx, &pr, p, &r) == TERSE_OK) {
 *         size_t n; const char *out = terse_result_text(r, &n);
 *         ...
 *         terse_result_free(r);
 *     }
 *
 * Structure inside a context: `<llmlingua, rate=0.2>text</llmlingua>` compresses that text at
 * its own rate, `<llmlingua, compress=False>text</llmlingua>` keeps it whole (the tags are
 * removed from the output). Protected spans (force tokens, digits, regexes) are never dropped.
 *
 * The budget is a contract in default mode: the output's token count (counted in count_vocab
 * when given, else in the scoring model's vocabulary) is at most the target and within one
 * unit (token, phrase or sentence) of it, unless kept text alone (instruction, question,
 * protected spans, compress=False segments) exceeds the target: then the result says so in
 * terse_result_warning() and stats.over_budget. Default mode never splits a UTF-8 character,
 * a line end or a number expression, keeps one separator between kept words, always outputs
 * valid UTF-8 (invalid input bytes become U+FFFD), and keeps at least one unit of a non-empty
 * prompt (flagged over budget when that unit exceeds the target); docs/compress.md.
 * compat = 1 reproduces the reference code instead (Selective Context 0.1.4, LLMLingua
 * 0.2.2), quirks included, down to the U+FFFD their Python decoding shows.
 */

typedef enum {
    TERSE_METHOD_SELECTIVE     = 0, /* Selective Context: self-information of lexical units */
    TERSE_METHOD_LLMLINGUA     = 1, /* coarse demonstration filter + iterative token pruning */
    TERSE_METHOD_LONGLLMLINGUA = 2, /* question-aware LLMLingua */
} terse_method;

typedef enum {
    TERSE_UNIT_TOKEN    = 0,        /* scoring-model tokens */
    TERSE_UNIT_PHRASE   = 1,        /* noun-phrase chunks, other words, punctuation (default) */
    TERSE_UNIT_SENTENCE = 2,
} terse_unit;

typedef enum {
    TERSE_CONDITION_NONE   = 0,     /* LLMLingua condition_in_question="none" */
    TERSE_CONDITION_BEFORE = 1,     /* "before" */
    TERSE_CONDITION_AFTER  = 2,     /* "after" */
} terse_condition;

typedef enum {
    TERSE_REORDER_AUTO      = -1,   /* the method's default (see reorder below) */
    TERSE_REORDER_ORIGINAL  = 0,    /* kept contexts in their original order */
    TERSE_REORDER_SORT      = 1,    /* by rank */
    TERSE_REORDER_TWO_STAGE = 2,    /* most relevant at both ends */
} terse_reorder;

/* The prompt: NUL-terminated UTF-8 strings, borrowed for the duration of the call. */
typedef struct {
    const char *instruction;        /* NULL or "" = none; kept whole */
    const char *const *contexts;    /* (n_contexts) texts to compress */
    int32_t n_contexts;
    const char *question;           /* NULL or "" = none; kept whole */
} terse_prompt;

typedef struct {
    terse_method method;            /* default TERSE_METHOD_SELECTIVE */
    terse_unit unit;                /* selective: default TERSE_UNIT_PHRASE */
    double rate;                    /* fraction of tokens kept, in (0, 1]; default 0.5;
                                       used when target == 0 */
    int64_t target;                 /* token count of the whole output; 0 = use rate (default) */
    const terse_vocab *count_vocab; /* budget counted in this vocabulary (e.g. cl100k) and
                                       counts reported in it too; NULL = the scoring model's
                                       (default). Borrowed. */
    int compat;                     /* 1: reference behaviour, quirks included; 0 (default) */
    int structured;                 /* 1 (default): honour <llmlingua ...> tags in contexts */
    int keep_digits;                /* 1: tokens holding an ASCII digit are kept; default 0 */
    const char *const *force_tokens;/* (n_force_tokens) strings kept wherever they occur */
    int32_t n_force_tokens;
    const char *const *protect_patterns; /* (n_protect_patterns) PCRE2 regexes (UTF mode);
                                       what they match is kept (code blocks, JSON keys...) */
    int32_t n_protect_patterns;
    int return_tokens;              /* 1: keep per-token detail in the result; default 0 */
    int32_t carry;                  /* texts longer than the model's context are scored in
                                       windows; each later window starts with this many
                                       tokens of what precedes it. 0 = n_ctx / 8 (default) */
    /* Called now and then from the compressing thread: tokens scored so far, total. */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
    /* LLMLingua / LongLLMLingua (reference/llmlingua.md; defaults are upstream's) */
    int32_t iterative_size;         /* token-level window, default 200 */
    double context_budget_mul;      /* coarse budget = target * mul + add; default 1 */
    double context_budget_add;      /* default 100 (upstream context_budget="+100") */
    double token_budget_ratio;      /* sentence-filter budget factor, default 1.4 */
    int use_context_filter;         /* default 1 */
    int use_sentence_filter;        /* default 0 */
    int use_token_filter;           /* default 1 */
    terse_condition condition_in_question; /* default NONE (LongLLMLingua: AFTER) */
    /* The next three default to -1, "the method's default": LongLLMLingua in default mode
     * uses the paper's recommended settings (contrastive scores on, SORT, 0.3); LLMLingua and
     * every compat run use upstream's compress_prompt defaults (off, ORIGINAL, 0). */
    int condition_compare;          /* contrastive token scores: 1 on, 0 off, -1 default */
    terse_reorder reorder;          /* TERSE_REORDER_AUTO by default */
    double dynamic_ratio;           /* dynamic_context_compression_ratio in [0, 1]; < 0 default */
    int add_instruction;            /* default 0 */
    int concate_question;           /* default 1 */
    int32_t keep_first_sentence, keep_last_sentence, keep_sentence_number; /* default 0 */
    double high_priority_bonus;     /* default 100 */
    const int32_t *force_context_ids; /* (n_force_context_ids) contexts always kept */
    int32_t n_force_context_ids;
    int keep_layout;                /* 1 (default), default mode: line ends are not ranked;
                                       the line ends between kept text are kept (paragraph
                                       breaks too unless the budget is tight; docs/compress.md).
                                       0: line ends are whitespace like any other */
} terse_compress_params;

terse_compress_params terse_compress_default_params(void);

typedef struct terse_result terse_result;

/* Compress prompt with the model of ctx (ctx's KV cache is used and left in any state).
 * On success *out owns a result (free with terse_result_free). Errors: TERSE_ERR_INVALID for
 * an empty prompt, a rate outside (0, 1], a negative target, a question without contexts
 * (LongLLMLingua), a bad regex or tag. A target at or above the prompt's size returns the
 * prompt unchanged with a warning. */
int  terse_compress(terse_ctx *ctx, const terse_prompt *prompt, terse_compress_params p,
                    terse_result **out);
void terse_result_free(terse_result *r);

typedef struct {
    int64_t origin_tokens;          /* the whole prompt, in the budget vocabulary */
    int64_t compressed_tokens;      /* the output, in the budget vocabulary */
    int64_t target_tokens;          /* the budget, in the budget vocabulary */
    int64_t origin_model_tokens;    /* in the scoring model's vocabulary */
    int64_t compressed_model_tokens;
    int64_t origin_count_tokens;    /* in count_vocab; -1 without one */
    int64_t compressed_count_tokens;
    double rate;                    /* achieved: compressed / origin (budget vocabulary) */
    double ratio;                   /* origin / compressed (1 when compressed is 0) */
    int64_t n_units, n_units_kept;  /* lexical units the method ranked, and kept */
    int over_budget;                /* 1: kept-whole text alone exceeds the target */
    double seconds;                 /* wall time of terse_compress */
    double seconds_model;           /* of which in the model's forward passes */
} terse_compress_stats;

/* The compressed prompt (NUL-terminated, owned by r); *len gets its length if len != NULL. */
const char *terse_result_text(const terse_result *r, size_t *len);
void terse_result_get_stats(const terse_result *r, terse_compress_stats *out);
/* A warning about the result ("" if none): budget not reachable, target above the prompt... */
const char *terse_result_warning(const terse_result *r);

/* Per-token detail (with params.return_tokens): the scoring model's tokens of the prompt as
 * assembled (tags removed, pieces joined with "\n\n"); spans point into terse_result_source. */
enum {
    TERSE_TOKEN_KEPT      = 1,      /* in the output */
    TERSE_TOKEN_PROTECTED = 2,      /* force token, digit, regex match */
    TERSE_TOKEN_FIXED     = 4,      /* instruction, question, separator, compress=False */
    TERSE_TOKEN_SEPARATOR = 8,      /* dropped, but one of its characters (a line end or a
                                       space) is in the output to keep kept text apart */
};
typedef struct {
    int32_t id;
    terse_span span;                /* bytes of terse_result_source() */
    float score;                    /* the method's score: surprisal in nats (NAN if unscored) */
    uint32_t flags;                 /* TERSE_TOKEN_* */
} terse_token_info;

const char *terse_result_source(const terse_result *r, size_t *len);
/* Number of tokens; *tokens (owned by r) gets the array. 0 without return_tokens. */
int64_t terse_result_tokens(const terse_result *r, const terse_token_info **tokens);

/* The result as a JSON object, with LLMLingua's field names where they overlap:
 * {"compressed_prompt", "origin_tokens", "compressed_tokens", "ratio": "2.0x",
 *  "rate": "50.0%", ...terse's own fields..., "tokens": [...] when with_tokens and present}.
 * *out is malloc'ed and NUL-terminated; free it with free(). */
int terse_result_json(const terse_result *r, int with_tokens, char **out);

/* The token heatmap of r as one self-contained HTML page (surprisal as colour, dropped tokens
 * struck through, protected and kept-whole tokens marked, a legend, the output below). Needs
 * the per-token detail (params.return_tokens). *out is malloc'ed (free() it). */
int terse_result_html(const terse_result *r, const char *title, char **out);

/* LongLLMLingua's recover(): map a response that an LLM produced under a compressed prompt back
 * to the original text. Each maximal run of response words (split on ' ') found verbatim in
 * the compressed prompt is matched, token by token in vocabulary v, to a span of the original
 * (same first token, each next token within 10 tokens, most tokens matched, then shortest) and
 * replaced by that span's original bytes; other words are copied. *out is malloc'ed and
 * NUL-terminated (free() it). */
int terse_compress_recover(const terse_vocab *v, const char *original, size_t original_len,
                           const char *compressed, size_t compressed_len, const char *response,
                           size_t response_len, char **out, size_t *out_len);

/* ========================================================================================== */
/* ========================================================================================== */
/* Evaluation                                                                                  */
/*
 * Metrics that compare what a model writes after a compressed prompt with what it writes
 * after the original (or with a reference answer), baselines that compress without a model,
 * and the harness behind `terse eval`. Each metric follows one published implementation,
 * named at its declaration; tests/test_eval_*.c check it against published reference values.
 *
 *     terse_dataset *d;  terse_dataset_load("items.jsonl", &d);
 *     terse_evaluate_params p = terse_evaluate_default_params();
 *     terse_report *r;
 *     if (terse_evaluate(ctx, ctx, d, &p, &r) == TERSE_OK) {    // compressor, target
 *         terse_report_write(r, "out/");     // report.json, report.md, *.svg, heatmaps
 *         terse_report_free(r);
 *     }
 *     terse_dataset_free(d);
 *
 * The metric functions are pure and thread-safe (terse_bertscore uses its ctx). Texts are
 * NUL-terminated UTF-8.
 */

typedef struct {
    double p, r, f;                 /* precision, recall, F1 (harmonic mean; 0 when p+r = 0) */
} terse_prf;

/* BLEU as sacreBLEU 2.x (Post 2018): tokenizer "13a" (mteval-v13a), case-sensitive, 1..4-grams
 * clipped by the largest count in any reference, the reference length closest to the
 * hypothesis (ties: the shorter), corpus statistics summed before scoring. */
typedef enum {
    TERSE_BLEU_SMOOTH_EXP   = 0,    /* sacreBLEU's default: 1/2^k for the k-th zero count */
    TERSE_BLEU_SMOOTH_NONE  = 1,
    TERSE_BLEU_SMOOTH_FLOOR = 2,    /* zero counts become `value` (default 0.1) */
    TERSE_BLEU_SMOOTH_ADD_K = 3,    /* add `value` (default 1) to the counts of n >= 2 */
} terse_bleu_smooth;

typedef struct {
    double correct[4], total[4];    /* matched and hypothesis n-grams, n = 1..4 */
    double sys_len, ref_len;        /* hypothesis tokens, closest reference tokens */
} terse_bleu_stats;

/* Add one hypothesis and its n_refs references to s (start from a zeroed struct). */
int terse_bleu_add(terse_bleu_stats *s, const char *hyp, const char *const *refs, int32_t n_refs);
/* BLEU in [0, 100] of accumulated statistics. value < 0: the smoothing's default value.
 * effective_order 1: average only over the orders that have hypothesis n-grams (what
 * sacrebleu.sentence_bleu does); 0: always 4 (corpus_bleu). */
double terse_bleu_score(const terse_bleu_stats *s, terse_bleu_smooth smooth, double value,
                        int effective_order);
/* sacrebleu.sentence_bleu(hyp, refs).score: exp smoothing, effective order. */
int terse_bleu_sentence(const char *hyp, const char *const *refs, int32_t n_refs, double *out);
/* The 13a tokenisation of text (tokens joined by single spaces), malloc'ed into *out. */
int terse_bleu_tokenize_13a(const char *text, char **out);

/* ROUGE-1, ROUGE-2 and ROUGE-L as Google's rouge-score (RougeScorer([...], use_stemmer)
 * .score(target, prediction)): lowercase, runs of characters outside [a-z0-9] split words,
 * with use_stemmer the Porter stemmer (libstemmer "porter") on words longer than 3 bytes;
 * ROUGE-N from clipped n-gram counts, ROUGE-L from the longest common subsequence. */
typedef struct {
    terse_prf rouge1, rouge2, rougeL;
} terse_rouge;

int terse_rouge_score(const char *target, const char *prediction, int use_stemmer,
                      terse_rouge *out);

/* WordNet 3.0 in its database form (index.POS, data.POS, POS.exc), as Debian's wordnet-base
 * installs it. Immutable after loading. dir NULL = $WNSEARCHDIR, else /usr/share/wordnet. */
typedef struct terse_wordnet terse_wordnet;
int  terse_wordnet_load(const char *dir, terse_wordnet **out);
void terse_wordnet_free(terse_wordnet *wn);
/* The synonyms of word as NLTK collects them for METEOR: the names (without '_') of the
 * lemmas of every synset of every base form that WordNet's morphy finds, over all parts of
 * speech, plus word itself. *out (malloc'ed) gets them sorted, unique, one per line; returns
 * their number or a negative status. */
int terse_wordnet_synonyms(const terse_wordnet *wn, const char *word, char **out);

/* METEOR as NLTK's single_meteor_score (3.8): lowercase, then exact, Porter-stem and WordNet
 * synonym matching stages (each aligning the remaining words right to left), alpha 0.9,
 * beta 3, gamma 0.5. wn NULL skips the synonym stage. On pre-split words: */
int terse_meteor_words(const terse_wordnet *wn, const char *const *ref, int32_t n_ref,
                       const char *const *hyp, int32_t n_hyp, double *out);
/* On texts: words are runs of letters/digits/apostrophes or single other non-space
 * characters (close to NLTK's word_tokenize on plain prose). */
int terse_meteor(const terse_wordnet *wn, const char *reference, const char *hypothesis,
                 double *out);

/* BERTScore-style F1 (Zhang et al. 2020, no idf, no baseline rescaling) with ctx's model as
 * the encoder: each text is run alone after BOS, its tokens' final hidden states (after the
 * output norm, the layer the LM head reads) are compared by cosine similarity; recall is the
 * mean over reference tokens of the best match among candidate tokens, precision the
 * converse. Clears ctx's cache. Empty texts give 0. */
int terse_bertscore(terse_ctx *ctx, const char *candidate, const char *reference,
                    terse_prf *out);

/* KL(p || q) = sum_i exp(logp_i) (logp_i - logq_i) in nats, from two log-softmax rows (n). */
double terse_kl(const float *logp, const float *logq, int32_t n);

/* The final answer of a GSM8K-style text: the number after the last "####" when there is
 * one, else the last number in the text; commas dropped, a trailing ".", ".0..." dropped,
 * a leading '+' dropped. Writes it NUL-terminated into buf (cap bytes); returns its length,
 * 0 when the text has no number, or a negative status (cap too small). */
int terse_final_answer(const char *text, char *buf, size_t cap);
/* 1 when the final answers of output and reference are the same number, else 0. */
int terse_exact_match(const char *output, const char *reference);

/* Baselines at the same budget as terse_compress (rate = fraction of the prompt's tokens in
 * v kept; instruction and question kept whole and counted): */
typedef enum {
    TERSE_BASELINE_RANDOM_TOKEN    = 0, /* drop random tokens */
    TERSE_BASELINE_RANDOM_PHRASE   = 1, /* drop random phrases (Selective Context's phrase
                                           units: noun chunks, other words, punctuation) */
    TERSE_BASELINE_RANDOM_SENTENCE = 2, /* drop random sentences */
    TERSE_BASELINE_TFIDF           = 3, /* keep the words of highest tf-idf (sentences of the
                                           prompt's contexts are the documents) */
    TERSE_BASELINE_NO_CONTEXT      = 4, /* negative control: instruction + question only */
    TERSE_BASELINE_FULL            = 5, /* positive control: the prompt unchanged */
} terse_baseline;

/* Compressed prompt into *out (malloc'ed, NUL-terminated; *len its length if len != NULL).
 * Same seed, same output. */
int terse_baseline_compress(const terse_vocab *v, const terse_prompt *prompt, terse_baseline b,
                            double rate, uint64_t seed, char **out, size_t *len);

/* Datasets: JSONL, one object per line with either "prompt" (a string: the one context) or
 * "instruction", "contexts" (string or array of strings), "question"; optional "reference"
 * (or "answer", or "output"): the expected answer. Blank lines are skipped. */
typedef struct terse_dataset terse_dataset;
int  terse_dataset_load(const char *path, terse_dataset **out);
int  terse_dataset_parse(const char *text, size_t len, terse_dataset **out);
void terse_dataset_free(terse_dataset *d);
int32_t terse_dataset_size(const terse_dataset *d);

/* Methods are named by strings: "selective-token", "selective-phrase", "selective-sentence",
 * "llmlingua", "longllmlingua", "random-token", "random-phrase", "random-sentence", "tfidf",
 * "none" (no context) and "full" (the original prompt; always run, it is the reference). */
typedef struct {
    const char *const *methods;     /* (n_methods); NULL = selective-phrase and random-phrase */
    int32_t n_methods;
    const double *rates;            /* (n_rates) fractions of tokens kept; NULL = 0.5 */
    int32_t n_rates;
    int32_t max_new_tokens;         /* target model's output length; default 64 */
    terse_sample_params sample;     /* decoding, the same for every prompt; default greedy */
    const char *stop;               /* output is cut at this string (e.g. "\n\n"); NULL none */
    uint64_t seed;                  /* random baselines; default 1 */
    int32_t limit;                  /* first limit items; 0 = all (default) */
    int32_t offset;                 /* skip the first offset items; default 0 */
    int compat;                     /* passed to terse_compress; default 0 */
    const terse_vocab *count_vocab; /* budgets (compressors and baselines) and counts also
                                       in this vocabulary (cl100k); NULL: the compressor's */
    const char *shared_context;     /* a context put before every item's contexts (few-shot
                                       demonstrations); NULL none */
    const char *shared_context_split; /* split shared_context at each occurrence of this
                                       string into several contexts (LLMLingua's GSM8K setup
                                       passes demonstrations split at "\n\n"); NULL none */
    const char *question_prefix;    /* wrapped around each item's question; NULL "" */
    const char *question_suffix;
    const char *wordnet_dir;        /* for METEOR; NULL default; missing: METEOR skipped */
    int keep_texts;                 /* 1 (default): outputs and prompts in the JSON report */
    int heatmaps;                   /* 1: HTML token heatmaps of the first item; default 1 */
    void (*progress)(void *user, int64_t done, int64_t total); /* per prompt run */
    void *progress_user;
} terse_evaluate_params;

terse_evaluate_params terse_evaluate_default_params(void);

typedef struct terse_report terse_report;

/* Run the evaluation: for each item, the target writes (same decoding) after the full
 * prompt and after each method x rate compression (by compressor's model); each output is
 * scored against the full prompt's output (BLEU, ROUGE-1/2/L, METEOR, BERTScore with the
 * target model, KL of next-token distributions along the full prompt's output) and, when the
 * item has a reference, against it (exact match of the final number, ROUGE-L).
 * An item without contexts gives the compressors its full prompt; a method that refuses an
 * item (LongLLMLingua without a question) is skipped for it; the report notes both, and
 * prompts longer than the target's context (their most recent tokens are kept).
 * compressor and target may be the same context. Deterministic for a given seed. */
int terse_evaluate(terse_ctx *compressor, terse_ctx *target, const terse_dataset *d,
                   const terse_evaluate_params *p, terse_report **out);
void terse_report_free(terse_report *r);

/* The report as JSON (params, per method x rate means, per item rows), as a Markdown table,
 * and one SVG plot of a metric ("bleu", "rouge1", "rouge2", "rougeL", "meteor",
 * "bertscore", "kl", "exact_match", "rate", "latency") against the rate, one line per
 * method. Each *out is malloc'ed, NUL-terminated; free() it. */
int terse_report_json(const terse_report *r, char **out);
int terse_report_markdown(const terse_report *r, char **out);
int terse_report_svg(const terse_report *r, const char *metric, char **out);
/* All of the above into dir (created if missing): report.json, report.md, <metric>.svg. */
int terse_report_write(const terse_report *r, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* TERSE_H */
