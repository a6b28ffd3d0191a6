/* test_nn_threads.c - a context's n_threads bounds every thread the runtime uses, OpenBLAS's
 * included (issue 9, defect 10: `-t 1` ran two threads, OpenBLAS starting its own).
 * Threads are counted in /proc/self/task right after forward passes (OpenBLAS's workers and
 * terse's pool live as long as the library and the context); with one thread there must be
 * exactly one, whatever OpenBLAS started when it loaded. The outputs must not depend on the
 * thread count. Linux only (skipped without /proc/self/task). */
#include <dirent.h>

#include "helpers.h"
#include "terse.h"

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* score ids with a context of n threads; returns the task count seen after the passes */
static int score_with(const terse_model *m, int n_threads, const int32_t *ids, int32_t n,
                      float *out) {
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = n_threads;
    terse_ctx *c = NULL;
    CHECK_OK(terse_ctx_new(m, cp, &c));
    if (!c) return -1;
    CHECK_OK(terse_score(c, ids, n, out));
    terse_batch b = {.n = 1, .ids = ids};
    CHECK_OK(terse_eval(c, &b)); /* and one decoding step (sgemv) */
    int tasks = count_threads();
    terse_ctx_free(c);
    return tasks;
}

int main(void) {
    if (count_threads() < 1) {
        printf("no /proc/self/task: skipped\n");
        return test_summary("nn_threads");
    }
    int at_load = count_threads();
    /* big enough products that OpenBLAS splits them over threads when allowed */
    terse_random_params rp = {.arch = "llama", .n_vocab = 2048, .n_ctx = 256, .n_embd = 256,
                              .n_layer = 2, .n_head = 4, .n_ff = 512, .type = TERSE_TYPE_F32,
                              .seed = 3};
    terse_model *m = test_random_model("threads.gguf", &rp);
    if (!m) return test_summary("nn_threads");
    enum { N = 200 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 11) % 2048;
    static float s1[N], s4[N], s1b[N];

    int t4 = score_with(m, 4, ids, N, s4);
    int t1 = score_with(m, 1, ids, N, s1);
    CHECK(t1 == 1, "%d threads in the process after passes with n_threads 1 (want 1)", t1);
    CHECK(t4 >= 4, "%d threads after passes with n_threads 4 (terse's pool alone has 4)", t4);
    /* and back up, then down again: OpenBLAS's workers come back and go again */
    int t1b = score_with(m, 1, ids, N, s1b);
    CHECK(t1b == 1, "%d threads after going back to n_threads 1", t1b);
    float md = 0;
    for (int i = 0; i < N; i++) {
        float d = fabsf(s1[i] - s4[i]);
        if (d > md) md = d;
        CHECK(s1[i] == s1b[i], "token %d: %g then %g with one thread", i, s1[i], s1b[i]);
    }
    CHECK(md < 1e-3f, "one thread vs four: max |diff| %g nats", md);
    printf("  threads in the process: %d at load, %d with n_threads 4, %d with n_threads 1; "
           "max |diff| 1 vs 4 threads %.2e nats\n", at_load, t4, t1, md);
    terse_model_free(m);
    return test_summary("nn_threads");
}
