/* wordnet.c - a reader for WordNet 3.0's database files (Princeton's wndb(5) format, as
 * Debian's wordnet-base installs them under /usr/share/wordnet), enough for METEOR's synonym
 * stage: morphy (exception lists, then the detachment rules) and the lemma names of every
 * synset of a word, exactly as NLTK's WordNetCorpusReader.synsets() + Synset.lemmas() give
 * them (NLTK 3.8, nltk/corpus/reader/wordnet.py).
 *
 * Files: index.{noun,verb,adj,adv} (one lemma a line: "lemma pos synset_cnt p_cnt [ptr...]
 * sense_cnt tagsense_cnt offset..."), data.POS (a synset a line, found by its byte offset:
 * "offset lex_filenum ss_type w_cnt(hex) word lex_id ..."), POS.exc ("inflected base...").
 * Index and exception files are mapped and their lines sorted once at load time (so the
 * files' own order is not trusted); data files are read in place at the offsets the index
 * gives, each checked against the file size and the offset written at the line's start.
 * Not here: pointers (hypernyms...), glosses, sense keys, frames, other languages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

enum { WN_NOUN, WN_VERB, WN_ADJ, WN_ADV, WN_NPOS };
static const char *const pos_file[WN_NPOS] = {"noun", "verb", "adj", "adv"};

typedef struct {
    terse_file f;
    const char **line;     /* (n) starts of the entry lines, sorted by their first field */
    int64_t n;
} wn_table;

struct terse_wordnet {
    wn_table index[WN_NPOS], exc[WN_NPOS];
    terse_file data[WN_NPOS];
};

/* ---------------------------------------------------------------------------------------- */
/* Sorted line tables                                                                        */

static _Thread_local const char *sort_end;

/* compare the first fields (up to a space or newline) of two lines */
static int key_cmp(const char *a, const char *a_end, const char *b, const char *b_end) {
    for (;; a++, b++) {
        int ea = a >= a_end || *a == ' ' || *a == '\n';
        int eb = b >= b_end || *b == ' ' || *b == '\n';
        if (ea || eb) return ea && eb ? 0 : ea ? -1 : 1;
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    }
}

static int by_key(const void *x, const void *y) {
    return key_cmp(*(const char *const *)x, sort_end, *(const char *const *)y, sort_end);
}

static int table_load(wn_table *t, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = terse_file_open(path, 1, &t->f);
    if (rc) return rc;
    const char *s = (const char *)t->f.data, *end = s + t->f.size;
    int64_t cap = 0;
    for (const char *p = s; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        /* license lines start with two spaces; blank lines are skipped too */
        if (p[0] != ' ' && p[0] != '\n') {
            if (t->n == cap) {
                cap = cap ? cap * 2 : 4096;
                const char **l = terse_reallocarray(t->line, (size_t)cap, sizeof *l, "WordNet lines");
                if (!l) return TERSE_ERR_NOMEM;
                t->line = l;
            }
            t->line[t->n++] = p;
        }
        p = next;
    }
    sort_end = end;
    qsort(t->line, (size_t)t->n, sizeof *t->line, by_key);
    return TERSE_OK;
}

