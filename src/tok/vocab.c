/* vocab.c - vocabularies: loading (GGUF tokenizer.ggml.* metadata, .tiktoken rank files),
 * lookups, the special-token split, and the public tokenize / count / detokenize calls.
 *
 * The story: load pieces, scores and types into one arena with a piece -> id hash, read the
 * special ids and flags with llama.cpp's key names and defaults, build the merge table (BPE),
 * hand over to the model's init (bpe.c, spm.c, wpm.c). At tokenize time the input is cut at
 * special tokens (control, user-defined and unknown pieces found in the raw text, leftmost and
 * longest first, as Hugging Face's added-token matcher does), and each fragment in between goes
 * to the model's encoder with its byte offset so that spans tile the input.
 *
 * Not here: the tokenizer algorithms themselves (bpe.c, spm.c, wpm.c), Hugging Face file import
 * (hf_import.c), text normalisation beyond what the vocabulary's model implies.
 */
#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>

/* ========================================================================================== */
/* Output buffer                                                                               */

int tok_buf_push(tok_buf *b, int32_t id, int64_t begin, int64_t end) {
    if (b->n == b->cap) {
        int64_t cap = b->cap < 64 ? 64 : b->cap * 2;
        int32_t *ids = terse_reallocarray(b->ids, (size_t)cap, sizeof *ids, "token ids");
        if (!ids) return TERSE_ERR_NOMEM;
        b->ids = ids;
        terse_span *sp = terse_reallocarray(b->spans, (size_t)cap, sizeof *sp, "token spans");
        if (!sp) return TERSE_ERR_NOMEM;
        b->spans = sp;
        b->cap = cap;
    }
    b->ids[b->n] = id;
    b->spans[b->n].begin = begin;
    b->spans[b->n].end = end;
    b->n++;
    return TERSE_OK;
}

void tok_buf_free(tok_buf *b) {
    free(b->ids);
    free(b->spans);
    memset(b, 0, sizeof *b);
}

/* ========================================================================================== */
/* Hashing                                                                                     */

uint64_t tok_hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}

/* A table for n keys, at most half full. */
int tok_hash_init(tok_hash *h, int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap *= 2;
    h->slot = terse_malloc(cap * sizeof *h->slot, "token hash");
    if (!h->slot) return TERSE_ERR_NOMEM;
    memset(h->slot, 0xff, cap * sizeof *h->slot);
    h->mask = cap - 1;
    return TERSE_OK;
}

/* Insert id under key s: a later id with the same key replaces the earlier one, as llama.cpp's
 * token_to_id map does. */
void tok_hash_put(tok_hash *h, char *const *keys, const uint32_t *lens, int32_t id) {
    const char *s = keys[id];
    uint32_t n = lens[id];
    uint64_t i = tok_hash_bytes((const uint8_t *)s, n) & h->mask;
    for (;; i = (i + 1) & h->mask) {
        int32_t t = h->slot[i];
        if (t < 0 || (lens[t] == n && memcmp(keys[t], s, n) == 0)) {
            h->slot[i] = id;
            return;
        }
    }
}

static int32_t hash_get(const tok_hash *h, char *const *keys, const uint32_t *lens,
                        const void *s, size_t n) {
    if (!h->slot) return -1;
    uint64_t i = tok_hash_bytes(s, n) & h->mask;
    for (;; i = (i + 1) & h->mask) {
        int32_t t = h->slot[i];
        if (t < 0) return -1;
        if (lens[t] == n && keys[t] && memcmp(keys[t], s, n) == 0) return t;
    }
}

int32_t tok_find(const terse_vocab *v, const char *s, size_t len) {
    return hash_get(&v->by_piece, v->piece, v->piece_len, s, len);
}

int32_t tok_find_raw(const terse_vocab *v, const uint8_t *s, size_t len) {
    return hash_get(&v->by_raw, v->raw, v->raw_len, s, len);
}

/* ========================================================================================== */
/* Building blocks shared by both loaders                                                      */

static terse_vocab *vocab_new(void) {
    terse_vocab *v = terse_calloc(1, sizeof *v, "vocabulary");
    if (!v) return NULL;
    v->bos = v->eos = v->unk = v->sep = v->pad = v->cls = v->mask = v->eot = v->eom = -1;
    for (int i = 0; i < 256; i++) v->byte_id[i] = -1;
    return v;
}

