/* report.c - what `terse eval` writes: the rows of a run aggregated per method x rate, as
 * JSON (everything, per-item texts included), a Markdown table, one hand-written SVG line
 * plot per metric (metric against the requested rate, one line per method; the two controls
 * "full" and "none" drawn as dashed horizontal lines), and HTML token heatmaps of the first
 * item (surprisal as colour, dropped tokens struck through).
 *
 * Means skip NaN (a metric not measured for that row: METEOR without WordNet, exact match
 * without a reference answer); a mean over no values is written as null / "-".
 * Not here: plotting libraries, confidence intervals, significance tests.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/report.h"

typedef struct {
    int32_t item;
    char *prompt, *output, *reference;
} rep_item;

typedef struct {
    ev_row row;
    char *prompt, *output;
} rep_run;

typedef struct {
    char *method;
    double rate;
    char *html;
} rep_heatmap;

/* a (method, rate) group and its means */
typedef struct {
    int method;
    double rate;
    int64_t n;
    double m[16];
} rep_group;

enum { G_RATE_TARGET, G_RATE_MODEL, G_RATE_COUNT, G_LATENCY, G_BLEU, G_ROUGE1, G_ROUGE2,
       G_ROUGEL, G_METEOR, G_BERT, G_KL, G_EM, G_ANS_ROUGEL, G_N };

static const struct {
    const char *key, *title;
} metric_names[G_N] = {
    {"rate", "achieved rate (target tokens)"},
    {"rate_model", "achieved rate (compressor tokens)"},
    {"rate_count", "achieved rate (counting tokenizer)"},
    {"latency", "compressor latency (s)"},
    {"bleu", "BLEU (sacreBLEU 13a, vs full-prompt output)"},
    {"rouge1", "ROUGE-1 F (vs full-prompt output)"},
    {"rouge2", "ROUGE-2 F (vs full-prompt output)"},
    {"rougeL", "ROUGE-L F (vs full-prompt output)"},
    {"meteor", "METEOR (vs full-prompt output)"},
    {"bertscore", "BERTScore-style F1 (vs full-prompt output)"},
    {"kl", "KL(full || compressed), nats per token"},
    {"exact_match", "exact match of the final answer"},
    {"answer_rougeL", "ROUGE-L F vs reference answer"},
};

struct terse_report {
    terse_evaluate_params p;
    char **methods;
    double *rates;
    char *compressor_desc, *target_desc;
    rep_item *items;
    int32_t n_items, cap_items;
    rep_run *runs;
    int64_t n_runs, cap_runs;
    rep_heatmap *heat;
    int32_t n_heat;
    char **notes;
    int32_t n_notes;
    rep_group *groups;
    int32_t n_groups;
    double seconds;
    int32_t items_done;
};

/* ---------------------------------------------------------------------------------------- */
/* Building                                                                                  */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int ev_report_new(const terse_evaluate_params *p, terse_report **out) {
    terse_report *r = terse_calloc(1, sizeof *r, "report");
    if (!r) return TERSE_ERR_NOMEM;
    r->p = *p;
    r->methods = terse_calloc((size_t)p->n_methods, sizeof *r->methods, "report");
    r->rates = terse_calloc((size_t)p->n_rates, sizeof *r->rates, "report");
    if (!r->methods || !r->rates) { terse_report_free(r); return TERSE_ERR_NOMEM; }
    for (int32_t i = 0; i < p->n_methods; i++)
        if (!(r->methods[i] = strdup(p->methods[i]))) { terse_report_free(r); return TERSE_ERR_NOMEM; }
    memcpy(r->rates, p->rates, (size_t)p->n_rates * sizeof *r->rates);
    r->p.methods = NULL; /* the copies above are the report's */
    r->p.rates = NULL;
    r->p.count_vocab = NULL;
    r->p.shared_context = r->p.shared_context_split = NULL;
    r->p.question_prefix = r->p.question_suffix = NULL;
    r->p.stop = NULL;
    r->p.wordnet_dir = NULL;
    r->p.progress = NULL;
    *out = r;
    return TERSE_OK;
}

static char *model_desc(const terse_model *m) {
    terse_model_info in;
    terse_model_get_info(m, &in);
    char buf[512];
    snprintf(buf, sizeof buf, "%s (%s, %.1fM parameters, %d layers, context %d)",
             in.name && *in.name ? in.name : "model", in.arch, (double)in.n_params / 1e6,
             in.n_layer, in.n_ctx_train);
    return strdup(buf);
}

