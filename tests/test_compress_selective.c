/* test_compress_selective.c - Selective Context: the reference's quirks pinned on hand-checked
 * cases (compat), the default mode's guarantees (layout kept, bytes of the input in order,
 * rate 1 = unchanged, determinism, tags, protected spans, windows), bad input, and two
 * end-to-end runs with the default model when it is present.
 * The model-free pieces (numpy mean/percentile, character alignment, threshold) are checked
 * with hand-made scores; the rest uses a tiny random model (bytes as tokens, context 64). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/compress.h"
#include "compress/selective.h"
#include "harness.h"

static char model_path[128];

/* ---------------------------------------------------------------------------------------- */
/* Model-free pieces                                                                         */

static void test_numpy_pieces(void) {
    /* np.percentile([1,2,3,4], 35) = 1 + 0.35*3 -> 2.05 (linear) */
    double v[] = {4, 2, 3, 1};
    CHECK(fabs(cmp_percentile(v, 4, 35.0) - 2.05) < 1e-12, "p35 %g", cmp_percentile(v, 4, 35.0));
    CHECK(cmp_percentile(v, 4, 0.0) == 1.0 && cmp_percentile(v, 4, 100.0) == 4.0, "ends");
    double w[] = {1, 10};
    CHECK(fabs(cmp_percentile(w, 2, 25.0) - 3.25) < 1e-12, "p25 of [1,10]");
    /* np.nanpercentile ignores NaN */
    double x[] = {1, NAN, 3};
    CHECK(cmp_percentile(x, 3, 50.0) == 2.0, "nanpercentile");
    double y[] = {NAN};
    CHECK(isnan(cmp_percentile(y, 1, 50.0)), "all NaN -> NaN");
    /* numpy's lerp for t >= 0.5 is b - (b-a)(1-t): exact at the upper end */
    double z[] = {0.1, 0.7};
    CHECK(cmp_percentile(z, 2, 100.0) == 0.7, "upper end exact");

    /* np.mean: NaN for no values (unit with no token), float64 of float32 inputs */
    float f[] = {1.5f, 2.5f, 3.0f};
    CHECK(sc_np_mean(f, 3) == (1.5 + 2.5 + 3.0) / 3.0, "mean");
    CHECK(isnan(sc_np_mean(f, 0)), "np.mean([]) is NaN");
    /* summation order: the first value plus the pairwise sum of the rest (numpy's) */
    float g[10] = {1e8f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, -1e8f};
    CHECK(sc_np_mean(g, 10) == 0.8, "pairwise mean %.17g", sc_np_mean(g, 10));

    /* mean, not sum: a short surprising unit outranks a long, mildly surprising one */
    float shortu[] = {6.0f}, longu[] = {4.0f, 4.0f, 4.0f, 4.0f};
    CHECK(sc_np_mean(shortu, 1) > sc_np_mean(longu, 4), "quirk mean-not-sum: short unit ranks higher");
}

static void test_threshold_quirks(void) {
    /* quirk count-percentile: reduce_ratio is the fraction of UNITS removed (below the
     * numpy-interpolated percentile), whatever their length */
    double s[] = {1, 2, 3, 4};
    uint8_t keep[5];
    double thr = sc_threshold(s, 4, 0.35, keep);
    CHECK(fabs(thr - 2.05) < 1e-12 && !keep[0] && !keep[1] && keep[2] && keep[3], "thr %g", thr);
    /* strict '<': a unit equal to the threshold is kept */
    double t[] = {1, 2, 3};
    sc_threshold(t, 3, 0.5, keep);
    CHECK(!keep[0] && keep[1] && keep[2], "quirk strict-less-than: score == thr kept");
    /* quirk nan-kept: a unit with no score (np.mean([]) = NaN) is never dropped */
    double u[] = {NAN, 1, 2, 3, 4};
    sc_threshold(u, 5, 0.9, keep);
    CHECK(keep[0] && !keep[1] && !keep[2] && !keep[3] && keep[4], "NaN unit kept");
    /* reduce_ratio 0 keeps everything (threshold = min) */
    sc_threshold(s, 4, 0.0, keep);
    CHECK(keep[0] && keep[1] && keep[2] && keep[3], "ratio 0 keeps all");
}

