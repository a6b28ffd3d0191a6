/* adamw.c - AdamW with warm-up + cosine schedule, global-norm clipping, a seeded random
 * stream, and state files that resume bit for bit (adamw.h).
 *
 * Bit-exactness: a step reads only the gradients, m, v, w and the step count, in a fixed
 * order, with no threads; the state file stores every float's bits (native little-endian,
 * the only byte order this codebase supports) and the random stream's 64-bit state. So
 * "k steps, save, load into a fresh optimiser, n - k steps" equals "n steps" exactly.
 * Not here: gradients (nn/grad.h), data, other optimisers.
 */
#include "train/adamw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct train_adamw {
    train_adamw_params p;
    train_tensor *t;
    int n;
    float **m, **v;        /* (n) moment buffers */
    int64_t step;
    uint64_t rng;
};

train_adamw_params train_adamw_default_params(void) {
    train_adamw_params p = {.lr = 1e-3f, .min_lr = 0.0f, .warmup_steps = 0, .total_steps = 0,
                            .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                            .clip_norm = 0.0f, .seed = 1};
    return p;
}

static int check_params(const train_adamw_params *p) {
    if (!(p->lr > 0) || !(p->min_lr >= 0) || !(p->min_lr <= p->lr) || p->warmup_steps < 0 ||
        p->total_steps < 0 || !(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) ||
        !(p->eps > 0) || !(p->weight_decay >= 0) || !(p->clip_norm >= 0))
        return terse_err(TERSE_ERR_INVALID, "adamw: bad parameters (lr %g, min_lr %g, warmup %lld, "
                         "total %lld, betas %g %g, eps %g, weight_decay %g, clip %g)",
                         (double)p->lr, (double)p->min_lr, (long long)p->warmup_steps,
                         (long long)p->total_steps, (double)p->beta1, (double)p->beta2,
                         (double)p->eps, (double)p->weight_decay, (double)p->clip_norm);
    return TERSE_OK;
}

int train_adamw_new(const train_adamw_params *p, const train_tensor *t, int n_tensors,
                    train_adamw **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "adamw: out is NULL");
    *out = NULL;
    if (!p || !t || n_tensors < 1)
        return terse_err(TERSE_ERR_INVALID, "adamw: no tensors to optimise");
    int rc = check_params(p);
    if (rc) return rc;
    for (int i = 0; i < n_tensors; i++)
        if (!t[i].w || !t[i].g || t[i].n < 1)
            return terse_err(TERSE_ERR_INVALID, "adamw: tensor %d has a NULL pointer or %lld "
                             "values", i, (long long)t[i].n);
    train_adamw *o = terse_calloc(1, sizeof *o, "adamw");
    if (!o) return TERSE_ERR_NOMEM;
    o->p = *p;
    o->n = n_tensors;
    o->rng = p->seed;
    o->t = terse_malloc(sizeof *o->t * (size_t)n_tensors, "adamw tensors");
    o->m = o->t ? terse_calloc((size_t)n_tensors, sizeof *o->m, "adamw moments") : NULL;
    o->v = o->m ? terse_calloc((size_t)n_tensors, sizeof *o->v, "adamw moments") : NULL;
    if (!o->v) {
        train_adamw_free(o);
        return TERSE_ERR_NOMEM;
    }
    memcpy(o->t, t, sizeof *t * (size_t)n_tensors);
    for (int i = 0; i < n_tensors; i++) {
        o->m[i] = terse_calloc((size_t)t[i].n, sizeof(float), "adamw first moment");
        o->v[i] = o->m[i] ? terse_calloc((size_t)t[i].n, sizeof(float), "adamw second moment") : NULL;
        if (!o->v[i]) {
            train_adamw_free(o);
            return TERSE_ERR_NOMEM;
        }
    }
    *out = o;
    return TERSE_OK;
}

void train_adamw_free(train_adamw *o) {
    if (!o) return;
    for (int i = 0; o->m && i < o->n; i++) free(o->m[i]);
    for (int i = 0; o->v && i < o->n; i++) free(o->v[i]);
    free(o->m);
    free(o->v);
    free(o->t);
    free(o);
}