void ev_report_models(terse_report *r, const terse_model *compressor, const terse_model *target) {
    r->compressor_desc = model_desc(compressor);
    r->target_desc = compressor == target ? dup_or_null(r->compressor_desc) : model_desc(target);
}

void ev_report_note(terse_report *r, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (r->n_notes >= 100) return; /* enough said */
    char **n = terse_reallocarray(r->notes, (size_t)r->n_notes + 1, sizeof *n, "notes");
    if (!n) return;
    r->notes = n;
    if ((n[r->n_notes] = strdup(buf))) r->n_notes++;
}

int ev_report_item(terse_report *r, int32_t item, const char *prompt, const char *output,
                   const char *reference) {
    if (r->n_items == r->cap_items) {
        int32_t cap = r->cap_items ? r->cap_items * 2 : 16;
        rep_item *it = terse_reallocarray(r->items, (size_t)cap, sizeof *it, "report items");
        if (!it) return TERSE_ERR_NOMEM;
        r->items = it;
        r->cap_items = cap;
    }
    rep_item *it = &r->items[r->n_items++];
    it->item = item;
    it->prompt = r->p.keep_texts ? dup_or_null(prompt) : NULL;
    it->output = dup_or_null(output);
    it->reference = dup_or_null(reference);
    return TERSE_OK;
}

int ev_report_row(terse_report *r, const ev_row *row, const char *prompt, const char *output) {
    if (r->n_runs == r->cap_runs) {
        int64_t cap = r->cap_runs ? r->cap_runs * 2 : 64;
        rep_run *ru = terse_reallocarray(r->runs, (size_t)cap, sizeof *ru, "report rows");
        if (!ru) return TERSE_ERR_NOMEM;
        r->runs = ru;
        r->cap_runs = cap;
    }
    rep_run *ru = &r->runs[r->n_runs++];
    ru->row = *row;
    ru->prompt = r->p.keep_texts ? dup_or_null(prompt) : NULL;
    ru->output = r->p.keep_texts ? dup_or_null(output) : NULL;
    return TERSE_OK;
}

/* The first item's token heatmap for this method and rate (terse_result_html). */
int ev_report_heatmap(terse_report *r, const char *method, double rate, const terse_result *res) {
    const terse_token_info *tok;
    if (terse_result_tokens(res, &tok) <= 0) return TERSE_OK;
    char title[160], *html;
    snprintf(title, sizeof title, "%s at rate %.2f", method, rate);
    int rc = terse_result_html(res, title, &html);
    if (rc) return rc;
    rep_heatmap *h = terse_reallocarray(r->heat, (size_t)r->n_heat + 1, sizeof *h, "heatmaps");
    if (!h) { free(html); return TERSE_ERR_NOMEM; }
    r->heat = h;
    h[r->n_heat].method = strdup(method);
    h[r->n_heat].rate = rate;
    h[r->n_heat].html = html;
    r->n_heat++;
    return TERSE_OK;
}

static double row_value(const ev_row *w, int g) {
    switch (g) {
    case G_RATE_TARGET:
        return w->origin_target_tokens ? (double)w->compressed_target_tokens / w->origin_target_tokens : NAN;
    case G_RATE_MODEL: return w->rate_model;
    case G_RATE_COUNT: return w->rate_count;
    case G_LATENCY: return w->latency;
    case G_BLEU: return w->bleu;
    case G_ROUGE1: return w->rouge1;
    case G_ROUGE2: return w->rouge2;
    case G_ROUGEL: return w->rougeL;
    case G_METEOR: return w->meteor;
    case G_BERT: return w->bert;
    case G_KL: return w->kl;
    case G_EM: return w->em;
    case G_ANS_ROUGEL: return w->ans_rougeL;
    default: return NAN;
    }
}

