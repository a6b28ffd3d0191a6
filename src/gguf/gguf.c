/* gguf.c - read and validate GGUF v3 files (mmap, zero-copy), and write them.
 *
 * The reader treats the file as hostile: a cursor walks the header and every read is checked
 * against the bytes that remain; counts are checked against what the remaining bytes could
 * possibly hold before anything is allocated; tensor shapes, types, offsets, alignment and
 * overlaps are checked against the data section. Errors name the field and the value.
 * It does not interpret metadata (that is the tokenizer's and the model's business).
 */
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------- */
/* Types                                                                                     */

static const struct {
    const char *name;
    uint32_t block;  /* values per block */
    uint32_t bytes;  /* bytes per block */
} type_info[GGML_MAX_TYPE] = {
    [GGML_F32] = {"F32", 1, 4},       [GGML_F16] = {"F16", 1, 2},
    [GGML_Q4_0] = {"Q4_0", 32, 18},   [GGML_Q4_1] = {"Q4_1", 32, 20},
    [GGML_Q5_0] = {"Q5_0", 32, 22},   [GGML_Q5_1] = {"Q5_1", 32, 24},
    [GGML_Q8_0] = {"Q8_0", 32, 34},   [GGML_Q8_1] = {"Q8_1", 32, 36},
    [GGML_BF16] = {"BF16", 1, 2},
    [GGML_Q2_K] = {"Q2_K", 256, 84},  [GGML_Q3_K] = {"Q3_K", 256, 110},
    [GGML_Q4_K] = {"Q4_K", 256, 144}, [GGML_Q5_K] = {"Q5_K", 256, 176},
    [GGML_Q6_K] = {"Q6_K", 256, 210}, [GGML_Q8_K] = {"Q8_K", 256, 292},
    [GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [GGML_IQ4_NL] = {"IQ4_NL", 32, 18},    [GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [GGML_IQ2_S] = {"IQ2_S", 256, 82},     [GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GGML_I8] = {"I8", 1, 1},   [GGML_I16] = {"I16", 1, 2}, [GGML_I32] = {"I32", 1, 4},
    [GGML_I64] = {"I64", 1, 8}, [GGML_F64] = {"F64", 1, 8}, [GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [GGML_TQ1_0] = {"TQ1_0", 256, 54},     [GGML_TQ2_0] = {"TQ2_0", 256, 66},
};

const char *gguf_type_name(uint32_t type) {
    if (type < GGML_MAX_TYPE && type_info[type].name) return type_info[type].name;
    return "unknown";
}

uint64_t gguf_type_row_bytes(uint32_t type, int64_t ne0) {
    if (type >= GGML_MAX_TYPE || !type_info[type].name || ne0 < 0) return 0;
    if ((uint64_t)ne0 % type_info[type].block) return 0;
    return (uint64_t)ne0 / type_info[type].block * type_info[type].bytes;
}

static const uint32_t value_size[GGUF_NTYPES] = {
    [GGUF_UINT8] = 1, [GGUF_INT8] = 1, [GGUF_UINT16] = 2, [GGUF_INT16] = 2,
    [GGUF_UINT32] = 4, [GGUF_INT32] = 4, [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
    [GGUF_STRING] = 0, [GGUF_ARRAY] = 0, [GGUF_UINT64] = 8, [GGUF_INT64] = 8,
    [GGUF_FLOAT64] = 8,
};

static const char *value_type_name(uint32_t t) {
    static const char *names[GGUF_NTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                              "bool", "string", "array", "u64", "i64", "f64"};
    return t < GGUF_NTYPES ? names[t] : "invalid";
}

int gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading: a bounds-checked cursor                                                          */

typedef struct {
    const uint8_t *p;
    uint64_t pos, size;
    const char *path;
} cursor;

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static int take(cursor *c, void *dst, uint64_t n, const char *what) {
    if (n > remaining(c))
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s at byte %llu runs past end of file "
                         "(needs %llu bytes, %llu left)", c->path, what,
                         (unsigned long long)c->pos, (unsigned long long)n,
                         (unsigned long long)remaining(c));
    if (dst) memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return TERSE_OK;
}

static int take_u32(cursor *c, uint32_t *v, const char *what) { return take(c, v, 4, what); }
static int take_u64(cursor *c, uint64_t *v, const char *what) { return take(c, v, 8, what); }

static int take_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len = 0;
    int rc = take_u64(c, &len, what);
    if (rc) return rc;
    if (len > remaining(c))
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s: string length %llu at byte %llu "
                         "exceeds the %llu bytes left", c->path, what, (unsigned long long)len,
                         (unsigned long long)(c->pos - 8), (unsigned long long)remaining(c));
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += len;
    return TERSE_OK;
}

/* Parse one value of type t (not ARRAY) at the cursor; for arrays of strings, offsets. */
static int parse_kv_value(cursor *c, gguf_kv *kv, const char *key) {
    char what[320];
    snprintf(what, sizeof what, "value of key '%s'", key);
    kv->n = 1;
    kv->data = c->p + c->pos;
    if (kv->type == GGUF_STRING) {
        gguf_str s;
        return take_str(c, &s, what);
    }
    if (kv->type != GGUF_ARRAY) return take(c, NULL, value_size[kv->type], what);

    uint32_t et;
    uint64_t n;
    int rc = take_u32(c, &et, what);
    if (!rc) rc = take_u64(c, &n, what);
    if (rc) return rc;
    if (et >= GGUF_NTYPES || et == GGUF_ARRAY)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': key '%s': invalid array element type %u",
                         c->path, key, et);
    kv->arr_type = et;
    kv->n = n;
    kv->data = c->p + c->pos;
    if (et != GGUF_STRING) {
        uint64_t need;
        if (n > remaining(c) / value_size[et] || (need = n * value_size[et]) > remaining(c))
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': key '%s': array of %llu %s elements "
                             "runs past end of file (%llu bytes left)", c->path, key,
                             (unsigned long long)n, value_type_name(et),
                             (unsigned long long)remaining(c));
        c->pos += need;
        return TERSE_OK;
    }
    /* strings: each takes at least 8 bytes, so n is bounded before we allocate */
    if (n > remaining(c) / 8)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': key '%s': array count %llu cannot fit in "
                         "the %llu bytes left", c->path, key, (unsigned long long)n,
                         (unsigned long long)remaining(c));
    uint64_t *off = terse_calloc(n ? n : 1, sizeof *off, "gguf string array offsets");
    if (!off) return TERSE_ERR_NOMEM;
    uint64_t base = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s;
        off[i] = c->pos - base;
        snprintf(what, sizeof what, "key '%s' element %llu", key, (unsigned long long)i);
        if ((rc = take_str(c, &s, what))) {
            free(off);
            return rc;
        }
    }
    kv->str_off = off;
    return TERSE_OK;
}

gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i) {
    gguf_str s;
    const uint8_t *p = kv->data + kv->str_off[i];
    memcpy(&s.len, p, 8);
    s.ptr = (const char *)p + 8;
    return s;
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int str_same(gguf_str a, gguf_str b) {
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Print a (possibly binary) name safely into buf for messages. */
static const char *printable(gguf_str s, char *buf, size_t cap) {
    size_t j = 0;
    for (uint64_t i = 0; i < s.len && j + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch >= 32 && ch < 127) buf[j++] = (char)ch;
        else j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", ch);
    }
    buf[j] = 0;
    return buf;
}

static int parse(gguf_file *g) {
    cursor c = {g->file.data, 0, g->file.size, g->path};
    char nb[200], nb2[200];
    int rc;
    if (g->file.size < 4 || memcmp(g->file.data, "GGUF", 4) != 0) {
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': bad magic (not a GGUF file)", g->path);
    }
    c.pos = 4;
    if ((rc = take_u32(&c, &g->version, "version"))) return rc;
    if (g->version != 2 && g->version != 3)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': version %u unsupported (want 3)", g->path,
                         g->version);
    if ((rc = take_u64(&c, &g->n_tensors, "tensor count"))) return rc;
    if ((rc = take_u64(&c, &g->n_kv, "metadata count"))) return rc;
    /* a kv takes >= 8 (key len) + 4 (type) + 1 bytes; a tensor info >= 8 + 4 + 8 + 4 + 8 */
    if (g->n_kv > remaining(&c) / 13)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': metadata count %llu cannot fit in a file "
                         "of %llu bytes", g->path, (unsigned long long)g->n_kv,
                         (unsigned long long)g->file.size);
    if (g->n_tensors > remaining(&c) / 32)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor count %llu cannot fit in a file "
                         "of %llu bytes", g->path, (unsigned long long)g->n_tensors,
                         (unsigned long long)g->file.size);

    g->kv = terse_calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv, "gguf metadata");
    if (!g->kv) return TERSE_ERR_NOMEM;
    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        char what[64];
        snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)i);
        if ((rc = take_str(&c, &kv->key, what))) return rc;
        printable(kv->key, nb, sizeof nb);
        if ((rc = take_u32(&c, &kv->type, "metadata type"))) return rc;
        if (kv->type >= GGUF_NTYPES)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': key '%s': invalid value type %u",
                             g->path, nb, kv->type);
        for (uint64_t j = 0; j < i; j++)
            if (str_same(g->kv[j].key, kv->key))
                return terse_err(TERSE_ERR_FORMAT, "gguf '%s': duplicate key '%s'", g->path, nb);
        if ((rc = parse_kv_value(&c, kv, nb))) return rc;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            uint32_t a;
            if (kv->type != GGUF_UINT32)
                return terse_err(TERSE_ERR_FORMAT, "gguf '%s': general.alignment has type %s, "
                                 "want u32", g->path, value_type_name(kv->type));
            memcpy(&a, kv->data, 4);
            if (a == 0 || (a & (a - 1)))
                return terse_err(TERSE_ERR_FORMAT, "gguf '%s': general.alignment %u is not a "
                                 "power of two", g->path, a);
            g->alignment = a;
        }
    }

    g->tensors = terse_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors, "gguf tensors");
    if (!g->tensors) return TERSE_ERR_NOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        char what[64];
        snprintf(what, sizeof what, "tensor %llu name", (unsigned long long)i);
        if ((rc = take_str(&c, &t->name, what))) return rc;
        printable(t->name, nb, sizeof nb);
        for (uint64_t j = 0; j < i; j++)
            if (str_same(g->tensors[j].name, t->name))
                return terse_err(TERSE_ERR_FORMAT, "gguf '%s': duplicate tensor '%s'", g->path, nb);
        if ((rc = take_u32(&c, &t->n_dims, "tensor n_dims"))) return rc;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': n_dims %u not in 1..%d",
                             g->path, nb, t->n_dims, GGUF_MAX_DIMS);
        int64_t nel = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v;
            if ((rc = take_u64(&c, &v, "tensor shape"))) return rc;
            if (v == 0 || v > (uint64_t)INT64_MAX || (uint64_t)nel > (uint64_t)INT64_MAX / v)
                return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': dimension %u = %llu "
                                 "is zero or overflows", g->path, nb, d, (unsigned long long)v);
            t->ne[d] = (int64_t)v;
            nel *= (int64_t)v;
        }
        if ((rc = take_u32(&c, &t->type, "tensor type"))) return rc;
        if (t->type >= GGML_MAX_TYPE || !type_info[t->type].name)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': unknown type %u", g->path,
                             nb, t->type);
        uint64_t row = gguf_type_row_bytes(t->type, t->ne[0]);
        if (row == 0)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': row length %lld is not a "
                             "multiple of the %s block size %u", g->path, nb,
                             (long long)t->ne[0], gguf_type_name(t->type),
                             type_info[t->type].block);
        uint64_t rows = (uint64_t)(nel / t->ne[0]);
        if (rows > UINT64_MAX / row)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': size overflows", g->path, nb);
        t->nbytes = rows * row;
        if ((rc = take_u64(&c, &t->offset, "tensor offset"))) return rc;
        if (t->offset % g->alignment)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': offset %llu is not a "
                             "multiple of the alignment %llu", g->path, nb,
                             (unsigned long long)t->offset, (unsigned long long)g->alignment);
    }

    /* data section starts at the next multiple of the alignment */
    uint64_t start = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if (g->n_tensors > 0 && start > g->file.size)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor data would start at byte %llu, past "
                         "the end of the file (%llu bytes)", g->path, (unsigned long long)start,
                         (unsigned long long)g->file.size);
    g->data_offset = start;
    uint64_t data_size = g->file.size > start ? g->file.size - start : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensor '%s': data [%llu, %llu) lies "
                             "past the end of the data section (%llu bytes)", g->path,
                             printable(t->name, nb, sizeof nb), (unsigned long long)t->offset,
                             (unsigned long long)(t->offset + t->nbytes),
                             (unsigned long long)data_size);
        t->data = g->file.data + start + t->offset;
    }
    /* overlaps: sort a list of pointers by offset and compare neighbours */
    if (g->n_tensors > 1) {
        gguf_tensor **order = terse_calloc(g->n_tensors, sizeof *order, "gguf tensor order");
        if (!order) return TERSE_ERR_NOMEM;
        for (uint64_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
        qsort(order, g->n_tensors, sizeof *order, cmp_by_offset);
        for (uint64_t i = 1; i < g->n_tensors; i++) {
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                terse_err(TERSE_ERR_FORMAT, "gguf '%s': tensors '%s' and '%s' overlap (offsets "
                          "%llu and %llu)", g->path, printable(order[i - 1]->name, nb, sizeof nb),
                          printable(order[i]->name, nb2, sizeof nb2),
                          (unsigned long long)order[i - 1]->offset,
                          (unsigned long long)order[i]->offset);
                free(order);
                return TERSE_ERR_FORMAT;
            }
        }
        free(order);
    }
    return TERSE_OK;
}

