/* test_tok_vocab.c - tokenizers built from GGUF vocabularies against llama.cpp's test vectors
 * (../shared/vocab/ggml-vocab-X.gguf with .inp strings and .out ids from Hugging Face), plus
 * the span contract (spans tile the input) on the vectors and on hostile inputs.
 *
 * The .inp format: every test string is followed by "\n__ggml_vocab_test__\n" (so the file
 * ends with the separator and strings may themselves end in newlines); the .out file has one
 * line of space-separated ids per string, no BOS.
 *
 * Also two naive references: SentencePiece merging of whole fragments against the word-by-word
 * merge, and a plain llama2.c-style encoder (O(n^2), straight from tok512.bin) against the
 * stories260K vocabulary after terse_convert_llama2c.
 *
 * Not here: qwen2 / llama-bpe / bert vectors (test_tok_hf.c), tiktoken (test_tok_tiktoken.c).
 */
#include "helpers.h"
#include "terse.h"
#include "gguf/gguf.h"  /* internal: to write corrupt vocabularies */
#include "tok/vocab.h"   /* internal: to switch the SentencePiece word split off */

#include <stdint.h>
#include <unistd.h>

#define SEP "\n__ggml_vocab_test__\n"
#define MAX_CASES 64

/* Check that spans tile [0, len) in order. */
/* Run one vocabulary's vectors; returns the number of cases that match exactly. */
static int run_vectors(const char *name, int *n_cases) {
    char path[512], inp_path[512], out_path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", test_shared_dir(), name);
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    *n_cases = 0;
    terse_vocab *v = NULL;
    int rc = terse_vocab_load(path, &v);
    CHECK(rc == 0, "%s: load: %s", name, terse_last_error());
    if (rc) return 0;
    size_t inp_len = 0, out_len = 0;
    char *inp = test_read_file(inp_path, &inp_len), *out = test_read_file(out_path, &out_len);
    CHECK(inp && out, "%s: missing .inp/.out", name);
    int ok = 0;
    if (inp && out) {
        char *s = inp, *o = out;
        int i = 0;
        for (char *e; (e = strstr(s, SEP)) != NULL && i < MAX_CASES; s = e + strlen(SEP), i++) {
            size_t len = (size_t)(e - s);
            char *eol = strchr(o, '\n');
            if (!eol) eol = o + strlen(o);
            int32_t want[512];
            int nw = 0;
            for (char *q = o; q < eol && nw < 512;) {
                char *end;
                long x = strtol(q, &end, 10);
                if (end == q) break;
                want[nw++] = (int32_t)x;
                q = end;
                while (q < eol && *q == ' ') q++;
            }
            o = *eol ? eol + 1 : eol;
            int32_t ids[1024];
            terse_span sp[1024];
            int64_t n = terse_tokenize(v, s, len, 0, ids, sp, 1024);
            int same = n == nw;
            for (int k = 0; same && k < nw; k++) same = ids[k] == want[k];
            if (same) ok++;
            else {
                fprintf(stderr, "  %s case %d ('%.*s'): got", name, i, (int)(len > 40 ? 40 : len), s);
                for (int k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n  %*s want", (int)strlen(name), "");
                for (int k = 0; k < nw && k < 40; k++) fprintf(stderr, " %d", want[k]);
                fprintf(stderr, "\n");
            }
            CHECK(n >= 0 && test_spans_tile(sp, n, len), "%s case %d: spans do not tile", name, i);
            CHECK(terse_token_count(v, s, len) == n, "%s case %d: count differs", name, i);
            (*n_cases)++;
        }
    }
    free(inp);
    free(out);
    terse_vocab_free(v);
    return ok;
}

/* Spans and detokenize on inputs the vectors do not cover: invalid UTF-8, long runs,
 * special tokens in the text, the capacity protocol. */
static void check_hostile(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", test_shared_dir(), name);
    terse_vocab *v = NULL;
    if (terse_vocab_load(path, &v) != 0) return;
    static const char *texts[] = {
        "\xff\xfe invalid \xc3 utf8 \xe2\x82 end\x80",
        "tab\tnew\nline\r\nCRLF   spaces  ",
        "<s>special</s> <|endoftext|> <unk>",
        "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 emoji \xe4\xb8\xad\xe6\x96\x87 12345678",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        size_t len = strlen(texts[t]);
        int32_t ids[256];
        terse_span sp[256];
        int64_t n = terse_tokenize(v, texts[t], len, 1, ids, sp, 256);
        CHECK(n > 0 && n <= 256, "%s hostile %zu: n = %lld (%s)", name, t, (long long)n,
              terse_last_error());
        if (n <= 0 || n > 256) continue;
        CHECK(test_spans_tile(sp, n, len), "%s hostile %zu: spans do not tile", name, t);
        /* capacity protocol: a short buffer gets the count and a prefix */
        int32_t few[2];
        CHECK(terse_tokenize(v, texts[t], len, 1, few, NULL, 2) == n, "%s: cap", name);
        CHECK(few[0] == ids[0] && few[1] == ids[1], "%s: prefix", name);
        CHECK(terse_tokenize(v, texts[t], len, 1, NULL, NULL, 0) == n, "%s: count only", name);
        /* detokenize of valid UTF-8 without specials round-trips on byte-level vocabs */
        char buf[512];
        int64_t m = terse_detokenize(v, ids, n, buf, sizeof buf);
        CHECK(m >= 0, "%s hostile %zu: detokenize %lld", name, t, (long long)m);
        if (t == 3 && terse_vocab_kind(v) == TERSE_VOCAB_BPE)
            CHECK(m == (int64_t)len && memcmp(buf, texts[t], len) == 0,
                  "%s: detokenize round trip '%.*s'", name, (int)m, buf);
        if (t == 3 && terse_vocab_kind(v) == TERSE_VOCAB_SPM)
            CHECK(m == (int64_t)len && memcmp(buf, texts[t], len) == 0,
                  "%s: detokenize round trip '%.*s'", name, (int)m, buf);
    }
    /* one megabyte of one character and of spaces: must be fast (O(n log n)) and tile
     * (a quarter of that under the sanitizers, TERSE_SLOW=0) */
    const char *slow = getenv("TERSE_SLOW");
    size_t big = slow && strcmp(slow, "0") == 0 ? 1 << 18 : 1 << 20;
    char *s = malloc(big);
    int64_t cap = (int64_t)big + 8;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    terse_span *sp = malloc((size_t)cap * sizeof *sp);
    const char fill[] = {'a', ' ', '3'};
    for (int f = 0; f < 3; f++) {
        memset(s, fill[f], big);
        int64_t n = terse_tokenize(v, s, big, 0, ids, sp, cap);
        CHECK(n > 0 && n <= cap && test_spans_tile(sp, n, big), "%s: 1 MB of '%c': n = %lld (%s)",
              name, fill[f], (long long)n, terse_last_error());
    }
    free(s);
    free(ids);
    free(sp);
    terse_vocab_free(v);
}

/* Same ids and spans with and without the SentencePiece word split. */
static void check_spm_split(const char *text, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", test_shared_dir());
    terse_vocab *v = NULL;
    if (terse_vocab_load(path, &v) != 0) return;
    CHECK(v->spm_word_split == 1, "llama-spm: word split expected");
    int64_t cap = (int64_t)len + 8;
    int32_t *a = malloc((size_t)cap * 4), *b = malloc((size_t)cap * 4);
    terse_span *sa = malloc((size_t)cap * sizeof *sa), *sb = malloc((size_t)cap * sizeof *sb);
    int64_t na = terse_tokenize(v, text, len, 1, a, sa, cap);
    v->spm_word_split = 0;
    int64_t nb = terse_tokenize(v, text, len, 1, b, sb, cap);
    int same = na == nb && na > 0;
    for (int64_t i = 0; same && i < na; i++)
        same = a[i] == b[i] && sa[i].begin == sb[i].begin && sa[i].end == sb[i].end;
    CHECK(same, "spm word split differs from whole-text merge (%lld vs %lld tokens)",
          (long long)na, (long long)nb);
    free(a), free(b), free(sa), free(sb);
    terse_vocab_free(v);
}

/* llama2.c's encoder, naively: dummy prefix, characters, byte fallback (+3), then merge the
 * best-scoring adjacent pair (first on ties) until none is in the vocabulary. */
typedef struct {
    int n;
    char *str[512];
    int len[512];
    float score[512];
} l2c_vocab;

static int l2c_load(const char *path, l2c_vocab *t) {
    size_t n;
    char *d = test_read_file(path, &n);
    if (!d) return -1;
    size_t p = 4;
    for (t->n = 0; t->n < 512 && p + 8 <= n; t->n++) {
        int32_t l;
        memcpy(&t->score[t->n], d + p, 4);
        memcpy(&l, d + p + 4, 4);
        p += 8;
        t->str[t->n] = malloc((size_t)l + 1);
        memcpy(t->str[t->n], d + p, (size_t)l);
        t->str[t->n][l] = 0;
        t->len[t->n] = l;
        p += (size_t)l;
    }
    free(d);
    return t->n == 512 ? 0 : -1;
}

static int l2c_find(const l2c_vocab *t, const char *s, int n) {
    for (int i = 3; i < t->n; i++) /* 0..2 are <unk>, BOS, EOS */
        if (t->len[i] == n && memcmp(t->str[i], s, (size_t)n) == 0) return i;
    return -1;
}

static int l2c_encode(const l2c_vocab *t, const char *text, size_t len, int *ids) {
    char *s = malloc(len + 2);
    s[0] = ' ';
    memcpy(s + 1, text, len);
    int n = 0, m = (int)len + 1;
    int *off = malloc(sizeof(int) * (size_t)(m + 1)), *tl = malloc(sizeof(int) * (size_t)m);
    for (int i = 0; i < m;) {
        int l = 1;
        while (i + l < m && l < 4 && ((uint8_t)s[i + l] & 0xC0) == 0x80) l++;
        int id = l2c_find(t, s + i, l);
        if (id >= 0) {
            off[n] = i, tl[n] = l, ids[n++] = id;
        } else {
            for (int k = 0; k < l; k++) off[n] = i + k, tl[n] = 1, ids[n++] = (uint8_t)s[i + k] + 3;
        }
        i += l;
    }
    for (;;) {
        float best = -1e30f;
        int at = -1, best_id = -1;
        for (int i = 0; i + 1 < n; i++) {
            int id = l2c_find(t, s + off[i], tl[i] + tl[i + 1]);
            if (id >= 0 && t->score[id] > best) best = t->score[id], at = i, best_id = id;
        }
        if (at < 0) break;
        ids[at] = best_id;
        tl[at] += tl[at + 1];
        memmove(ids + at + 1, ids + at + 2, sizeof(int) * (size_t)(n - at - 2));
        memmove(off + at + 1, off + at + 2, sizeof(int) * (size_t)(n - at - 2));
        memmove(tl + at + 1, tl + at + 2, sizeof(int) * (size_t)(n - at - 2));
        n--;
    }
    free(s), free(off), free(tl);
    return n;
}

/* One text through both encoders; returns 1 when ids agree and the rest holds. */
static int stories_case(const terse_vocab *v, const l2c_vocab *t, const char *text, size_t len) {
    int *want = malloc(sizeof(int) * (len + 2));
    int32_t *got = malloc(sizeof(int32_t) * (len + 2));
    terse_span *sp = malloc(sizeof *sp * (len + 2));
    char *back = malloc(len + 1);
    int nw = len ? l2c_encode(t, text, len, want) : 0;
    int64_t n = terse_tokenize(v, text, len, 0, got, sp, (int64_t)len + 2);
    int same = n == nw;
    for (int i = 0; same && i < nw; i++) same = got[i] == want[i];
    CHECK(same, "stories260K '%.*s': %lld tokens vs llama2.c-style %d", (int)(len > 30 ? 30 : len),
          text, (long long)n, nw);
    CHECK(n >= 0 && test_spans_tile(sp, n, len), "stories260K spans");
    int64_t m = terse_detokenize(v, got, n, back, (int64_t)len + 1);
    CHECK(m == (int64_t)len && memcmp(back, text, len) == 0, "stories260K round trip '%.*s'",
          (int)(m > 0 ? m : 0), back);
    free(want), free(got), free(sp), free(back);
    return same;
}

static void check_stories260k(const char *text, size_t len) {
    char ckpt[512], tok[512], inp[512];
    snprintf(ckpt, sizeof ckpt, "%s/models/stories260K/stories260K.bin", test_shared_dir());
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", test_shared_dir());
    snprintf(inp, sizeof inp, "%s/vocab/ggml-vocab-llama-spm.gguf.inp", test_shared_dir());
    const char *out = test_tmp_path("tok_stories260k.gguf");
    l2c_vocab t;
    if (l2c_load(tok, &t) != 0) {
        printf("  stories260K missing, skipped\n");
        return;
    }
    int rc = terse_convert_llama2c(ckpt, tok, out, TERSE_TYPE_F32);
    CHECK(rc == 0, "convert stories260K: %s", terse_last_error());
    terse_vocab *v = NULL;
    if (rc == 0) {
        rc = terse_vocab_load(out, &v);
        CHECK(rc == 0, "load stories260K vocab: %s", terse_last_error());
    }
    if (v) {
        CHECK(terse_vocab_kind(v) == TERSE_VOCAB_SPM && terse_vocab_size(v) == 512, "stories kind");
        /* the prompt's first 1500 bytes (the naive encoder is quadratic), then the vectors */
        int ok = stories_case(v, &t, text, len < 1500 ? len : 1500), n = 1;
        size_t inp_len;
        char *vec = test_read_file(inp, &inp_len);
        for (char *s = vec, *e; s && (e = strstr(s, SEP)) != NULL; s = e + strlen(SEP), n++)
            ok += stories_case(v, &t, s, (size_t)(e - s));
        free(vec);
        printf("  stories260K     %d/%d texts encode as llama2.c does\n", ok, n);
        terse_vocab_free(v);
    }
    for (int i = 0; i < t.n; i++) free(t.str[i]);
    remove(out);
}

/* One handcrafted vocabulary per loader failure class. */
typedef enum { BAD_NONE, BAD_MODEL, BAD_PRE, BAD_NO_TOKENS, BAD_EMPTY, BAD_SCORES, BAD_TYPE,
               BAD_MERGE, BAD_NO_MODEL, BAD_SPECIAL_ID } bad_kind;

static int write_vocab(const char *path, bad_kind bad) {
    static const char *tok[] = {"a", "b", "ab", "\xc4\xa0", "<|end|>"};
    float score[5] = {0, 0, 1, 0, 0};
    int32_t type[5] = {1, 1, 1, 1, 3};
    const char *merges[] = {"a b"};
    const char *bad_merges[] = {"ab"};
    gguf_writer *w = gguf_writer_new();
    if (!w) return -1;
    int n = bad == BAD_EMPTY ? 0 : 5;
    if (bad == BAD_TYPE) type[2] = 9;
    if (bad != BAD_NO_MODEL)
        gguf_writer_set_str(w, "tokenizer.ggml.model", bad == BAD_MODEL ? "unigram" : "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", bad == BAD_PRE ? "no-such-pre" : "gpt-2");
    if (bad != BAD_NO_TOKENS) gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, NULL, (uint64_t)n);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", score, bad == BAD_SCORES ? 3 : (uint64_t)n);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", bad == BAD_MERGE ? bad_merges : merges,
                            NULL, 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", bad == BAD_SPECIAL_ID ? 99 : 4);
    int rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return rc;
}

