/* test_compress_budget.c - the budget contract of the default mode as a property test: over
 * many random prompts (words, digits, punctuation, newlines, tags, several contexts, an
 * instruction and a question) and random budgets (rates and targets) at each unit level, the
 * output's token count is never above the target unless the text that must be kept alone
 * exceeds it (then over_budget and a warning), and it is within one unit of the target.
 * Counted in the scoring model's tokens (bytes here: a tiny random model) and in a BPE
 * counting vocabulary (GPT-2's, where pieces merge across kept boundaries) when present. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "terse.h"
#include "text/text.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) { return (uint32_t)(test_xorshift(&rng) % n); }

static const char *const WORDS[] = {
    "the", "cat", "sat", "on", "a", "mat", "and", "then", "numbers", "like", "42", "3.5", "apples",
    "oranges", "cost", "$12", "each", "of", "which", "is", "very", "important", "for", "model",
    "compression", "we", "should", "keep", "tokens", "x", "Question:", "Answer:", "total", "=",
    "+", "(", ")", "caf\xc3\xa9", "na\xc3\xafve", "\xe4\xbd\xa0\xe5\xa5\xbd"};

/* A random context of about n words. */
static void random_text(char *buf, size_t cap, int n, int tags) {
    size_t k = 0;
    buf[0] = 0;
    int open = 0;
    for (int i = 0; i < n && k + 64 < cap; i++) {
        if (tags && !open && rnd(25) == 0) {
            k += (size_t)snprintf(buf + k, cap - k, "%s", rnd(2) ? "<llmlingua, compress=False>"
                                                                  : "<llmlingua, rate=0.4>");
            open = 1;
        }
        const char *w = WORDS[rnd(sizeof WORDS / sizeof *WORDS)];
        if (i > 0) buf[k++] = rnd(12) == 0 ? '\n' : ' ';
        k += (size_t)snprintf(buf + k, cap - k, "%s", w);
        uint32_t r = rnd(10);
        if (r == 0) buf[k++] = '.';
        else if (r == 1) buf[k++] = ',';
        else if (r == 2) buf[k++] = '?';
        if (open && rnd(6) == 0) {
            k += (size_t)snprintf(buf + k, cap - k, "</llmlingua>");
            open = 0;
        }
        buf[k] = 0;
    }
    if (open) k += (size_t)snprintf(buf + k, cap - k, "</llmlingua>");
    buf[k] = 0;
}

/* Largest unit of text at this level, in tokens of v (tags stripped roughly: counted as is,
 * which only makes the tolerance larger). */
static int64_t max_unit(const terse_vocab *v, const char *s, terse_unit u) {
    if (u == TERSE_UNIT_TOKEN) return 1;
    terse_span *sp;
    int64_t n = (u == TERSE_UNIT_PHRASE ? text_phrases : text_sentences)(s, strlen(s), &sp), mx = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = terse_token_count(v, s + sp[i].begin, (size_t)(sp[i].end - sp[i].begin));
        if (c > mx) mx = c;
    }
    free(sp);
    return mx;
}

