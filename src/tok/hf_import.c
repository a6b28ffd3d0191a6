/* hf_import.c - Hugging Face tokenizer files -> GGUF tokenizer.ggml.* metadata.
 *
 * What it reads (from one folder, first match wins):
 *   tokenizer.json             model.type "BPE" (byte-level) or "WordPiece"
 *   vocab.json + merges.txt    byte-level BPE (GPT-2 / Qwen2 / RoBERTa layout)
 *   encoder.json + vocab.bpe   the same, in OpenAI's original GPT-2 file names
 *   vocab.txt                  WordPiece (BERT), one token per line, id = line number
 * plus, when present: added_tokens.json, tokenizer_config.json (added_tokens_decoder, the
 * bos/eos/unk/sep/pad/cls/mask tokens, add_bos_token/add_eos_token, chat_template),
 * special_tokens_map.json, and config.json (vocab_size, *_token_id).
 *
 * What it writes follows llama.cpp's convert_hf_to_gguf.py (get_vocab_base + SpecialVocab):
 *   tokenizer.ggml.model        "gpt2" (byte-level BPE) or "bert" (WordPiece)
 *   tokenizer.ggml.pre          the pre-tokenizer name (given, or guessed; see guess_pre)
 *   tokenizer.ggml.tokens       one string per id, as the vocabulary file spells it (byte-level
 *                               pieces keep the GPT-2 byte-to-unicode alphabet; added tokens
 *                               are raw text); ids nobody defines become "[PAD<id>]"
 *   tokenizer.ggml.token_type   1 normal, 3 control (special added tokens, ones that look
 *                               special like <|...|>, and the bos/eos/... the configs name),
 *                               4 user-defined (other added tokens), 5 unused ("[PAD<id>]")
 *   tokenizer.ggml.merges       "left right" in rank order (BPE only)
 *   tokenizer.ggml.{bos,eos,unknown,seperator,padding,cls,mask}_token_id   (u32, when known;
 *                               "seperator" is llama.cpp's spelling)
 *   tokenizer.ggml.add_bos_token / add_eos_token   (when the files say, or for Llama 3)
 *   tokenizer.chat_template     (when tokenizer_config.json has a string one)
 * WordPiece pieces are rewritten to llama.cpp's "phantom space" form: a word-initial piece
 * "foo" becomes "\u2581foo", a continuation "##foo" becomes "foo", "[...]" stays as it is.
 *
 * OpenAI's GPT-2 files (encoder.json + vocab.bpe, no configs): <|endoftext|> is made bos, eos
 * and a control token, as Hugging Face's GPT2Tokenizer has it.
 *
 * Llama 3: its encoder.json / vocab.json stops at id 127999; the 256 special tokens
 * (<|begin_of_text|> = 128000 ... <|reserved_special_token_247|> = 128255) live elsewhere in
 * Meta's files. When the base vocabulary has exactly 128000 entries, no added tokens, and the
 * pre-tokenizer is "llama-bpe" (given or guessed), they are added here with Llama 3.2's names;
 * bos = 128000, eos = 128001 (<|end_of_text|>, the base models' eos), add_bos_token = true.
 *
 * Unigram tokenizer.json (XLM-R, T5 as transformers converts them): model "t5" as llama.cpp
 * names it, the piece scores, the precompiled charsmap (tokenizer.ggml.precompiled_charsmap),
 * and terse's keys tokenizer.terse.normalizer (the normalizer steps, see ugm.c) and
 * tokenizer.terse.metaspace_prepend. WordPiece: tokenizer.terse.lowercase from the
 * BertNormalizer (or do_lower_case), false for cased models such as mBERT.
 *
 * What it does not do: SentencePiece-style BPE in tokenizer.json (byte_fallback, "\u2581"
 * pieces; convert from tokenizer.model instead), other normalizer settings, or tokenization
 * itself.
 *
 * Every input is treated as hostile: JSON errors carry file, line and column; every id is
 * range-checked (below twice the entries + 4096, at most HF_MAX_VOCAB, so that a stray id
 * cannot make a huge table), every merge's halves and result must be tokens, duplicate ids
 * with different text are errors; messages name the file and the field.
 */
#include "tok/tok.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#define HF_MAX_VOCAB  (1 << 24)   /* ids must be below this */
#define HF_MAX_PIECE  (1 << 16)   /* bytes in one token */

/* ------------------------------------------------------------------------------------------ */
/* The vocabulary being built                                                                  */

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5 };

typedef struct {
    const char *dir;
    char **text;              /* (cap) by id; NULL = not defined (yet) */
    uint32_t *len;            /* (cap) */
    int32_t *type;            /* (cap) */
    int64_t n, cap;           /* n = highest defined id + 1 */
    int64_t id_limit;         /* ids must be below: about twice the entries the files hold */
    int64_t n_base;           /* tokens from the main vocabulary file (not added ones) */
    int64_t n_added;
    int32_t *slot;            /* text -> id hash, built by hv_index (mask + 1 slots) */
    uint64_t mask;

    char **merge;             /* (n_merges) "left right", NUL-terminated */
    uint64_t *merge_len;
    int64_t n_merges, cap_merges;
    int wordpiece;
    char wp_prefix[16];       /* WordPiece continuation prefix, "##" */

    int unigram;              /* model.type "Unigram" (XLM-R): scores, normalizer, Metaspace */
    float *score;             /* (n_score) Unigram piece scores by id */
    int64_t n_score;
    uint8_t *charsmap;        /* precompiled charsmap, decoded */
    size_t charsmap_len;
    char *ops[16];            /* normalizer ops (ugm.c's spelling) */
    int n_ops;
    const char *prepend;      /* Metaspace prepend scheme */
    int lowercase;            /* WordPiece: -1 = the files do not say, else BertNormalizer's */

    int32_t special[7];       /* bos eos unk sep pad cls mask, -1 = unknown */
    int add_bos, add_eos;     /* -1 = the files do not say */
    char *chat_template;
    int llama3;
} hf_vocab;

