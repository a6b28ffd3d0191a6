/* gist.c - gist models (a <GIST> vocabulary entry, F32 masters), training sequences in the
 * paper's template, and the fine-tuning loop (see gist.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "nn/grad.h"
#include "nn/nn.h"
#include "nn/quant.h"
#include "terse.h"
#include "train/gist.h"

/* ------------------------------------------------------------------------------------------ */
/* The gist model                                                                              */

static int skip_key(const gguf_kv *kv) {
    static const char *const keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                                       "tokenizer.ggml.scores", GIST_TOKEN_KEY,
                                       "general.file_type"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (gguf_str_eq(kv->key, keys[i])) return 1;
    return 0;
}

int gist_model_make(const char *in_path, const char *out_path) {
    gguf_file *g = NULL;
    int rc = gguf_open(in_path, 1, &g);
    if (rc) return rc;
    gguf_writer *w = gguf_writer_new();
    const char **toks = NULL;
    uint64_t *lens = NULL;
    int32_t *types = NULL;
    float *scores = NULL, *buf = NULL;
    const gguf_kv *tk = NULL, *tt = NULL, *sc = NULL;
    if (!w) { rc = TERSE_ERR_NOMEM; goto done; }
    if (gguf_find(g, GIST_TOKEN_KEY) >= 0) {
        rc = terse_err(TERSE_ERR_INVALID, "%s already has a gist token", in_path);
        goto done;
    }
    if ((rc = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tk))) goto done;
    const uint64_t V = tk->n;
    if (gguf_find(g, "tokenizer.ggml.token_type") >= 0 &&
        (rc = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &tt))) goto done;
    if (gguf_find(g, "tokenizer.ggml.scores") >= 0 &&
        (rc = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32, &sc))) goto done;
    toks = terse_malloc((V + 1) * sizeof *toks, "tokens");
    lens = terse_malloc((V + 1) * sizeof *lens, "tokens");
    types = terse_malloc((V + 1) * sizeof *types, "token types");
    scores = terse_malloc((V + 1) * sizeof *scores, "scores");
    if (!toks || !lens || !types || !scores) { rc = TERSE_ERR_NOMEM; goto done; }
    for (uint64_t i = 0; i < V; i++) {
        gguf_str s = gguf_arr_str(tk, i);
        toks[i] = s.ptr, lens[i] = s.len;
        types[i] = tt && i < tt->n ? gguf_arr_i32(tt, i) : 1;
        scores[i] = sc && i < sc->n ? gguf_arr_f32(sc, i) : 0.0f;
    }
    toks[V] = "<GIST>", lens[V] = 6, types[V] = 3, scores[V] = 0.0f;
    for (uint64_t i = 0; i < g->n_kv && !rc; i++) {
        const gguf_kv *kv = &g->kv[i];
        int vs = kv->key.len > 11 && !memcmp(kv->key.ptr + kv->key.len - 11, ".vocab_size", 11);
        if (vs) { /* "<arch>.vocab_size": one more */
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
            rc = gguf_writer_set_u32(w, key, (uint32_t)V + 1);
        } else if (!skip_key(kv)) {
            rc = gguf_writer_copy_kv(w, kv);
        }
    }
    if (!rc) rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, lens, V + 1);
    if (!rc && tt) rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, V + 1);
    if (!rc && sc) rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, V + 1);
    if (!rc) rc = gguf_writer_set_u32(w, GIST_TOKEN_KEY, (uint32_t)V);
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", 0);
    for (uint64_t t = 0; t < g->n_tensors && !rc; t++) {
        const gguf_tensor *x = &g->tensors[t];
        int64_t cols = x->ne[0], rows = 1;
        for (uint32_t d = 1; d < x->n_dims; d++) rows *= x->ne[d];
        int vocab_rows = x->n_dims == 2 && (uint64_t)x->ne[1] == V &&
                         (gguf_str_eq(x->name, "token_embd.weight") ||
                          gguf_str_eq(x->name, "output.weight"));
        uint64_t rb = gguf_type_row_bytes(x->type, cols);
        if (!quant_supported(x->type) || !rb) {
            rc = terse_err(TERSE_ERR_UNSUPPORTED, "%.*s: tensor type %s", (int)x->name.len,
                           x->name.ptr, gguf_type_name(x->type));
            break;
        }
        int64_t out_rows = rows + vocab_rows;
        buf = terse_malloc((size_t)(out_rows * cols) * sizeof(float), "gist model tensor");
        if (!buf) { rc = TERSE_ERR_NOMEM; break; }
        for (int64_t r = 0; r < rows; r++)
            dequantize_row(x->type, (const uint8_t *)x->data + r * rb, buf + r * cols, cols);
        if (vocab_rows) { /* the new row: the mean of the existing ones (double sums) */
            for (int64_t c = 0; c < cols; c++) {
                double s = 0;
                for (int64_t r = 0; r < rows; r++) s += buf[r * cols + c];
                buf[rows * cols + c] = (float)(s / (double)rows);
            }
        }
        int64_t ne[GGUF_MAX_DIMS];
        memcpy(ne, x->ne, sizeof ne);
        if (vocab_rows) ne[1] = out_rows;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        rc = gguf_writer_add_tensor_copy(w, name, GGML_F32, x->n_dims, ne, buf,
                                         (uint64_t)(out_rows * cols) * sizeof(float));
        free(buf), buf = NULL;
    }
    if (!rc) rc = gguf_writer_write(w, out_path);
