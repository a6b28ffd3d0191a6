/* test_eval_baselines.c - the model-free baselines: prompt assembly like terse_compress, the
 * budget (rate x the prompt's tokens, within one unit), units kept whole, determinism per
 * seed, tf-idf preferring rare words, and the controls. A random-weight model's vocabulary
 * (one token per byte, no merges) makes token counts equal byte counts. */
#include "terse.h"

#include "harness.h"

static const char *CTX =
    "The old lighthouse stood on the cliff. Its keeper was a quiet man named Tobias! "
    "Every night he climbed the stairs? The lamp burned until dawn.\nShips passed safely.";

static int count(const terse_vocab *v, const char *s) { return (int)terse_token_count(v, s, strlen(s)); }

int main(void) {
    const char *path = "build/tests/baselines_vocab.gguf";
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 256, .n_embd = 32,
                              .n_layer = 1, .n_head = 2, .n_ff = 64, .type = TERSE_TYPE_F32,
                              .seed = 7};
    CHECK_OK(terse_write_random_model(path, &rp));
    terse_vocab *v = NULL;
    CHECK_OK(terse_vocab_load(path, &v));
    if (!v) return test_summary("eval_baselines");
    CHECK(count(v, CTX) == (int)strlen(CTX), "byte vocabulary: %d tokens", count(v, CTX));

    const char *ctxs[] = {CTX};
    terse_prompt pr = {.instruction = "Read this.", .contexts = ctxs, .n_contexts = 1,
                       .question = "Who kept it?"};
    char *out = NULL;
    size_t len = 0;
    /* controls */
    CHECK_OK(terse_baseline_compress(v, &pr, TERSE_BASELINE_FULL, 0.3, 1, &out, &len));
    char want[1024];
    snprintf(want, sizeof want, "Read this.\n\n%s\n\nWho kept it?", CTX);
    CHECK(out && !strcmp(out, want) && len == strlen(want), "full prompt assembled: %s", out);
    free(out);
    CHECK_OK(terse_baseline_compress(v, &pr, TERSE_BASELINE_NO_CONTEXT, 0.5, 1, &out, NULL));
    CHECK(out && !strcmp(out, "Read this.\n\nWho kept it?"), "no context: %s", out);
    free(out);

    /* budgets: within one unit under the target */
    int total = (int)strlen(want);
    const terse_baseline kinds[] = {TERSE_BASELINE_RANDOM_TOKEN, TERSE_BASELINE_RANDOM_PHRASE,
                                    TERSE_BASELINE_RANDOM_SENTENCE, TERSE_BASELINE_TFIDF};
    const int max_unit[] = {1, 12, 45, 12};
    for (int k = 0; k < 4; k++) {
        for (double rate = 0.3; rate < 0.95; rate += 0.3) {
            CHECK_OK(terse_baseline_compress(v, &pr, kinds[k], rate, 3, &out, NULL));
            int n = out ? count(v, out) : -1, target = (int)(rate * total + 0.5);
            CHECK(n <= target && n >= target - max_unit[k] - 2, "baseline %d rate %.1f: %d tokens, "
                  "target %d", k, rate, n, target);
            CHECK(out && !strncmp(out, "Read this.\n\n", 12), "instruction kept: %s", out);
            CHECK(out && strstr(out, "Who kept it?"), "question kept");
            free(out);
        }
    }
    /* same seed, same output; another seed, another output */
    char *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(terse_baseline_compress(v, &pr, TERSE_BASELINE_RANDOM_TOKEN, 0.5, 11, &a, NULL));
    CHECK_OK(terse_baseline_compress(v, &pr, TERSE_BASELINE_RANDOM_TOKEN, 0.5, 11, &b, NULL));
    CHECK_OK(terse_baseline_compress(v, &pr, TERSE_BASELINE_RANDOM_TOKEN, 0.5, 12, &c, NULL));
    CHECK(a && b && c && !strcmp(a, b) && strcmp(a, c), "seeded: %s | %s", a, c);
    free(a), free(b), free(c);

    /* sentences are kept whole: every kept piece is a sentence of the context */
    const char *sents[] = {"The old lighthouse stood on the cliff.", " Its keeper was a quiet man named Tobias!",
                           " Every night he climbed the stairs?", " The lamp burned until dawn.\n",
                           "Ships passed safely."};
    terse_prompt only = {.contexts = ctxs, .n_contexts = 1};
    CHECK_OK(terse_baseline_compress(v, &only, TERSE_BASELINE_RANDOM_SENTENCE, 0.5, 5, &out, NULL));
    if (out) {
        const char *p = out;
        int pieces = 0;
        while (*p) {
            int hit = 0;
            for (int s = 0; s < 5 && !hit; s++)
                if (!strncmp(p, sents[s], strlen(sents[s]))) p += strlen(sents[s]), hit = 1, pieces++;
            if (!hit) break;
        }
        CHECK(*p == 0 && pieces >= 1, "sentence units: \"%s\" (stopped at \"%s\")", out, p);
    }
    free(out);

    /* tf-idf: "the" is in every sentence (low idf); the rare names survive a tight budget */
    const char *tf_ctx[] = {"the cat and the dog. the zebra and the Quixote. the end and the "
                            "start. the moon and the sun."};
    terse_prompt tp = {.contexts = tf_ctx, .n_contexts = 1};
    CHECK_OK(terse_baseline_compress(v, &tp, TERSE_BASELINE_TFIDF, 0.35, 1, &out, NULL));
    CHECK(out && strstr(out, "Quixote") && !strstr(out, "the "), "tf-idf kept: \"%s\"", out);
    free(out);

    /* bad input */
    CHECK(terse_baseline_compress(v, &pr, TERSE_BASELINE_RANDOM_TOKEN, 0.0, 1, &out, NULL) < 0,
          "rate 0 refused");
    CHECK(terse_baseline_compress(v, &pr, TERSE_BASELINE_RANDOM_TOKEN, 1.5, 1, &out, NULL) < 0,
          "rate 1.5 refused");
    CHECK(terse_baseline_compress(NULL, &pr, TERSE_BASELINE_FULL, 0.5, 1, &out, NULL) < 0,
          "NULL vocab refused");
    terse_vocab_free(v);
    remove(path);
    return test_summary("eval_baselines");
}