void terse_vocab_free(terse_vocab *v) {
    if (!v) return;
    tok_bpe_free(v);
    if (v->wpm && v->wpm_free) v->wpm_free(v->wpm);
    if (v->ugm && v->ugm_free) v->ugm_free(v->ugm);
    free(v->arena);
    free(v->piece);
    free(v->piece_len);
    free(v->score);
    free(v->ttype);
    free(v->by_piece.slot);
    free(v->special);
    free(v->raw_arena);
    if (v->raw != v->piece) free(v->raw);
    if (v->raw_len != v->piece_len) free(v->raw_len);
    free(v->by_raw.slot);
    free(v->merges);
    free(v);
}

/* Allocate the per-token arrays and the arena for arena_bytes of piece text. */
static int alloc_tokens(terse_vocab *v, int32_t n, size_t arena_bytes) {
    v->n_tokens = n;
    v->arena = terse_malloc(arena_bytes ? arena_bytes : 1, "token pieces");
    v->piece = terse_calloc((size_t)n, sizeof *v->piece, "token pieces");
    v->piece_len = terse_calloc((size_t)n, sizeof *v->piece_len, "token lengths");
    v->score = terse_calloc((size_t)n, sizeof *v->score, "token scores");
    v->ttype = terse_malloc((size_t)n, "token types");
    if (!v->arena || !v->piece || !v->piece_len || !v->score || !v->ttype)
        return TERSE_ERR_NOMEM;
    memset(v->ttype, TOK_TYPE_NORMAL, (size_t)n);
    return TERSE_OK;
}

static int build_piece_hash(terse_vocab *v) {
    int rc = tok_hash_init(&v->by_piece, v->n_tokens);
    if (rc) return rc;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->piece[i]) tok_hash_put(&v->by_piece, v->piece, v->piece_len, i);
    return TERSE_OK;
}

/* Specials: control, user-defined and unknown tokens with non-empty text, grouped by first
 * byte, longest first within a group (ties: lower id first). */
typedef struct {
    uint8_t first;
    uint32_t len;
    int32_t id;
} special_key;

static int special_cmp(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_specials(terse_vocab *v) {
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t t = v->ttype[i];
        if ((t == TOK_TYPE_CONTROL || t == TOK_TYPE_USER || t == TOK_TYPE_UNKNOWN) &&
            v->piece_len[i] > 0)
            n++;
    }
    memset(v->special_at, 0, sizeof v->special_at);
    if (n == 0) return TERSE_OK;
    special_key *k = terse_malloc((size_t)n * sizeof *k, "special tokens");
    v->special = terse_malloc((size_t)n * sizeof *v->special, "special tokens");
    if (!k || !v->special) {
        free(k);
        return TERSE_ERR_NOMEM;
    }
    int32_t j = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t t = v->ttype[i];
        if ((t == TOK_TYPE_CONTROL || t == TOK_TYPE_USER || t == TOK_TYPE_UNKNOWN) &&
            v->piece_len[i] > 0)
            k[j++] = (special_key){(uint8_t)v->piece[i][0], v->piece_len[i], i};
    }
    qsort(k, (size_t)n, sizeof *k, special_cmp);
    int32_t count[256] = {0};
    for (int32_t i = 0; i < n; i++) {
        v->special[i] = k[i].id;
        count[k[i].first]++;
    }
    v->special_at[0] = 0;
    for (int c = 0; c < 256; c++) v->special_at[c + 1] = v->special_at[c] + count[c];
    v->n_special = n;
    free(k);
    return TERSE_OK;
}

/* ========================================================================================== */
/* GGUF                                                                                        */

/* Optional special id: absent keeps the default; negative or out of range means "none"
 * (llama.cpp warns and falls back the same way). */
static void read_special_id(const gguf_file *g, const char *key, int32_t n, int32_t *id) {
    int32_t x;
    if (gguf_get_i32_or(g, key, *id, &x) != TERSE_OK) { /* not an integer that fits int32 */
        terse_err_clear();
        x = -1;
    }
    *id = x >= 0 && x < n ? x : -1;
}

static int read_flag(const gguf_file *g, const char *key, int *flag) {
    return gguf_get_bool_or(g, key, *flag, flag);
}

/* Copy a (ptr, len) string into a fixed buffer, NUL-terminated. */
static int copy_name(gguf_str s, char *dst, size_t cap, const char *key) {
    if (s.len >= cap) return terse_err(TERSE_ERR_FORMAT, "%s: value too long (%llu bytes)", key,
                                       (unsigned long long)s.len);
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = 0;
    return TERSE_OK;
}

/* Merges: "left right" strings; rank = index. Pairs whose parts or result are missing from
 * the vocabulary are skipped (they could never fire). */