static void test_unit_info_quirks(void) {
    double us[4];
    /* tokens "abc","d" over units "ab","cd": "abc" runs into "cd" but gives it nothing
     * (quirk straddle-into: only completed units get a share) */
    {
        int64_t tl[] = {3, 1}, ul[] = {2, 2};
        bool sp[] = {false, false};
        float info[] = {6.0f, 2.0f};
        CHECK_OK(sc_unit_info(tl, sp, info, 2, ul, 2, us));
        CHECK(us[0] == 6.0 && us[1] == 2.0, "straddle: %g %g", us[0], us[1]);
    }
    /* token "abcd" completing units "ab","cd": info/k to each (quirk split-by-k) */
    {
        int64_t tl[] = {4}, ul[] = {2, 2};
        bool sp[] = {false};
        float info[] = {6.0f};
        CHECK_OK(sc_unit_info(tl, sp, info, 1, ul, 2, us));
        CHECK(us[0] == 3.0 && us[1] == 3.0, "split: %g %g", us[0], us[1]);
    }
    /* a " " token inside a unit is skipped (quirk space-skip); one that completes a unit is not */
    {
        int64_t tl[] = {1, 1, 1, 1}, ul[] = {1, 3};
        bool sp[] = {false, true, false, false};
        float info[] = {1.0f, 100.0f, 4.0f, 6.0f}; /* units "a", " bc" */
        CHECK_OK(sc_unit_info(tl, sp, info, 4, ul, 2, us));
        CHECK(us[0] == 1.0 && us[1] == 5.0, "space skip: %g %g", us[0], us[1]);
        int64_t tl2[] = {1, 1}, ul2[] = {2};
        bool sp2[] = {false, true};
        float info2[] = {2.0f, 4.0f}; /* unit "a ": the " " completes it and counts */
        CHECK_OK(sc_unit_info(tl2, sp2, info2, 2, ul2, 1, us));
        CHECK(us[0] == 3.0, "space completing a unit counts: %g", us[0]);
    }
    /* a unit that gets nothing scores NaN */
    {
        int64_t tl[] = {1, 1}, ul[] = {1, 1, 1};
        bool sp[] = {false, false};
        float info[] = {1.0f, 2.0f};
        CHECK_OK(sc_unit_info(tl, sp, info, 2, ul, 3, us));
        CHECK(us[0] == 1.0 && us[1] == 2.0 && isnan(us[2]), "unscored unit NaN");
    }
    /* character lengths as Python counts them: a split UTF-8 character is one U+FFFD */
    CHECK(sc_char_len("\xc3\xa9t\xc3\xa9", 5) == 3, "len('été')");
    CHECK(sc_char_len("\xe2\x82", 2) == 1, "truncated sequence = 1 char");
    CHECK(sc_char_len("\x80\x80", 2) == 2, "two stray continuation bytes = 2 chars");
    /* beautify: every whitespace run -> one space, with the offset map */
    char *b;
    size_t bn;
    int64_t *map;
    CHECK_OK(sc_beautify("a \n\t b\n", 7, &b, &bn, &map));
    CHECK(bn == 4 && !memcmp(b, "a b ", 4) && map[2] == 5 && map[3] == 6 && map[4] == 7, "beautify '%s'", b);
    free(b);
    free(map);
}

/* ---------------------------------------------------------------------------------------- */
/* With a model                                                                              */

static terse_model *model;
static terse_ctx *ctx;

static terse_result *run(const char *text, terse_compress_params p) {
    const char *cs[] = {text};
    terse_prompt pr = {.contexts = cs, .n_contexts = 1};
    terse_result *r = NULL;
    int rc = terse_compress(ctx, &pr, p, &r);
    CHECK(rc == 0, "terse_compress -> %d: %s", rc, terse_last_error());
    return r;
}

static terse_compress_params params(terse_unit u, double rate, int compat) {
    terse_compress_params p = terse_compress_default_params();
    p.unit = u;
    p.rate = rate;
    p.compat = compat;
    return p;
}

static const char *text_of(terse_result *r) { return r ? terse_result_text(r, NULL) : ""; }

