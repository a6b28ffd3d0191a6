/* llmlingua2.c - LLMLingua-2 (Pan et al., Findings ACL'24): an encoder (BERT or XLM-RoBERTa
 * with a token-classification head) gives every token a keep probability; words are kept by
 * probability. Reference: reference/llmlingua.md, section 3 (compress_prompt_llmlingua2).
 *
 * Both modes cut each context into chunks of at most 510 tokens, each ending after a
 * chunk_end_tokens piece (".", "\n" by default) when one is within reach, and run all chunks
 * through the encoder in packed batches (nn_encoder_probs).
 *
 * compat = 1 reproduces microsoft/LLMLingua 0.2.2 step by step, on strings as it does:
 *   force tokens that are not one piece become "[NEWi]" in the text; the text is tokenized,
 *   chunked, and each chunk decoded back to a string (Metaspace or WordPiece decoder) and
 *   tokenized again inside "[CLS]" ... "[SEP]" (for XLM-R these are <unk>: bug #181); tokens
 *   merge into words (start rules per model, special tokens skipped, forced words p = 1);
 *   per chunk the threshold is the numpy percentile int(100 * (1 - rate) + 1) of the word
 *   probabilities repeated once per cl100k token of the word; kept words are decoded and the
 *   chunks joined with no separator. Context filter (several contexts): mean unforced word
 *   probability per context, percentile at int(100 * (1 - context_level_rate)). Needs cl100k
 *   as p.count_vocab (the reference counts with tiktoken). The output ignores the instruction
 *   and the question, as the reference does.
 * compat = 0 (default): the prompt's own tokens and byte spans, the encoder input wrapped in
 *   the model's real CLS/SEP (or <s>/</s>), no [NEWi] insertion (force tokens, digits and
 *   line breaks are protected at the byte level instead); words ranked by probability and kept
 *   under the budget contract (cmp_fit_budget); the context filter as the reference's, its
 *   dropped contexts removed whole; instruction and question kept.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "nn/encoder.h"
#include "nn/nn.h"
#include "tok/vocab.h"

#define MAX_CHUNK 510          /* 512 minus CLS and SEP */
#define MAX_SEQ 512
#define MAX_FORCE 100

static const char PUNCT[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/* ---------------------------------------------------------------------------------------- */
/* Small growable buffers                                                                    */

static int sb_str(terse_buf *b, const char *s) { return terse_buf_put(b, s, strlen(s)); }

/* b = b with every a replaced by r (in place through a copy). */
static int sb_replace(terse_buf *b, const char *a, const char *r) {
    size_t na = strlen(a);
    if (!na || !b->n) return TERSE_OK;
    terse_buf o = {0};
    int rc = terse_buf_put(&o, "", 0);
    for (size_t i = 0; i < b->n && !rc;) {
        if (i + na <= b->n && !memcmp(b->s + i, a, na)) {
            rc = sb_str(&o, r);
            i += na;
        } else {
            rc = terse_buf_put(&o, b->s + i, 1);
            i++;
        }
    }
    if (rc) {
        free(o.s);
        return rc;
    }
    free(b->s);
    *b = o;
    return TERSE_OK;
}

typedef struct {
    int32_t *v;
    int64_t n, cap;
} ivec;

static int iv_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        int64_t cap = a->cap ? 2 * a->cap : 1024;
        int32_t *t = realloc(a->v, (size_t)cap * sizeof *t);
        if (!t) return terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        a->v = t, a->cap = cap;
    }
    a->v[a->n++] = x;
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokens as Hugging Face spells them                                                        */

typedef struct {
    cmp_job *j;
    const terse_model *m;
    const terse_vocab *v;
    int xlmr;                   /* Unigram (XLM-R) rules, else WordPiece (mBERT) rules */
    const char *const *force;
    int32_t n_force;
    char new_tok[MAX_FORCE][16];  /* "[NEWi]" of mapped force tokens, "" if not mapped */
    int32_t cls, sep;           /* compat: ids of the strings "[CLS]" and "[SEP]" */
    int32_t special[7];         /* ids whose tokens are skipped in the word merge */
    int n_special;
} l2;

/* The token string of id (HF spelling) into buf: WordPiece continuation "##x", start "x". */
static const char *tok_str(const l2 *s, int32_t id, char *buf, size_t cap, size_t *len) {
    const terse_vocab *v = s->v;
    const char *p = v->piece[id];
    size_t n = v->piece_len[id];
    uint8_t t = v->ttype[id];
    if (s->xlmr || t == TOK_TYPE_CONTROL || t == TOK_TYPE_USER || t == TOK_TYPE_UNUSED ||
        t == TOK_TYPE_UNKNOWN) {
        *len = n;
        return p;
    }
    if (n >= 3 && !memcmp(p, "\xe2\x96\x81", 3)) {
        *len = n - 3;
        return p + 3;
    }
    if (n + 3 > cap) n = cap - 3;
    memcpy(buf, "##", 2);
    memcpy(buf + 2, p, n);
    buf[n + 2] = 0;
    *len = n + 2;
    return buf;
}

static int is_special(const l2 *s, int32_t id) {
    for (int i = 0; i < s->n_special; i++)
        if (s->special[i] == id) return 1;
    return 0;
}

static int eq(const char *a, size_t na, const char *b) { return strlen(b) == na && !memcmp(a, b, na); }

