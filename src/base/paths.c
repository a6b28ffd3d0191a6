/* paths.c - where terse finds its default model without being told.
 * Order: $TERSE_MODEL; models/terse-default.gguf beside the executable's folder (build/terse ->
 * build/../models, bin/terse -> bin/../models, and the executable's own folder); ./models;
 * the installed copy under $PREFIX/share/terse. The first file that exists wins. */
#include "base.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODEL_NAME "terse-default.gguf"

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int put(char *buf, size_t cap, const char *p) {
    size_t n = strlen(p);
    if (n + 1 > cap) return terse_err(TERSE_ERR_RANGE, "default model path needs %zu bytes", n + 1);
    memcpy(buf, p, n + 1);
    return (int)n;
}

int terse_default_model_path(char *buf, size_t cap) {
    const char *env = getenv("TERSE_MODEL");
    if (env && *env) {
        if (!is_file(env))
            return terse_err(TERSE_ERR_IO, "TERSE_MODEL='%.200s' is not a readable file", env);
        return put(buf, cap, env);
    }
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(cand, sizeof cand, "%s/../models/" DEFAULT_MODEL_NAME, exe);
            if (is_file(cand)) return put(buf, cap, cand);
            snprintf(cand, sizeof cand, "%s/../../models/" DEFAULT_MODEL_NAME, exe);
            if (is_file(cand)) return put(buf, cap, cand);
            snprintf(cand, sizeof cand, "%s/" DEFAULT_MODEL_NAME, exe);
            if (is_file(cand)) return put(buf, cap, cand);
            snprintf(cand, sizeof cand, "%s/../share/terse/" DEFAULT_MODEL_NAME, exe);
            if (is_file(cand)) return put(buf, cap, cand);
        }
    }
    if (is_file("models/" DEFAULT_MODEL_NAME)) return put(buf, cap, "models/" DEFAULT_MODEL_NAME);
    return terse_err(TERSE_ERR_IO, "no default model found: set TERSE_MODEL or pass a model "
                     "(looked for models/" DEFAULT_MODEL_NAME " beside the executable and here)");
}
