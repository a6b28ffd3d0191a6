/* gist.h - gist-token models and their fine-tuning (Mu et al. 2023). Internal header; the
 * finetune command and the tests build on it.
 *
 *   gist_model_make     a base model + one new vocabulary entry "<GIST>" (its token and, when
 *                       untied, output rows = the mean of the existing rows), every tensor
 *                       written as F32 (master weights for nn_grad); the id is stored under
 *                       "terse.gist.token_id".
 *   gist_example_build  one training sequence, the paper's decoder template:
 *                           [BOS] "Instruction: {instruction}\n" <GIST> x K
 *                           "\nInput: {input}" (only when input is not empty) "\nOutput:"
 *                           " {output}" [EOS]
 *                       each piece tokenised on its own (the gist ids are inserted, never
 *                       spelled); targets are the response tokens and EOS only.
 *   gist_finetune       the recipe: AdamW (train/adamw.h) on every weight, batches of B
 *                       sequences, the loss = the mean cross-entropy over all response tokens
 *                       of the batch, each sequence under the gist mask (or a control's);
 *                       step s takes examples (s - 1) B .. s B - 1 of the list (modulo its
 *                       length), so a list written in training order (gist_examples_write)
 *                       replays the same batches in tools/gist_train.py.
 */
#ifndef TERSE_TRAIN_GIST_H
#define TERSE_TRAIN_GIST_H

#include "base/base.h"
#include "nn/gist.h"
#include "train/adamw.h"

#define GIST_TOKEN_KEY "terse.gist.token_id"
#define GIST_K_KEY "terse.gist.k"          /* the K the model was trained with (optional) */
#define GIST_MAX_K 64

int gist_model_make(const char *in_path, const char *out_path);

/* A copy of an F32 model with every 2-D F32 matrix as `type` (0 = Q8_0; a mixture picks per
 * tensor as llama-quantize does; rows that fit no block stay as they are); the rest as it is.
 * K > 0: GIST_K_KEY = K (else in's, if any). */
int gist_model_quantize(const char *in_path, const char *out_path, int32_t K, uint32_t type);

/* The model's gist token id, or -1 (none, or out of range). */
int32_t gist_token_id(const terse_model *m);

typedef struct {
    int32_t *ids;       /* n tokens (owned) */
    int32_t n;
    int32_t first, last;/* gist positions, -1 when K = 0 */
    int32_t n_prompt;   /* tokens before the response; targets are ids[n_prompt..n) */
} gist_example;

/* max_len: longest sequence accepted; a longer one gives TERSE_ERR_RANGE (callers skip it).
 * K in [0, GIST_MAX_K]; gist_id must be valid when K > 0. */
int  gist_example_build(const terse_model *m, int32_t gist_id, int32_t K, const char *instruction,
                        const char *input, const char *output, int32_t max_len, gist_example *ex);
void gist_example_free(gist_example *ex);

/* Text file, one example per line: "n first last n_prompt id_0 ... id_{n-1}". */
int gist_examples_write(const char *path, const gist_example *ex, int32_t n);

typedef struct {
    gist_mask_kind mask;
    int32_t batch;             /* sequences per step */
    int32_t steps;             /* total steps (the schedule's length) */
    train_adamw_params opt;
    const char *state_path;    /* AdamW state: resumed from when it exists; NULL: none */
    int32_t save_every;        /* save the state every this many steps (and at the end); 0: end */
    int32_t n_threads;
    /* progress: called after every step; a nonzero return stops training (state saved) */
    int (*progress)(void *ud, int32_t step, double loss, double grad_norm, float lr);
    void *ud;
} gist_train_params;

/* Fine-tunes m (a gist model, every weight F32) on ex[0..n) and writes the trained model to
 * out_path (NULL: not written). losses (steps entries, NULL: not kept) receive each step's
 * loss (steps done before a resume are left as they were). */
int gist_finetune(const terse_model *m, const gist_example *ex, int32_t n,
                  const gist_train_params *p, const char *out_path, double *losses);

#endif
