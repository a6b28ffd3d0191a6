/* cache.c - a word cache for one tokenize call: word bytes -> the tokens they merge into.
 *
 * Prose repeats its words, and merging a word (heap, merge-table lookups) costs far more than
 * hashing it. The encoders (bpe.c, spm.c) keep one cache per call: the vocabulary itself stays
 * immutable and shareable across threads. Each entry stores the tokens with their spans
 * relative to the word's first input byte. The cache starts only after a few dozen words (a
 * short call never pays for it) and is emptied when full (it keeps up with the recent words).
 *
 * Not here: anything that outlives a call.
 */
#include "tok/vocab.h"

#include <stdlib.h>

#define CACHE_START_WORDS 32     /* words seen before the cache is set up */
#define CACHE_SLOTS (1u << 15)   /* hash slots; the table holds at most half as many words */
#define CACHE_MAX_WORD 64        /* longer words are merged every time */

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t tok_off, tok_n;
} cache_entry;

struct tok_cache {
    uint64_t words;          /* words looked up so far */
    uint32_t *slot;          /* (CACHE_SLOTS) entry index + 1, 0 = empty */
    cache_entry *entry;      /* (CACHE_SLOTS / 2) */
    uint32_t n_entry;
    uint8_t *keys;           /* word bytes of all entries */
    size_t keys_n, keys_cap;
    tok_piece *toks;         /* tokens of all entries */
    size_t toks_n, toks_cap;
};

tok_cache *tok_cache_new(void) { return calloc(1, sizeof(tok_cache)); }

void tok_cache_free(tok_cache *c) {
    if (!c) return;
    free(c->slot);
    free(c->entry);
    free(c->keys);
    free(c->toks);
    free(c);
}

const tok_piece *tok_cache_get(tok_cache *c, const uint8_t *w, size_t n, uint32_t *count) {
    if (!c) return NULL;
    c->words++;
    if (!c->slot || n > CACHE_MAX_WORD) return NULL;
    uint64_t h = tok_hash_bytes(w, n);
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        uint32_t e = c->slot[i];
        if (e == 0) return NULL;
        const cache_entry *x = &c->entry[e - 1];
        if (x->hash == h && x->key_len == n && memcmp(c->keys + x->key_off, w, n) == 0) {
            *count = x->tok_n;
            return c->toks + x->tok_off;
        }
    }
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

void tok_cache_put(tok_cache *c, const uint8_t *w, size_t n, const tok_piece *t, uint32_t k) {
    if (!c || n > CACHE_MAX_WORD || c->words < CACHE_START_WORDS) return;
    if (!c->slot) {
        c->slot = calloc(CACHE_SLOTS, sizeof *c->slot);
        c->entry = malloc(CACHE_SLOTS / 2 * sizeof *c->entry);
        if (!c->slot || !c->entry) { /* no cache: merging still works */
            free(c->slot);
            free(c->entry);
            c->slot = NULL;
            c->entry = NULL;
            return;
        }
    }
    if (c->n_entry == CACHE_SLOTS / 2) { /* full: start over */
        memset(c->slot, 0, CACHE_SLOTS * sizeof *c->slot);
        c->n_entry = 0;
        c->keys_n = c->toks_n = 0;
    }
    if (!grow((void **)&c->keys, &c->keys_cap, c->keys_n + n, 1) ||
        !grow((void **)&c->toks, &c->toks_cap, c->toks_n + k, sizeof *t))
        return;
    uint64_t h = tok_hash_bytes(w, n);
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (c->slot[i]) i = (i + 1) & (CACHE_SLOTS - 1);
    cache_entry *e = &c->entry[c->n_entry];
    *e = (cache_entry){h, (uint32_t)c->keys_n, (uint32_t)n, (uint32_t)c->toks_n, k};
    memcpy(c->keys + c->keys_n, w, n);
    memcpy(c->toks + c->toks_n, t, k * sizeof *t);
    c->keys_n += n;
    c->toks_n += k;
    c->slot[i] = ++c->n_entry;
}
