/* test_eval_rouge.c - ROUGE-1/2/L against rouge-score's own tests
 * (google-research/google-research, rouge/rouge_scorer_test.py: the small cases, and the
 * "AgainstRouge155" cases whose values come from manual runs of the official ROUGE-1.5.5 on
 * rouge/testdata/target.txt and prediction.txt, lines 0 and 1, copied below), plus the
 * Porter stems the stemming cases rely on. */
#include "terse.h"

#include "harness.h"

#define NEAR(x, want, tol) (fabs((x) - (want)) < (tol))

static void check_prf(const char *what, terse_prf got, double p, double r, double f, double tol) {
    CHECK(NEAR(got.p, p, tol) && NEAR(got.r, r, tol) && NEAR(got.f, f, tol),
          "%s: p %.5f r %.5f f %.5f, want %.5f %.5f %.5f", what, got.p, got.r, got.f, p, r, f);
}

/* rouge/testdata/target.txt and prediction.txt, lines 0 and 1 (random strings whose words end
 * in -ing/-tion/-er, so that stemming changes some matches) */
static const char *T0 =
    "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM "
    "EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n";
static const char *P0 =
    "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n";
static const char *T1 =
    "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q "
    "m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing "
    "UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n";
static const char *P1 =
    "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed "
    "HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n";

int main(void) {
    terse_rouge r;
    /* testRouge1: score("testing one two", "testing") */
    CHECK_OK(terse_rouge_score("testing one two", "testing", 0, &r));
    check_prf("rouge1 small", r.rouge1, 1.0, 1.0 / 3, 0.5, 1e-12);
    /* testRougeEmpty */
    CHECK_OK(terse_rouge_score("testing one two", "", 0, &r));
    check_prf("rouge1 empty", r.rouge1, 0, 0, 0, 1e-12);
    check_prf("rouge2 empty", r.rouge2, 0, 0, 0, 1e-12);
    check_prf("rougeL empty", r.rougeL, 0, 0, 0, 1e-12);
    /* testRouge2, testMultipleRougeTypes, testRougeLConsecutive */
    CHECK_OK(terse_rouge_score("testing one two", "testing one", 0, &r));
    check_prf("rouge2 small", r.rouge2, 1.0, 0.5, 2.0 / 3, 1e-12);
    check_prf("rouge1 multi", r.rouge1, 1.0, 2.0 / 3, 0.8, 1e-12);
    check_prf("rougeL consecutive", r.rougeL, 1.0, 2.0 / 3, 0.8, 1e-12);
    /* testRougeLNonConsecutive */
    CHECK_OK(terse_rouge_score("testing one two", "testing two", 0, &r));
    check_prf("rougeL non-consecutive", r.rougeL, 1.0, 2.0 / 3, 0.8, 1e-12);

    /* AgainstRouge155 (assertAlmostEqual to 5 places) */
    const double tol = 5e-6;
    CHECK_OK(terse_rouge_score(T0, P0, 0, &r));
    check_prf("rouge1 155 #0", r.rouge1, 0.68750, 0.40741, 0.51163, tol);
    check_prf("rouge2 155 #0", r.rouge2, 0.53333, 0.30769, 0.39024, tol);
    check_prf("rougeL 155 #0", r.rougeL, 0.68750, 0.40741, 0.51163, tol);
    printf("ROUGE #0: R1 %.5f R2 %.5f RL %.5f (rouge-score 0.51163 0.39024 0.51163)\n",
           r.rouge1.f, r.rouge2.f, r.rougeL.f);
    CHECK_OK(terse_rouge_score(T1, P1, 0, &r));
    check_prf("rouge1 155 #1", r.rouge1, 0.65385, 0.40476, 0.50000, tol);
    check_prf("rouge2 155 #1", r.rouge2, 0.48000, 0.29268, 0.36364, tol);
    check_prf("rougeL 155 #1", r.rougeL, 0.65385, 0.40476, 0.50000, tol);
    /* ...WithStemming */
    CHECK_OK(terse_rouge_score(T0, P0, 1, &r));
    check_prf("rouge1 stem #0", r.rouge1, 0.68750, 0.40741, 0.51163, tol);
    check_prf("rouge2 stem #0", r.rouge2, 0.53333, 0.30769, 0.39024, tol);
    CHECK_OK(terse_rouge_score(T1, P1, 1, &r));
    check_prf("rouge1 stem #1", r.rouge1, 0.69231, 0.42857, 0.52941, tol);
    check_prf("rouge2 stem #1", r.rouge2, 0.48000, 0.29268, 0.36364, tol);
    printf("ROUGE stemmed #1: R1 %.5f R2 %.5f (rouge-score 0.52941 0.36364)\n", r.rouge1.f,
           r.rouge2.f);

    /* stemming joins inflections; words of <= 3 letters are left alone */
    CHECK_OK(terse_rouge_score("the cats were running", "The cat was runs", 1, &r));
    CHECK(NEAR(r.rouge1.r, 0.75, 1e-12), "stemmed recall %.4f (the, cat, run)", r.rouge1.r);
    CHECK_OK(terse_rouge_score("the cats were running", "The cat was runs", 0, &r));
    CHECK(NEAR(r.rouge1.r, 0.25, 1e-12), "unstemmed recall %.4f (the)", r.rouge1.r);
    /* punctuation only: no tokens */
    CHECK_OK(terse_rouge_score("w1 w2 w3 w4 w5", "/", 0, &r));
    check_prf("punctuation only", r.rougeL, 0, 0, 0, 1e-12);
    CHECK(terse_rouge_score(NULL, "x", 0, &r) < 0, "NULL refused");
    return test_summary("eval_rouge");
}
