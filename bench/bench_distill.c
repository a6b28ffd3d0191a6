/* bench_distill.c - wall time of `terse distill` on the reference case: the default
 * model, a ~500-token prompt (docs/soft/prompts/gsm8k.txt, 522 tokens: five GSM8K
 * demonstrations) distilled into 8 soft tokens with the default settings, and the KL reached.
 * The goal of issue 10 is under 2 minutes on 2 cores.
 *
 * Prints: prompt tokens, steps, wall seconds, student tokens per second (forward + backward,
 * over the whole wall time), KL before and after (over the training
 * continuations), peak memory (ru_maxrss).
 *
 * Usage: bench_distill [--model M] [--prompt FILE] [--tokens N] [--steps S] [--threads n]
 * Skips (exit 0) when the default model or the prompt file is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "terse.h"

static void progress(void *user, int32_t step, int32_t steps, double loss, double eta) {
    if (step == 1 || step % 25 == 0 || step == steps)
        fprintf(stderr, "  step %d/%d loss %.4f eta %.0fs\n", step, steps, loss, eta);
}

int main(int argc, char **argv) {
    const char *model = "models/terse-default.gguf", *prompt = "docs/soft/prompts/gsm8k.txt";
    terse_distill_params p = terse_distill_default_params();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--prompt")) prompt = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens")) p.n_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) p.steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) p.n_threads = atoi(argv[i + 1]);
    }
    FILE *f = fopen(prompt, "rb");
    terse_model *m;
    if (!f || terse_model_load(model, terse_model_default_params(), &m) != TERSE_OK) {
        printf("bench_distill: %s or %s missing: skipped\n", model, prompt);
        if (f) fclose(f);
        return 0;
    }
    char *text = malloc(1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = 0;
    p.progress = progress;
    terse_soft *s;
    if (terse_distill(m, text, len, &p, &s) != TERSE_OK) {
        fprintf(stderr, "bench_distill: %s\n", terse_last_error());
        return 1;
    }
    terse_soft_info in;
    terse_soft_get_info(s, &in);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t T0 = 1 + in.n_tokens + p.cont_len - 1;
    printf("bench_distill: %s, %d prompt tokens -> %d soft tokens\n", prompt, in.prompt_tokens, in.n_tokens);
    printf("  steps %d x batch %d (sequences of %lld tokens), %d sampled continuations of %d\n",
           in.steps, p.batch, (long long)T0, p.n_samples, p.cont_len);
    printf("  wall %.1f s, %.1f student tokens/s (forward + backward, sampling included)\n", in.seconds,
           (double)in.steps * p.batch * T0 / in.seconds);
    printf("  KL(prompt || soft) over the continuations: %.4f -> %.4f nats/token\n", in.kl_initial,
           in.kl_final);
    printf("  peak memory %.0f MiB\n", ru.ru_maxrss / 1024.0);
    terse_soft_free(s);
    terse_model_free(m);
    free(text);
    return 0;
}
