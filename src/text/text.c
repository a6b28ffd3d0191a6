/* text.c - sentence, phrase and word segmentation with byte spans (see text.h).
 *
 * Everything works on code points decoded on the fly (an invalid byte counts as one "letter"
 * code point of one byte), never on a normalised copy, so spans are offsets into the caller's
 * bytes. No dictionaries beyond the small closed-class word lists of the phrase chunker, no
 * language models: deterministic and fast (one pass each).
 * Not here: tokenization (src/tok), scoring and unit selection (src/compress).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "text/text.h"

/* ---------------------------------------------------------------------------------------- */
/* Code points                                                                               */

#define TEXT_BADBYTE 0x110000u /* an invalid byte, treated as a letter */

/* Decode the code point at s[i]; returns its byte length (>= 1). */
static int cp_at(const char *s, size_t n, size_t i, uint32_t *cp) {
    int k = terse_utf8_decode((const uint8_t *)s + i, n - i, cp);
    if (k <= 0) {
        *cp = TEXT_BADBYTE;
        return 1;
    }
    return k;
}

int text_is_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

int text_is_cjk(uint32_t c) {
    return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x20000 && c <= 0x2ffff);
}

int text_is_word(uint32_t c) {
    if (c == TEXT_BADBYTE) return 1;
    if (c < 0x80) return isalnum((int)c) || c == '_';
    if (text_is_space(c)) return 0;
    if (c < 0xc0) return c == 0xaa || c == 0xb5 || c == 0xba || c == 0xb2 || c == 0xb3 || c == 0xb9;
    if (c == 0xd7 || c == 0xf7) return 0;
    if ((c >= 0x2000 && c <= 0x206f) || (c >= 0x20a0 && c <= 0x20cf) ||
        (c >= 0x2190 && c <= 0x2bff) || (c >= 0x3000 && c <= 0x303f) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff0f) ||
        (c >= 0xff1a && c <= 0xff20) || (c >= 0xff3b && c <= 0xff40) ||
        (c >= 0xff5b && c <= 0xff65) || (c >= 0x1f000 && c <= 0x1faff))
        return 0;
    return 1;
}

/* A growing span list. */
typedef struct {
    terse_span *v;
    int64_t n, cap;
} span_list;

static int push(span_list *l, int64_t b, int64_t e) {
    if (l->n == l->cap) {
        int64_t nc = l->cap ? 2 * l->cap : 64;
        terse_span *nv = terse_reallocarray(l->v, (size_t)nc, sizeof *nv, "text: spans");
        if (!nv) return TERSE_ERR_NOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].begin = b;
    l->v[l->n].end = e;
    l->n++;
    return TERSE_OK;
}

static int64_t finish(span_list *l, terse_span **out) {
    if (l->n == 0) {
        free(l->v);
        l->v = NULL;
    }
    *out = l->v;
    return l->n;
}

/* Decode s[0..n) into code points and their byte offsets (off has n_cp + 1 entries). */
static int64_t decode_all(const char *s, size_t n, uint32_t **cps, int64_t **off) {
    *cps = terse_malloc((n + 1) * sizeof **cps, "text: code points");
    *off = terse_malloc((n + 1) * sizeof **off, "text: offsets");
    if (!*cps || !*off) {
        free(*cps);
        free(*off);
        return TERSE_ERR_NOMEM;
    }
    int64_t k = 0;
    for (size_t i = 0; i < n;) {
        (*off)[k] = (int64_t)i;
        i += (size_t)cp_at(s, n, i, &(*cps)[k]);
        k++;
    }
    (*off)[k] = (int64_t)n;
    return k;
}

/* ---------------------------------------------------------------------------------------- */
/* Selective Context's sentence splitter                                                     */

