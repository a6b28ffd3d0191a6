/* compress.h - the internal interface of the compression methods (not API).
 *
 * terse_compress() (compress.c) turns a terse_prompt + params into a cmp_job: the prompt
 * assembled into one text, its segments (from <llmlingua ...> tags), the scoring model's
 * tokens with byte spans and per-token flags, and the budget. It then calls one method entry
 * (sc_run, llmlingua_run, longllmlingua_run), which scores, decides, and leaves either keep
 * flags on the tokens (the common case: cmp_build_text() makes the output from the original
 * bytes) or an output text of its own (compat modes that rebuild text the reference's way,
 * via cmp_set_output()). compress.c then counts, fills and returns the terse_result.
 *
 * Files: compress.c (job, dispatcher, result, JSON), score.c (scoring in windows, timing),
 * budget.c (output text, counting, budget fitting), selective.c (Selective Context),
 * llmlingua.c / longllmlingua.c (LLMLingua family), html.c (token heatmap).
 *
 * The assembled text: [instruction SEP] context_0 SEP context_1 ... [SEP question], SEP =
 * "\n\n". Each of those pieces is a cmp_part (separators are parts of kind CMP_PART_SEP);
 * every part is one or more cmp_segments (a context with tags splits into one segment per tag
 * and per untagged stretch; the tag markup itself is not in the text). Tokens are made
 * segment by segment (terse_tokenize of each segment's bytes), so no token straddles two
 * segments, and spans are offsets into j->text. A method that needs the reference's joint
 * tokenization of a whole joined string tokenizes it itself.
 *
 * Shapes: T = j->tok.n tokens, S = j->n_segs segments, P = j->n_parts parts.
 */
#ifndef TERSE_COMPRESS_H
#define TERSE_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "terse.h"

/* ------------------------------------------------------------------------------------------ */
/* The job                                                                                     */

typedef enum {
    CMP_PART_INSTRUCTION = 0,
    CMP_PART_CONTEXT     = 1,
    CMP_PART_QUESTION    = 2,
    CMP_PART_SEP         = 3,   /* "\n\n" between two pieces */
} cmp_part_kind;

typedef struct {
    cmp_part_kind kind;
    int32_t index;              /* context number for CMP_PART_CONTEXT, else -1 */
    int64_t begin, end;         /* bytes [begin, end) of j->text */
    int32_t seg0, seg1;         /* its segments [seg0, seg1) */
    int64_t tok0, tok1;         /* its tokens [tok0, tok1) */
} cmp_part;

typedef struct {
    int64_t begin, end;         /* bytes [begin, end) of j->text */
    int32_t part;               /* index into j->parts */
    int64_t tok0, tok1;         /* its tokens [tok0, tok1) */
    double rate;                /* tag's rate in (0, 1], or -1 (no rate given: the global one) */
    bool compress;              /* false: compress=False tag, instruction, question, separator */
    bool tagged;                /* came from an <llmlingua ...> tag */
} cmp_segment;

/* Per-token flags (j->tok.flags). FIXED and PROTECT tokens are always in the output;
 * KEEP is the method's decision for the others. */
enum {
    CMP_KEEP    = 1,            /* kept by the method */
    CMP_PROTECT = 2,            /* force token, digit (keep_digits), protect_patterns match */
    CMP_FIXED   = 4,            /* in a segment with compress == false */
    CMP_SEPTOK  = 16,           /* set by cmp_build_text: a dropped token that gave the
                                   output a separator or line end (TERSE_TOKEN_SEPARATOR) */
    CMP_LAYOUT  = 8,            /* default mode: in an atom of whitespace holding a line end;
                                   with keep_layout such atoms are never units: line ends come
                                   from the gaps between kept text (cmp_render) */
};

typedef struct {
    int64_t n;                  /* T */
    int32_t *ids;               /* (T) scoring-model ids, no BOS */
    terse_span *spans;          /* (T) bytes of j->text; spans of a segment tile it */
    int32_t *seg;               /* (T) segment index */
    uint8_t *flags;             /* (T) CMP_* */
    float *score;               /* (T) the method's score (surprisal, nats); NAN = unscored */
    uint8_t *glue;              /* (T) default mode: 1 when token t belongs to the atom of t-1
                                   (see "Atoms" below); all 0 in compat mode */
} cmp_tokens;

typedef struct {
    const terse_vocab *vocab;   /* budget vocabulary: p.count_vocab, else the model's */
    int64_t origin;             /* whole assembled prompt in that vocabulary */
    int64_t target;             /* output tokens allowed (p.target, else floor(rate*origin)) */
    double rate;                /* requested rate (p.rate, or target/origin, at most 1) */
    bool unchanged;             /* target >= origin or rate == 1: in default mode the prompt is
                                   returned as is without calling the method; compat methods
                                   still run (the reference does) */
} cmp_budget;

