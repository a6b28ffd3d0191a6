/* heatmap.c - the token heatmap of a compression result as one self-contained HTML page:
 * every token of the prompt in its original bytes, its surprisal as a background colour
 * (pale yellow = predictable to deep red = surprising, capped at 15 nats), dropped tokens
 * struck through, protected and kept-whole tokens marked, a legend, and the output below.
 * It needs the result's per-token detail (return_tokens). It writes no file: callers do. */
#include <math.h>
#include <string.h>

#include "base/base.h"

/* ---------------------------------------------------------------------------------------- */
/* The page                                                                                  */

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
    terse_buf b = {0};
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
    terse_buf_html_head(&b, title, "body{font-family:sans-serif;margin:2em;max-width:60em}"
                        ".t{white-space:pre-wrap;font-family:monospace;line-height:1.6}"
                        ".t span{border-radius:2px}.d{color:#999;text-decoration:line-through}"
                        ".x{outline:1px solid #36c}.f{color:#036}"
                        ".lg span{display:inline-block;width:2.2em;text-align:center;font-size:small}");
    terse_buf_puts(&b, "<h1>");
    terse_buf_xml(&b, title, strlen(title));
    terse_buf_puts(&b, "</h1>\n<p>");
    terse_buf_printf(&b, "%lld &rarr; %lld tokens (rate %.1f%%, target %lld). ", (long long)st.origin_tokens,
                     (long long)st.compressed_tokens, st.rate * 100.0, (long long)st.target_tokens);
    const char *w = terse_result_warning(r);
    if (*w) { terse_buf_puts(&b, "<b>Warning:</b> "); terse_buf_xml(&b, w, strlen(w)); }
    terse_buf_puts(&b, "</p>\n<p class=\"lg\">Surprisal (nats): ");
    for (int k = 0; k <= 5; k++) {
        int h, l;
        double s = smax * k / 5.0;
        heat(s, smax, &h, &l);
        terse_buf_printf(&b, "<span style=\"background:hsl(%d,100%%,%d%%)\">%.1f</span>", h, l, s);
    }
    terse_buf_puts(&b, " &nbsp; <span class=\"d\">dropped</span> &nbsp; <span class=\"x\">protected</span>"
                   " &nbsp; <span class=\"f\">kept whole (instruction, question, compress=False)</span>"
                   " &nbsp; hover a token for its score</p>\n<div class=\"t\">");
    for (int64_t t = 0; t < n; t++) {
        int h, l;
        heat(tk[t].score, smax, &h, &l);
        const char *cls = !(tk[t].flags & TERSE_TOKEN_KEPT) ? "d"
                          : (tk[t].flags & TERSE_TOKEN_PROTECTED) ? "x"
                          : (tk[t].flags & TERSE_TOKEN_FIXED) ? "f" : "";
        if (isnan(tk[t].score)) terse_buf_printf(&b, "<span class=\"%s\" title=\"not scored\">", cls);
        else terse_buf_printf(&b, "<span class=\"%s\" style=\"background:hsl(%d,100%%,%d%%)\" "
                              "title=\"%.2f\">", cls, h, l, tk[t].score);
        terse_buf_xml(&b, src + tk[t].span.begin, (size_t)(tk[t].span.end - tk[t].span.begin));
        terse_buf_puts(&b, "</span>");
    }
    terse_buf_puts(&b, "</div>\n<h2>Output</h2>\n<div class=\"t\">");
    size_t olen;
    const char *o = terse_result_text(r, &olen);
    terse_buf_xml(&b, o, olen);
    terse_buf_puts(&b, "</div>\n</body></html>\n");
    return terse_buf_take(&b, out);
}
