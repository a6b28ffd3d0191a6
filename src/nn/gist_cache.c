/* gist_cache.c - gist caching (Mu et al. 2023): the K gist tokens' per-layer keys and values
 * after an instruction, computed once, stored in a GGUF file and put back into a context's
 * cache, with the position where the input continues (see terse.h).
 *
 * File (GGUF): gist.version 1, gist.model.name / .arch, gist.model.hash "fnv1a64:%016x" of
 * every tensor's bytes, gist.instruction.hash (of its bytes), gist.instruction.tokens,
 * gist.k, gist.first (position of the first gist), gist.next_pos; tensors gist.keys and
 * gist.values, F32 (n_head_kv * head_dim, K, n_layer): keys as stored in the cache (after
 * rotary, at their original positions).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "nn/nn.h"
#include "terse.h"

struct terse_gist {
    char model_name[128], arch[16];
    uint64_t model_hash, instr_hash;
    int32_t K, L, KVd, n_instr, first, next_pos;
    float *keys, *values; /* (L, K, KVd) */
};

static uint64_t fnv1a64_add(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The model's hash, computed on first use and kept in the model (the tensors are read-only
 * once loaded), so loading or computing gists costs one pass over the weights per loaded
 * model, not one per call. The mutex makes the first use safe from several threads. */
static pthread_mutex_t hash_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t model_hash(const terse_model *cm) {
    terse_model *m = (terse_model *)cm; /* the cache fields only; the model is heap-allocated */
    pthread_mutex_lock(&hash_mu);
    if (!m->content_hash_set) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint64_t t = 0; t < m->g->n_tensors; t++)
            h = fnv1a64_add(h, m->g->tensors[t].data, (size_t)m->g->tensors[t].nbytes);
        m->content_hash = h;
        m->content_hash_set = 1;
    }
    uint64_t h = m->content_hash;
    pthread_mutex_unlock(&hash_mu);
    return h;
}

uint64_t nn_model_content_hash(const terse_model *m) { return model_hash(m); }

static int32_t gist_id(const terse_model *m) {
    uint32_t id;
    if (gguf_find(m->g, "terse.gist.token_id") < 0 ||
        gguf_get_u32(m->g, "terse.gist.token_id", &id) || id >= (uint32_t)m->n_vocab)
        return -1;
    return (int32_t)id;
}

static terse_gist *alloc_gist(int32_t L, int32_t K, int32_t KVd) {
    terse_gist *g = terse_calloc(1, sizeof *g, "gist");
    if (!g) return NULL;
    size_t n = (size_t)L * K * KVd;
    g->keys = terse_malloc(n * sizeof(float), "gist keys");
    g->values = terse_malloc(n * sizeof(float), "gist values");
    if (!g->keys || !g->values) { terse_gist_free(g); return NULL; }
    g->L = L, g->K = K, g->KVd = KVd;
    return g;
}

void terse_gist_free(terse_gist *g) {
    if (!g) return;
    free(g->keys), free(g->values), free(g);
}

int32_t terse_gist_k(const terse_gist *g) { return g ? g->K : 0; }
int32_t terse_gist_instruction_tokens(const terse_gist *g) { return g ? g->n_instr : 0; }
int32_t terse_gist_next_pos(const terse_gist *g) { return g ? g->next_pos : 0; }

int terse_gist_compute(terse_ctx *c, const char *instruction, size_t len, int32_t K,
                       terse_gist **out) {
    if (out) *out = NULL;
    if (!c || !instruction || !out) return terse_err(TERSE_ERR_INVALID, "terse_gist_compute: NULL argument");
    const terse_model *m = c->m;
    int32_t gid = gist_id(m);
    if (gid < 0)
        return terse_err(TERSE_ERR_INVALID, "terse_gist_compute: model '%s' has no gist token "
                         "(terse.gist.token_id; make one with terse finetune --gist K)", m->name);
    if (K < 1 || K > 64)
        return terse_err(TERSE_ERR_INVALID, "terse_gist_compute: K = %d (1..64)", (int)K);
    const terse_vocab *v = terse_model_vocab(m);
    if (!v) return terse_err(TERSE_ERR_INVALID, "terse_gist_compute: model has no vocabulary");
    size_t tl = len + 14;
    char *text = terse_malloc(tl + 1, "gist text");
    if (!text) return TERSE_ERR_NOMEM;
    memcpy(text, "Instruction: ", 13);
    memcpy(text + 13, instruction, len);
    text[13 + len] = '\n';
    int32_t bos = terse_vocab_bos(v);
    int64_t n = terse_tokenize(v, text, tl, 0, NULL, NULL, 0);
    int32_t *ids = NULL;
    int rc = n < 0 ? (int)n : TERSE_OK;
    int64_t total = n + (bos >= 0) + K;
    if (!rc && total > c->n_ctx)
        rc = terse_err(TERSE_ERR_RANGE, "terse_gist_compute: instruction of %lld tokens + %d "
                       "gists exceeds the context of %d", (long long)n, (int)K, (int)c->n_ctx);
    if (!rc && !(ids = terse_malloc((size_t)total * sizeof *ids, "gist ids"))) rc = TERSE_ERR_NOMEM;
    int32_t at = 0;
    if (!rc) {
        if (bos >= 0) ids[at++] = bos;
        int64_t k = terse_tokenize(v, text, tl, 0, ids + at, NULL, n);
        if (k < 0) rc = (int)k;
        at += (int32_t)n;
        for (int32_t i = 0; i < K; i++) ids[at + i] = gid;
    }
    terse_gist *g = NULL;
    if (!rc) {
        terse_kv_clear(c);
        terse_batch b = {(int32_t)total, ids, NULL, NULL, NULL};
        rc = terse_eval(c, &b);
    }
    const int32_t KVd = m->n_head_kv * m->head_dim;
    if (!rc && !(g = alloc_gist(m->n_layer, K, KVd))) rc = TERSE_ERR_NOMEM;
    if (!rc) {
        for (int l = 0; l < m->n_layer; l++) {
            const size_t src = ((size_t)l * c->n_ctx + at) * KVd, dst = (size_t)l * K * KVd;
            memcpy(g->keys + dst, c->k_cache + src, (size_t)K * KVd * sizeof(float));
            memcpy(g->values + dst, c->v_cache + src, (size_t)K * KVd * sizeof(float));
        }
        snprintf(g->model_name, sizeof g->model_name, "%s", m->name);
        snprintf(g->arch, sizeof g->arch, "%s", m->arch_name);
        g->model_hash = model_hash(m);
        g->instr_hash = fnv1a64_add(0xcbf29ce484222325ull, instruction, len);
        g->n_instr = at, g->first = at, g->next_pos = at + K;
        *out = g;
    }
    free(text), free(ids);
    return rc;
}