static void check_corrupt(void) {
    static const struct {
        bad_kind bad;
        int want;
    } cases[] = {
        {BAD_MODEL, TERSE_ERR_UNSUPPORTED}, {BAD_PRE, TERSE_ERR_UNSUPPORTED},
        {BAD_NO_TOKENS, TERSE_ERR_FORMAT},  {BAD_EMPTY, TERSE_ERR_FORMAT},
        {BAD_SCORES, TERSE_ERR_FORMAT},     {BAD_TYPE, TERSE_ERR_FORMAT},
        {BAD_MERGE, TERSE_ERR_FORMAT},      {BAD_NO_MODEL, TERSE_ERR_FORMAT},
    };
    const char *path = test_tmp_path("tok_corrupt.gguf");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (write_vocab(path, cases[i].bad) != 0) {
            CHECK(0, "write corrupt vocab %zu: %s", i, terse_last_error());
            continue;
        }
        terse_vocab *v = (terse_vocab *)1;
        int rc = terse_vocab_load(path, &v);
        CHECK(rc == cases[i].want && v == NULL, "corrupt vocab %d: rc %d, want %d (%s)",
              (int)cases[i].bad, rc, cases[i].want, terse_last_error());
        CHECK(strlen(terse_last_error()) > 0, "corrupt vocab %d: no message", (int)cases[i].bad);
    }
    /* the good one loads, merges, and an out-of-range special id just means "none" */
    terse_vocab *v = NULL;
    CHECK(write_vocab(path, BAD_NONE) == 0 && terse_vocab_load(path, &v) == 0, "tiny vocab: %s",
          terse_last_error());
    if (v) {
        int32_t ids[8];
        terse_span sp[8];
        int64_t n = terse_tokenize(v, "ab ab<|end|>", 12, 0, ids, sp, 8);
        CHECK(n == 4 && ids[0] == 2 && ids[1] == 3 && ids[2] == 2 && ids[3] == 4,
              "tiny vocab: n = %lld", (long long)n);
        CHECK(terse_vocab_eos(v) == 4, "tiny eos");
        /* bytes the vocabulary lacks (and no <unk>): no token, but the spans still tile */
        static const char *gaps[] = {"cab", "abc", "a c b", "zz<|end|>zz", "\xff"};
        for (size_t i = 0; i < sizeof gaps / sizeof gaps[0]; i++) {
            size_t len = strlen(gaps[i]);
            n = terse_tokenize(v, gaps[i], len, 1, ids, sp, 8);
            CHECK(n >= 0 && (n == 0 || test_spans_tile(sp, n, len)), "tiny vocab '%s': tiling",
                  gaps[i]);
        }
        terse_vocab_free(v);
    }
    v = NULL;
    CHECK(write_vocab(path, BAD_SPECIAL_ID) == 0 && terse_vocab_load(path, &v) == 0, "bad id");
    CHECK(terse_vocab_eos(v) == -1, "out-of-range eos id becomes -1");
    terse_vocab_free(v);
    remove(path);
}