static int open_common(gguf_file *g, gguf_file **out) {
    int rc = parse(g);
    if (rc) {
        gguf_close(g);
        *out = NULL;
        return rc;
    }
    *out = g;
    return TERSE_OK;
}

int gguf_open(const char *path, int use_mmap, gguf_file **out) {
    *out = NULL;
    gguf_file *g = terse_calloc(1, sizeof *g, "gguf file");
    if (!g) return TERSE_ERR_NOMEM;
    g->path = strdup(path);
    if (!g->path) {
        free(g);
        return terse_err(TERSE_ERR_NOMEM, "out of memory");
    }
    int rc = terse_file_open(path, use_mmap, &g->file);
    if (rc) {
        free(g->path);
        free(g);
        return rc;
    }
    return open_common(g, out);
}

int gguf_open_memory(const void *buf, size_t len, gguf_file **out) {
    *out = NULL;
    gguf_file *g = terse_calloc(1, sizeof *g, "gguf file");
    if (!g) return TERSE_ERR_NOMEM;
    g->path = strdup("<memory>");
    if (!g->path) {
        free(g);
        return terse_err(TERSE_ERR_NOMEM, "out of memory");
    }
    g->file.data = buf;
    g->file.size = len;
    g->file.mapped = 2; /* caller owns */
    return open_common(g, out);
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free((void *)g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    terse_file_close(&g->file);
    free(g->path);
    free(g);
}

/* ---------------------------------------------------------------------------------------- */
/* Lookups                                                                                   */

int64_t gguf_find(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key)) return (int64_t)i;
    return -1;
}

