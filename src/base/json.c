/* json.c - the library's one writer of bytes as a JSON string value (jansson), shared by
 * terse_result_json and `terse serve`: JSON strings must be valid UTF-8 without NUL, the bytes
 * (a prompt, a token's piece) need not be. */
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