static void check_errors(void) {
    terse_vocab *v = (terse_vocab *)1;
    CHECK(terse_vocab_load("/nonexistent/x.gguf", &v) == TERSE_ERR_IO && v == NULL, "missing");
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-gpt-2.gguf.inp", test_shared_dir());
    CHECK(terse_vocab_load(path, &v) == TERSE_ERR_FORMAT, "not a vocab: %s", terse_last_error());
    terse_vocab_free(NULL);
    CHECK(terse_vocab_kind(NULL) == TERSE_VOCAB_NONE, "kind(NULL)");
}

int main(void) {
    static const char *names[] = {"gpt-2", "llama-spm", "phi-3", "starcoder", "deepseek-coder"};
    char probe[512];
    snprintf(probe, sizeof probe, "%s/vocab/ggml-vocab-gpt-2.gguf", test_shared_dir());
    FILE *f = fopen(probe, "rb");
    if (!f) {
        printf("test_tok_vocab: %s missing, skipped\n", probe);
        return test_summary("tok_vocab");
    }
    fclose(f);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n = 0;
        int ok = run_vectors(names[i], &n);
        printf("  %-15s %d/%d vectors match\n", names[i], ok, n);
        CHECK(n == 46 && ok == n, "%s: %d/%d vectors match", names[i], ok, n);
        check_hostile(names[i]);
    }
    /* naive references on a real prompt */
    char prompt[512];
    snprintf(prompt, sizeof prompt, "%s/data/gsm8k/prompt_hardest.txt", test_shared_dir());
    size_t plen = 0;
    char *ptext = test_read_file(prompt, &plen);
    if (ptext) {
        check_spm_split(ptext, plen);
        check_stories260k(ptext, plen);
        free(ptext);
    }
    check_errors();
    check_corrupt();
    return test_summary("tok_vocab");
}
