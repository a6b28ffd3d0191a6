/* test_compress_integrity.c - issue 9's "the compressed prompt still says what the original
 * said", as properties over thousands of random prompts (ASCII, Latin-1 range, CJK, emoji,
 * mixed CRLF / LF / CR line ends, digits and operators, punctuation) x every method and mode,
 * with small random-weight models so it stays fast:
 *   - a byte-level model without merges (every multi-byte character and every "\r\n" is split
 *     over tokens);
 *   - when models/terse-default.gguf is there, random weights under its real
 *     vocabulary (merges such as " and", " 1000", "Ã©" and partial characters).
 * Default mode, for every output:
 *   1. valid UTF-8;
 *   2. an in-order subsequence of the input's characters, reconstructed from the per-token
 *      detail (kept tokens whole, separator tokens give one character or a line-end run), so
 *      the detail itself is checked against the text;
 *   3. no line end split ("\r\n" kept or dropped whole);
 *   4. no two kept words fused: two word characters that touch in the output are in the same
 *      input word; a number expression ("1000/5 = 200") is kept whole or not at all;
 *   5. the budget met, or over_budget set with a warning that names the true reason.
 * Compat mode: valid UTF-8 and no failure (its text is the reference's, checked elsewhere).
 * Also: Python's errors="replace" rule on hand-made invalid sequences (values from CPython). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "terse.h"
#include "gguf/gguf.h"
#include "text/text.h"

/* ---------------------------------------------------------------------------------------- */
/* Python's replacement rule                                                                 */

