/* test_tok_spans.c - property test: over every vocabulary available, token spans tile the
 * input and each token's span holds the bytes the token stands for.
 *
 * Vocabularies: the six ../shared/vocab/ggml-vocab-*.gguf, qwen2 and llama-bpe imported from
 * their Hugging Face files (tok_import_hf), and cl100k_base.tiktoken.
 * Inputs (seeded, deterministic): mixtures of ASCII prose and code, whitespace runs, accented
 * Latin, Greek, Cyrillic, combining marks, CJK, Hangul, kana, emoji with ZWJ and variation
 * selectors, control characters, invalid UTF-8 (stray continuation bytes, truncated and overlong
 * sequences, surrogates), the vocabulary's own special-token strings, and long runs of one
 * character; then 1 MB of one repeated character per vocabulary (time printed, not asserted).
 *
 * Properties, for every input:
 *   - terse_tokenize succeeds, count == terse_token_count, a short buffer gets the same count
 *     and nothing written past its capacity; with add_special, the added tokens are empty
 *     spans at the start or the end;
 *   - spans are in order and tile [0, len): first begin 0, each begin = previous end, last end
 *     = len. WordPiece only: bytes between spans may be left uncovered when they make no token
 *     on their own (whitespace / dropped characters of a fragment that yields no token);
 *   - content: byte-level BPE and tiktoken: the token's bytes == the span's bytes;
 *     SentencePiece: the piece with U+2581 read as a space (<0xXX> as that byte) == the span
 *     with U+2581 read as a space, except the first token of a fragment, whose piece may carry
 *     the dummy-prefix space that is not in the input; WordPiece: the piece (phantom-space
 *     prefix removed) == the span lowercased with whitespace and control characters removed,
 *     checked for ASCII spans ([UNK] exempt); special tokens: piece == span (WordPiece: the
 *     piece plus bytes around it that make no token).
 * TERSE_SLOW=0 (make debug) runs fewer inputs and 256 KB instead of 1 MB.
 */
#include "harness.h"
#include "terse.h"
#include "tok/tok.h"
#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Random inputs                                                                               */

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

typedef struct {
    char *s;
    size_t n, cap;
} text_buf;

static void put_bytes(text_buf *t, const void *p, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 64;
        t->s = realloc(t->s, t->cap);
        if (!t->s) abort();
    }
    memcpy(t->s + t->n, p, n);
    t->n += n;
}
static void put_str(text_buf *t, const char *s) { put_bytes(t, s, strlen(s)); }
static void put_cp(text_buf *t, uint32_t cp) {
    char b[4];
    put_bytes(t, b, (size_t)terse_utf8_encode(cp, b));
}

static const char *const words[] = {
    "the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world",
    "don't", "I'll", "we've", "it's", "THE", "int", "main", "return", "for", "while", "x",
    "printf", "0x1F", "3.14159", "1234567", "2024", "naïve", "café", "Führer", "élan",
    "Ελληνικά", "Русский", "нещо", "中文", "日本語", "한국어", "ひらがな", "カタカナ", "𝔘𝔫𝔦",
    "e\xcc\x81", "a\xcc\x8a\xcc\x81", "ﬁ", "Å", "Ω", "İstanbul", "ß", "ǅ", "ﬀ", "½", "²",
    "🦙", "🚀", "😶\u200d🌫️", "👨\u200d👩\u200d👧", "✅", "❤️", "🇺🇸", "\u2581", "▁▁x",
    "<s>", "</s>", "[CLS]", "<|endoftext|>", "<|im_start|>", "<unk>", "<0x0A>",
};

