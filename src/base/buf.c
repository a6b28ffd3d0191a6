/* buf.c - the library's one growable byte string (terse_buf, base.h): appends, printf, hand
 * over, escaped appends (the walk, and XML/HTML text; JSON's is in json.c). An allocation failure is sticky: later appends do nothing, and the first failure is
 * what terse_buf_take (or any later put) returns, so long writers such as the evaluation
 * reports check once at the end. */
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for extra more bytes and the NUL; false (b->err set) when there is none. */
static bool buf_reserve(terse_buf *b, size_t extra) {
    if (b->err) return false;
    size_t need;
    if (!size_add(b->n, extra, &need) || !size_add(need, 1, &need)) {
        b->err = terse_err(TERSE_ERR_NOMEM, "text buffer: too large");
        return false;
    }
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *s = terse_realloc(b->s, cap, "text buffer");
    if (!s) { b->err = TERSE_ERR_NOMEM; return false; }
    b->s = s;
    b->cap = cap;
    return true;
}

int terse_buf_put(terse_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return b->err;
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return TERSE_OK;
}

int terse_buf_puts(terse_buf *b, const char *s) { return terse_buf_put(b, s, strlen(s)); }

int terse_buf_printf(terse_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) {
        if (!b->err) b->err = terse_err(TERSE_ERR_INTERNAL, "text buffer: bad format");
        return b->err;
    }
    if ((size_t)k < sizeof small) return terse_buf_put(b, small, (size_t)k);
    if (!buf_reserve(b, (size_t)k)) return b->err;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
    return TERSE_OK;
}

int terse_buf_take(terse_buf *b, char **out) {
    if (!b->err && !b->s) terse_buf_put(b, "", 0);
    int err = b->err;
    if (err) {
        free(b->s);
        *out = NULL;
    } else {
        *out = b->s;
    }
    memset(b, 0, sizeof *b);
    return err ? terse_err(err, "building text: out of memory") : TERSE_OK;
}

void terse_buf_free(terse_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

int terse_buf_escape(terse_buf *b, const char *s, size_t n, const char *invalid,
                     const char *(*ascii)(uint8_t c, char tmp[8])) {
    const uint8_t *u = (const uint8_t *)s;
    char tmp[8];
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = u[i] < 0x80 ? 1 : terse_utf8_decode(u + i, n - i, &cp);
        const char *e = k == 0 ? invalid : k == 1 ? ascii(u[i], tmp) : NULL;
        if (e) terse_buf_puts(b, e);
        else terse_buf_put(b, s + i, (size_t)(k ? k : 1));
        i += (size_t)(k ? k : 1);
    }
    return b->err;
}

static const char *xml_escape(uint8_t c, char tmp[8]) {
    (void)tmp;
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    default: return c < 0x20 && c != '\n' && c != '\t' && c != '\r' ? "&#xFFFD;" : NULL;
    }
}

int terse_buf_xml(terse_buf *b, const char *s, size_t n) {
    return terse_buf_escape(b, s, n, "&#xFFFD;", xml_escape);
}

int terse_buf_html_head(terse_buf *b, const char *title, const char *css) {
    terse_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    terse_buf_xml(b, title, strlen(title));
    terse_buf_puts(b, "</title>\n<style>");
    terse_buf_puts(b, css);
    return terse_buf_puts(b, "</style></head><body>\n");
}