done:
    free(toks), free(lens), free(types), free(scores), free(buf);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}

int32_t gist_token_id(const terse_model *m) {
    uint32_t id;
    if (!m || !m->g || gguf_find(m->g, GIST_TOKEN_KEY) < 0) return -1;
    if (gguf_get_u32(m->g, GIST_TOKEN_KEY, &id) || id >= (uint32_t)m->n_vocab) return -1;
    return (int32_t)id;
}

/* ------------------------------------------------------------------------------------------ */
/* Training sequences                                                                          */

/* append the tokens of a + b + c (NUL-terminated pieces) to ex->ids */
static int append_text(const terse_vocab *v, gist_example *ex, int32_t cap, const char *a,
                       const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = terse_malloc(la + lb + lc + 1, "gist text");
    if (!s) return TERSE_ERR_NOMEM;
    memcpy(s, a, la), memcpy(s + la, b, lb), memcpy(s + la + lb, c, lc);
    s[la + lb + lc] = 0;
    int64_t n = terse_tokenize(v, s, la + lb + lc, 0, ex->ids + ex->n, NULL, cap - ex->n);
    free(s);
    if (n < 0) return (int)n;
    if (n > cap - ex->n) return terse_err(TERSE_ERR_RANGE, "gist example longer than %d tokens",
                                          (int)cap);
    ex->n += (int32_t)n;
    return TERSE_OK;
}

