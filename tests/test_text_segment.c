/* test_text_segment.c - sentence, word and phrase segmentation (src/text): hand-checked
 * cases, the reference splitter's documented behaviour, and tiling on odd input. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "text/text.h"

typedef int64_t (*seg_fn)(const char *, size_t, terse_span **);

/* Spans as "piece|piece|..." for easy comparison. */
static char *pieces(seg_fn f, const char *s) {
    terse_span *sp;
    int64_t n = f(s, strlen(s), &sp);
    static char buf[4096];
    buf[0] = 0;
    if (n < 0) return strcpy(buf, "<error>");
    size_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i) buf[k++] = '|';
        size_t l = (size_t)(sp[i].end - sp[i].begin);
        memcpy(buf + k, s + sp[i].begin, l);
        k += l;
    }
    buf[k] = 0;
    free(sp);
    return buf;
}

#define EXPECT(f, in, want)                                                                       \
    do {                                                                                          \
        const char *got_ = pieces(f, in);                                                         \
        CHECK(!strcmp(got_, want), "%s(\"%s\"):\n   got  \"%s\"\n   want \"%s\"", #f, in, got_, want); \
    } while (0)

/* Tiling: spans cover s exactly, in order, none empty. */
static int tiles(seg_fn f, const char *s, size_t n) {
    terse_span *sp;
    int64_t k = f(s, n, &sp);
    if (k < 0) return 0;
    int64_t at = 0;
    int ok = 1;
    for (int64_t i = 0; i < k; i++) {
        if (sp[i].begin != at || sp[i].end <= sp[i].begin) ok = 0;
        at = sp[i].end;
    }
    if (at != (int64_t)n) ok = 0;
    free(sp);
    return ok;
}

static void test_reference_splitter(void) {
    /* splits on whitespace after '.' or '?', pieces stripped */
    EXPECT(text_sentences_ref, "A b. C d? E f.", "A b.|C d?|E f.");
    /* quirk: '!' is not a sentence end */
    EXPECT(text_sentences_ref, "Stop! Go on. Now", "Stop! Go on.|Now");
    /* quirk guard 1 (?<!\w\.\w.): "e.g. x" and "i.e. y" do not split */
    EXPECT(text_sentences_ref, "Use e.g. this one. Next", "Use e.g. this one.|Next");
    /* quirk guard 2 (?<![A-Z][a-z]\.): "Mr. Smith", "Dr. No" do not split */
    EXPECT(text_sentences_ref, "Mr. Smith came. Dr. No left.", "Mr. Smith came.|Dr. No left.");
    /* but "Mrs. X" (three letters) does split: the guard is exactly [A-Z][a-z]\. */
    EXPECT(text_sentences_ref, "Mrs. Smith came.", "Mrs.|Smith came.");
    /* only one whitespace char is consumed; the rest is stripped; empty pieces dropped */
    EXPECT(text_sentences_ref, "  One.   Two.  ", "One.|Two.");
    /* a newline after '.' splits too (\s) */
    EXPECT(text_sentences_ref, "One.\nTwo", "One.|Two");
    /* Chinese full stop is not a split point: one "sentence" */
    EXPECT(text_sentences_ref, "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82\xe5\x86\x8d\xe8\xa7\x81\xe3\x80\x82",
           "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82\xe5\x86\x8d\xe8\xa7\x81\xe3\x80\x82");
    /* lookbehinds count code points: a non-ASCII letter is \w ("\xc3\xa9.x. y" keeps together) */
    EXPECT(text_sentences_ref, "\xc3\xa9.x. y", "\xc3\xa9.x. y");
    EXPECT(text_sentences_ref, "", "");
    EXPECT(text_sentences_ref, "   ", "");
}

static void test_sentences(void) {
    EXPECT(text_sentences, "A b. C d! E f? G", "A b.| C d!| E f?| G");
    /* layout kept: every line is a sentence, whitespace leads the next sentence */
    EXPECT(text_sentences, "Title\n\n- one\n- two\n", "Title|\n\n- one|\n- two\n");
    /* abbreviations, initials, decimals, lowercase continuation */
    EXPECT(text_sentences, "Mr. Smith paid $3.50 for it. J. Doe did too.", "Mr. Smith paid $3.50 for it.| J. Doe did too.");
    EXPECT(text_sentences, "See e.g. the docs. Then go.", "See e.g. the docs.| Then go.");
    EXPECT(text_sentences, "It is 5 p.m. now. ok", "It is 5 p.m. now. ok");
    /* closing quotes stay with their sentence */
    EXPECT(text_sentences, "He said \"hi.\" She left.", "He said \"hi.\"| She left.");
    /* CJK terminators split without whitespace */
    EXPECT(text_sentences, "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82\xe5\x86\x8d\xe8\xa7\x81\xe3\x80\x82",
           "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82|\xe5\x86\x8d\xe8\xa7\x81\xe3\x80\x82");
    EXPECT(text_sentences, "  lead. x", "  lead. x");
    EXPECT(text_sentences, "End.  \n", "End.  \n");
    EXPECT(text_sentences, "", "");
}

static void test_words(void) {
    EXPECT(text_words, "Hello, world!", "Hello|,| world|!");
    EXPECT(text_words, "don't stop e-mail 3.5 1,000 x.", "don't| stop| e-mail| 3.5| 1,000| x|.");
    EXPECT(text_words, "wait...  now\n", "wait|...|  now\n");
    EXPECT(text_words, "\xe4\xbd\xa0\xe5\xa5\xbd ok", "\xe4\xbd\xa0|\xe5\xa5\xbd| ok");
    EXPECT(text_words, "  ", "  ");
}

static void test_phrases(void) {
    /* determiner + content words merge; closed-class words stand alone */
    EXPECT(text_phrases, "The quick brown fox jumps over the lazy dog.",
           "The quick brown fox jumps| over| the lazy dog|.");
    EXPECT(text_phrases, "She has 2 chapters of their textbook to study.",
           "She| has| 2 chapters| of| their textbook| to| study|.");
    /* a line break ends a chunk */
    EXPECT(text_phrases, "red apples\ngreen pears", "red apples|\ngreen pears");
    /* chunks are at most 6 words */
    EXPECT(text_phrases, "a b c d e f g h", "a b c d e f| g h");
    EXPECT(text_phrases, "It was very quickly done.", "It| was| very| quickly| done|.");
}

static void test_tiling_on_odd_input(void) {
    const char *cases[] = {
        "plain text without punctuation",
        "\xff\xfe broken \xc3 utf8 \xe2\x82 here. And \xf0\x9f\x98\x80 emoji! ok?",
        "\n\n\n",
        "a",
        ". . . ! ? ...",
        "tabs\tand\r\nwindows\r\nlines. Next.",
        "\xe3\x80\x82\xe3\x80\x82\xe3\x80\x82",
    };
    seg_fn fns[] = {text_sentences, text_words, text_phrases};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int f = 0; f < 3; f++)
            CHECK(tiles(fns[f], cases[c], strlen(cases[c])), "segmenter %d does not tile case %zu", f, c);
    /* random bytes */
    uint32_t x = 12345;
    char buf[300];
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round % 290);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            unsigned r = (x >> 16) & 0xff;
            buf[i] = r < 100 ? "ab .?!\n,'-1\xe3\x80\x82"[r % 15] : (char)r;
        }
        for (int f = 0; f < 3; f++) CHECK(tiles(fns[f], buf, n), "segmenter %d, random round %d", f, round);
        terse_span *sp;
        int64_t k = text_sentences_ref(buf, n, &sp);
        CHECK(k >= 0, "ref splitter failed");
        for (int64_t i = 0; i < k; i++)
            CHECK(sp[i].begin < sp[i].end && sp[i].end <= (int64_t)n && (i == 0 || sp[i].begin >= sp[i - 1].end),
                  "ref span %lld", (long long)i);
        free(sp);
    }
}

int main(void) {
    test_reference_splitter();
    test_sentences();
    test_words();
    test_phrases();
    test_tiling_on_odd_input();
    return test_summary("text_segment");
}
