/* spm.c - SentencePiece-style BPE: the `llama` tokenizer model of GGUF files (Llama 2,
 * Phi-3, TinyLlama, stories260K after conversion).
 *
 * The story: the text is normalised the way llama.cpp and Hugging Face's Llama tokenizer do
 * it: every space becomes U+2581 (the "▁" meta symbol), and a fragment that starts the input
 * or follows a special token gets a dummy "▁" in front (tokenizer.ggml.add_space_prefix).
 * The normalised text is cut into UTF-8 characters; adjacent pairs whose concatenation is a
 * token are queued by that token's score (highest first, leftmost on ties) and merged through
 * a binary heap over a linked list of symbols. A final symbol that is not a token (a character
 * outside the vocabulary) falls back to its bytes as <0xXX> tokens.
 *
 * Words: when no token of the vocabulary contains a "▁" right after another character (true
 * of every SentencePiece vocab we know; checked at load), no merge can cross the boundary in
 * front of a run of "▁", so the text is merged word by word (exactly the same result, with
 * small working memory). Otherwise the whole fragment is one word.
 *
 * Spans: a symbol knows the input bytes it came from. The dummy prefix comes from no input
 * byte (empty span at the fragment start), a "▁" from its space, anything else from its own
 * bytes; byte-fallback tokens of a character get one byte each.
 *
 * Not here: special tokens (vocab.c), Unigram models (SentencePiece's other algorithm), the
 * precompiled normaliser charsmap (NFKC) that some SentencePiece models carry.
 */
#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>

#define META "\xe2\x96\x81" /* U+2581 */
#define META_LEN 3

/* ========================================================================================== */
/* Init                                                                                        */

static int is_meta(const char *s) { return memcmp(s, META, META_LEN) == 0; }

int tok_spm_init(terse_vocab *v) {
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        v->byte_id[b] = tok_find(v, hex, 6);
    }
    /* word split is exact only if no token has a "▁" right after some other character */
    v->spm_word_split = 1;
    for (int32_t id = 0; id < v->n_tokens && v->spm_word_split; id++) {
        const char *p = v->piece[id];
        uint32_t n = v->piece_len[id];
        for (uint32_t i = 0; i < n;) {
            if (i + META_LEN <= n && is_meta(p + i)) {
                i += META_LEN;
                continue;
            }
            uint32_t cp;
            int l = terse_utf8_decode((const uint8_t *)p + i, n - i, &cp);
            i += l > 0 ? (uint32_t)l : 1;
            if (i + META_LEN <= n && is_meta(p + i)) {
                v->spm_word_split = 0;
                break;
            }
        }
    }
    return TERSE_OK;
}

/* ========================================================================================== */
/* Merging one word                                                                            */

typedef struct {
    int32_t id;           /* token of the symbol's text, -1 if none */
    int32_t prev, next;
    uint32_t off, len;    /* bytes of the normalised word; len == 0: merged away */
    int64_t begin, end;   /* input span (absolute) */
} spm_sym;

/* A queued pair: symbol `left` and its right neighbour as they were when queued; stale when
 * left was merged away or the symbol right of it now ends elsewhere in the word. */
typedef struct {
    float score;          /* higher merges first */
    int32_t left;         /* ties go to the leftmost pair */
    uint32_t right_end;   /* the right neighbour's off + len when queued */
    int32_t id;
} spm_pair;

typedef struct {
    const terse_vocab *v;
    tok_buf *out;
    char *norm;           /* (norm_cap) a flag byte (1: starts with the dummy prefix), then the
                           * normalised word: the word cache's key */
    size_t norm_n, norm_cap;
    spm_sym *sym;         /* (sym_cap) */
    size_t sym_n, sym_cap;
    spm_pair *heap;       /* (heap_cap) */
    size_t heap_n, heap_cap;
    tok_cache *cache;
    int uncacheable;      /* a byte of the word became no token at all */
} spm_run;

