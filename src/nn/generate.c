/* generate.c - text generation on top of terse_eval: greedy (temperature 0) or sampled with
 * temperature and nucleus (top-p), one token per step, reusing the KV cache.
 *
 * The RNG is xorshift64* seeded through splitmix64, so a seed gives the same tokens on every
 * platform. Sampling: p_i = softmax(logit_i / temperature); with top_p < 1 the smallest set of
 * most likely tokens whose mass reaches top_p is kept and renormalised; then one draw.
 * Not here: beam search, repetition penalties, grammar constraints.
 */
#include <math.h>
#include <stdlib.h>

#include "nn/nn.h"
#include "nn/simd.h"

terse_sample_params terse_sample_default_params(void) {
    terse_sample_params p = {.temperature = 0.0f, .top_p = 1.0f, .seed = 42, .stop_at_eos = 1};
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* RNG                                                                                       */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t xorshift64s(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, 1) with 24 bits */
static float rand_unit(uint64_t *s) { return (float)(xorshift64s(s) >> 40) / 16777216.0f; }

/* ---------------------------------------------------------------------------------------- */
/* Choosing the next token from a logit row (V)                                              */

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static _Thread_local const float *sort_p;
static int by_prob_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_p[x] != sort_p[y]) return sort_p[x] > sort_p[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* logits (V) become probabilities; idx: (V) scratch */
static int32_t sample(float *logits, int32_t V, const terse_sample_params *p, uint64_t *rng,
                      int32_t *idx) {
    if (p->temperature <= 0.0f) return argmax(logits, V);
    simd_scale(logits, 1.0f / p->temperature, V);
    float mx = simd_max(logits, V);
    float s = simd_exp_inplace(logits, V, mx);
    simd_scale(logits, 1.0f / s, V);
    float u = rand_unit(rng);
    if (p->top_p < 1.0f) {
        /* the smallest most-likely set reaching top_p, ids ordered by probability. Only ids
         * with p >= floor_p need sorting once their mass reaches top_p: lower it until so. */
        float pmax = simd_max(logits, V), floor_p = pmax * 1e-3f;
        int32_t n = 0;
        for (;;) {
            double mass = 0;
            n = 0;
            for (int32_t v = 0; v < V; v++)
                if (logits[v] >= floor_p) idx[n++] = v, mass += logits[v];
            if (mass >= p->top_p || floor_p == 0.0f) break;
            floor_p = floor_p > 1e-30f ? floor_p * 1e-3f : 0.0f;
        }
        sort_p = logits;
        qsort(idx, (size_t)n, sizeof *idx, by_prob_desc);
        double mass = 0;
        int32_t keep = 0;
        while (keep < n && (keep == 0 || mass < p->top_p)) mass += logits[idx[keep++]];
        double t = u * mass, acc = 0;
        for (int32_t j = 0; j < keep; j++) {
            acc += logits[idx[j]];
            if (t < acc) return idx[j];
        }
        return idx[keep - 1];
    }
    double acc = 0;
    int32_t last = 0;
    for (int32_t v = 0; v < V; v++) {
        if (logits[v] > 0) last = v;
        acc += logits[v];
        if (u < acc) return v;
    }
    return last; /* rounding left u above the total */
}

/* ---------------------------------------------------------------------------------------- */
/* The loop                                                                                  */

int32_t terse_generate(terse_ctx *c, const int32_t *prompt, int32_t n_prompt,
                       terse_sample_params p, int32_t *out, int32_t n_max) {
    if (!c || (!prompt && n_prompt) || (n_max > 0 && !out))
        return terse_err(TERSE_ERR_INVALID, "terse_generate: NULL argument");
    if (n_prompt < 0 || (n_prompt == 0 && c->n_out < 1) || n_max < 0)
        return terse_err(TERSE_ERR_INVALID, "terse_generate: n_prompt %d%s, n_max %d", n_prompt,
                         n_prompt == 0 ? " without a preceding terse_eval" : "", n_max);
    if (!(p.temperature >= 0.0f) || !(p.top_p > 0.0f && p.top_p <= 1.0f))
        return terse_err(TERSE_ERR_INVALID, "terse_generate: temperature %g (>= 0), top_p %g "
                         "(0, 1]", (double)p.temperature, (double)p.top_p);
    const int32_t V = c->m->n_vocab;
    const int32_t eos = c->m->vocab ? terse_vocab_eos(c->m->vocab) : -1;
    terse_batch b = {.n = n_prompt, .ids = prompt};
    int rc = n_prompt > 0 ? terse_eval(c, &b) : TERSE_OK; /* 0: go on from the last eval */
    if (rc) return rc;
    int32_t *idx = NULL;
    if (p.temperature > 0.0f && p.top_p < 1.0f) {
        idx = terse_malloc((size_t)V * sizeof *idx, "sampling ids");
        if (!idx) return TERSE_ERR_NOMEM;
    }
    uint64_t seed = p.seed, rng = splitmix64(&seed);
    if (rng == 0) rng = 1;
    int32_t n = 0;
    while (n < n_max) {
        if ((rc = terse_eval_logits(c, c->n_out - 1, c->vrow, 0))) break;
        int32_t t = sample(c->vrow, V, &p, &rng, idx);
        if (p.stop_at_eos && t == eos) break;
        out[n++] = t;
        if (c->kv_len >= c->n_ctx) break; /* cache full: the last token stays unevaluated */
        terse_batch one = {.n = 1, .ids = &t};
        if ((rc = terse_eval(c, &one))) break;
    }
    free(idx);
    return rc ? rc : n;
}