int64_t train_adamw_steps(const train_adamw *o) { return o ? o->step : 0; }

float train_adamw_lr(const train_adamw_params *p, int64_t s) {
    if (p->warmup_steps > 0 && s <= p->warmup_steps)
        return p->lr * (float)s / (float)p->warmup_steps;
    if (p->total_steps <= 0) return p->lr;
    if (s >= p->total_steps) return p->min_lr;
    double span = (double)(p->total_steps - p->warmup_steps);
    double frac = span > 0 ? (double)(s - p->warmup_steps) / span : 1.0;
    return (float)(p->min_lr + 0.5 * (p->lr - p->min_lr) * (1.0 + cos(M_PI * frac)));
}

int train_adamw_step(train_adamw *o, double *grad_norm, float *lr_out) {
    if (!o) return terse_err(TERSE_ERR_INVALID, "adamw: NULL optimiser");
    double ss = 0;
    for (int i = 0; i < o->n; i++)
        for (int64_t k = 0; k < o->t[i].n; k++) ss += (double)o->t[i].g[k] * o->t[i].g[k];
    const double norm = sqrt(ss);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return terse_err(TERSE_ERR_RANGE, "adamw: gradient norm is %g at step %lld; nothing "
                         "updated", norm, (long long)o->step + 1);
    const train_adamw_params *p = &o->p;
    const int64_t s = o->step + 1;
    const float lr = train_adamw_lr(p, s);
    if (lr_out) *lr_out = lr;
    const float scale = p->clip_norm > 0 && norm > p->clip_norm ? (float)(p->clip_norm / norm) : 1.0f;
    const float b1 = p->beta1, b2 = p->beta2;
    const float c1 = (float)(1.0 - pow(b1, (double)s)), c2 = (float)(1.0 - pow(b2, (double)s));
    for (int i = 0; i < o->n; i++) {
        const train_tensor *t = &o->t[i];
        float *m = o->m[i], *v = o->v[i];
        const float wd = t->decay ? p->weight_decay : 0.0f;
        for (int64_t k = 0; k < t->n; k++) {
            float g = t->g[k] * scale;
            m[k] = b1 * m[k] + (1.0f - b1) * g;
            v[k] = b2 * v[k] + (1.0f - b2) * g * g;
            float mh = m[k] / c1, vh = v[k] / c2;
            t->w[k] -= lr * (mh / (sqrtf(vh) + p->eps) + wd * t->w[k]);
        }
    }
    o->step = s;
    return TERSE_OK;
}

