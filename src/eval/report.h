/* report.h - the internal side of terse_report (not API): the harness adds items, rows,
 * notes and heatmaps; report.c aggregates them and writes JSON, Markdown, SVG and HTML.
 */
#ifndef TERSE_EVAL_REPORT_H
#define TERSE_EVAL_REPORT_H

#include "eval/eval.h"

/* One prompt run: an item under one method at one rate, scored. NAN = not measured. */
typedef struct {
    int32_t item;
    int method;                     /* index of the harness's method table */
    double rate;                    /* requested fraction of tokens kept */
    int64_t origin_model_tokens, compressed_model_tokens;   /* compressor's vocabulary */
    int64_t origin_target_tokens, compressed_target_tokens; /* target's, BOS included */
    int64_t origin_count_tokens, compressed_count_tokens;   /* count_vocab's, 0 without */
    double rate_model, rate_count;  /* achieved compressed / original */
    double latency;                 /* seconds in the compressor */
    double bleu, rouge1, rouge2, rougeL, meteor, bert, kl;  /* against the full prompt's output */
    double em, ans_rougeL;          /* against the item's reference answer */
} ev_row;

/* harness.c: the name of method table entry i */
const char *ev_method_name(int i);

int  ev_report_new(const terse_evaluate_params *p, terse_report **out);
void ev_report_models(terse_report *r, const terse_model *compressor, const terse_model *target);
void ev_report_note(terse_report *r, const char *fmt, ...) TERSE_PRINTF(2, 3);
int  ev_report_item(terse_report *r, int32_t item, const char *prompt, const char *output,
                    const char *reference);
int  ev_report_row(terse_report *r, const ev_row *row, const char *prompt, const char *output);
/* An HTML heatmap of res's tokens (needs return_tokens). */
int  ev_report_heatmap(terse_report *r, const char *method, double rate, const terse_result *res);
void ev_report_finish(terse_report *r, double seconds, int32_t n_items);

#endif
