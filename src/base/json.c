/* json.c - the library's one writer of bytes as JSON string values: as a jansson value
 * (terse_result_json, `terse serve`) or appended to a terse_buf (the evaluation report), with
 * the same UTF-8 check (base.h says what each does with bytes JSON cannot hold). */
#include "base.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

json_t *terse_json_bytes(const char *s, size_t n) {
    char *buf = malloc(3 * n + 1);
    if (!buf) return json_null();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        int l = terse_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (l <= 0 || cp == 0) {
            if (cp == 0 && l == 1) buf[k++] = ' '; /* NUL cannot be in a jansson string */
            else { memcpy(buf + k, "\xef\xbf\xbd", 3); k += 3; }
            i += 1;
        } else {
            memcpy(buf + k, s + i, (size_t)l);
            k += (size_t)l;
            i += (size_t)l;
        }
    }
    json_t *v = json_stringn(buf, k);
    free(buf);
    return v ? v : json_null();
}

int terse_buf_json(terse_buf *b, const char *s, size_t n) {
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint8_t c = u[i];
        if (c >= 0x80) {
            uint32_t cp;
            int k = terse_utf8_decode(u + i, n - i, &cp);
            if (k == 0) { terse_buf_puts(b, "\\ufffd"); i++; }
            else { terse_buf_put(b, s + i, (size_t)k); i += (size_t)k; }
            continue;
        }
        switch (c) {
        case '"': terse_buf_puts(b, "\\\""); break;
        case '\\': terse_buf_puts(b, "\\\\"); break;
        case '\n': terse_buf_puts(b, "\\n"); break;
        case '\t': terse_buf_puts(b, "\\t"); break;
        case '\r': terse_buf_puts(b, "\\r"); break;
        default:
            if (c < 0x20) terse_buf_printf(b, "\\u%04x", c);
            else terse_buf_put(b, s + i, 1);
        }
        i++;
    }
    return b->err;
}