static int in_force(const l2 *s, const char *t, size_t n) {
    for (int32_t i = 0; i < s->n_force; i++)
        if (eq(t, n, s->force[i])) return 1;
    return 0;
}

static int in_new(const l2 *s, const char *t, size_t n) {
    for (int32_t i = 0; i < s->n_force; i++)
        if (s->new_tok[i][0] && eq(t, n, s->new_tok[i])) return 1;
    return 0;
}

/* Python's `t in string.punctuation` (a substring test). */
static int in_punct(const char *t, size_t n) {
    if (n == 0) return 1;
    for (size_t i = 0; i + n <= sizeof PUNCT - 1; i++)
        if (!memcmp(PUNCT + i, t, n)) return 1;
    return 0;
}

/* Python's lstrip of every leading '#' (mBERT) or "\u2581" (XLM-R). */
static const char *pure(const l2 *s, const char *t, size_t *n) {
    if (s->xlmr)
        while (*n >= 3 && !memcmp(t, "\xe2\x96\x81", 3)) t += 3, *n -= 3;
    else
        while (*n >= 1 && t[0] == '#') t++, (*n)--;
    return t;
}

static int begins_word(const l2 *s, const char *t, size_t n) {
    if (s->xlmr) {
        if (in_punct(t, n) || in_force(s, t, n) || in_new(s, t, n)) return 1;
        return n >= 3 && !memcmp(t, "\xe2\x96\x81", 3);
    }
    size_t pn = n;
    const char *p = pure(s, t, &pn);
    if (in_force(s, p, pn) || in_new(s, p, pn)) return 1;
    return !(n >= 2 && t[0] == '#' && t[1] == '#');
}

/* Python's re.search(r"\d", t): ASCII and the common Unicode decimal digits. */
static int has_digit(const char *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)t[i];
        if (c >= '0' && c <= '9') return 1;
        uint32_t cp;
        int k = c >= 0x80 ? terse_utf8_decode((const uint8_t *)t + i, n - i, &cp) : 0;
        if (k > 1) {
            if ((cp >= 0x660 && cp <= 0x669) || (cp >= 0x6F0 && cp <= 0x6F9) ||
                (cp >= 0x966 && cp <= 0x96F) || (cp >= 0xFF10 && cp <= 0xFF19))
                return 1;
            i += (size_t)k - 1;
        }
    }
    return 0;
}

