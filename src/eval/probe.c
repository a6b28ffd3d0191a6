/* probe.c - the reconstruction probe of conditioning contexts (Wingate et al. 2022, section
 * "reconstruction"; reference/selective_context_gist_cc.md 3.4): how much of a prompt's text a
 * soft prompt (or a hard compression) still holds, read from the model's ability to repeat it.
 *
 * The text x is tokenized alone (no BOS), R = "\nNow repeat the text:\n" alone; each row
 * scores log p(x_i | prefix, R, x_<i) with one forward pass of R + x after the prefix:
 *   none:  BOS                 (normalised 0)
 *   hard:  BOS + x             (normalised 1)
 *   row:   BOS + soft vectors, or BOS + a text's tokens
 * Normalised per token in probability space, (p_row - p_none) / (p_hard - p_none), and in log
 * space, (lp_row - lp_none) / (lp_hard - lp_none). A row's mean clamps the values to [0, 1]
 * and averages them over the tokens where the hard prompt makes a difference (|p_hard -
 * p_none| > 1e-3, |lp_hard - lp_none| > 1e-3 nats); the other tokens show grey in the page.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

#define PROBE_EPS 1e-3

static const char probe_repeat[] = "\nNow repeat the text:\n";

typedef struct {
    char *label;
    float *lp, *np, *nl;            /* (n) log-prob, normalised prob, normalised log */
    double mean_p, mean_l;
} probe_row;

struct terse_probe {
    char *text;
    size_t len;
    int32_t n, nr;                  /* text tokens, R tokens */
    int32_t *x, *r;
    terse_span *spans;
    float *lp_none, *lp_hard;
    probe_row *rows;
    int32_t n_rows;
};

void terse_probe_free(terse_probe *p) {
    if (!p) return;
    for (int32_t i = 0; i < p->n_rows; i++) {
        free(p->rows[i].label);
        free(p->rows[i].lp);
        free(p->rows[i].np);
        free(p->rows[i].nl);
    }
    free(p->rows);
    free(p->text);
    free(p->x);
    free(p->r);
    free(p->spans);
    free(p->lp_none);
    free(p->lp_hard);
    free(p);
}

static int tok(const terse_vocab *v, const char *s, size_t len, int32_t **ids, terse_span **spans,
               int32_t *n) {
    int64_t k = terse_tokenize(v, s, len, 0, NULL, NULL, 0);
    if (k < 0) return (int)k;
    if (k > INT32_MAX / 4) return terse_err(TERSE_ERR_RANGE, "probe: text of %lld tokens", (long long)k);
    *ids = terse_malloc((size_t)(k + 1) * sizeof **ids, "probe ids");
    if (spans) *spans = terse_malloc((size_t)(k + 1) * sizeof **spans, "probe spans");
    if (!*ids || (spans && !*spans)) return TERSE_ERR_NOMEM;
    k = terse_tokenize(v, s, len, 0, *ids, spans ? *spans : NULL, k + 1);
    if (k < 0) return (int)k;
    *n = (int32_t)k;
    return TERSE_OK;
}

/* The cache holds a prefix: score R + x after it into lp (n). */
static int score_after(terse_probe *p, terse_ctx *c, float *lp) {
    int32_t m = p->nr + p->n - 1;
    if (terse_kv_len(c) + m > terse_ctx_n_ctx(c))
        return terse_err(TERSE_ERR_RANGE, "probe: prefix (%d) + repeat instruction (%d) + text (%d) "
                         "exceed the context of %d", terse_kv_len(c), p->nr, p->n, terse_ctx_n_ctx(c));
    int32_t *in = terse_malloc((size_t)m * sizeof *in, "probe batch");
    int32_t *tg = terse_malloc((size_t)m * sizeof *tg, "probe targets");
    float *all = terse_malloc((size_t)m * sizeof *all, "probe log-probs");
    int rc = in && tg && all ? TERSE_OK : TERSE_ERR_NOMEM;
    if (!rc) {
        memcpy(in, p->r, (size_t)p->nr * sizeof *in);
        memcpy(in + p->nr, p->x, (size_t)(p->n - 1) * sizeof *in);
        memcpy(tg, p->r + 1, (size_t)(p->nr - 1) * sizeof *tg);
        memcpy(tg + p->nr - 1, p->x, (size_t)p->n * sizeof *tg);
        terse_batch b = {.n = m, .ids = in};
        rc = terse_eval(c, &b);
    }
    if (!rc) rc = terse_eval_logprobs(c, tg, m, all);
    if (!rc) memcpy(lp, all + p->nr - 1, (size_t)p->n * sizeof *lp);
    free(in);
    free(tg);
    free(all);
    return rc;
}