void ev_report_finish(terse_report *r, double seconds, int32_t n_items) {
    r->seconds = seconds;
    r->items_done = n_items;
    free(r->groups);
    r->groups = terse_calloc((size_t)(r->n_runs ? r->n_runs : 1), sizeof *r->groups, "groups");
    r->n_groups = 0;
    if (!r->groups) return;
    for (int64_t i = 0; i < r->n_runs; i++) {
        const ev_row *w = &r->runs[i].row;
        int32_t g = 0;
        while (g < r->n_groups && !(r->groups[g].method == w->method && r->groups[g].rate == w->rate)) g++;
        if (g == r->n_groups) r->groups[r->n_groups++] = (rep_group){.method = w->method, .rate = w->rate};
    }
    for (int32_t g = 0; g < r->n_groups; g++) {
        rep_group *gr = &r->groups[g];
        for (int k = 0; k < G_N; k++) {
            double sum = 0;
            int64_t cnt = 0;
            for (int64_t i = 0; i < r->n_runs; i++) {
                const ev_row *w = &r->runs[i].row;
                if (w->method != gr->method || w->rate != gr->rate) continue;
                double v = row_value(w, k);
                if (isnan(v)) continue;
                sum += v;
                cnt++;
            }
            gr->m[k] = cnt ? sum / cnt : NAN;
            if (k == G_BLEU) gr->n = cnt;
        }
    }
}