/* convert_tokens_to_string of strings toks[0..n) (each NUL-terminated) into out. */
static int decode(const l2 *s, char *const *toks, const size_t *lens, int64_t n, terse_buf *out) {
    int rc = terse_buf_put(out, "", 0);
    if (s->xlmr) { /* Metaspace decoder */
        int prepend = tok_ugm_prepend_scheme(s->v);
        for (int64_t i = 0; i < n && !rc; i++)
            for (size_t k = 0; k < lens[i] && !rc; k++) {
                if (k + 3 <= lens[i] && !memcmp(toks[i] + k, "\xe2\x96\x81", 3)) {
                    if (!(i == 0 && prepend)) rc = terse_buf_put(out, " ", 1);
                    k += 2;
                } else {
                    rc = terse_buf_put(out, toks[i] + k, 1);
                }
            }
        return rc;
    }
    /* WordPiece decoder with cleanup, token by token */
    static const char *const clean[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (int64_t i = 0; i < n && !rc; i++) {
        terse_buf t = {0};
        if (i != 0 && lens[i] >= 2 && toks[i][0] == '#' && toks[i][1] == '#') rc = terse_buf_put(&t, toks[i] + 2, lens[i] - 2);
        else if (i != 0) rc = terse_buf_put(&t, " ", 1) || terse_buf_put(&t, toks[i], lens[i]);
        else rc = terse_buf_put(&t, toks[i], lens[i]);
        for (size_t c = 0; c < sizeof clean / sizeof clean[0] && !rc; c++) rc = sb_replace(&t, clean[c][0], clean[c][1]);
        if (!rc && t.n) rc = terse_buf_put(out, t.s, t.n);
        free(t.s);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunking (__chunk_context): [st, ed] inclusive ranges of at most 511 tokens               */

static int is_end(const l2 *s, const char *t, size_t n) {
    const terse_compress_params *p = &s->j->p;
    if (p->chunk_end_tokens) {
        for (int32_t i = 0; i < p->n_chunk_end_tokens; i++)
            if (p->chunk_end_tokens[i] && eq(t, n, p->chunk_end_tokens[i])) goto hit;
        return 0;
    } else if (!eq(t, n, ".") && !eq(t, n, "\n")) {
        return 0;
    }
hit:
    return 1;
}

/* ends[k] = 1 when token k is a chunk end (the mapped "[NEWi]" of an end token counts too). */
static int chunk_bounds(int64_t n, const uint8_t *ends, ivec *st, ivec *ed) {
    int64_t a = 0;
    int rc = TERSE_OK;
    while (a < n && !rc) {
        if (a + MAX_CHUNK > n - 1) {
            rc = iv_push(st, (int32_t)a) || iv_push(ed, (int32_t)(n - 1));
            break;
        }
        int64_t e = a + MAX_CHUNK;
        for (int64_t k = 0; k < e - a; k++)
            if (ends[e - k]) {
                e -= k;
                break;
            }
        rc = iv_push(st, (int32_t)a) || iv_push(ed, (int32_t)e);
        a = e + 1;
    }
    return rc;
}

static int run_encoder(l2 *s, const ivec *ids, const ivec *lens, float *probs) {
    cmp_job *j = s->j;
    double t0 = terse_now();
    int rc = nn_encoder_probs(s->m, ids->v, lens->v, (int32_t)lens->n, 1, 0,
                              j->ctx ? j->ctx->n_threads : 0, probs);
    j->t_model += terse_now() - t0;
    cmp_progress(j, ids->n);
    return rc;
}

/* ========================================================================================== */
/* compat: the reference, on strings                                                         */

typedef struct {
    int32_t ctx;                /* context index */
    terse_buf text;                  /* the chunk string */
    int64_t id0;                /* its model input in the packed ids */
    int32_t n_ids;
} c_chunk;

typedef struct {
    terse_buf text;                  /* all word strings back to back */
    int64_t *off;               /* (n + 1) word offsets into text */
    float *p, *p_nf;            /* word probability (forced), unforced (token_to_word) */
    int64_t n, cap;
} c_words;

static void cw_free(c_words *w) {
    free(w->text.s);
    free(w->off);
    free(w->p);
    free(w->p_nf);
}

/* Merge one chunk's tokens into words (__merge_token_to_word + __token_prob_to_word_prob). */
static int merge_words(const l2 *s, const int32_t *ids, const float *probs, int32_t n, c_words *w) {
    const int first = s->j->p.token_to_word_first, digit = s->j->p.keep_digits;
    float *tp = malloc((size_t)(n + 1) * sizeof *tp), *tq = malloc((size_t)(n + 1) * sizeof *tq);
    int64_t *wstart = malloc((size_t)(n + 1) * sizeof *wstart);
    int rc = tp && tq && wstart ? TERSE_OK : terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    int64_t nw = 0, nt = 0;     /* words, token probs */
    float prob_nf = 0;
    w->n = 0;
    w->text.n = 0;
    if (!rc) rc = terse_buf_put(&w->text, "", 0);
    int64_t *off = NULL;
    if (!rc && !(off = malloc((size_t)(n + 2) * sizeof *off))) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    for (int32_t k = 0; k < n && !rc; k++) {
        if (is_special(s, ids[k])) continue;
        char buf[512];
        size_t tn;
        const char *t = tok_str(s, ids[k], buf, sizeof buf, &tn);
        size_t pn = tn;
        const char *pt = pure(s, t, &pn);
        float prob = probs[k];
        if (begins_word(s, t, tn) || nw == 0) {
            prob_nf = prob;
            if (in_force(s, pt, pn) || in_new(s, pt, pn)) prob = 1.0f;
            terse_buf word = {0};
            rc = terse_buf_put(&word, t, tn);
            for (int32_t i = 0; i < s->n_force && !rc; i++)
                if (s->new_tok[i][0]) rc = sb_replace(&word, s->new_tok[i], s->force[i]);
            if (!rc) {
                off[nw] = (int64_t)w->text.n;
                rc = terse_buf_put(&w->text, word.s, word.n);
                wstart[nw++] = nt;
                tp[nt] = digit && has_digit(word.s, word.n) ? 1.0f : prob;
                tq[nt++] = prob_nf;
            }
            free(word.s);
        } else {
            rc = terse_buf_put(&w->text, pt, pn);
            tp[nt] = digit && has_digit(t, tn) ? 1.0f : prob;
            tq[nt++] = prob_nf; /* sic: the word's first probability (stale variable upstream) */
        }
    }
    if (!rc) {
        off[nw] = (int64_t)w->text.n;
        wstart[nw] = nt;
        free(w->p), free(w->p_nf), free(w->off);
        w->off = off, off = NULL;
        w->p = malloc((size_t)(nw + 1) * sizeof *w->p);
        w->p_nf = malloc((size_t)(nw + 1) * sizeof *w->p_nf);
        if (!w->p || !w->p_nf) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t i = 0; i < nw && !rc; i++) {
            int64_t a = wstart[i], b = wstart[i + 1];
            if (first) {
                w->p[i] = tp[a];
                w->p_nf[i] = tq[a];
            } else {
                float x = 0, y = 0;
                for (int64_t k = a; k < b; k++) x += tp[k], y += tq[k];
                w->p[i] = x / (float)(b - a);
                w->p_nf[i] = y / (float)(b - a);
            }
        }
        w->n = nw;
    }
    free(off);
    free(tp);
    free(tq);
    free(wstart);
    return rc;
}

/* The kept words of one chunk -> its compressed string, appended to out. */
static int compress_chunk(l2 *s, const c_words *w, double reduce_rate, terse_buf *out, int64_t *kept) {
    const terse_compress_params *p = &s->j->p;
    int64_t n = w->n;
    if (n == 0) return TERSE_OK;
    float *wp = malloc((size_t)n * sizeof *wp);
    double *dv = NULL;
    int rc = wp ? TERSE_OK : terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    if (!rc) memcpy(wp, w->p, (size_t)n * sizeof *wp);
#define WORD(i) (w->text.s + w->off[i]), (size_t)(w->off[(i) + 1] - w->off[i])
    if (!rc && p->drop_consecutive) {
        if (!(dv = malloc((size_t)n * sizeof *dv))) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t i = 0; i < n && !rc; i++) dv[i] = wp[i];
        double thr = rc ? 0 : cmp_percentile(dv, n, (double)(int)(100.0 * reduce_rate));
        int between = 0;
        int64_t prev = -1;
        for (int64_t i = 0; i < n && !rc; i++) {
            if (in_force(s, WORD(i))) {
                if (between) between = 0;
                else if (prev >= 0 && w->off[i + 1] - w->off[i] == w->off[prev + 1] - w->off[prev] &&
                         !memcmp(w->text.s + w->off[i], w->text.s + w->off[prev], (size_t)(w->off[i + 1] - w->off[i])))
                    wp[i] = 0.0f;
                prev = i;
            } else {
                between |= (double)wp[i] > thr;
            }
        }
    }
    /* each word's probability once per cl100k token of it */
    int64_t nv = 0, cap = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t c = cmp_count(p->count_vocab, WORD(i));
        if (c < 0) rc = (int)c;
        else {
            if (nv + c > cap) {
                cap = 2 * (nv + c) + 64;
                double *t = realloc(dv, (size_t)cap * sizeof *t);
                if (!t) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
                else dv = t;
            }
            for (int64_t k = 0; k < c && !rc; k++) dv[nv++] = wp[i];
        }
    }
    int q = (int)(100.0 * reduce_rate + 1.0);
    if (!rc && q > 100)
        rc = terse_err(TERSE_ERR_INVALID, "llmlingua2 --compat: rate %g gives percentile %d above 100 "
                       "(the reference raises here)", 1.0 - reduce_rate, q);
    double thr = rc ? 0 : cmp_percentile(dv, nv, (double)q);
    /* keep */
    char **kw = NULL;
    size_t *kl = NULL;
    int64_t nk = 0;
    if (!rc && (!(kw = malloc((size_t)n * sizeof *kw)) || !(kl = malloc((size_t)n * sizeof *kl))))
        rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    for (int64_t i = 0; i < n && !rc; i++) {
        double x = wp[i];
        if (x > thr || (thr == 1.0 && x == thr)) {
            if (p->drop_consecutive && in_force(s, WORD(i)) && nk > 0 &&
                kl[nk - 1] == (size_t)(w->off[i + 1] - w->off[i]) &&
                !memcmp(kw[nk - 1], w->text.s + w->off[i], kl[nk - 1]))
                continue;
            kw[nk] = w->text.s + w->off[i];
            kl[nk++] = (size_t)(w->off[i + 1] - w->off[i]);
        }
    }
#undef WORD
    if (!rc && nk) {
        terse_buf t = {0};
        rc = decode(s, kw, kl, nk, &t);
        if (!rc) rc = terse_buf_put(out, t.s, t.n);
        free(t.s);
    }
    *kept += nk;
    free(kw);
    free(kl);
    free(wp);
    free(dv);
    return rc;
}