static void gen_segment(text_buf *t, const terse_vocab *v) {
    switch (rnd_below(14)) {
    case 0: case 1: case 2:   /* words and spaces */
        for (int k = rnd_below(8) + 1; k > 0; k--) {
            put_str(t, words[rnd_below(sizeof words / sizeof *words)]);
            put_str(t, rnd_below(5) ? " " : (rnd_below(2) ? ", " : ".\n"));
        }
        break;
    case 3: {   /* whitespace run */
        static const char ws[] = " \t\n\r\v\f";
        for (int k = rnd_below(12) + 1; k > 0; k--) put_bytes(t, &ws[rnd_below(6)], 1);
        if (rnd_below(3) == 0) put_cp(t, rnd_below(2) ? 0xA0 : 0x3000);
        break;
    }
    case 4:   /* punctuation and code */
        for (int k = rnd_below(10) + 1; k > 0; k--) {
            static const char *const code[] = {"(", ")", "{", "}", "[", "]", ";", "->", "==",
                                               "!=", "&&", "'", "\"", "`", "```", "...", "--",
                                               "/*", "*/", "#", "@", "$", "%", "^", "~", "\\"};
            put_str(t, code[rnd_below(sizeof code / sizeof *code)]);
        }
        break;
    case 5: {   /* random code points from mixed scripts */
        static const uint32_t base[][2] = {
            {0x20, 0x7F},     {0xA0, 0x250},    {0x300, 0x370},   {0x370, 0x400},
            {0x400, 0x530},   {0x590, 0x700},   {0x900, 0x980},   {0xE00, 0xE80},
            {0x1100, 0x1200}, {0x1E00, 0x2000}, {0x2000, 0x2070}, {0x3000, 0x3100},
            {0x4E00, 0x9FFF}, {0xAC00, 0xD7A4}, {0xF900, 0xFB50}, {0xFE00, 0xFE10},
            {0xFF00, 0xFFF0}, {0x1F300, 0x1FA00}, {0x20000, 0x20100}, {0xE000, 0xE010},
            {0x10000, 0x10100}, {0xE0000, 0xE0080}};
        for (int k = rnd_below(12) + 1; k > 0; k--) {
            int b = (int)rnd_below(sizeof base / sizeof *base);
            put_cp(t, base[b][0] + rnd_below(base[b][1] - base[b][0]));
        }
        break;
    }
    case 6: {   /* control characters */
        static const uint32_t cc[] = {0, 1, 7, 8, 0x1B, 0x1F, 0x7F, 0x85, 0x9F, 0xAD,
                                      0x200B, 0x200D, 0x2028, 0x2029, 0xFEFF, 0xFFFD};
        for (int k = rnd_below(4) + 1; k > 0; k--) put_cp(t, cc[rnd_below(16)]);
        break;
    }
    case 7: {   /* invalid UTF-8 */
        static const char *const bad[] = {"\x80", "\xbf", "\xc0\x80", "\xc3", "\xe2\x82",
                                          "\xed\xa0\x80", "\xf0\x9f\x98", "\xf4\x90\x80\x80",
                                          "\xff", "\xfe", "\xc1\xbf", "\xe0\x80\xaf"};
        for (int k = rnd_below(4) + 1; k > 0; k--) put_str(t, bad[rnd_below(12)]);
        break;
    }
    case 8: {   /* random bytes */
        for (int k = rnd_below(16) + 1; k > 0; k--) {
            uint8_t b = (uint8_t)rnd();
            put_bytes(t, &b, 1);
        }
        break;
    }
    case 9: {   /* one of the vocabulary's special / user-defined pieces */
        for (int tries = 0; tries < 20; tries++) {
            int32_t id = (int32_t)rnd_below((uint32_t)v->n_tokens);
            uint8_t ty = v->ttype[id];
            if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER) {
                put_bytes(t, v->piece[id], v->piece_len[id]);
                break;
            }
        }
        break;
    }
    case 10: {  /* a long run of one thing */
        static const char *const run[] = {"a", " ", "\n", "1", "!", "ab", "\xe4\xb8\xad",
                                          "\xf0\x9f\x98\x80", "\xcc\x81", "=", "\t"};
        const char *r = run[rnd_below(11)];
        for (int k = rnd_below(300) + 1; k > 0; k--) put_str(t, r);
        break;
    }
    case 11: {  /* a random piece of the vocabulary itself */
        int32_t id = (int32_t)rnd_below((uint32_t)v->n_tokens);
        if (v->raw && v->raw[id]) put_bytes(t, v->raw[id], v->raw_len[id]);
        else put_bytes(t, v->piece[id], v->piece_len[id]);
        break;
    }
    case 12:    /* numbers */
        for (int k = rnd_below(4) + 1; k > 0; k--) {
            char b[32];
            snprintf(b, sizeof b, "%u%s", rnd(), rnd_below(2) ? "." : " ");
            put_str(t, b);
        }
        break;
    default:    /* contractions and mixed case */
        put_str(t, rnd_below(2) ? "'s 'T 'Re 'vE 'M 'll 'D" : " ABC abc Abc aBC ");
        break;
    }
}

