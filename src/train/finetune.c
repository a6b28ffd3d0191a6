/* finetune.c - terse_finetune: a JSONL instruction file -> gist training sequences -> the
 * gist fine-tuning loop (train/gist.c); the gist model is made from a base model first. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "terse.h"
#include "train/gist.h"

terse_finetune_params terse_finetune_default_params(void) {
    terse_finetune_params p = {0};
    p.mask = "gist", p.K = 1, p.max_len = 256, p.steps = 100, p.batch = 8;
    p.lr = 1e-4f, p.clip = 1.0f, p.seed = 1;
    return p;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *jstr(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* every line of data -> an example (too long: skipped); bad JSON: an error naming the line */
static int read_examples(const terse_model *m, int32_t gid, const terse_finetune_params *p,
                         gist_example **out, int32_t *n_out) {
    int32_t n = 0, cap = 0;
    gist_example *ex = NULL;
    int rc = TERSE_OK;
    size_t pos = 0;
    int line = 0;
    while (pos < p->data_len && !rc) {
        const char *s = p->data + pos;
        const char *e = memchr(s, '\n', p->data_len - pos);
        size_t len = e ? (size_t)(e - s) : p->data_len - pos;
        pos += len + 1, line++;
        if (len == 0) continue;
        if (p->max_examples > 0 && n >= p->max_examples) break;
        json_error_t je;
        json_t *o = json_loadb(s, len, 0, &je);
        const char *ins = o ? jstr(o, "instruction") : NULL, *in = o ? jstr(o, "input") : NULL;
        const char *outp = o ? jstr(o, "output") : NULL;
        if (!ins || !outp) {
            json_decref(o);
            rc = terse_err(TERSE_ERR_FORMAT, "finetune data line %d: not a JSON object with "
                           "string \"instruction\" and \"output\"", line);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            gist_example *nx = realloc(ex, (size_t)cap * sizeof *ex);
            if (!nx) { json_decref(o); rc = terse_err(TERSE_ERR_NOMEM, "examples"); break; }
            ex = nx;
        }
        int r = gist_example_build(m, gid, p->K, ins, in ? in : "", outp, p->max_len, &ex[n]);
        json_decref(o);
        if (r == TERSE_OK) n++;
        else if (r != TERSE_ERR_RANGE && r != TERSE_ERR_INVALID) rc = r;
    }
    if (!rc && n == 0) rc = terse_err(TERSE_ERR_INVALID, "finetune: no usable example (of %d "
                                      "lines; max_len %d)", line, (int)p->max_len);
    if (rc) {
        for (int32_t i = 0; i < n; i++) gist_example_free(&ex[i]);
        free(ex);
        return rc;
    }
    uint64_t st = p->seed;
    for (int32_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int32_t j = (int32_t)(splitmix64(&st) % (uint64_t)(i + 1));
        gist_example t = ex[i];
        ex[i] = ex[j], ex[j] = t;
    }
    *out = ex, *n_out = n;
    return TERSE_OK;
}

int terse_finetune(const terse_finetune_params *p, int32_t *n_examples) {
    if (!p || !p->model_path || !p->data)
        return terse_err(TERSE_ERR_INVALID, "finetune: model and data needed");
    int kind = gist_mask_kind_parse(p->mask ? p->mask : "gist");
    if (kind < 0) return terse_err(TERSE_ERR_INVALID, "finetune: mask '%s' (gist, pos, neg)", p->mask);
    if (p->K < 0 || p->K > GIST_MAX_K)
        return terse_err(TERSE_ERR_INVALID, "finetune: K = %d (1..%d)", (int)p->K, GIST_MAX_K);
    if (p->steps < 0 || p->batch < 0 || p->max_len < 0 || p->lr < 0)
        return terse_err(TERSE_ERR_INVALID, "finetune: negative steps, batch, max_len or lr");
    terse_finetune_params q = *p;
    if (!q.max_len) q.max_len = 256;
    if (!q.steps) q.steps = 100;
    if (!q.batch) q.batch = 8;
    if (!q.lr) q.lr = 1e-4f;
    terse_model *m = NULL;
    char *init = NULL;
    gist_example *ex = NULL;
    int32_t n = 0;
    terse_model_params mp = terse_model_default_params();
    mp.n_threads = q.n_threads;
    int rc = terse_model_load(q.model_path, mp, &m);
    if (rc) return rc;
    if (q.K > 0 && gist_token_id(m) < 0) { /* a base model: add the gist token, F32 masters */
        const char *ip = q.init_path;
        if (!ip) {
            if (!q.out_path) { rc = terse_err(TERSE_ERR_INVALID, "finetune: init_path or out_path needed"); goto done; }
            size_t l = strlen(q.out_path) + 16;
            init = malloc(l);
            if (!init) { rc = terse_err(TERSE_ERR_NOMEM, "path"); goto done; }
            snprintf(init, l, "%s.init.gguf", q.out_path);
            ip = init;
        }
        if ((rc = gist_model_make(q.model_path, ip))) goto done;
        terse_model_free(m), m = NULL;
        if ((rc = terse_model_load(ip, mp, &m))) goto done;
    }
    if (q.max_len > m->n_ctx_train) q.max_len = m->n_ctx_train;
    if ((rc = read_examples(m, gist_token_id(m), &q, &ex, &n))) goto done;
    if (q.examples_path && (rc = gist_examples_write(q.examples_path, ex, n))) goto done;
    if (n_examples) *n_examples = n;
    if (!q.out_path && !q.state_path) goto done; /* examples (and the gist model) only */
    gist_train_params tp = {0};
    tp.mask = (gist_mask_kind)kind, tp.batch = q.batch, tp.steps = q.steps;
    tp.opt = train_adamw_default_params();
    tp.opt.lr = q.lr, tp.opt.min_lr = q.min_lr, tp.opt.warmup_steps = q.warmup;
    tp.opt.total_steps = q.steps, tp.opt.weight_decay = q.weight_decay;
    tp.opt.clip_norm = q.clip, tp.opt.seed = q.seed;
    tp.state_path = q.state_path, tp.save_every = q.save_every, tp.n_threads = q.n_threads;
    tp.progress = q.progress, tp.ud = q.ud;
    rc = gist_finetune(m, ex, n, &tp, q.out_path, NULL);
done:
    for (int32_t i = 0; i < n; i++) gist_example_free(&ex[i]);
    free(ex), free(init);
    terse_model_free(m);
    return rc;
}

int terse_gist_model_quantize(const char *in_path, const char *out_path, int32_t K, terse_type type) {
    if (!in_path || !out_path) return terse_err(TERSE_ERR_INVALID, "gist model quantize: NULL path");
    return gist_model_quantize(in_path, out_path, K, (uint32_t)type);
}

int32_t terse_model_gist_k(const terse_model *m) {
    if (gist_token_id(m) < 0) return 0;
    uint32_t k;
    if (gguf_find(m->g, GIST_K_KEY) < 0 || gguf_get_u32(m->g, GIST_K_KEY, &k) || k < 1 || k > GIST_MAX_K)
        return 1;
    return (int32_t)k;
}