enum { SP_BOS, SP_EOS, SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_COUNT };
static const char *const sp_cfg_name[SP_COUNT] = {
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
static const char *const sp_gguf_key[SP_COUNT] = {
    "tokenizer.ggml.bos_token_id",       "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",   "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id",   "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id"};

static void hv_free(hf_vocab *hv) {
    for (int64_t i = 0; i < hv->cap; i++) free(hv->text[i]);
    free(hv->text);
    free(hv->len);
    free(hv->type);
    free(hv->slot);
    for (int64_t i = 0; i < hv->n_merges; i++) free(hv->merge[i]);
    free(hv->merge);
    free(hv->merge_len);
    free(hv->chat_template);
    free(hv->score);
    free(hv->charsmap);
    for (int i = 0; i < hv->n_ops; i++) free(hv->ops[i]);
}

/* s[0..n) for an error message: at most 48 bytes, control bytes as \xNN. */
static const char *shown(const char *s, size_t n, char out[200]) {
    size_t o = 0;
    for (size_t i = 0; i < n && i < 48; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c == 0x7F) o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    if (n > 48) memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
    return out;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = terse_malloc(n + 1, "hf token");
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int hv_grow(hf_vocab *hv, int64_t need) {
    if (need <= hv->cap) return TERSE_OK;
    int64_t cap = hv->cap ? hv->cap : 1024;
    while (cap < need) cap *= 2;
    char **t = terse_reallocarray(hv->text, (size_t)cap, sizeof *t, "hf vocab");
    if (!t) return TERSE_ERR_NOMEM;
    hv->text = t;
    uint32_t *l = terse_reallocarray(hv->len, (size_t)cap, sizeof *l, "hf vocab");
    if (!l) return TERSE_ERR_NOMEM;
    hv->len = l;
    int32_t *ty = terse_reallocarray(hv->type, (size_t)cap, sizeof *ty, "hf vocab");
    if (!ty) return TERSE_ERR_NOMEM;
    hv->type = ty;
    for (int64_t i = hv->cap; i < cap; i++) {
        hv->text[i] = NULL;
        hv->len[i] = 0;
        hv->type[i] = 0;
    }
    hv->cap = cap;
    return TERSE_OK;
}

/* Define token id. Redefining an id with the same text only updates the type (an added token
 * that repeats a vocabulary entry); different text is an error. */
static int hv_set(hf_vocab *hv, json_int_t id, const char *s, size_t n, int type,
                  const char *file, const char *field) {
    if (id < 0 || id >= hv->id_limit)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: token id %lld out of range [0, %lld)"
                         " (a vocabulary of this size)", hv->dir, file, field, (long long)id,
                         (long long)hv->id_limit);
    if (n == 0 || n > HF_MAX_PIECE)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: token id %lld has length %zu "
                         "(must be 1..%d bytes)", hv->dir, file, field, (long long)id, n,
                         HF_MAX_PIECE);
    int rc = hv_grow(hv, id + 1);
    if (rc) return rc;
    if (hv->text[id]) {
        char b1[200], b2[200];
        if (hv->len[id] != n || memcmp(hv->text[id], s, n) != 0)
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: id %lld is '%s' here but '%s' "
                             "elsewhere", hv->dir, file, field, (long long)id, shown(s, n, b1),
                             shown(hv->text[id], hv->len[id], b2));
        hv->type[id] = type;
        return TERSE_OK;
    }
    if (!(hv->text[id] = dup_bytes(s, n))) return TERSE_ERR_NOMEM;
    hv->len[id] = (uint32_t)n;
    hv->type[id] = type;
    if (id + 1 > hv->n) hv->n = id + 1;
    return TERSE_OK;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

/* text -> id over every defined id (first id wins on duplicate text). */
static int hv_index(hf_vocab *hv) {
    free(hv->slot);
    uint64_t cap = 64;
    while (cap < (uint64_t)hv->n * 2) cap *= 2;
    hv->slot = terse_malloc(cap * sizeof *hv->slot, "hf vocab hash");
    if (!hv->slot) return TERSE_ERR_NOMEM;
    memset(hv->slot, 0xff, cap * sizeof *hv->slot);
    hv->mask = cap - 1;
    for (int64_t id = 0; id < hv->n; id++) {
        if (!hv->text[id]) continue;
        uint64_t h = hash_bytes(hv->text[id], hv->len[id]) & hv->mask;
        for (;; h = (h + 1) & hv->mask) {
            int32_t o = hv->slot[h];
            if (o < 0) {
                hv->slot[h] = (int32_t)id;
                break;
            }
            if (hv->len[o] == hv->len[id] && !memcmp(hv->text[o], hv->text[id], hv->len[id]))
                break;
        }
    }
    return TERSE_OK;
}

static int32_t hv_find(const hf_vocab *hv, const char *s, size_t n) {
    if (!hv->slot) return -1;
    for (uint64_t h = hash_bytes(s, n) & hv->mask;; h = (h + 1) & hv->mask) {
        int32_t o = hv->slot[h];
        if (o < 0) return -1;
        if (hv->len[o] == n && !memcmp(hv->text[o], s, n)) return o;
    }
}

static int hv_add_merge(hf_vocab *hv, const char *a, size_t na, const char *b, size_t nb,
                        const char *file, long long where) {
    if (!na || !nb || memchr(a, ' ', na) || memchr(b, ' ', nb))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: merge %lld: halves must be non-empty "
                         "and contain no space", hv->dir, file, where);
    int a_missing = hv_find(hv, a, na) < 0;
    if (a_missing || hv_find(hv, b, nb) < 0) {
        char buf[200];
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: merge %lld: '%s' is not in the "
                         "vocabulary", hv->dir, file, where,
                         shown(a_missing ? a : b, a_missing ? na : nb, buf));
    }
    size_t n = na + 1 + nb;
    if (n > HF_MAX_PIECE)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: merge %lld longer than %d bytes",
                         hv->dir, file, where, HF_MAX_PIECE);
    char *m = terse_malloc(n + 1, "hf merge");
    if (!m) return TERSE_ERR_NOMEM;
    memcpy(m, a, na);
    m[na] = ' ';
    memcpy(m + na + 1, b, nb);
    m[n] = 0;
    /* the merged token must exist too (HF refuses such files as well) */
    memmove(m + na, m + na + 1, nb + 1);
    int32_t merged = hv_find(hv, m, n - 1);
    memmove(m + na + 1, m + na, nb + 1);
    m[na] = ' ';
    if (merged < 0) {
        char buf[200];
        int rc = terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: merge %lld '%s': the merged token "
                           "is not in the vocabulary", hv->dir, file, where, shown(m, n, buf));
        free(m);
        return rc;
    }
    if (hv->n_merges == hv->cap_merges) {
        int64_t cap = hv->cap_merges ? hv->cap_merges * 2 : 4096;
        char **mm = terse_reallocarray(hv->merge, (size_t)cap, sizeof *mm, "hf merges");
        if (!mm) { free(m); return TERSE_ERR_NOMEM; }
        hv->merge = mm;
        uint64_t *ml = terse_reallocarray(hv->merge_len, (size_t)cap, sizeof *ml, "hf merges");
        if (!ml) { free(m); return TERSE_ERR_NOMEM; }
        hv->merge_len = ml;
        hv->cap_merges = cap;
    }
    hv->merge[hv->n_merges] = m;
    hv->merge_len[hv->n_merges++] = n;
    return TERSE_OK;
}