int gist_example_build(const terse_model *m, int32_t gist_id, int32_t K, const char *instruction,
                       const char *input, const char *output, int32_t max_len, gist_example *ex) {
    memset(ex, 0, sizeof *ex);
    const terse_vocab *v = terse_model_vocab(m);
    if (!v || !instruction || !output || max_len < 2)
        return terse_err(TERSE_ERR_INVALID, "gist example: no vocabulary, text or length");
    if (K < 0 || K > GIST_MAX_K)
        return terse_err(TERSE_ERR_INVALID, "gist: K = %d (1..%d)", (int)K, GIST_MAX_K);
    if (K > 0 && (gist_id < 0 || gist_id >= m->n_vocab))
        return terse_err(TERSE_ERR_INVALID, "gist: the model has no gist token");
    ex->ids = terse_malloc((size_t)max_len * sizeof *ex->ids, "gist example");
    if (!ex->ids) return TERSE_ERR_NOMEM;
    int32_t bos = terse_vocab_bos(v), eos = terse_vocab_eos(v);
    int rc = TERSE_OK;
    if (bos >= 0) ex->ids[ex->n++] = bos;
    if ((rc = append_text(v, ex, max_len, "Instruction: ", instruction, "\n"))) goto fail;
    if (ex->n + K > max_len) { rc = terse_err(TERSE_ERR_RANGE, "gist example too long"); goto fail; }
    ex->first = K ? ex->n : -1;
    for (int32_t k = 0; k < K; k++) ex->ids[ex->n++] = gist_id;
    ex->last = K ? ex->n - 1 : -1;
    if (input && *input) rc = append_text(v, ex, max_len, "\nInput: ", input, "\nOutput:");
    else rc = append_text(v, ex, max_len, "", "\nOutput:", "");
    if (rc) goto fail;
    ex->n_prompt = ex->n;
    if ((rc = append_text(v, ex, max_len, " ", output, ""))) goto fail;
    if (eos >= 0) {
        if (ex->n >= max_len) { rc = terse_err(TERSE_ERR_RANGE, "gist example too long"); goto fail; }
        ex->ids[ex->n++] = eos;
    }
    if (ex->n == ex->n_prompt) { rc = terse_err(TERSE_ERR_INVALID, "gist example: empty response"); goto fail; }
    return TERSE_OK;
fail:
    gist_example_free(ex);
    return rc;
}

void gist_example_free(gist_example *ex) {
    if (!ex) return;
    free(ex->ids);
    memset(ex, 0, sizeof *ex);
}

int gist_examples_write(const char *path, const gist_example *ex, int32_t n) {
    FILE *f = fopen(path, "w");
    if (!f) return terse_err(TERSE_ERR_IO, "%s: cannot write", path);
    for (int32_t i = 0; i < n; i++) {
        fprintf(f, "%d %d %d %d", (int)ex[i].n, (int)ex[i].first, (int)ex[i].last,
                (int)ex[i].n_prompt);
        for (int32_t t = 0; t < ex[i].n; t++) fprintf(f, " %d", (int)ex[i].ids[t]);
        fputc('\n', f);
    }
    if (fclose(f)) return terse_err(TERSE_ERR_IO, "%s: write failed", path);
    return TERSE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Fine-tuning                                                                                 */

/* the trained model; K > 0 (the examples' gists) recorded as GIST_K_KEY */
static int write_model(const terse_model *m, nn_grad *g, int32_t K, const char *path) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return TERSE_ERR_NOMEM;
    int rc = TERSE_OK;
    for (uint64_t i = 0; i < m->g->n_kv && !rc; i++)
        if (!gguf_str_eq(m->g->kv[i].key, GIST_K_KEY)) rc = gguf_writer_copy_kv(w, &m->g->kv[i]);
    if (!rc && K > 0) rc = gguf_writer_set_u32(w, GIST_K_KEY, (uint32_t)K);
    for (uint64_t t = 0; t < m->g->n_tensors && !rc; t++) {
        const gguf_tensor *x = &m->g->tensors[t];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        nn_grad_tensor *gt = nn_grad_find(g, name);
        if (gt && x->type == GGML_F32)
            rc = gguf_writer_add_tensor(w, name, GGML_F32, x->n_dims, x->ne, gt->w,
                                        (uint64_t)gt->n * sizeof(float));
        else
            rc = gguf_writer_add_tensor(w, name, x->type, x->n_dims, x->ne, x->data, x->nbytes);
    }
    if (!rc) rc = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return rc;
}