/* splitmix64 */
uint64_t train_adamw_rand_u64(train_adamw *o) {
    uint64_t z = (o->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double train_adamw_rand(train_adamw *o) {
    return (double)(train_adamw_rand_u64(o) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------------------------------- */
/* State files                                                                               */

#define MAGIC "TRSADAMW"
#define VERSION 1u

typedef struct {
    FILE *f;
    uint64_t h;            /* FNV-1a of everything written / read */
    int err;
} stream;

static void fnv(uint64_t *h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 0x100000001B3ull;
}

static void put(stream *s, const void *p, size_t n) {
    if (s->err) return;
    fnv(&s->h, p, n);
    if (fwrite(p, 1, n, s->f) != n) s->err = 1;
}

static int get(stream *s, void *p, size_t n) {
    if (s->err || fread(p, 1, n, s->f) != n) return s->err = 1, -1;
    fnv(&s->h, p, n);
    return 0;
}

int train_adamw_save(const train_adamw *o, const char *path) {
    if (!o || !path) return terse_err(TERSE_ERR_INVALID, "adamw save: NULL argument");
    size_t len = strlen(path);
    char *tmp = terse_malloc(len + 32, "adamw temporary name");
    if (!tmp) return TERSE_ERR_NOMEM;
    snprintf(tmp, len + 32, "%s.tmp.%d", path, (int)getpid());
    stream s = {fopen(tmp, "wb"), 0xCBF29CE484222325ull, 0};
    if (!s.f) {
        free(tmp);
        return terse_err(TERSE_ERR_IO, "adamw save: cannot create '%s'", path);
    }
    uint32_t version = VERSION, n = (uint32_t)o->n;
    put(&s, MAGIC, 8);
    put(&s, &version, 4);
    put(&s, &n, 4);
    put(&s, &o->step, 8);
    put(&s, &o->rng, 8);
    for (int i = 0; i < o->n; i++) {
        put(&s, &o->t[i].n, 8);
        put(&s, o->t[i].w, sizeof(float) * (size_t)o->t[i].n);
        put(&s, o->m[i], sizeof(float) * (size_t)o->t[i].n);
        put(&s, o->v[i], sizeof(float) * (size_t)o->t[i].n);
    }
    uint64_t h = s.h;
    put(&s, &h, 8);
    int bad = s.err | (fclose(s.f) != 0);
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return terse_err(TERSE_ERR_IO, "adamw save: writing '%s' failed", path);
    }
    free(tmp);
    return TERSE_OK;
}

/* Everything is read and checked into fresh buffers first; o changes only at the end. */
int train_adamw_load(train_adamw *o, const char *path) {
    if (!o || !path) return terse_err(TERSE_ERR_INVALID, "adamw load: NULL argument");
    stream s = {fopen(path, "rb"), 0xCBF29CE484222325ull, 0};
    if (!s.f) return terse_err(TERSE_ERR_IO, "adamw load: cannot open '%s'", path);
    char magic[8];
    uint32_t version = 0, n = 0;
    int64_t step = 0;
    uint64_t rng = 0, h = 0;
    float **buf = NULL;
    int rc = TERSE_OK;
    if (get(&s, magic, 8) || memcmp(magic, MAGIC, 8) || get(&s, &version, 4) ||
        version != VERSION || get(&s, &n, 4) || get(&s, &step, 8) || get(&s, &rng, 8)) {
        rc = terse_err(TERSE_ERR_FORMAT, "adamw load: '%s' is not an optimiser state (version %u)",
                       path, VERSION);
        goto done;
    }
    if (n != (uint32_t)o->n || step < 0) {
        rc = terse_err(TERSE_ERR_FORMAT, "adamw load: '%s' holds %u tensors at step %lld, this "
                       "optimiser has %d", path, n, (long long)step, o->n);
        goto done;
    }
    buf = terse_calloc((size_t)o->n * 3, sizeof *buf, "adamw load buffers");
    if (!buf) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < o->n; i++) {
        int64_t ni = 0;
        if (get(&s, &ni, 8) || ni != o->t[i].n) {
            rc = terse_err(TERSE_ERR_FORMAT, "adamw load: '%s': tensor %d has %lld values, "
                           "expected %lld", path, i, (long long)ni, (long long)o->t[i].n);
            goto done;
        }
        for (int k = 0; k < 3; k++) {
            buf[3 * i + k] = terse_malloc(sizeof(float) * (size_t)ni, "adamw load");
            if (!buf[3 * i + k]) {
                rc = TERSE_ERR_NOMEM;
                goto done;
            }
            if (get(&s, buf[3 * i + k], sizeof(float) * (size_t)ni)) {
                rc = terse_err(TERSE_ERR_FORMAT, "adamw load: '%s' is truncated", path);
                goto done;
            }
        }
    }
    uint64_t want = s.h;
    if (get(&s, &h, 8) || h != want || fgetc(s.f) != EOF) {
        rc = terse_err(TERSE_ERR_FORMAT, "adamw load: '%s' is truncated or corrupt (checksum)",
                       path);
        goto done;
    }
    for (int i = 0; i < o->n; i++) {
        size_t bytes = sizeof(float) * (size_t)o->t[i].n;
        memcpy(o->t[i].w, buf[3 * i], bytes);
        memcpy(o->m[i], buf[3 * i + 1], bytes);
        memcpy(o->v[i], buf[3 * i + 2], bytes);
    }
    o->step = step;
    o->rng = rng;
done:
    if (buf)
        for (int i = 0; i < 3 * o->n; i++) free(buf[i]);
    free(buf);
    fclose(s.f);
    return rc;
}