typedef struct cmp_job {
    terse_ctx *ctx;             /* scoring context (KV cache free for the method's use) */
    const terse_model *model;
    const terse_vocab *vocab;   /* the scoring model's vocabulary */
    terse_compress_params p;    /* validated copy (string arrays still borrowed) */
    int32_t n_ctx;              /* cache capacity of ctx, in tokens */
    int32_t bos;                /* the model's BOS id, -1 if none */

    char *text;                 /* assembled prompt, NUL-terminated, owned */
    int64_t len;
    cmp_part *parts;            /* (P) */
    int32_t n_parts;
    cmp_segment *segs;          /* (S) */
    int32_t n_segs;
    cmp_tokens tok;
    cmp_budget budget;

    char *out;                  /* output text, set by cmp_build_text() or cmp_set_output() */
    int64_t out_len;
    int64_t n_units, n_units_kept; /* set by the method for the stats */
    bool over_budget;
    int layout;                 /* cmp_render's layout level: 0 paragraph breaks kept, 1 one
                                   line end per gap, 2 a space where the gap has one (set by
                                   cmp_fit_budget) */
    const int32_t *part_order;  /* parts rendered in this order (NULL: j->parts order); the
                                   LLMLingua methods' reordering */
    int32_t n_part_order;
    int64_t n_invalid;          /* invalid UTF-8 sequences of the input replaced by U+FFFD */
    char warning[512];          /* "" or what the caller should know; see cmp_warn() */

    double t_start, t_model;    /* seconds: start of terse_compress, inside forward passes */
    int64_t done, total;        /* progress: tokens scored so far, tokens to score */
} cmp_job;

/* ------------------------------------------------------------------------------------------ */
/* Method entries (each returns TERSE_OK or a negative status with terse_err).                 */

int sc_run(cmp_job *j);             /* selective.c */
int llmlingua_run(cmp_job *j);      /* llmlingua.c */
int longllmlingua_run(cmp_job *j);  /* longllmlingua.c */
int llmlingua2_run(cmp_job *j);     /* llmlingua2.c */

/* ------------------------------------------------------------------------------------------ */
/* Scoring (score.c). All forward passes of a method should go through these, so that the
 * time spent in the model (j->t_model) and the progress callback stay right.                  */

/* out[i] = surprisal (nats) of ids[i] given prefix[0..n_prefix) and ids[0..i), for i in
 * [0, n). With n_prefix == 0, out[0] = 0 (nothing to condition on). When n_prefix + n exceeds
 * the context, the text is scored in windows: each window holds the prefix, then `carry`
 * tokens that precede its new tokens (p.carry, default n_ctx/8), then new tokens up to n_ctx.
 * The prefix must leave room: n_prefix + carry < n_ctx. Clears and reuses j->ctx's cache.
 * Adds n to the progress count. */
int cmp_score_ids(cmp_job *j, const int32_t *prefix, int32_t n_prefix, const int32_t *ids,
                  int64_t n, float *out);

/* Many independent sequences ids[b[i]..e[i]), i in [0, n_seq), each scored alone after the
 * model's BOS (Selective Context's per-sentence scoring): out[t] for every t in those ranges
 * (out is indexed like ids). Short sequences are packed into one forward pass with a
 * block-diagonal mask (positions restart at 0 for each); a sequence longer than the context
 * is scored by cmp_score_ids in windows. Without a BOS, each sequence's first token gets 0. */
int cmp_score_packed(cmp_job *j, const int32_t *ids, const int64_t *b, const int64_t *e,
                     int64_t n_seq, float *out);

/* terse_eval / terse_eval_logprobs with the time counted in j->t_model. */
int cmp_eval(cmp_job *j, const terse_batch *b);
int cmp_logprobs(cmp_job *j, const int32_t *targets, int32_t n, float *logp);

/* Advance the progress count by n tokens and call p.progress if set. */
void cmp_progress(cmp_job *j, int64_t n);

/* ------------------------------------------------------------------------------------------ */
/* Output, counting, budget (budget.c)                                                         */

/* Tokens of s[0..n) in vocabulary v (no special tokens), or a negative status. */
int64_t cmp_count(const terse_vocab *v, const char *s, size_t n);
/* ... in the budget vocabulary. */
int64_t cmp_count_budget(const cmp_job *j, const char *s, size_t n);

static inline bool cmp_in_output(const cmp_job *j, int64_t t) {
    return (j->tok.flags[t] & (CMP_KEEP | CMP_PROTECT | CMP_FIXED)) != 0;
}
/* true when the method may not drop token t */
static inline bool cmp_must_keep(const cmp_job *j, int64_t t) {
    return (j->tok.flags[t] & (CMP_PROTECT | CMP_FIXED)) != 0;
}