static void test_replace_rule(void) {
    static const struct {
        const char *in, *out;
        int bad;
    } c[] = {
        {"\xc3", "\xef\xbf\xbd", 1},
        {"\xc3\x28", "\xef\xbf\xbd\x28", 1},
        {"\xe2\x82", "\xef\xbf\xbd", 1},
        {"\xe2\x82\x28", "\xef\xbf\xbd\x28", 1},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},
        {"\xf0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},
        {"\xf0\x9f\x98", "\xef\xbf\xbd", 1},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4},
        {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd", 2},
        {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd", 2},
        {"\x80\x80\x61", "\xef\xbf\xbd\xef\xbf\xbd\x61", 2},
        {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},
        {"\xe0\xa0", "\xef\xbf\xbd", 1},
        {"ok\xf0\x9f\x98\x80\xc3", "ok\xf0\x9f\x98\x80\xef\xbf\xbd", 1},
        {"\xf5\x80", "\xef\xbf\xbd\xef\xbf\xbd", 2},
        {"caf\xc3\xa9 \xe6\x9d\xb1", "caf\xc3\xa9 \xe6\x9d\xb1", 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t n = strlen(c[i].in);
        char out[64];
        int64_t k = text_utf8_replace(c[i].in, n, out);
        CHECK(text_utf8_invalid(c[i].in, n) == c[i].bad, "case %zu: %lld invalid, want %d", i,
              (long long)text_utf8_invalid(c[i].in, n), c[i].bad);
        CHECK(k == (int64_t)strlen(c[i].out) && !memcmp(out, c[i].out, (size_t)k), "case %zu", i);
    }
    terse_span *sp;
    const char *t = "Sam took 5 boxes \xc3\x97 6 = 30; 1000/5 = 200, 32+114=146 and 1956 and 3.5%.";
    int64_t n = text_numbers(t, strlen(t), &sp);
    const char *want[] = {"5", "6 = 30", "1000/5 = 200", "32+114=146", "1956", "3.5"};
    CHECK(n == 6, "%lld number expressions", (long long)n);
    for (int64_t i = 0; i < n && i < 6; i++)
        CHECK((size_t)(sp[i].end - sp[i].begin) == strlen(want[i]) && !memcmp(t + sp[i].begin, want[i], strlen(want[i])),
              "number %lld: '%.*s'", (long long)i, (int)(sp[i].end - sp[i].begin), t + sp[i].begin);
    free(sp);
}

/* ---------------------------------------------------------------------------------------- */
/* Random prompts                                                                            */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) { return (uint32_t)(test_xorshift(&rng) % n); }

static const char *const pool_ascii[] = {"the", "cat", "sat", "on", "mat", "Angelo", "hours", "study",
    "search", "results", "irrelevant", "Document", "safety", "Question", "answer", "value", "key",
    "apples", "and", "of", "a", "is", "to", "weekend", "John's", "e-mail", "U.S.", "don't"};
static const char *const pool_latin[] = {"caf\xc3\xa9", "na\xc3\xafve", "r\xc3\xa9sum\xc3\xa9", "\xc3\xbc" "ber",
    "Stra\xc3\x9f" "e", "ma\xc3\xb1" "ana", "\xc2\xab" "oui\xc2\xbb", "\xc2\xa3" "5", "\xc2\xbd", "Ol\xc3\xa1" ""};
static const char *const pool_cjk[] = {"\xe6\x9d\xb1\xe4\xba\xac", "\xe5\xa4\xa9\xe6\xb0\x97", "\xe3\x81\xaf",
    "\xe6\x99\xb4\xe3\x82\x8c", "\xe3\x80\x82", "\xe3\x80\x81", "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
    "\xe4\xb8\xad\xe6\x96\x87"};
static const char *const pool_emoji[] = {"\xf0\x9f\x98\x80", "\xf0\x9f\x8e\x89", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
    "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9", "\xe2\x9c\x85", "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7"};
static const char *const pool_num[] = {"32+114=146", "1000/5 = 200", "1956", "1972", "3.5", "1,000", "12:30",
    "3\xc3\x97" "4", "10\xc3\xb7" "2", "$60", "2/5*30", "7", "42", "0.50", "24/2= 12", "5 - 3"};
static const char *const pool_punct[] = {".", ",", "(", ")", ":", "\"", "'", "?", "!", ";", "-",
    "\xe2\x80\x94", "...", "{", "}", "[", "]", "*", "#"};
static const char *const pool_nl[] = {"\n", "\r\n", "\r", "\n\n", "\r\n\r\n", " \n", "\n  "};

static void put(char *b, size_t *n, size_t cap, const char *s) {
    size_t l = strlen(s);
    if (*n + l + 1 >= cap) return;
    memcpy(b + *n, s, l);
    *n += l;
    b[*n] = 0;
}

/* A random text of about `items` pieces; mix selects the pools. */
static void random_text(char *b, size_t cap, int items, int mix) {
    size_t n = 0;
    b[0] = 0;
    for (int i = 0; i < items; i++) {
        uint32_t r = rnd(100);
        const char *w;
        if (r < 40) w = pool_ascii[rnd(sizeof pool_ascii / sizeof *pool_ascii)];
        else if (r < 48 && (mix & 1)) w = pool_latin[rnd(sizeof pool_latin / sizeof *pool_latin)];
        else if (r < 56 && (mix & 2)) w = pool_cjk[rnd(sizeof pool_cjk / sizeof *pool_cjk)];
        else if (r < 61 && (mix & 4)) w = pool_emoji[rnd(sizeof pool_emoji / sizeof *pool_emoji)];
        else if (r < 72) w = pool_num[rnd(sizeof pool_num / sizeof *pool_num)];
        else if (r < 84) w = pool_punct[rnd(sizeof pool_punct / sizeof *pool_punct)];
        else if (r < 92) w = pool_nl[rnd(sizeof pool_nl / sizeof *pool_nl)];
        else w = pool_ascii[rnd(sizeof pool_ascii / sizeof *pool_ascii)];
        if (n > 0 && rnd(4) != 0 && b[n - 1] != '\n' && b[n - 1] != '\r') put(b, &n, cap, rnd(9) ? " " : "\t");
        put(b, &n, cap, w);
    }
    while (n > 0 && b[n - 1] == '\r') b[--n] = 0; /* "\r" + the parts' "\n\n" is no line end */
    if (n == 0) put(b, &n, cap, "word");
}

/* ---------------------------------------------------------------------------------------- */
/* Properties                                                                                */

typedef struct {
    int64_t runs, checked, over_budget, keep_one, sep_tokens, outputs_empty;
} tally;

static int is_word_at(const char *s, size_t n, size_t i) {
    uint32_t cp;
    int l = terse_utf8_decode((const uint8_t *)s + i, n - i, &cp);
    return l > 0 && text_is_word(cp);
}

/* Check the default-mode properties of r for the assembled source. pos: scratch (len+1). */
static int check_default(terse_result *r, const char *label, int ordered, tally *ty, int64_t *pos,
                         const int64_t *pb, const int64_t *pe, int np) {
    size_t on, sn;
    const char *o = terse_result_text(r, &on), *src = terse_result_source(r, &sn);
    const terse_token_info *tk;
    int64_t nt = terse_result_tokens(r, &tk);
    int bad = 0;
#define PROP(cond, ...)                                                              \
    do {                                                                             \
        if (!(cond)) {                                                               \
            CHECK(cond, __VA_ARGS__);                                                \
            bad = 1;                                                                 \
        }                                                                            \
    } while (0)
    PROP(text_utf8_invalid(o, on) == 0, "%s: output not valid UTF-8", label);
    terse_compress_stats st;
    terse_result_get_stats(r, &st);
    const char *w = terse_result_warning(r);
    /* 5. budget */
    if (st.over_budget) {
        ty->over_budget++;
        ty->keep_one += strstr(w, "at least one unit") != NULL;
        PROP(strstr(w, "must be kept") || strstr(w, "at least one unit"), "%s: over budget, warning '%s'", label, w);
        /* the true reason: the kept-whole text (instruction, question: FIXED tokens, less
         * the parts' separators) does, or does not, exceed the target by itself */
        const terse_token_info *tq;
        int64_t ntq = terse_result_tokens(r, &tq), fixed = 0;
        for (int64_t x = 0; x < ntq; x++) fixed += (tq[x].flags & TERSE_TOKEN_FIXED) != 0;
        if (strstr(w, "must be kept"))
            PROP(fixed > 0 && fixed + 4 > st.target_tokens, "%s: 'must be kept' with %lld fixed tokens, target %lld",
                 label, (long long)fixed, (long long)st.target_tokens);
        else
            PROP(fixed <= st.target_tokens + 4, "%s: keep-one rule with %lld fixed tokens over target %lld", label,
                 (long long)fixed, (long long)st.target_tokens);
    } else {
        PROP(st.compressed_tokens <= st.target_tokens, "%s: %lld tokens > target %lld without the flag",
             label, (long long)st.compressed_tokens, (long long)st.target_tokens);
    }
    PROP(on > 0, "%s: empty output from a non-empty prompt", label);
    ty->outputs_empty += on == 0;
    if (!ordered || bad) return bad;
    /* 2. reconstruct the source position of every output byte from the token detail, part by
     * part (pb/pe: the byte ranges of the non-separator parts; a part with a kept token is in
     * the output, after "\n\n" when something precedes it) */
    size_t k = 0;
    int64_t t = 0;
    for (int x = 0; x < np && !bad; x++) {
        int64_t t0 = t;
        while (t0 < nt && tk[t0].span.begin < pb[x]) t0++;
        int64_t t1 = t0;
        int any = 0;
        while (t1 < nt && tk[t1].span.end <= pe[x]) any |= (tk[t1++].flags & TERSE_TOKEN_KEPT) != 0;
        t = t1;
        if (!any) continue;
        if (k > 0) {
            PROP(k + 2 <= on && !memcmp(o + k, "\n\n", 2), "%s: no \"\\n\\n\" before part %d", label, x);
            if (bad) break;
            pos[k++] = pb[x] - 2;
            pos[k++] = pb[x] - 1;
        }
        for (int64_t u = t0; u < t1 && !bad; u++) {
            const char *ts = src + tk[u].span.begin;
            size_t tl = (size_t)(tk[u].span.end - tk[u].span.begin);
            if ((tk[u].flags & TERSE_TOKEN_SEPARATOR) && !(tk[u].flags & TERSE_TOKEN_KEPT)) {
                /* a run of separator tokens: line-end characters, or one separator character */
                int64_t u1 = u;
                while (u1 + 1 < t1 && (tk[u1 + 1].flags & TERSE_TOKEN_SEPARATOR) && !(tk[u1 + 1].flags & TERSE_TOKEN_KEPT)) u1++;
                int64_t a = tk[u].span.begin, e = tk[u1].span.end;
                ty->sep_tokens += u1 - u + 1;
                size_t k0 = k;
                for (int64_t b = a; b < e && k < on; b++)
                    if ((src[b] == '\n' || src[b] == '\r') && o[k] == src[b]) pos[k++] = b;
                for (int64_t b = a; b < e && k < on && k == k0;) {
                    uint32_t cp;
                    int l = terse_utf8_decode((const uint8_t *)src + b, (size_t)(e - b), &cp);
                    if (l <= 0) {
                        b++;
                        continue;
                    }
                    if (!text_is_word(cp) && k + (size_t)l <= on && !memcmp(o + k, src + b, (size_t)l))
                        for (int q = 0; q < l; q++) pos[k++] = b + q;
                    b += l;
                }
                u = u1;
                continue;
            }
            if (!(tk[u].flags & TERSE_TOKEN_KEPT)) continue;
            PROP(k + tl <= on && !memcmp(o + k, ts, tl), "%s: kept token %lld '%.*s' not at output byte %zu", label,
                 (long long)u, (int)tl, ts, k);
            if (bad) break;
            for (size_t q = 0; q < tl; q++) pos[k + q] = tk[u].span.begin + (int64_t)q;
            k += tl;
        }
    }
    if (bad) return bad;
    PROP(k == on, "%s: the token detail explains %zu of %zu output bytes", label, k, on);
    if (bad) return bad;
    for (size_t i = 1; i < on; i++) PROP(pos[i] > pos[i - 1], "%s: output out of order at %zu", label, i);
    /* 3. line ends whole; 4. no fused words */
    for (size_t i = 0; i < on && !bad; i++) {
        int64_t p = pos[i];
        if (src[p] == '\r' && (size_t)p + 1 < sn && src[p + 1] == '\n')
            PROP(i + 1 < on && pos[i + 1] == p + 1, "%s: '\\r' of a \"\\r\\n\" kept alone (byte %lld)", label, (long long)p);
        if (src[p] == '\n' && p > 0 && src[p - 1] == '\r')
            PROP(i > 0 && pos[i - 1] == p - 1, "%s: '\\n' of a \"\\r\\n\" kept alone (byte %lld)", label, (long long)p);
        if (((unsigned char)o[i] & 0xc0) == 0x80 || i == 0) continue;
        /* code point start: previous code point's start */
        size_t j = i - 1;
        while (j > 0 && ((unsigned char)o[j] & 0xc0) == 0x80) j--;
        if (!is_word_at(o, on, j) || !is_word_at(o, on, i)) continue;
        for (int64_t q = pos[j]; q < p && !bad; q++) {
            if (((unsigned char)src[q] & 0xc0) == 0x80) continue;
            PROP(is_word_at(src, sn, (size_t)q), "%s: '%.*s' fused with '%.*s' (input bytes %lld..%lld: '%.*s')", label,
                 (int)(i - j), o + j, 4, o + i, (long long)pos[j], (long long)p, (int)(p - pos[j] + 1), src + pos[j]);
        }
    }
    /* numbers whole: each number expression all in the output or none of it */
    terse_span *num;
    int64_t nn = text_numbers(src, sn, &num);
    uint8_t *in = calloc(sn + 1, 1);
    for (size_t i = 0; in && i < on; i++) in[pos[i]] = 1;
    for (int64_t x = 0; in && x < nn && !bad; x++) {
        int64_t c = 0;
        for (int64_t q = num[x].begin; q < num[x].end; q++) /* characters */
            c += in[q] && src[q] != ' ' && ((unsigned char)src[q] & 0xc0) != 0x80;
        int64_t len = 0; /* its bytes but spaces (a space inside may serve as a separator, and
                            so may one operator when the gap has nothing else) */
        for (int64_t q = num[x].begin; q < num[x].end; q++) len += src[q] != ' ' && ((unsigned char)src[q] & 0xc0) != 0x80;
        int64_t digits = 0;
        for (int64_t q = num[x].begin; q < num[x].end; q++) digits += in[q] && src[q] >= '0' && src[q] <= '9';
        PROP(c == 0 || c == len || (c == 1 && digits == 0), "%s: number '%.*s' cut (%lld of %lld bytes)", label,
             (int)(num[x].end - num[x].begin), src + num[x].begin, (long long)c,
             (long long)(num[x].end - num[x].begin));
    }
    free(in);
    free(num);
    ty->checked++;
    return bad;
#undef PROP
}

/* Run n random prompts through every method and mode on ctx. */
static void run_properties(terse_ctx *ctx, const char *model_name, int n) {
    tally ty = {0};
    char ctx0[2048], ctx1[1024], q[256], label[160];
    int64_t *pos = malloc(8192 * sizeof *pos);
    int failures = 0;
    for (int i = 0; i < n && failures < 5; i++) {
        int mix = (int)rnd(8), items = 4 + (int)rnd(60);
        random_text(ctx0, sizeof ctx0, items, mix);
        random_text(ctx1, sizeof ctx1, 3 + (int)rnd(25), mix);
        random_text(q, sizeof q, 2 + (int)rnd(6), mix & 1);
        const char *cs[] = {ctx0, ctx1};
        int two = rnd(3) == 0, with_q = rnd(2) == 0;
        terse_prompt pr = {.contexts = cs, .n_contexts = two ? 2 : 1, .question = with_q ? q : NULL,
                           .instruction = rnd(6) == 0 ? "Answer briefly." : NULL};
        /* method x unit: selective token / phrase / sentence, llmlingua, longllmlingua */
        for (int m = 0; m < 5; m++) {
            for (int compat = 0; compat < 2; compat++) {
                if (compat && rnd(3)) continue; /* compat: a third of the prompts */
                terse_compress_params p = terse_compress_default_params();
                p.method = m < 3 ? TERSE_METHOD_SELECTIVE : m == 3 ? TERSE_METHOD_LLMLINGUA : TERSE_METHOD_LONGLLMLINGUA;
                p.unit = m < 3 ? (terse_unit)m : TERSE_UNIT_TOKEN;
                p.compat = compat;
                p.return_tokens = 1;
                p.keep_layout = rnd(5) != 0;
                p.iterative_size = 8 + (int32_t)rnd(40);
                uint32_t b = rnd(10);
                if (b < 2) p.target = 1 + rnd(12); /* tight */
                else p.rate = b < 5 ? 0.1 + 0.1 * rnd(3) : 0.3 + 0.1 * rnd(7);
                if (p.method == TERSE_METHOD_LONGLLMLINGUA && !with_q) pr.question = "Which value?";
                int ordered = !(p.method == TERSE_METHOD_LONGLLMLINGUA && two);
                if (p.method == TERSE_METHOD_LONGLLMLINGUA && two && rnd(2)) {
                    p.reorder = TERSE_REORDER_ORIGINAL;
                    ordered = 1;
                }
                /* the parts' byte ranges in the assembled source */
                int64_t pb[4], pe[4], at = 0;
                int np = 0;
                const char *piece[4] = {pr.instruction, ctx0, two ? ctx1 : NULL, pr.question};
                for (int x = 0; x < 4; x++) {
                    if (!piece[x] || !piece[x][0]) continue;
                    if (np) at += 2;
                    pb[np] = at;
                    at += (int64_t)strlen(piece[x]);
                    pe[np++] = at;
                }
                snprintf(label, sizeof label, "%s #%d method %d%s%s layout %d rate %.1f target %lld", model_name, i, m,
                         compat ? " compat" : "", two ? " 2 contexts" : "", p.keep_layout, p.rate,
                         (long long)p.target);
                terse_result *r = NULL;
                int rc = terse_compress(ctx, &pr, p, &r);
                ty.runs++;
                CHECK(rc == 0, "%s: %s", label, terse_last_error());
                if (rc) {
                    failures++;
                    continue;
                }
                size_t on;
                const char *o = terse_result_text(r, &on);
                if (compat) {
                    CHECK(text_utf8_invalid(o, on) == 0, "%s: compat output not valid UTF-8", label);
                } else if (check_default(r, label, ordered, &ty, pos, pb, pe, np)) {
                    failures++;
                    size_t sn;
                    const char *src = terse_result_source(r, &sn);
                    fprintf(stderr, "  source: [%.*s]\n  output: [%.*s]\n", (int)sn, src, (int)on, o);
                }
                pr.question = with_q ? q : NULL;
                terse_result_free(r);
            }
        }
    }
    printf("%s: %lld runs on %d prompts, %lld default-mode outputs fully checked, %lld over budget "
           "(%lld by the keep-one-unit rule), %lld separator tokens\n",
           model_name, (long long)ty.runs, n, (long long)ty.checked, (long long)ty.over_budget,
           (long long)ty.keep_one, (long long)ty.sep_tokens);
    CHECK(ty.checked > n, "%s: only %lld outputs checked", model_name, (long long)ty.checked);
    free(pos);
}

/* ---------------------------------------------------------------------------------------- */
/* Models                                                                                    */

/* Random tiny weights under the default model's vocabulary: the random model's tensors and
 * hyper-parameters, the default model's tokenizer.* entries. Returns 0 on success. */
/* Number of tokens of a GGUF file's vocabulary (tokenizer.ggml.tokens), or 257 on error. */
static int32_t default_vocab_size(const char *path) {
    gguf_file *g = NULL;
    const gguf_kv *kv = NULL;
    int32_t n = 257;
    if (!gguf_open(path, 1, &g) && !gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &kv) && kv)
        n = (int32_t)kv->n;
    gguf_close(g);
    return n;
}