static int load_merges(terse_vocab *v, const gguf_kv *kv) {
    if (kv->n > INT32_MAX) return terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.merges: %llu "
                                            "entries", (unsigned long long)kv->n);
    uint64_t cap = 16;
    while (cap < kv->n * 2) cap *= 2;
    v->merges = terse_malloc(cap * sizeof *v->merges, "merge table");
    if (!v->merges) return TERSE_ERR_NOMEM;
    for (uint64_t i = 0; i < cap; i++) v->merges[i].key = UINT64_MAX;
    v->merge_mask = cap - 1;
    char *buf = NULL;
    size_t buf_cap = 0;
    for (uint64_t r = 0; r < kv->n; r++) {
        gguf_str s = gguf_arr_str(kv, r);
        /* the separator is the first space after the first byte (a piece is never empty) */
        uint64_t sp = 1;
        while (sp < s.len && s.ptr[sp] != ' ') sp++;
        if (sp >= s.len) {
            free(buf);
            return terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.merges[%llu]: no space in '%.*s'",
                             (unsigned long long)r, (int)(s.len > 64 ? 64 : s.len), s.ptr);
        }
        int32_t a = tok_find(v, s.ptr, sp);
        int32_t b = tok_find(v, s.ptr + sp + 1, s.len - sp - 1);
        if (a < 0 || b < 0) continue;
        size_t n = s.len - 1;
        if (n > buf_cap) {
            char *nb = terse_realloc(buf, n, "merge text");
            if (!nb) {
                free(buf);
                return TERSE_ERR_NOMEM;
            }
            buf = nb;
            buf_cap = n;
        }
        memcpy(buf, s.ptr, sp);
        memcpy(buf + sp, s.ptr + sp + 1, s.len - sp - 1);
        int32_t c = tok_find(v, buf, n);
        if (c < 0) continue;
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        uint64_t h = (key * 0x9E3779B97F4A7C15ull) >> 20;
        for (uint64_t i = h & v->merge_mask;; i = (i + 1) & v->merge_mask) {
            if (v->merges[i].key == UINT64_MAX) {
                v->merges[i] = (tok_merge){key, (int32_t)r, c};
                v->n_merges++;
                break;
            }
            if (v->merges[i].key == key) break; /* duplicate pair: the first rank wins */
        }
    }
    free(buf);
    return TERSE_OK;
}

/* Unigram: the precompiled charsmap (llama.cpp's key), the normalizer ops and the Metaspace
 * prepend scheme (terse's keys; without them: llama.cpp's add_space_prefix). */
static int ugm_from_gguf(const gguf_file *g, terse_vocab *v) {
    const uint8_t *cm = NULL;
    size_t cm_len = 0;
    int rc, prepend = 1;
    if (gguf_find(g, "tokenizer.ggml.precompiled_charsmap") >= 0) {
        const gguf_kv *kv;
        if ((rc = gguf_get_arr(g, "tokenizer.ggml.precompiled_charsmap", GGUF_UINT8, &kv))) return rc;
        cm = kv->data;
        cm_len = (size_t)kv->n;
    }
    const char *ops[16];
    size_t op_len[16];
    int n_ops = 0;
    if (gguf_find(g, "tokenizer.terse.normalizer") >= 0) {
        const gguf_kv *kv;
        if ((rc = gguf_get_arr(g, "tokenizer.terse.normalizer", GGUF_STRING, &kv))) return rc;
        if (kv->n > 16)
            return terse_err(TERSE_ERR_FORMAT, "tokenizer.terse.normalizer: %llu ops (at most 16)",
                             (unsigned long long)kv->n);
        for (uint64_t i = 0; i < kv->n; i++, n_ops++) {
            gguf_str s = gguf_arr_str(kv, i);
            ops[i] = s.ptr;
            op_len[i] = (size_t)s.len;
        }
    } else if (cm_len) {
        ops[0] = "precompiled", op_len[0] = 11;
        ops[1] = "collapse: ", op_len[1] = 10;
        n_ops = 2;
    }
    if (gguf_find(g, "tokenizer.terse.metaspace_prepend") >= 0) {
        gguf_str s;
        if ((rc = gguf_get_str(g, "tokenizer.terse.metaspace_prepend", &s))) return rc;
        prepend = gguf_str_eq(s, "never") ? 0 : gguf_str_eq(s, "first") ? 2 : 1;
    } else {
        int asp = 1;
        if ((rc = read_flag(g, "tokenizer.ggml.add_space_prefix", &asp))) return rc;
        prepend = asp ? 1 : 0;
    }
    return tok_ugm_init(v, cm, cm_len, ops, op_len, n_ops, prepend);
}

