/* gist.h - attention masks for gist tokens (Mu et al. 2023, "Learning to Compress Prompts with
 * Gist Tokens"). Internal header; the training forward (nn_grad_forward) and the scoring
 * forward (terse_batch.mask) take the same T x T bytes, so one builder serves both.
 *
 * A sequence is  instruction | K gist tokens at [first, last] | input | output.
 * Row i, column j nonzero when token i may attend to token j; always causal (j <= i):
 *   GIST_MASK_GIST  i <= last: every j <= i (prompt and gists see the prefix causally);
 *                   i >  last: j >= first only (gists and later tokens, never the
 *                   instruction). The paper's mask AND-ed with causal.
 *   GIST_MASK_POS   plain causal (the positive control: nothing hidden).
 *   GIST_MASK_NEG   i > last: j > last only (the negative control: instruction and gists
 *                   both hidden from everything after them); i <= last causal.
 * A sequence without gists (first = last = -1) gets the causal mask for every kind.
 */
#ifndef TERSE_NN_GIST_H
#define TERSE_NN_GIST_H

#include <stdint.h>

typedef enum { GIST_MASK_GIST = 0, GIST_MASK_POS = 1, GIST_MASK_NEG = 2 } gist_mask_kind;

/* Writes the T x T mask (row-major) into mask. 0 <= first <= last < T, or both -1.
 * Returns TERSE_OK, or TERSE_ERR_INVALID (bad kind, T < 1, or first/last out of range)
 * with the message in terse_last_error(). */
int gist_mask_build(gist_mask_kind kind, int32_t T, int32_t first, int32_t last, uint8_t *mask);

/* "gist", "pos", "neg" -> kind; -1 for anything else. */
int gist_mask_kind_parse(const char *name);

#endif