int terse_gist_save(const terse_gist *g, const char *path) {
    if (!g || !path) return terse_err(TERSE_ERR_INVALID, "terse_gist_save: NULL argument");
    gguf_writer *w = gguf_writer_new();
    if (!w) return TERSE_ERR_NOMEM;
    char mh[32], ih[32];
    snprintf(mh, sizeof mh, "fnv1a64:%016llx", (unsigned long long)g->model_hash);
    snprintf(ih, sizeof ih, "fnv1a64:%016llx", (unsigned long long)g->instr_hash);
    int rc = gguf_writer_set_str(w, "general.type", "gist");
    if (!rc) rc = gguf_writer_set_u32(w, "gist.version", 1);
    if (!rc) rc = gguf_writer_set_str(w, "gist.model.name", g->model_name);
    if (!rc) rc = gguf_writer_set_str(w, "gist.model.arch", g->arch);
    if (!rc) rc = gguf_writer_set_str(w, "gist.model.hash", mh);
    if (!rc) rc = gguf_writer_set_str(w, "gist.instruction.hash", ih);
    if (!rc) rc = gguf_writer_set_u32(w, "gist.instruction.tokens", (uint32_t)g->n_instr);
    if (!rc) rc = gguf_writer_set_u32(w, "gist.k", (uint32_t)g->K);
    if (!rc) rc = gguf_writer_set_u32(w, "gist.first", (uint32_t)g->first);
    if (!rc) rc = gguf_writer_set_u32(w, "gist.next_pos", (uint32_t)g->next_pos);
    int64_t ne[3] = {g->KVd, g->K, g->L};
    uint64_t nb = (uint64_t)g->KVd * g->K * g->L * sizeof(float);
    if (!rc) rc = gguf_writer_add_tensor(w, "gist.keys", GGML_F32, 3, ne, g->keys, nb);
    if (!rc) rc = gguf_writer_add_tensor(w, "gist.values", GGML_F32, 3, ne, g->values, nb);
    if (!rc) rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return rc;
}

static int get_hash(gguf_file *f, const char *key, uint64_t *out) {
    gguf_str s;
    int rc = gguf_get_str(f, key, &s);
    if (rc) return rc;
    char buf[32];
    unsigned long long h;
    char end;
    if (s.len != 24) goto bad;
    memcpy(buf, s.ptr, 24);
    buf[24] = 0;
    if (sscanf(buf, "fnv1a64:%16llx%c", &h, &end) != 1) goto bad;
    *out = h;
    return TERSE_OK;
bad:
    return terse_err(TERSE_ERR_FORMAT, "gist file: %s is not fnv1a64:<16 hex digits>", key);
}