const gguf_kv *gguf_get(const gguf_file *g, const char *key) {
    int64_t i = gguf_find(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

/* Any integer (or bool) value as int64 range-checked by the caller. */
static int kv_int(const gguf_file *g, const gguf_kv *kv, const char *key, int64_t *v) {
    const uint8_t *p = kv->data;
    switch (kv->type) {
    case GGUF_UINT8: case GGUF_BOOL: *v = p[0]; break;
    case GGUF_INT8: *v = (int8_t)p[0]; break;
    case GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); *v = x; break; }
    case GGUF_INT16: { int16_t x; memcpy(&x, p, 2); *v = x; break; }
    case GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GGUF_INT32: { int32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GGUF_UINT64: {
        uint64_t x;
        memcpy(&x, p, 8);
        if (x > (uint64_t)INT64_MAX)
            return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s = %llu is out of range", g->path,
                             key, (unsigned long long)x);
        *v = (int64_t)x;
        break;
    }
    case GGUF_INT64: memcpy(v, p, 8); break;
    default:
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s has type %s, want an integer", g->path,
                         key, value_type_name(kv->type));
    }
    return TERSE_OK;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) return terse_err(TERSE_ERR_FORMAT, "gguf '%s': missing key %s", g->path, key);
    int64_t v;
    int rc = kv_int(g, kv, key, &v);
    if (rc) return rc;
    if (v < 0 || v > UINT32_MAX)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s = %lld is out of range", g->path, key,
                         (long long)v);
    *out = (uint32_t)v;
    return TERSE_OK;
}