int gist_finetune(const terse_model *m, const gist_example *ex, int32_t n,
                  const gist_train_params *p, const char *out_path, double *losses) {
    if (!m || !ex || n < 1 || !p || p->batch < 1 || p->steps < 1)
        return terse_err(TERSE_ERR_INVALID, "gist finetune: no examples, batch or steps");
    int32_t maxT = 1;
    for (int32_t i = 0; i < n; i++) {
        if (ex[i].n < 2 || ex[i].n_prompt < 1 || ex[i].n_prompt >= ex[i].n)
            return terse_err(TERSE_ERR_INVALID, "gist finetune: example %d malformed", (int)i);
        maxT = ex[i].n > maxT ? ex[i].n : maxT;
    }
    nn_grad *g = NULL;
    train_adamw *o = NULL;
    train_tensor *tt = NULL;
    int32_t *targets = NULL;
    uint8_t *mask = NULL;
    float *dl = NULL;
    const int32_t V = m->n_vocab;
    nn_grad_params gp = {.max_tokens = maxT, .weight_grads = 1, .n_threads = p->n_threads};
    int rc = nn_grad_new(m, gp, &g);
    if (rc) return rc;
    int nt = 0;
    nn_grad_tensor *ts = nn_grad_tensors(g, &nt);
    tt = terse_calloc((size_t)nt, sizeof *tt, "gist tensors");
    targets = terse_malloc((size_t)maxT * sizeof *targets, "gist targets");
    mask = terse_malloc((size_t)maxT * (size_t)maxT, "gist mask");
    dl = terse_malloc((size_t)maxT * (size_t)V * sizeof *dl, "gist dlogits");
    if (!tt || !targets || !mask || !dl) { rc = TERSE_ERR_NOMEM; goto done; }
    for (int i = 0; i < nt; i++) tt[i] = (train_tensor){ts[i].w, ts[i].g, ts[i].n, ts[i].decay};
    train_adamw_params op = p->opt;
    op.total_steps = op.total_steps ? op.total_steps : p->steps;
    if ((rc = train_adamw_new(&op, tt, nt, &o))) goto done;
    if (p->state_path) {
        FILE *f = fopen(p->state_path, "rb");
        if (f) {
            fclose(f);
            if ((rc = train_adamw_load(o, p->state_path))) goto done;
        }
    }
    for (int64_t s = train_adamw_steps(o) + 1; s <= p->steps; s++) {
        nn_grad_zero(g);
        int64_t total = 0;
        for (int32_t b = 0; b < p->batch; b++) {
            const gist_example *e = &ex[((s - 1) * p->batch + b) % n];
            total += e->n - e->n_prompt;
        }
        double loss = 0;
        for (int32_t b = 0; b < p->batch && !rc; b++) {
            const gist_example *e = &ex[((s - 1) * p->batch + b) % n];
            const int32_t T = e->n - 1; /* the last token is only a target */
            const float *lg;
            for (int32_t t = 0; t < T; t++) targets[t] = t + 1 >= e->n_prompt ? e->ids[t + 1] : -1;
            if ((rc = gist_mask_build(p->mask, T, e->first, e->last, mask))) break;
            if ((rc = nn_grad_forward(g, e->ids, NULL, T, mask, &lg))) break;
            const int64_t cnt = e->n - e->n_prompt;
            double l = nn_loss_ce(lg, targets, T, V, dl);
            const float scale = (float)((double)cnt / (double)total);
            for (int64_t i = 0; i < (int64_t)T * V; i++) dl[i] *= scale;
            loss += l * (double)cnt / (double)total;
            rc = nn_grad_backward(g, dl, NULL);
        }
        if (rc) break;
        double gn = 0;
        float lr = 0;
        if ((rc = train_adamw_step(o, &gn, &lr))) break;
        if (losses) losses[s - 1] = loss;
        int stop = p->progress ? p->progress(p->ud, (int32_t)s, loss, gn, lr) : 0;
        if (p->state_path && ((p->save_every > 0 && s % p->save_every == 0) || s == p->steps || stop))
            if ((rc = train_adamw_save(o, p->state_path))) break;
        if (stop) break;
    }
    const int32_t K = ex[0].first >= 0 ? ex[0].last - ex[0].first + 1 : 0;
    if (!rc && out_path) rc = write_model(m, g, K, out_path);
done:
    train_adamw_free(o);
    nn_grad_free(g);
    free(tt), free(targets), free(mask), free(dl);
    return rc;
}