int terse_vocab_from_gguf(const gguf_file *g, terse_vocab **out) {
    *out = NULL;
    if (gguf_find(g, "tokenizer.ggml.model") < 0) return TERSE_OK;
    terse_vocab *v = vocab_new();
    if (!v) return TERSE_ERR_NOMEM;
    int rc;
    gguf_str model, pre = {"default", 7};
    if ((rc = gguf_get_str(g, "tokenizer.ggml.model", &model))) goto fail;
    if ((rc = copy_name(model, v->model, sizeof v->model, "tokenizer.ggml.model"))) goto fail;
    if (!strcmp(v->model, "none") || !strcmp(v->model, "no_vocab")) { /* llama.cpp: no vocabulary */
        terse_vocab_free(v);
        return TERSE_OK;
    }
    if (gguf_find(g, "tokenizer.ggml.pre") >= 0 && (rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre)))
        goto fail;
    if ((rc = copy_name(pre, v->pre, sizeof v->pre, "tokenizer.ggml.pre"))) goto fail;

    if (strcmp(v->model, "llama") == 0) v->type = TERSE_VOCAB_SPM;
    else if (strcmp(v->model, "gpt2") == 0) v->type = TERSE_VOCAB_BPE;
    else if (strcmp(v->model, "bert") == 0) v->type = TERSE_VOCAB_WPM;
    else if (strcmp(v->model, "t5") == 0) v->type = TERSE_VOCAB_UGM;
    else {
        rc = terse_err(TERSE_ERR_UNSUPPORTED, "tokenizer.ggml.model: '%s' not supported "
                       "(llama, gpt2, bert, t5 are)", v->model);
        goto fail;
    }

    /* pieces */
    const gguf_kv *tokens;
    if ((rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tokens))) goto fail;
    if (tokens->n == 0 || tokens->n > INT32_MAX) {
        rc = terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.tokens: %llu entries",
                       (unsigned long long)tokens->n);
        goto fail;
    }
    int32_t n = (int32_t)tokens->n;
    size_t arena = 0;
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(tokens, (uint64_t)i);
        if (s.len > UINT32_MAX || !size_add(arena, (size_t)s.len + 1, &arena)) {
            rc = terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: length %llu", i,
                           (unsigned long long)s.len);
            goto fail;
        }
    }
    if ((rc = alloc_tokens(v, n, arena))) goto fail;
    char *p = v->arena;
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(tokens, (uint64_t)i);
        memcpy(p, s.ptr, s.len);
        p[s.len] = 0;
        v->piece[i] = p;
        v->piece_len[i] = (uint32_t)s.len;
        p += s.len + 1;
    }

    /* scores and types (optional) */
    if (gguf_find(g, "tokenizer.ggml.scores") >= 0) {
        const gguf_kv *kv;
        if ((rc = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32, &kv))) goto fail;
        if (kv->n != tokens->n) {
            rc = terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.scores: %llu entries for %d tokens",
                           (unsigned long long)kv->n, n);
            goto fail;
        }
        for (int32_t i = 0; i < n; i++) v->score[i] = gguf_arr_f32(kv, (uint64_t)i);
    }
    if (gguf_find(g, "tokenizer.ggml.token_type") >= 0) {
        const gguf_kv *kv;
        if ((rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &kv))) goto fail;
        if (kv->n != tokens->n) {
            rc = terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.token_type: %llu entries for %d "
                           "tokens", (unsigned long long)kv->n, n);
            goto fail;
        }
        for (int32_t i = 0; i < n; i++) {
            int32_t t = gguf_arr_i32(kv, (uint64_t)i);
            if (t < 0 || t > TOK_TYPE_BYTE) {
                rc = terse_err(TERSE_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %d (0..6)", i, t);
                goto fail;
            }
            v->ttype[i] = (uint8_t)t;
        }
    }
    if ((rc = build_piece_hash(v))) goto fail;

    /* special ids and flags: llama.cpp's defaults per model, then the file's keys */
    if (v->type == TERSE_VOCAB_SPM) {
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_bos = 1, v->add_space_prefix = 1;
    } else if (v->type == TERSE_VOCAB_WPM) {
        v->unk = 100, v->sep = 102, v->pad = 0, v->cls = 101, v->mask = 103;
        v->add_bos = 1, v->add_eos = 1;
    }
    int32_t *defaults[] = {&v->bos, &v->eos, &v->unk, &v->sep, &v->pad, &v->cls, &v->mask};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (*defaults[i] >= n) *defaults[i] = -1; /* a tiny vocabulary lacks the default id */
    const struct { const char *key; int32_t *id; } ids[] = {
        {"tokenizer.ggml.bos_token_id", &v->bos},
        {"tokenizer.ggml.eos_token_id", &v->eos},
        {"tokenizer.ggml.unknown_token_id", &v->unk},
        {"tokenizer.ggml.seperator_token_id", &v->sep}, /* sic: llama.cpp's spelling */
        {"tokenizer.ggml.padding_token_id", &v->pad},
        {"tokenizer.ggml.cls_token_id", &v->cls},
        {"tokenizer.ggml.mask_token_id", &v->mask},
        {"tokenizer.ggml.eot_token_id", &v->eot},
        {"tokenizer.ggml.eom_token_id", &v->eom},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        read_special_id(g, ids[i].key, n, ids[i].id);
    if ((rc = read_flag(g, "tokenizer.ggml.add_bos_token", &v->add_bos))) goto fail;
    if ((rc = read_flag(g, "tokenizer.ggml.add_eos_token", &v->add_eos))) goto fail;
    if ((rc = read_flag(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix))) goto fail;
    if ((rc = build_specials(v))) goto fail;

    /* model-specific state */
    if (v->type == TERSE_VOCAB_BPE) {
        const gguf_kv *kv;
        if ((rc = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &kv))) goto fail;
        if ((rc = load_merges(v, kv))) goto fail;
        if ((rc = tok_bpe_init(v))) goto fail;
    } else if (v->type == TERSE_VOCAB_SPM) {
        if ((rc = tok_spm_init(v))) goto fail;
    } else if (v->type == TERSE_VOCAB_UGM) {
        if ((rc = ugm_from_gguf(g, v))) goto fail;
    } else {
        if (v->bos < 0) v->bos = v->cls;
        if (v->eos < 0) v->eos = v->sep;
        int64_t phantom = 0, hashes = 0; /* which spelling marks word starts */
        for (int32_t i = 0; i < n; i++) {
            phantom += v->piece_len[i] > 3 && memcmp(v->piece[i], "\xe2\x96\x81", 3) == 0;
            hashes += v->piece_len[i] > 2 && memcmp(v->piece[i], "##", 2) == 0;
        }
        v->wpm_phantom = phantom > hashes;
        int lower = 1;
        if ((rc = read_flag(g, "tokenizer.terse.lowercase", &lower))) goto fail;
        v->wpm_cased = !lower;
        if ((rc = tok_wpm_init(v))) goto fail;
    }
    *out = v;
    return TERSE_OK;
