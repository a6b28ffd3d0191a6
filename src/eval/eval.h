/* eval.h - the internal helpers of the evaluation layer (not API): word lists stored in one
 * arena, interning of words into small integers, and sorted n-gram tables with counts (text
 * is built in base's terse_buf, XML escaped by its terse_buf_xml). The metric files (bleu.c, rouge.c, meteor.c,
 * ...) tokenize in their own reference's way and then share these pieces. Implemented in
 * words.c.
 */
#ifndef TERSE_EVAL_H
#define TERSE_EVAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "terse.h"

/* ---------------------------------------------------------------------------------------- */
/* Word lists                                                                                */

typedef struct {
    char **w;       /* (n) NUL-terminated words, valid after ev_words_done() */
    int32_t n;
    int32_t cap;
    size_t *off;    /* (n) offsets into arena while building */
    terse_buf arena;
} ev_words;

void ev_words_push(ev_words *ws, const char *s, size_t n);
/* Fix the word pointers; returns TERSE_OK or the first failure. */
int  ev_words_done(ev_words *ws);
void ev_words_free(ev_words *ws);

/* Words for METEOR and BERTScore alignment: runs of ASCII letters, digits, apostrophes and
 * non-ASCII bytes, or single other non-space bytes. */
int ev_split_words(const char *text, ev_words *out);

/* Give every distinct word of lists[0..k) a small integer (equal words, equal ids);
 * ids[i] (malloc'ed, lists[i]->n entries) receives list i's ids. */
int ev_intern(ev_words *const *lists, int32_t k, int32_t **ids);

/* ---------------------------------------------------------------------------------------- */
/* n-gram tables                                                                             */

typedef struct {
    const int32_t **g;  /* (m) pointers to the first id of each n-gram, sorted */
    int64_t m;
    int32_t n;
} ev_grams;

/* All n-grams of ids[0..len), sorted. Empty when len < n. */
int  ev_grams_build(const int32_t *ids, int64_t len, int32_t n, ev_grams *out);
void ev_grams_free(ev_grams *g);
/* Occurrences of the n-gram key in g. */
int64_t ev_grams_count(const ev_grams *g, const int32_t *key);
/* sum over distinct n-grams of a of min(count in a, max over refs of count in ref). */
int64_t ev_grams_clipped(const ev_grams *a, const ev_grams *refs, int32_t n_refs);

/* F1 of precision and recall (0 when both are 0). */
static inline double ev_f1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* Porter stemmer (libstemmer "porter", the original algorithm) over one lowercase word (stem.c):
 * writes the stem into out (cap bytes, NUL-terminated); returns its length or a negative
 * status. The handle is opened per thread on first use. */
int ev_porter_stem(const char *word, size_t n, char *out, size_t cap);

/* Every synonym of word for METEOR (NLTK: synsets over all parts of speech, lemma names
 * without '_', plus word itself) into out (unsorted, may repeat). wordnet.c. */
int ev_wordnet_synonyms(const terse_wordnet *wn, const char *word, ev_words *out);

/* Evaluate prompt[0..np) + cont[0..nc-1) from an empty cache and write the log-softmax rows
 * (nc x n_vocab) that predict cont[0..nc). The cache holds those tokens after. kl.c. */
int ev_next_logprobs(terse_ctx *c, const int32_t *prompt, int32_t np, const int32_t *cont,
                     int32_t nc, int32_t n_vocab, float *rows);

#endif