/* transformers 5 loads an XLM-R tokenizer with a right Strip in its normalizer (SpmConverter's
 * Strip(right) + Replace(" {2,}", "\u2581")), whatever tokenizer.json says: whitespace at the
 * end of each text fragment (before a [NEWi] or the end) makes no token there. */
static int strip_fragments(const l2 *s, terse_buf *r) {
    terse_buf o = {0};
    int rc = terse_buf_put(&o, "", 0);
    size_t at = 0;
    while (!rc && at <= r->n) {
        size_t next = r->n, nl = 0;
        for (int32_t i = 0; i < s->n_force; i++) {
            if (!s->new_tok[i][0]) continue;
            const char *h = strstr(r->s + at, s->new_tok[i]);
            if (h && (size_t)(h - r->s) < next) next = (size_t)(h - r->s), nl = strlen(s->new_tok[i]);
        }
        size_t e = next;
        while (e > at && strchr(" \t\n\r\v\f", r->s[e - 1])) e--;
        rc = terse_buf_put(&o, r->s + at, e - at);
        if (!rc && nl) rc = terse_buf_put(&o, r->s + next, nl);
        if (!nl) break;
        at = next + nl;
    }
    if (rc) {
        free(o.s);
        return rc;
    }
    free(r->s);
    *r = o;
    return TERSE_OK;
}