fail:
    terse_vocab_free(v);
    return rc;
}

/* ========================================================================================== */
/* .tiktoken rank files: one "base64(token) rank" per line                                    */

static int b64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode s[0..n) into out (room for 3*n/4+3 bytes); returns the length or -1. */
static int64_t b64_decode(const uint8_t *s, size_t n, uint8_t *out) {
    uint32_t acc = 0;
    int bits = 0;
    int64_t o = 0;
    size_t i = 0;
    for (; i < n && s[i] != '='; i++) {
        int d = b64_value(s[i]);
        if (d < 0) return -1;
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    for (; i < n; i++)
        if (s[i] != '=') return -1;
    return o;
}

static int vocab_from_tiktoken(const char *path, terse_vocab **out) {
    terse_file f;
    int rc = terse_file_open(path, 1, &f);
    if (rc) return rc;
    terse_vocab *v = vocab_new();
    if (!v) {
        terse_file_close(&f);
        return TERSE_ERR_NOMEM;
    }
    /* pass 1: count lines, find the largest rank */
    int64_t lines = 0, max_rank = -1;
    const uint8_t *d = f.data, *end = f.data + f.size;
    for (const uint8_t *l = d; l < end;) {
        const uint8_t *e = memchr(l, '\n', (size_t)(end - l));
        if (!e) e = end;
        const uint8_t *sp = memchr(l, ' ', (size_t)(e - l));
        if (e > l) {
            if (!sp) {
                rc = terse_err(TERSE_ERR_FORMAT, "%s: line %lld: no space", path,
                               (long long)lines + 1);
                goto fail;
            }
            int64_t r = 0;
            const uint8_t *q = sp + 1;
            if (q >= e || q[0] < '0' || q[0] > '9') r = -1;
            for (; r >= 0 && q < e && *q != '\r'; q++) {
                if (*q < '0' || *q > '9' || r > 100000000) r = -1;
                else r = r * 10 + (*q - '0');
            }
            if (r < 0) {
                rc = terse_err(TERSE_ERR_FORMAT, "%s: line %lld: bad rank", path,
                               (long long)lines + 1);
                goto fail;
            }
            if (r > max_rank) max_rank = r;
            lines++;
        }
        l = e + 1;
    }
    if (lines == 0) {
        rc = terse_err(TERSE_ERR_FORMAT, "%s: no tokens", path);
        goto fail;
    }
    int32_t n = (int32_t)(max_rank + 1);
    if ((rc = alloc_tokens(v, n, f.size + (size_t)n))) goto fail;
    memset(v->ttype, TOK_TYPE_UNUSED, (size_t)n);
    /* pass 2: decode; ranks not present stay empty pieces of type UNUSED */
    char *p = v->arena;
    int64_t line = 0;
    for (const uint8_t *l = d; l < end;) {
        const uint8_t *e = memchr(l, '\n', (size_t)(end - l));
        if (!e) e = end;
        if (e > l) {
            line++;
            const uint8_t *sp = memchr(l, ' ', (size_t)(e - l));
            int64_t r = 0;
            for (const uint8_t *q = sp + 1; q < e && *q != '\r'; q++) r = r * 10 + (*q - '0');
            int64_t m = b64_decode(l, (size_t)(sp - l), (uint8_t *)p);
            if (m <= 0 || v->piece[r]) {
                rc = terse_err(TERSE_ERR_FORMAT, "%s: line %lld: %s", path, (long long)line,
                               m <= 0 ? "bad base64 token" : "duplicate rank");
                goto fail;
            }
            p[m] = 0;
            v->piece[r] = p;
            v->piece_len[r] = (uint32_t)m;
            v->ttype[r] = TOK_TYPE_NORMAL;
            p += m + 1;
        }
        l = e + 1;
    }
    for (int32_t i = 0; i < n; i++)
        if (!v->piece[i]) {
            v->piece[i] = p; /* the arena keeps a spare byte per token: an empty piece */
            *p++ = 0;
        }
    terse_file_close(&f);
    v->type = TERSE_VOCAB_TIKTOKEN;
    strcpy(v->model, "tiktoken");
    strcpy(v->pre, "cl100k");
    if ((rc = build_piece_hash(v))) goto fail_open;
    if ((rc = tok_bpe_init(v))) goto fail_open;
    for (int b = 0; b < 256; b++) /* else text with that byte would lose it, uncounted */
        if (v->byte_id[b] < 0) {
            rc = terse_err(TERSE_ERR_FORMAT, "%s: no token for the byte 0x%02x (a tiktoken rank "
                           "file holds all 256 single bytes)", path, b);
            goto fail_open;
        }
    *out = v;
    return TERSE_OK;
fail:
    terse_file_close(&f);
fail_open:
    terse_vocab_free(v);
    return rc;
}

/* ========================================================================================== */
/* Public: loading and properties                                                              */

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int terse_vocab_load(const char *path, terse_vocab **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_vocab_load: out is NULL");
    *out = NULL;
    if (!path) return terse_err(TERSE_ERR_INVALID, "terse_vocab_load: path is NULL");
    /* GGUF by magic, tiktoken by name */
    FILE *fp = fopen(path, "rb");
    if (!fp) return terse_err(TERSE_ERR_IO, "%s: cannot open", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        gguf_file *g;
        int rc = gguf_open(path, 1, &g);
        if (rc) return rc;
        rc = terse_vocab_from_gguf(g, out);
        gguf_close(g);
        if (rc == TERSE_OK && !*out)
            rc = terse_err(TERSE_ERR_FORMAT, "%s: no tokenizer.ggml.model key", path);
        return rc;
    }
    if (has_suffix(path, ".tiktoken")) return vocab_from_tiktoken(path, out);
    return terse_err(TERSE_ERR_FORMAT, "%s: neither a GGUF file nor a .tiktoken rank file", path);
}

terse_vocab_type terse_vocab_kind(const terse_vocab *v) { return v ? v->type : TERSE_VOCAB_NONE; }
int32_t terse_vocab_size(const terse_vocab *v) { return v ? v->n_tokens : 0; }
int32_t terse_vocab_bos(const terse_vocab *v) { return v ? v->bos : -1; }
int32_t terse_vocab_eos(const terse_vocab *v) { return v ? v->eos : -1; }

const char *terse_vocab_piece(const terse_vocab *v, int32_t id) {
    if (!v || id < 0 || id >= v->n_tokens) return NULL;
    return v->piece[id];
}

/* ========================================================================================== */
/* Tokenize: special-token split, then the model's encoder per fragment                        */

/* The special token starting at s[0..n), leftmost-longest; -1 if none. */
static int32_t match_special(const terse_vocab *v, const uint8_t *s, size_t n) {
    int32_t a = v->special_at[s[0]], b = v->special_at[s[0] + 1];
    for (int32_t i = a; i < b; i++) {
        int32_t id = v->special[i];
        uint32_t l = v->piece_len[id];
        if (l <= n && memcmp(v->piece[id], s, l) == 0) return id;
    }
    return -1;
}

static int encode_fragment(const terse_vocab *v, const uint8_t *s, size_t n, int64_t base,
                           int first, tok_buf *out) {
    switch (v->type) {
    case TERSE_VOCAB_BPE:
    case TERSE_VOCAB_TIKTOKEN:
        return tok_bpe_encode(v, s, n, base, out);
    case TERSE_VOCAB_SPM:
        return tok_spm_encode(v, s, n, base, first, out);
    case TERSE_VOCAB_UGM:
        return tok_ugm_encode(v, s, n, base, first, out);
    case TERSE_VOCAB_WPM: {
        int64_t from = out->n;
        int rc = tok_wpm_encode(v, s, n, out);
        for (int64_t i = from; i < out->n; i++) {
            out->spans[i].begin += base;
            out->spans[i].end += base;
        }
        return rc;
    }
    default:
        return terse_err(TERSE_ERR_INVALID, "tokenize: vocabulary has no type");
    }
}

/* The spans must tile the input. Encoders cover every byte they see, but a byte can map to no
 * token at all (a vocabulary without that byte and without <unk>; whitespace and dropped
 * characters in WordPiece, where a fragment of only whitespace next to a special token yields
 * nothing). Such a gap joins a neighbour's span: the next token when it is an ordinary one,
 * else the previous ordinary one, else whichever neighbour exists (a special token's span then
 * includes the gap). With no token at all there is nothing to carry the bytes. */
static int is_ordinary(const terse_vocab *v, const tok_buf *out, int64_t i) {
    uint8_t t = v->ttype[out->ids[i]];
    return out->spans[i].end > out->spans[i].begin && t != TOK_TYPE_CONTROL && t != TOK_TYPE_USER;
}

static void close_gaps(const terse_vocab *v, tok_buf *out, int64_t len) {
    int64_t at = 0;
    for (int64_t i = 0; i <= out->n; i++) {
        int64_t begin = i < out->n ? out->spans[i].begin : len;
        if (begin > at) { /* gap [at, begin) between token i-1 and token i */
            int prev_ok = i > 0 && is_ordinary(v, out, i - 1);
            int next_ok = i < out->n && is_ordinary(v, out, i);
            int take_next = next_ok || (!prev_ok && i < out->n && (i == 0 ||
                            out->spans[i].end > out->spans[i].begin));
            if (take_next) out->spans[i].begin = at;
            else if (i > 0) out->spans[i - 1].end = begin;
        }
        if (i < out->n && out->spans[i].end > at) at = out->spans[i].end;
    }
}

static int encode_all(const terse_vocab *v, const uint8_t *text, size_t len, int add_special,
                      tok_buf *out) {
    int rc;
    if (add_special && v->add_bos && v->bos >= 0 && (rc = tok_buf_push(out, v->bos, 0, 0)))
        return rc;
    size_t frag = 0;
    int first = 1;
    if (v->n_special > 0) {
        for (size_t i = 0; i < len;) {
            int32_t id = v->special_at[text[i]] < v->special_at[text[i] + 1]
                             ? match_special(v, text + i, len - i) : -1;
            if (id < 0) {
                i++;
                continue;
            }
            if (i > frag && (rc = encode_fragment(v, text + frag, i - frag, (int64_t)frag, first,
                                                  out)))
                return rc;
            size_t e = i + v->piece_len[id];
            if ((rc = tok_buf_push(out, id, (int64_t)i, (int64_t)e))) return rc;
            i = frag = e;
            first = 1;
        }
    }
    if (len > frag && (rc = encode_fragment(v, text + frag, len - frag, (int64_t)frag, first, out)))
        return rc;
    if (add_special && v->add_eos && v->eos >= 0 &&
        (rc = tok_buf_push(out, v->eos, (int64_t)len, (int64_t)len)))
        return rc;
    close_gaps(v, out, (int64_t)len);
    return TERSE_OK;
}

int64_t terse_tokenize(const terse_vocab *v, const char *text, size_t len, int add_special,
                       int32_t *ids, terse_span *spans, int64_t cap) {
    if (!v) return terse_err(TERSE_ERR_INVALID, "terse_tokenize: vocabulary is NULL");
    if (!text && len) return terse_err(TERSE_ERR_INVALID, "terse_tokenize: text is NULL");
    if (cap < 0 || (cap > 0 && !ids))
        return terse_err(TERSE_ERR_INVALID, "terse_tokenize: ids NULL or cap %lld < 0",
                         (long long)cap);
    if (len >= (size_t)1 << 31) /* encoders keep offsets inside a word in 32 bits */
        return terse_err(TERSE_ERR_RANGE, "terse_tokenize: text of %zu bytes (2 GiB at most)",
                         len);
    tok_buf b = {0};
    int rc = encode_all(v, (const uint8_t *)text, len, add_special, &b);
    if (rc) {
        tok_buf_free(&b);
        return rc;
    }
    int64_t m = b.n < cap ? b.n : cap;
    if (m > 0) {
        memcpy(ids, b.ids, (size_t)m * sizeof *ids);
        if (spans) memcpy(spans, b.spans, (size_t)m * sizeof *spans);
    }
    int64_t n = b.n;
    tok_buf_free(&b);
    return n;
}

int64_t terse_token_count(const terse_vocab *v, const char *text, size_t len) {
    return terse_tokenize(v, text, len, 0, NULL, NULL, 0);
}

/* ========================================================================================== */
/* Detokenize                                                                                  */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

typedef struct {
    char *buf;
    int64_t cap, n;
} out_bytes;

static void emit(out_bytes *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, o->n++)
        if (o->n < o->cap) o->buf[o->n] = s[i];
}