int gguf_get_u32_or(const gguf_file *g, const char *key, uint32_t def, uint32_t *out) {
    if (!gguf_get(g, key)) {
        *out = def;
        return TERSE_OK;
    }
    return gguf_get_u32(g, key, out);
}

int gguf_get_i32_or(const gguf_file *g, const char *key, int32_t def, int32_t *out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) {
        *out = def;
        return TERSE_OK;
    }
    int64_t v;
    int rc = kv_int(g, kv, key, &v);
    if (rc) return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s = %lld is out of range", g->path, key,
                         (long long)v);
    *out = (int32_t)v;
    return TERSE_OK;
}

int gguf_get_f32_or(const gguf_file *g, const char *key, float def, float *out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) {
        *out = def;
        return TERSE_OK;
    }
    if (kv->type == GGUF_FLOAT32) {
        memcpy(out, kv->data, 4);
    } else if (kv->type == GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
    } else {
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s has type %s, want f32", g->path, key,
                         value_type_name(kv->type));
    }
    if (*out != *out)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s is NaN", g->path, key);
    return TERSE_OK;
}

int gguf_get_bool_or(const gguf_file *g, const char *key, int def, int *out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) {
        *out = def;
        return TERSE_OK;
    }
    int64_t v;
    int rc = kv_int(g, kv, key, &v);
    if (rc) return rc;
    *out = v != 0;
    return TERSE_OK;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) return terse_err(TERSE_ERR_FORMAT, "gguf '%s': missing key %s", g->path, key);
    if (kv->type != GGUF_STRING)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s has type %s, want string", g->path, key,
                         value_type_name(kv->type));
    memcpy(&out->len, kv->data, 8);
    out->ptr = (const char *)kv->data + 8;
    return TERSE_OK;
}

int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type, const gguf_kv **out) {
    const gguf_kv *kv = gguf_get(g, key);
    if (!kv) return terse_err(TERSE_ERR_FORMAT, "gguf '%s': missing key %s", g->path, key);
    if (kv->type != GGUF_ARRAY || kv->arr_type != elem_type)
        return terse_err(TERSE_ERR_FORMAT, "gguf '%s': %s has type %s of %s, want array of %s",
                         g->path, key, value_type_name(kv->type),
                         value_type_name(kv->type == GGUF_ARRAY ? kv->arr_type : kv->type),
                         value_type_name(elem_type));
    *out = kv;
    return TERSE_OK;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer                                                                                    */

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
    void *owned;
} wtensor;

struct gguf_writer {
    uint8_t *kv;         /* serialised key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;         /* for duplicate detection */
    wtensor *t;
    uint64_t n_t, cap_t;
    uint32_t alignment;
    int failed;          /* an earlier append ran out of memory */
};

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = terse_calloc(1, sizeof *w, "gguf writer");
    if (w) w->alignment = 32;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    free(w->t);
    free(w->kv);
    free(w);
}

void gguf_writer_set_alignment(gguf_writer *w, uint32_t a) {
    if (a && !(a & (a - 1))) w->alignment = a;
}

static int put(gguf_writer *w, const void *p, size_t n) {
    if (w->failed) return TERSE_ERR_NOMEM;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *q = terse_realloc(w->kv, cap, "gguf writer metadata");
        if (!q) {
            w->failed = 1;
            return TERSE_ERR_NOMEM;
        }
        w->kv = q;
        w->kv_cap = cap;
    }
    if (n) memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return TERSE_OK;
}