int gist_model_quantize(const char *in_path, const char *out_path, int32_t K, uint32_t type) {
    if (K < 0 || K > GIST_MAX_K)
        return terse_err(TERSE_ERR_INVALID, "gist model quantize: K = %d (1..%d)", (int)K, GIST_MAX_K);
    if (!type) type = GGML_Q8_0;
    if (type == GGML_F32 || !quant_can_write_file(type))
        return terse_err(TERSE_ERR_UNSUPPORTED, "gist model quantize: type %u: not one of %s "
                         "(or a mixture Q4_K_M, Q5_K_M)", (unsigned)type, quant_supported_names());
    gguf_file *g = NULL;
    int rc = gguf_open(in_path, 1, &g);
    if (rc) return rc;
    if (gguf_find(g, GIST_TOKEN_KEY) < 0) {
        gguf_close(g);
        return terse_err(TERSE_ERR_INVALID, "gist model quantize: %s has no gist token (%s)",
                         in_path, GIST_TOKEN_KEY);
    }
    /* what llama-quantize's mixtures look at: the layer count and a separate output matrix */
    int32_t has_output = 0;
    uint32_t n_layer = 0;
    gguf_str arch = {0};
    char key[96];
    if (gguf_get_str(g, "general.architecture", &arch) == TERSE_OK) {
        snprintf(key, sizeof key, "%.*s.block_count", (int)(arch.len < 64 ? arch.len : 64), arch.ptr);
        gguf_get_u32_or(g, key, 0, &n_layer);
    }
    for (uint64_t t = 0; t < g->n_tensors; t++) has_output |= gguf_str_eq(g->tensors[t].name, "output.weight");
    gguf_writer *w = gguf_writer_new();
    if (!w) { gguf_close(g); return TERSE_ERR_NOMEM; }
    for (uint64_t i = 0; i < g->n_kv && !rc; i++)
        if (!gguf_str_eq(g->kv[i].key, "general.file_type") && !(K && gguf_str_eq(g->kv[i].key, GIST_K_KEY)))
            rc = gguf_writer_copy_kv(w, &g->kv[i]);
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", quant_file_type(type));
    if (!rc && K) rc = gguf_writer_set_u32(w, GIST_K_KEY, (uint32_t)K);
    for (uint64_t t = 0; t < g->n_tensors && !rc; t++) {
        const gguf_tensor *x = &g->tensors[t];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        const uint32_t tt = x->type == GGML_F32 && x->n_dims == 2
                                ? quant_pick_type(type, name, x->ne[0], (int32_t)n_layer, has_output) : GGML_F32;
        const uint64_t rb = tt == GGML_F32 ? 0 : quant_row_bytes(tt, x->ne[0]);
        if (!rb) {   /* 1-D, not F32, or rows that are not whole blocks of any fallback: as is */
            rc = gguf_writer_add_tensor(w, name, x->type, x->n_dims, x->ne, x->data, x->nbytes);
            continue;
        }
        const int64_t cols = x->ne[0], rows = x->ne[1];
        uint8_t *q = terse_malloc((size_t)(rb * (uint64_t)rows), "quantized tensor");
        if (!q) { rc = TERSE_ERR_NOMEM; break; }
        for (int64_t r = 0; r < rows && !rc; r++)
            rc = quantize_row(tt, (const float *)x->data + r * cols, q + r * rb, cols);
        if (!rc) rc = gguf_writer_add_tensor_copy(w, name, tt, 2, x->ne, q, rb * (uint64_t)rows);
        free(q);
    }
    if (!rc) rc = gguf_writer_write(w, out_path);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}
