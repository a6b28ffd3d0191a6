/* vocab.h - the vocabulary struct shared by the tokenizer files (internal, not API).
 *
 * A terse_vocab holds the token pieces exactly as the file stores them (GGUF tokenizer.ggml.*
 * or a .tiktoken rank file), a piece -> id hash, the special ids and flags, and the state each
 * tokenizer needs (BPE merge table, pre-tokenizer regexes, SentencePiece byte tokens, the
 * WordPiece state that wpm.c owns). It is immutable after loading.
 *
 * Who does what:
 *   vocab.c    loading from GGUF / .tiktoken, lookups, the public terse_vocab_* calls,
 *              terse_tokenize / terse_token_count / terse_detokenize and the special-token split
 *   bpe.c      byte-level BPE (gpt2 model, tiktoken): pre-tokenizer regexes + rank merging
 *   spm.c      SentencePiece-style BPE (llama model): scores, dummy prefix, byte fallback
 *   wpm.c      WordPiece (bert model)
 *   cache.c    a per-call word cache used by bpe.c and spm.c
 *   hf_import.c Hugging Face tokenizer files -> tokenizer.ggml.* metadata (tok.h)
 *
 * Spans: every encoder appends (id, begin, end) triples to a tok_buf, with begin/end byte
 * offsets into the caller's full input (not the fragment), so that the triples of one call
 * tile the input exactly.
 */
#ifndef TERSE_TOK_VOCAB_H
#define TERSE_TOK_VOCAB_H

#include "base/base.h"
#include "tok/tok.h"

/* GGUF tokenizer.ggml.token_type values. */
enum {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL    = 1,
    TOK_TYPE_UNKNOWN   = 2,
    TOK_TYPE_CONTROL   = 3,
    TOK_TYPE_USER      = 4,  /* user-defined: always matched in raw text */
    TOK_TYPE_UNUSED    = 5,
    TOK_TYPE_BYTE      = 6,  /* <0xXX> byte-fallback token */
};

/* ------------------------------------------------------------------------------------------ */
/* Output buffer: grows as needed; ids and spans side by side.                                */

typedef struct {
    int32_t *ids;        /* (cap) */
    terse_span *spans;   /* (cap) */
    int64_t n, cap;
} tok_buf;

/* Append one token with its input span [begin, end). TERSE_OK or TERSE_ERR_NOMEM. */
int  tok_buf_push(tok_buf *b, int32_t id, int64_t begin, int64_t end);
void tok_buf_free(tok_buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Hash tables                                                                                 */

/* Open addressing, linear probing: slots hold token ids, -1 = empty. */
typedef struct {
    int32_t *slot;       /* (mask + 1) */
    uint64_t mask;
} tok_hash;

uint64_t tok_hash_bytes(const uint8_t *s, size_t n);
/* A table for n keys (at most half full); TERSE_ERR_NOMEM on failure. */
int  tok_hash_init(tok_hash *h, int64_t n);
/* Insert id under key keys[id][0..lens[id]); an equal key already there is replaced (the last
 * id wins, as in llama.cpp's token_to_id map). */
void tok_hash_put(tok_hash *h, char *const *keys, const uint32_t *lens, int32_t id);

/* Merge table for byte-level BPE: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key;        /* (left << 32) | right; UINT64_MAX = empty */
    int32_t rank;
    int32_t id;
} tok_merge;

/* Pre-tokenizer: a list of PCRE2 regexes applied in turn (HF "Sequence" of Split), compiled
 * with JIT. Defined in bpe.c. */
typedef struct tok_pretok tok_pretok;

/* ------------------------------------------------------------------------------------------ */
/* The vocabulary                                                                              */

struct terse_vocab {
    terse_vocab_type type;
    int32_t n_tokens;
    char model[32];          /* tokenizer.ggml.model: "gpt2", "llama", "bert", "tiktoken" */
    char pre[64];            /* tokenizer.ggml.pre ("default" when absent) */

    /* Token pieces as stored, each NUL-terminated (a piece may contain NUL: use the length). */
    char *arena;             /* all pieces, one allocation */
    char **piece;            /* (n_tokens) pointers into the arena */
    uint32_t *piece_len;     /* (n_tokens) bytes */
    float *score;            /* (n_tokens) tokenizer.ggml.scores, 0 when absent */
    uint8_t *ttype;          /* (n_tokens) TOK_TYPE_*, NORMAL when absent */
    tok_hash by_piece;       /* piece -> id */

    /* Special ids, -1 when absent. */
    int32_t bos, eos, unk, sep, pad, cls, mask, eot, eom;
    int add_bos, add_eos;    /* tokenizer.ggml.add_bos_token / add_eos_token */
    int add_space_prefix;    /* SPM dummy prefix (tokenizer.ggml.add_space_prefix) */

    /* Special-token split: control / user-defined / unknown tokens matched in the raw text
     * before pre-tokenization, longest first. */
    int32_t *special;        /* (n_special) ids, grouped by first byte, longest first */
    int32_t n_special;
    int32_t special_at[257]; /* special[special_at[c] .. special_at[c+1]) start with byte c */