static int put_str(gguf_writer *w, const char *s, uint64_t len) {
    int rc = put(w, &len, 8);
    return rc ? rc : put(w, s, len);
}

/* Starts a key: checks duplicates, records it, writes key + type. */
static int begin_kv(gguf_writer *w, const char *key, uint32_t type) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return terse_err(TERSE_ERR_INVALID, "gguf writer: duplicate key %s", key);
    char **k = terse_reallocarray(w->keys, w->n_kv + 1, sizeof *k, "gguf writer keys");
    if (!k) return TERSE_ERR_NOMEM;
    w->keys = k;
    if (!(k[w->n_kv] = strdup(key))) return terse_err(TERSE_ERR_NOMEM, "out of memory");
    w->n_kv++;
    int rc = put_str(w, key, strlen(key));
    return rc ? rc : put(w, &type, 4);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    int rc = begin_kv(w, key, GGUF_UINT32);
    return rc ? rc : put(w, &v, 4);
}
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    int rc = begin_kv(w, key, GGUF_INT32);
    return rc ? rc : put(w, &v, 4);
}
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    int rc = begin_kv(w, key, GGUF_FLOAT32);
    return rc ? rc : put(w, &v, 4);
}
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    int rc = begin_kv(w, key, GGUF_BOOL);
    return rc ? rc : put(w, &b, 1);
}
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    int rc = begin_kv(w, key, GGUF_STRING);
    return rc ? rc : put_str(w, v, strlen(v));
}

static int begin_arr(gguf_writer *w, const char *key, uint32_t et, uint64_t n) {
    int rc = begin_kv(w, key, GGUF_ARRAY);
    if (!rc) rc = put(w, &et, 4);
    if (!rc) rc = put(w, &n, 8);
    return rc;
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                            const uint64_t *lens, uint64_t n) {
    int rc = begin_arr(w, key, GGUF_STRING, n);
    for (uint64_t i = 0; !rc && i < n; i++) rc = put_str(w, v[i], lens ? lens[i] : strlen(v[i]));
    return rc;
}
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    int rc = begin_arr(w, key, GGUF_FLOAT32, n);
    return rc ? rc : put(w, v, n * 4);
}
int gguf_writer_set_arr_u8(gguf_writer *w, const char *key, const uint8_t *v, uint64_t n) {
    int rc = begin_arr(w, key, GGUF_UINT8, n);
    return rc ? rc : put(w, v, n);
}
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    int rc = begin_arr(w, key, GGUF_INT32, n);
    return rc ? rc : put(w, v, n * 4);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    char *key = terse_malloc(kv->key.len + 1, "gguf key");
    if (!key) return TERSE_ERR_NOMEM;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = 0;
    int rc = begin_kv(w, key, kv->type);
    free(key);
    if (rc) return rc;
    if (kv->type == GGUF_STRING) {
        gguf_str s;
        memcpy(&s.len, kv->data, 8);
        return put_str(w, (const char *)kv->data + 8, s.len);
    }
    if (kv->type != GGUF_ARRAY) return put(w, kv->data, value_size[kv->type]);
    uint32_t et = kv->arr_type;
    uint64_t n = kv->n;
    if ((rc = put(w, &et, 4)) || (rc = put(w, &n, 8))) return rc;
    if (et != GGUF_STRING) return put(w, kv->data, n * value_size[et]);
    for (uint64_t i = 0; !rc && i < n; i++) {
        gguf_str s = gguf_arr_str(kv, i);
        rc = put_str(w, s.ptr, s.len);
    }
    return rc;
}