static inline int pair_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(spm_run *r, spm_pair p) {
    if (r->heap_n == r->heap_cap) {
        size_t cap = r->heap_cap ? r->heap_cap * 2 : 256;
        spm_pair *h = terse_reallocarray(r->heap, cap, sizeof *h, "spm queue");
        if (!h) return TERSE_ERR_NOMEM;
        r->heap = h;
        r->heap_cap = cap;
    }
    spm_pair *h = r->heap;
    size_t i = r->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = p;
    return TERSE_OK;
}

static spm_pair heap_pop(spm_run *r) {
    spm_pair *h = r->heap;
    spm_pair top = h[0], last = h[--r->heap_n];
    size_t i = 0, m = r->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && pair_before(&h[c + 1], &h[c])) c++;
        if (!pair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m > 0) h[i] = last;
    return top;
}

static int try_pair(spm_run *r, int32_t l, int32_t rt) {
    if (l < 0 || rt < 0) return TERSE_OK;
    const spm_sym *a = &r->sym[l], *b = &r->sym[rt];
    int32_t id = tok_find(r->v, r->norm + a->off, a->len + b->len);
    if (id < 0) return TERSE_OK;
    return heap_push(r, (spm_pair){r->v->score[id], l, b->off + b->len, id});
}

/* Append one character of the normalised word: bytes s[0..n) from input span [begin, end). */
static int add_char(spm_run *r, const char *s, uint32_t n, int64_t begin, int64_t end) {
    if (r->norm_n + n > r->norm_cap) {
        size_t cap = r->norm_cap ? r->norm_cap : 256;
        while (cap < r->norm_n + n) cap *= 2;
        char *p = terse_realloc(r->norm, cap, "spm text");
        if (!p) return TERSE_ERR_NOMEM;
        r->norm = p;
        r->norm_cap = cap;
    }
    if (r->sym_n == r->sym_cap) {
        size_t cap = r->sym_cap ? r->sym_cap * 2 : 256;
        spm_sym *p = terse_reallocarray(r->sym, cap, sizeof *p, "spm symbols");
        if (!p) return TERSE_ERR_NOMEM;
        r->sym = p;
        r->sym_cap = cap;
    }
    memcpy(r->norm + r->norm_n, s, n);
    int32_t i = (int32_t)r->sym_n++;
    r->sym[i] = (spm_sym){-1, i - 1, -1, (uint32_t)r->norm_n, n, begin, end};
    if (i > 0) r->sym[i - 1].next = i;
    r->norm_n += n;
    return TERSE_OK;
}

/* A symbol that is no token: one <0xXX> per byte (or <unk> where even that is missing). */
static int byte_fallback(spm_run *r, const spm_sym *s) {
    const uint8_t *p = (const uint8_t *)r->norm + s->off;
    int same = s->end - s->begin == (int64_t)s->len; /* bytes are the input's own */
    int rc;
    for (uint32_t k = 0; k < s->len; k++) {
        int32_t id = r->v->byte_id[p[k]];
        if (id < 0) id = r->v->unk;
        int64_t b = same ? s->begin + k : (k == 0 ? s->begin : s->end);
        int64_t e = same ? s->begin + k + 1 : s->end;
        if (id < 0) { /* no token: vocab.c gives the byte to a neighbour's span */
            r->uncacheable = 1;
            continue;
        }
        if ((rc = tok_buf_push(r->out, id, b, e))) return rc;
    }
    return TERSE_OK;
}

