/* words.c - the small shared machinery of the evaluation layer: word lists in one arena,
 * interning words to integers and sorted n-gram tables. (The reports' XML escaping is base's
 * terse_buf_xml.)
 *
 * Not here: any metric's tokenisation rules (each metric file has its reference's own).
 */
#include "eval/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Word lists                                                                                */

void ev_words_push(ev_words *ws, const char *s, size_t n) {
    if (ws->arena.err) return;
    if (ws->n == ws->cap) {
        int32_t cap = ws->cap ? ws->cap * 2 : 64;
        size_t *off = terse_reallocarray(ws->off, (size_t)cap, sizeof *off, "word list");
        if (!off) { ws->arena.err = TERSE_ERR_NOMEM; return; }
        ws->off = off;
        ws->cap = cap;
    }
    ws->off[ws->n++] = ws->arena.n;
    terse_buf_put(&ws->arena, s, n);
    terse_buf_put(&ws->arena, "", 1); /* the separator NUL */
}

int ev_words_done(ev_words *ws) {
    if (ws->arena.err) return terse_err(ws->arena.err, "word list: out of memory");
    free(ws->w);
    ws->w = terse_malloc((size_t)(ws->n ? ws->n : 1) * sizeof *ws->w, "word pointers");
    if (!ws->w) return TERSE_ERR_NOMEM;
    for (int32_t i = 0; i < ws->n; i++) ws->w[i] = ws->arena.s + ws->off[i];
    return TERSE_OK;
}

void ev_words_free(ev_words *ws) {
    free(ws->w);
    free(ws->off);
    terse_buf_free(&ws->arena);
    memset(ws, 0, sizeof *ws);
}

static bool word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'' || c >= 0x80;
}

int ev_split_words(const char *text, ev_words *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (s[i]) {
        uint8_t c = s[i];
        if (c == ' ' || (c >= '\t' && c <= '\r')) { i++; continue; }
        size_t j = i + 1;
        if (word_byte(c))
            while (s[j] && word_byte(s[j])) j++;
        ev_words_push(out, text + i, j - i);
        i = j;
    }
    int rc = ev_words_done(out);
    if (rc) ev_words_free(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Interning                                                                                 */

typedef struct {
    const char *w;
    int32_t list, idx;
} intern_item;

static int by_word(const void *a, const void *b) {
    return strcmp(((const intern_item *)a)->w, ((const intern_item *)b)->w);
}

int ev_intern(ev_words *const *lists, int32_t k, int32_t **ids) {
    int64_t total = 0;
    for (int32_t i = 0; i < k; i++) {
        total += lists[i]->n;
        ids[i] = NULL;
    }
    intern_item *items = terse_malloc((size_t)(total ? total : 1) * sizeof *items, "intern");
    if (!items) return TERSE_ERR_NOMEM;
    int64_t m = 0;
    for (int32_t i = 0; i < k; i++) {
        ids[i] = terse_malloc((size_t)(lists[i]->n ? lists[i]->n : 1) * sizeof **ids, "word ids");
        if (!ids[i]) {
            for (int32_t j = 0; j <= i; j++) free(ids[j]), ids[j] = NULL;
            free(items);
            return TERSE_ERR_NOMEM;
        }
        for (int32_t j = 0; j < lists[i]->n; j++)
            items[m++] = (intern_item){lists[i]->w[j], i, j};
    }
    qsort(items, (size_t)m, sizeof *items, by_word);
    int32_t id = -1;
    for (int64_t t = 0; t < m; t++) {
        if (t == 0 || strcmp(items[t].w, items[t - 1].w)) id++;
        ids[items[t].list][items[t].idx] = id;
    }
    free(items);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* n-gram tables                                                                             */

static _Thread_local int32_t gram_n;

static int cmp_gram(const int32_t *a, const int32_t *b, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

static int by_gram(const void *a, const void *b) {
    return cmp_gram(*(const int32_t *const *)a, *(const int32_t *const *)b, gram_n);
}

int ev_grams_build(const int32_t *ids, int64_t len, int32_t n, ev_grams *out) {
    out->n = n;
    out->m = len >= n ? len - n + 1 : 0;
    out->g = terse_malloc((size_t)(out->m ? out->m : 1) * sizeof *out->g, "n-grams");
    if (!out->g) return TERSE_ERR_NOMEM;
    for (int64_t i = 0; i < out->m; i++) out->g[i] = ids + i;
    gram_n = n;
    qsort((void *)out->g, (size_t)out->m, sizeof *out->g, by_gram);
    return TERSE_OK;
}

void ev_grams_free(ev_grams *g) {
    free((void *)g->g);
    g->g = NULL;
    g->m = 0;
}

/* first index whose n-gram is >= key (upper = 0) or > key (upper = 1) */
static int64_t gram_bound(const ev_grams *g, const int32_t *key, int upper) {
    int64_t lo = 0, hi = g->m;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = cmp_gram(g->g[mid], key, g->n);
        if (c < 0 || (upper && c == 0)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int64_t ev_grams_count(const ev_grams *g, const int32_t *key) {
    return gram_bound(g, key, 1) - gram_bound(g, key, 0);
}

int64_t ev_grams_clipped(const ev_grams *a, const ev_grams *refs, int32_t n_refs) {
    int64_t total = 0;
    for (int64_t i = 0; i < a->m;) {
        int64_t j = i + 1;
        while (j < a->m && cmp_gram(a->g[j], a->g[i], a->n) == 0) j++;
        int64_t best = 0;
        for (int32_t r = 0; r < n_refs; r++) {
            int64_t c = ev_grams_count(&refs[r], a->g[i]);
            if (c > best) best = c;
        }
        total += (j - i) < best ? (j - i) : best;
        i = j;
    }
    return total;
}