int terse_gist_load(const terse_model *m, const char *path, terse_gist **out) {
    if (out) *out = NULL;
    if (!m || !path || !out) return terse_err(TERSE_ERR_INVALID, "terse_gist_load: NULL argument");
    gguf_file *f = NULL;
    int rc = gguf_open(path, 0, &f);
    if (rc) return terse_err_wrap(rc, "gist file '%s'", path);
    uint32_t ver = 0, K = 0, ni = 0, first = 0, next = 0;
    uint64_t mh = 0, ih = 0;
    gguf_str name = {"", 0}, arch = {"", 0};
    rc = gguf_get_u32(f, "gist.version", &ver);
    if (!rc && ver != 1) rc = terse_err(TERSE_ERR_FORMAT, "gist file: version %u (want 1)", ver);
    if (!rc) rc = gguf_get_u32(f, "gist.k", &K);
    if (!rc) rc = gguf_get_u32(f, "gist.instruction.tokens", &ni);
    if (!rc) rc = gguf_get_u32(f, "gist.first", &first);
    if (!rc) rc = gguf_get_u32(f, "gist.next_pos", &next);
    if (!rc) rc = gguf_get_str(f, "gist.model.name", &name);
    if (!rc) rc = gguf_get_str(f, "gist.model.arch", &arch);
    if (!rc) rc = get_hash(f, "gist.model.hash", &mh);
    if (!rc) rc = get_hash(f, "gist.instruction.hash", &ih);
    if (!rc && (K < 1 || K > 64 || next != first + K || first < 1))
        rc = terse_err(TERSE_ERR_FORMAT, "gist file: k %u, first %u, next_pos %u inconsistent",
                       K, first, next);
    const int32_t KVd = m->n_head_kv * m->head_dim;
    const gguf_tensor *tk = rc ? NULL : gguf_find_tensor(f, "gist.keys");
    const gguf_tensor *tv = rc ? NULL : gguf_find_tensor(f, "gist.values");
    if (!rc && (!tk || !tv))
        rc = terse_err(TERSE_ERR_FORMAT, "gist file: gist.keys / gist.values missing");
    uint64_t h = rc ? 0 : model_hash(m);
    if (!rc && (h != mh || !gguf_str_eq(arch, m->arch_name)))
        rc = terse_err(TERSE_ERR_INVALID, "gist file '%s' was made with model '%.*s' (%.*s, hash "
                       "%016llx); this model is '%s' (%s, hash %016llx)", path, (int)name.len,
                       name.ptr, (int)arch.len, arch.ptr, (unsigned long long)mh, m->name,
                       m->arch_name, (unsigned long long)h);
    for (int i = 0; i < 2 && !rc; i++) {
        const gguf_tensor *t = i ? tv : tk;
        if (t->type != GGML_F32 || t->n_dims != 3 || t->ne[0] != KVd || t->ne[1] != (int64_t)K ||
            t->ne[2] != m->n_layer)
            rc = terse_err(TERSE_ERR_FORMAT, "gist file: %.*s shape/type does not fit the model",
                           (int)t->name.len, t->name.ptr);
    }
    terse_gist *g = NULL;
    if (!rc && !(g = alloc_gist(m->n_layer, (int32_t)K, KVd))) rc = TERSE_ERR_NOMEM;
    if (!rc) {
        memcpy(g->keys, tk->data, (size_t)tk->nbytes);
        memcpy(g->values, tv->data, (size_t)tv->nbytes);
        snprintf(g->model_name, sizeof g->model_name, "%.*s", (int)name.len, name.ptr);
        snprintf(g->arch, sizeof g->arch, "%s", m->arch_name);
        g->model_hash = mh, g->instr_hash = ih;
        g->n_instr = (int32_t)ni, g->first = (int32_t)first, g->next_pos = (int32_t)next;
        *out = g;
    }
    gguf_close(f);
    return rc;
}

int terse_gist_apply(terse_ctx *c, const terse_gist *g) {
    if (!c || !g) return terse_err(TERSE_ERR_INVALID, "terse_gist_apply: NULL argument");
    const terse_model *m = c->m;
    if (g->L != m->n_layer || g->KVd != m->n_head_kv * m->head_dim)
        return terse_err(TERSE_ERR_INVALID, "terse_gist_apply: gist of another model shape");
    if (g->K > c->n_ctx)
        return terse_err(TERSE_ERR_RANGE, "terse_gist_apply: %d gists exceed the context of %d",
                         (int)g->K, (int)c->n_ctx);
    terse_kv_clear(c);
    for (int l = 0; l < g->L; l++) {
        const size_t dst = (size_t)l * c->n_ctx * g->KVd, src = (size_t)l * g->K * g->KVd;
        memcpy(c->k_cache + dst, g->keys + src, (size_t)g->K * g->KVd * sizeof(float));
        memcpy(c->v_cache + dst, g->values + src, (size_t)g->K * g->KVd * sizeof(float));
    }
    c->kv_len = g->K;
    c->pos_offset = g->first;
    return TERSE_OK;
}

int64_t terse_gist_input_ids(const terse_model *m, const char *input, size_t len, int32_t *ids,
                             int64_t cap) {
    const terse_vocab *v = m ? terse_model_vocab(m) : NULL;
    if (!v || (!input && len)) return terse_err(TERSE_ERR_INVALID, "terse_gist_input_ids: no vocabulary or input");
    if (len == 0) return terse_tokenize(v, "\nOutput:", 8, 0, ids, NULL, cap);
    char *t = terse_malloc(len + 17, "gist input");
    if (!t) return TERSE_ERR_NOMEM;
    memcpy(t, "\nInput: ", 8);
    memcpy(t + 8, input, len);
    memcpy(t + 8 + len, "\nOutput:", 8);
    int64_t n = terse_tokenize(v, t, len + 16, 0, ids, NULL, cap);
    free(t);
    return n;
}
