/* heatmap.c - the token heatmap of a compression result as one self-contained HTML page:
 * every token of the prompt in its original bytes, its surprisal as a background colour
 * (pale yellow = predictable to deep red = surprising, capped at 15 nats), dropped tokens
 * struck through, protected and kept-whole tokens marked, a legend, and the output below.
 * It needs the result's per-token detail (return_tokens). It writes no file: callers do. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* ---------------------------------------------------------------------------------------- */
/* The page                                                                                  */

static void html_escape(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<') fputs("&lt;", f);
        else if (c == '>') fputs("&gt;", f);
        else if (c == '&') fputs("&amp;", f);
        else if (c == '"') fputs("&quot;", f);
        else if (c == 0) fputs("\xef\xbf\xbd", f);
        else fputc(c, f);
    }
}

/* Colour of a surprisal (nats): pale yellow (predictable) to deep red (surprising). */
static void heat(double s, double smax, int *h, int *l) {
    double x = isnan(s) ? 0.0 : s / smax;
    if (x < 0) x = 0;
    if (x > 1) x = 1;
    *h = (int)lround(55.0 * (1.0 - x));
    *l = (int)lround(92.0 - 42.0 * x);
}

int terse_result_html(const terse_result *r, const char *title, char **out) {
    if (!r || !out) return terse_err(TERSE_ERR_INVALID, "terse_result_html: NULL argument");
    *out = NULL;
    if (!title) title = "terse compress";
    char *buf = NULL;
    size_t buf_len = 0;
    FILE *f = open_memstream(&buf, &buf_len);
    if (!f) return terse_err(TERSE_ERR_NOMEM, "heatmap: cannot open a memory stream");
    const terse_token_info *tk;
    int64_t n = terse_result_tokens(r, &tk);
    size_t slen;
    const char *src = terse_result_source(r, &slen);
    terse_compress_stats st;
    terse_result_get_stats(r, &st);
    double smax = 1e-9;
    for (int64_t t = 0; t < n; t++)
        if (!isnan(tk[t].score) && tk[t].score > smax) smax = tk[t].score;
    if (smax > 15) smax = 15;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    html_escape(f, title, strlen(title));
    fputs("</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
          ".t{white-space:pre-wrap;font-family:monospace;line-height:1.6}"
          ".t span{border-radius:2px}.d{color:#999;text-decoration:line-through}"
          ".x{outline:1px solid #36c}.f{color:#036}"
          ".lg span{display:inline-block;width:2.2em;text-align:center;font-size:small}</style>"
          "</head><body>\n<h1>", f);
    html_escape(f, title, strlen(title));
    fputs("</h1>\n<p>", f);
    fprintf(f, "%lld &rarr; %lld tokens (rate %.1f%%, target %lld). ", (long long)st.origin_tokens,
            (long long)st.compressed_tokens, st.rate * 100.0, (long long)st.target_tokens);
    const char *w = terse_result_warning(r);
    if (*w) { fputs("<b>Warning:</b> ", f); html_escape(f, w, strlen(w)); }
    fputs("</p>\n<p class=\"lg\">Surprisal (nats): ", f);
    for (int k = 0; k <= 5; k++) {
        int h, l;
        double s = smax * k / 5.0;
        heat(s, smax, &h, &l);
        fprintf(f, "<span style=\"background:hsl(%d,100%%,%d%%)\">%.1f</span>", h, l, s);
    }
    fputs(" &nbsp; <span class=\"d\">dropped</span> &nbsp; <span class=\"x\">protected</span>"
          " &nbsp; <span class=\"f\">kept whole (instruction, question, compress=False)</span>"
          " &nbsp; hover a token for its score</p>\n<div class=\"t\">", f);
    for (int64_t t = 0; t < n; t++) {
        int h, l;
        heat(tk[t].score, smax, &h, &l);
        const char *cls = !(tk[t].flags & TERSE_TOKEN_KEPT) ? "d"
                          : (tk[t].flags & TERSE_TOKEN_PROTECTED) ? "x"
                          : (tk[t].flags & TERSE_TOKEN_FIXED) ? "f" : "";
        if (isnan(tk[t].score)) fprintf(f, "<span class=\"%s\" title=\"not scored\">", cls);
        else fprintf(f, "<span class=\"%s\" style=\"background:hsl(%d,100%%,%d%%)\" title=\"%.2f\">", cls,
                     h, l, tk[t].score);
        html_escape(f, src + tk[t].span.begin, (size_t)(tk[t].span.end - tk[t].span.begin));
        fputs("</span>", f);
    }
    fputs("</div>\n<h2>Output</h2>\n<div class=\"t\">", f);
    size_t olen;
    const char *o = terse_result_text(r, &olen);
    html_escape(f, o, olen);
    fputs("</div>\n</body></html>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad || !buf) {
        free(buf);
        return terse_err(TERSE_ERR_NOMEM, "heatmap: out of memory writing %zu bytes", buf_len);
    }
    *out = buf;
    return TERSE_OK;
}