static void gen_input(text_buf *t, const terse_vocab *v) {
    t->n = 0;
    for (int k = rnd_below(6) + 1; k > 0; k--) gen_segment(t, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Properties                                                                                  */

static int failures_shown;

static void show(const char *vname, const char *what, const char *s, size_t n, int64_t tok,
                 const terse_span *sp) {
    if (++failures_shown > 12) return;
    fprintf(stderr, "%s: %s (token %lld) in input of %zu bytes: ", vname, what, (long long)tok, n);
    for (size_t i = 0; i < n && i < 120; i++) fprintf(stderr, "%02x", (uint8_t)s[i]);
    if (sp) fprintf(stderr, "  span [%lld, %lld)", (long long)sp->begin, (long long)sp->end);
    fputc('\n', stderr);
}

/* The bytes a token stands for, for the content check. Returns the length in buf. */
static size_t token_bytes(const terse_vocab *v, int32_t id, char *buf, size_t cap) {
    const char *p = v->piece[id];
    size_t l = v->piece_len[id];
    uint8_t ty = v->ttype[id];
    if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER || ty == TOK_TYPE_UNKNOWN) {
        if (l > cap) l = cap;
        memcpy(buf, p, l);
        return l;
    }
    switch (v->type) {
    case TERSE_VOCAB_BPE:
    case TERSE_VOCAB_TIKTOKEN:
        if (v->raw && v->raw[id]) {
            p = v->raw[id];
            l = v->raw_len[id];
        }
        if (l > cap) l = cap;
        memcpy(buf, p, l);
        return l;
    case TERSE_VOCAB_SPM: {
        if (ty == TOK_TYPE_BYTE && l == 6) {
            buf[0] = (char)strtol(p + 3, NULL, 16);
            return 1;
        }
        size_t o = 0;
        for (size_t k = 0; k < l && o < cap; k++) {
            if (k + 2 < l && !memcmp(p + k, "\xe2\x96\x81", 3)) {
                buf[o++] = ' ';
                k += 2;
            } else {
                buf[o++] = p[k];
            }
        }
        return o;
    }
    default: {   /* WordPiece: drop the phantom-space / keep the rest */
        if (l >= 3 && !memcmp(p, "\xe2\x96\x81", 3)) p += 3, l -= 3;
        else if (l >= 2 && p[0] == '#' && p[1] == '#') p += 2, l -= 2;
        if (l > cap) l = cap;
        memcpy(buf, p, l);
        return l;
    }
    }
}

/* Is the piece of id the GPT-2 byte-to-unicode character of byte b? (deepseek-coder keeps the
 * bytes that never occur in UTF-8 as user-defined tokens "\u00f5", "\u00ff"...: an invalid
 * input byte becomes that token, whose text is the character, not the byte.) */
static int piece_is_byte_char(const terse_vocab *v, int32_t id, uint8_t b) {
    uint32_t cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
        uint32_t k = 0;   /* the k-th byte outside those ranges maps to 256 + k */
        for (uint32_t c = 0; c < b; c++)
            if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) k++;
        cp = 256 + k;
    }
    char u[4];
    int l = terse_utf8_encode(cp, u);
    return v->type == TERSE_VOCAB_BPE && v->piece_len[id] == (uint32_t)l &&
           !memcmp(v->piece[id], u, (size_t)l);
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    for (size_t i = 0; nn && i + nn <= hn; i++)
        if (!memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

/* U+2581 read as a space, for SPM spans. */
static size_t spm_view(const char *s, size_t n, char *buf) {
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (k + 2 < n && !memcmp(s + k, "\xe2\x96\x81", 3)) {
            buf[o++] = ' ';
            k += 2;
        } else {
            buf[o++] = s[k];
        }
    }
    return o;
}

typedef struct {
    int64_t inputs, tokens, bytes;
    int64_t bad;
} stats;

static int is_special_type(uint8_t ty) {
    return ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER || ty == TOK_TYPE_UNKNOWN;
}

