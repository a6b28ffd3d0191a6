/* bpe.c - byte-level BPE: the `gpt2` tokenizer model of GGUF files and tiktoken rank files.
 *
 * The story: a fragment of text (no special tokens in it) is cut into words by the
 * pre-tokenizer that the vocabulary names (tokenizer.ggml.pre): a sequence of Unicode regexes
 * (PCRE2, JIT-compiled), each applied to every piece the previous one produced, keeping both
 * the matches and the gaps between them (Hugging Face's Split with behaviour "Isolated").
 * Each word is then byte-pair merged: one symbol per input byte, adjacent pairs ranked by the
 * merge list (GGUF) or by the rank of the concatenated bytes (tiktoken), the lowest rank merged
 * first (leftmost on ties) through a binary heap over a linked list of symbols: O(n log n) for
 * a word of n bytes, with no per-token allocation. Every token carries the input bytes it
 * covers, so spans come for free. Words repeat: a per-call cache (cache.c) remembers the
 * tokens of recent words.
 *
 * The regexes are the Hugging Face / tiktoken strings, with \s spelled out as Unicode's
 * White_Space set before compiling (PCRE2 alone would also count U+180E as a space).
 *
 * Invalid UTF-8 never fails: PCRE2_MATCH_INVALID_UTF makes invalid bytes unmatchable, so they
 * fall into gaps and are merged like any other byte through the byte-level alphabet.
 *
 * Not here: special tokens (vocab.c splits them out first), SentencePiece (spm.c).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>

/* ========================================================================================== */
/* Pre-tokenizers: regex sequences by tokenizer.ggml.pre name                                  */

/* GPT-2's ByteLevel regex (HF tokenizers, tiktoken r50k). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Llama 3 and cl100k: case-insensitive contractions, digits in groups of 1-3. */
#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" \
                  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2: as Llama 3 but every digit alone. */
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" \
                 " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* BLOOM, Poro, GPT-3 Finnish: runs of anything but spaces and sentence punctuation (the
 * parentheses and | are members of the class, as published). */
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"
/* DeepSeek's CJK run. */
#define RE_CJK "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
/* Tekken (Mistral Nemo) and o200k (GPT-4o, Llama 4): case-aware words, as in tokenizer.json
 * (llama.cpp rewrites the \p{Lu}... classes for its own engine; PCRE2 reads them as they are). */
#define RE_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_TEKKEN "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+|[^\\r\\n\\p{L}\\p{N}]?" \
                  RE_UPPER "+" RE_LOWER "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|" \
                  "\\s+(?!\\S)|\\s+"
#define RE_CONTR_I "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define RE_GPT4O "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTR_I "?|" \
                 "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*" RE_CONTR_I "?|" \
                 "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define MAX_REGEX 6

typedef struct {
    const char *names;        /* '|'-separated tokenizer.ggml.pre values */
    int ignore_merges;        /* a word that is a whole vocab entry is one token (HF BPE) */
    const char *re[MAX_REGEX];
} pretok_def;

/* Every name llama.cpp's loader gives a BPE pre-tokenizer, grouped by the regex sequence it
 * stands for (the strings of the models' tokenizer.json files, as llama-vocab.cpp lists them).
 * tools/ref_pretok.py holds the same table (tests/test_tok_pretok.c checks that they agree)
 * and computes reference splits with Hugging Face tokenizers. Not here (llama.cpp splits them
 * with hand-written code or they have no published regex): kimi-k2, afmoe, gemma4, whitespace
 * and the newest names (youtu, qwen35, tiny_aya, exaone-moe, ...); they are refused. */