/* A merge written "left right" (a merges.txt line, a tokenizer.json string); at names it in
 * messages ("line 3", "model.merges[2]"), where numbers it for hv_add_merge's. */
static int hv_add_merge_text(hf_vocab *hv, const char *s, size_t n, const char *file,
                             const char *at, long long where) {
    const char *sp = memchr(s, ' ', n);
    if (!sp || memchr(s, 0, n))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: expected 'left right'", hv->dir, file,
                         at);
    return hv_add_merge(hv, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, file, where);
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

static int path_join(char *buf, size_t cap, const char *dir, const char *name) {
    int k = snprintf(buf, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap)
        return terse_err(TERSE_ERR_INVALID, "hf: path too long: %s/%s", dir, name);
    return TERSE_OK;
}

static int file_exists(const char *dir, const char *name) {
    char p[4096];
    if (path_join(p, sizeof p, dir, name)) return 0;
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* Read dir/name whole into *buf (malloc'ed, *len bytes); p receives the path (messages). */
static int read_text(const char *dir, const char *name, char p[4096], char **buf, size_t *len) {
    int rc = path_join(p, 4096, dir, name);
    if (rc) return rc;
    rc = terse_read_all(p, buf, len);
    return rc ? terse_err_wrap(rc, "hf: %s", p) : TERSE_OK;
}

/* The line of buf[0..len) at *at, without its "\n" or "\r\n" (*n bytes); *at moves past it. */
static const char *next_line(const char *buf, size_t len, size_t *at, size_t *n) {
    const char *s = buf + *at;
    size_t e = *at;
    while (e < len && buf[e] != '\n') e++;
    *n = e - *at;
    *at = e + 1;
    if (*n && s[*n - 1] == '\r') (*n)--;
    return s;
}

/* A copy of JSON text in which integers of 19 digits or more (outside strings) get ".0", so
 * that jansson reads them as reals instead of failing (transformers writes model_max_length
 * as 1000000000000000019884624838656). NULL when out of memory. */
static char *widen_integers(const char *s, size_t n, size_t *out_len) {
    char *o = malloc(n + n / 8 + 16);
    size_t k = 0, cap = n + n / 8 + 16;
    int in_str = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        if (in_str) {
            if (s[i] == '\\' && i + 1 < n) o[k++] = s[i++];
            else if (s[i] == '"') in_str = 0;
            o[k++] = s[i++];
        } else if (s[i] >= '0' && s[i] <= '9' && (i == 0 || !(s[i - 1] == '.' || s[i - 1] == 'e' ||
                                                          s[i - 1] == 'E' || s[i - 1] == '+' ||
                                                          (s[i - 1] >= '0' && s[i - 1] <= '9')))) {
            size_t j = i;
            while (j < n && s[j] >= '0' && s[j] <= '9') j++;
            if (k + (j - i) + 3 > cap) break;
            memcpy(o + k, s + i, j - i);
            k += j - i;
            if (j - i >= 19 && (j >= n || (s[j] != '.' && s[j] != 'e' && s[j] != 'E')))
                o[k++] = '.', o[k++] = '0';
            i = j;
        } else {
            if (s[i] == '"') in_str = 1;
            o[k++] = s[i++];
        }
        if (k + 3 > cap) break;
    }
    *out_len = k;
    return o;
}

/* Parse dir/name as JSON. Missing file: *out = NULL and TERSE_OK unless required. */
static int load_json(const char *dir, const char *name, int required, json_t **out) {
    *out = NULL;
    char p[4096];
    int rc = path_join(p, sizeof p, dir, name);
    if (rc) return rc;
    if (!required && !file_exists(dir, name)) return TERSE_OK;
    char *buf;
    size_t len;
    rc = terse_read_all(p, &buf, &len);
    if (rc) return terse_err_wrap(rc, "hf: %s", p);
    json_error_t e;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!*out && strstr(e.text, "too big integer")) { /* e.g. model_max_length 1e30 */
        char *big = widen_integers(buf, len, &len);
        if (big) *out = json_loadb(big, len, JSON_REJECT_DUPLICATES, &e);
        free(big);
    }
    free(buf);
    if (!*out)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s: line %d column %d: %s", p, e.line,
                         e.column, e.text);
    return TERSE_OK;
}

/* Ids may leave holes (filled with "[PAD<id>]"), but not many more than the entries the files
 * hold: a hostile id must not make us allocate a huge table. */
static void set_id_limit(hf_vocab *hv, int64_t entries) {
    int64_t lim = 2 * entries + 4096;
    hv->id_limit = lim < HF_MAX_VOCAB ? lim : HF_MAX_VOCAB;
}

/* A {"piece": id, ...} object (vocab.json, encoder.json, tokenizer.json model.vocab). */
static int load_vocab_object(hf_vocab *hv, const json_t *obj, const char *file,
                             const char *field) {
    if (!json_is_object(obj))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: expected an object {token: id}",
                         hv->dir, file, field);
    if (json_object_size(obj) == 0)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: empty vocabulary", hv->dir, file,
                         field);
    set_id_limit(hv, (int64_t)json_object_size(obj));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        char buf[200];
        if (!json_is_integer(val))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: token '%s': id is not an "
                             "integer", hv->dir, file, field, shown(key, strlen(key), buf));
        int rc = hv_set(hv, json_integer_value(val), key, strlen(key), TT_NORMAL, file, field);
        if (rc) return rc;
        hv->n_base++;
    }
    return TERSE_OK;
}

/* merges.txt / vocab.bpe: optional "#version" line, then "left right" per line. */
static int load_merges_txt(hf_vocab *hv, const char *file) {
    char p[4096], *buf, at_s[32];
    size_t len, n;
    int rc = read_text(hv->dir, file, p, &buf, &len);
    if (rc) return rc;
    long long line = 0;
    for (size_t at = 0; rc == TERSE_OK && at < len;) {
        const char *s = next_line(buf, len, &at, &n);
        line++;
        if (n == 0 || (line == 1 && s[0] == '#')) continue;
        snprintf(at_s, sizeof at_s, "line %lld", line);
        rc = hv_add_merge_text(hv, s, n, file, at_s, line);
    }
    free(buf);
    return rc;
}