static void test_compat_quirks(void) {
    const char *two = "A b.\n\n  C d.";
    /* quirk whitespace-collapse + quirk token-level-glues-sentences: all tokens kept
     * (rate 1 -> reduce_ratio 0), yet newlines are gone and the sentences are joined with "" */
    terse_result *r = run(two, params(TERSE_UNIT_TOKEN, 1.0, 1));
    CHECK(!strcmp(text_of(r), "A b.C d."), "token level: '%s'", text_of(r));
    terse_result_free(r);
    /* quirk sentence-join-space: sentence level joins kept sentences with " " */
    r = run(two, params(TERSE_UNIT_SENTENCE, 1.0, 1));
    CHECK(!strcmp(text_of(r), "A b. C d."), "sentence level: '%s'", text_of(r));
    terse_result_free(r);
    /* quirk phrase-leading-space: phrase level puts " " before each later sentence's first unit */
    r = run(two, params(TERSE_UNIT_PHRASE, 1.0, 1));
    CHECK(!strcmp(text_of(r), "A b. C d."), "phrase level: '%s'", text_of(r));
    terse_result_free(r);
    /* quirk bang-no-split: '!' does not end a sentence, so 3 units here, not 4 */
    r = run("Go! Now. Then? Yes.", params(TERSE_UNIT_SENTENCE, 1.0, 1));
    terse_compress_stats st;
    terse_result_get_stats(r, &st);
    CHECK(st.n_units == 3, "units %lld", (long long)st.n_units);
    terse_result_free(r);
    /* quirk count-percentile: rate 0.5 over 4 sentences of very different lengths keeps
     * exactly 2 sentences (np.percentile of 4 distinct means at 50 = between the middle two) */
    r = run("Short one. A much longer sentence with many more words in it than the others. Mid size here. Tiny.",
            params(TERSE_UNIT_SENTENCE, 0.5, 1));
    terse_result_get_stats(r, &st);
    CHECK(st.n_units == 4 && st.n_units_kept == 2, "units %lld kept %lld", (long long)st.n_units,
          (long long)st.n_units_kept);
    /* quirk sentence-join-space, dropped case: " ".join over all 4 sentences with dropped ones
     * as "": 3 separators whatever was dropped, so gaps read as double spaces */
    {
        const char *o = text_of(r);
        size_t kept_len = 0;
        const char *sents[] = {"Short one.", "A much longer sentence with many more words in it than the others.",
                               "Mid size here.", "Tiny."};
        for (int k = 0; k < 4; k++)
            if (strstr(o, sents[k])) kept_len += strlen(sents[k]);
        CHECK(strlen(o) == kept_len + 3, "sentence join: '%s'", o);
    }
    terse_result_free(r);
    /* quirk no-cross-sentence-context: each sentence is scored alone after BOS, so what came
     * before it does not change its scores */
    {
        terse_compress_params p = params(TERSE_UNIT_TOKEN, 0.5, 1);
        p.return_tokens = 1;
        terse_result *r1 = run("Xq zz. Same words.", p), *r2 = run("Different start. Same words.", p);
        const terse_token_info *t1, *t2;
        int64_t n1 = terse_result_tokens(r1, &t1), n2 = terse_result_tokens(r2, &t2);
        float maxd = 0;
        for (int64_t k = 1; k <= 11; k++) /* the bytes of "Same words." */
            maxd = fmaxf(maxd, fabsf(t1[n1 - k].score - t2[n2 - k].score));
        CHECK(n1 > 11 && n2 > 11 && maxd < 1e-4f, "later sentence's scores depend on the first: %g", maxd);
        terse_result_free(r1);
        terse_result_free(r2);
    }
    /* protected spans hold in compat mode too: the units holding them are kept */
    {
        terse_compress_params p = params(TERSE_UNIT_PHRASE, 0.2, 1);
        p.keep_digits = 1;
        const char *force[] = {"zebra"};
        p.force_tokens = force;
        p.n_force_tokens = 1;
        r = run("One cat and 42 dogs met a zebra near the river. They all went home after that day.", p);
        CHECK(strstr(text_of(r), "42") && strstr(text_of(r), "zebra"), "compat protected: '%s'", text_of(r));
        terse_result_free(r);
    }
    /* quirk tags-outside-dropped: with tags present, the reference's tag regex only sees tagged
     * text, so text outside the tags disappears (default mode keeps it) */
    r = run("<llmlingua, compress=False>Kept.</llmlingua> outside words", params(TERSE_UNIT_TOKEN, 1.0, 1));
    CHECK(!strcmp(text_of(r), "Kept."), "compat outside text: '%s'", text_of(r));
    terse_result_free(r);
    r = run("<llmlingua, compress=False>Kept.</llmlingua> outside words", params(TERSE_UNIT_TOKEN, 1.0, 0));
    CHECK(!strcmp(text_of(r), "Kept. outside words"), "default outside text: '%s'", text_of(r));
    terse_result_free(r);
    /* JSON result: LLMLingua's field names and formats */
    r = run(two, params(TERSE_UNIT_TOKEN, 1.0, 1));
    char *js = NULL;
    CHECK(r && terse_result_json(r, 0, &js) == 0, "json");
    CHECK(js && strstr(js, "\"compressed_prompt\": \"A b.C d.\"") && strstr(js, "\"ratio\": \"") &&
          strstr(js, "x\",") && strstr(js, "\"rate\": \"") && strstr(js, "%\",") && strstr(js, "\"origin_tokens\": ") &&
          strstr(js, "\"compressed_tokens\": "), "json: %s", js ? js : "");
    free(js);
    terse_result_free(r);
    /* quirk long-sentence: the reference crashes beyond the context (issue #23); we window
     * and warn */
    char longs[400];
    for (int i = 0; i < 399; i++) longs[i] = "abcdefgh "[i % 9];
    longs[399] = 0;
    r = run(longs, params(TERSE_UNIT_TOKEN, 0.5, 1));
    CHECK(r && strstr(terse_result_warning(r), "issue #23"), "warning '%s'", r ? terse_result_warning(r) : "");
    terse_result_free(r);
}