/* BOS + ids[0..n) into the cleared cache */
static int text_prefix(terse_ctx *c, const int32_t *ids, int32_t n) {
    terse_kv_clear(c);
    int32_t bos = terse_vocab_bos(terse_model_vocab(terse_ctx_model(c)));
    int rc = TERSE_OK;
    if (bos >= 0) {
        terse_batch b = {.n = 1, .ids = &bos};
        rc = terse_eval(c, &b);
    }
    if (!rc && n > 0) {
        if (terse_kv_len(c) + n > terse_ctx_n_ctx(c))
            return terse_err(TERSE_ERR_RANGE, "probe: prefix of %d tokens exceeds the context of %d",
                             n, terse_ctx_n_ctx(c));
        terse_batch b = {.n = n, .ids = ids};
        rc = terse_eval(c, &b);
    }
    if (!rc && terse_kv_len(c) == 0)
        rc = terse_err(TERSE_ERR_INVALID, "probe: the vocabulary has no BOS and the prefix is empty");
    return rc;
}

int terse_probe_new(terse_ctx *c, const char *text, size_t len, terse_probe **out) {
    if (!c || !out || (!text && len)) return terse_err(TERSE_ERR_INVALID, "terse_probe_new: NULL argument");
    *out = NULL;
    const terse_vocab *v = terse_model_vocab(terse_ctx_model(c));
    if (!v) return terse_err(TERSE_ERR_INVALID, "probe: the model has no vocabulary");
    terse_probe *p = terse_calloc(1, sizeof *p, "probe");
    if (!p) return TERSE_ERR_NOMEM;
    int rc = TERSE_OK;
    p->text = terse_malloc(len + 1, "probe text");
    if (!p->text) rc = TERSE_ERR_NOMEM;
    if (!rc) {
        if (len) memcpy(p->text, text, len);
        p->text[len] = 0;
        p->len = len;
        rc = tok(v, text ? text : "", len, &p->x, &p->spans, &p->n);
    }
    if (!rc && p->n < 1) rc = terse_err(TERSE_ERR_INVALID, "probe: empty text");
    if (!rc) rc = tok(v, probe_repeat, strlen(probe_repeat), &p->r, NULL, &p->nr);
    if (!rc) {
        p->lp_none = terse_malloc((size_t)p->n * sizeof *p->lp_none, "probe row");
        p->lp_hard = terse_malloc((size_t)p->n * sizeof *p->lp_hard, "probe row");
        if (!p->lp_none || !p->lp_hard) rc = TERSE_ERR_NOMEM;
    }
    if (!rc) rc = text_prefix(c, NULL, 0);
    if (!rc) rc = score_after(p, c, p->lp_none);
    if (!rc) rc = text_prefix(c, p->x, p->n);
    if (!rc) rc = score_after(p, c, p->lp_hard);
    if (rc) { terse_probe_free(p); return rc; }
    *out = p;
    return TERSE_OK;
}

int terse_probe_add(terse_probe *p, terse_ctx *c, const char *label, const terse_soft *soft,
                    const char *prefix, size_t prefix_len) {
    if (!p || !c || (!soft && !prefix && prefix_len))
        return terse_err(TERSE_ERR_INVALID, "terse_probe_add: NULL argument");
    const terse_vocab *v = terse_model_vocab(terse_ctx_model(c));
    if (!v) return terse_err(TERSE_ERR_INVALID, "probe: the model has no vocabulary");
    probe_row *nr = terse_reallocarray(p->rows, (size_t)p->n_rows + 1, sizeof *nr, "probe rows");
    if (!nr) return TERSE_ERR_NOMEM;
    p->rows = nr;
    probe_row *r = &p->rows[p->n_rows];
    memset(r, 0, sizeof *r);
    const char *lb = label ? label : "";
    r->label = terse_malloc(strlen(lb) + 1, "probe label");
    r->lp = terse_malloc((size_t)p->n * sizeof *r->lp, "probe row");
    r->np = terse_malloc((size_t)p->n * sizeof *r->np, "probe row");
    r->nl = terse_malloc((size_t)p->n * sizeof *r->nl, "probe row");
    int rc = r->label && r->lp && r->np && r->nl ? TERSE_OK : TERSE_ERR_NOMEM;
    if (!rc) strcpy(r->label, lb);
    if (!rc && soft) {
        rc = terse_soft_prefix(c, soft);
        if (rc > 0) rc = TERSE_OK;
    } else if (!rc) {
        int32_t *ids = NULL, n = 0;
        rc = tok(v, prefix ? prefix : "", prefix_len, &ids, NULL, &n);
        if (!rc) rc = text_prefix(c, ids, n);
        free(ids);
    }
    if (!rc) rc = score_after(p, c, r->lp);
    if (rc) {
        free(r->label);
        free(r->lp);
        free(r->np);
        free(r->nl);
        return rc;
    }
    double sp = 0, sl = 0;
    int64_t kp = 0, kl = 0;
    for (int32_t i = 0; i < p->n; i++) {
        double ln = p->lp_none[i], lh = p->lp_hard[i], lr = r->lp[i];
        double dp = exp(lh) - exp(ln), dl = lh - ln;
        r->np[i] = fabs(dp) > PROBE_EPS ? (float)((exp(lr) - exp(ln)) / dp) : NAN;
        r->nl[i] = fabs(dl) > PROBE_EPS ? (float)((lr - ln) / dl) : NAN;
        if (!isnan(r->np[i])) sp += fmin(1, fmax(0, r->np[i])), kp++;
        if (!isnan(r->nl[i])) sl += fmin(1, fmax(0, r->nl[i])), kl++;
    }
    r->mean_p = kp ? sp / (double)kp : NAN;
    r->mean_l = kl ? sl / (double)kl : NAN;
    p->n_rows++;
    return TERSE_OK;
}