/* tokenizer.json model.merges: ["a b", ...] or [["a", "b"], ...]. */
static int load_merges_json(hf_vocab *hv, const json_t *arr, const char *file) {
    if (!json_is_array(arr))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model.merges: expected an array",
                         hv->dir, file);
    size_t i;
    json_t *m;
    json_array_foreach((json_t *)arr, i, m) {
        int rc;
        if (json_is_string(m)) {
            char at_s[48];
            snprintf(at_s, sizeof at_s, "model.merges[%zu]", i);
            rc = hv_add_merge_text(hv, json_string_value(m), json_string_length(m), file, at_s,
                                   (long long)i);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            const json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            rc = hv_add_merge(hv, json_string_value(a), json_string_length(a),
                              json_string_value(b), json_string_length(b), file, (long long)i);
        } else {
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model.merges[%zu]: expected a "
                             "string or a pair of strings", hv->dir, file, i);
        }
        if (rc) return rc;
    }
    return TERSE_OK;
}

/* vocab.txt (BERT): one token per line, id = line index. */
static int load_vocab_txt(hf_vocab *hv, const char *file) {
    char p[4096], *buf;
    size_t len, n;
    int rc = read_text(hv->dir, file, p, &buf, &len);
    if (rc) return rc;
    long long id = 0;
    int64_t lines = 0;
    for (size_t k = 0; k < len; k++) lines += buf[k] == '\n';
    set_id_limit(hv, lines + 1);
    for (size_t at = 0; at < len && rc == TERSE_OK; id++) {
        const char *s = next_line(buf, len, &at, &n);
        uint32_t cp;
        for (size_t k = 0; k < n && rc == TERSE_OK;) {
            int l = terse_utf8_decode((const uint8_t *)s + k, n - k, &cp);
            if (!l || cp == 0)
                rc = terse_err(TERSE_ERR_FORMAT, "hf: %s: line %lld: invalid UTF-8 or NUL",
                               p, id + 1);
            k += l ? (size_t)l : 1;
        }
        if (rc == TERSE_OK) {
            rc = hv_set(hv, id, s, n, TT_NORMAL, file, "line");
            hv->n_base++;
        }
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Added and special tokens                                                                    */

/* llama.cpp's does_token_look_special: added tokens some models forget to mark special. */
static int looks_special(const char *s, size_t n) {
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strlen(exact[i]) == n && !memcmp(s, exact[i], n)) return 1;
    if (n >= 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2)) return 1;
    /* fullwidth bars U+FF5C, as DeepSeek spells them: "<\xef\xbd\x9c" ... "\xef\xbd\x9c>" */
    if (n >= 8 && !memcmp(s, "<\xef\xbd\x9c", 4) && !memcmp(s + n - 4, "\xef\xbd\x9c>", 4))
        return 1;
    if (n >= 8 && !memcmp(s, "<unused", 7) && s[n - 1] == '>') return 1;   /* gemma */
    return 0;
}

static int add_token(hf_vocab *hv, json_int_t id, const char *s, size_t n, int special,
                     const char *file, const char *field) {
    int type = special || looks_special(s, n) ? TT_CONTROL : TT_USER;
    int had = id >= 0 && id < hv->n && hv->text[id];
    int rc = hv_set(hv, id, s, n, type, file, field);
    if (rc == TERSE_OK && !had) hv->n_added++;
    return rc;
}

/* tokenizer.json "added_tokens": [{"id", "content", "special", ...}]. */
static int load_added_array(hf_vocab *hv, const json_t *arr, const char *file) {
    if (!arr) return TERSE_OK;
    if (!json_is_array(arr))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: added_tokens: expected an array",
                         hv->dir, file);
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)arr, i, t) {
        json_t *id = json_object_get(t, "id"), *c = json_object_get(t, "content");
        json_t *sp = json_object_get(t, "special");
        if (!json_is_integer(id) || !json_is_string(c))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: added_tokens[%zu]: needs integer "
                             "'id' and string 'content'", hv->dir, file, i);
        int rc = add_token(hv, json_integer_value(id), json_string_value(c),
                           json_string_length(c), json_is_true(sp), file, "added_tokens");
        if (rc) return rc;
    }
    return TERSE_OK;
}

/* added_tokens.json {"content": id}: special unless tokenizer_config says otherwise. */
static int load_added_json(hf_vocab *hv, const json_t *obj) {
    if (!obj) return TERSE_OK;
    if (!json_is_object(obj))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/added_tokens.json: expected an object",
                         hv->dir);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        char buf[200];
        if (!json_is_integer(val))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/added_tokens.json: '%s': id is not "
                             "an integer", hv->dir, shown(key, strlen(key), buf));
        int rc = add_token(hv, json_integer_value(val), key, strlen(key), 1,
                           "added_tokens.json", "id");
        if (rc) return rc;
    }
    return TERSE_OK;
}

/* tokenizer_config.json "added_tokens_decoder": {"id": {"content", "special", ...}}. */
static int load_added_decoder(hf_vocab *hv, const json_t *obj) {
    if (!obj) return TERSE_OK;
    if (!json_is_object(obj))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/tokenizer_config.json: added_tokens_decoder:"
                         " expected an object", hv->dir);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        char *end;
        long long id = strtoll(key, &end, 10);
        json_t *c = json_object_get(val, "content");
        if (!*key || *end || !json_is_string(c))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/tokenizer_config.json: "
                             "added_tokens_decoder['%.32s']: needs a decimal id and a string "
                             "'content'", hv->dir, key);
        int rc = add_token(hv, id, json_string_value(c), json_string_length(c),
                           json_is_true(json_object_get(val, "special")),
                           "tokenizer_config.json", "added_tokens_decoder");
        if (rc) return rc;
    }
    return TERSE_OK;
}

/* Llama 3 special tokens (Llama 3.2 names), ids 128000..128255. */
static int add_llama3_specials(hf_vocab *hv) {
    static const char *const named[] = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
        "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
    char buf[64];
    for (int i = 0; i < 256; i++) {
        const char *s = buf;
        if (i < 11) s = named[i];
        else snprintf(buf, sizeof buf, "<|reserved_special_token_%d|>", i - 11 + 3);
        int rc = add_token(hv, 128000 + i, s, strlen(s), 1, "(llama 3 specials)", "id");
        if (rc) return rc;
    }
    hv->special[SP_BOS] = 128000;
    hv->special[SP_EOS] = 128001;
    hv->add_bos = 1;
    hv->llama3 = 1;
    return TERSE_OK;
}

