/* baselines.c - compression without a language model, for comparison at equal budgets:
 * random dropping of tokens, phrases or sentences, a TF-IDF keyword filter, and
 * the two controls (no context; the full prompt).
 *
 * The prompt is assembled as terse_compress assembles it: instruction, contexts and question
 * joined by "\n\n", the instruction and question kept whole, a separator kept only between
 * kept pieces. The budget is terse_compress's: rate x the prompt's tokens in v (rounded),
 * the whole output counted; what the fixed pieces and separators take is subtracted and the
 * rest goes to the contexts. Units are taken in the baseline's order (random permutation, or
 * tf-idf descending) and a unit is kept when it still fits, so the output ends within one
 * unit of the budget (re-tokenizing joined text can move the count by a token or two; the
 * harness reports the achieved rate).
 *
 * Units: the same segmenters as Selective Context's levels (src/text): tokens of v, phrases
 * (text_phrases: noun-phrase chunks, other words, punctuation), sentences (text_sentences);
 * a token belongs to the unit holding its first byte. TF-IDF ranks words (text_words) and
 * takes the sentences of the contexts as its documents. What is kept is the original bytes
 * of the kept tokens, in order.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "text/text.h"

/* ---------------------------------------------------------------------------------------- */
/* Units of one context                                                                      */

typedef struct {
    int64_t tok0, tok1;  /* tokens [tok0, tok1) */
    double score;        /* tf-idf (TFIDF), random key otherwise */
} unit;

typedef struct {
    const char *text;
    size_t len;
    int32_t *ids;
    terse_span *spans;
    int64_t n_tok;
    unit *units;
    int64_t n_units;
    uint8_t *keep;       /* (n_tok) */
    int64_t n_kept;      /* tokens with keep set */
} ctx_units;

static bool is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int tokenize_ctx(const terse_vocab *v, const char *text, ctx_units *cu) {
    cu->text = text;
    cu->len = strlen(text);
    int64_t n = terse_tokenize(v, text, cu->len, 0, NULL, NULL, 0);
    if (n < 0) return (int)n;
    cu->ids = terse_malloc((size_t)(n + 1) * sizeof *cu->ids, "baseline ids");
    cu->spans = terse_malloc((size_t)(n + 1) * sizeof *cu->spans, "baseline spans");
    cu->units = terse_malloc((size_t)(n + 1) * sizeof *cu->units, "baseline units");
    cu->keep = terse_calloc((size_t)(n + 1), 1, "baseline keep");
    if (!cu->ids || !cu->spans || !cu->units || !cu->keep) return TERSE_ERR_NOMEM;
    int64_t got = terse_tokenize(v, text, cu->len, 0, cu->ids, cu->spans, n + 1);
    if (got < 0) return (int)got;
    cu->n_tok = got;
    return TERSE_OK;
}

static void units_tokens(ctx_units *cu) {
    for (int64_t i = 0; i < cu->n_tok; i++) cu->units[i] = (unit){i, i + 1, 0};
    cu->n_units = cu->n_tok;
}

/* units from a tiling segmentation of the context (src/text): a token belongs to the unit
 * that holds its first byte; units without a token of their own are skipped */
static int units_from_text(ctx_units *cu, int64_t (*segment)(const char *, size_t, terse_span **)) {
    terse_span *sp = NULL;
    int64_t ns = segment(cu->text, cu->len, &sp);
    if (ns < 0) return (int)ns;
    cu->n_units = 0;
    int64_t u = 0;
    for (int64_t i = 0; i < cu->n_tok; i++) {
        int64_t at = cu->spans[i].begin;
        int64_t prev = u;
        while (u + 1 < ns && sp[u].end <= at) u++;
        if (i == 0 || u != prev) cu->units[cu->n_units++] = (unit){i, i + 1, 0};
        else cu->units[cu->n_units - 1].tok1 = i + 1;
    }
    free(sp);
    return TERSE_OK;
}

