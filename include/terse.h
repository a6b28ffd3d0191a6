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
    TERSE_VOCAB_UGM       = 5, /* SentencePiece Unigram (XLM-RoBERTa), Hugging Face's pipeline */
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
    int n_threads;      /* threads for loading work (packing, below); 0 = all cores (default) */
    int pack;           /* 1 (default): F32 weight matrices of a mapped file are copied once
                           into the matrix product's own layout (faster products; the mapped
                           pages are given back, so memory does not double); 0: every matrix
                           is read in place, as other types and use_mmap 0 always are. The
                           log-probabilities of a prompt are the same bits either way. */
} terse_model_params;

terse_model_params terse_model_default_params(void);
/* Load a GGUF model (architectures llama, qwen2, gpt2; tensor types F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, mixed freely).
 * Every tensor's presence, type and shape is checked against the hyper-parameters; errors
 * name the tensor or key with expected and actual values (TERSE_ERR_FORMAT), an unknown
 * architecture or type gives TERSE_ERR_UNSUPPORTED. The model keeps the file mapped. */
int  terse_model_load(const char *path, terse_model_params p, terse_model **out);
void terse_model_free(terse_model *m);

/* The model's vocabulary (owned by the model; NULL if the file carries none). */
const terse_vocab *terse_model_vocab(const terse_model *m);