/* bos_token etc.: a string, {"content": string}, or null. */
static int special_from_config(hf_vocab *hv, const json_t *cfg, const char *file) {
    if (!cfg) return TERSE_OK;
    if (!json_is_object(cfg))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: expected an object", hv->dir, file);
    for (int k = 0; k < SP_COUNT; k++) {
        if (hv->special[k] >= 0) continue;
        json_t *t = json_object_get(cfg, sp_cfg_name[k]);
        if (json_is_object(t)) t = json_object_get(t, "content");
        if (!t || json_is_null(t)) continue;
        if (!json_is_string(t))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s: expected a string or "
                             "{\"content\": string}", hv->dir, file, sp_cfg_name[k]);
        int32_t id = hv_find(hv, json_string_value(t), json_string_length(t));
        char buf[200];
        if (id < 0)
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: %s '%s' is not a token", hv->dir,
                             file, sp_cfg_name[k],
                             shown(json_string_value(t), json_string_length(t), buf));
        hv->special[k] = id;
        if (hv->type[id] == TT_NORMAL) hv->type[id] = TT_CONTROL;   /* HF: special */
    }
    return TERSE_OK;
}

static int flag_from_config(hf_vocab *hv, const json_t *cfg, const char *key, int *flag) {
    json_t *t = json_object_get(cfg, key);
    if (!t || json_is_null(t)) return TERSE_OK;
    if (!json_is_boolean(t))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/tokenizer_config.json: %s: expected true "
                         "or false", hv->dir, key);
    *flag = json_is_true(t);
    return TERSE_OK;
}

/* tokenizer.json post_processor TemplateProcessing: does "single" start with bos / end with
 * eos? (What llama.cpp's SpecialVocab infers add_bos_token / add_eos_token from.) */
static void flags_from_post_processor(hf_vocab *hv, const json_t *tj) {
    json_t *pp = json_object_get(tj, "post_processor");
    if (json_is_string(json_object_get(pp, "type")) &&
        !strcmp(json_string_value(json_object_get(pp, "type")), "Sequence")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pp, "processors"), i, p)
            if (json_is_string(json_object_get(p, "type")) &&
                !strcmp(json_string_value(json_object_get(p, "type")), "TemplateProcessing"))
                pp = p;
    }
    json_t *single = json_object_get(pp, "single");
    if (!json_is_array(single) || json_array_size(single) == 0) return;
    json_t *first = json_object_get(json_array_get(single, 0), "SpecialToken");
    json_t *last = json_object_get(json_array_get(single, json_array_size(single) - 1),
                                   "SpecialToken");
    json_t *fid = json_object_get(first, "id"), *lid = json_object_get(last, "id");
    if (hv->add_bos < 0)
        hv->add_bos = json_is_string(fid) && hv->special[SP_BOS] >= 0 &&
                      hv_find(hv, json_string_value(fid), json_string_length(fid)) ==
                          hv->special[SP_BOS];
    if (hv->add_eos < 0)
        hv->add_eos = json_is_string(lid) && hv->special[SP_EOS] >= 0 &&
                      hv_find(hv, json_string_value(lid), json_string_length(lid)) ==
                          hv->special[SP_EOS];
}

/* config.json: bos/eos/pad ids when the tokenizer files did not name them; vocab_size. */
static int from_model_config(hf_vocab *hv, const json_t *cfg, int64_t *vocab_size) {
    *vocab_size = 0;
    if (!cfg) return TERSE_OK;
    static const struct { const char *key; int sp; } ids[] = {
        {"bos_token_id", SP_BOS}, {"eos_token_id", SP_EOS}, {"pad_token_id", SP_PAD}};
    for (size_t k = 0; k < 3; k++) {
        json_t *t = json_object_get(cfg, ids[k].key);
        if (json_is_array(t)) t = json_array_get(t, 0);   /* eos_token_id: [a, b, ...] */
        if (!json_is_integer(t) || hv->special[ids[k].sp] >= 0) continue;
        json_int_t id = json_integer_value(t);
        if (id < 0 || id >= hv->n)
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/config.json: %s = %lld is not a token "
                             "id (vocabulary has %lld)", hv->dir, ids[k].key, (long long)id,
                             (long long)hv->n);
        hv->special[ids[k].sp] = (int32_t)id;
    }
    json_t *vs = json_object_get(cfg, "vocab_size");
    if (json_is_integer(vs)) {
        json_int_t n = json_integer_value(vs);
        if (n <= 0 || n > hv->id_limit)
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/config.json: vocab_size = %lld out of "
                             "range", hv->dir, (long long)n);
        *vocab_size = n;
    }
    return TERSE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The pre-tokenizer name                                                                      */

/* The regex of a tokenizer.json pre_tokenizer "Split" (first one found), or NULL. */
static const char *split_regex(const json_t *pt) {
    if (!pt) return NULL;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && !strcmp(type, "Split"))
        return json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(pt, "pretokenizers"), i, p) {
        const char *r = split_regex(p);
        if (r) return r;
    }
    return NULL;
}

/* Guess the llama.cpp pre-tokenizer name from what the files say. NULL when unsure. */
static const char *guess_pre(const hf_vocab *hv, const json_t *tj, const json_t *tcfg) {
    if (hv->wordpiece || hv->unigram) return "default";
    if (hv->n_base == 128000) return "llama-bpe";
    const char *cls = json_string_value(json_object_get(tcfg, "tokenizer_class"));
    if (cls && !strcmp(cls, "Qwen2Tokenizer")) return "qwen2";
    const char *re = split_regex(json_object_get(tj, "pre_tokenizer"));
    if (re) {
        static const char *const qwen2_re =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]"
            "+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        static const char *const llama3_re =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}"
            "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        if (!strcmp(re, qwen2_re)) return "qwen2";
        if (!strcmp(re, llama3_re)) return "llama-bpe";
        return NULL;
    }
    if (cls && (!strcmp(cls, "GPT2Tokenizer") || !strcmp(cls, "GPT2TokenizerFast")))
        return "gpt-2";
    /* a bare ByteLevel pre-tokenizer with its built-in regex is GPT-2's */
    const json_t *pt = json_object_get(tj, "pre_tokenizer");
    const char *pt_type = json_string_value(json_object_get(pt, "type"));
    if (pt_type && !strcmp(pt_type, "ByteLevel") &&
        !json_is_false(json_object_get(pt, "use_regex")))
        return "gpt-2";
    if (!tj && hv->n_base == 50257) return "gpt-2";   /* OpenAI's encoder.json */
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Main vocabulary sources                                                                     */

static int is_byte_level(const json_t *tj) {
    const json_t *parts[2] = {json_object_get(tj, "pre_tokenizer"), json_object_get(tj, "decoder")};
    for (int k = 0; k < 2; k++) {
        const json_t *p = parts[k];
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && !strcmp(type, "ByteLevel")) return 1;
        size_t i;
        json_t *q;
        json_array_foreach(json_object_get(p, k ? "decoders" : "pretokenizers"), i, q) {
            const char *t = json_string_value(json_object_get(q, "type"));
            if (t && !strcmp(t, "ByteLevel")) return 1;
        }
    }
    return 0;
}

