/* soft.c - soft prompts (conditioning contexts): terse_distill() around the training loop of
 * train/distill.c, the soft-prompt GGUF file, its use as a prefix, and KL measurement.
 *
 * The file (GGUF v3, written to a temporary name and renamed):
 *   general.architecture          "soft_prompt"
 *   soft_prompt.n_tokens, .n_embd u32
 *   soft_prompt.model.architecture, .model.name (str), .model.n_vocab, .model.n_layer (u32),
 *   soft_prompt.model.embd_hash   "fnv1a64:%016x" of the model's token_embd tensor bytes
 *   soft_prompt.prompt.hash       same hash of the prompt's bytes; .prompt.tokens (u32);
 *   soft_prompt.prompt.text       the prompt (optional)
 *   soft_prompt.kl_initial, .kl_final, .seconds (f32), .steps (u32), .settings (str)
 *   tensor soft_prompt.embd       F32, ne = [n_embd, n_tokens] (row i = vector i)
 * A file belongs to a model when architecture, n_embd, n_vocab and the embedding hash agree.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "nn/nn.h"
#include "train/distill.h"

struct terse_soft {
    int32_t n, C, n_vocab, n_layer;
    float *v;                       /* (n, C) */
    char arch[16];
    char *model_name;
    uint64_t embd_hash, prompt_hash;
    int32_t prompt_tokens;
    char *prompt;                   /* NULL when not stored */
    size_t prompt_len;
    double kl_initial, kl_final, seconds;
    int32_t steps;
    char *settings;
};

