/* base.h - what every layer of terse stands on: errors, checked sizes, file mapping,
 * half-precision conversion, UTF-8 decoding. Internal header (not API).
 *
 * Errors: library code reports with terse_err(status, fmt, ...), which records a message in a
 * thread-local buffer and returns the status, so a failing path reads
 *     return terse_err(TERSE_ERR_FORMAT, "gguf: tensor '%s': offset %llu past end", ...);
 */
#ifndef TERSE_BASE_H
#define TERSE_BASE_H

#include "terse.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define TERSE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TERSE_PRINTF(a, b)
#endif

/* Record a message for terse_last_error() and return status (negative). */
int terse_err(int status, const char *fmt, ...) TERSE_PRINTF(2, 3);
/* Prefix the current message with "context: " (for callers adding where it happened). */
int terse_err_wrap(int status, const char *fmt, ...) TERSE_PRINTF(2, 3);
void terse_err_clear(void);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
static inline bool size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b;
    return true;
}

/* malloc/calloc/realloc that record TERSE_ERR_NOMEM with what was asked for; NULL on failure. */
void *terse_malloc(size_t n, const char *what);
void *terse_calloc(size_t count, size_t size, const char *what);
void *terse_realloc(void *p, size_t n, const char *what);
/* realloc to count*size with overflow check */
void *terse_reallocarray(void *p, size_t count, size_t size, const char *what);

/* A read-only view of a whole file: mmap'ed when possible, else read into memory. */
typedef struct {
    const uint8_t *data;
    size_t size;
    int mapped;        /* 1: munmap on close, 0: free on close */
} terse_file;

int  terse_file_open(const char *path, int use_mmap, terse_file *f);
void terse_file_close(terse_file *f);
/* Read a whole file into a NUL-terminated malloc'ed buffer. */
int  terse_read_all(const char *path, char **out, size_t *len);

/* Half precision. */
float    terse_f16_to_f32(uint16_t h);
uint16_t terse_f32_to_f16(float f);   /* round to nearest even */
static inline float terse_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t terse_f32_to_bf16(float f);  /* round to nearest even, NaN kept */

/* UTF-8: length of the valid sequence starting at s (1..4), or 0 if s[0..n) does not start
 * with a valid, shortest-form, non-surrogate sequence. cp receives the code point. */
int terse_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encode cp (<= 0x10FFFF) into out (4 bytes room); returns the length. */
int terse_utf8_encode(uint32_t cp, char *out);
/* A growable byte string, NUL-terminated after every put (s is NULL before the first; free(s)
 * or terse_buf_free when done) (buf.c). Puts append and return TERSE_OK or the buffer's first
 * failure (TERSE_ERR_NOMEM, message set), which is sticky: after one, puts do nothing, so a
 * long writer may check only terse_buf_take's status. */
typedef struct {
    char *s;
    size_t n, cap;
    int err;        /* first failure, sticky */
} terse_buf;
int terse_buf_put(terse_buf *b, const char *s, size_t n);
int terse_buf_puts(terse_buf *b, const char *s);
int terse_buf_printf(terse_buf *b, const char *fmt, ...) TERSE_PRINTF(2, 3);
/* Hand the string over (*out, malloc'ed, "" when nothing was put) or the failure (*out NULL);
 * b is reset either way. */
int terse_buf_take(terse_buf *b, char **out);
void terse_buf_free(terse_buf *b);
/* Append s[0..n) escaped: each byte that is not part of valid UTF-8 as `invalid`, each ASCII
 * byte c as ascii(c, tmp) (which may write into tmp) or, when that is NULL, as itself; valid
 * multi-byte characters as they are. The walk of terse_buf_json and the reports' XML. */
int terse_buf_escape(terse_buf *b, const char *s, size_t n, const char *invalid,
                     const char *(*ascii)(uint8_t c, char tmp[8]));
/* Append s[0..n) as XML or HTML text, fit for an element or a quoted attribute (buf.c): & < >
 * and " as entities; invalid UTF-8 and control bytes other than newline, tab and CR as
 * &#xFFFD;. The one escaper of every page and chart terse writes (heatmap, reports, probe). */
int terse_buf_xml(terse_buf *b, const char *s, size_t n);
/* The start of a self-contained HTML page, up to and with <body>: doctype, UTF-8, the title
 * (escaped), the style sheet css (as it is) (buf.c). */
int terse_buf_html_head(terse_buf *b, const char *title, const char *css);

/* The library's JSON string writing (json.c); JSON strings must be valid UTF-8 without NUL,
 * the bytes (a prompt, a token's piece, a model's output) need not be.
 * terse_json_bytes: a jansson string value of s[0..n): invalid UTF-8 as U+FFFD, NUL as a
 * space. Never NULL: json_null() when out of memory. Internal, not in terse.h.
 * terse_buf_json: s[0..n) appended as a JSON string body (no quotes), for hand-laid JSON:
 * quote, backslash, newline, tab and CR escaped, other control bytes as \u00xx, invalid
 * UTF-8 bytes as \ufffd. */
struct json_t;
struct json_t *terse_json_bytes(const char *s, size_t n);
int terse_buf_json(terse_buf *b, const char *s, size_t n);

/* Number of worker threads to use for n_threads = 0. */
int terse_default_threads(void);

/* Monotonic seconds. */
double terse_now(void);

#endif