/* ---- Unigram (SentencePiece models converted by transformers: XLM-R, T5) ---- */

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int add_op(hf_vocab *hv, const char *s, size_t n, const char *f) {
    if (hv->n_ops == 16)
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: normalizer: more than 16 steps", hv->dir, f);
    if (!(hv->ops[hv->n_ops] = dup_bytes(s, n))) return TERSE_ERR_NOMEM;
    hv->n_ops++;
    return TERSE_OK;
}

/* One normalizer (or a Sequence of them) -> ops. */
static int unigram_normalizer(hf_vocab *hv, const json_t *nz, const char *f, int depth) {
    if (!nz || json_is_null(nz)) return TERSE_OK;
    const char *type = json_string_value(json_object_get(nz, "type"));
    if (!type || depth > 4)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: normalizer without a type", hv->dir, f);
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(nz, "normalizers"), i, x) {
            int rc = unigram_normalizer(hv, x, f, depth + 1);
            if (rc) return rc;
        }
        return TERSE_OK;
    }
    if (!strcmp(type, "Precompiled")) {
        const char *b = json_string_value(json_object_get(nz, "precompiled_charsmap"));
        if (!b) return TERSE_OK; /* null: nothing to apply */
        size_t n = strlen(b);
        free(hv->charsmap);
        if (!(hv->charsmap = terse_malloc(n / 4 * 3 + 3, "hf charsmap"))) return TERSE_ERR_NOMEM;
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (b[i] == '=') break;
            int v = b64_val((unsigned char)b[i]);
            if (v < 0)
                return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: precompiled_charsmap: not base64 "
                                 "at offset %zu", hv->dir, f, i);
            acc = acc << 6 | (uint32_t)v;
            if ((bits += 6) >= 8) {
                bits -= 8;
                hv->charsmap[o++] = (uint8_t)(acc >> bits);
            }
        }
        hv->charsmap_len = o;
        return add_op(hv, "precompiled", 11, f);
    }
    if (!strcmp(type, "Strip")) {
        int rc = TERSE_OK;
        if (json_is_true(json_object_get(nz, "strip_left"))) rc = add_op(hv, "strip_left", 10, f);
        if (!rc && json_is_true(json_object_get(nz, "strip_right")))
            rc = add_op(hv, "strip_right", 11, f);
        return rc;
    }
    if (!strcmp(type, "Replace")) {
        const json_t *pat = json_object_get(nz, "pattern");
        const char *content = json_string_value(json_object_get(nz, "content"));
        const char *rx = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        char buf[256];
        int k;
        if (content && rx && !strcmp(rx, " {2,}"))
            k = snprintf(buf, sizeof buf, "collapse:%s", content);
        else if (content && lit && *lit)
            k = snprintf(buf, sizeof buf, "replace:%s\t%s", lit, content);
        else
            return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: normalizer Replace with pattern "
                             "'%s' (only the regex \" {2,}\" and plain strings)", hv->dir, f,
                             rx ? rx : "?");
        if (k < 0 || (size_t)k >= sizeof buf)
            return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: Replace strings too long", hv->dir, f);
        return add_op(hv, buf, (size_t)k, f);
    }
    return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: normalizer '%s' is not supported with a "
                     "Unigram model (Precompiled, Strip, Replace are)", hv->dir, f, type);
}

static int load_unigram(hf_vocab *hv, const json_t *tj, const json_t *model, const char *f) {
    hv->unigram = 1;
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: Unigram with byte_fallback", hv->dir, f);
    const json_t *voc = json_object_get(model, "vocab");
    if (!json_is_array(voc) || json_array_size(voc) == 0)
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model.vocab: expected a non-empty array of "
                         "[piece, score]", hv->dir, f);
    size_t n = json_array_size(voc);
    set_id_limit(hv, (int64_t)n);
    if (!(hv->score = terse_calloc(n, sizeof *hv->score, "hf scores"))) return TERSE_ERR_NOMEM;
    hv->n_score = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(voc, i), *p = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_string(p) || !json_is_number(sc))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model.vocab[%zu]: expected [string, "
                             "number]", hv->dir, f, i);
        int rc = hv_set(hv, (json_int_t)i, json_string_value(p), json_string_length(p), TT_NORMAL,
                        f, "model.vocab");
        if (rc) return rc;
        hv->score[i] = (float)json_number_value(sc);
        hv->n_base++;
    }
    const json_t *unk = json_object_get(model, "unk_id");
    if (json_is_integer(unk) && json_integer_value(unk) >= 0 && (size_t)json_integer_value(unk) < n)
        hv->special[SP_UNK] = (int32_t)json_integer_value(unk);
    int rc = unigram_normalizer(hv, json_object_get(tj, "normalizer"), f, 0);
    if (rc) return rc;
    /* pre-tokenizer: Metaspace (alone or in a Sequence) */
    const json_t *pt = json_object_get(tj, "pre_tokenizer"), *ms = NULL;
    const char *pty = json_string_value(json_object_get(pt, "type"));
    if (pty && !strcmp(pty, "Metaspace")) ms = pt;
    else if (pty && !strcmp(pty, "Sequence")) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, x) {
            const char *t = json_string_value(json_object_get(x, "type"));
            if (t && !strcmp(t, "Metaspace") && json_array_size(json_object_get(pt, "pretokenizers")) == 1)
                ms = x;
        }
    }
    const char *rep = json_string_value(json_object_get(ms, "replacement"));
    if (!ms || !rep || strcmp(rep, "\xe2\x96\x81") || json_is_false(json_object_get(ms, "split")))
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: Unigram needs the pre-tokenizer "
                         "Metaspace(replacement \"\\u2581\", split true)", hv->dir, f);
    const char *scheme = json_string_value(json_object_get(ms, "prepend_scheme"));
    const json_t *asp = json_object_get(ms, "add_prefix_space");
    hv->prepend = scheme && !strcmp(scheme, "first") ? "first"
                  : scheme && !strcmp(scheme, "never") ? "never"
                  : !scheme && json_is_false(asp) ? "never" : "always";
    return load_added_array(hv, json_object_get(tj, "added_tokens"), f);
}

/* BertNormalizer: lowercase (default true); strip_accents null follows it. */
static int wordpiece_normalizer(hf_vocab *hv, const json_t *tj, const char *f) {
    const json_t *nz = json_object_get(tj, "normalizer");
    const char *type = json_string_value(json_object_get(nz, "type"));
    if (!type || strcmp(type, "BertNormalizer")) return TERSE_OK;
    const json_t *lc = json_object_get(nz, "lowercase"), *sa = json_object_get(nz, "strip_accents");
    int lower = !json_is_false(lc);
    int strip = sa && !json_is_null(sa) ? json_is_true(sa) : lower;
    if (strip != lower)
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: BertNormalizer with lowercase %s and "
                         "strip_accents %s (only both or neither)", hv->dir, f,
                         lower ? "true" : "false", strip ? "true" : "false");
    hv->lowercase = lower;
    return TERSE_OK;
}