/* cmp_score_ids in windows and cmp_score_packed against plain terse_score of the same
 * token sequences (what each score is conditioned on, spelled out). */
static void test_scoring(void) {
    cmp_job j;
    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.model = model;
    j.n_ctx = terse_ctx_n_ctx(ctx); /* 64 */
    j.bos = terse_vocab_bos(terse_model_vocab(model));
    j.p.carry = 16;
    enum { N = 200 };
    int32_t ids[N], seq[64];
    float out[N], ref[64];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)((i * 37 + 11) % 256);
    int32_t bos = j.bos;
    CHECK_OK(cmp_score_ids(&j, &bos, 1, ids, N, out));
    /* window 1: [BOS] + ids[0..63); window 2 starts 16 tokens back: [BOS] + ids[47..110) ... */
    float maxd = 0;
    int64_t s = 0, ws = 0;
    while (s < N) {
        int64_t we = ws + 63 < N ? ws + 63 : N;
        seq[0] = bos;
        for (int64_t t = ws; t < we; t++) seq[1 + t - ws] = ids[t];
        CHECK_OK(terse_score(ctx, seq, (int32_t)(we - ws + 1), ref));
        for (int64_t t = s; t < we; t++) {
            float d = fabsf(out[t] - ref[1 + t - ws]);
            if (d > maxd) maxd = d;
        }
        s = we;
        ws = s - 16;
    }
    CHECK(maxd < 1e-4f, "windowed scores differ from terse_score by %g", maxd);
    /* no prefix: out[0] = 0, the rest as terse_score */
    CHECK_OK(cmp_score_ids(&j, NULL, 0, ids, 40, out));
    CHECK_OK(terse_score(ctx, ids, 40, ref));
    maxd = 0;
    for (int t = 0; t < 40; t++) maxd = fmaxf(maxd, fabsf(out[t] - ref[t]));
    CHECK(out[0] == 0.0f && maxd < 1e-4f, "no prefix: %g", maxd);
    /* packed: three sequences in one masked pass, each as if alone after BOS; the long one
     * (100 > 64) goes through windows */
    int64_t b[] = {0, 10, 30, 60}, e[] = {10, 30, 35, 160};
    for (int i = 0; i < N; i++) out[i] = -1.0f;
    CHECK_OK(cmp_score_packed(&j, ids, b, e, 4, out));
    maxd = 0;
    for (int k = 0; k < 3; k++) {
        seq[0] = bos;
        for (int64_t t = b[k]; t < e[k]; t++) seq[1 + t - b[k]] = ids[t];
        CHECK_OK(terse_score(ctx, seq, (int32_t)(e[k] - b[k] + 1), ref));
        for (int64_t t = b[k]; t < e[k]; t++) maxd = fmaxf(maxd, fabsf(out[t] - ref[1 + t - b[k]]));
    }
    CHECK(maxd < 1e-4f, "packed scores differ from terse_score by %g", maxd);
    CHECK(out[35] == -1.0f && out[59] == -1.0f, "gap between sequences untouched");
    seq[0] = bos;
    for (int t = 0; t < 63; t++) seq[1 + t] = ids[60 + t];
    CHECK_OK(terse_score(ctx, seq, 64, ref));
    CHECK(fabsf(out[60] - ref[1]) < 1e-4f && fabsf(out[122] - ref[63]) < 1e-4f, "long sequence's first window");
}

