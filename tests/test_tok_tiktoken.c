/* test_tok_tiktoken.c - the cl100k_base rank file as a counting tokenizer.
 *
 * Checks a few hand-verified encodings (from OpenAI's tiktoken documentation and cookbook),
 * then, when tests/golden/tiktoken_cl100k.txt exists (written by tools/ref_tiktoken.py with
 * OpenAI's tiktoken on tests/data/tiktoken_strings.txt), every string's count and ids; without
 * the golden file that part is skipped and says so. Also: spans tile, invalid UTF-8 is
 * accepted, detokenize round-trips, a corrupt rank file is refused.
 *
 * Not here: GGUF vocabularies (test_tok_vocab.c).
 */
#include "helpers.h"
#include "terse.h"

#include <stdint.h>
#include <unistd.h>

#define STRINGS "tests/data/tiktoken_strings.txt"
#define GOLDEN "tests/golden/tiktoken_cl100k.txt"

/* Encode s and compare with want[0..nw); prints both on mismatch. */
static void check_ids(const terse_vocab *v, const char *s, size_t len, const int32_t *want,
                      int nw, const char *what) {
    int32_t ids[2048];
    terse_span sp[2048];
    int64_t n = terse_tokenize(v, s, len, 1, ids, sp, 2048);
    int same = n == nw;
    for (int k = 0; same && k < nw; k++) same = ids[k] == want[k];
    CHECK(same, "%s '%.*s': %lld tokens, want %d", what, (int)(len > 50 ? 50 : len), s,
          (long long)n, nw);
    if (!same) {
        fprintf(stderr, "   got ");
        for (int64_t k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", ids[k]);
        fprintf(stderr, "\n   want");
        for (int k = 0; k < nw && k < 40; k++) fprintf(stderr, " %d", want[k]);
        fprintf(stderr, "\n");
    }
    CHECK(n >= 0 && n <= 2048 && test_spans_tile(sp, n, len), "%s: spans do not tile", what);
    CHECK(terse_token_count(v, s, len) == n, "%s: count", what);
}

static void check_known(const terse_vocab *v) {
    static const struct {
        const char *text;
        int n;
        int32_t ids[12];
    } known[] = {
        {"hello world", 2, {15339, 1917}},
        {"Hello, world!", 4, {9906, 11, 1917, 0}},
        {"tiktoken is great!", 6, {83, 1609, 5963, 374, 2294, 0}},
        {"antidisestablishmentarianism", 6, {519, 85342, 34500, 479, 8997, 2191}},
        {"2 + 2 = 4", 7, {17, 489, 220, 17, 284, 220, 19}},
        {"\xe3\x81\x8a\xe8\xaa\x95\xe7\x94\x9f\xe6\x97\xa5\xe3\x81\x8a\xe3\x82\x81\xe3\x81\xa7"
         "\xe3\x81\xa8\xe3\x81\x86", /* お誕生日おめでとう */
         9, {33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699}},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        check_ids(v, known[i].text, strlen(known[i].text), known[i].ids, known[i].n, "known");
}

static size_t unescape(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && strchr("ntr\\", s[i + 1])) {
            char c = s[++i];
            out[o++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : '\\';
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static void check_golden(const terse_vocab *v) {
    char *strings = test_read_file(STRINGS, NULL), *golden = test_read_file(GOLDEN, NULL);
    CHECK(strings != NULL, "missing %s", STRINGS);
    if (!golden) {
        printf("  golden %s absent: comparison with OpenAI tiktoken skipped\n", GOLDEN);
    } else if (strings) {
        char *s = strings, *g = golden;
        int n_str = 0, n_ok = 0;
        while (*s && *g) {
            char *se = strchr(s, '\n'), *ge = strchr(g, '\n');
            if (!se) se = s + strlen(s);
            if (!ge) ge = g + strlen(g);
            char text[4096];
            size_t len = unescape(s, (size_t)(se - s), text);
            int32_t want[2048];
            char *q = g, *end;
            long count = strtol(q, &end, 10);
            int nw = 0;
            for (q = end; q < ge && nw < 2048; q = end) {
                long x = strtol(q, &end, 10);
                if (end == q) break;
                want[nw++] = (int32_t)x;
            }
            CHECK(count == nw, "golden line %d: count %ld but %d ids", n_str + 1, count, nw);
            int before = t_fail;
            check_ids(v, text, len, want, nw, "golden");
            n_ok += t_fail == before;
            n_str++;
            s = *se ? se + 1 : se;
            g = *ge ? ge + 1 : ge;
        }
        CHECK(*s == 0 && *g == 0, "strings and golden lines differ in number");
        printf("  golden: %d/%d strings match OpenAI tiktoken\n", n_ok, n_str);
    }
    free(strings);
    free(golden);
}

static void check_hostile(const terse_vocab *v) {
    static const char *texts[] = {
        "\xff\xfe invalid \xc3 utf8 \xe2\x82 end\x80",
        "   \n\n\t\t  mixed \r\n whitespace   ",
        "<|endoftext|><|fim_prefix|> plain text",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        size_t len = strlen(texts[t]);
        int32_t ids[256];
        terse_span sp[256];
        int64_t n = terse_tokenize(v, texts[t], len, 1, ids, sp, 256);
        CHECK(n > 0 && n <= 256 && test_spans_tile(sp, n, len), "hostile %zu: n = %lld", t,
              (long long)n);
        if (n <= 0 || n > 256) continue;
        char buf[256];
        int64_t m = terse_detokenize(v, ids, n, buf, sizeof buf);
        CHECK(m == (int64_t)len && memcmp(buf, texts[t], len) == 0, "hostile %zu: round trip", t);
    }
    /* special-token text is ordinary text for counting, as tiktoken's encode_ordinary */
    const char *eot = "<|endoftext|>";
    CHECK(terse_token_count(v, eot, strlen(eot)) > 1, "<|endoftext|> counted as text");
    /* a long run stays fast */
    size_t big = 1 << 20;
    char *s = malloc(big);
    memset(s, 'x', big);
    int64_t n = terse_token_count(v, s, big);
    CHECK(n > 0 && n < (int64_t)big, "1 MB of x: %lld tokens", (long long)n);
    free(s);
}

static void check_corrupt(void) {
    /* the last: a well-formed file without the single-byte tokens (text would vanish) */
    static const char *bad[] = {"aGVsbG8=\n", "!!!! 0\n", "aGVsbG8= x\n", "YQ== 0\nYQ== 0\n",
                                "YQ== 0\nYg== 1\n"};
    const char *path = test_tmp_path("corrupt.tiktoken");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(path, "wb");
        if (!f) return;
        fputs(bad[i], f);
        fclose(f);
        terse_vocab *v = NULL;
        int rc = terse_vocab_load(path, &v);
        CHECK(rc == TERSE_ERR_FORMAT && v == NULL, "corrupt %zu: rc %d", i, rc);
        if (i == 4)
            CHECK(strstr(terse_last_error(), "no token for the byte 0x00"), "names the byte: %s",
                  terse_last_error());
        terse_vocab_free(v);
    }
    remove(path);
}

int main(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/tiktoken/cl100k_base.tiktoken", test_shared_dir());
    terse_vocab *v = NULL;
    int rc = terse_vocab_load(path, &v);
    if (rc == TERSE_ERR_IO) {
        printf("test_tok_tiktoken: %s missing, skipped\n", path);
        return test_summary("tok_tiktoken");
    }
    CHECK(rc == 0, "load: %s", terse_last_error());
    if (rc == 0) {
        CHECK(terse_vocab_kind(v) == TERSE_VOCAB_TIKTOKEN, "kind");
        CHECK(terse_vocab_size(v) == 100256, "size %d", terse_vocab_size(v));
        CHECK(terse_vocab_bos(v) == -1, "no BOS");
        check_known(v);
        check_golden(v);
        check_hostile(v);
    }
    terse_vocab_free(v);
    check_corrupt();
    return test_summary("tok_tiktoken");
}