static void check_input(const terse_vocab *v, const char *vname, const char *s, size_t n,
                        stats *st) {
    static int32_t *ids;
    static terse_span *sp;
    static int64_t cap;
    int64_t need = (int64_t)n + 16;
    if (need > cap) {
        cap = need;
        ids = realloc(ids, (size_t)cap * sizeof *ids);
        sp = realloc(sp, (size_t)cap * sizeof *sp);
    }
    st->inputs++;
    st->bytes += (int64_t)n;
    int64_t k = terse_tokenize(v, s, n, 0, ids, sp, cap);
    if (k < 0 || k > cap) {
        show(vname, k < 0 ? terse_last_error() : "too many tokens", s, n, -1, NULL);
        st->bad++;
        return;
    }
    st->tokens += k;
    int ok = 1;
    if (terse_token_count(v, s, n) != k) {
        show(vname, "token_count differs from tokenize", s, n, -1, NULL);
        ok = 0;
    }
    if (k >= 4) {   /* short buffer: same count, nothing written past the capacity */
        int32_t small[3] = {-7, -7, -7};
        int64_t k2 = terse_tokenize(v, s, n, 0, small, NULL, 2);
        if (k2 != k || small[2] != -7 || small[0] != ids[0] || small[1] != ids[1]) {
            show(vname, "short buffer", s, n, -1, NULL);
            ok = 0;
        }
    }
    if (k >= 1 && (st->inputs % 7) == 0) {
        /* add_special: added BOS / EOS / CLS / SEP are empty spans at 0 or len, the rest as
         * without them */
        int64_t k3 = terse_tokenize(v, s, n, 1, ids, sp, cap);
        int64_t lead = 0, same = k3 >= k && k3 <= k + 2;
        while (same && lead < k3 - k && sp[lead].begin == 0 && sp[lead].end == 0) lead++;
        for (int64_t i = lead + k; same && i < k3; i++)
            same = sp[i].begin == (int64_t)n && sp[i].end == (int64_t)n;
        if (!same) {
            show(vname, "add_special spans", s, n, -1, NULL);
            ok = 0;
        }
        terse_tokenize(v, s, n, 0, ids, sp, cap);
    }
    int wpm = v->type == TERSE_VOCAB_WPM;
    int64_t at = 0;
    char tb[4096], sb[4096];
    for (int64_t i = 0; i < k && ok; i++) {
        if (sp[i].begin < at || sp[i].end < sp[i].begin || sp[i].end > (int64_t)n) {
            show(vname, "span out of order", s, n, i, &sp[i]);
            ok = 0;
            break;
        }
        if (sp[i].begin != at) {
            /* WordPiece: a gap must make no token by itself */
            int64_t g = wpm ? terse_token_count(v, s + at, (size_t)(sp[i].begin - at)) : -1;
            if (g != 0) {
                show(vname, "gap before span", s, n, i, &sp[i]);
                ok = 0;
                break;
            }
        }
        at = sp[i].end;
        /* content */
        int32_t id = ids[i];
        if (id < 0 || id >= v->n_tokens) {
            show(vname, "id out of range", s, n, i, &sp[i]);
            ok = 0;
            break;
        }
        size_t sl = (size_t)(sp[i].end - sp[i].begin);
        const char *ss = s + sp[i].begin;
        uint8_t ty = v->ttype[id];
        size_t tl = token_bytes(v, id, tb, sizeof tb);
        if (sl > sizeof sb) continue;   /* a long [UNK] word: nothing to compare */
        int same;
        if (id == v->unk) continue;   /* bytes no token covers (starcoder lacks 0xF5..0xFF) */
        if (sl == 1 && piece_is_byte_char(v, id, (uint8_t)ss[0])) continue;
        if (is_special_type(ty)) {
            same = tl == sl && !memcmp(tb, ss, sl);
            if (!same && wpm) {   /* bytes WordPiece drops may sit around it */
                const char *q = find_bytes(ss, sl, tb, tl);
                same = q && terse_token_count(v, ss, (size_t)(q - ss)) == 0 &&
                       terse_token_count(v, q + tl, sl - (size_t)(q - ss) - tl) == 0;
            }
        } else if (v->type == TERSE_VOCAB_SPM) {
            size_t vl = spm_view(ss, sl, sb);
            same = tl == vl && !memcmp(tb, sb, vl);
            int frag_start = i == 0 || is_special_type(v->ttype[ids[i - 1]]);
            if (!same && frag_start && tl == vl + 1 && tb[0] == ' ')
                same = !memcmp(tb + 1, sb, vl);   /* the dummy prefix */
        } else if (wpm) {
            size_t o = 0;
            int ascii = 1;
            for (size_t q = 0; q < sl; q++) {
                uint8_t c = (uint8_t)ss[q];
                if (c >= 0x80) ascii = 0;
                else if (c > ' ' && c != 0x7F) sb[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            for (size_t q = 0; q < tl; q++) ascii &= (uint8_t)tb[q] < 0x80;
            same = !ascii || (tl == o && !memcmp(tb, sb, o));
        } else {
            same = tl == sl && !memcmp(tb, ss, sl);
        }
        if (!same) {
            show(vname, "token bytes differ from span", s, n, i, &sp[i]);
            ok = 0;
        }
    }
    if (ok && at != (int64_t)n) {
        int64_t g = wpm ? terse_token_count(v, s + at, n - (size_t)at) : -1;
        if (g != 0) {
            show(vname, "spans stop before the end", s, n, k, NULL);
            ok = 0;
        }
    }
    if (ok && k == 0 && n > 0 && !wpm) {
        show(vname, "no tokens for non-empty input", s, n, 0, NULL);
        ok = 0;
    }
    if (!ok) st->bad++;
}

/* ------------------------------------------------------------------------------------------ */
/* Vocabularies                                                                                */

static terse_vocab *load_imported(const char *sub, const char *pre, const char *tmp) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vocab/%s", test_shared_dir(), sub);
    gguf_writer *w = gguf_writer_new();
    int rc = tok_import_hf(dir, pre, w);
    if (!rc) rc = gguf_writer_write(w, tmp);
    gguf_writer_free(w);
    terse_vocab *v = NULL;
    if (!rc) rc = terse_vocab_load(tmp, &v);
    CHECK(rc == 0, "%s: %s", sub, terse_last_error());
    unlink(tmp);
    return v;
}

static void run_vocab(const terse_vocab *v, const char *name, int iters, size_t big) {
    stats st = {0};
    failures_shown = 0;
    text_buf t = {0};
    double t0 = terse_now();
    for (int it = 0; it < iters; it++) {
        gen_input(&t, v);
        check_input(v, name, t.s, t.n, &st);
    }
    /* every prefix of one input: fragments cut at every byte */
    gen_input(&t, v);
    for (size_t cut = 0; cut <= t.n && cut < 400; cut++) check_input(v, name, t.s, cut, &st);
    double t1 = terse_now();
    /* one repeated character, big */
    static const char *const reps[] = {"a", " ", "\xe4\xb8\xad"};
    double tbig[3];
    for (int r = 0; r < 3; r++) {
        size_t rl = strlen(reps[r]);
        t.n = 0;
        while (t.n + rl <= big) put_str(&t, reps[r]);
        double a = terse_now();
        int64_t k = terse_token_count(v, t.s, t.n);
        tbig[r] = terse_now() - a;
        CHECK(k >= 0, "%s: %zu x '%s': %s", name, t.n / rl, reps[r], terse_last_error());
    }
    printf("%-16s %6lld inputs %8lld tokens %8lld bytes  %5.2f s | %zu KB runs a/space/CJK: "
           "%.2f %.2f %.2f s | bad %lld\n", name, (long long)st.inputs, (long long)st.tokens,
           (long long)st.bytes, t1 - t0, big >> 10, tbig[0], tbig[1], tbig[2], (long long)st.bad);
    CHECK(st.bad == 0, "%s: %lld inputs break a span property", name, (long long)st.bad);
    free(t.s);
}

int main(void) {
    const char *slow = getenv("TERSE_SLOW");
    int quick = slow && !strcmp(slow, "0");
    int iters = quick ? 300 : 3000;
    size_t big = quick ? (256u << 10) : (1u << 20);
    static const char *const ggufs[] = {"gpt-2", "llama-spm", "phi-3", "starcoder",
                                        "deepseek-coder", "bert-bge"};
    rng_state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof ggufs / sizeof *ggufs; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", test_shared_dir(), ggufs[i]);
        terse_vocab *v;
        int rc = terse_vocab_load(path, &v);
        CHECK(rc == 0, "%s: %s", path, terse_last_error());
        if (rc) continue;
        run_vocab(v, ggufs[i], iters, big);
        terse_vocab_free(v);
    }
    char tmp[256];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/terse_tok_spans_%d.gguf", td ? td : "/tmp", (int)getpid());
    terse_vocab *v = load_imported("qwen2", "qwen2", tmp);
    if (v) run_vocab(v, "qwen2 (hf)", iters, big);
    terse_vocab_free(v);
    v = load_imported("llama3.2", "llama-bpe", tmp);
    if (v) run_vocab(v, "llama-bpe (hf)", iters, big);
    terse_vocab_free(v);
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/tiktoken/cl100k_base.tiktoken", test_shared_dir());
    int rc = terse_vocab_load(path, &v);
    CHECK(rc == 0, "%s: %s", path, terse_last_error());
    if (!rc) run_vocab(v, "cl100k", iters, big);
    terse_vocab_free(v);
    return test_summary("tok_spans");
}
