/* base.c - errors, checked allocation, file mapping, half floats, UTF-8, clocks.
 * Nothing here knows about models or text; it only keeps the rest honest. */
#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                    */

static _Thread_local char err_msg[1024];

const char *terse_status_str(int status) {
    switch (status) {
    case TERSE_OK: return "ok";
    case TERSE_ERR_IO: return "i/o error";
    case TERSE_ERR_FORMAT: return "corrupt or invalid file";
    case TERSE_ERR_NOMEM: return "out of memory";
    case TERSE_ERR_INVALID: return "invalid argument";
    case TERSE_ERR_RANGE: return "out of range";
    case TERSE_ERR_UNSUPPORTED: return "unsupported";
    case TERSE_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

const char *terse_last_error(void) { return err_msg; }

void terse_err_clear(void) { err_msg[0] = 0; }

int terse_err(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return status;
}

int terse_err_wrap(int status, const char *fmt, ...) {
    char prefix[512], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    snprintf(err_msg, sizeof err_msg, "%s: %s", prefix, old);
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation                                                                                */

void *terse_malloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) terse_err(TERSE_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *terse_calloc(size_t count, size_t size, const char *what) {
    size_t n;
    if (!size_mul(count, size, &n)) {
        terse_err(TERSE_ERR_NOMEM, "size overflow allocating %zu x %zu for %s", count, size, what);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) terse_err(TERSE_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *terse_realloc(void *p, size_t n, const char *what) {
    void *q = realloc(p, n ? n : 1);
    if (!q) terse_err(TERSE_ERR_NOMEM, "out of memory growing %s to %zu bytes", what, n);
    return q;
}

void *terse_reallocarray(void *p, size_t count, size_t size, const char *what) {
    size_t n;
    if (!size_mul(count, size, &n)) {
        terse_err(TERSE_ERR_NOMEM, "size overflow growing %s to %zu x %zu", what, count, size);
        return NULL;
    }
    return terse_realloc(p, n, what);
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                     */

int terse_file_open(const char *path, int use_mmap, terse_file *f) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return terse_err(TERSE_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return terse_err(TERSE_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        f->data = (const uint8_t *)"";
        f->size = 0;
        f->mapped = 2; /* nothing to release */
        return TERSE_OK;
    }
    if (use_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            f->data = p;
            f->size = size;
            f->mapped = 1;
            return TERSE_OK;
        }
    }
    uint8_t *buf = terse_malloc(size, path);
    if (!buf) {
        close(fd);
        return TERSE_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            return terse_err(TERSE_ERR_IO, "short read on '%s' at byte %zu", path, got);
        }
        got += (size_t)r;
    }
    close(fd);
    f->data = buf;
    f->size = size;
    f->mapped = 0;
    return TERSE_OK;
}

void terse_file_close(terse_file *f) {
    if (!f || !f->data) return;
    if (f->mapped == 1) munmap((void *)f->data, f->size);
    else if (f->mapped == 0) free((void *)f->data);
    memset(f, 0, sizeof *f);
}

int terse_read_all(const char *path, char **out, size_t *len) {
    terse_file f;
    int rc = terse_file_open(path, 0, &f);
    if (rc) return rc;
    char *s = terse_malloc(f.size + 1, path);
    if (!s) {
        terse_file_close(&f);
        return TERSE_ERR_NOMEM;
    }
    memcpy(s, f.data, f.size);
    s[f.size] = 0;
    *out = s;
    if (len) *len = f.size;
    terse_file_close(&f);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Half precision                                                                            */

float terse_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t terse_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent: ok */
    return (uint16_t)(sign | half);
}

uint16_t terse_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8                                                                                     */

int terse_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) { len = 2; v = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { len = 3; v = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

int terse_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---------------------------------------------------------------------------------------- */
/* Threads and time                                                                          */

int terse_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double terse_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