static const pretok_def pretok_defs[] = {
    /* llama.cpp's default (no or "default" pre-tokenizer) */
    {"|default|", 0, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"|gpt-2|gpt2|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|"
     "roberta-bpe|a.x-4.0|mellum|modern-bert|exaone4|mpt|olmo|jais|trillion|granite-docling|",
     0, {RE_GPT2}},
    {"|llama-bpe|llama3|llama-v3|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano|", 1,
     {RE_LLAMA3}},
    {"|dbrx|smaug-bpe|chatglm-bpe|glm4|", 0, {RE_LLAMA3}},
    {"|qwen2|deepseek-r1-qwen|kormo|f2llmv2|megrez|stablelm2|hunyuan|grok-2|", 0, {RE_QWEN2}},
    /* HF: Digits(individual_digits) then ByteLevel(use_regex) */
    {"|starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|", 0, {"\\p{N}", RE_GPT2}},
    /* HF: Split [\r\n], \s?\p{L}+, \s?\p{P}+, CJK runs, Digits(individual), ByteLevel(no regex) */
    {"|deepseek-coder|", 0, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}},
    /* DeepSeek LLM: letters of the cased scripts listed one by one, ASCII/full-width
     * punctuation, trailing spaces, CJK runs, digit runs */
    {"|deepseek-llm|", 0,
     {"[\r\n]",
      "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}"
      "\\x{1c4}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}"
      "\\x{37f}\\x{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}"
      "\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}"
      "\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}"
      "\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}"
      "\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}"
      "\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}"
      "\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}"
      "\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}"
      "\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}"
      "\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}"
      "\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}"
      "\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}\\x{a771}-\\x{a787}"
      "\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}"
      "\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}"
      "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}"
      "\\x{1e900}-\\x{1e943}]+",
      "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+",
      "\\s+$", RE_CJK, "\\p{N}+"}},
    /* DeepSeek V3 (and Hunyuan dense): digits in threes, kana/CJK runs, then words that may
     * start with one ASCII punctuation mark */
    {"|deepseek-v3|hunyuan-dense|", 0,
     {"\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
      "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"|falcon|", 0, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"|poro-chat|bloom|gpt3-finnish|", 0, {RE_BLOOM}},
    {"|viking|", 0, {RE_BLOOM, "\\p{N}"}},
    {"|tekken|", 1, {RE_TEKKEN}},
    /* Chameleon: sentinel and image tokens, tab/newline/double spaces, digits, punctuation
     * marks alone, then GPT-2's words */
    {"|chameleon|", 0,
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
      "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2}},
    {"|gpt-4o|llama4|kanana2|talkie|minimax-m2|", 0, {RE_GPT4O}},
    /* SuperBPE: digit runs, cut into threes from the right (a zero-width regex: each match
     * is a cut) */
    {"|superbpe|", 0, {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}},
    /* Ling (BailingMoE): as Qwen2 with possessive quantifiers and single newlines */
    {"|bailingmoe|bailingmoe2|llada-moe|", 0,
     {"'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|"
      "\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
    {"|seed-coder|", 0,
     {RE_CONTR_I "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"|cl100k|", 1, {RE_LLAMA3}}, /* tiktoken: a whole-token word is one token */
};

/* \s as Unicode's White_Space property, which Hugging Face (Oniguruma) and tiktoken (Rust
 * regex) use; PCRE2's \s also takes U+180E, whitespace before Unicode 6.3. */
#define WS_MEMBERS "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}" \
                   "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Copy pattern re into out (room for cap bytes) with \s and \S spelled out; 0 if too long. */
static int spell_out_ws(const char *re, char *out, size_t cap) {
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; re[i]; i++) {
        const char *add = NULL;
        char two[3] = {re[i], re[i + 1], 0};
        if (re[i] == '\\' && re[i + 1]) {
            if (re[i + 1] == 's') add = in_class ? WS_MEMBERS : "[" WS_MEMBERS "]";
            else if (re[i + 1] == 'S' && !in_class) add = "[^" WS_MEMBERS "]";
            else add = two;
            i++;
        } else if (re[i] == '[' && !in_class) {
            in_class = 1;
            add = re[i + 1] == '^' ? (i++, "[^") : "[";
        } else {
            if (re[i] == ']' && in_class) in_class = 0;
            two[1] = 0;
            add = two;
        }
        size_t n = strlen(add);
        if (o + n + 1 > cap) return 0;
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = 0;
    return 1;
}

struct tok_pretok {
    int n;
    pcre2_code *code[MAX_REGEX];
};

static void pretok_free(tok_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

static int pretok_new(const char *pre, tok_pretok **out, int *ignore_merges) {
    *out = NULL;
    char key[72];
    snprintf(key, sizeof key, "|%s|", pre);
    const pretok_def *d = NULL;
    for (size_t i = 0; i < sizeof pretok_defs / sizeof pretok_defs[0]; i++)
        if (strstr(pretok_defs[i].names, key)) d = &pretok_defs[i];
    if (!d)
        return terse_err(TERSE_ERR_UNSUPPORTED, "tokenizer.ggml.pre: '%s' not supported (the "
                         "regex pre-tokenizers llama.cpp names are: gpt-2, llama-bpe, qwen2, "
                         "starcoder, deepseek-llm, falcon, tekken, gpt-4o, ... see bpe.c)", pre);
    tok_pretok *p = terse_calloc(1, sizeof *p, "pre-tokenizer");
    if (!p) return TERSE_ERR_NOMEM;
    for (int i = 0; i < MAX_REGEX && d->re[i]; i++) {
        int err;
        PCRE2_SIZE off;
        char re[4096];
        if (!spell_out_ws(d->re[i], re, sizeof re)) {
            pretok_free(p);
            return terse_err(TERSE_ERR_INTERNAL, "pre-tokenizer '%s' regex %d too long", pre, i);
        }
        p->code[i] = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off,
                                   NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            pretok_free(p);
            return terse_err(TERSE_ERR_INTERNAL, "pre-tokenizer '%s' regex %d: %s at %zu", pre, i,
                             (const char *)msg, (size_t)off);
        }
        p->n = i + 1;
        /* JIT is an optimisation: the interpreter runs the same pattern if it is unavailable */
        (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
    }
    *ignore_merges = d->ignore_merges;
    *out = p;
    return TERSE_OK;
}

/* ========================================================================================== */
/* The byte-level alphabet: GPT-2's bytes_to_unicode. Printable Latin-1 bytes stand for
 * themselves; the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100.. in order. */

static void byte_alphabet(uint32_t cp_of[256]) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        cp_of[b] = printable ? (uint32_t)b : next++;
    }
}

/* Decode a byte-level piece into raw bytes (out has room for len bytes). -1 if a character
 * is outside the alphabet. */
static int64_t unmap_piece(const char *s, uint32_t len, const int16_t *byte_of, uint8_t *out) {
    int64_t n = 0;
    for (uint32_t i = 0; i < len;) {
        uint32_t cp;
        int l = terse_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (l == 0 || cp >= 324 || byte_of[cp] < 0) return -1;
        out[n++] = (uint8_t)byte_of[cp];
        i += (uint32_t)l;
    }
    return n;
}

/* raw bytes -> id over normal tokens: added tokens spell plain text and are matched before
 * BPE ever sees the text. */
static int build_raw_hash(terse_vocab *v) {
    int rc = tok_hash_init(&v->by_raw, v->n_tokens);
    if (rc) return rc;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->ttype[id] == TOK_TYPE_NORMAL && v->raw[id] && v->raw_len[id] > 0)
            tok_hash_put(&v->by_raw, v->raw, v->raw_len, id);
    return TERSE_OK;
}

int tok_bpe_init(terse_vocab *v) {
    int rc;
    if (v->type == TERSE_VOCAB_TIKTOKEN) {
        v->raw = v->piece;
        v->raw_len = v->piece_len;
    } else {
        uint32_t cp_of[256];
        int16_t byte_of[324];
        byte_alphabet(cp_of);
        for (int i = 0; i < 324; i++) byte_of[i] = -1;
        for (int b = 0; b < 256; b++) byte_of[cp_of[b]] = (int16_t)b;
        size_t total = 0;
        for (int32_t id = 0; id < v->n_tokens; id++) total += v->piece_len[id] + 1;
        v->raw = terse_calloc((size_t)v->n_tokens, sizeof *v->raw, "raw tokens");
        v->raw_len = terse_calloc((size_t)v->n_tokens, sizeof *v->raw_len, "raw tokens");
        v->raw_arena = terse_malloc(total, "raw tokens");
        if (!v->raw || !v->raw_len || !v->raw_arena) return TERSE_ERR_NOMEM;
        char *p = v->raw_arena;
        for (int32_t id = 0; id < v->n_tokens; id++) {
            int64_t n = -1;
            if (v->ttype[id] == TOK_TYPE_NORMAL)
                n = unmap_piece(v->piece[id], v->piece_len[id], byte_of, (uint8_t *)p);
            if (n < 0) { /* added tokens (and stray pieces) stand for their own text */
                n = v->piece_len[id];
                memcpy(p, v->piece[id], (size_t)n);
            }
            p[n] = 0;
            v->raw[id] = p;
            v->raw_len[id] = (uint32_t)n;
            p += n + 1;
        }
        for (int b = 0; b < 256; b++) {
            char u[4];
            int l = terse_utf8_encode(cp_of[b], u);
            v->byte_id[b] = tok_find(v, u, (size_t)l);
        }
    }
    if ((rc = build_raw_hash(v))) return rc;
    if (v->type == TERSE_VOCAB_TIKTOKEN)
        for (int b = 0; b < 256; b++) {
            uint8_t c = (uint8_t)b;
            v->byte_id[b] = tok_find_raw(v, &c, 1);
        }
    return pretok_new(v->pre, &v->pretok, &v->ignore_merges);
}

void tok_bpe_free(terse_vocab *v) {
    pretok_free(v->pretok);
    v->pretok = NULL;
}

/* ========================================================================================== */
/* Merging one word                                                                            */

typedef struct {
    int32_t id;          /* token of bytes [begin, end); -1 if the byte is not in the vocab */
    int32_t prev, next;  /* neighbours in the list, -1 at the ends */
    uint32_t begin, end; /* bytes of the word; end == 0 marks a symbol merged away */
} bpe_sym;

/* A queued pair: the symbol `left` and its right neighbour, as they were when queued. The
 * entry is stale when left was merged away, or when the symbol now right of it ends
 * elsewhere (ends only grow, so a different or grown neighbour never ends at right_end). */
typedef struct {
    int32_t rank;        /* lower merges first */
    int32_t left;        /* symbol index; ties go to the leftmost pair */
    uint32_t right_end;  /* the right neighbour's end when queued */
    int32_t id;          /* token of the merged pair */
} bpe_pair;

typedef struct {
    const terse_vocab *v;
    const uint8_t *text; /* the fragment */
    int64_t base;        /* offset of text[0] in the caller's input */
    tok_buf *out;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    bpe_sym *sym;
    bpe_pair *heap;      /* (3 cap) */
    tok_cache *cache;
    size_t cap;          /* symbols allocated */
    const tok_pretok *pt;
    tok_buf *words;      /* tok_pretok_split: record the words instead of encoding them */
} bpe_run;

static inline int pair_less(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_pair *h, size_t *n, bpe_pair p) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = p;
}

static bpe_pair heap_pop(bpe_pair *h, size_t *n) {
    bpe_pair top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && pair_less(&h[c + 1], &h[c])) c++;
        if (!pair_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m > 0) h[i] = last;
    return top;
}

static inline const tok_merge *merge_get(const terse_vocab *v, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = (key * 0x9E3779B97F4A7C15ull) >> 20;
    for (uint64_t i = h & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        const tok_merge *m = &v->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

/* Queue the pair (l, r) if it can merge. */
static void try_pair(bpe_run *r, const uint8_t *w, size_t *nh, int32_t l, int32_t rt) {
    if (l < 0 || rt < 0) return;
    const terse_vocab *v = r->v;
    bpe_sym *a = &r->sym[l], *b = &r->sym[rt];
    if (a->id < 0 || b->id < 0) return;
    int32_t rank, id;
    if (v->type == TERSE_VOCAB_TIKTOKEN) {
        id = tok_find_raw(v, w + a->begin, b->end - a->begin);
        rank = id;
    } else {
        if (v->n_merges == 0) return;
        const tok_merge *m = merge_get(v, a->id, b->id);
        if (!m) return;
        rank = m->rank, id = m->id;
    }
    if (id < 0) return;
    heap_push(r->heap, nh, (bpe_pair){rank, l, b->end, id});
}

static int grow_scratch(bpe_run *r, size_t n) {
    if (n <= r->cap) return TERSE_OK;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < n) cap *= 2;
    bpe_sym *s = terse_reallocarray(r->sym, cap, sizeof *s, "bpe symbols");
    if (!s) return TERSE_ERR_NOMEM;
    r->sym = s;
    /* each merge queues at most two new pairs: at most 3n entries ever */
    bpe_pair *h = terse_reallocarray(r->heap, cap, 3 * sizeof *h, "bpe queue");
    if (!h) return TERSE_ERR_NOMEM;
    r->heap = h;
    r->cap = cap;
    return TERSE_OK;
}

/* Emit a token; a byte the vocabulary lacks becomes <unk>, or no token when there is no <unk>
 * either (vocab.c then gives its byte to a neighbour's span, so the spans still tile). */
static int emit(bpe_run *r, int32_t id, int64_t begin, int64_t end) {
    if (id < 0) id = r->v->unk;
    if (id >= 0) return tok_buf_push(r->out, id, begin, end);
    return TERSE_OK;
}

/* Byte-pair merge the word text[a, b) and append its tokens. */
static int encode_word(bpe_run *r, size_t a, size_t b) {
    const terse_vocab *v = r->v;
    const uint8_t *w = r->text + a;
    size_t n = b - a;
    int64_t at = r->base + (int64_t)a;
    if (n == 1) return emit(r, v->byte_id[w[0]], at, at + 1);
    if (v->ignore_merges) {
        int32_t id = tok_find_raw(v, w, n);
        if (id >= 0) return tok_buf_push(r->out, id, at, at + (int64_t)n);
    }
    uint32_t k;
    const tok_piece *t = tok_cache_get(r->cache, w, n, &k);
    int rc;
    if (t) {
        for (uint32_t i = 0; i < k; i++)
            if ((rc = tok_buf_push(r->out, t[i].id, at + t[i].begin, at + t[i].end))) return rc;
        return TERSE_OK;
    }
    if ((rc = grow_scratch(r, n))) return rc;
    bpe_sym *s = r->sym;
    for (size_t i = 0; i < n; i++)
        s[i] = (bpe_sym){v->byte_id[w[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1,
                         (uint32_t)i, (uint32_t)i + 1};
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(r, w, &nh, (int32_t)i, (int32_t)i + 1);
    while (nh > 0) {
        bpe_pair p = heap_pop(r->heap, &nh);
        bpe_sym *l = &s[p.left];
        if (l->end == 0 || l->next < 0 || s[l->next].end != p.right_end) continue; /* stale */
        bpe_sym *rt = &s[l->next];
        l->id = p.id;
        l->end = rt->end;
        l->next = rt->next;
        if (rt->next >= 0) s[rt->next].prev = p.left;
        rt->end = 0;
        try_pair(r, w, &nh, l->prev, p.left);
        try_pair(r, w, &nh, p.left, l->next);
    }
    tok_piece done[64];
    int cacheable = n <= 64;
    k = 0;
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        if ((rc = emit(r, s[i].id, at + s[i].begin, at + s[i].end))) return rc;
        cacheable &= s[i].id >= 0;
        if (cacheable) done[k++] = (tok_piece){s[i].id, s[i].begin, s[i].end};
    }
    if (cacheable) tok_cache_put(r->cache, w, n, done, k);
    return TERSE_OK;
}

/* ========================================================================================== */
/* Splitting: regex `level` over text[a, b), matches and gaps both go one level down          */

static int run_match(bpe_run *r, pcre2_code *code, const uint8_t *subj, size_t n, size_t from) {
    int rc = pcre2_match(code, subj, n, from, 0, r->md, r->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !r->jit) {
        /* a very long match: give the JIT a bigger stack and retry once */
        r->jit = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        r->mctx = pcre2_match_context_create(NULL);
        if (!r->jit || !r->mctx) return terse_err(TERSE_ERR_NOMEM, "bpe: regex stack");
        pcre2_jit_stack_assign(r->mctx, NULL, r->jit);
        rc = pcre2_match(code, subj, n, from, 0, r->md, r->mctx);
    }
    return rc;
}

static int split(bpe_run *r, int level, size_t a, size_t b) {
    if (a == b) return TERSE_OK;
    const tok_pretok *pt = r->pt;
    if (level == pt->n)
        return r->words ? tok_buf_push(r->words, -1, r->base + (int64_t)a, r->base + (int64_t)b)
                        : encode_word(r, a, b);
    const uint8_t *subj = r->text + a;
    size_t n = b - a, gap = 0, from = 0;
    int rc;
    while (from < n) {
        int m = run_match(r, pt->code[level], subj, n, from);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0 && m != 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(m, msg, sizeof msg);
            return terse_err(TERSE_ERR_INTERNAL, "bpe: pre-tokenizer regex %d failed: %s", level,
                             (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t s = ov[0], e = ov[1];
        if (e == s) { /* empty match: a cut (SuperBPE's digit groups); no piece of its own */
            if (s > gap && (rc = split(r, level + 1, a + gap, a + s))) return rc;
            if (s > gap) gap = s;
            uint32_t cp;
            int l = terse_utf8_decode(subj + s, n - s, &cp);
            from = s + (l > 0 ? (size_t)l : 1);
            continue;
        }
        if ((rc = split(r, level + 1, a + gap, a + s))) return rc;
        if ((rc = split(r, level + 1, a + s, a + e))) return rc;
        gap = from = e;
    }
    return split(r, level + 1, a + gap, b);
}

int tok_bpe_encode(const terse_vocab *v, const uint8_t *text, size_t len, int64_t base,
                   tok_buf *out) {
    if (len == 0) return TERSE_OK;
    bpe_run r = {.v = v, .text = text, .base = base, .out = out, .pt = v->pretok};
    r.md = pcre2_match_data_create(1, NULL);
    if (!r.md) return terse_err(TERSE_ERR_NOMEM, "bpe: match data");
    r.cache = tok_cache_new();
    int rc = split(&r, 0, 0, len);
    pcre2_match_data_free(r.md);
    tok_cache_free(r.cache);
    pcre2_match_context_free(r.mctx);
    pcre2_jit_stack_free(r.jit);
    free(r.sym);
    free(r.heap);
    return rc;
}

/* ========================================================================================== */
/* The pre-tokenizer alone (tests, tools)                                                      */

int tok_pretok_split(const char *pre, const uint8_t *text, size_t len, tok_buf *out) {
    tok_pretok *pt = NULL;
    int ignore = 0;
    int rc = pretok_new(pre, &pt, &ignore);
    if (rc) return rc;
    bpe_run r = {.text = text, .pt = pt, .words = out};
    r.md = pcre2_match_data_create(1, NULL);
    rc = r.md ? split(&r, 0, 0, len) : terse_err(TERSE_ERR_NOMEM, "bpe: match data");
    pcre2_match_data_free(r.md);
    pcre2_match_context_free(r.mctx);
    pcre2_jit_stack_free(r.jit);
    pretok_free(pt);
    return rc;
}

int tok_pretok_regexes(const char *pre, const char *const **re, int *ignore_merges) {
    char key[72];
    snprintf(key, sizeof key, "|%s|", pre);
    for (size_t i = 0; i < sizeof pretok_defs / sizeof pretok_defs[0]; i++)
        if (strstr(pretok_defs[i].names, key)) {
            int n = 0;
            while (n < MAX_REGEX && pretok_defs[i].re[n]) n++;
            *re = pretok_defs[i].re;
            if (ignore_merges) *ignore_merges = pretok_defs[i].ignore_merges;
            return n;
        }
    return -1;
}