typedef struct {
    const char *arch;   /* "llama", "qwen2", "qwen3", "gpt2", "phi2", "phi3", "gemma", "gemma2" */
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
    /* read (any of them) and written: */
    TERSE_TYPE_Q4_0 = 2, TERSE_TYPE_Q4_1 = 3, TERSE_TYPE_Q5_0 = 6, TERSE_TYPE_Q5_1 = 7,
    TERSE_TYPE_Q4_K = 12, TERSE_TYPE_Q5_K = 13, TERSE_TYPE_Q6_K = 14,
    /* read only: */
    TERSE_TYPE_Q2_K = 10, TERSE_TYPE_Q3_K = 11, TERSE_TYPE_IQ4_NL = 20, TERSE_TYPE_IQ4_XS = 23,
    /* written: llama-quantize's mixtures (1000 + llama.cpp's file type) */
    TERSE_TYPE_Q4_K_M = 1015, TERSE_TYPE_Q5_K_M = 1017,
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
    int32_t n_threads;  /* threads for all of the context's work; 0 = all cores; at most
                           1024. Bounds terse's pool and OpenBLAS's: the matrix products run
                           on at most n_threads OpenBLAS threads (openblas_set_num_threads,
                           process-wide, set by the context when it is created and before its
                           passes; OPENBLAS_NUM_THREADS only sizes what OpenBLAS starts at
                           load). With 1, OpenBLAS's idle workers are stopped too: the
                           process runs one thread. Contexts of different n_threads used at
                           the same moment from several threads share the setting of the
                           first pass in (it is never changed under a running product). */
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
 * cache holds (terse_kv_clear first for a fresh start); n_prompt 0 continues right after the
 * last terse_eval (e.g. terse_soft_prefix), from its last position. Writes up to n_max new ids, stops at
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
 * permuted to llama.cpp's rotary layout), Qwen2ForCausalLM (-> `qwen2`), Qwen3ForCausalLM
 * (-> `qwen3`), GPT2LMHeadModel (-> `gpt2`), PhiForCausalLM (-> `phi2`), Phi3ForCausalLM
 * (-> `phi3`), GemmaForCausalLM, Gemma2ForCausalLM (-> `gemma`, `gemma2`). A tied output
 * projection is not written (the runtime uses token_embd). Llama 3 rope scaling becomes
 * llama.cpp's rope_freqs tensor, linear scaling and sliding windows their keys; other rope
 * scaling (yarn, longrope, ...) and unknown tensors are refused (TERSE_ERR_UNSUPPORTED). */
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
    const char *arch;   /* "llama", "qwen2", "qwen3", "gpt2", "phi2", "phi3", "gemma", "gemma2" */
    int32_t n_vocab, n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff; /* n_head_kv 0 = n_head */
    terse_type type;    /* F32, F16, BF16 or Q8_0 */
    uint64_t seed;
    float init_std;     /* 0 = 0.02 */
    int32_t tie_output; /* 0 = arch default (gpt2, gemma, gemma2 tied, others separate),
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
    TERSE_METHOD_LLMLINGUA2    = 3, /* token classification by an encoder (BERT / XLM-R) */
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
    /* LLMLingua-2 (TERSE_METHOD_LLMLINGUA2; the model is a converted token classifier, see
       terse_convert_hf). force_tokens (upstream's usual: "\n", "?"; the CLI's default),
       keep_digits (force_reserve_digit), use_context_filter, use_token_filter and
       force_context_ids apply as well. compat needs count_vocab = cl100k (upstream counts with
       tiktoken) and, like upstream, leaves the instruction and question out of the output. */
    int drop_consecutive;           /* repeated force tokens with nothing kept between are
                                       dropped; default 0 */
    int token_to_word_first;        /* word score = its first token's (1) or the mean (0,
                                       default) */
    double context_level_rate;      /* context filter keep rate; default 1 = derived from rate
                                       as upstream: (rate + 1) / 2 */
    int32_t target_context;         /* contexts to keep; default -1 (upstream's) = rate-based */
    const char *const *chunk_end_tokens; /* (n_chunk_end_tokens) pieces a 512-token chunk may
                                       end after; NULL = upstream's {".", "\n"} */
    int32_t n_chunk_end_tokens;
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
 * to the original text. Each maximal run of response words (separated by blanks: spaces, tabs,
 * line ends; the blanks are copied as they are) found verbatim in the compressed prompt is
 * matched, token by token in vocabulary v, to a span of the original (same first token, each
 * next token within 10 tokens, most tokens matched, then shortest; the run is tried with and
 * without a leading space) and replaced by that span's original bytes when at least half of
 * its tokens matched; other words are copied. Near-linear time in the three lengths. *out is
 * malloc'ed and NUL-terminated (free() it). */
int terse_compress_recover(const terse_vocab *v, const char *original, size_t original_len,
                           const char *compressed, size_t compressed_len, const char *response,
                           size_t response_len, char **out, size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Soft prompts (conditioning contexts, Wingate et al. 2022)                                   */
/*
 * A soft prompt is N learned input vectors that make a frozen model behave as it does after a
 * long prompt. It is used in place of the prompt's text: the model reads BOS (when its
 * vocabulary has one), then the N vectors, then whatever follows.
 *
 *     terse_distill_params p = terse_distill_default_params();
 *     p.n_tokens = 8;
 *     terse_soft *s;
 *     if (terse_distill(model, prompt, strlen(prompt), &p, &s) == TERSE_OK) {
 *         terse_soft_save(s, "prompt.soft.gguf");
 *         terse_soft_prefix(ctx, s);            // cache = BOS + the 8 vectors
 *         terse_generate(ctx, ids, n, sp, out, 64);
 *         terse_soft_free(s);
 *     }
 *
 * Training (terse_distill): continuations x are sampled from the model after the full prompt
 * (or taken from the caller's text), the teacher's next-token distributions p(.|prompt, x_<t)
 * are computed once, and the N vectors are fitted by AdamW to minimise the mean over x's
 * positions of KL(p(.|prompt, x_<t) || q(.|soft, x_<t)) (reverse = 1: KL(q || p), the
 * direction of the paper's code). The file is a GGUF holding the N x n_embd F32 tensor and
 * what it belongs to (architecture, shape and a hash of the model's embedding matrix), a hash
 * of the prompt, the settings and the KL reached; a file made for another model is refused.
 */
typedef struct terse_soft terse_soft;

typedef enum {
    TERSE_SOFT_INIT_PROMPT = 0,     /* embeddings of the prompt's tokens, evenly spaced */
    TERSE_SOFT_INIT_RANDOM = 1,     /* embeddings of random vocabulary tokens (the paper's) */
} terse_soft_init;

typedef struct {
    int32_t n_tokens;               /* N soft vectors, >= 1; default 8 */
    int32_t steps;                  /* optimiser steps; default 100 */
    int32_t batch;                  /* continuations per step; default 4 */
    int32_t n_samples;              /* sampled continuations (teacher rows computed once);
                                       default 32 */
    int32_t cont_len;               /* tokens per continuation; default 32 */
    float temperature;              /* sampling of continuations; default 1 */
    float lr;                       /* peak learning rate (AdamW); default 0.02 */
    float warmup;                   /* fraction of steps of linear warm-up; default 0.05 */
    float weight_decay;             /* default 0 */
    float clip;                     /* gradient norm clipping; 0 = off; default 1 */
    int reverse;                    /* 1: KL(q_soft || p_prompt); default 0: KL(p || q) */
    terse_soft_init init;           /* default TERSE_SOFT_INIT_PROMPT */
    uint64_t seed;                  /* sampling, batches, random init; default 1 */
    const char *data;               /* NULL: sample continuations; else the caller's text:
                                       its first n_samples lines of at least cont_len tokens,
                                       each cut to cont_len, are the continuations */
    size_t data_len;
    int keep_text;                  /* 1 (default): store the prompt's text in the file (the
                                       probe reads it); 0: only its hash */
    int32_t n_threads;              /* 0 = all cores */
    /* Called after every step from the calling thread. */
    void (*progress)(void *user, int32_t step, int32_t steps, double loss, double eta_seconds);
    void *progress_user;
} terse_distill_params;

terse_distill_params terse_distill_default_params(void);

/* Learn a soft prompt for prompt[0..len) with model m. Errors (TERSE_ERR_INVALID): an empty
 * prompt, n_tokens < 1, batch/steps/n_samples/cont_len < 1, a data text with no line;
 * TERSE_ERR_RANGE: N + the prompt or N + cont_len + 1 above the model's context.
 * TERSE_ERR_UNSUPPORTED when the library was built without gradients. */
int terse_distill(const terse_model *m, const char *prompt, size_t len,
                  const terse_distill_params *p, terse_soft **out);

/* A soft prompt from n vectors (n x n_embd floats, copied) for model m (random baselines,
 * tests). prompt may be NULL. */
int terse_soft_from_vectors(const terse_model *m, const float *v, int32_t n, const char *prompt,
                            size_t prompt_len, terse_soft **out);

/* Write s as a GGUF file: to a temporary file beside path, renamed over path only when
 * complete (a failure leaves nothing behind). */
int terse_soft_save(const terse_soft *s, const char *path);
/* Read a soft prompt file and check it belongs to m (architecture, n_embd, n_vocab, hash of
 * the embedding matrix): TERSE_ERR_INVALID naming both models when not; TERSE_ERR_FORMAT for a
 * truncated or malformed file. */
int terse_soft_load(const char *path, const terse_model *m, terse_soft **out);
void terse_soft_free(terse_soft *s);

typedef struct {
    int32_t n_tokens, n_embd;
    const char *arch;               /* of the model it was made for */
    const char *model_name;
    uint64_t embd_hash;             /* FNV-1a 64 of the model's token embedding tensor bytes */
    uint64_t prompt_hash;           /* FNV-1a 64 of the prompt's bytes (0: unknown) */
    int32_t prompt_tokens;          /* prompt's tokens without BOS (0: unknown) */
    const char *prompt;             /* the prompt's text, or NULL when not stored */
    size_t prompt_len;
    double kl_initial, kl_final;    /* loss over all training continuations before and after
                                       training (NAN: unknown) */
    int32_t steps;
    double seconds;                 /* wall time of the distillation */
    const char *settings;           /* "key=value ..." of the distillation ("" if none) */
} terse_soft_info;

void terse_soft_get_info(const terse_soft *s, terse_soft_info *out);
/* The N x n_embd vectors (owned by s). */
const float *terse_soft_vectors(const terse_soft *s);

/* Clear c's cache and evaluate BOS (when the vocabulary has one) and s's vectors: what follows
 * (terse_eval, terse_generate) is read after the soft prompt. Returns the cache length
 * (N + 1 with BOS) or a negative status (another model: TERSE_ERR_INVALID). */
int terse_soft_prefix(terse_ctx *c, const terse_soft *s);

/* Surprisal of every token after the soft prompt: out[i] = -log p(ids[i] | BOS, soft, ids[0..i))
 * in nats (out[0] included: the soft prompt predicts the first token). Clears the cache. */
int terse_soft_score(terse_ctx *c, const terse_soft *s, const int32_t *ids, int32_t n, float *out);

/* Mean KL per position, over n_samples continuations of cont_len tokens sampled (seeded,
 * temperature 1) from the model after BOS + prompt, between the next-token distributions
 * after the full prompt and after a condition: the soft prompt s, or else the text cond
 * (NULL or "" = BOS alone). reverse as in terse_distill_params. The continuations do not
 * depend on the condition, so the same seed compares conditions on the same x. */
int terse_soft_kl(terse_ctx *c, const char *prompt, size_t len, const terse_soft *s,
                  const char *cond, size_t cond_len, int32_t n_samples, int32_t cont_len,
                  uint64_t seed, int reverse, double *kl);

/* The reconstruction probe: each token x_i of a text scored after R = "Now repeat the text:"
 * under three prefixes, none (BOS + R), hard (BOS + text + R) and each added row (BOS + soft
 * prompt + R, or BOS + a text + R), normalised per token:
 *   prob space  (p_row - p_none) / (p_hard - p_none)
 *   log space   (log p_row - log p_none) / (log p_hard - log p_none)
 * The mean normalised score of a row averages the per-token values clamped to [0, 1] over
 * the tokens where the hard prompt changes the probability (|p_hard - p_none| > 1e-3 in prob
 * space, |log ratio| > 1e-3 in log space). */
typedef struct terse_probe terse_probe;
int  terse_probe_new(terse_ctx *c, const char *text, size_t len, terse_probe **out);
/* Add a row: a soft prompt, or (soft NULL) a text prefix (a hard compression). */
int  terse_probe_add(terse_probe *p, terse_ctx *c, const char *label, const terse_soft *soft,
                     const char *prefix, size_t prefix_len);
int32_t terse_probe_rows(const terse_probe *p);
/* Row r: label, mean normalised scores, and per-token arrays (n_tokens, owned by p). */
int  terse_probe_row(const terse_probe *p, int32_t r, const char **label, double *mean_prob,
                     double *mean_log, const float **norm_prob, const float **norm_log);
/* The text's tokens: count, spans into text (owned by p). */
int32_t terse_probe_tokens(const terse_probe *p, const terse_span **spans);
/* An HTML page: one heatmap line per row (tokens coloured by their normalised score, purple 0
 * to yellow 1, prob or log space), a legend and the means. *out malloc'ed. */
int  terse_probe_html(const terse_probe *p, const char *title, int log_space, char **out);
void terse_probe_free(terse_probe *p);
/* A compression request as one JSON object: the prompt `terse compress` reads as JSON plus
 * options, named as LLMLingua's compress_prompt keywords where they exist. Prompt:
 * "context" (or "contexts", "prompt": a string or a list of strings), "instruction",
 * "question". Options: "method" (selective | llmlingua | longllmlingua), "unit" (token | phrase
 * | sentence), "rate", "target_token" (or "target"; -1 = none), "force_tokens", "protect"
 * (regexes), "keep_digits" (or "force_reserve_digit"), "compat", "structured", "keep_layout",
 * "return_tokens", "carry", "iterative_size", "use_context_level_filter",
 * "use_sentence_level_filter", "use_token_level_filter", "condition_in_question" (none |
 * before | after, "_condition" adds condition_compare), "condition_compare",
 * "reorder_context" (original | sort | two_stage), "dynamic_context_compression_ratio",
 * "add_instruction", "concate_question", "keep_first_sentence", "keep_last_sentence",
 * "keep_sentence_number", "high_priority_bonus", "token_budget_ratio", "context_budget"
 * ("+N", "*N" or "*N+M"), "force_context_ids". Wrong types, values out of range, duplicate
 * keys and invalid JSON or UTF-8 give TERSE_ERR_INVALID with a message naming the field. */
typedef struct terse_request terse_request;
#define TERSE_REQUEST_STRICT 1      /* flag: unknown fields are errors (else ignored) */
#define TERSE_REQUEST_COMPACT 2     /* flag (terse_compress_json): the result on one line */
int  terse_request_parse(const char *json, size_t len, int flags, terse_request **out);
void terse_request_free(terse_request *q);
/* The prompt and the parameters (defaults + the request's options; count_vocab NULL). Both
 * borrow from q. */
const terse_prompt *terse_request_prompt(const terse_request *q);
terse_compress_params terse_request_params(const terse_request *q);
/* Parse, compress with ctx, and write terse_result_json (with tokens when the request says
 * "return_tokens") into *out (malloc'ed; free() it): what `terse serve`, `terse batch` and the
 * Python module call. count_vocab may be NULL. */
int terse_compress_json(terse_ctx *ctx, const char *request, size_t len, int flags,
                        const terse_vocab *count_vocab, char **out);

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
 * "none" (no context), "full" (the original prompt; always run, it is the reference),
 * "soft" (params.soft before the prompt, in place of the shared context), and for a target
 * with a gist token (terse finetune --gist K) "gist" (the item's instruction as gist_k cached
 * gist tokens, the input after them, in the gist template; items' "input" is their context)
 * and "gist-full" (the same template with the instruction in full). */
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
    const terse_soft *soft;         /* method "soft": this soft prompt (for the target model)
                                       in place of shared_context; NULL none */
    int32_t gist_k;                 /* methods "gist", "gist-full": gist tokens; 0 (default):
                                       the K the target was trained with (terse_model_gist_k) */
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

/* ------------------------------------------------------------------------------------------ */
/* Gist tokens (Mu et al. 2023)                                                                */
/*
 * Fine-tune a model so that K copies of a new token <GIST> placed after an instruction absorb
 * it: every token after the last gist sees the gists and later tokens only (the gist mask).
 * A model without a gist token first gets one (embedding = the mean embedding) and F32
 * weights, written to init_path. Data: JSONL lines {"instruction", "input", "output"}; each
 * becomes [BOS] "Instruction: {instruction}\n" <GIST>xK ["\nInput: {input}"] "\nOutput:"
 * " {output}" EOS (pieces tokenised separately), loss on the response and EOS only; lines
 * longer than max_len tokens are skipped. The examples are shuffled (seed) once; step s takes
 * the next batch of them in that order (examples_path writes them, one per line
 * "n first last n_prompt ids...", for tools/gist_train.py). AdamW on every weight (linear
 * warm-up, cosine to min_lr, clipping); state_path makes it resumable (bit for bit).
 */
typedef struct {
    const char *model_path;     /* base model or gist model */
    const char *data;           /* JSONL text (not necessarily NUL-terminated) */
    size_t data_len;
    const char *out_path;       /* the trained model (F32); NULL (and no state_path): only
                                   the gist model and the examples are written, no training */
    const char *init_path;      /* where the gist model made from a base goes; NULL: out_path
                                   + ".init.gguf" */
    const char *state_path;     /* AdamW state (resumed from when it exists); NULL: none */
    const char *examples_path;  /* tokenised examples in training order; NULL: none */
    const char *mask;           /* "gist" (default), "pos" or "neg" (the controls) */
    int32_t K;                  /* gist tokens, 1..64 (0 = no gist token: controls only) */
    int32_t max_len;            /* 0 = 256 */
    int32_t max_examples;       /* 0 = all */
    int32_t steps, batch;       /* 0 = 100, 0 = 8 */
    int32_t save_every;         /* 0 = at the end only */
    int32_t warmup;             /* steps */
    float lr, min_lr, weight_decay, clip;  /* lr 0 = 1e-4 */
    uint64_t seed;
    int32_t n_threads;
    int (*progress)(void *ud, int32_t step, double loss, double grad_norm, float lr);
    void *ud;
} terse_finetune_params;

terse_finetune_params terse_finetune_default_params(void);
/* Returns TERSE_OK or a negative status (message in terse_last_error()). n_examples (may be
 * NULL) receives the number of examples used. */
int terse_finetune(const terse_finetune_params *p, int32_t *n_examples);
/* The shipping copy of a trained (F32) model: its matrices as `type` (any type terse_convert_hf
 * writes but F32, mixtures included; 0 = Q8_0), the rest unchanged; K > 0 records the number
 * of gist tokens it was trained with ("terse.gist.k"), 0 keeps in's. */
int terse_gist_model_quantize(const char *in_path, const char *out_path, int32_t K, terse_type type);
/* The number of gist tokens a gist model was trained with ("terse.gist.k"); 1 for a gist model
 * that does not record it, 0 for a model without a gist token. */
int32_t terse_model_gist_k(const terse_model *m);

/* Gist caching: the K gist tokens' keys and values at every layer after
 * [BOS] "Instruction: {instruction}\n" <GIST>xK, computed once (terse_gist_compute), stored
 * (terse_gist_save: a GGUF file with the model's and the instruction's hashes, the position
 * where the input continues) and reused (terse_gist_apply: the context's cache becomes the K
 * entries; the next token gets the position after the last gist, as in training). Then feed
 * "\nInput: {input}\nOutput:" (terse_gist_input_ids) and generate. A gist file made with
 * another model (architecture, shape, or any weight's bytes: an FNV-1a hash of every tensor)
 * is refused with TERSE_ERR_INVALID naming both; a truncated or altered file gives
 * TERSE_ERR_FORMAT. The model needs a gist token (terse.gist.token_id). */
typedef struct terse_gist terse_gist;

int  terse_gist_compute(terse_ctx *c, const char *instruction, size_t len, int32_t K,
                        terse_gist **out);
int  terse_gist_save(const terse_gist *g, const char *path);
int  terse_gist_load(const terse_model *m, const char *path, terse_gist **out);
int  terse_gist_apply(terse_ctx *c, const terse_gist *g);
void terse_gist_free(terse_gist *g);
int32_t terse_gist_k(const terse_gist *g);
int32_t terse_gist_instruction_tokens(const terse_gist *g); /* BOS + instruction line */
int32_t terse_gist_next_pos(const terse_gist *g);
/* Token ids of "\nInput: {input}\nOutput:" ("\nOutput:" when input is empty) into ids
 * (cap); returns the count or a negative status (as terse_tokenize: cap 0 counts). */
int64_t terse_gist_input_ids(const terse_model *m, const char *input, size_t len, int32_t *ids,
                             int64_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TERSE_H */
