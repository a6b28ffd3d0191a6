/* stem.c - the Porter stemmer of ROUGE and METEOR: libstemmer's "porter" (Snowball's
 * implementation of Porter's 1980 algorithm), one handle per thread, opened on first use
 * (libstemmer handles are not thread-safe). The only file that needs -lstemmer.
 */
#include <libstemmer.h>
#include <string.h>

#include "eval/eval.h"

static _Thread_local struct sb_stemmer *porter;

int ev_porter_stem(const char *word, size_t n, char *out, size_t cap) {
    if (!porter) {
        porter = sb_stemmer_new("porter", NULL);
        if (!porter) return terse_err(TERSE_ERR_NOMEM, "libstemmer: cannot open \"porter\"");
    }
    const sb_symbol *s = sb_stemmer_stem(porter, (const sb_symbol *)word, (int)n);
    if (!s) return terse_err(TERSE_ERR_NOMEM, "libstemmer: out of memory");
    size_t k = (size_t)sb_stemmer_length(porter);
    if (k + 1 > cap) return terse_err(TERSE_ERR_INVALID, "stem of %zu bytes exceeds %zu", k, cap);
    memcpy(out, s, k);
    out[k] = 0;
    return (int)k;
}
