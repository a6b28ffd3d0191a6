/* longllmlingua.c - LongLLMLingua (Jiang et al., ACL'24): LLMLingua made question-aware:
 * coarse ranking by the question's perplexity after each document (with the restrictive
 * statement), contrastive token scores (surprisal without the question minus with it),
 * dynamic per-document rates, reordering; the stages are in lingua_method.c / lingua_core.c.
 * Also here: terse_compress_recover(), upstream's recover() on byte spans. */
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "compress/lingua_core.h"
#include "compress/lingua_method.h"

int longllmlingua_run(cmp_job *j) { return lingua_method_run(j, 1); }

static int64_t recover_tok(void *u, const char *s, size_t n, int32_t *ids, int64_t cap) {
    return terse_tokenize((const terse_vocab *)u, s, n, 0, ids, NULL, cap);
}

int terse_compress_recover(const terse_vocab *v, const char *original, size_t original_len,
                           const char *compressed, size_t compressed_len, const char *response,
                           size_t response_len, char **out, size_t *out_len) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!v || !out || (!original && original_len) || (!compressed && compressed_len) ||
        (!response && response_len))
        return terse_err(TERSE_ERR_INVALID, "terse_compress_recover: NULL argument");
    if (!original) original = "";
    if (!compressed) compressed = "";
    if (!response) response = "";
    int64_t cap = (int64_t)original_len + 8;
    int32_t *ids = terse_malloc((size_t)cap * sizeof *ids, "recover: ids");
    terse_span *sp = terse_malloc((size_t)cap * sizeof *sp, "recover: spans");
    int rc = (!ids || !sp) ? TERSE_ERR_NOMEM : TERSE_OK;
    int64_t n = rc ? 0 : terse_tokenize(v, original, original_len, 0, ids, sp, cap);
    if (!rc && n > cap) {
        free(ids);
        free(sp);
        cap = n;
        ids = terse_malloc((size_t)cap * sizeof *ids, "recover: ids");
        sp = terse_malloc((size_t)cap * sizeof *sp, "recover: spans");
        rc = (!ids || !sp) ? TERSE_ERR_NOMEM : TERSE_OK;
        if (!rc) n = terse_tokenize(v, original, original_len, 0, ids, sp, cap);
    }
    if (!rc && n < 0) rc = (int)n;
    if (!rc && n > INT32_MAX)
        rc = terse_err(TERSE_ERR_RANGE, "terse_compress_recover: %lld tokens", (long long)n);
    if (!rc)
        rc = lingua_recover(original, original_len, ids, sp, (int32_t)n, compressed,
                            compressed_len, response, response_len, recover_tok, (void *)v, out,
                            out_len);
    free(ids);
    free(sp);
    return rc;
}