static int compat_run(l2 *s) {
    cmp_job *j = s->j;
    const terse_compress_params *p = &j->p;
    const terse_vocab *v = s->v;
    if (!p->count_vocab)
        return terse_err(TERSE_ERR_INVALID, "llmlingua2 --compat: needs cl100k as the count vocabulary "
                         "(the reference counts with tiktoken)");
    if (p->n_force_tokens > MAX_FORCE)
        return terse_err(TERSE_ERR_INVALID, "llmlingua2: at most %d force tokens", MAX_FORCE);
    /* force tokens that are not one piece map to [NEWi] */
    for (int32_t i = 0; i < s->n_force; i++) {
        int64_t k = terse_token_count(v, s->force[i], strlen(s->force[i]));
        if (k < 0) return (int)k;
        /* transformers' tokenize() gives nothing for whitespace alone (the XLM-R tokenizer
         * would make it one bare "\u2581"): "\n" is always mapped, as upstream documents */
        if (strspn(s->force[i], " \t\n\r\v\f") == strlen(s->force[i])) k = 0;
        if (k != 1) {
            snprintf(s->new_tok[i], sizeof s->new_tok[i], "[NEW%d]", i);
            if (tok_find(v, s->new_tok[i], strlen(s->new_tok[i])) < 0)
                return terse_err(TERSE_ERR_UNSUPPORTED, "llmlingua2 --compat: force token %d is not one "
                                 "piece and the vocabulary has no '%s' (LLMLingua-2 models carry "
                                 "[NEW0]..[NEW99])", i, s->new_tok[i]);
        }
    }
    /* the contexts, as the reference gets them */
    int32_t nc = 0;
    for (int32_t i = 0; i < j->n_parts; i++) nc += j->parts[i].kind == CMP_PART_CONTEXT;
    if (j->parts[0].kind != CMP_PART_CONTEXT || (j->n_parts > 1 && j->parts[j->n_parts - 1].kind != CMP_PART_CONTEXT))
        cmp_warn(j, "llmlingua2 --compat ignores the instruction and the question, as the reference does");
    int64_t n_orig = 0;
    c_chunk *ch = NULL;
    int64_t n_ch = 0, cap_ch = 0;
    ivec ids = {0}, lens = {0}, st = {0}, ed = {0};
    int32_t *tids = NULL;
    terse_span *tsp = NULL;
    uint8_t *ends = NULL;
    char **ts = NULL;
    size_t *tl = NULL;
    char (*tbuf)[64] = NULL;
    int rc = TERSE_OK;
    for (int32_t pi = 0; pi < j->n_parts && !rc; pi++) {
        const cmp_part *pa = &j->parts[pi];
        if (pa->kind != CMP_PART_CONTEXT) continue;
        int64_t c = cmp_count(p->count_vocab, j->text + pa->begin, (size_t)(pa->end - pa->begin));
        if (c < 0) {
            rc = (int)c;
            break;
        }
        n_orig += c;
        terse_buf r = {0};
        rc = terse_buf_put(&r, j->text + pa->begin, (size_t)(pa->end - pa->begin));
        for (int32_t i = 0; i < s->n_force && !rc; i++)
            if (s->new_tok[i][0]) rc = sb_replace(&r, s->force[i], s->new_tok[i]);
        if (!rc && s->xlmr) rc = strip_fragments(s, &r);
        int64_t n = rc ? 0 : terse_tokenize(v, r.s, r.n, 0, NULL, NULL, 0);
        if (n < 0) rc = (int)n;
        if (!rc && n > 0) {
            free(tids), free(tsp), free(ends), free(ts), free(tl), free(tbuf);
            tids = malloc((size_t)n * sizeof *tids);
            tsp = malloc((size_t)n * sizeof *tsp);
            ends = malloc((size_t)n);
            ts = malloc((size_t)n * sizeof *ts);
            tl = malloc((size_t)n * sizeof *tl);
            tbuf = malloc((size_t)n * sizeof *tbuf);
            if (!tids || !tsp || !ends || !ts || !tl || !tbuf) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
            if (!rc && terse_tokenize(v, r.s, r.n, 0, tids, tsp, n) != n) rc = terse_err(TERSE_ERR_INTERNAL, "llmlingua2: tokenize");
            for (int64_t k = 0; k < n && !rc; k++) {
                const char *t = tok_str(s, tids[k], tbuf[k], sizeof tbuf[k], &tl[k]);
                ts[k] = t != tbuf[k] ? (char *)t : tbuf[k];
                if (s->xlmr && tids[k] == v->unk) {
                    /* tokenize() spells an unknown piece as its text, not "<unk>" */
                    int64_t a = tsp[k].begin, b = tsp[k].end;
                    while (a < b && strchr(" \t\n\r\v\f", r.s[a])) a++;
                    if (b - a < (int64_t)sizeof tbuf[k]) {
                        memcpy(tbuf[k], r.s + a, (size_t)(b - a));
                        tbuf[k][b - a] = 0;
                        ts[k] = tbuf[k];
                        tl[k] = (size_t)(b - a);
                    }
                }
                ends[k] = (uint8_t)is_end(s, ts[k], tl[k]);
                for (int32_t i = 0; i < s->n_force && !ends[k]; i++) /* mapped end tokens */
                    if (s->new_tok[i][0] && eq(ts[k], tl[k], s->new_tok[i]) && is_end(s, s->force[i], strlen(s->force[i])))
                        ends[k] = 1;
            }
            st.n = ed.n = 0;
            if (!rc) rc = chunk_bounds(n, ends, &st, &ed);
            for (int64_t c2 = 0; c2 < st.n && !rc; c2++) {
                if (n_ch == cap_ch) {
                    cap_ch = cap_ch ? 2 * cap_ch : 16;
                    c_chunk *t = realloc(ch, (size_t)cap_ch * sizeof *t);
                    if (!t) {
                        rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
                        break;
                    }
                    ch = t;
                }
                c_chunk *k = &ch[n_ch++];
                memset(k, 0, sizeof *k);
                k->ctx = pa->index;
                rc = decode(s, ts + st.v[c2], tl + st.v[c2], ed.v[c2] - st.v[c2] + 1, &k->text);
                /* the dataset: tokenize(chunk) inside "[CLS]" ... "[SEP]", cut at 512 */
                int64_t m = rc ? 0 : terse_tokenize(v, k->text.s, k->text.n, 0, NULL, NULL, 0);
                if (m < 0) rc = (int)m;
                k->id0 = ids.n;
                if (!rc) rc = iv_push(&ids, s->cls);
                if (!rc && m > 0) {
                    int32_t *mi = malloc((size_t)m * sizeof *mi);
                    if (!mi) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
                    else if (terse_tokenize(v, k->text.s, k->text.n, 0, mi, NULL, m) != m) rc = TERSE_ERR_INTERNAL;
                    for (int64_t q = 0; q < m && q < MAX_SEQ - 1 && !rc; q++) rc = iv_push(&ids, mi[q]);
                    free(mi);
                }
                if (!rc && ids.n - k->id0 < MAX_SEQ) rc = iv_push(&ids, s->sep);
                k->n_ids = (int32_t)(ids.n - k->id0);
                if (!rc) rc = iv_push(&lens, k->n_ids);
            }
        }
        free(r.s);
    }
    float *probs = NULL;
    if (!rc && ids.n > 0) {
        if (!(probs = malloc((size_t)ids.n * sizeof *probs))) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        else rc = run_encoder(s, &ids, &lens, probs);
    }
    /* context filter */
    double rate = p->target > 0 ? -1 : p->rate;
    int64_t target = p->target > 0 ? p->target : -1;
    uint8_t *keep_ctx = calloc((size_t)(nc ? nc : 1), 1);
    if (!rc && !keep_ctx) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    for (int32_t i = 0; i < nc && !rc; i++) keep_ctx[i] = 1;
    c_words w = {0};
    if (!rc && nc > 1 && p->use_context_filter) {
        double clr = p->context_level_rate;
        int64_t cltt = -1;
        if (p->target_context <= 0 && clr >= 1.0) {
            if (target < 0 && rate < 1.0) clr = p->use_token_filter ? (rate + 1.0) / 2 : rate;
            if (target >= 0) cltt = p->use_token_filter ? target * 2 : target;
        }
        if (p->target_context >= 0) clr = fmin((double)p->target_context / nc, 1.0);
        if (cltt >= 0) clr = fmin((double)cltt / (double)n_orig, 1.0);
        double *cs = calloc((size_t)nc, sizeof *cs);
        float *sum = calloc((size_t)nc, sizeof *sum);
        int64_t *cnt = calloc((size_t)nc, sizeof *cnt);
        if (!cs || !sum || !cnt) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t c2 = 0; c2 < n_ch && !rc; c2++) {
            rc = merge_words(s, ids.v + ch[c2].id0, probs + ch[c2].id0, ch[c2].n_ids, &w);
            for (int64_t i = 0; i < w.n && !rc; i++) sum[ch[c2].ctx] += w.p_nf[i], cnt[ch[c2].ctx]++;
        }
        for (int32_t i = 0; i < nc && !rc; i++) cs[i] = cnt[i] ? (double)(sum[i] / (float)cnt[i]) : NAN;
        double thr = rc ? 0 : cmp_percentile(cs, nc, (double)(int)(100.0 * (1.0 - clr)));
        int64_t n_res = 0;
        for (int32_t i = 0; i < nc && !rc; i++) {
            int forced = 0;
            for (int32_t k = 0; k < p->n_force_context_ids; k++) forced |= p->force_context_ids[k] == i;
            keep_ctx[i] = cs[i] >= thr || forced;
        }
        for (int64_t c2 = 0; c2 < n_ch && !rc; c2++)
            if (keep_ctx[ch[c2].ctx]) {
                int64_t c = cmp_count(p->count_vocab, ch[c2].text.s, ch[c2].text.n);
                if (c < 0) rc = (int)c;
                n_res += c;
            }
        if (!rc && target >= 0) rate = n_res ? fmin((double)target / (double)n_res, 1.0) : 1.0;
        free(cs);
        free(sum);
        free(cnt);
    } else if (target > 0) {
        rate = n_orig ? fmin((double)target / (double)n_orig, 1.0) : 1.0;
    }
    /* token level */
    double reduce = p->use_token_filter ? fmax(0.0, 1.0 - rate) : 0.0;
    terse_buf out = {0};
    if (!rc) rc = terse_buf_put(&out, "", 0);
    int64_t kept = 0, n_words = 0;
    int any = 0;
    for (int32_t ci = 0; ci < nc && !rc; ci++) {
        if (!keep_ctx[ci]) continue;
        terse_buf ctx = {0};
        rc = terse_buf_put(&ctx, "", 0);
        for (int64_t c2 = 0; c2 < n_ch && !rc; c2++) {
            if (ch[c2].ctx != ci) continue;
            if (reduce <= 0) {
                terse_buf t = {0};
                rc = terse_buf_put(&t, ch[c2].text.s, ch[c2].text.n);
                for (int32_t i = 0; i < s->n_force && !rc; i++)
                    if (s->new_tok[i][0]) rc = sb_replace(&t, s->new_tok[i], s->force[i]);
                if (!rc) rc = terse_buf_put(&ctx, t.s, t.n);
                free(t.s);
                continue;
            }
            rc = merge_words(s, ids.v + ch[c2].id0, probs + ch[c2].id0, ch[c2].n_ids, &w);
            n_words += w.n;
            if (!rc) rc = compress_chunk(s, &w, reduce, &ctx, &kept);
        }
        if (!rc) {
            if (any) rc = terse_buf_put(&out, "\n\n", 2);
            if (!rc) rc = terse_buf_put(&out, ctx.s, ctx.n);
            any = 1;
        }
        free(ctx.s);
    }
    if (!rc) rc = cmp_set_output(j, out.s, out.n);
    j->n_units = n_words;
    j->n_units_kept = kept;
    free(out.s);
    cw_free(&w);
    free(keep_ctx);
    free(probs);
    for (int64_t c2 = 0; c2 < n_ch; c2++) free(ch[c2].text.s);
    free(ch);
    free(ids.v), free(lens.v), free(st.v), free(ed.v);
    free(tids), free(tsp), free(ends), free(ts), free(tl), free(tbuf);
    return rc;
}

