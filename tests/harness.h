/* harness.h - the whole test "framework": CHECK macros that count, and a summary line.
 * Each test binary ends with `return test_summary("name");`, which prints
 * "name: N passed, N failed" and returns non-zero when anything failed. */
#ifndef TERSE_HARNESS_H
#define TERSE_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* A whole file in a malloc'ed, NUL-terminated buffer (NULL if unreadable); *len its size. */
static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) &&
        fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    }
    return b;
}

/* A scratch file name in /tmp, unique per process (one static buffer: copy to keep two). */
static inline const char *test_tmp_path(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/terse_%d_%s", (int)getpid(), name);
    return buf;
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}
#endif