    /* Byte-level BPE and tiktoken. */
    char **raw;              /* (n_tokens) the bytes a token stands for (byte-level decoded),
                              * NULL for tokens that are not byte-level (added tokens) */
    char *raw_arena;         /* owned by bpe.c when pieces needed decoding, else NULL */
    uint32_t *raw_len;       /* (n_tokens) */
    tok_hash by_raw;         /* raw bytes -> id (byte-level tokens only) */
    tok_merge *merges;       /* (merge_mask + 1) GGUF merges, empty for tiktoken */
    uint64_t merge_mask;
    int32_t n_merges;
    int32_t byte_id[256];    /* id of the token for one input byte (BPE: byte-level alphabet,
                              * SPM: <0xXX>), -1 when absent */
    int ignore_merges;       /* llama3: a pre-token that is a whole vocab entry is one token */
    tok_pretok *pretok;

    /* SentencePiece: merge word by word (no token has a "▁" after another character). */
    int spm_word_split;

    /* WordPiece: state owned by wpm.c (tok_wpm_init sets it, freed with wpm_free). */
    int wpm_phantom;         /* pieces spell word starts "\u2581x" (llama.cpp), not "x"/"##x" */
    int wpm_cased;           /* no accent stripping, no lowercasing (tokenizer.terse.lowercase
                              * false: cased BERT such as bert-base-multilingual-cased) */
    void *wpm;
    void (*wpm_free)(void *);

    /* Unigram (model "t5"): state owned by ugm.c (tok_ugm_init sets it). */
    void *ugm;
    void (*ugm_free)(void *);
};

/* ------------------------------------------------------------------------------------------ */
/* Lookups                                                                                     */

/* Id of the token whose stored piece is s[0..len), or -1. */
int32_t tok_find(const terse_vocab *v, const char *s, size_t len);
/* Id of the byte-level token whose raw bytes are s[0..len), or -1 (BPE / tiktoken only). */
int32_t tok_find_raw(const terse_vocab *v, const uint8_t *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Word cache for one call (cache.c): word bytes -> tokens with spans relative to the word. */

typedef struct {
    int32_t id;
    uint32_t begin, end;
} tok_piece;

typedef struct tok_cache tok_cache;

tok_cache *tok_cache_new(void);          /* NULL on failure: get/put then do nothing */
void tok_cache_free(tok_cache *c);
const tok_piece *tok_cache_get(tok_cache *c, const uint8_t *w, size_t n, uint32_t *count);
void tok_cache_put(tok_cache *c, const uint8_t *w, size_t n, const tok_piece *t, uint32_t k);

/* ------------------------------------------------------------------------------------------ */
/* Encoders. Each encodes text[0..len) (a fragment with no special tokens in it) whose first
 * byte is at offset `base` in the caller's input, appending to out. */

/* bpe.c */
int  tok_bpe_init(terse_vocab *v);    /* after pieces/merges are loaded: pre-tokenizer, bytes */
void tok_bpe_free(terse_vocab *v);
int  tok_bpe_encode(const terse_vocab *v, const uint8_t *text, size_t len, int64_t base,
                    tok_buf *out);

/* The pre-tokenizer `pre` alone: the words of text[0..len), appended to out as spans (id -1).
 * For tests and tools; TERSE_ERR_UNSUPPORTED for an unknown name. */
int tok_pretok_split(const char *pre, const uint8_t *text, size_t len, tok_buf *out);
/* The regex sequence of `pre` (as written, before \s is spelled out): count and *re, or -1
 * for an unknown name. */
int tok_pretok_regexes(const char *pre, const char *const **re, int *ignore_merges);

/* spm.c. first_fragment: the fragment starts the input or follows a special token (the dummy
 * prefix is added then, as llama.cpp does). */
int  tok_spm_init(terse_vocab *v);
int  tok_spm_encode(const terse_vocab *v, const uint8_t *text, size_t len, int64_t base,
                    int first_fragment, tok_buf *out);

/* wpm.c (T2). Spans in out are relative to text (base 0); the dispatcher shifts them. */
int tok_wpm_init(terse_vocab *v);
int tok_wpm_encode(const terse_vocab *v, const uint8_t *text, size_t len, tok_buf *out);

/* ugm.c: Unigram (SentencePiece via Hugging Face). charsmap: the precompiled charsmap (may be
 * empty); ops: the normalizer ops (see ugm.c); prepend: Metaspace 0 never, 1 always, 2 first.
 * Spans in out are absolute (base added). */
int tok_ugm_init(terse_vocab *v, const uint8_t *charsmap, size_t charsmap_len,
                 const char *const *ops, const size_t *op_len, int n_ops, int prepend);
int tok_ugm_encode(const terse_vocab *v, const uint8_t *text, size_t len, int64_t base,
                   int at_input_start, tok_buf *out);
/* The Metaspace prepend scheme of a Unigram vocabulary: 0 never, 1 always, 2 first. */
int tok_ugm_prepend_scheme(const terse_vocab *v);

#endif
