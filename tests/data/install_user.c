/* install_user.c - a program as a terse user writes it, built by tests/cli_install.sh against
 * an installed terse through pkg-config: load the installed default model, tokenize a prompt,
 * score it, compress it. Prints "ok <tokens> <mean surprisal> <compressed bytes>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <terse.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: install_user MODEL.gguf\n");
        return 2;
    }
    const char *text = "The quick brown fox jumps over the lazy dog. It was a sunny day.";
    terse_model *m;
    if (terse_model_load(argv[1], terse_model_default_params(), &m) != TERSE_OK) {
        fprintf(stderr, "load: %s\n", terse_last_error());
        return 1;
    }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1;
    terse_ctx *c;
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) return 1;
    int32_t ids[128];
    float s[128];
    int64_t n = terse_tokenize(terse_model_vocab(m), text, strlen(text), 1, ids, NULL, 128);
    if (n <= 1 || n > 128 || terse_score(c, ids, (int32_t)n, s) != TERSE_OK) {
        fprintf(stderr, "score: %s\n", terse_last_error());
        return 1;
    }
    double sum = 0;
    for (int64_t i = 1; i < n; i++) sum += s[i];
    terse_prompt p = {.contexts = &text, .n_contexts = 1};
    terse_compress_params cpp = terse_compress_default_params();
    terse_result *r;
    if (terse_compress(c, &p, cpp, &r) != TERSE_OK) {
        fprintf(stderr, "compress: %s\n", terse_last_error());
        return 1;
    }
    size_t len;
    terse_result_text(r, &len);
    printf("ok %lld %.3f %zu (terse %s)\n", (long long)n, sum / (double)(n - 1), len, TERSE_VERSION);
    terse_result_free(r);
    terse_ctx_free(c);
    terse_model_free(m);
    return 0;
}
