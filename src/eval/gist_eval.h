/* gist_eval.h - the harness's methods "gist" and "gist-full" (gist_eval.c). Internal. */
#ifndef TERSE_EVAL_GIST_EVAL_H
#define TERSE_EVAL_GIST_EVAL_H

#include "eval/eval.h"
#include "eval/report.h"

typedef struct {
    const char *instruction;            /* compressed into the gists */
    const char *const *contexts;        /* with question: the input, joined by "\n\n" */
    int32_t n_contexts;
    const char *question;               /* or NULL */
    int32_t K;                          /* gist tokens (1..64) */
    int full;                           /* 1: gist-full (the instruction visible) */
    const int32_t *y;                   /* the full prompt's output (n_y), for KL */
    int32_t n_y;
    const float *P;                     /* (n_y, V) its log-softmax rows after the full prompt */
    float *Q;                           /* (n_y, V) scratch */
    int32_t V;
    const terse_sample_params *sample;
    int32_t max_new;
    const char *stop;                   /* output cut at it; NULL none */
} ev_gist_args;

/* One run: row's compressed_*_tokens and kl set, *prompt_text (the prompt, gists spelled
 * "<GIST>") and *output (the target's output) malloc'ed. A target without a gist token, an
 * item without an instruction: TERSE_ERR_INVALID; too long for the context: TERSE_ERR_RANGE. */
int ev_gist_run(terse_ctx *c, const ev_gist_args *a, ev_row *row, char **prompt_text,
                char **output);

#endif
