/* selective.h - the model-free pieces of Selective Context (selective.c), exposed so that tests
 * can pin the reference's behaviour with hand-made scores. Internal header (not API).
 *
 * Reference: liyucheng09/Selective_Context src/selective_context/__init__.py (PyPI 0.1.4);
 * reference/selective_context_gist_cc.md section 1.
 */
#ifndef TERSE_SELECTIVE_H
#define TERSE_SELECTIVE_H

#include <stdbool.h>
#include <stdint.h>

/* np.mean of v[0..n) as float64 with numpy's summation order (first element, plus the pairwise
 * sum of the rest: 8 accumulators in blocks of up to 128). NAN when n == 0. */
double sc_np_mean(const float *v, int64_t n);

/* Python len() of s[0..n) decoded as UTF-8 with errors="replace" (each maximal invalid
 * subsequence counts as one U+FFFD). */
int64_t sc_char_len(const char *s, size_t n);

/* beautify_context: every run of Unicode whitespace becomes one ' '. *out (NUL-terminated) and
 * *map (original byte offset of each output byte, plus map[out_n] = n) are malloc'ed. */
int sc_beautify(const char *s, size_t n, char **out, size_t *out_n, int64_t **map);

/* _unit_info: token scores to unit scores by accumulating CHARACTER lengths of the decoded
 * tokens against the units' lengths. tok_len/unit_len in characters; tok_space[i]: token i
 * decodes to exactly " ". Quirks kept: a token that completes k units gives info/k to each of
 * them; a token that runs past the end of a unit into the next gives nothing to the unit it
 * ends inside; a " " token that does not complete a unit is skipped; a unit that gets no
 * value scores NAN (np.mean([])), and is then always kept. Tokens past the last unit are
 * ignored (the reference raises IndexError there). */
int sc_unit_info(const int64_t *tok_len, const bool *tok_space, const float *info, int64_t nt,
                 const int64_t *unit_len, int64_t nu, double *unit_score);

/* self_info_mask: thr = np.nanpercentile(score, reduce_ratio * 100); unit i is dropped iff
 * score[i] < thr (so NAN is kept). keep[i] = 1/0. Returns thr. */
double sc_threshold(const double *score, int64_t n, double reduce_ratio, uint8_t *keep);

#endif