static int write_vocab_model(const char *rand_path, const char *def_path, const char *out) {
    gguf_file *a = NULL, *d = NULL;
    if (gguf_open(rand_path, 1, &a) || gguf_open(def_path, 1, &d)) {
        gguf_close(a);
        gguf_close(d);
        return -1;
    }
    gguf_writer *w = gguf_writer_new();
    int rc = w ? 0 : -1;
    for (uint64_t i = 0; !rc && i < a->n_kv; i++)
        if (!(a->kv[i].key.len >= 10 && !memcmp(a->kv[i].key.ptr, "tokenizer.", 10))) rc = gguf_writer_copy_kv(w, &a->kv[i]);
    for (uint64_t i = 0; !rc && i < d->n_kv; i++)
        if (d->kv[i].key.len >= 10 && !memcmp(d->kv[i].key.ptr, "tokenizer.", 10)) rc = gguf_writer_copy_kv(w, &d->kv[i]);
    for (uint64_t i = 0; !rc && i < a->n_tensors; i++) {
        const gguf_tensor *t = &a->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        rc = gguf_writer_add_tensor_copy(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    if (!rc) rc = gguf_writer_write(w, out);
    gguf_writer_free(w);
    gguf_close(a);
    gguf_close(d);
    return rc;
}

static terse_ctx *open_ctx(const char *path, terse_model **m) {
    CHECK_OK(terse_model_load(path, terse_model_default_params(), m));
    return test_ctx(*m, 256);
}

void openblas_set_num_threads(int n); /* one BLAS thread: the test is about logic, not speed */

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 400; /* prompts; the real-vocabulary model gets half */
    openblas_set_num_threads(1);
    test_replace_rule();
    char bytes_path[128], rand_path[128], vocab_path[128], def[4096];
    snprintf(bytes_path, sizeof bytes_path, "/tmp/terse_integrity_bytes_%d.gguf", (int)getpid());
    snprintf(rand_path, sizeof rand_path, "/tmp/terse_integrity_rand_%d.gguf", (int)getpid());
    snprintf(vocab_path, sizeof vocab_path, "/tmp/terse_integrity_vocab_%d.gguf", (int)getpid());
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 256, .n_embd = 32, .n_layer = 1,
                              .n_head = 2, .n_ff = 32, .type = TERSE_TYPE_F32, .seed = 9, .init_std = 0.5f};
    CHECK_OK(terse_write_random_model(bytes_path, &rp));
    terse_model *m = NULL;
    terse_ctx *c = open_ctx(bytes_path, &m);
    if (c) run_properties(c, "byte vocabulary", n);
    terse_ctx_free(c);
    terse_model_free(m);
    m = NULL;
    if (terse_default_model_path(def, sizeof def) > 0 && access(def, R_OK) == 0) {
        rp.n_vocab = default_vocab_size(def);   /* the default model's own vocabulary */
        rp.n_embd = 16;
        rp.n_ff = 16;
        CHECK_OK(terse_write_random_model(rand_path, &rp));
        CHECK(write_vocab_model(rand_path, def, vocab_path) == 0, "vocab model: %s", terse_last_error());
        c = open_ctx(vocab_path, &m);
        if (c) run_properties(c, "default vocabulary", n / 2);
        terse_ctx_free(c);
        terse_model_free(m);
    } else {
        printf("no default model: the real-vocabulary half skipped\n");
    }
    unlink(bytes_path);
    unlink(rand_path);
    unlink(vocab_path);
    return test_summary("compress_integrity");
}