static int load_tokenizer_json(hf_vocab *hv, const json_t *tj) {
    const char *f = "tokenizer.json";
    json_t *model = json_object_get(tj, "model");
    if (!json_is_object(model))
        return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model: missing or not an object",
                         hv->dir, f);
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type) type = json_object_get(model, "merges") ? "BPE" : "WordPiece";
    int rc;
    if (!strcmp(type, "BPE")) {
        if (json_is_true(json_object_get(model, "byte_fallback")) || !is_byte_level(tj))
            return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: model.type BPE without "
                             "ByteLevel pre-tokenizer/decoder (SentencePiece-style) is not "
                             "supported", hv->dir, f);
        if ((rc = load_vocab_object(hv, json_object_get(model, "vocab"), f, "model.vocab")))
            return rc;
        if ((rc = load_added_array(hv, json_object_get(tj, "added_tokens"), f))) return rc;
        if ((rc = hv_index(hv))) return rc;
        return load_merges_json(hv, json_object_get(model, "merges"), f);
    }
    if (!strcmp(type, "WordPiece")) {
        hv->wordpiece = 1;
        json_t *pfx = json_object_get(model, "continuing_subword_prefix");
        if (pfx && (!json_is_string(pfx) || json_string_length(pfx) >= sizeof hv->wp_prefix))
            return terse_err(TERSE_ERR_FORMAT, "hf: %s/%s: model.continuing_subword_prefix: "
                             "expected a short string", hv->dir, f);
        if (pfx) strcpy(hv->wp_prefix, json_string_value(pfx));
        if ((rc = load_vocab_object(hv, json_object_get(model, "vocab"), f, "model.vocab")))
            return rc;
        if ((rc = wordpiece_normalizer(hv, tj, f))) return rc;
        return load_added_array(hv, json_object_get(tj, "added_tokens"), f);
    }
    if (!strcmp(type, "Unigram")) return load_unigram(hv, tj, model, f);
    return terse_err(TERSE_ERR_UNSUPPORTED, "hf: %s/%s: model.type '%s' is not supported "
                     "(BPE, WordPiece and Unigram are)", hv->dir, f, type);
}

/* WordPiece -> llama.cpp phantom-space pieces ("foo" -> "\u2581foo", "##foo" -> "foo"). */
static int wordpiece_to_phantom(hf_vocab *hv) {
    size_t np = strlen(hv->wp_prefix);
    for (int64_t id = 0; id < hv->n; id++) {
        char *s = hv->text[id];
        size_t n = hv->len[id];
        if (!s || (s[0] == '[' && s[n - 1] == ']')) continue;
        if (np && n > np && !memcmp(s, hv->wp_prefix, np)) {
            memmove(s, s + np, n - np + 1);
            hv->len[id] = (uint32_t)(n - np);
            continue;
        }
        char *t = terse_malloc(n + 4, "hf wordpiece");
        if (!t) return TERSE_ERR_NOMEM;
        memcpy(t, "\xe2\x96\x81", 3);
        memcpy(t + 3, s, n + 1);
        free(s);
        hv->text[id] = t;
        hv->len[id] = (uint32_t)(n + 3);
    }
    return TERSE_OK;
}

