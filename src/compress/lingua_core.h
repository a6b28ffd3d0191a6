/* lingua_core.h - the model-independent machinery of LLMLingua and LongLLMLingua: threshold
 * selection, the window plan, the two token-level engines (compat: microsoft/LLMLingua 0.2.2's
 * iterative_compress_prompt with its quirks; default: per-window quotas that meet the budget
 * exactly), the coarse budget walk, reordering, dynamic ratios and response recovery.
 * Internal header (not API): lingua_core.c (everything but the adapter), lingua_lm.c (the
 * terse_ctx adapter); used by lingua_method.c, llmlingua.c, longllmlingua.c.
 *
 * The engines talk to a language model only through lingua_lm (a cache of evaluated tokens
 * and a forward call that returns surprisals), so tests can drive them with a fake model whose
 * losses are known by hand, and the methods drive them with a terse_ctx (lingua_lm_ctx).
 *
 * Notation: I = window size (iterative_size), "loss" = surprisal in nats.
 */
#ifndef TERSE_LINGUA_CORE_H
#define TERSE_LINGUA_CORE_H

#include "base/base.h"

/* ---------------------------------------------------------------------------------------- */
/* The model seen by the engines                                                             */

typedef struct lingua_lm {
    void *u;
    int32_t n_ctx;  /* most tokens the cache holds (compat: max_position_embeddings) */
    int32_t (*kv_len)(void *u);
    int (*kv_truncate)(void *u, int32_t n);
    /* Remove cache entries [s, s+e) and close the gap (entries keep the positions they were
     * computed at, as HF does when it slices past_key_values); bounds past the end clamp. */
    int (*kv_evict)(void *u, int32_t s, int32_t e);
    /* Append ids[0..n) to the cache; loss[i] = -log p(targets[i] | cache, ids[0..i]) for
     * i < n_targets (n_targets <= n). */
    int (*forward)(void *u, const int32_t *ids, int32_t n, const int32_t *targets,
                   int32_t n_targets, float *loss);
    double fwd_seconds; /* time spent inside forward (for the overhead share) */
    int64_t fwd_tokens;
} lingua_lm;

/* A lingua_lm over a terse_ctx (its cache is the lm's cache). Forward time is added to
 * j->t_model and the tokens to the progress count when j != NULL. a holds the adapter's
 * state and must outlive lm. */
struct cmp_job;
typedef struct {
    struct cmp_job *j;
    terse_ctx *c;
} lingua_ctx_adapter;
void lingua_lm_ctx(lingua_lm *lm, lingua_ctx_adapter *a, struct cmp_job *j, terse_ctx *c);

/* ---------------------------------------------------------------------------------------- */
/* Small pure pieces                                                                         */

/* Upstream's get_estimate_threshold_base_distribution: -inf when ratio == 1.0; otherwise
 * drop values equal to 10000 (and NaN), k = max(0, min(len-1, (int)(len*ratio) - 1)) and
 * return the k-th largest value (0-based), by quickselect. Empty input: -inf (upstream
 * raises). scratch holds n floats. */
float lingua_threshold_topk(const float *v, int64_t n, double ratio, float *scratch);

/* One piece of a window: n_tokens at keep-rate ratio. */
typedef struct {
    int32_t n;
    double ratio;
} lingua_piece;

typedef struct {
    lingua_piece *piece;   /* all pieces, window after window */
    int32_t *first;        /* (n_windows + 1) window w = piece[first[w] .. first[w+1]) */
    int32_t n_windows, n_pieces, cap_pieces, cap_windows;
} lingua_plan;

/* Upstream's get_dynamic_compression_ratio: len[i] (already "+2"), per-context offsets dyn
 * (NULL = 0), tau = target / (sum len + 1), running fill starting at 1. */
int  lingua_plan_build(lingua_plan *p, const int64_t *len, const double *dyn, int32_t n_ctx,
                       double target, int32_t I);
void lingua_plan_free(lingua_plan *p);

/* Upstream's dynamic ratio ramp: out[j] for rank position j of n = (n-1-2j) * d / (n-1). */
void lingua_dynamic_ramp(int32_t n, double d, double *out);

/* Reorder selected context indices (in rank order) in place: 0 original (ascending index),
 * 1 sort (rank order, unchanged), 2 two_stage (even positions, then odd reversed). */
enum { LINGUA_ORDER_ORIGINAL = 0, LINGUA_ORDER_SORT = 1, LINGUA_ORDER_TWO_STAGE = 2 };
void lingua_reorder(int32_t *idx, int32_t n, int order);