static void property(terse_ctx *c, const terse_vocab *scoring, const terse_vocab *count, int cases,
                     const char *label) {
    static char ctx_buf[3][4096];
    int over = 0, exact = 0, total = 0;
    int64_t worst_gap[3] = {0, 0, 0};
    for (int it = 0; it < cases; it++) {
        int nc = 1 + (int)rnd(3);
        const char *cs[3];
        for (int i = 0; i < nc; i++) {
            random_text(ctx_buf[i], sizeof ctx_buf[i], 5 + (int)rnd(90), rnd(3) == 0);
            cs[i] = ctx_buf[i];
        }
        terse_prompt pr = {.contexts = cs, .n_contexts = nc};
        if (rnd(3) == 0) pr.instruction = "Answer the question.";
        if (rnd(3) == 0) pr.question = "What is the total?";
        terse_compress_params p = terse_compress_default_params();
        p.unit = (terse_unit)rnd(3);
        p.count_vocab = count;
        if (rnd(2)) p.rate = 0.05 + 0.9 * rnd(1000) / 1000.0;
        else p.target = 1 + (int64_t)rnd(400);
        if (rnd(4) == 0) p.keep_digits = 1;
        const char *force[] = {"apples"};
        if (rnd(5) == 0) {
            p.force_tokens = force;
            p.n_force_tokens = 1;
        }
        terse_result *r = NULL;
        int rc = terse_compress(c, &pr, p, &r);
        CHECK(rc == 0, "%s case %d: %s", label, it, terse_last_error());
        if (rc) continue;
        terse_compress_stats st;
        terse_result_get_stats(r, &st);
        const terse_vocab *bv = count ? count : scoring;
        int64_t tol = 1;
        for (int i = 0; i < nc; i++) {
            int64_t m = max_unit(bv, cs[i], p.unit);
            if (m > tol) tol = m;
        }
        if (p.unit != TERSE_UNIT_TOKEN) tol += 1;
        size_t olen;
        const char *o = terse_result_text(r, &olen);
        CHECK(terse_token_count(bv, o, olen) == st.compressed_tokens || olen == 0, "%s case %d: reported count", label, it);
        total++;
        if (st.over_budget) {
            over++;
            CHECK(*terse_result_warning(r) != 0, "%s case %d: over budget without warning", label, it);
        } else if (st.target_tokens >= st.origin_tokens) {
            CHECK(st.compressed_tokens == st.origin_tokens, "%s case %d: target above prompt changed it", label, it);
        } else {
            int64_t gap = st.target_tokens - st.compressed_tokens;
            CHECK(gap >= 0, "%s case %d unit %d: %lld tokens above target %lld", label, it, p.unit,
                  (long long)st.compressed_tokens, (long long)st.target_tokens);
            CHECK(gap <= tol, "%s case %d unit %d: %lld tokens below target %lld (tolerance %lld)", label, it,
                  p.unit, (long long)gap, (long long)st.target_tokens, (long long)tol);
            if (gap > worst_gap[p.unit]) worst_gap[p.unit] = gap;
            exact += gap == 0;
        }
        if (p.keep_digits)
            for (int i = 0; i < nc; i++)
                if (strstr(cs[i], "42")) CHECK(strstr(o, "42") != NULL, "%s case %d: digits dropped", label, it);
        if (p.n_force_tokens)
            for (int i = 0; i < nc; i++)
                if (strstr(cs[i], "apples")) CHECK(strstr(o, "apples") != NULL, "%s case %d: force token dropped", label, it);
        terse_result_free(r);
    }
    printf("%s: %d cases, %d exactly on target, %d over budget by protected text; largest gap token %lld, "
           "phrase %lld, sentence %lld\n", label, total, exact, over, (long long)worst_gap[0],
           (long long)worst_gap[1], (long long)worst_gap[2]);
}

int main(void) {
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 128, .n_embd = 32, .n_layer = 1,
                              .n_head = 2, .n_ff = 64, .type = TERSE_TYPE_F32, .seed = 11, .init_std = 0.5f};
    terse_model *m = test_random_model("compress_budget.gguf", &rp);
    terse_ctx *c = test_ctx(m, 0);
    if (c) {
        property(c, terse_model_vocab(m), NULL, 150, "model tokens");
        char vp[512];
        snprintf(vp, sizeof vp, "%s/vocab/ggml-vocab-gpt-2.gguf", test_shared_dir());
        terse_vocab *gv;
        if (terse_vocab_load(vp, &gv) == TERSE_OK) {
            property(c, terse_model_vocab(m), gv, 100, "gpt-2 counting");
            terse_vocab_free(gv);
        } else {
            printf("%s missing: counting-vocabulary cases skipped\n", vp);
        }
    }
    terse_ctx_free(c);
    terse_model_free(m);
    return test_summary("compress_budget");
}