/* Unset ids become "[PAD<id>]" (unused), up to n. */
static int fill_holes(hf_vocab *hv, int64_t n) {
    int rc = hv_grow(hv, n);
    if (rc) return rc;
    for (int64_t id = 0; id < n; id++) {
        if (hv->text[id]) continue;
        char buf[32];
        int k = snprintf(buf, sizeof buf, "[PAD%lld]", (long long)id);
        if (!(hv->text[id] = dup_bytes(buf, (size_t)k))) return TERSE_ERR_NOMEM;
        hv->len[id] = (uint32_t)k;
        hv->type[id] = TT_UNUSED;
    }
    if (n > hv->n) hv->n = n;
    return TERSE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

static int write_gguf(const hf_vocab *hv, const char *pre, gguf_writer *w) {
    int rc;
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model",
                                  hv->unigram ? "t5" : hv->wordpiece ? "bert" : "gpt2")))
        return rc;
    if (hv->unigram) {
        float *sc = terse_calloc((size_t)hv->n, sizeof *sc, "hf scores");
        if (!sc) return TERSE_ERR_NOMEM;
        memcpy(sc, hv->score, (size_t)(hv->n_score < hv->n ? hv->n_score : hv->n) * sizeof *sc);
        rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", sc, (uint64_t)hv->n);
        free(sc);
        if (rc) return rc;
        if (hv->charsmap_len &&
            (rc = gguf_writer_set_arr_u8(w, "tokenizer.ggml.precompiled_charsmap", hv->charsmap,
                                         hv->charsmap_len)))
            return rc;
        if ((rc = gguf_writer_set_arr_str(w, "tokenizer.terse.normalizer",
                                          (const char *const *)hv->ops, NULL, (uint64_t)hv->n_ops)) ||
            (rc = gguf_writer_set_str(w, "tokenizer.terse.metaspace_prepend", hv->prepend)) ||
            (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix",
                                       strcmp(hv->prepend, "never") != 0)))
            return rc;
    }
    if (hv->wordpiece && hv->lowercase >= 0 &&
        (rc = gguf_writer_set_bool(w, "tokenizer.terse.lowercase", hv->lowercase)))
        return rc;
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", pre))) return rc;
    rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)hv->text,
                                 NULL, (uint64_t)hv->n);
    if (rc) return rc;
    if ((rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", hv->type,
                                      (uint64_t)hv->n)))
        return rc;
    if (!hv->wordpiece &&
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)hv->merge,
                                      hv->merge_len, (uint64_t)hv->n_merges)))
        return rc;
    for (int k = 0; k < SP_COUNT; k++)
        if (hv->special[k] >= 0 &&
            (rc = gguf_writer_set_u32(w, sp_gguf_key[k], (uint32_t)hv->special[k])))
            return rc;
    if (hv->add_bos >= 0 &&
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", hv->add_bos)))
        return rc;
    if (hv->add_eos >= 0 &&
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", hv->add_eos)))
        return rc;
    if (hv->chat_template &&
        (rc = gguf_writer_set_str(w, "tokenizer.chat_template", hv->chat_template)))
        return rc;
    return TERSE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The import                                                                                  */

static int import(hf_vocab *hv, const char *pre, gguf_writer *w) {
    json_t *tj = NULL, *tcfg = NULL, *stm = NULL, *added = NULL, *mcfg = NULL, *vj = NULL;
    int rc;
    if ((rc = load_json(hv->dir, "tokenizer_config.json", 0, &tcfg))) goto done;
    if ((rc = load_json(hv->dir, "special_tokens_map.json", 0, &stm))) goto done;
    if ((rc = load_json(hv->dir, "config.json", 0, &mcfg))) goto done;

    /* 1. the main vocabulary (+ merges) */
    if (file_exists(hv->dir, "tokenizer.json")) {
        if ((rc = load_json(hv->dir, "tokenizer.json", 1, &tj))) goto done;
        if ((rc = load_tokenizer_json(hv, tj))) goto done;
    } else if (file_exists(hv->dir, "vocab.json") || file_exists(hv->dir, "encoder.json")) {
        int gpt2_names = !file_exists(hv->dir, "vocab.json");
        const char *base_file = gpt2_names ? "encoder.json" : "vocab.json";
        const char *merges_file = gpt2_names ? "vocab.bpe" : "merges.txt";
        if (!file_exists(hv->dir, merges_file)) {
            rc = terse_err(TERSE_ERR_IO, "hf: %s: %s without %s", hv->dir, base_file,
                           merges_file);
            goto done;
        }
        if ((rc = load_json(hv->dir, base_file, 1, &vj))) goto done;
        if ((rc = load_vocab_object(hv, vj, base_file, "vocabulary"))) goto done;
        json_decref(vj);
        vj = NULL;
        if ((rc = load_json(hv->dir, "added_tokens.json", 0, &added))) goto done;
        if ((rc = load_added_json(hv, added))) goto done;
        if ((rc = hv_index(hv))) goto done;
        if ((rc = load_merges_txt(hv, merges_file))) goto done;
    } else if (file_exists(hv->dir, "vocab.txt")) {
        hv->wordpiece = 1;
        if ((rc = load_vocab_txt(hv, "vocab.txt"))) goto done;
    } else {
        rc = terse_err(TERSE_ERR_IO, "hf: %s: no tokenizer.json, vocab.json + merges.txt, "
                       "encoder.json + vocab.bpe or vocab.txt", hv->dir);
        goto done;
    }
    if (hv->n == 0) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf: %s: the vocabulary file holds no token", hv->dir);
        goto done;
    }
    if (tcfg && !json_is_object(tcfg)) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf: %s/tokenizer_config.json: expected an object",
                       hv->dir);
        goto done;
    }
    if ((rc = load_added_decoder(hv, json_object_get(tcfg, "added_tokens_decoder")))) goto done;

    /* 2. the pre-tokenizer, and Llama 3's missing specials */
    if (!pre) pre = guess_pre(hv, tj, tcfg);
    if (!pre) {
        rc = terse_err(TERSE_ERR_INVALID, "hf: %s: cannot tell the pre-tokenizer from the "
                       "files; name it (gpt-2, llama-bpe, qwen2, ...)", hv->dir);
        goto done;
    }
    if (!hv->wordpiece && hv->n_base == 128000 && hv->n_added == 0 && hv->n == 128000 &&
        !strcmp(pre, "llama-bpe") && (rc = add_llama3_specials(hv)))
        goto done;

    /* 3. special ids and flags */
    if ((rc = hv_index(hv))) goto done;
    if ((rc = special_from_config(hv, tcfg, "tokenizer_config.json"))) goto done;
    if ((rc = special_from_config(hv, stm, "special_tokens_map.json"))) goto done;
    if (!hv->wordpiece && !hv->unigram && hv->special[SP_BOS] < 0 && hv->special[SP_EOS] < 0) {
        /* OpenAI's GPT-2 files name no special token: <|endoftext|> is both */
        int32_t id = hv_find(hv, "<|endoftext|>", 13);
        if (id >= 0) {
            hv->special[SP_BOS] = hv->special[SP_EOS] = id;
            hv->type[id] = TT_CONTROL;
        }
    }
    if (hv->wordpiece) {   /* BERT's conventional names */
        static const char *const def[SP_COUNT] = {NULL, NULL, "[UNK]", "[SEP]", "[PAD]",
                                                  "[CLS]", "[MASK]"};
        for (int k = 0; k < SP_COUNT; k++)
            if (def[k] && hv->special[k] < 0) {
                hv->special[k] = hv_find(hv, def[k], strlen(def[k]));
                if (hv->special[k] >= 0) hv->type[hv->special[k]] = TT_CONTROL;
            }
    }
    int64_t vocab_size;
    if ((rc = from_model_config(hv, mcfg, &vocab_size))) goto done;
    if (tcfg) {
        if ((rc = flag_from_config(hv, tcfg, "add_bos_token", &hv->add_bos))) goto done;
        if ((rc = flag_from_config(hv, tcfg, "add_eos_token", &hv->add_eos))) goto done;
        json_t *ct = json_object_get(tcfg, "chat_template");
        if (json_is_string(ct) &&
            !(hv->chat_template = dup_bytes(json_string_value(ct), json_string_length(ct)))) {
            rc = TERSE_ERR_NOMEM;
            goto done;
        }
    }
    if (tj && !hv->wordpiece) flags_from_post_processor(hv, tj);
    if (!hv->wordpiece && hv->add_bos < 0) hv->add_bos = 0;   /* GPT-2 style: no BOS */
    if (hv->wordpiece && hv->lowercase < 0) {
        json_t *dl = json_object_get(tcfg, "do_lower_case");
        if (json_is_boolean(dl)) hv->lowercase = json_is_true(dl);
    }

    /* 4. holes, WordPiece spelling, write */
    if ((rc = fill_holes(hv, vocab_size > hv->n ? vocab_size : hv->n))) goto done;
    if (hv->wordpiece && (rc = wordpiece_to_phantom(hv))) goto done;
    rc = write_gguf(hv, pre, w);
done:
    json_decref(tj);
    json_decref(tcfg);
    json_decref(stm);
    json_decref(added);
    json_decref(mcfg);
    json_decref(vj);
    return rc;
}

int tok_import_hf(const char *dir, const char *pre, gguf_writer *w) {
    if (!dir || !w) return terse_err(TERSE_ERR_INVALID, "hf: import: NULL argument");
    hf_vocab hv;
    memset(&hv, 0, sizeof hv);
    hv.dir = dir;
    strcpy(hv.wp_prefix, "##");
    for (int k = 0; k < SP_COUNT; k++) hv.special[k] = -1;
    hv.add_bos = hv.add_eos = -1;
    hv.lowercase = -1;
    int rc = import(&hv, pre, w);
    hv_free(&hv);
    return rc;
}