static int add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                      const int64_t *ne, const void *data, uint64_t nbytes, int copy) {
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return terse_err(TERSE_ERR_INVALID, "gguf writer: tensor %s: n_dims %u", name, n_dims);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) return terse_err(TERSE_ERR_INVALID, "gguf writer: tensor %s: dim %u = %lld",
                                         name, d, (long long)ne[d]);
        nel *= (uint64_t)ne[d];
    }
    uint64_t row = gguf_type_row_bytes(type, ne[0]);
    if (!row || nel / (uint64_t)ne[0] * row != nbytes)
        return terse_err(TERSE_ERR_INVALID, "gguf writer: tensor %s: %llu bytes do not match "
                         "type %s and its shape", name, (unsigned long long)nbytes,
                         gguf_type_name(type));
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return terse_err(TERSE_ERR_INVALID, "gguf writer: duplicate tensor %s", name);
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = terse_reallocarray(w->t, cap, sizeof *t, "gguf writer tensors");
        if (!t) return TERSE_ERR_NOMEM;
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return terse_err(TERSE_ERR_NOMEM, "out of memory");
    if (copy) {
        if (!(t->owned = terse_malloc(nbytes, name))) {
            free(t->name);
            return TERSE_ERR_NOMEM;
        }
        memcpy(t->owned, data, nbytes);
        data = t->owned;
    }
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return TERSE_OK;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes) {
    return add_tensor(w, name, type, n_dims, ne, data, nbytes, 0);
}

int gguf_writer_add_tensor_copy(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const int64_t *ne, const void *data, uint64_t nbytes) {
    return add_tensor(w, name, type, n_dims, ne, data, nbytes, 1);
}

static int wr(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n)
        return terse_err(TERSE_ERR_IO, "gguf writer: write to '%s' failed", path);
    return TERSE_OK;
}

static int pad(FILE *f, uint64_t *pos, uint32_t align, const char *path) {
    static const uint8_t zeros[256];
    uint64_t n = (align - *pos % align) % align;
    *pos += n;
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        int rc = wr(f, zeros, k, path);
        if (rc) return rc;
        n -= k;
    }
    return TERSE_OK;
}

int gguf_writer_write(gguf_writer *w, const char *path) {
    if (w->failed) return terse_err(TERSE_ERR_NOMEM, "gguf writer: out of memory earlier");
    /* record a non-default alignment in the metadata, as readers expect */
    int has_align = 0;
    for (uint64_t i = 0; i < w->n_kv; i++) has_align |= strcmp(w->keys[i], "general.alignment") == 0;
    if (w->alignment != 32 && !has_align) {
        int rc = gguf_writer_set_u32(w, "general.alignment", w->alignment);
        if (rc) return rc;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return terse_err(TERSE_ERR_IO, "cannot create '%s'", path);
    uint32_t version = 3;
    uint64_t pos = 0, off = 0;
    int rc = wr(f, "GGUF", 4, path);
    if (!rc) rc = wr(f, &version, 4, path);
    if (!rc) rc = wr(f, &w->n_t, 8, path);
    if (!rc) rc = wr(f, &w->n_kv, 8, path);
    if (!rc) rc = wr(f, w->kv, w->kv_len, path);
    pos = 24 + w->kv_len;
    for (uint64_t i = 0; !rc && i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        uint64_t len = strlen(t->name);
        rc = wr(f, &len, 8, path);
        if (!rc) rc = wr(f, t->name, len, path);
        if (!rc) rc = wr(f, &t->n_dims, 4, path);
        for (uint32_t d = 0; !rc && d < t->n_dims; d++) rc = wr(f, &t->ne[d], 8, path);
        if (!rc) rc = wr(f, &t->type, 4, path);
        if (!rc) rc = wr(f, &off, 8, path);
        pos += 8 + len + 4 + 8 * t->n_dims + 4 + 8;
        off += t->nbytes;
        off += (w->alignment - off % w->alignment) % w->alignment;
    }
    if (!rc) rc = pad(f, &pos, w->alignment, path);
    for (uint64_t i = 0; !rc && i < w->n_t; i++) {
        rc = wr(f, w->t[i].data, w->t[i].nbytes, path);
        pos += w->t[i].nbytes;
        if (!rc) rc = pad(f, &pos, w->alignment, path);
    }
    if (fclose(f) != 0 && !rc) rc = terse_err(TERSE_ERR_IO, "gguf writer: closing '%s' failed", path);
    if (rc) remove(path);
    return rc;
}