void terse_report_free(terse_report *r) {
    if (!r) return;
    for (int32_t i = 0; i < r->p.n_methods && r->methods; i++) free(r->methods[i]);
    free(r->methods);
    free(r->rates);
    free(r->compressor_desc);
    free(r->target_desc);
    for (int32_t i = 0; i < r->n_items; i++) {
        free(r->items[i].prompt);
        free(r->items[i].output);
        free(r->items[i].reference);
    }
    free(r->items);
    for (int64_t i = 0; i < r->n_runs; i++) free(r->runs[i].prompt), free(r->runs[i].output);
    free(r->runs);
    for (int32_t i = 0; i < r->n_heat; i++) free(r->heat[i].method), free(r->heat[i].html);
    free(r->heat);
    for (int32_t i = 0; i < r->n_notes; i++) free(r->notes[i]);
    free(r->notes);
    free(r->groups);
    free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                      */

static void json_num(terse_buf *b, double v) {
    if (isnan(v) || isinf(v)) terse_buf_puts(b, "null");
    else terse_buf_printf(b, "%.6g", v);
}

static void json_str(terse_buf *b, const char *s) {
    if (!s) { terse_buf_puts(b, "null"); return; }
    terse_buf_put(b, "\"", 1);
    terse_buf_json(b, s, strlen(s));
    terse_buf_put(b, "\"", 1);
}

static void json_metrics(terse_buf *b, const ev_row *w) {
    for (int k = 0; k < G_N; k++) {
        terse_buf_printf(b, ", \"%s\": ", metric_names[k].key);
        json_num(b, row_value(w, k));
    }
}

int terse_report_json(const terse_report *r, char **out) {
    if (!r || !out) return terse_err(TERSE_ERR_INVALID, "terse_report_json: NULL");
    terse_buf b = {0};
    terse_buf_puts(&b, "{\n  \"terse_eval\": 1,\n  \"compressor\": ");
    json_str(&b, r->compressor_desc);
    terse_buf_puts(&b, ",\n  \"target\": ");
    json_str(&b, r->target_desc);
    terse_buf_puts(&b, ",\n  \"methods\": [");
    for (int32_t i = 0; i < r->p.n_methods; i++) {
        if (i) terse_buf_puts(&b, ", ");
        json_str(&b, r->methods[i]);
    }
    terse_buf_puts(&b, "],\n  \"rates\": [");
    for (int32_t i = 0; i < r->p.n_rates; i++) terse_buf_printf(&b, "%s%g", i ? ", " : "", r->rates[i]);
    terse_buf_printf(&b, "],\n  \"max_new_tokens\": %d, \"temperature\": %g, \"top_p\": %g, "
                  "\"sample_seed\": %llu, \"seed\": %llu, \"compat\": %d,\n",
                  r->p.max_new_tokens, (double)r->p.sample.temperature, (double)r->p.sample.top_p,
                  (unsigned long long)r->p.sample.seed, (unsigned long long)r->p.seed, r->p.compat);
    terse_buf_printf(&b, "  \"n_items\": %d, \"seconds\": %.3f,\n  \"notes\": [", r->items_done,
                  r->seconds);
    for (int32_t i = 0; i < r->n_notes; i++) {
        if (i) terse_buf_puts(&b, ", ");
        json_str(&b, r->notes[i]);
    }
    terse_buf_puts(&b, "],\n  \"summary\": [");
    for (int32_t g = 0; g < r->n_groups; g++) {
        const rep_group *gr = &r->groups[g];
        terse_buf_printf(&b, "%s\n    {\"method\": \"%s\", \"rate_requested\": %g, \"n\": %lld",
                      g ? "," : "", ev_method_name(gr->method), gr->rate, (long long)gr->n);
        for (int k = 0; k < G_N; k++) {
            terse_buf_printf(&b, ", \"%s\": ", metric_names[k].key);
            json_num(&b, gr->m[k]);
        }
        terse_buf_puts(&b, "}");
    }
    terse_buf_puts(&b, "\n  ],\n  \"items\": [");
    for (int32_t i = 0; i < r->n_items; i++) {
        const rep_item *it = &r->items[i];
        terse_buf_printf(&b, "%s\n    {\"item\": %d, \"prompt\": ", i ? "," : "", it->item);
        json_str(&b, it->prompt);
        terse_buf_puts(&b, ", \"output\": ");
        json_str(&b, it->output);
        terse_buf_puts(&b, ", \"reference\": ");
        json_str(&b, it->reference);
        terse_buf_puts(&b, ",\n     \"runs\": [");
        int first = 1;
        for (int64_t k = 0; k < r->n_runs; k++) {
            const rep_run *ru = &r->runs[k];
            if (ru->row.item != it->item) continue;
            terse_buf_printf(&b, "%s\n      {\"method\": \"%s\", \"rate_requested\": %g, "
                          "\"target_tokens\": [%lld, %lld], \"compressor_tokens\": [%lld, %lld]",
                          first ? "" : ",", ev_method_name(ru->row.method), ru->row.rate,
                          (long long)ru->row.origin_target_tokens,
                          (long long)ru->row.compressed_target_tokens,
                          (long long)ru->row.origin_model_tokens,
                          (long long)ru->row.compressed_model_tokens);
            if (ru->row.origin_count_tokens > 0)
                terse_buf_printf(&b, ", \"count_tokens\": [%lld, %lld]",
                              (long long)ru->row.origin_count_tokens,
                              (long long)ru->row.compressed_count_tokens);
            json_metrics(&b, &ru->row);
            if (ru->prompt) {
                terse_buf_puts(&b, ",\n       \"prompt\": ");
                json_str(&b, ru->prompt);
            }
            if (ru->output) {
                terse_buf_puts(&b, ", \"output\": ");
                json_str(&b, ru->output);
            }
            terse_buf_puts(&b, "}");
            first = 0;
        }
        terse_buf_puts(&b, "]}");
    }
    terse_buf_puts(&b, "\n  ]\n}\n");
    return terse_buf_take(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Markdown                                                                                  */

static void md_num(terse_buf *b, double v, const char *fmt) {
    terse_buf_puts(b, " | ");
    if (isnan(v)) terse_buf_puts(b, "-");
    else terse_buf_printf(b, fmt, v);
}

int terse_report_markdown(const terse_report *r, char **out) {
    if (!r || !out) return terse_err(TERSE_ERR_INVALID, "terse_report_markdown: NULL");
    terse_buf b = {0};
    terse_buf_printf(&b, "Compressor: %s. Target: %s. %d items, greedy=%s, %d new tokens, seed %llu, "
                  "%.1f s.\n\n", r->compressor_desc ? r->compressor_desc : "?",
                  r->target_desc ? r->target_desc : "?", r->items_done,
                  r->p.sample.temperature <= 0 ? "yes" : "no", r->p.max_new_tokens,
                  (unsigned long long)r->p.seed, r->seconds);
    bool counted = false;
    bool answered = false; /* references: ROUGE-L against them too */
    for (int32_t g = 0; g < r->n_groups; g++) counted |= !isnan(r->groups[g].m[G_RATE_COUNT]);
    for (int32_t g = 0; g < r->n_groups; g++) answered |= !isnan(r->groups[g].m[G_ANS_ROUGEL]);
    terse_buf_printf(&b, "| method | rate | kept (compressor tok) | kept (target tok)%s | BLEU "
                  "| ROUGE-1 | ROUGE-2 | ROUGE-L | METEOR | BERTScore F1 | KL (nats/tok) | EM%s "
                  "| latency (ms) |\n|---|---|---|---|%s---|---|---|---|---|---|---|---|%s---|\n",
                  counted ? " | kept (counting tok)" : "", answered ? " | ROUGE-L (reference)" : "",
                  counted ? "---|" : "", answered ? "---|" : "");
    for (int32_t g = 0; g < r->n_groups; g++) {
        const rep_group *gr = &r->groups[g];
        terse_buf_printf(&b, "| %s | %.2f", ev_method_name(gr->method), gr->rate);
        md_num(&b, gr->m[G_RATE_MODEL], "%.3f");
        md_num(&b, gr->m[G_RATE_TARGET], "%.3f");
        if (counted) md_num(&b, gr->m[G_RATE_COUNT], "%.3f");
        md_num(&b, gr->m[G_BLEU], "%.1f");
        md_num(&b, gr->m[G_ROUGE1], "%.3f");
        md_num(&b, gr->m[G_ROUGE2], "%.3f");
        md_num(&b, gr->m[G_ROUGEL], "%.3f");
        md_num(&b, gr->m[G_METEOR], "%.3f");
        md_num(&b, gr->m[G_BERT], "%.3f");
        md_num(&b, gr->m[G_KL], "%.3f");
        md_num(&b, gr->m[G_EM], "%.3f");
        if (answered) md_num(&b, gr->m[G_ANS_ROUGEL], "%.3f");
        md_num(&b, gr->m[G_LATENCY] * 1e3, "%.1f");
        terse_buf_puts(&b, " |\n");
    }
    for (int32_t i = 0; i < r->n_notes; i++) terse_buf_printf(&b, "%s- %s\n", i ? "" : "\n", r->notes[i]);
    return terse_buf_take(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* SVG                                                                                       */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

static int metric_index(const char *name) {
    if (!strcmp(name, "bertscore") || !strcmp(name, "bert")) return G_BERT;
    for (int k = 0; k < G_N; k++)
        if (!strcmp(metric_names[k].key, name)) return k;
    return -1;
}

/* a "nice" tick step for the range */
static double tick_step(double range) {
    double raw = range / 5, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

int terse_report_svg(const terse_report *r, const char *metric, char **out) {
    if (!r || !metric || !out) return terse_err(TERSE_ERR_INVALID, "terse_report_svg: NULL");
    int k = metric_index(metric);
    if (k < 0) return terse_err(TERSE_ERR_INVALID, "unknown metric \"%s\"", metric);
    const double W = 720, H = 440, L = 70, R = 190, T = 40, B = 50;
    double lo = INFINITY, hi = -INFINITY;
    for (int32_t g = 0; g < r->n_groups; g++) {
        double v = r->groups[g].m[k];
        if (isnan(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) lo -= 0.5 * (fabs(lo) > 0 ? fabs(lo) : 1), hi += 0.5 * (fabs(hi) > 0 ? fabs(hi) : 1);
    double step = tick_step(hi - lo);
    lo = floor(lo / step + 1e-9) * step;
    hi = ceil(hi / step - 1e-9) * step;
    double x0 = 0, x1 = 1;
#define PX(x) (L + ((x) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (H - B - ((y) - lo) / (hi - lo) * (H - T - B))
    terse_buf b = {0};
    terse_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    terse_buf_printf(&b, "<text x=\"%.0f\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">", (W - R + L) / 2);
    terse_buf_xml(&b, metric_names[k].title, strlen(metric_names[k].title));
    terse_buf_puts(&b, "</text>\n");
    /* grid and axes */
    for (double y = lo; y <= hi + step * 1e-6; y += step)
        terse_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                      L, PY(y), W - R, PY(y), L - 6, PY(y) + 4, fabs(y) < step * 1e-6 ? 0.0 : y);
    for (double x = 0; x <= 1.0001; x += 0.1)
        terse_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n",
                      PX(x), T, PX(x), H - B, PX(x), H - B + 16, x);
    terse_buf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                  "stroke=\"#333\"/>\n", L, T, W - L - R, H - T - B);
    terse_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">requested rate "
                  "(fraction of tokens kept)</text>\n", (W - R + L) / 2, H - 12);
    /* one series per method */
    int legend = 0;
    for (int32_t mi = -2; mi < r->p.n_methods; mi++) {
        const char *name = mi == -2 ? "full" : mi == -1 ? "none" : r->methods[mi];
        if (mi >= 0 && (!strcmp(name, "full") || !strcmp(name, "none"))) continue;
        /* random-X is drawn dotted in the colour of selective-X when both are there */
        int ci = mi, dotted = 0;
        if (mi >= 0 && !strncmp(name, "random-", 7)) {
            for (int32_t j = 0; j < r->p.n_methods; j++)
                if (!strncmp(r->methods[j], "selective-", 10) && !strcmp(r->methods[j] + 10, name + 7))
                    ci = j, dotted = 1;
        }
        const char *color = mi < 0 ? (mi == -2 ? "#000" : "#777") : palette[ci % 10];
        const char *dash = mi < 0 ? " stroke-dasharray=\"6 4\"" : dotted ? " stroke-dasharray=\"2 3\"" : "";
        terse_buf pts = {0};
        int n = 0;
        double only = NAN;
        for (int32_t g = 0; g < r->n_groups; g++) {
            const rep_group *gr = &r->groups[g];
            if (strcmp(ev_method_name(gr->method), name) || isnan(gr->m[k])) continue;
            only = gr->m[k];
            terse_buf_printf(&pts, "%s%.1f,%.1f", n++ ? " " : "", PX(gr->rate), PY(gr->m[k]));
        }
        if (n == 0) { terse_buf_free(&pts); continue; }
        if (mi < 0) { /* controls: a dashed line across */
            terse_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-dasharray=\"6 4\"/>\n", L, PY(only), W - R, PY(only), color);
        } else {
            terse_buf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                          "points=\"%s\"/>\n", color, dash, pts.s);
            for (int32_t g = 0; g < r->n_groups; g++) {
                const rep_group *gr = &r->groups[g];
                if (strcmp(ev_method_name(gr->method), name) || isnan(gr->m[k])) continue;
                terse_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                              PX(gr->rate), PY(gr->m[k]), color);
            }
        }
        terse_buf_free(&pts);
        double ly = T + 10 + 20 * legend++;
        terse_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%.1f\">", W - R + 12, ly,
                      W - R + 40, ly, color, dash, W - R + 46, ly + 4);
        terse_buf_xml(&b, name, strlen(name));
        terse_buf_puts(&b, "</text>\n");
    }
#undef PX
#undef PY
    terse_buf_puts(&b, "</svg>\n");
    return terse_buf_take(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                     */

static int write_file(const char *dir, const char *name, const char *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return terse_err(TERSE_ERR_IO, "cannot write %s", path);
    size_t n = strlen(s);
    int bad = fwrite(s, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? terse_err(TERSE_ERR_IO, "writing %s failed", path) : TERSE_OK;
}

int terse_report_write(const terse_report *r, const char *dir) {
    if (!r || !dir) return terse_err(TERSE_ERR_INVALID, "terse_report_write: NULL");
    if (mkdir(dir, 0777) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return terse_err(TERSE_ERR_IO, "cannot create directory %s", dir);
    }
    char *s = NULL;
    int rc = terse_report_json(r, &s);
    if (!rc) rc = write_file(dir, "report.json", s);
    free(s);
    if (!rc && !(rc = terse_report_markdown(r, &s))) {
        rc = write_file(dir, "report.md", s);
        free(s);
    }
    static const char *const plots[] = {"bleu", "rouge1", "rouge2", "rougeL", "meteor",
                                        "bertscore", "kl", "exact_match", "rate", "latency"};
    for (size_t i = 0; !rc && i < sizeof plots / sizeof *plots; i++) {
        int k = metric_index(plots[i]);
        bool any = false;
        for (int32_t g = 0; g < r->n_groups && !any; g++) any = !isnan(r->groups[g].m[k]);
        if (!any) continue;
        if ((rc = terse_report_svg(r, plots[i], &s))) break;
        char name[64];
        snprintf(name, sizeof name, "%s.svg", plots[i]);
        rc = write_file(dir, name, s);
        free(s);
    }
    for (int32_t i = 0; !rc && i < r->n_heat; i++) {
        char name[128];
        snprintf(name, sizeof name, "heatmap-%s-%.2f.html", r->heat[i].method, r->heat[i].rate);
        rc = write_file(dir, name, r->heat[i].html);
    }
    return rc;
}