/* the line whose first field is key, or NULL */
static const char *table_find(const wn_table *t, const char *key, size_t klen) {
    const char *end = (const char *)t->f.data + t->f.size;
    int64_t lo = 0, hi = t->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(t->line[mid], end, key, key + klen);
        if (c == 0) return t->line[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void table_free(wn_table *t) {
    free(t->line);
    terse_file_close(&t->f);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                   */

void terse_wordnet_free(terse_wordnet *wn) {
    if (!wn) return;
    for (int p = 0; p < WN_NPOS; p++) {
        table_free(&wn->index[p]);
        table_free(&wn->exc[p]);
        terse_file_close(&wn->data[p]);
    }
    free(wn);
}

int terse_wordnet_load(const char *dir, terse_wordnet **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_wordnet_load: NULL out");
    *out = NULL;
    if (!dir) dir = getenv("WNSEARCHDIR");
    if (!dir || !*dir) dir = "/usr/share/wordnet";
    terse_wordnet *wn = terse_calloc(1, sizeof *wn, "WordNet");
    if (!wn) return TERSE_ERR_NOMEM;
    int rc = TERSE_OK;
    char name[64], path[4096];
    for (int p = 0; p < WN_NPOS && !rc; p++) {
        snprintf(name, sizeof name, "index.%s", pos_file[p]);
        if ((rc = table_load(&wn->index[p], dir, name))) break;
        snprintf(name, sizeof name, "%s.exc", pos_file[p]);
        if ((rc = table_load(&wn->exc[p], dir, name))) break;
        snprintf(path, sizeof path, "%s/data.%s", dir, pos_file[p]);
        rc = terse_file_open(path, 1, &wn->data[p]);
    }
    if (rc) {
        terse_wordnet_free(wn);
        return terse_err_wrap(rc, "loading WordNet from %s (install wordnet-base)", dir);
    }
    *out = wn;
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Morphy (NLTK's _morphy)                                                                   */

typedef struct {
    const char *old, *new_;
} wn_rule;

static const wn_rule noun_rules[] = {{"s", ""},     {"ses", "s"},   {"ves", "f"},
                                     {"xes", "x"},  {"zes", "z"},   {"ches", "ch"},
                                     {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
static const wn_rule verb_rules[] = {{"s", ""},   {"ies", "y"}, {"es", "e"},  {"es", ""},
                                     {"ed", "e"}, {"ed", ""},   {"ing", "e"}, {"ing", ""}};
static const wn_rule adj_rules[] = {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};

static const wn_rule *rules_of(int pos, int *n) {
    switch (pos) {
    case WN_NOUN: *n = (int)(sizeof noun_rules / sizeof *noun_rules); return noun_rules;
    case WN_VERB: *n = (int)(sizeof verb_rules / sizeof *verb_rules); return verb_rules;
    case WN_ADJ: *n = (int)(sizeof adj_rules / sizeof *adj_rules); return adj_rules;
    default: *n = 0; return NULL;
    }
}

enum { MORPHY_MAX_FORMS = 4096 }; /* rule chains on pathological words stop here */

static int apply_rules(int pos, const ev_words *in, ev_words *out) {
    memset(out, 0, sizeof *out);
    int nr;
    const wn_rule *r = rules_of(pos, &nr);
    for (int32_t i = 0; i < in->n && out->n < MORPHY_MAX_FORMS; i++) {
        size_t len = strlen(in->w[i]);
        for (int k = 0; k < nr; k++) {
            size_t lo = strlen(r[k].old);
            if (len < lo || memcmp(in->w[i] + len - lo, r[k].old, lo)) continue;
            terse_buf b = {0};
            terse_buf_put(&b, in->w[i], len - lo);
            terse_buf_puts(&b, r[k].new_);
            ev_words_push(out, b.s ? b.s : "", b.n);
            if (b.err) out->arena.err = b.err;
            terse_buf_free(&b);
        }
    }
    return ev_words_done(out);
}

/* append to res those of forms that have an index entry for pos, once each */
static int filter_forms(const terse_wordnet *wn, int pos, const ev_words *forms, ev_words *res) {
    memset(res, 0, sizeof *res);
    for (int32_t i = 0; i < forms->n; i++) {
        const char *f = forms->w[i];
        if (!table_find(&wn->index[pos], f, strlen(f))) continue;
        bool seen = false;
        for (int32_t j = 0; j < res->n && !seen; j++)
            seen = !strcmp((const char *)res->arena.s + res->off[j], f);
        if (!seen) ev_words_push(res, f, strlen(f));
    }
    return ev_words_done(res);
}

static int morphy(const terse_wordnet *wn, int pos, const char *form, ev_words *res) {
    ev_words cand;
    memset(&cand, 0, sizeof cand);
    size_t flen = strlen(form);
    int rc;
    const char *ex = table_find(&wn->exc[pos], form, flen);
    if (ex) {
        /* [form] + the base forms listed on the exception line */
        const char *end = (const char *)wn->exc[pos].f.data + wn->exc[pos].f.size;
        const char *p = ex;
        while (p < end && *p != '\n') {
            while (p < end && *p == ' ') p++;
            const char *q = p;
            while (q < end && *q != ' ' && *q != '\n') q++;
            if (q > p) ev_words_push(&cand, p, (size_t)(q - p)); /* first field is form itself */
            p = q;
        }
        if ((rc = ev_words_done(&cand)) == TERSE_OK) rc = filter_forms(wn, pos, &cand, res);
        ev_words_free(&cand);
        return rc;
    }
    ev_words_push(&cand, form, flen);
    if ((rc = ev_words_done(&cand))) { ev_words_free(&cand); return rc; }
    ev_words forms, both;
    if ((rc = apply_rules(pos, &cand, &forms))) { ev_words_free(&cand); return rc; }
    memset(&both, 0, sizeof both);
    ev_words_push(&both, form, flen);
    for (int32_t i = 0; i < forms.n; i++) ev_words_push(&both, forms.w[i], strlen(forms.w[i]));
    rc = ev_words_done(&both);
    if (!rc) rc = filter_forms(wn, pos, &both, res);
    ev_words_free(&both);
    ev_words_free(&cand);
    while (!rc && res->n == 0 && forms.n > 0) {
        ev_words_free(res);
        ev_words next;
        if ((rc = apply_rules(pos, &forms, &next))) break;
        ev_words_free(&forms);
        forms = next;
        rc = filter_forms(wn, pos, &forms, res);
    }
    ev_words_free(&forms);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Synsets and their lemma names                                                             */

/* skip one space-separated field of [p, end); returns the field's end */
static const char *field(const char *p, const char *end, const char **start) {
    while (p < end && *p == ' ') p++;
    *start = p;
    while (p < end && *p != ' ' && *p != '\n') p++;
    return p;
}

/* add the lemma names (without '_') of the synset at offset of data file pos to out */
static int synset_names(const terse_wordnet *wn, int pos, int64_t offset, ev_words *out) {
    const terse_file *f = &wn->data[pos];
    if (offset < 0 || (uint64_t)offset >= f->size)
        return terse_err(TERSE_ERR_FORMAT, "WordNet data.%s: offset %lld beyond %zu bytes",
                         pos_file[pos], (long long)offset, f->size);
    const char *p = (const char *)f->data + offset, *end = (const char *)f->data + f->size;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl) end = nl;
    const char *s;
    p = field(p, end, &s);
    if (strtoll(s, NULL, 10) != offset)
        return terse_err(TERSE_ERR_FORMAT, "WordNet data.%s: no synset at offset %lld",
                         pos_file[pos], (long long)offset);
    p = field(p, end, &s); /* lex_filenum */
    p = field(p, end, &s); /* ss_type */
    p = field(p, end, &s); /* w_cnt, 2 hex digits */
    long w_cnt = strtol(s, NULL, 16);
    if (w_cnt <= 0 || w_cnt > 255)
        return terse_err(TERSE_ERR_FORMAT, "WordNet data.%s @%lld: w_cnt %ld", pos_file[pos],
                         (long long)offset, w_cnt);
    for (long i = 0; i < w_cnt; i++) {
        p = field(p, end, &s);
        if (p == s)
            return terse_err(TERSE_ERR_FORMAT, "WordNet data.%s @%lld: %ld words missing",
                             pos_file[pos], (long long)offset, w_cnt - i);
        size_t n = (size_t)(p - s);
        /* an adjective's syntactic marker "(a)", "(p)", "(ip)" is not part of the name */
        if (n > 2 && s[n - 1] == ')') {
            const char *op = memchr(s, '(', n);
            if (op) n = (size_t)(op - s);
        }
        if (!memchr(s, '_', n)) ev_words_push(out, s, n);
        const char *lex;
        p = field(p, end, &lex); /* lex_id */
    }
    return TERSE_OK;
}

int ev_wordnet_synonyms(const terse_wordnet *wn, const char *word, ev_words *out) {
    memset(out, 0, sizeof *out);
    /* NLTK lowercases the lemma it looks up (ASCII here; index lemmas are ASCII) */
    terse_buf lw = {0};
    for (const char *c = word; *c; c++) {
        char d = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
        terse_buf_put(&lw, &d, 1);
    }
    if (lw.err) return terse_buf_take(&lw, &(char *){NULL});
    const char *w = lw.s ? lw.s : "";
    int rc = TERSE_OK;
    for (int pos = 0; pos < WN_NPOS && !rc; pos++) {
        ev_words forms;
        if ((rc = morphy(wn, pos, w, &forms))) break;
        for (int32_t i = 0; i < forms.n && !rc; i++) {
            const char *line = table_find(&wn->index[pos], forms.w[i], strlen(forms.w[i]));
            if (!line) continue;
            const char *end = (const char *)wn->index[pos].f.data + wn->index[pos].f.size;
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            if (nl) end = nl;
            const char *s, *p = field(line, end, &s); /* lemma */
            p = field(p, end, &s);                     /* pos */
            p = field(p, end, &s);
            long synset_cnt = strtol(s, NULL, 10);
            p = field(p, end, &s);
            long p_cnt = strtol(s, NULL, 10);
            for (long k = 0; k < p_cnt; k++) p = field(p, end, &s);
            p = field(p, end, &s); /* sense_cnt */
            p = field(p, end, &s); /* tagsense_cnt */
            for (long k = 0; k < synset_cnt && !rc; k++) {
                p = field(p, end, &s);
                if (p == s) {
                    rc = terse_err(TERSE_ERR_FORMAT, "WordNet index.%s: \"%s\" lists %ld "
                                   "synsets, fewer present", pos_file[pos], forms.w[i], synset_cnt);
                    break;
                }
                rc = synset_names(wn, pos, strtoll(s, NULL, 10), out);
            }
        }
        ev_words_free(&forms);
    }
    terse_buf_free(&lw);
    ev_words_push(out, word, strlen(word));
    if (!rc) rc = ev_words_done(out);
    if (rc) ev_words_free(out);
    return rc;
}

static int by_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int terse_wordnet_synonyms(const terse_wordnet *wn, const char *word, char **out) {
    if (!wn || !word || !out) return terse_err(TERSE_ERR_INVALID, "terse_wordnet_synonyms: NULL");
    *out = NULL;
    ev_words syn;
    int rc = ev_wordnet_synonyms(wn, word, &syn);
    if (rc) return rc;
    qsort(syn.w, (size_t)syn.n, sizeof *syn.w, by_str);
    terse_buf b = {0};
    int32_t count = 0;
    for (int32_t i = 0; i < syn.n; i++) {
        if (i > 0 && !strcmp(syn.w[i], syn.w[i - 1])) continue;
        if (count++) terse_buf_put(&b, "\n", 1);
        terse_buf_puts(&b, syn.w[i]);
    }
    ev_words_free(&syn);
    rc = terse_buf_take(&b, out);
    return rc ? rc : count;
}