/* ========================================================================================== */
/* default: byte spans and the budget contract                                               */

static int default_run(l2 *s) {
    cmp_job *j = s->j;
    const terse_compress_params *p = &j->p;
    const terse_vocab *v = s->v;
    const int64_t T = j->tok.n;
    int32_t open = v->cls >= 0 ? v->cls : v->bos, close = v->sep >= 0 ? v->sep : v->eos;
    uint8_t *start = calloc((size_t)(T + 1), 1), *ends = calloc((size_t)(T + 1), 1);
    int64_t *tok_at = malloc((size_t)(T + 1) * 2 * sizeof *tok_at); /* packed index -> token */
    ivec ids = {0}, lens = {0}, st = {0}, ed = {0};
    int rc = start && ends && tok_at ? TERSE_OK : terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    int32_t nc = 0;
    for (int32_t i = 0; i < j->n_parts; i++) nc += j->parts[i].kind == CMP_PART_CONTEXT;
    /* word starts and chunk ends from the pieces */
    for (int64_t t = 0; t < T && !rc; t++) {
        char buf[512];
        size_t n;
        const char *x = tok_str(s, j->tok.ids[t], buf, sizeof buf, &n);
        start[t] = (uint8_t)(s->xlmr ? begins_word(s, x, n) : !(n >= 2 && x[0] == '#' && x[1] == '#'));
        ends[t] = (uint8_t)is_end(s, x, n);
        /* "\n" makes no token here (no [NEWi]): a line break before the next token ends one */
        if (t + 1 < T && p->chunk_end_tokens == NULL && j->text[j->tok.spans[t + 1].begin] == '\n')
            ends[t] = 1;
        j->tok.score[t] = NAN;
    }
    /* chunks per context part, packed with the model's own CLS/SEP */
    int64_t nt = 0;
    for (int32_t pi = 0; pi < j->n_parts && !rc; pi++) {
        const cmp_part *pa = &j->parts[pi];
        if (pa->kind != CMP_PART_CONTEXT || pa->tok1 <= pa->tok0) continue;
        st.n = ed.n = 0;
        rc = chunk_bounds(pa->tok1 - pa->tok0, ends + pa->tok0, &st, &ed);
        for (int64_t c = 0; c < st.n && !rc; c++) {
            int32_t len = 0;
            if (open >= 0) rc = iv_push(&ids, open), tok_at[nt++] = -1, len++;
            for (int64_t t = pa->tok0 + st.v[c]; t <= pa->tok0 + ed.v[c] && !rc && len < MAX_SEQ - (close >= 0); t++)
                rc = iv_push(&ids, j->tok.ids[t]), tok_at[nt++] = t, len++;
            if (!rc && close >= 0) rc = iv_push(&ids, close), tok_at[nt++] = -1, len++;
            if (!rc) rc = iv_push(&lens, len);
        }
    }
    float *probs = NULL;
    if (!rc && ids.n) {
        if (!(probs = malloc((size_t)ids.n * sizeof *probs))) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        else rc = run_encoder(s, &ids, &lens, probs);
    }
    for (int64_t k = 0; k < nt && !rc; k++)
        if (tok_at[k] >= 0) j->tok.score[tok_at[k]] = probs[k];
    /* words (units) inside context parts */
    cmp_unit *u = malloc((size_t)(T + 1) * sizeof *u);
    int32_t *ctx_of = malloc((size_t)(T + 1) * sizeof *ctx_of);
    int64_t nu = 0;
    if (!rc && (!u || !ctx_of)) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    for (int32_t pi = 0; pi < j->n_parts && !rc; pi++) {
        const cmp_part *pa = &j->parts[pi];
        if (pa->kind != CMP_PART_CONTEXT) continue;
        for (int64_t t = pa->tok0; t < pa->tok1; t++) {
            if (t == pa->tok0 || start[t] || j->tok.seg[t] != j->tok.seg[t - 1]) {
                u[nu] = (cmp_unit){t, t + 1, 0};
                ctx_of[nu++] = pa->index;
            } else {
                u[nu - 1].tok1 = t + 1;
            }
        }
    }
    for (int64_t i = 0; i < nu && !rc; i++) {
        float x = 0;
        int64_t k = 0;
        for (int64_t t = u[i].tok0; t < u[i].tok1; t++)
            if (!isnan(j->tok.score[t])) {
                if (p->token_to_word_first && k) break;
                x += j->tok.score[t], k++;
            }
        u[i].score = k ? x / (float)k : 0.0;
    }
    /* context filter: drop whole contexts below the percentile */
    uint8_t *drop = calloc((size_t)(nc ? nc : 1), 1);
    if (!rc && !drop) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    if (!rc && nc > 1 && p->use_context_filter && j->budget.rate < 1.0) {
        double clr = p->context_level_rate < 1.0 ? p->context_level_rate : (j->budget.rate + 1.0) / 2;
        if (p->target_context >= 0) clr = fmin((double)p->target_context / nc, 1.0);
        double *cs = calloc((size_t)nc, sizeof *cs), *sum = calloc((size_t)nc, sizeof *sum);
        int64_t *cnt = calloc((size_t)nc, sizeof *cnt);
        if (!cs || !sum || !cnt) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t i = 0; i < nu && !rc; i++) sum[ctx_of[i]] += u[i].score, cnt[ctx_of[i]]++;
        for (int32_t i = 0; i < nc && !rc; i++) cs[i] = cnt[i] ? sum[i] / (double)cnt[i] : NAN;
        double thr = rc ? 0 : cmp_percentile(cs, nc, 100.0 * (1.0 - clr));
        for (int32_t i = 0; i < nc && !rc; i++) {
            int forced = 0;
            for (int32_t k = 0; k < p->n_force_context_ids; k++) forced |= p->force_context_ids[k] == i;
            drop[i] = !(cs[i] >= thr || forced);
        }
        for (int32_t pi = 0; pi < j->n_parts && !rc; pi++) {
            const cmp_part *pa = &j->parts[pi];
            if (pa->kind == CMP_PART_CONTEXT && drop[pa->index])
                for (int64_t t = pa->tok0; t < pa->tok1; t++) j->tok.flags[t] &= (uint8_t)~(CMP_PROTECT | CMP_FIXED);
        }
        free(cs);
        free(sum);
        free(cnt);
    }
    /* rank the words of kept contexts, fit the budget */
    int64_t *order = malloc((size_t)(nu + 1) * sizeof *order), no = 0;
    if (!rc && !order) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
    for (int64_t i = 0; i < nu && !rc; i++)
        if (!drop[ctx_of[i]]) order[no++] = i;
    if (!rc) {
        /* stable sort by score descending (ties: earlier first) */
        int64_t *tmp = malloc((size_t)(no + 1) * sizeof *tmp);
        if (!tmp) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t w = 1; w < no && !rc; w *= 2)
            for (int64_t lo = 0; lo < no; lo += 2 * w) {
                int64_t mid = lo + w < no ? lo + w : no, hi = lo + 2 * w < no ? lo + 2 * w : no;
                int64_t a = lo, b = mid, k = lo;
                while (a < mid || b < hi)
                    tmp[k++] = b >= hi || (a < mid && u[order[a]].score >= u[order[b]].score) ? order[a++] : order[b++];
                memcpy(order + lo, tmp + lo, (size_t)(hi - lo) * sizeof *order);
            }
        free(tmp);
    }
    if (!rc) {
        cmp_unit *uu = malloc((size_t)(no + 1) * sizeof *uu);
        if (!uu) rc = terse_err(TERSE_ERR_NOMEM, "llmlingua2: out of memory");
        for (int64_t i = 0; i < no && !rc; i++) uu[i] = u[order[i]];
        if (!rc) rc = cmp_fit_budget(j, uu, no, NULL);
        free(uu);
    }
    free(order);
    free(drop);
    free(u);
    free(ctx_of);
    free(probs);
    free(start);
    free(ends);
    free(tok_at);
    free(ids.v), free(lens.v), free(st.v), free(ed.v);
    return rc;
}