static uint64_t fnv1a64(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t model_embd_hash(const terse_model *m) {
    return fnv1a64(m->tok_embd.data, (size_t)m->tok_embd.rows * m->tok_embd.row_bytes);
}

/* KL(p || q) in nats from two log-softmax rows (n) */
static double kl_rows(const float *logp, const float *logq, int32_t n) {
    double s = 0;
    for (int32_t i = 0; i < n; i++) {
        double p = exp((double)logp[i]);
        if (p > 0) s += p * ((double)logp[i] - (double)logq[i]);
    }
    return s;
}

static char *dup_n(const char *s, size_t n) {
    char *d = terse_malloc(n + 1, "soft prompt string");
    if (d) {
        if (n) memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void terse_soft_free(terse_soft *s) {
    if (!s) return;
    free(s->v);
    free(s->model_name);
    free(s->prompt);
    free(s->settings);
    free(s);
}

/* A soft prompt shell for model m with room for n vectors. */
static int soft_new(const terse_model *m, int32_t n, const char *prompt, size_t len,
                    terse_soft **out) {
    terse_soft *s = terse_calloc(1, sizeof *s, "soft prompt");
    if (!s) return TERSE_ERR_NOMEM;
    s->n = n;
    s->C = m->n_embd;
    s->n_vocab = m->n_vocab;
    s->n_layer = m->n_layer;
    snprintf(s->arch, sizeof s->arch, "%s", m->arch_name);
    s->embd_hash = model_embd_hash(m);
    s->kl_initial = s->kl_final = NAN;
    s->v = terse_calloc((size_t)n * (size_t)s->C, sizeof *s->v, "soft prompt vectors");
    s->model_name = dup_n(m->name, strlen(m->name));
    s->settings = dup_n("", 0);
    if (prompt) {
        s->prompt_hash = fnv1a64(prompt, len);
        s->prompt = dup_n(prompt, len);
        s->prompt_len = len;
        if (m->vocab && s->prompt) {
            int64_t k = terse_token_count(m->vocab, prompt, len);
            s->prompt_tokens = k > 0 && k <= INT32_MAX ? (int32_t)k : 0;
        }
    }
    if (!s->v || !s->model_name || !s->settings || (prompt && !s->prompt)) {
        terse_soft_free(s);
        return TERSE_ERR_NOMEM;
    }
    *out = s;
    return TERSE_OK;
}

/* TERSE_OK when s was made for m, else TERSE_ERR_INVALID naming both. */
static int check_model(const terse_soft *s, const terse_model *m) {
    uint64_t h = 0;
    if (!strcmp(s->arch, m->arch_name) && s->C == m->n_embd && s->n_vocab == m->n_vocab &&
        (h = model_embd_hash(m)) == s->embd_hash)
        return TERSE_OK;
    if (!h) h = model_embd_hash(m);
    return terse_err(TERSE_ERR_INVALID,
                     "soft prompt made for another model: it belongs to '%s' (%s, width %d, "
                     "vocabulary %d, embedding hash %016llx), this model is '%s' (%s, width %d, "
                     "vocabulary %d, embedding hash %016llx)",
                     s->model_name, s->arch, s->C, s->n_vocab, (unsigned long long)s->embd_hash,
                     m->name, m->arch_name, m->n_embd, m->n_vocab, (unsigned long long)h);
}

int terse_soft_from_vectors(const terse_model *m, const float *v, int32_t n, const char *prompt,
                            size_t prompt_len, terse_soft **out) {
    if (!m || !v || !out) return terse_err(TERSE_ERR_INVALID, "terse_soft_from_vectors: NULL argument");
    *out = NULL;
    if (n < 1) return terse_err(TERSE_ERR_INVALID, "soft prompt: %d vectors (want >= 1)", n);
    for (int64_t i = 0; i < (int64_t)n * m->n_embd; i++)
        if (!isfinite(v[i])) return terse_err(TERSE_ERR_INVALID, "soft prompt: value %lld is not finite", (long long)i);
    int rc = soft_new(m, n, prompt, prompt_len, out);
    if (!rc) memcpy((*out)->v, v, (size_t)n * (size_t)m->n_embd * sizeof *v);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Distillation                                                                              */

terse_distill_params terse_distill_default_params(void) {
    terse_distill_params p;
    memset(&p, 0, sizeof p);
    p.n_tokens = 8;
    p.steps = 100;
    p.batch = 4;
    p.n_samples = 32;
    p.cont_len = 32;
    p.temperature = 1.0f;
    p.lr = 0.02f;
    p.warmup = 0.05f;
    p.clip = 1.0f;
    p.init = TERSE_SOFT_INIT_PROMPT;
    p.seed = 1;
    p.keep_text = 1;
    return p;
}

static int tokenize_all(const terse_vocab *v, const char *text, size_t len, int32_t **ids,
                        int32_t *n) {
    int64_t k = terse_tokenize(v, text, len, 0, NULL, NULL, 0);
    if (k < 0) return (int)k;
    if (k > INT32_MAX - 8) return terse_err(TERSE_ERR_RANGE, "text of %lld tokens", (long long)k);
    *ids = terse_malloc((size_t)(k + 1) * sizeof **ids, "token ids");
    if (!*ids) return TERSE_ERR_NOMEM;
    k = terse_tokenize(v, text, len, 0, *ids, NULL, k + 1);
    if (k < 0) { free(*ids); *ids = NULL; return (int)k; }
    *n = (int32_t)k;
    return TERSE_OK;
}

int terse_distill(const terse_model *m, const char *prompt, size_t len,
                  const terse_distill_params *pp, terse_soft **out) {
    if (!m || !out || (!prompt && len)) return terse_err(TERSE_ERR_INVALID, "terse_distill: NULL argument");
    *out = NULL;
    terse_distill_params p = pp ? *pp : terse_distill_default_params();
    if (!m->vocab) return terse_err(TERSE_ERR_INVALID, "distill: the model has no vocabulary");
    if (p.n_tokens < 1) return terse_err(TERSE_ERR_INVALID, "distill: --tokens %d (want >= 1)", p.n_tokens);
    if (p.steps < 1 || p.batch < 1 || p.n_samples < 1 || p.cont_len < 2)
        return terse_err(TERSE_ERR_INVALID, "distill: steps %d, batch %d, samples %d (want >= 1), "
                         "continuation length %d (want >= 2)", p.steps, p.batch, p.n_samples, p.cont_len);
    if (!(p.lr > 0 && p.lr < 100) || !(p.temperature >= 0) || !(p.warmup >= 0 && p.warmup < 1) ||
        !(p.weight_decay >= 0) || !(p.clip >= 0))
        return terse_err(TERSE_ERR_INVALID, "distill: lr %g, temperature %g, warmup %g, weight "
                         "decay %g, clip %g out of range", (double)p.lr, (double)p.temperature,
                         (double)p.warmup, (double)p.weight_decay, (double)p.clip);
    int32_t n_ctx = m->n_ctx_train > 8192 ? 8192 : m->n_ctx_train;
    int32_t bos = terse_vocab_bos(m->vocab), nb = bos >= 0;
    if (p.n_tokens > n_ctx - nb - p.cont_len)
        return terse_err(TERSE_ERR_RANGE, "distill: %d soft tokens + %d continuation tokens exceed "
                         "the model's context of %d", p.n_tokens, p.cont_len, n_ctx);
    int32_t *ids = NULL, n = 0;
    int rc = tokenize_all(m->vocab, prompt ? prompt : "", len, &ids, &n);
    if (rc) return terse_err_wrap(rc, "distill: tokenizing the prompt");
    if (n == 0) { free(ids); return terse_err(TERSE_ERR_INVALID, "distill: empty prompt (no tokens)"); }
    if (nb + n + p.cont_len > n_ctx) {
        free(ids);
        return terse_err(TERSE_ERR_RANGE, "distill: prompt of %d tokens + %d continuation tokens "
                         "exceed the model's context of %d", n, p.cont_len, n_ctx);
    }
    terse_soft *s;
    if ((rc = soft_new(m, p.n_tokens, prompt ? prompt : "", len, &s))) { free(ids); return rc; }
    rc = distill_init(m, ids, n, p.n_tokens, p.init, p.seed, s->v);
    distill_stats st;
    memset(&st, 0, sizeof st);
    if (!rc) rc = distill_run(m, ids, n, bos, &p, s->v, &st);
    free(ids);
    if (rc) { terse_soft_free(s); return rc; }
    if (!p.keep_text) { free(s->prompt); s->prompt = NULL; s->prompt_len = 0; }
    s->kl_initial = st.kl_initial;
    s->kl_final = st.kl_final;
    s->seconds = st.seconds;
    s->steps = st.steps;
    char buf[512];
    snprintf(buf, sizeof buf, "steps=%d batch=%d samples=%d cont_len=%d temperature=%g lr=%g "
             "warmup=%g weight_decay=%g clip=%g loss=%s init=%s seed=%llu data=%s",
             p.steps, p.batch, p.n_samples, p.cont_len, (double)p.temperature, (double)p.lr,
             (double)p.warmup, (double)p.weight_decay, (double)p.clip,
             p.reverse ? "kl(q||p)" : "kl(p||q)", p.init == TERSE_SOFT_INIT_RANDOM ? "random" : "prompt",
             (unsigned long long)p.seed, p.data ? "user" : "sampled");
    free(s->settings);
    if (!(s->settings = dup_n(buf, strlen(buf)))) { terse_soft_free(s); return TERSE_ERR_NOMEM; }
    *out = s;
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The file                                                                                  */

int terse_soft_save(const terse_soft *s, const char *path) {
    if (!s || !path) return terse_err(TERSE_ERR_INVALID, "terse_soft_save: NULL argument");
    gguf_writer *w = gguf_writer_new();
    if (!w) return terse_err(TERSE_ERR_NOMEM, "soft prompt: writer");
    char hash[32], phash[32];
    snprintf(hash, sizeof hash, "fnv1a64:%016llx", (unsigned long long)s->embd_hash);
    snprintf(phash, sizeof phash, "fnv1a64:%016llx", (unsigned long long)s->prompt_hash);
    int rc = gguf_writer_set_str(w, "general.architecture", "soft_prompt");
    if (!rc) rc = gguf_writer_set_str(w, "general.name", "terse soft prompt");
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.n_tokens", (uint32_t)s->n);
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.n_embd", (uint32_t)s->C);
    if (!rc) rc = gguf_writer_set_str(w, "soft_prompt.model.architecture", s->arch);
    if (!rc) rc = gguf_writer_set_str(w, "soft_prompt.model.name", s->model_name);
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.model.n_vocab", (uint32_t)s->n_vocab);
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.model.n_layer", (uint32_t)s->n_layer);
    if (!rc) rc = gguf_writer_set_str(w, "soft_prompt.model.embd_hash", hash);
    if (!rc) rc = gguf_writer_set_str(w, "soft_prompt.prompt.hash", phash);
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.prompt.tokens", (uint32_t)s->prompt_tokens);
    if (!rc && s->prompt) rc = gguf_writer_set_str(w, "soft_prompt.prompt.text", s->prompt);
    /* unknown KLs (NaN) are left out: GGUF readers refuse NaN values */
    if (!rc && isfinite(s->kl_initial))
        rc = gguf_writer_set_f32(w, "soft_prompt.kl_initial", (float)s->kl_initial);
    if (!rc && isfinite(s->kl_final))
        rc = gguf_writer_set_f32(w, "soft_prompt.kl_final", (float)s->kl_final);
    if (!rc) rc = gguf_writer_set_f32(w, "soft_prompt.seconds", (float)s->seconds);
    if (!rc) rc = gguf_writer_set_u32(w, "soft_prompt.steps", (uint32_t)s->steps);
    if (!rc) rc = gguf_writer_set_str(w, "soft_prompt.settings", s->settings);
    int64_t ne[2] = {s->C, s->n};
    if (!rc) rc = gguf_writer_add_tensor(w, "soft_prompt.embd", GGML_F32, 2, ne, s->v,
                                         (uint64_t)s->n * (uint64_t)s->C * sizeof(float));
    size_t pl = strlen(path);
    char *tmp = terse_malloc(pl + 32, "temporary name");
    if (!rc && !tmp) rc = TERSE_ERR_NOMEM;
    if (!rc) {
        snprintf(tmp, pl + 32, "%s.tmp.%d", path, (int)getpid());
        rc = gguf_writer_write(w, tmp); /* removes tmp on failure */
        if (!rc && rename(tmp, path) != 0) {
            remove(tmp);
            rc = terse_err(TERSE_ERR_IO, "soft prompt: cannot rename '%s' to '%s'", tmp, path);
        }
    }
    free(tmp);
    gguf_writer_free(w);
    return rc ? terse_err_wrap(rc, "writing soft prompt '%s'", path) : TERSE_OK;
}

static int get_str_copy(const gguf_file *g, const char *key, int required, char **out) {
    if (!gguf_get(g, key) && !required) { *out = NULL; return TERSE_OK; }
    gguf_str v;
    int rc = gguf_get_str(g, key, &v);
    if (rc) return rc;
    *out = dup_n(v.ptr, (size_t)v.len);
    return *out ? TERSE_OK : TERSE_ERR_NOMEM;
}

static int parse_hash(const char *s, const char *key, uint64_t *out) {
    unsigned long long h;
    char end;
    if (!s || sscanf(s, "fnv1a64:%16llx%c", &h, &end) != 1 || strlen(s) != 24)
        return terse_err(TERSE_ERR_FORMAT, "soft prompt: %s is '%s' (want fnv1a64:<16 hex digits>)",
                         key, s ? s : "");
    *out = h;
    return TERSE_OK;
}

int terse_soft_load(const char *path, const terse_model *m, terse_soft **out) {
    if (!path || !m || !out) return terse_err(TERSE_ERR_INVALID, "terse_soft_load: NULL argument");
    *out = NULL;
    gguf_file *g;
    int rc = gguf_open(path, 0, &g);
    if (rc) return terse_err_wrap(rc, "soft prompt '%s'", path);
    terse_soft *s = terse_calloc(1, sizeof *s, "soft prompt");
    char *arch = NULL, *hash = NULL, *phash = NULL;
    if (!s) rc = TERSE_ERR_NOMEM;
    gguf_str ga = {0};
    if (!rc && (gguf_get_str(g, "general.architecture", &ga) || !gguf_str_eq(ga, "soft_prompt")))
        rc = terse_err(TERSE_ERR_FORMAT, "not a soft prompt file (general.architecture is '%.*s')",
                       (int)(ga.len > 40 ? 40 : ga.len), ga.ptr ? ga.ptr : "");
    uint32_t n = 0, C = 0, nv = 0, nl = 0, pt = 0, steps = 0;
    float kli = NAN, klf = NAN, secs = 0;
    if (!rc) rc = gguf_get_u32(g, "soft_prompt.n_tokens", &n);
    if (!rc) rc = gguf_get_u32(g, "soft_prompt.n_embd", &C);
    if (!rc) rc = gguf_get_u32(g, "soft_prompt.model.n_vocab", &nv);
    if (!rc) rc = gguf_get_u32_or(g, "soft_prompt.model.n_layer", 0, &nl);
    if (!rc) rc = gguf_get_u32_or(g, "soft_prompt.prompt.tokens", 0, &pt);
    if (!rc) rc = gguf_get_u32_or(g, "soft_prompt.steps", 0, &steps);
    if (!rc) rc = gguf_get_f32_or(g, "soft_prompt.kl_initial", NAN, &kli);
    if (!rc) rc = gguf_get_f32_or(g, "soft_prompt.kl_final", NAN, &klf);
    if (!rc) rc = gguf_get_f32_or(g, "soft_prompt.seconds", 0, &secs);
    if (!rc) rc = get_str_copy(g, "soft_prompt.model.architecture", 1, &arch);
    if (!rc) rc = get_str_copy(g, "soft_prompt.model.name", 0, &s->model_name);
    if (!rc) rc = get_str_copy(g, "soft_prompt.model.embd_hash", 1, &hash);
    if (!rc) rc = get_str_copy(g, "soft_prompt.prompt.hash", 0, &phash);
    if (!rc) rc = get_str_copy(g, "soft_prompt.prompt.text", 0, &s->prompt);
    if (!rc) rc = get_str_copy(g, "soft_prompt.settings", 0, &s->settings);
    if (!rc) rc = parse_hash(hash, "soft_prompt.model.embd_hash", &s->embd_hash);
    if (!rc && phash) rc = parse_hash(phash, "soft_prompt.prompt.hash", &s->prompt_hash);
    if (!rc && (n < 1 || n > 1u << 20 || C < 1 || C > 1u << 16 || nv < 1 || !arch[0] || strlen(arch) >= sizeof s->arch))
        rc = terse_err(TERSE_ERR_FORMAT, "soft prompt: n_tokens %u, n_embd %u, n_vocab %u, "
                       "architecture '%.20s' out of range", n, C, nv, arch);
    const gguf_tensor *t = rc ? NULL : gguf_find_tensor(g, "soft_prompt.embd");
    if (!rc && !t) rc = terse_err(TERSE_ERR_FORMAT, "soft prompt: tensor soft_prompt.embd missing");
    if (!rc && (t->type != GGML_F32 || t->n_dims != 2 || t->ne[0] != (int64_t)C || t->ne[1] != (int64_t)n))
        rc = terse_err(TERSE_ERR_FORMAT, "soft prompt: tensor soft_prompt.embd is %s [%lld, %lld], "
                       "want F32 [%u, %u]", gguf_type_name(t->type), (long long)t->ne[0],
                       (long long)t->ne[1], C, n);
    if (!rc) {
        s->n = (int32_t)n;
        s->C = (int32_t)C;
        s->n_vocab = (int32_t)nv;
        s->n_layer = (int32_t)nl;
        s->prompt_tokens = (int32_t)(pt > INT32_MAX ? 0 : pt);
        s->steps = (int32_t)(steps > INT32_MAX ? 0 : steps);
        s->kl_initial = kli;
        s->kl_final = klf;
        s->seconds = secs;
        s->prompt_len = s->prompt ? strlen(s->prompt) : 0;
        snprintf(s->arch, sizeof s->arch, "%s", arch);
        if (!s->model_name && !(s->model_name = dup_n("", 0))) rc = TERSE_ERR_NOMEM;
        if (!s->settings && !(s->settings = dup_n("", 0))) rc = TERSE_ERR_NOMEM;
        s->v = terse_malloc((size_t)n * C * sizeof *s->v, "soft prompt vectors");
        if (!rc && !s->v) rc = TERSE_ERR_NOMEM;
        if (!rc) memcpy(s->v, t->data, (size_t)n * C * sizeof *s->v);
        for (size_t i = 0; !rc && i < (size_t)n * C; i++)
            if (!isfinite(s->v[i]))
                rc = terse_err(TERSE_ERR_FORMAT, "soft prompt: value %zu is not finite", i);
    }
    if (!rc) rc = check_model(s, m);
    free(arch);
    free(hash);
    free(phash);
    gguf_close(g);
    if (rc) {
        terse_soft_free(s);
        return terse_err_wrap(rc, "soft prompt '%s'", path);
    }
    *out = s;
    return TERSE_OK;
}

void terse_soft_get_info(const terse_soft *s, terse_soft_info *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    if (!s) return;
    o->n_tokens = s->n;
    o->n_embd = s->C;
    o->arch = s->arch;
    o->model_name = s->model_name;
    o->embd_hash = s->embd_hash;
    o->prompt_hash = s->prompt_hash;
    o->prompt_tokens = s->prompt_tokens;
    o->prompt = s->prompt;
    o->prompt_len = s->prompt_len;
    o->kl_initial = s->kl_initial;
    o->kl_final = s->kl_final;
    o->steps = s->steps;
    o->seconds = s->seconds;
    o->settings = s->settings;
}

const float *terse_soft_vectors(const terse_soft *s) { return s ? s->v : NULL; }

/* ---------------------------------------------------------------------------------------- */
/* Use                                                                                       */

int terse_soft_prefix(terse_ctx *c, const terse_soft *s) {
    if (!c || !s) return terse_err(TERSE_ERR_INVALID, "terse_soft_prefix: NULL argument");
    int rc = check_model(s, c->m);
    if (rc) return rc;
    int32_t bos = c->m->vocab ? terse_vocab_bos(c->m->vocab) : -1;
    if ((bos >= 0) + s->n > c->n_ctx)
        return terse_err(TERSE_ERR_RANGE, "soft prompt of %d vectors exceeds the context of %d",
                         s->n, c->n_ctx);
    terse_kv_clear(c);
    if (bos >= 0) {
        terse_batch b = {.n = 1, .ids = &bos};
        if ((rc = terse_eval(c, &b))) return rc;
    }
    terse_batch b = {.n = s->n, .embd = s->v};
    if ((rc = terse_eval(c, &b))) return rc;
    return c->kv_len;
}

int terse_soft_kl(terse_ctx *c, const char *prompt, size_t len, const terse_soft *s,
                  const char *cond, size_t cond_len, int32_t n_samples, int32_t cont_len,
                  uint64_t seed, int reverse, double *kl) {
    if (!c || !kl || (!prompt && len) || (!cond && cond_len))
        return terse_err(TERSE_ERR_INVALID, "terse_soft_kl: NULL argument");
    const terse_model *m = c->m;
    if (!m->vocab) return terse_err(TERSE_ERR_INVALID, "soft kl: the model has no vocabulary");
    if (n_samples < 1 || cont_len < 2)
        return terse_err(TERSE_ERR_INVALID, "soft kl: %d samples of %d tokens", n_samples, cont_len);
    int32_t bos = terse_vocab_bos(m->vocab), nb = bos >= 0, V = m->n_vocab;
    int32_t *pids = NULL, np = 0, *cids = NULL, nc = 0, *xs = NULL;
    float *P = NULL, *Q = NULL, *first = NULL;
    int rc = tokenize_all(m->vocab, prompt ? prompt : "", len, &pids, &np);
    if (!rc && np + nb == 0) rc = terse_err(TERSE_ERR_INVALID, "soft kl: empty prompt and no BOS");
    if (!rc && !s) rc = tokenize_all(m->vocab, cond ? cond : "", cond_len, &cids, &nc);
    if (!rc && !s && nc + nb == 0) rc = terse_err(TERSE_ERR_INVALID, "soft kl: empty condition and no BOS");
    int32_t cond_n = s ? nb + s->n : nb + nc;
    if (!rc && (np + nb + cont_len > c->n_ctx || cond_n + cont_len > c->n_ctx))
        rc = terse_err(TERSE_ERR_RANGE, "soft kl: prompt (%d) or condition (%d) + %d tokens exceed "
                       "the context of %d", np + nb, cond_n, cont_len, c->n_ctx);
    size_t rows = (size_t)n_samples * (size_t)cont_len * (size_t)V;
    if (!rc) {
        P = terse_malloc(rows * sizeof *P, "teacher rows");
        Q = terse_malloc(rows * sizeof *Q, "student rows");
        first = terse_malloc((size_t)V * sizeof *first, "row");
        xs = terse_malloc((size_t)n_samples * cont_len * sizeof *xs, "continuations");
        if (!P || !Q || !first || !xs) rc = TERSE_ERR_NOMEM;
    }
    /* BOS + prompt: continuations, then the teacher's rows */
    if (!rc) {
        int32_t *full = terse_malloc((size_t)(np + 1) * sizeof *full, "ids");
        if (!full) rc = TERSE_ERR_NOMEM;
        if (!rc) {
            if (nb) full[0] = bos;
            memcpy(full + nb, pids, (size_t)np * sizeof *full);
            rc = distill_sample(c, full, np + nb, n_samples, cont_len, 1.0f, seed, xs, P);
        }
        free(full);
    }
    /* the condition */
    if (!rc) {
        int32_t at;
        if (s) {
            rc = terse_soft_prefix(c, s);
            at = s->n - 1;
        } else {
            terse_kv_clear(c);
            int32_t *ci = terse_malloc((size_t)(nc + 1) * sizeof *ci, "ids");
            if (!ci) rc = TERSE_ERR_NOMEM;
            if (!rc) {
                if (nb) ci[0] = bos;
                memcpy(ci + nb, cids, (size_t)nc * sizeof *ci);
                terse_batch b = {.n = nc + nb, .ids = ci};
                rc = terse_eval(c, &b);
            }
            free(ci);
            at = nc + nb - 1;
        }
        if (rc > 0) rc = 0;
        if (!rc) rc = terse_eval_logits(c, at, first, 1);
        if (!rc) rc = distill_rows(c, first, xs, n_samples, cont_len, Q);
    }
    if (!rc) {
        double sum = 0;
        for (size_t r = 0; r < (size_t)n_samples * cont_len; r++)
            sum += reverse ? kl_rows(Q + r * V, P + r * V, V) : kl_rows(P + r * V, Q + r * V, V);
        *kl = sum / ((double)n_samples * cont_len);
    }
    free(pids);
    free(cids);
    free(xs);
    free(P);
    free(Q);
    free(first);
    return rc;
}

int terse_soft_score(terse_ctx *c, const terse_soft *s, const int32_t *ids, int32_t n, float *out) {
    if (!c || !s || (!ids && n) || (!out && n) || n < 0)
        return terse_err(TERSE_ERR_INVALID, "terse_soft_score: NULL argument or n %d", n);
    int rc = terse_soft_prefix(c, s);
    if (rc < 0) return rc;
    if (n == 0) return TERSE_OK;
    if (rc + n - 1 > c->n_ctx)
        return terse_err(TERSE_ERR_RANGE, "soft prompt (%d) + %d tokens exceed the context of %d",
                         rc, n, c->n_ctx);
    int32_t V = c->m->n_vocab;
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return terse_err(TERSE_ERR_INVALID, "token %d: id %d outside [0, %d)", i, ids[i], V);
    float *row = terse_malloc((size_t)V * sizeof *row, "row");
    if (!row) return TERSE_ERR_NOMEM;
    rc = terse_eval_logits(c, s->n - 1, row, 1);
    out[0] = -row[ids[0]];
    free(row);
    if (rc) return rc;
    if (n == 1) return TERSE_OK;
    terse_batch b = {.n = n - 1, .ids = ids};
    if ((rc = terse_eval(c, &b))) return rc;
    if ((rc = terse_eval_logprobs(c, ids + 1, n - 1, out + 1))) return rc;
    for (int32_t i = 1; i < n; i++) out[i] = -out[i];
    return TERSE_OK;
}
