/* safetensors.c - read and validate .safetensors files and sharded folders (see
 * safetensors.h). The JSON header goes through jansson; the data stays in the mmap.
 * It does not write safetensors and does not interpret tensor names. */
#include "convert/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#define ST_MAX_HEADER (256ull << 20) /* 256 MiB of JSON is far beyond any real header */

static st_dtype parse_dtype(const char *s, size_t *elem_size) {
    static const struct { const char *name; st_dtype t; size_t size; } k[] = {
        {"F32", ST_F32, 4},    {"F16", ST_F16, 2},    {"BF16", ST_BF16, 2},
        {"F64", ST_OTHER, 8},  {"I64", ST_OTHER, 8},  {"U64", ST_OTHER, 8},
        {"I32", ST_OTHER, 4},  {"U32", ST_OTHER, 4},  {"I16", ST_OTHER, 2},
        {"U16", ST_OTHER, 2},  {"I8", ST_OTHER, 1},   {"U8", ST_OTHER, 1},
        {"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(s, k[i].name) == 0) {
            *elem_size = k[i].size;
            return k[i].t;
        }
    *elem_size = 0;
    return ST_OTHER;
}

/* One header entry -> t (name owned by t). */
static int parse_entry(const char *path, const char *name, json_t *v, const terse_file *f,
                       uint64_t data_start, st_tensor *t) {
    memset(t, 0, sizeof *t);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
        json_array_size(off) != 2)
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': needs dtype, shape "
                         "and data_offsets [begin, end]", path, name);
    size_t esize;
    t->dtype = parse_dtype(json_string_value(dt), &esize);
    if (!esize)
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': unknown dtype '%s'",
                         path, name, json_string_value(dt));
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", json_string_value(dt));
    size_t nd = json_array_size(sh);
    if (nd > ST_MAX_DIMS)
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': %zu dimensions",
                         path, name, nd);
    t->n_dims = (int)nd;
    uint64_t nel = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *e = json_array_get(sh, d);
        json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;
        if (x < 0 || (x > 0 && nel > (uint64_t)INT64_MAX / (uint64_t)x))
            return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': bad dimension %zu",
                             path, name, d);
        t->shape[d] = (int64_t)x;
        nel *= (uint64_t)x;
    }
    t->n_elems = (int64_t)nel;
    json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
    json_int_t bo = json_is_integer(b) ? json_integer_value(b) : -1;
    json_int_t eo = json_is_integer(e) ? json_integer_value(e) : -1;
    uint64_t data_size = f->size - data_start;
    if (bo < 0 || eo < bo || (uint64_t)eo > data_size)
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': data_offsets [%lld, "
                         "%lld] outside the %llu data bytes", path, name, (long long)bo,
                         (long long)eo, (unsigned long long)data_size);
    if (nel > UINT64_MAX / esize || nel * esize != (uint64_t)(eo - bo))
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s': %lld bytes for %llu "
                         "elements of %s", path, name, (long long)(eo - bo),
                         (unsigned long long)nel, t->dtype_name);
    t->data = f->data + data_start + (uint64_t)bo;
    t->nbytes = (uint64_t)(eo - bo);
    if (!(t->name = strdup(name))) return terse_err(TERSE_ERR_NOMEM, "out of memory");
    return TERSE_OK;
}

int st_open_file(st_set *s, const char *path) {
    terse_file *files = terse_reallocarray(s->files, (size_t)s->n_files + 1, sizeof *files,
                                           "safetensors files");
    if (!files) return TERSE_ERR_NOMEM;
    s->files = files;
    terse_file *f = &s->files[s->n_files];
    int rc = terse_file_open(path, 1, f);
    if (rc) return rc;
    s->n_files++;

    uint64_t hlen;
    if (f->size < 8) return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': %zu bytes, no header",
                                      path, f->size);
    memcpy(&hlen, f->data, 8);
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > f->size - 8)
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': header length %llu (file has %zu "
                         "bytes)", path, (unsigned long long)hlen, f->size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root) return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': header JSON: %s (at %d)",
                                path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return terse_err(TERSE_ERR_FORMAT, "safetensors '%s': header is not a JSON object", path);
    }
    size_t n_new = json_object_size(root);
    st_tensor *t = terse_reallocarray(s->t, (size_t)s->n + n_new, sizeof *t, "safetensors tensors");
    if (!t) {
        json_decref(root);
        return TERSE_ERR_NOMEM;
    }
    s->t = t;
    const char *key;
    json_t *v;
    rc = TERSE_OK;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if (st_find(s, key)) {
            rc = terse_err(TERSE_ERR_FORMAT, "safetensors '%s': tensor '%s' appears twice", path, key);
            break;
        }
        if ((rc = parse_entry(path, key, v, f, 8 + hlen, &s->t[s->n]))) break;
        s->n++;
    }
    json_decref(root);
    return rc;
}