/* The output equals the kept tokens' bytes, in order (single context). */
static int built_from_input(terse_result *r, const char *in) {
    const terse_token_info *tk;
    int64_t n = terse_result_tokens(r, &tk);
    size_t olen, slen;
    const char *o = terse_result_text(r, &olen), *src = terse_result_source(r, &slen);
    if (slen != strlen(in) || memcmp(src, in, slen)) return 0;
    size_t k = 0;
    for (int64_t t = 0; t < n; t++) {
        if (tk[t].flags & TERSE_TOKEN_SEPARATOR) { /* some of its non-word bytes, in order */
            for (int64_t b = tk[t].span.begin; b < tk[t].span.end && k < olen; b++)
                if (o[k] == src[b] && !isalnum((unsigned char)src[b]) && (unsigned char)src[b] < 0x80) k++;
            continue;
        }
        if (!(tk[t].flags & TERSE_TOKEN_KEPT)) continue;
        size_t l = (size_t)(tk[t].span.end - tk[t].span.begin);
        if (k + l > olen || memcmp(o + k, src + tk[t].span.begin, l)) return 0;
        k += l;
    }
    return k == olen;
}

static void test_default_mode(void) {
    const char *doc = "# Notes\n\nThe cat sat on the mat. It was 3 pm.\n  - item one\n  - item two\n\n"
                      "Then the dog came in and barked loudly at 7 birds!\n";
    /* rate 1.0: the input, byte for byte */
    for (int u = 0; u < 3; u++) {
        terse_result *r = run(doc, params((terse_unit)u, 1.0, 0));
        CHECK(!strcmp(text_of(r), doc), "rate 1 unit %d changed the text", u);
        terse_result_free(r);
    }
    /* output from the input's bytes in order; layout (newlines) survives; deterministic */
    for (int u = 0; u < 3; u++) {
        terse_compress_params p = params((terse_unit)u, 0.5, 0);
        p.return_tokens = 1;
        terse_result *a = run(doc, p), *b = run(doc, p);
        CHECK(a && built_from_input(a, doc), "unit %d: output not built from kept bytes", u);
        CHECK(a && b && !strcmp(text_of(a), text_of(b)), "unit %d: not deterministic", u);
        int nl_in = 0, nl_out = 0; /* keep_layout: the line ends between kept text survive */
        for (const char *q = doc; *q; q++) nl_in += *q == '\n';
        for (const char *q = text_of(a); *q; q++) nl_out += *q == '\n';
        CHECK(nl_out >= 2 && nl_out <= nl_in, "unit %d: %d line breaks in, %d out", u, nl_in, nl_out);
        terse_compress_stats st;
        terse_result_get_stats(a, &st);
        CHECK(st.compressed_tokens <= st.target_tokens && st.target_tokens == (int64_t)(0.5 * st.origin_tokens),
              "unit %d: %lld > target %lld", u, (long long)st.compressed_tokens, (long long)st.target_tokens);
        terse_result_free(a);
        terse_result_free(b);
    }
    /* protected spans: digits, force tokens, regexes are never dropped */
    {
        terse_compress_params p = params(TERSE_UNIT_TOKEN, 0.3, 0);
        const char *force[] = {"barked"}, *pat[] = {"item \\w+"};
        p.keep_digits = 1;
        p.force_tokens = force;
        p.n_force_tokens = 1;
        p.protect_patterns = pat;
        p.n_protect_patterns = 1;
        terse_result *r = run(doc, p);
        const char *o = text_of(r);
        CHECK(strchr(o, '3') && strchr(o, '7') && strstr(o, "barked") && strstr(o, "item one") &&
              strstr(o, "item two"), "protected text missing: '%s'", o);
        terse_result_free(r);
        /* protected text alone above the target: kept, with a warning */
        p.rate = 0.05;
        r = run(doc, p);
        terse_compress_stats st;
        terse_result_get_stats(r, &st);
        CHECK(st.over_budget && strstr(terse_result_warning(r), "above the target"), "warning '%s'",
              terse_result_warning(r));
        CHECK(strstr(text_of(r), "barked") != NULL, "protected kept when over budget");
        terse_result_free(r);
        p.n_protect_patterns = 1;
        const char *bad[] = {"(unclosed"};
        p.protect_patterns = bad;
        const char *cs[] = {doc};
        terse_prompt pr = {.contexts = cs, .n_contexts = 1};
        CHECK(terse_compress(ctx, &pr, p, &r) == TERSE_ERR_INVALID && strstr(terse_last_error(), "protect_patterns[0]"),
              "bad regex: %s", terse_last_error());
    }
    /* structure tags: compress=False kept whole, tags removed, per-segment rate */
    {
        const char *tagged = "<llmlingua, compress=False>KEEP THIS WHOLE.</llmlingua> some words to be "
                             "compressed here and there. <llmlingua, rate=0.2>a long tail that may be cut "
                             "down to a fifth of its tokens</llmlingua>";
        for (int compat = 0; compat < 2; compat++) {
            terse_result *r = run(tagged, params(TERSE_UNIT_TOKEN, 0.6, compat));
            const char *o = text_of(r);
            CHECK(strstr(o, "KEEP THIS WHOLE.") && !strstr(o, "llmlingua"), "compat %d tags: '%s'", compat, o);
            terse_result_free(r);
        }
        const char *cs[] = {"<llmlingua, rate=1.5>x</llmlingua>"};
        terse_prompt pr = {.contexts = cs, .n_contexts = 1};
        terse_result *r;
        CHECK(terse_compress(ctx, &pr, params(TERSE_UNIT_TOKEN, 0.5, 0), &r) == TERSE_ERR_INVALID,
              "tag rate 1.5 rejected");
        CHECK(strstr(terse_last_error(), "rate '1.5'"), "names the rate: %s", terse_last_error());
        cs[0] = "<llmlingua, rate=-0.5, compress=True>x</llmlingua>";
        CHECK(terse_compress(ctx, &pr, params(TERSE_UNIT_TOKEN, 0.5, 0), &r) == TERSE_ERR_INVALID &&
              strstr(terse_last_error(), "rate '-0.5'"), "tag rate -0.5 named: %s", terse_last_error());
        cs[0] = "<llmlingua, rate=0.5>unterminated";
        CHECK(terse_compress(ctx, &pr, params(TERSE_UNIT_TOKEN, 0.5, 0), &r) == TERSE_ERR_INVALID,
              "unterminated tag rejected");
    }
    /* instruction and question are kept whole and joined with "\n\n" */
    {
        const char *cs[] = {"first context with several words in it.", "second context, also with words."};
        terse_prompt pr = {.instruction = "INSTR", .contexts = cs, .n_contexts = 2, .question = "QUESTION?"};
        terse_result *r = NULL;
        CHECK_OK(terse_compress(ctx, &pr, params(TERSE_UNIT_PHRASE, 0.6, 0), &r));
        const char *o = text_of(r);
        CHECK(!strncmp(o, "INSTR\n\n", 7) && strlen(o) > 11 && !strcmp(o + strlen(o) - 11, "\n\nQUESTION?"), "'%s'", o);
        terse_result_free(r);
    }
}

