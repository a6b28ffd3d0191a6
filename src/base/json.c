/* json.c - the library's one writer of bytes as JSON string values: as a jansson value
 * (terse_result_json, `terse serve`) or appended to a terse_buf (the evaluation report), with
 * the same UTF-8 check (base.h says what each does with bytes JSON cannot hold). */
#include "base.h"

#include <jansson.h>
#include <stdio.h>
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

static const char *json_escape(uint8_t c, char tmp[8]) {
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\t': return "\\t";
    case '\r': return "\\r";
    default:
        if (c >= 0x20) return NULL;
        snprintf(tmp, 8, "\\u%04x", c);
        return tmp;
    }
}

int terse_buf_json(terse_buf *b, const char *s, size_t n) {
    return terse_buf_escape(b, s, n, "\\ufffd", json_escape);
}