/* ========================================================================================== */

int llmlingua2_run(cmp_job *j) {
    const terse_model *m = j->model;
    if (!m || !m->enc)
        return terse_err(TERSE_ERR_INVALID, "llmlingua2: the model is not a token-classification "
                         "encoder (convert an LLMLingua-2 checkpoint with terse convert hf)");
    l2 s;
    memset(&s, 0, sizeof s);
    s.j = j;
    s.m = m;
    s.v = j->vocab;
    s.xlmr = s.v->type == TERSE_VOCAB_UGM;
    if (!s.xlmr && s.v->type != TERSE_VOCAB_WPM)
        return terse_err(TERSE_ERR_UNSUPPORTED, "llmlingua2: the encoder's vocabulary is neither "
                         "WordPiece (mBERT) nor Unigram (XLM-R)");
    s.force = j->p.force_tokens;
    s.n_force = j->p.n_force_tokens;
    if (s.n_force > MAX_FORCE)
        return terse_err(TERSE_ERR_INVALID, "llmlingua2: at most %d force tokens", MAX_FORCE);
    int32_t sp[7] = {s.v->bos, s.v->eos, s.v->unk, s.v->sep, s.v->pad, s.v->cls, s.v->mask};
    for (int i = 0; i < 7; i++)
        if (sp[i] >= 0) s.special[s.n_special++] = sp[i];
    int32_t cls = tok_find(s.v, "[CLS]", 5), sep = tok_find(s.v, "[SEP]", 5);
    s.cls = cls >= 0 ? cls : s.v->unk;
    s.sep = sep >= 0 ? sep : s.v->unk;
    return j->p.compat ? compat_run(&s) : default_run(&s);
}
