/* lingua_lm.c - lingua_lm over a terse_ctx: the KV cache of the context is the lm's cache,
 * forward passes are timed into the job (j->t_model) and counted for its progress, and
 * eviction closes a gap in every layer's cache the way HF slices past_key_values (entries
 * keep the positions they were computed at). Nothing else. */
#include <stdlib.h>
#include <string.h>

#include "compress/compress.h"
#include "compress/lingua_core.h"

static int32_t ad_kv_len(void *u) { return terse_kv_len(((lingua_ctx_adapter *)u)->c); }

static int ad_kv_truncate(void *u, int32_t n) {
    return terse_kv_truncate(((lingua_ctx_adapter *)u)->c, n);
}

/* Close the gap [s, s+e) of the cache; entries keep their rotary positions. Bounds past the
 * end clamp, like torch.cat([k[..., :s, :], k[..., s+e:, :]]). */
static int ad_kv_evict(void *u, int32_t s, int32_t e) {
    terse_ctx *c = ((lingua_ctx_adapter *)u)->c;
    if (s < 0 || e < 0)
        return terse_err(TERSE_ERR_INVALID, "lingua: evict [%d, %d)", s, s + e);
    int32_t n = terse_kv_len(c);
    if (s > n) s = n;
    if ((int64_t)s + e > n) e = n - s;
    return terse_kv_remove(c, s, s + e);
}

static int ad_forward(void *u, const int32_t *ids, int32_t n, const int32_t *targets,
                      int32_t nt, float *loss) {
    lingua_ctx_adapter *a = u;
    double t0 = terse_now();
    terse_batch b = {.n = n, .ids = ids};
    int rc = terse_eval(a->c, &b);
    if (!rc && nt > 0) rc = terse_eval_logprobs(a->c, targets, nt, loss);
    if (!rc)
        for (int32_t i = 0; i < nt; i++) loss[i] = -loss[i];
    if (a->j) {
        a->j->t_model += terse_now() - t0;
        cmp_progress(a->j, n);
    }
    return rc;
}

void lingua_lm_ctx(lingua_lm *lm, lingua_ctx_adapter *a, cmp_job *j, terse_ctx *c) {
    a->j = j;
    a->c = c;
    memset(lm, 0, sizeof *lm);
    lm->u = a;
    lm->n_ctx = terse_ctx_n_ctx(c);
    lm->kv_len = ad_kv_len;
    lm->kv_truncate = ad_kv_truncate;
    lm->kv_evict = ad_kv_evict;
    lm->forward = ad_forward;
}