/* Merge the current word and append its tokens; the word buffer is emptied. */
static int flush_word(spm_run *r) {
    if (r->sym_n == 0) return TERSE_OK;
    int rc;
    spm_sym *s = r->sym;
    int64_t start = s[0].begin;
    r->norm[0] = s[0].begin == s[0].end; /* dummy prefix: same text, different spans */
    uint32_t k;
    const tok_piece *t = tok_cache_get(r->cache, (const uint8_t *)r->norm, r->norm_n, &k);
    size_t n_sym = r->sym_n, end_of_key = r->norm_n;
    r->sym_n = 0;
    r->norm_n = 1; /* the buffers are reused by the next word only after this returns */
    if (t) {
        for (uint32_t i = 0; i < k; i++)
            if ((rc = tok_buf_push(r->out, t[i].id, start + t[i].begin, start + t[i].end)))
                return rc;
        return TERSE_OK;
    }
    int64_t first = r->out->n;
    r->uncacheable = 0;
    r->heap_n = 0;
    for (size_t i = 0; i < n_sym; i++) s[i].id = tok_find(r->v, r->norm + s[i].off, s[i].len);
    for (size_t i = 0; i + 1 < n_sym; i++)
        if ((rc = try_pair(r, (int32_t)i, (int32_t)i + 1))) return rc;
    while (r->heap_n > 0) {
        spm_pair p = heap_pop(r);
        spm_sym *l = &s[p.left];
        if (l->len == 0 || l->next < 0 || s[l->next].off + s[l->next].len != p.right_end)
            continue; /* stale */
        spm_sym *rt = &s[l->next];
        l->id = p.id;
        l->len += rt->len;
        l->end = rt->end;
        l->next = rt->next;
        if (rt->next >= 0) s[rt->next].prev = p.left;
        rt->len = 0;
        if ((rc = try_pair(r, l->prev, p.left))) return rc;
        if ((rc = try_pair(r, p.left, l->next))) return rc;
    }
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        if (s[i].id >= 0) rc = tok_buf_push(r->out, s[i].id, s[i].begin, s[i].end);
        else rc = byte_fallback(r, &s[i]);
        if (rc) return rc;
    }
    tok_piece done[64];
    k = (uint32_t)(r->out->n - first);
    if (!r->uncacheable && k <= 64 && end_of_key <= 64) {
        for (uint32_t i = 0; i < k; i++)
            done[i] = (tok_piece){r->out->ids[first + i],
                                  (uint32_t)(r->out->spans[first + i].begin - start),
                                  (uint32_t)(r->out->spans[first + i].end - start)};
        tok_cache_put(r->cache, (const uint8_t *)r->norm, end_of_key, done, k);
    }
    return TERSE_OK;
}

/* ========================================================================================== */
/* Encoding a fragment                                                                         */

int tok_spm_encode(const terse_vocab *v, const uint8_t *text, size_t len, int64_t base,
                   int first_fragment, tok_buf *out) {
    if (len == 0) return TERSE_OK;
    if (!v->spm_word_split && len > ((size_t)1 << 30)) /* one word: 32-bit offsets, 3 bytes/space */
        return terse_err(TERSE_ERR_RANGE, "spm: fragment of %zu bytes (1 GiB at most)", len);
    spm_run r = {.v = v, .out = out, .cache = tok_cache_new()};
    r.norm = terse_malloc(256, "spm text");
    if (!r.norm) {
        tok_cache_free(r.cache);
        return TERSE_ERR_NOMEM;
    }
    r.norm_cap = 256;
    r.norm_n = 1; /* the flag byte */
    int rc = TERSE_OK;
    int prev_meta = 0; /* the last character of the word is a "▁" */
    if (first_fragment && v->add_space_prefix) {
        rc = add_char(&r, META, META_LEN, base, base);
        prev_meta = 1;
    }
    for (size_t i = 0; i < len && rc == TERSE_OK;) {
        int64_t at = base + (int64_t)i;
        if (text[i] == ' ') {
            if (v->spm_word_split && !prev_meta && r.sym_n > 0 && (rc = flush_word(&r))) break;
            rc = add_char(&r, META, META_LEN, at, at + 1);
            prev_meta = 1;
            i++;
            continue;
        }
        uint32_t cp;
        int l = terse_utf8_decode(text + i, len - i, &cp);
        if (l == 0) l = 1; /* an invalid byte is a character of its own (it falls back) */
        rc = add_char(&r, (const char *)text + i, (uint32_t)l, at, at + l);
        prev_meta = 0;
        i += (size_t)l;
    }
    if (rc == TERSE_OK) rc = flush_word(&r);
    free(r.norm);
    free(r.sym);
    free(r.heap);
    tok_cache_free(r.cache);
    return rc;
}
