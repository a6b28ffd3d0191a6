/* cache.c - a word cache for one tokenize call: word bytes -> the tokens they merge into.
 *
 * Prose repeats its words, and merging a word (heap, merge-table lookups) costs far more than
 * hashing it. The encoders (bpe.c, spm.c) keep one cache per call: the vocabulary itself stays
 * immutable and shareable across threads. Each entry stores the tokens with their spans
 * relative to the word's first input byte. The cache starts only after a few dozen words (a
 * short call never pays for it), small, doubles as words arrive, and is emptied when full at
 * its largest (it keeps up with the recent words).
 *
 * Not here: anything that outlives a call.
 */
#include "tok/vocab.h"

#include <stdlib.h>

#define CACHE_START_WORDS 32     /* words seen before the cache is set up */
#define CACHE_MIN_SLOTS (1u << 12) /* hash slots at first; doubled as words arrive */
#define CACHE_MAX_SLOTS (1u << 17) /* the table holds at most half as many words */   /* hash slots; the table holds at most half as many words */
#define CACHE_MAX_WORD 64        /* longer words are merged every time */

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t tok_off, tok_n;
} cache_entry;

struct tok_cache {
    uint64_t words;          /* words looked up so far */
    uint32_t *slot;          /* (n_slot) entry index + 1, 0 = empty */
    uint32_t n_slot;
    cache_entry *entry;      /* (n_slot / 2) */
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
    uint32_t mask = c->n_slot - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
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

/* A table of n slots holding the current entries. */
static int resize(tok_cache *c, uint32_t n) {
    uint32_t *slot = calloc(n, sizeof *slot);
    cache_entry *entry = realloc(c->entry, n / 2 * sizeof *entry);
    if (!slot || !entry) {
        free(slot);
        if (entry) c->entry = entry;
        return 0;
    }
    c->entry = entry;
    for (uint32_t e = 0; e < c->n_entry; e++) {
        uint32_t i = (uint32_t)entry[e].hash & (n - 1);
        while (slot[i]) i = (i + 1) & (n - 1);
        slot[i] = e + 1;
    }
    free(c->slot);
    c->slot = slot;
    c->n_slot = n;
    return 1;
}

void tok_cache_put(tok_cache *c, const uint8_t *w, size_t n, const tok_piece *t, uint32_t k) {
    if (!c || n > CACHE_MAX_WORD || c->words < CACHE_START_WORDS) return;
    if (!c->slot || c->n_entry == c->n_slot / 2) {
        if (c->n_slot == CACHE_MAX_SLOTS) { /* full at its largest: start over */
            memset(c->slot, 0, CACHE_MAX_SLOTS * sizeof *c->slot);
            c->n_entry = 0;
            c->keys_n = c->toks_n = 0;
        } else if (!resize(c, c->slot ? c->n_slot * 2 : CACHE_MIN_SLOTS)) {
            return; /* no room: merging still works */
        }
    }
    if (!grow((void **)&c->keys, &c->keys_cap, c->keys_n + n, 1) ||
        !grow((void **)&c->toks, &c->toks_cap, c->toks_n + k, sizeof *t))
        return;
    uint64_t h = tok_hash_bytes(w, n);
    uint32_t i = (uint32_t)h & (c->n_slot - 1);
    while (c->slot[i]) i = (i + 1) & (c->n_slot - 1);
    cache_entry *e = &c->entry[c->n_entry];
    *e = (cache_entry){h, (uint32_t)c->keys_n, (uint32_t)n, (uint32_t)c->toks_n, k};
    memcpy(c->keys + c->keys_n, w, n);
    memcpy(c->toks + c->toks_n, t, k * sizeof *t);
    c->keys_n += n;
    c->toks_n += k;
    c->slot[i] = ++c->n_entry;
}