/* The coarse budget walk of control_context_budget. rank: context indices in priority
 * order (n_rank); len: token length of each context; forced (n_forced) come first.
 * Walks rank subtracting lengths from budget, adds each index not yet used, stops after the
 * first that makes the budget negative (it is kept). Writes the used list (rank order) to
 * used (capacity n_ctx), returns its length. */
int32_t lingua_budget_walk(const int32_t *rank, int32_t n_rank, const int64_t *len,
                           int32_t n_ctx, double budget, const int32_t *forced,
                           int32_t n_forced, int32_t *used);

/* Indices 0..n-1 sorted by score (descending when desc, else ascending), ties by index: the
 * stable order of Python's sorted(). NaN sorts last. */
void lingua_argsort(const double *score, int32_t n, int desc, int32_t *idx);

/* ---------------------------------------------------------------------------------------- */
/* Token level, compat engine (iterative_compress_prompt)                                    */

typedef struct {
    const int32_t *ids;      /* (n) the joined prompt, prefix first, no special tokens */
    int32_t n;
    int32_t start;           /* prefix tokens (question conditioning), 0 = none */
    const lingua_plan *plan; /* windows of (n, ratio) pieces */
    int32_t I;               /* iterative_size */
    int32_t cache_bos_num;   /* 10 */
    lingua_lm *self_lm;      /* condition_compare: the stream without the prefix, else NULL */
    float *score;            /* (n) out, optional: the loss (or contrastive difference) each
                                token was compared with when its window was decided; NAN for
                                tokens never decided (for display only) */
} lingua_compat_in;

/* Runs the loop; keep[t] = 1 for every token t in [0, n) of the returned sequence, which is
 * upstream's compressed_input_ids[:, start:]: the survivors minus the first `start` of them
 * (normally the prefix). Returns TERSE_OK or a negative status. */
int lingua_compat_run(lingua_lm *lm, const lingua_compat_in *in, uint8_t *keep);

/* ---------------------------------------------------------------------------------------- */
/* Token level, default engine                                                              */

typedef struct {
    const int32_t *ids;      /* (n) tokens to compress, in prompt order */
    int32_t n;
    const uint8_t *protect;  /* (n) or NULL: always kept, count against the budget */
    const float *weight;     /* (n) or NULL: relative keep-rate of each token (segment or
                                dynamic per-context rates); 0 = drop first, 1 = keep */
    int64_t target;          /* tokens to keep in total among the n (protected included) */
    int32_t I;               /* window size */
    int32_t bos;             /* id scoring starts from (-1: none, first token always kept) */
    const int32_t *prefix;   /* (n_prefix) conditioning tokens before the text, or NULL */
    int32_t n_prefix;
    lingua_lm *self_lm;      /* contrastive: stream without the prefix (score = self - cond) */
    float *score;            /* (n) out, optional: the score each token was ranked by */
    int32_t carry;           /* when the cache is full it is rebuilt from BOS + prefix + this
                                many latest kept tokens; 0 = n_ctx / 8 */
} lingua_default_in;

int lingua_default_run(lingua_lm *lm, const lingua_default_in *in, uint8_t *keep);

/* Per-token quotas: given weights w (n) (NULL = 1) over the selectable tokens (sel[t] != 0),
 * find s with sum min(1, s*w_t) = k and write q_t = min(1, s*w_t) (0 where not selectable). */
void lingua_waterfill(const float *w, const uint8_t *sel, int32_t n, int64_t k, double *q);

/* ---------------------------------------------------------------------------------------- */
/* Recovery (LongLLMLingua's recover() on byte spans)                                        */

/* Map a response (produced under the compressed prompt) back to the original prompt
 * (recover.c): every maximal run of response words (blank-separated; blanks are copied) found
 * in the compressed text is matched to a span of original tokens (same first token, later
 * tokens within 10 positions, most matched, then shortest) and replaced by the original bytes
 * of that span. Near-linear time. orig_ids/orig_spans: the original prompt's tokens; tokenize:
 * callback giving the ids of a string. Output: a malloc'ed NUL-terminated string in *out. */
typedef int64_t (*lingua_tokenize_fn)(void *u, const char *s, size_t n, int32_t *ids,
                                      int64_t cap);
int lingua_recover(const char *orig, size_t orig_len, const int32_t *orig_ids,
                   const terse_span *orig_spans, int32_t n_orig, const char *compressed,
                   size_t comp_len, const char *response, size_t resp_len,
                   lingua_tokenize_fn tok, void *tok_u, char **out, size_t *out_len);

#endif