int64_t terse_detokenize(const terse_vocab *v, const int32_t *ids, int64_t n, char *buf,
                         int64_t cap) {
    if (!v || (n > 0 && !ids) || cap < 0 || (cap > 0 && !buf))
        return terse_err(TERSE_ERR_INVALID, "terse_detokenize: bad arguments");
    out_bytes o = {buf, cap, 0};
    int at_start = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= v->n_tokens)
            return terse_err(TERSE_ERR_INVALID, "terse_detokenize: ids[%lld] = %d out of range "
                             "[0, %d)", (long long)i, id, v->n_tokens);
        uint8_t t = v->ttype[id];
        if (t == TOK_TYPE_CONTROL || t == TOK_TYPE_UNKNOWN || t == TOK_TYPE_UNUSED) continue;
        const char *p = v->piece[id];
        uint32_t l = v->piece_len[id];
        switch (v->type) {
        case TERSE_VOCAB_SPM:
            if (t == TOK_TYPE_BYTE && l == 6 && hex_digit(p[3]) >= 0 && hex_digit(p[4]) >= 0) {
                char c = (char)(hex_digit(p[3]) * 16 + hex_digit(p[4]));
                emit(&o, &c, 1);
            } else {
                for (uint32_t k = 0; k < l; k++) {
                    if (k + 2 < l && (uint8_t)p[k] == 0xE2 && (uint8_t)p[k + 1] == 0x96 &&
                        (uint8_t)p[k + 2] == 0x81) {
                        if (!(at_start && k == 0 && v->add_space_prefix)) emit(&o, " ", 1);
                        k += 2;
                    } else {
                        emit(&o, p + k, 1);
                    }
                }
            }
            break;
        case TERSE_VOCAB_UGM: /* Metaspace decoding: "\u2581" is a space, none in the first
                               * piece when a prefix was prepended */
            for (uint32_t k = 0; k < l; k++) {
                if (k + 2 < l && (uint8_t)p[k] == 0xE2 && (uint8_t)p[k + 1] == 0x96 &&
                    (uint8_t)p[k + 2] == 0x81) {
                    if (!(at_start && tok_ugm_prepend_scheme(v))) emit(&o, " ", 1);
                    k += 2;
                } else {
                    emit(&o, p + k, 1);
                }
            }
            break;
        case TERSE_VOCAB_BPE:
        case TERSE_VOCAB_TIKTOKEN:
            if (v->raw && v->raw[id]) emit(&o, v->raw[id], v->raw_len[id]);
            else emit(&o, p, l);
            break;
        default: /* WordPiece: "##x" continues a word and "x" starts one (HF spelling), or
                  * "\u2581x" starts a word and "x" continues it (llama.cpp's phantom space) */
            if (l >= 2 && p[0] == '#' && p[1] == '#') {
                emit(&o, p + 2, l - 2);
            } else if (l >= 3 && memcmp(p, "\xe2\x96\x81", 3) == 0) {
                if (!at_start) emit(&o, " ", 1);
                emit(&o, p + 3, l - 3);
            } else {
                if (!at_start && !v->wpm_phantom) emit(&o, " ", 1);
                emit(&o, p, l);
            }
            break;
        }
        at_start = 0;
    }
    if (o.n < cap) buf[o.n] = 0;
    return o.n;
}
