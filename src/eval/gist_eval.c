/* gist_eval.c - the methods "gist" and "gist-full" of the evaluation harness (Mu et al. 2023,
 * "Learning to Compress Prompts with Gist Tokens"), on a target model with a gist token.
 *
 * Both use the gist model's template (train/gist.h):
 *     [BOS] "Instruction: {instruction}\n" <GIST> x K ["\nInput: {input}"] "\nOutput:"
 * with the item's instruction and, as the input, its contexts and question joined by "\n\n".
 *   gist       the instruction part is evaluated once (terse_gist_compute) and only the K gist
 *              tokens' cache entries are kept (terse_gist_apply); the input follows them: what
 *              a served request with a cached gist reads (K + input tokens);
 *   gist-full  the whole sequence, the instruction visible to everything after it: the same
 *              model without compression (the paper's positive control is a separately trained
 *              model; run this method with it as the target for that row).
 * For each: the rows predicting the full prompt's output Y (for KL), then the target's own
 * greedy (or sampled) output, as for every other method. The compression factor of the paper
 * is the instruction's tokens / K (reported in compressed_*_tokens against the full prompt).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/gist_eval.h"
#include "train/gist.h"

/* the item's input: contexts and question joined by "\n\n" */
static int item_input(const char *const *contexts, int32_t n_contexts, const char *question,
                      char **out) {
    terse_buf b = {0};
    for (int32_t c = 0; c < n_contexts; c++) {
        if (c) terse_buf_puts(&b, "\n\n");
        terse_buf_puts(&b, contexts[c]);
    }
    if (question) {
        if (n_contexts) terse_buf_puts(&b, "\n\n");
        terse_buf_puts(&b, question);
    }
    return terse_buf_take(&b, out);
}

/* the prompt's ids (after the cached gists for "gist"; the whole template for "gist-full") */
static int prompt_of(terse_ctx *c, const char *instruction, const char *input, int32_t K,
                     int full, terse_gist **g, int32_t **ids, int32_t *n, int32_t *n_instr) {
    const terse_model *m = terse_ctx_model(c);
    const terse_vocab *v = terse_model_vocab(m);
    int32_t gid = gist_token_id(m);
    if (gid < 0 || !v)
        return terse_err(TERSE_ERR_INVALID, "method gist: the target model has no gist token "
                         "(terse.gist.token_id; make one with terse finetune --gist K)");
    int rc = terse_gist_compute(c, instruction, strlen(instruction), K, g);
    if (rc) return rc;
    *n_instr = terse_gist_instruction_tokens(*g);
    int64_t n_in = terse_gist_input_ids(m, input, strlen(input), NULL, 0);
    if (n_in < 0) return (int)n_in;
    int64_t head = full ? *n_instr + K : 0;
    int32_t *p = terse_malloc((size_t)(head + n_in + 1) * sizeof *p, "gist prompt");
    if (!p) return TERSE_ERR_NOMEM;
    if (full) { /* BOS and the instruction line as terse_gist_compute tokenised them */
        int32_t bos = terse_vocab_bos(v);
        size_t len = strlen(instruction);
        char *text = terse_malloc(len + 15, "gist text");
        if (!text) { free(p); return TERSE_ERR_NOMEM; }
        memcpy(text, "Instruction: ", 13);
        memcpy(text + 13, instruction, len);
        memcpy(text + 13 + len, "\n", 2);
        int32_t at = 0;
        if (bos >= 0) p[at++] = bos;
        int64_t k = terse_tokenize(v, text, len + 14, 0, p + at, NULL, *n_instr - at);
        free(text);
        if (k < 0 || at + k != *n_instr) {
            free(p);
            return k < 0 ? (int)k : terse_err(TERSE_ERR_INTERNAL, "gist-full: instruction "
                                              "tokens %lld, expected %d", (long long)(at + k),
                                              (int)*n_instr);
        }
        for (int32_t i = 0; i < K; i++) p[*n_instr + i] = gid;
    }
    int64_t got = terse_gist_input_ids(m, input, strlen(input), p + head, n_in);
    if (got != n_in) { free(p); return got < 0 ? (int)got : TERSE_ERR_INTERNAL; }
    *ids = p, *n = (int32_t)(head + n_in);
    return TERSE_OK;
}

/* the context ready for the prompt: the gist cache (gist) or empty (gist-full) */
static int reset(terse_ctx *c, const terse_gist *g, int full) {
    if (full) { terse_kv_clear(c); return TERSE_OK; }
    return terse_gist_apply(c, g);
}