int64_t text_sentences_ref(const char *s, size_t n, terse_span **out) {
    *out = NULL;
    uint32_t *c;
    int64_t *off;
    int64_t m = decode_all(s, n, &c, &off);
    if (m < 0) return m;
    span_list l = {0};
    int64_t piece = 0; /* code point where the current piece starts */
    for (int64_t i = 0; i <= m; i++) {
        bool split = false;
        if (i == m) {
            split = true;
        } else if (text_is_space(c[i]) && i >= 1 && (c[i - 1] == '.' || c[i - 1] == '?')) {
            /* (?<!\w\.\w.): 4 code points before i */
            bool g1 = i >= 4 && text_is_word(c[i - 4]) && c[i - 3] == '.' &&
                      text_is_word(c[i - 2]) && c[i - 1] != '\n';
            /* (?<![A-Z][a-z]\.) */
            bool g2 = i >= 3 && c[i - 3] >= 'A' && c[i - 3] <= 'Z' && c[i - 2] >= 'a' &&
                      c[i - 2] <= 'z' && c[i - 1] == '.';
            split = !g1 && !g2;
        }
        if (!split) continue;
        int64_t b = piece, e = i; /* strip() */
        while (b < e && text_is_space(c[b])) b++;
        while (e > b && text_is_space(c[e - 1])) e--;
        if (e > b && push(&l, off[b], off[e])) {
            free(l.v);
            free(c);
            free(off);
            return TERSE_ERR_NOMEM;
        }
        piece = i + 1; /* the split consumes the one whitespace code point */
    }
    free(c);
    free(off);
    return finish(&l, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Sentences (tiling)                                                                        */

static const char *const ABBREV[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co",
    "no", "fig", "al", "approx", "dept", "est", "gen", "gov", "mt", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "cf", "ca", NULL};

static bool is_terminator(uint32_t c) {
    return c == '.' || c == '!' || c == '?' || c == 0x3002 || c == 0xff01 || c == 0xff1f ||
           c == 0x2026;
}
static bool is_cjk_terminator(uint32_t c) { return c == 0x3002 || c == 0xff01 || c == 0xff1f; }
static bool is_closer(uint32_t c) {
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}' || c == 0x201d ||
           c == 0x2019 || c == 0xbb || c == 0x300d || c == 0x300f || c == 0xff09;
}

/* Is the '.' at code point i the end of an abbreviation or initial? */
static bool abbrev_before(const uint32_t *c, int64_t i) {
    int64_t b = i;
    while (b > 0 && (text_is_word(c[b - 1]) || (c[b - 1] == '.' && b >= 2 && text_is_word(c[b - 2]))))
        b--;
    int64_t len = i - b;
    if (len == 0) return false;
    if (len == 1 && c[b] >= 'A' && c[b] <= 'Z') return true; /* initial "J." */
    if (len > 8) return false;
    char w[10];
    for (int64_t k = 0; k < len; k++) {
        if (c[b + k] >= 0x80) return false;
        w[k] = (char)tolower((int)c[b + k]);
    }
    w[len] = 0;
    for (int k = 0; ABBREV[k]; k++)
        if (!strcmp(w, ABBREV[k])) return true;
    /* "U.S." style: a letter, '.', a letter */
    if (len >= 3 && c[i - 2] == '.') return true;
    return false;
}

int64_t text_sentences(const char *s, size_t n, terse_span **out) {
    *out = NULL;
    uint32_t *c;
    int64_t *off;
    int64_t m = decode_all(s, n, &c, &off);
    if (m < 0) return m;
    span_list l = {0};
    int64_t start = 0;      /* code point where the current sentence starts */
    bool content = false;   /* current sentence has non-space content */
    int rc = TERSE_OK;
    for (int64_t i = 0; i < m && !rc; i++) {
        if (c[i] == '\n' && content) { /* a line break ends a sentence */
            rc = push(&l, off[start], off[i]);
            start = i;
            content = false;
            continue;
        }
        if (text_is_space(c[i])) continue;
        content = true;
        if (!is_terminator(c[i])) continue;
        int64_t j = i + 1;
        while (j < m && (is_terminator(c[j]) || is_closer(c[j]))) j++;
        bool cjk = is_cjk_terminator(c[j - 1]) || is_cjk_terminator(c[i]);
        if (j < m && !text_is_space(c[j]) && !cjk) continue;
        if (c[i] == '.' && j == i + 1 && abbrev_before(c, i)) continue;
        if (c[i] == '.' && j < m) { /* lowercase next word: not a sentence end */
            int64_t k = j;
            while (k < m && text_is_space(c[k]) && c[k] != '\n') k++;
            if (k < m && c[k] >= 'a' && c[k] <= 'z') continue;
        }
        if (j >= m) break;
        rc = push(&l, off[start], off[j]);
        start = j;
        content = false;
        i = j - 1;
    }
    if (!rc && m > start) {
        if (!content && l.n > 0) l.v[l.n - 1].end = off[m]; /* trailing whitespace */
        else rc = push(&l, off[start], off[m]);
    }
    free(c);
    free(off);
    if (rc) {
        free(l.v);
        return rc;
    }
    return finish(&l, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Words (tiling)                                                                            */

int64_t text_words(const char *s, size_t n, terse_span **out) {
    *out = NULL;
    span_list l = {0};
    size_t i = 0, start = 0;
    uint32_t cp;
    while (i < n) {
        while (i < n) { /* leading whitespace */
            int k = cp_at(s, n, i, &cp);
            if (!text_is_space(cp)) break;
            i += (size_t)k;
        }
        if (i >= n) break;
        int k = cp_at(s, n, i, &cp);
        if (text_is_cjk(cp) || !text_is_word(cp)) {
            uint32_t first = cp;
            i += (size_t)k;
            if (!text_is_cjk(first)) /* a run of the same punctuation: "...", "---" */
                while (i < n) {
                    int k2 = cp_at(s, n, i, &cp);
                    if (cp != first) break;
                    i += (size_t)k2;
                }
        } else {
            uint32_t prev = cp;
            i += (size_t)k;
            while (i < n) {
                int k2 = cp_at(s, n, i, &cp);
                if (text_is_word(cp) && !text_is_cjk(cp)) {
                    prev = cp;
                    i += (size_t)k2;
                    continue;
                }
                /* inner connectors: don't, e-mail, 3.5, 1,000 */
                uint32_t nx = 0;
                if (i + (size_t)k2 < n) cp_at(s, n, i + (size_t)k2, &nx);
                bool nxw = text_is_word(nx) && !text_is_cjk(nx) && nx != 0;
                bool join = false;
                if ((cp == '\'' || cp == 0x2019 || cp == '-') && nxw) join = true;
                if ((cp == '.' || cp == ',') && prev < 0x80 && isdigit((int)prev) && nx < 0x80 &&
                    isdigit((int)nx))
                    join = true;
                if (!join) break;
                i += (size_t)k2;
            }
        }
        if (push(&l, (int64_t)start, (int64_t)i)) {
            free(l.v);
            return TERSE_ERR_NOMEM;
        }
        start = i;
    }
    if (start < n) { /* trailing whitespace */
        if (l.n > 0) l.v[l.n - 1].end = (int64_t)n;
        else if (push(&l, 0, (int64_t)n)) return TERSE_ERR_NOMEM;
    }
    return finish(&l, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Phrases: noun-phrase chunks from closed-class word lists                                  */

static const char *const DETERMINERS[] = {
    "a", "an", "the", "this", "these", "those", "my", "your", "his", "her", "its", "our",
    "their", "some", "any", "no", "every", "each", "several", "many", "few", "another",
    "such", NULL};

static const char *const CLOSED[] = {
    /* prepositions */
    "of", "in", "on", "at", "to", "for", "with", "by", "from", "about", "as", "into", "like",
    "through", "after", "over", "between", "out", "against", "during", "without", "before",
    "under", "around", "among", "up", "down", "off", "above", "near", "since", "until", "upon",
    "within", "across", "behind", "beyond", "along", "toward", "towards", "per", "via", "than",
    /* conjunctions, complementisers */
    "and", "or", "but", "nor", "so", "yet", "if", "because", "while", "although", "though",
    "unless", "whereas", "whether", "then", "that", "which", "who", "whom", "whose", "what",
    "when", "where", "why", "how",
    /* pronouns */
    "i", "you", "he", "she", "it", "we", "they", "me", "him", "us", "them", "myself",
    "yourself", "himself", "herself", "itself", "ourselves", "themselves", "there", "here",
    "all", "both", "one", "ones", "mine", "yours", "hers", "ours", "theirs",
    /* auxiliaries and frequent verbs */
    "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "having",
    "do", "does", "did", "done", "will", "would", "shall", "should", "can", "could", "may",
    "might", "must", "not", "get", "gets", "got", "make", "makes", "made", "say", "says",
    "said", "go", "goes", "went", "gone", "take", "takes", "took", "give", "gives", "gave",
    "see", "saw", "seen", "know", "knew", "think", "thought", "want", "wants", "wanted",
    "need", "needs", "needed", "use", "uses", "used", "find", "found", "become", "became",
    "seem", "seems", "buy", "buys", "bought", "pay", "pays", "paid", "sell", "sold", "spend",
    "spent", "costs", "let", "put", "keep", "keeps", "kept",
    /* adverbs */
    "very", "also", "just", "only", "even", "still", "too", "never", "always", "often",
    "already", "again", "ever", "now", "however", "more", "most", "less", "much", NULL};

static bool in_list(const char *const *list, const char *w) {
    for (int k = 0; list[k]; k++)
        if (!strcmp(w, list[k])) return true;
    return false;
}

typedef enum { W_PUNCT, W_DET, W_NUM, W_CLOSED, W_CONTENT } word_class;

/* Class of the word s[b..e) (leading whitespace already skipped). */
static word_class classify(const char *s, int64_t b, int64_t e) {
    uint32_t cp;
    cp_at(s, (size_t)e, (size_t)b, &cp);
    if (!text_is_word(cp) || text_is_cjk(cp)) return text_is_cjk(cp) ? W_CONTENT : W_PUNCT;
    if (cp < 0x80 && isdigit((int)cp)) return W_NUM;
    char w[24];
    int64_t len = e - b;
    if (len >= (int64_t)sizeof w) return W_CONTENT;
    for (int64_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)s[b + k];
        if (ch >= 0x80) return W_CONTENT;
        w[k] = (char)tolower(ch);
    }
    w[len] = 0;
    /* contractions "don't", "it's": the part before the apostrophe decides */
    char *ap = strchr(w, '\'');
    if (ap && ap != w) *ap = 0;
    if (in_list(DETERMINERS, w)) return W_DET;
    if (in_list(CLOSED, w)) return W_CLOSED;
    size_t wl = strlen(w);
    if (wl > 3 && w[wl - 2] == 'l' && w[wl - 1] == 'y') return W_CLOSED; /* adverb */
    return W_CONTENT;
}

int64_t text_phrases(const char *s, size_t n, terse_span **out) {
    *out = NULL;
    terse_span *w;
    int64_t nw = text_words(s, n, &w);
    if (nw <= 0) return nw;
    span_list l = {0};
    int64_t i = 0;
    int rc = TERSE_OK;
    while (i < nw && !rc) {
        int64_t b = w[i].begin, core = b;
        while (core < w[i].end && text_is_space((uint32_t)(unsigned char)s[core])) core++;
        word_class c0 = core < w[i].end ? classify(s, core, w[i].end) : W_PUNCT;
        int64_t j = i + 1;
        if (c0 == W_DET || c0 == W_NUM || c0 == W_CONTENT) {
            while (j < nw && j - i < 6) {
                int64_t cb = w[j].begin;
                bool nl = false;
                while (cb < w[j].end && text_is_space((uint32_t)(unsigned char)s[cb])) {
                    if (s[cb] == '\n') nl = true;
                    cb++;
                }
                if (nl || cb >= w[j].end) break;
                word_class cj = classify(s, cb, w[j].end);
                if (cj != W_CONTENT && cj != W_NUM) break;
                j++;
            }
        }
        rc = push(&l, b, w[j - 1].end);
        i = j;
    }
    free(w);
    if (rc) {
        free(l.v);
        return rc;
    }
    return finish(&l, out);
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8 validity, Python's replacement rule                                                 */

size_t text_utf8_step(const char *s, size_t n, size_t i, int *valid) {
    const uint8_t *u = (const uint8_t *)s;
    uint8_t c = u[i];
    *valid = 1;
    if (c < 0x80) return 1;
    int len;
    uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        *valid = 0;
        return 1;
    }
    size_t k = 1;
    for (; k < (size_t)len; k++) {
        if (i + k >= n) break;
        uint8_t b = u[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) break;
    }
    if (k < (size_t)len) *valid = 0;
    return k;
}

int64_t text_utf8_invalid(const char *s, size_t n) {
    int64_t bad = 0;
    for (size_t i = 0; i < n;) {
        int v;
        i += text_utf8_step(s, n, i, &v);
        bad += !v;
    }
    return bad;
}

int64_t text_utf8_replace(const char *s, size_t n, char *out) {
    int64_t k = 0;
    for (size_t i = 0; i < n;) {
        int v;
        size_t l = text_utf8_step(s, n, i, &v);
        if (v) {
            memmove(out + k, s + i, l);
            k += (int64_t)l;
        } else {
            memcpy(out + k, "\xef\xbf\xbd", 3);
            k += 3;
        }
        i += l;
    }
    return k;
}

/* ---------------------------------------------------------------------------------------- */
/* Number expressions                                                                        */

static int is_digit_at(const char *s, size_t n, size_t i) {
    return i < n && s[i] >= '0' && s[i] <= '9';
}

/* Operator at s[i] between digits: ASCII + - * / = ^ % . , : or the signs U+00D7, U+00F7,
 * U+2212; returns its byte length or 0. */
static size_t number_op(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (strchr("+-*/=^%.,:", s[i]) && s[i]) return 1;
    if (i + 1 < n && (uint8_t)s[i] == 0xc3 && ((uint8_t)s[i + 1] == 0x97 || (uint8_t)s[i + 1] == 0xb7)) return 2;
    if (i + 2 < n && !memcmp(s + i, "\xe2\x88\x92", 3)) return 3;
    return 0;
}

int64_t text_numbers(const char *s, size_t n, terse_span **out) {
    span_list l = {0};
    for (size_t i = 0; i < n;) {
        if (!is_digit_at(s, n, i)) {
            i++;
            continue;
        }
        size_t b = i;
        while (is_digit_at(s, n, i)) i++;
        for (;;) { /* [space] op [space] digits; no spaces around , . : ("1, 2" is a list) */
            size_t k = i;
            int sp = k < n && s[k] == ' ';
            k += (size_t)sp;
            size_t ol = number_op(s, n, k);
            if (!ol || (sp && strchr(".,:", s[k]))) break;
            k += ol;
            if (k < n && s[k] == ' ') {
                if (strchr(".,:", s[k - 1])) break;
                k++;
            }
            if (!is_digit_at(s, n, k)) break;
            while (is_digit_at(s, n, k)) k++;
            i = k;
        }
        if (push(&l, (int64_t)b, (int64_t)i)) {
            free(l.v);
            return TERSE_ERR_NOMEM;
        }
    }
    return finish(&l, out);
}