/* sentence boundaries for tf-idf's documents: byte offsets where a new sentence starts */
static bool sentence_start(const char *t, size_t len, size_t i) {
    if (i == 0 || i >= len) return false;
    uint8_t prev = (uint8_t)t[i - 1];
    if (prev == '\n') return true;
    if (!is_space((uint8_t)t[i])) return false;
    return prev == '.' || prev == '?' || prev == '!';
}

/* ---------------------------------------------------------------------------------------- */
/* Scores                                                                                    */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void score_random(ctx_units *cu, uint64_t seed, int32_t ctx_index) {
    uint64_t s = seed ^ (0xA24BAED4963EE407ull * (uint64_t)(ctx_index + 1));
    for (int64_t u = 0; u < cu->n_units; u++) cu->units[u].score = (double)(splitmix64(&s) >> 11);
}

/* the lowercase alphanumeric key of a word unit into buf; its length (0: no letters) */
static size_t word_key(const ctx_units *cu, const unit *u, char *buf, size_t cap) {
    size_t n = 0;
    for (int64_t t = u->tok0; t < u->tok1; t++)
        for (int64_t b = cu->spans[t].begin; b < cu->spans[t].end && n + 1 < cap; b++) {
            uint8_t c = (uint8_t)cu->text[b];
            if (isalnum(c) || c >= 0x80) buf[n++] = (char)tolower(c);
        }
    buf[n] = 0;
    return n;
}

typedef struct {
    char *key;
    int64_t tf, df, last_doc;
} term;

static int by_key(const void *a, const void *b) {
    return strcmp(((const term *)a)->key, ((const term *)b)->key);
}

static term *find_term(term *t, int64_t n, const char *key) {
    term k = {.key = (char *)key};
    return bsearch(&k, t, (size_t)n, sizeof *t, by_key);
}

/* tf-idf of every word unit; documents = the sentences of the contexts:
 * score = (1 + ln tf(w, sentence)) * (ln((1 + D) / (1 + df(w))) + 1), sublinear tf and
 * scikit-learn's smooth idf, so a word found in every sentence ("the") ranks below one found
 * once, and punctuation (no letters or digits) ranks last. */
static int score_tfidf(ctx_units *cus, int32_t n_ctx) {
    int64_t n_words = 0;
    for (int32_t c = 0; c < n_ctx; c++) n_words += cus[c].n_units;
    term *terms = terse_calloc((size_t)(n_words + 1), sizeof *terms, "tf-idf terms");
    char **keys = terse_calloc((size_t)(n_words + 1), sizeof *keys, "tf-idf keys");
    int64_t *doc = terse_calloc((size_t)(n_words + 1), sizeof *doc, "tf-idf docs");
    int rc = (!terms || !keys || !doc) ? TERSE_ERR_NOMEM : TERSE_OK;
    int64_t nt = 0, D = 0, w = 0;
    char key[256];
    /* every word's key and document */
    for (int32_t c = 0; c < n_ctx && !rc; c++) {
        ctx_units *cu = &cus[c];
        size_t b = 0;
        D++;
        for (int64_t u = 0; u < cu->n_units && !rc; u++, w++) {
            size_t at = (size_t)cu->spans[cu->units[u].tok0].begin;
            for (size_t k = b + 1; k <= at && u > 0; k++)
                if (sentence_start(cu->text, cu->len, k)) { D++; break; }
            b = at;
            doc[w] = D;
            if (!word_key(cu, &cu->units[u], key, sizeof key)) continue;
            if (!(keys[w] = strdup(key))) { rc = terse_err(TERSE_ERR_NOMEM, "tf-idf key"); break; }
            terms[nt].key = keys[w];
            terms[nt++].last_doc = -1;
        }
    }
    if (rc) goto done;
    /* the vocabulary (keys shared with keys[]) and document frequencies */
    qsort(terms, (size_t)nt, sizeof *terms, by_key);
    int64_t m = 0;
    for (int64_t i = 0; i < nt; i++)
        if (m == 0 || strcmp(terms[m - 1].key, terms[i].key)) terms[m++] = terms[i];
    for (int64_t i = 0; i < w; i++) {
        if (!keys[i]) continue;
        term *t = find_term(terms, m, keys[i]);
        if (t->last_doc != doc[i]) t->df++, t->last_doc = doc[i];
    }
    /* scores: tf within the word's own sentence (a short scan: sentences are short) */
    w = 0;
    for (int32_t c = 0; c < n_ctx; c++)
        for (int64_t u = 0; u < cus[c].n_units; u++, w++) {
            unit *un = &cus[c].units[u];
            un->score = -1.0 - (double)w * 1e-12; /* punctuation: last, in order */
            if (!keys[w]) continue;
            int64_t tf = 0;
            for (int64_t j = w; j >= 0 && doc[j] == doc[w]; j--) tf += keys[j] && !strcmp(keys[j], keys[w]);
            for (int64_t j = w + 1; j < n_words && doc[j] == doc[w]; j++) tf += keys[j] && !strcmp(keys[j], keys[w]);
            term *t = find_term(terms, m, keys[w]);
            un->score = (1.0 + log((double)tf)) * (log((1.0 + (double)D) / (1.0 + (double)t->df)) + 1.0)
                        - (double)w * 1e-12; /* ties: earlier first */
        }
done:
    for (int64_t i = 0; keys && i < n_words; i++) free(keys[i]);
    free(keys);
    free(terms);
    free(doc);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Selection and output                                                                      */

typedef struct {
    int32_t ctx;
    int64_t u;
    double score;
} pick;

static int by_score_desc(const void *a, const void *b) {
    const pick *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->ctx != y->ctx) return x->ctx < y->ctx ? -1 : 1;
    return (x->u > y->u) - (x->u < y->u);
}