int32_t terse_probe_rows(const terse_probe *p) { return p ? p->n_rows : 0; }

int terse_probe_row(const terse_probe *p, int32_t r, const char **label, double *mean_prob,
                    double *mean_log, const float **norm_prob, const float **norm_log) {
    if (!p || r < 0 || r >= p->n_rows)
        return terse_err(TERSE_ERR_INVALID, "terse_probe_row: row %d of %d", r, p ? p->n_rows : 0);
    const probe_row *x = &p->rows[r];
    if (label) *label = x->label;
    if (mean_prob) *mean_prob = x->mean_p;
    if (mean_log) *mean_log = x->mean_l;
    if (norm_prob) *norm_prob = x->np;
    if (norm_log) *norm_log = x->nl;
    return TERSE_OK;
}

int32_t terse_probe_tokens(const terse_probe *p, const terse_span **spans) {
    if (spans) *spans = p ? p->spans : NULL;
    return p ? p->n : 0;
}

/* viridis at t in [0, 1] (5 stops, linear between them) */
static void viridis(double t, int rgb[3]) {
    static const int stops[5][3] = {
        {0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};
    t = fmin(1, fmax(0, t)) * 4;
    int k = t >= 4 ? 3 : (int)t;
    double f = t - k;
    for (int j = 0; j < 3; j++) rgb[j] = (int)lround(stops[k][j] + f * (stops[k + 1][j] - stops[k][j]));
}

int terse_probe_html(const terse_probe *p, const char *title, int log_space, char **out) {
    if (!p || !out) return terse_err(TERSE_ERR_INVALID, "terse_probe_html: NULL argument");
    terse_buf b = {0};
    const char *t = title ? title : "reconstruction probe";
    terse_buf_html_head(&b, t, "body{font-family:sans-serif;margin:1.5em;max-width:80em}"
                        "table{border-collapse:collapse}td,th{padding:.3em .6em;vertical-align:top}"
                        "th{text-align:left;white-space:nowrap}.row td.t{font-family:monospace;"
                        "font-size:12px;line-height:1.9}.t span{padding:1px 0;white-space:pre-wrap}"
                        ".legend span{display:inline-block;width:2.2em;text-align:center;"
                        "font-size:11px}");
    terse_buf_puts(&b, "<h2>");
    terse_buf_xml(&b, t, strlen(t));
    terse_buf_printf(&b, "</h2>\n<p>Each token of the text scored after <code>prefix + \"Now repeat "
                  "the text:\"</code>, normalised per token between no prompt (0, purple) and the "
                  "full prompt (1, yellow) in %s space; grey: the full prompt does not change the "
                  "token's %s. Mean: the clamped values averaged over the coloured tokens.</p>\n",
                  log_space ? "log-probability" : "probability", log_space ? "log-probability" : "probability");
    terse_buf_puts(&b, "<p class=\"legend\">");
    for (int i = 0; i <= 10; i++) {
        int c[3];
        viridis(i / 10.0, c);
        terse_buf_printf(&b, "<span style=\"background:#%02x%02x%02x;color:%s\">%.1f</span>", c[0],
                      c[1], c[2], i < 6 ? "#fff" : "#000", i / 10.0);
    }
    terse_buf_puts(&b, "</p>\n<table>\n<tr><th>prefix</th><th>mean (prob)</th><th>mean (log)</th>"
                    "<th>text</th></tr>\n");
    for (int32_t r = 0; r < p->n_rows; r++) {
        const probe_row *x = &p->rows[r];
        const float *v = log_space ? x->nl : x->np;
        terse_buf_puts(&b, "<tr class=\"row\"><th>");
        terse_buf_xml(&b, x->label, strlen(x->label));
        terse_buf_printf(&b, "</th><td>%.3f</td><td>%.3f</td><td class=\"t\">", x->mean_p, x->mean_l);
        for (int32_t i = 0; i < p->n; i++) {
            const terse_span *s = &p->spans[i];
            if (isnan(v[i])) {
                terse_buf_puts(&b, "<span style=\"background:#ddd\" title=\"-\">");
            } else {
                int c[3];
                viridis(v[i], c);
                terse_buf_printf(&b, "<span style=\"background:#%02x%02x%02x;color:%s\" title=\"%.3f\">",
                              c[0], c[1], c[2], v[i] < 0.55 ? "#fff" : "#000", (double)v[i]);
            }
            terse_buf_xml(&b, p->text + s->begin, (size_t)(s->end - s->begin));
            terse_buf_puts(&b, "</span>");
        }
        terse_buf_puts(&b, "</td></tr>\n");
    }
    terse_buf_puts(&b, "</table>\n</body></html>\n");
    return terse_buf_take(&b, out);
}