/* Build j->out from the tokens in the output (cmp_in_output), in order, from their original
 * bytes. Parts are joined with their separators; a context left empty, and the separator
 * before it, are left out. Replaces any earlier j->out.
 * Default mode: between two kept pieces of a part, the dropped gap leaves
 *  - its line ends (keep_layout): the longest run of consecutive line ends of the gap (a
 *    paragraph break stays one, a dropped line leaves no empty line) at layout level 0, the
 *    first line end at level 1; at level 2 they are treated as whitespace below; a line end
 *    ("\r\n", "\n", "\r") is copied whole;
 *  - else, when the pieces would touch without whitespace, one separator: the gap's first
 *    space-like character, else its first line end, or, between two word characters, its
 *    first other character
 *    (so "32 and 114" never reads "32114"). Gaps before the first / after the last kept
 *    piece of a part leave nothing. Every output character is an input character, in order. */
int cmp_build_text(cmp_job *j);
/* The same into a caller's malloc'ed string (*out, *out_len), for trial builds. */
int cmp_render(const cmp_job *j, char **out, int64_t *out_len);
/* Set j->out to a copy of s[0..n) (for methods that build their text themselves). */
int cmp_set_output(cmp_job *j, const char *s, size_t n);

/* A lexical unit for budget fitting: the tokens [tok0, tok1) of one segment. */
typedef struct {
    int64_t tok0, tok1;
    double score;               /* the method's ranking score (higher = keep first) */
} cmp_unit;

/* Choose which units to keep so that the output meets the budget: units are taken in order
 * (order[0] first; order may be NULL for 0..n-1), on top of the tokens that must be kept, as
 * many as fit: the output, counted in the budget vocabulary after rendering, is at most
 * j->budget.target and within one unit of it. A unit is kept as a whole (CMP_KEEP on all its
 * tokens). If the must-keep tokens alone exceed the target, keeps only them and sets
 * j->over_budget and a warning that names what takes the budget (instruction, question,
 * protected spans, compress=False text, separators and line ends). Sets j->n_units and
 * j->n_units_kept. Per-segment rates of tagged segments are honoured by the caller (fit per
 * segment or pre-mark; see selective.c).
 * Layout (keep_layout): the fit is made at layout levels 0 (paragraph breaks kept), 1 (one
 * line end per gap) and 2 (a space instead where the gap has one); the lowest level that
 * keeps at least 90% of the most content tokens wins, so line ends never take the budget
 * that content needs.
 * Keep at least one unit: when nothing would be output at all (no unit fits and nothing must
 * be kept), the first unit of the order is kept anyway, with over_budget and a warning. */
int cmp_fit_budget(cmp_job *j, const cmp_unit *units, int64_t n, const int64_t *order);

/* ------------------------------------------------------------------------------------------ */
/* Atoms (default mode): the smallest runs of tokens that are kept or dropped together. A token
 * joins the previous one (tok.glue) when the boundary between them falls inside a UTF-8
 * character, inside a "\r\n", or inside a number expression (text_numbers: "1000/5 = 200").
 * Flags PROTECT / FIXED spread over a whole atom. Units are made of whole atoms.              */

/* First token after the atom that starts at (or contains) token t. */
int64_t cmp_atom_end(const cmp_job *j, int64_t t);
/* First token of the atom holding token t. */
int64_t cmp_atom_begin(const cmp_job *j, int64_t t);
/* Units of tokens [tok0, tok1): one per atom, leaving out atoms that must be kept and (with
 * keep_layout) layout atoms; score = sum of the tokens' scores (NAN if any is NAN). Writes up
 * to tok1 - tok0 units, returns the count. */
int64_t cmp_atom_units(const cmp_job *j, int64_t tok0, int64_t tok1, cmp_unit *u);
/* Does the text of tokens [tok0, tok1) hold a word character (letter, digit, CJK)? */
bool cmp_has_word(const cmp_job *j, int64_t tok0, int64_t tok1);
/* Ranking keys with punctuation held back: key[i] (higher = kept first) is lowered, for a
 * unit with no word character, to just below the larger key of its nearest units with word
 * characters in the same part (u in text order), so punctuation and whitespace are never
 * kept before the words they stand next to: a tight budget goes to words first. */
void cmp_cap_punct(const cmp_job *j, const cmp_unit *u, int64_t n, double *key);

/* numpy's percentile with linear interpolation (q in [0, 100]) over the non-NaN values of
 * v[0..n) (np.nanpercentile). Returns NAN when none. v is not modified. */
double cmp_percentile(const double *v, int64_t n, double q);

/* Record a warning for the result (appended with "; " if one exists). */
void cmp_warn(cmp_job *j, const char *fmt, ...) TERSE_PRINTF(2, 3);

#endif