static bool nonempty(const char *s) { return s && *s; }

int terse_baseline_compress(const terse_vocab *v, const terse_prompt *prompt, terse_baseline b,
                            double rate, uint64_t seed, char **out, size_t *len) {
    if (!v || !prompt || !out || (prompt->n_contexts > 0 && !prompt->contexts) ||
        prompt->n_contexts < 0)
        return terse_err(TERSE_ERR_INVALID, "terse_baseline_compress: NULL argument");
    if (!(rate > 0 && rate <= 1))
        return terse_err(TERSE_ERR_INVALID, "terse_baseline_compress: rate %g not in (0, 1]", rate);
    if ((int)b < 0 || b > TERSE_BASELINE_FULL)
        return terse_err(TERSE_ERR_INVALID, "terse_baseline_compress: baseline %d", (int)b);
    *out = NULL;
    int32_t nc = prompt->n_contexts;
    ctx_units *cus = terse_calloc((size_t)(nc ? nc : 1), sizeof *cus, "baseline contexts");
    if (!cus) return TERSE_ERR_NOMEM;
    pick *picks = NULL;
    int rc = TERSE_OK;
    terse_buf o = {0};

    /* the original prompt and its token count */
    terse_buf full = {0};
    int pieces = 0;
    const char *sep = "\n\n";
    if (nonempty(prompt->instruction)) terse_buf_puts(&full, prompt->instruction), pieces++;
    for (int32_t c = 0; c < nc; c++) {
        if (!prompt->contexts[c]) { rc = terse_err(TERSE_ERR_INVALID, "context %d is NULL", c); break; }
        if (pieces++) terse_buf_puts(&full, sep);
        terse_buf_puts(&full, prompt->contexts[c]);
    }
    if (nonempty(prompt->question)) {
        if (pieces++) terse_buf_puts(&full, sep);
        terse_buf_puts(&full, prompt->question);
    }
    if (!rc && full.err) rc = terse_err(full.err, "baseline prompt");
    if (rc) goto done;
    if (b == TERSE_BASELINE_FULL) { rc = terse_buf_take(&full, out); goto done_len; }

    int64_t total = terse_token_count(v, full.s ? full.s : "", full.n);
    if (total < 0) { rc = (int)total; goto done; }
    int64_t target = (int64_t)floor(rate * (double)total + 0.5);
    int64_t fixed = 0, n_sep_tok = terse_token_count(v, sep, 2);
    if (nonempty(prompt->instruction)) fixed += terse_token_count(v, prompt->instruction, strlen(prompt->instruction));
    if (nonempty(prompt->question)) fixed += terse_token_count(v, prompt->question, strlen(prompt->question));
    int n_fixed = nonempty(prompt->instruction) + nonempty(prompt->question);
    if (n_fixed == 2) fixed += n_sep_tok;
    int64_t budget = b == TERSE_BASELINE_NO_CONTEXT ? 0 : target - fixed;

    /* units and their order */
    int64_t n_picks = 0;
    for (int32_t c = 0; c < nc && !rc && budget > 0; c++) {
        if ((rc = tokenize_ctx(v, prompt->contexts[c], &cus[c]))) break;
        if (b == TERSE_BASELINE_RANDOM_TOKEN) units_tokens(&cus[c]);
        else if (b == TERSE_BASELINE_RANDOM_SENTENCE) rc = units_from_text(&cus[c], text_sentences);
        else if (b == TERSE_BASELINE_RANDOM_PHRASE) rc = units_from_text(&cus[c], text_phrases);
        else rc = units_from_text(&cus[c], text_words);
        if (rc) break;
        if (b != TERSE_BASELINE_TFIDF) score_random(&cus[c], seed, c);
        n_picks += cus[c].n_units;
    }
    if (!rc && budget > 0 && b == TERSE_BASELINE_TFIDF) rc = score_tfidf(cus, nc);
    if (rc) goto done;
    if (budget > 0) {
        picks = terse_malloc((size_t)(n_picks + 1) * sizeof *picks, "baseline order");
        if (!picks) { rc = TERSE_ERR_NOMEM; goto done; }
        int64_t k = 0;
        for (int32_t c = 0; c < nc; c++)
            for (int64_t u = 0; u < cus[c].n_units; u++) picks[k++] = (pick){c, u, cus[c].units[u].score};
        qsort(picks, (size_t)n_picks, sizeof *picks, by_score_desc);
        int64_t used = 0, ctx_kept = 0;
        for (int64_t i = 0; i < n_picks; i++) {
            ctx_units *cu = &cus[picks[i].ctx];
            const unit *un = &cu->units[picks[i].u];
            /* a context's first kept unit brings a separator when another piece is there */
            bool sep_needed = cu->n_kept == 0 && n_fixed + ctx_kept > 0;
            int64_t cost = (un->tok1 - un->tok0) + (sep_needed ? n_sep_tok : 0);
            if (used + cost > budget) continue;
            used += cost;
            ctx_kept += cu->n_kept == 0;
            for (int64_t t = un->tok0; t < un->tok1; t++) cu->keep[t] = 1;
            cu->n_kept += un->tok1 - un->tok0;
        }
    }

    /* output: the kept pieces joined by separators */
    pieces = 0;
    if (nonempty(prompt->instruction)) terse_buf_puts(&o, prompt->instruction), pieces++;
    for (int32_t c = 0; c < nc && budget > 0; c++) {
        ctx_units *cu = &cus[c];
        if (cu->n_kept == 0) continue;
        if (pieces++) terse_buf_puts(&o, sep);
        for (int64_t t = 0; t < cu->n_tok; t++)
            if (cu->keep[t])
                terse_buf_put(&o, cu->text + cu->spans[t].begin,
                           (size_t)(cu->spans[t].end - cu->spans[t].begin));
    }
    if (nonempty(prompt->question)) {
        if (pieces++) terse_buf_puts(&o, sep);
        terse_buf_puts(&o, prompt->question);
    }
    rc = terse_buf_take(&o, out);
done_len:
    if (!rc && len) *len = strlen(*out);
done:
    terse_buf_free(&o);
    terse_buf_free(&full);
    for (int32_t c = 0; c < nc; c++) {
        free(cus[c].ids);
        free(cus[c].spans);
        free(cus[c].units);
        free(cus[c].keep);
    }
    free(cus);
    free(picks);
    return rc;
}