static void test_bad_input(void) {
    terse_result *r = NULL;
    const char *empty[] = {""};
    terse_prompt pr = {.contexts = empty, .n_contexts = 1};
    terse_compress_params p = params(TERSE_UNIT_PHRASE, 0.5, 0);
    CHECK(terse_compress(ctx, &pr, p, &r) == TERSE_ERR_INVALID && !r, "empty prompt");
    const char *one[] = {"some text here."};
    pr.contexts = one;
    double bad_rates[] = {0.0, -0.5, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        p.rate = bad_rates[i];
        CHECK(terse_compress(ctx, &pr, p, &r) == TERSE_ERR_INVALID && strstr(terse_last_error(), "rate"),
              "rate %g: %s", bad_rates[i], terse_last_error());
    }
    p.rate = 0.5;
    terse_prompt q = {.question = "why?"};
    CHECK(terse_compress(ctx, &q, p, &r) == TERSE_ERR_INVALID && strstr(terse_last_error(), "question"),
          "question without contexts: %s", terse_last_error());
    /* target larger than the prompt: unchanged, with a warning */
    p.target = 100000;
    r = run(one[0], p);
    CHECK(r && !strcmp(text_of(r), one[0]) && strstr(terse_result_warning(r), "above"), "big target");
    terse_result_free(r);
    p.target = -3;
    CHECK(terse_compress(ctx, &pr, p, &r) == TERSE_ERR_INVALID, "negative target");
    p.target = 0;
    /* invalid UTF-8: each invalid sequence becomes U+FFFD (Python's rule: "\xe2\x82" is one),
     * with a warning; the result is built from that text and is valid UTF-8 */
    const char *bad = "caf\xc3 \xff\xfe broken \xe2\x82 bytes. And more \x80 text here!";
    const char *fixed = "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd broken \xef\xbf\xbd bytes. And more "
                        "\xef\xbf\xbd text here!";
    for (int u = 0; u < 3; u++) {
        terse_compress_params pu = params((terse_unit)u, 0.5, 0);
        pu.return_tokens = 1;
        r = run(bad, pu);
        CHECK(r && built_from_input(r, fixed), "invalid utf-8 unit %d", u);
        CHECK(r && strstr(terse_result_warning(r), "5 invalid UTF-8 sequences"), "warning: %s",
              r ? terse_result_warning(r) : "");
        char *js = NULL;
        CHECK(r && terse_result_json(r, 1, &js) == 0 && js && strstr(js, "\"compressed_prompt\""), "json");
        free(js);
        terse_result_free(r);
        r = run(bad, params((terse_unit)u, 0.5, 1));
        CHECK(r != NULL, "compat invalid utf-8 unit %d", u);
        terse_result_free(r);
    }
    /* ten times the context (64): windows; one sentence with no punctuation at all too */
    char big[64 * 10 * 2 + 1];
    for (int i = 0; i < (int)sizeof big - 1; i++) big[i] = "lorem ipsum dolor sit amet, consectetur. "[i % 41];
    big[sizeof big - 1] = 0;
    for (int u = 0; u < 3; u++) {
        terse_compress_params pu = params((terse_unit)u, 0.4, 0);
        pu.return_tokens = 1;
        r = run(big, pu);
        terse_compress_stats st;
        terse_result_get_stats(r, &st);
        /* one "sentence" of 1280 tokens (no capital after the periods): nothing fits the
         * target, so the keep-at-least-one-unit rule keeps it, flagged and with a warning */
        CHECK(r && built_from_input(r, big) &&
                  (st.compressed_tokens <= st.target_tokens ||
                   (st.over_budget && strstr(terse_result_warning(r), "at least one unit"))),
              "big unit %d: %lld > %lld", u, (long long)st.compressed_tokens, (long long)st.target_tokens);
        const terse_token_info *tk;
        int64_t n = terse_result_tokens(r, &tk), unscored = 0;
        for (int64_t t = 0; t < n; t++) unscored += isnan(tk[t].score);
        CHECK(unscored == 0, "unit %d: %lld tokens unscored", u, (long long)unscored);
        terse_result_free(r);
    }
    for (int i = 0; i < (int)sizeof big - 1; i++) big[i] = "abcdefg "[i % 8];
    r = run(big, params(TERSE_UNIT_SENTENCE, 0.5, 0));
    CHECK(r && strlen(text_of(r)) <= strlen(big), "one long sentence");
    terse_result_free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* The default model, end to end                                                             */

static void test_default_model(void) {
    char path[4096];
    if (terse_default_model_path(path, sizeof path) < 0) {
        printf("default model not found: end-to-end checks skipped\n");
        return;
    }
    char gpath[512];
    snprintf(gpath, sizeof gpath, "%s/data/gsm8k/prompt_hardest.txt", test_shared_dir());
    char *text;
    size_t len;
    if (terse_read_all(gpath, &text, &len)) {
        printf("%s not found: end-to-end checks skipped\n", gpath);
        return;
    }
    terse_model *m;
    terse_ctx *c;
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c));
    const char *cs[] = {text};
    terse_prompt pr = {.contexts = cs, .n_contexts = 1};
    terse_compress_params p = params(TERSE_UNIT_PHRASE, 0.5, 0);
    p.keep_digits = 1;
    terse_result *r = NULL;
    CHECK_OK(terse_compress(c, &pr, p, &r));
    terse_compress_stats st;
    terse_result_get_stats(r, &st);
    printf("default model, gsm8k 8-shot, phrase 0.5: %lld -> %lld tokens (target %lld), %.2f s, %.0f%% in the model\n",
           (long long)st.origin_tokens, (long long)st.compressed_tokens, (long long)st.target_tokens,
           st.seconds, 100 * st.seconds_model / st.seconds);
    CHECK(st.compressed_tokens <= st.target_tokens && st.compressed_tokens >= st.target_tokens - 8,
          "budget %lld vs %lld", (long long)st.compressed_tokens, (long long)st.target_tokens);
    /* every digit of the input survives (keep_digits) */
    int din = 0, dout = 0;
    for (size_t i = 0; i < len; i++) din += text[i] >= '0' && text[i] <= '9';
    for (const char *o = text_of(r); *o; o++) dout += *o >= '0' && *o <= '9';
    CHECK(din == dout, "digits %d in, %d out", din, dout);
    terse_result_free(r);
    /* cl100k budget */
    char vpath[512];
    snprintf(vpath, sizeof vpath, "%s/vocab/tiktoken/cl100k_base.tiktoken", test_shared_dir());
    terse_vocab *cv;
    if (terse_vocab_load(vpath, &cv) == TERSE_OK) {
        p = params(TERSE_UNIT_TOKEN, 0.3, 0);
        p.count_vocab = cv;
        CHECK_OK(terse_compress(c, &pr, p, &r));
        terse_result_get_stats(r, &st);
        CHECK(st.compressed_tokens <= st.target_tokens && st.compressed_tokens >= st.target_tokens - 2 &&
              st.compressed_count_tokens == st.compressed_tokens && st.origin_count_tokens > 0,
              "cl100k budget %lld vs %lld", (long long)st.compressed_tokens, (long long)st.target_tokens);
        terse_result_free(r);
        terse_vocab_free(cv);
    }
    terse_ctx_free(c);
    terse_model_free(m);
    free(text);
}

int main(void) {
    test_numpy_pieces();
    test_threshold_quirks();
    test_unit_info_quirks();

    snprintf(model_path, sizeof model_path, "/tmp/terse_test_compress_sel_%d.gguf", (int)getpid());
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 64, .n_embd = 32, .n_layer = 2,
                              .n_head = 2, .n_ff = 64, .type = TERSE_TYPE_F32, .seed = 7, .init_std = 0.5f};
    CHECK_OK(terse_write_random_model(model_path, &rp));
    CHECK_OK(terse_model_load(model_path, terse_model_default_params(), &model));
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1;
    CHECK_OK(terse_ctx_new(model, cp, &ctx));
    if (ctx) {
        test_scoring();
        test_compat_quirks();
        test_default_mode();
        test_bad_input();
    }
    terse_ctx_free(ctx);
    terse_model_free(model);
    remove(model_path);
    test_default_model();
    return test_summary("compress_selective");
}
