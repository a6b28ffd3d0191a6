/* harness.h - the whole test "framework": CHECK macros that count, and a summary line.
 * Each test binary ends with `return test_summary("name");`, which prints
 * "name: N passed, N failed" and returns non-zero when anything failed. */
#ifndef TERSE_HARNESS_H
#define TERSE_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            t_pass++;                                                           \
        } else {                                                                \
            t_fail++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        int rc_ = (int)(expr);                                                  \
        CHECK(rc_ == 0, "%s -> %d: %s", #expr, rc_, terse_last_error());        \
    } while (0)

/* Where ../shared is (the fixtures); tests that need it skip cleanly without it. */
static inline const char *test_shared_dir(void) {
    const char *s = getenv("TERSE_SHARED");
    return s ? s : "../shared";
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}
#endif