int ev_gist_run(terse_ctx *c, const ev_gist_args *a, ev_row *row, char **prompt_text,
                char **output) {
    *prompt_text = NULL, *output = NULL;
    if (!a->instruction || !*a->instruction)
        return terse_err(TERSE_ERR_INVALID, "method gist: the item has no instruction");
    if (a->K < 1 || a->K > GIST_MAX_K)
        return terse_err(TERSE_ERR_INVALID, "method gist: K = %d (1..%d)", (int)a->K, GIST_MAX_K);
    char *input = NULL;
    int rc = item_input(a->contexts, a->n_contexts, a->question, &input);
    if (rc) return rc;
    terse_gist *g = NULL;
    int32_t *ids = NULL, n = 0, n_instr = 0, *gen = NULL;
    const int32_t n_ctx = terse_ctx_n_ctx(c);
    const int32_t pre = a->full ? 0 : a->K;      /* cache entries before the prompt */
    rc = prompt_of(c, a->instruction, input, a->K, a->full, &g, &ids, &n, &n_instr);
    if (!rc && pre + n + a->max_new > n_ctx)
        rc = terse_err(TERSE_ERR_RANGE, "method gist: %d cached + %d prompt + %d new tokens "
                       "exceed the context of %d", (int)pre, (int)n, (int)a->max_new, (int)n_ctx);
    if (!rc) {
        row->compressed_target_tokens = pre + n;
        row->compressed_model_tokens = pre + n;
        row->kl = 0;
    }
    /* rows predicting Y after the prompt */
    if (!rc && a->n_y > 0) {
        int32_t m = n + a->n_y - 1;
        int32_t *in = pre + m <= n_ctx ? terse_malloc((size_t)m * sizeof *in, "gist rows") : NULL;
        if (pre + m > n_ctx)
            rc = terse_err(TERSE_ERR_RANGE, "method gist: prompt + output exceed the context");
        else if (!in) rc = TERSE_ERR_NOMEM;
        if (!rc) {
            memcpy(in, ids, (size_t)n * sizeof *in);
            memcpy(in + n, a->y, (size_t)(a->n_y - 1) * sizeof *in);
            rc = reset(c, g, a->full);
        }
        if (!rc) {
            terse_batch b = {.n = m, .ids = in};
            rc = terse_eval(c, &b);
        }
        for (int32_t i = 0; i < a->n_y && !rc; i++) {
            float *q = a->Q + (size_t)i * (size_t)a->V;
            rc = terse_eval_logits(c, n - 1 + i, q, 1);
            if (!rc) row->kl += terse_kl(a->P + (size_t)i * (size_t)a->V, q, a->V);
        }
        if (!rc) row->kl /= a->n_y;
        free(in);
    }
    /* the target's own output */
    if (!rc && !(gen = terse_malloc((size_t)(a->max_new + 1) * sizeof *gen, "gist output")))
        rc = TERSE_ERR_NOMEM;
    if (!rc) rc = reset(c, g, a->full);
    int32_t ng = 0;
    if (!rc && (ng = terse_generate(c, ids, n, *a->sample, gen, a->max_new)) < 0) rc = ng;
    const terse_vocab *v = terse_model_vocab(terse_ctx_model(c));
    int64_t need = rc ? 0 : terse_detokenize(v, gen, ng, NULL, 0);
    if (need < 0) rc = (int)need;
    char *s = rc ? NULL : terse_malloc((size_t)need + 1, "gist output text");
    if (!rc && !s) rc = TERSE_ERR_NOMEM;
    if (!rc) {
        terse_detokenize(v, gen, ng, s, need + 1);
        s[need] = 0;
        char *cut = a->stop && *a->stop ? strstr(s, a->stop) : NULL;
        if (cut) *cut = 0;
    }
    /* the prompt as text, the gists spelled <GIST> */
    terse_buf b = {0};
    if (!rc) {
        if (a->full) terse_buf_printf(&b, "Instruction: %s\n", a->instruction);
        for (int32_t i = 0; i < a->K; i++) terse_buf_puts(&b, "<GIST>");
        if (*input) terse_buf_printf(&b, "\nInput: %s", input);
        terse_buf_puts(&b, "\nOutput:");
        rc = terse_buf_take(&b, prompt_text);
    }
    terse_buf_free(&b);
    if (!rc) *output = s, s = NULL;
    free(s), free(gen), free(ids), free(input);
    terse_gist_free(g);
    return rc;
}
