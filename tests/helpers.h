/* helpers.h - pieces several tests share, on top of harness.h and the public API: a seeded
 * xorshift generator, the "spans tile the input" check, and a tiny random model loaded from a
 * scratch file with a context on it. Everything is static inline: include it where needed. */
#ifndef TERSE_TEST_HELPERS_H
#define TERSE_TEST_HELPERS_H
#include <stdint.h>
#include <unistd.h>

#include "harness.h"
#include "terse.h"

/* One xorshift64 step of *state (Marsaglia's 13, 7, 17); each test keeps its own seed. */
static inline uint64_t test_xorshift(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Whether spans sp[0..n) cover [0, len) in order, without gaps or overlaps. */
static inline int test_spans_tile(const terse_span *sp, int64_t n, size_t len) {
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (sp[i].begin != at || sp[i].end < sp[i].begin) return 0;
        at = sp[i].end;
    }
    return at == (int64_t)len;
}

/* terse_write_random_model(rp) into the scratch file test_tmp_path(name), loaded, the file
 * removed: the model, or NULL after a failed CHECK. */
static inline terse_model *test_random_model(const char *name, const terse_random_params *rp) {
    char path[256];
    snprintf(path, sizeof path, "%s", test_tmp_path(name));
    terse_model *m = NULL;
    CHECK_OK(terse_write_random_model(path, rp));
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    unlink(path);
    return m;
}

/* A context on m with one thread and n_ctx positions (0: the model's), or NULL after a
 * failed CHECK (NULL too for a NULL m, without a check). */
static inline terse_ctx *test_ctx(terse_model *m, int32_t n_ctx) {
    if (!m) return NULL;
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1;
    if (n_ctx) cp.n_ctx = n_ctx;
    terse_ctx *c = NULL;
    CHECK_OK(terse_ctx_new(m, cp, &c));
    return c;
}
#endif