void st_close(st_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) free(s->t[i].name);
    free(s->t);
    for (int i = 0; i < s->n_files; i++) terse_file_close(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

st_tensor *st_find(const st_set *s, const char *name) {
    for (int64_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    return NULL;
}

static char *join(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = terse_malloc(n, "path");
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* The shards named by an index file: each distinct file once, in order of appearance; every
 * weight_map entry must then be found in the shard it names. */
static int open_index(const char *dir, const char *index_path, st_set *s) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return terse_err(TERSE_ERR_FORMAT, "'%s': %s (line %d)", index_path, jerr.text,
                                jerr.line);
    json_t *map = json_object_get(root, "weight_map");
    int rc = TERSE_OK;
    if (!json_is_object(map)) {
        rc = terse_err(TERSE_ERR_FORMAT, "'%s': no weight_map object", index_path);
        goto done;
    }
    const char **shard = NULL;
    size_t n_shards = 0;
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *file = json_string_value(v);
        if (!file || !*file || strchr(file, '/') || strcmp(file, "..") == 0) {
            rc = terse_err(TERSE_ERR_FORMAT, "'%s': weight_map['%s'] is not a file name in the "
                           "folder", index_path, key);
            break;
        }
        size_t i = 0;
        while (i < n_shards && strcmp(shard[i], file) != 0) i++;
        if (i < n_shards) continue;
        const char **q = terse_reallocarray(shard, n_shards + 1, sizeof *q, "shard list");
        if (!q) {
            rc = TERSE_ERR_NOMEM;
            break;
        }
        shard = q;
        shard[n_shards++] = file;
    }
    for (size_t i = 0; !rc && i < n_shards; i++) {
        char *p = join(dir, shard[i]);
        if (!p) rc = TERSE_ERR_NOMEM;
        else rc = st_open_file(s, p);
        free(p);
    }
    free(shard);
    json_object_foreach(map, key, v) {
        if (rc) break;
        if (!st_find(s, key))
            rc = terse_err(TERSE_ERR_FORMAT, "'%s': tensor '%s' is not in shard '%s'", index_path,
                           key, json_string_value(v));
    }
done:
    json_decref(root);
    return rc;
}

int st_open_dir(const char *dir, st_set *s) {
    memset(s, 0, sizeof *s);
    char *single = join(dir, "model.safetensors"), *index = join(dir, "model.safetensors.index.json");
    int rc;
    if (!single || !index) rc = TERSE_ERR_NOMEM;
    else if (exists(single)) rc = st_open_file(s, single);
    else if (exists(index)) rc = open_index(dir, index, s);
    else rc = terse_err(TERSE_ERR_IO, "'%s': no model.safetensors or "
                        "model.safetensors.index.json", dir);
    free(single);
    free(index);
    if (rc) st_close(s);
    return rc;
}

int st_to_f32(const st_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    int64_t n = t->n_elems;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, (size_t)n * 4);
        return TERSE_OK;
    case ST_F16:
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? terse_f16_to_f32(h) : terse_bf16_to_f32(h);
        }
        return TERSE_OK;
    default:
        return terse_err(TERSE_ERR_UNSUPPORTED, "safetensors: tensor '%s' has dtype %s (F32, F16 "
                         "or BF16 expected)", t->name, t->dtype_name);
    }
}
