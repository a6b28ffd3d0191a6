/* test_eval_bleu.c - BLEU against sacreBLEU's own test suite (mjpost/sacrebleu, files
 * test/test_bleu.py and test/test_sentence_bleu.py; values are sacreBLEU 2.x outputs that its
 * CI asserts), plus tokenizer cases worked out by hand from the 13a regular expressions. */
#include "terse.h"

#include "harness.h"

static double corpus(const char *const *hyps, const char *const *const *refs, int n_items,
                     int n_refs, terse_bleu_smooth sm, double value, int eff) {
    terse_bleu_stats s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < n_items; i++) {
        const char *r[4];
        for (int k = 0; k < n_refs; k++) r[k] = refs[k][i];
        CHECK_OK(terse_bleu_add(&s, hyps[i], r, n_refs));
    }
    return terse_bleu_score(&s, sm, value, eff);
}

static void check_tok(const char *in, const char *want) {
    char *out = NULL;
    CHECK_OK(terse_bleu_tokenize_13a(in, &out));
    CHECK(out && !strcmp(out, want), "13a(\"%s\") = \"%s\", want \"%s\"", in, out ? out : "", want);
    free(out);
}

int main(void) {
    /* --- tokenizer 13a, by hand from tokenizer_re.py's four rules --- */
    check_tok("The dog bit the man.", "The dog bit the man .");
    check_tok("It wasn't surprising.", "It wasn't surprising .");
    check_tok("3.14, 1,000 and 5-3 (x)", "3.14 , 1,000 and 5 - 3 ( x )");
    check_tok("a..b", "a . . b");
    check_tok("&quot;hi&quot; &amp; co-op\n", "\" hi \" & co-op");
    check_tok("end of line-\nbreak", "end of linebreak");
    check_tok("  ", "");
    check_tok("zahăr alb;", "zahăr alb ;");

    /* --- test_bleu.py: test_corpus_bleu, the README example (two reference streams) --- */
    const char *hyps[] = {"The dog bit the man.", "It wasn't surprising.",
                          "The man had just bitten him."};
    const char *ref1[] = {"The dog bit the man.", "It was not unexpected.", "The man bit him first."};
    const char *ref2[] = {"The dog had bit the man.", "No one was surprised.",
                          "The man had bitten the dog."};
    const char *const *refs[] = {ref1, ref2};
    double b = corpus(hyps, refs, 3, 2, TERSE_BLEU_SMOOTH_EXP, -1, 0);
    printf("corpus BLEU (13a, exp) = %.6f (sacreBLEU 48.530827)\n", b);
    CHECK(fabs(b - 48.530827) < 1e-5, "corpus bleu %.8f", b);
    b = corpus(hyps, refs, 3, 2, TERSE_BLEU_SMOOTH_NONE, -1, 0);
    CHECK(fabs(b - 48.530827) < 1e-5, "corpus bleu smooth none %.8f", b);
    const char *empty[] = {"", "", ""};
    b = corpus(empty, refs, 3, 2, TERSE_BLEU_SMOOTH_EXP, -1, 0);
    CHECK(b == 0.0, "empty hypotheses %.8f", b);

    /* test_bleu.py: test_scoring (compute_bleu on given statistics) */
    terse_bleu_stats st = {{9, 7, 5, 3}, {10, 8, 6, 4}, 11, 11};
    b = terse_bleu_score(&st, TERSE_BLEU_SMOOTH_NONE, -1, 0) / 100;
    CHECK(fabs(b - 0.8375922397) < 1e-8, "scoring %.10f", b);

    /* test_bleu.py: test_degenerate_statistics (floor smoothing) */
    terse_bleu_stats d1 = {{0, 0, 0, 0}, {4, 4, 2, 1}, 0, 1};
    CHECK(terse_bleu_score(&d1, TERSE_BLEU_SMOOTH_FLOOR, 0.0, 0) == 0.0, "degenerate 1");
    terse_bleu_stats d4 = {{6, 5, 4, 0}, {6, 5, 4, 3}, 6, 6};
    CHECK(terse_bleu_score(&d4, TERSE_BLEU_SMOOTH_FLOOR, 0.0, 0) == 0.0, "degenerate 4");
    terse_bleu_stats d6 = {{0, 0, 0, 0}, {0, 0, 0, 0}, 1, 5};
    CHECK(terse_bleu_score(&d6, TERSE_BLEU_SMOOTH_FLOOR, 0.01, 0) == 0.0, "degenerate 6");

    /* test_bleu.py: test_statistics ("am I am a character sequence" vs "I am a symbol string
     * sequence a a": counts [4,2,1,0], totals [6,5,4,3]) and test_offset (floor 0.1: 0.1555722182;
     * floor 0: 0). raw_corpus_bleu = tokenize none; these sentences tokenize the same with 13a. */
    terse_bleu_stats so;
    memset(&so, 0, sizeof so);
    const char *r_off = "I am a symbol string sequence a a";
    CHECK_OK(terse_bleu_add(&so, "am I am a character sequence", &r_off, 1));
    CHECK(so.correct[0] == 4 && so.correct[1] == 2 && so.correct[2] == 1 && so.correct[3] == 0,
          "counts %g %g %g %g", so.correct[0], so.correct[1], so.correct[2], so.correct[3]);
    CHECK(so.total[0] == 6 && so.total[1] == 5 && so.total[2] == 4 && so.total[3] == 3, "totals");
    b = terse_bleu_score(&so, TERSE_BLEU_SMOOTH_FLOOR, 0.1, 0) / 100;
    CHECK(fabs(b - 0.1555722182) < 1e-8, "offset 0.1: %.10f", b);
    b = terse_bleu_score(&so, TERSE_BLEU_SMOOTH_FLOOR, 0.0, 0) / 100;
    CHECK(b == 0.0, "offset 0: %.10f", b);

    /* test_bleu.py: test_raw_bleu and test_effective_order (floor 0.01, effective order on for
     * these: raw_corpus_bleu sets use_effective_order=True) */
    {
        const char *h1[] = {"this is a test", "another test"};
        const char *r1[] = {"ref1", "ref2"};
        const char *const *rr1[] = {r1};
        /* test_bleu.py expects 0.003799178428257963 here, from before the early stop that
         * sacreBLEU 2.x's compute_bleu added for issue #141 (no match at all -> 0), which the
         * current code (metrics/bleu.py) has and we follow. */
        b = corpus(h1, rr1, 2, 1, TERSE_BLEU_SMOOTH_FLOOR, 0.01, 1) / 100;
        CHECK(b == 0.0, "raw 1: %.12f", b);
        const char *h2[] = {"this is a fest"};
        const char *r2[] = {"this is a test"};
        const char *const *rr2[] = {r2};
        b = corpus(h2, rr2, 1, 1, TERSE_BLEU_SMOOTH_FLOOR, 0.01, 1) / 100;
        CHECK(fabs(b - 0.223606797749979) < 1e-8, "raw 3: %.12f", b);
        const char *h3[] = {"test"}, *r3[] = {"a test"};
        const char *const *rr3[] = {r3};
        b = corpus(h3, rr3, 1, 1, TERSE_BLEU_SMOOTH_FLOOR, 0.01, 1) / 100;
        CHECK(fabs(b - 0.3678794411714425) < 1e-8, "effective order 1: %.12f", b);
        const char *h4[] = {"a little test"}, *r4[] = {"a test"};
        const char *const *rr4[] = {r4};
        b = corpus(h4, rr4, 1, 1, TERSE_BLEU_SMOOTH_FLOOR, 0.01, 1) / 100;
        CHECK(fabs(b - 0.03218297948685433) < 1e-8, "effective order 3: %.12f", b);
    }

    /* --- test_sentence_bleu.py: issue #98's Romanian pair, 13a, effective order --- */
    const char *REF = "producţia de zahăr brut se exprimă în zahăr alb;";
    const char *SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
    struct { terse_bleu_smooth sm; double v, want; } cases[] = {
        {TERSE_BLEU_SMOOTH_EXP, -1, 8.493},   {TERSE_BLEU_SMOOTH_NONE, -1, 0.0},
        {TERSE_BLEU_SMOOTH_FLOOR, -1, 4.51688}, {TERSE_BLEU_SMOOTH_FLOOR, 0.5, 10.10},
        {TERSE_BLEU_SMOOTH_ADD_K, -1, 14.882}, {TERSE_BLEU_SMOOTH_ADD_K, 2, 21.389},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        terse_bleu_stats s1;
        memset(&s1, 0, sizeof s1);
        CHECK_OK(terse_bleu_add(&s1, SYS, &REF, 1));
        b = terse_bleu_score(&s1, cases[i].sm, cases[i].v, 1);
        CHECK(fabs(b - cases[i].want) < 1e-3, "sentence case %zu: %.5f want %.5f", i, b,
              cases[i].want);
    }
    CHECK_OK(terse_bleu_sentence(SYS, &REF, 1, &b));
    printf("sentence BLEU (#98 pair) = %.4f (sacreBLEU 8.493)\n", b);
    CHECK(fabs(b - 8.493) < 1e-3, "sentence_bleu %.5f", b);
    /* issue #141: no match at all gives 0 with every smoothing */
    const char *REF0 = "okay thanks";
    CHECK_OK(terse_bleu_sentence("this is a cat", &REF0, 1, &b));
    CHECK(b == 0.0, "zero bleu %.5f", b);

    /* identical text: 100 */
    const char *same = "the quick brown fox jumps over the lazy dog";
    CHECK_OK(terse_bleu_sentence(same, &same, 1, &b));
    CHECK(fabs(b - 100.0) < 1e-9, "identical %.9f", b);
    CHECK(terse_bleu_sentence(NULL, &same, 1, &b) < 0, "NULL hypothesis refused");
    return test_summary("eval_bleu");
}
