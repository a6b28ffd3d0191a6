/* distill.c - the soft-prompt training loop (see distill.h): continuations and teacher rows
 * with the scoring runtime (terse_ctx: KV cache, nothing kept for gradients), then AdamW on
 * the N input vectors through nn_grad's forward and backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/grad.h"
#include "train/adamw.h"
#include "train/distill.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int distill_init(const terse_model *m, const int32_t *prompt, int32_t n, int32_t N,
                 terse_soft_init init, uint64_t seed, float *P) {
    const int64_t C = m->n_embd;
    uint64_t s = seed ^ 0x5eedf00dull;
    for (int32_t i = 0; i < N; i++) {
        int32_t id;
        if (init == TERSE_SOFT_INIT_RANDOM || n < 1) {
            id = (int32_t)(splitmix64(&s) % (uint64_t)m->n_vocab);
        } else {
            int64_t at = (int64_t)(((double)i + 0.5) * (double)n / (double)N);
            if (at >= n) at = n - 1;
            id = prompt[at];
        }
        nn_matrix_row(&m->tok_embd, id, P + (int64_t)i * C);
    }
    return TERSE_OK;
}

int distill_sample(terse_ctx *c, const int32_t *ids, int32_t n, int32_t n_samples, int32_t L,
                   float temperature, uint64_t seed, int32_t *xs) {
    terse_kv_clear(c);
    int rc = TERSE_OK;
    if (n > 1) {
        terse_batch b = {.n = n - 1, .ids = ids};
        rc = terse_eval(c, &b);
    }
    terse_sample_params sp = terse_sample_default_params();
    sp.temperature = temperature;
    sp.stop_at_eos = 0;
    for (int32_t s = 0; !rc && s < n_samples; s++) {
        if ((rc = terse_kv_truncate(c, n - 1))) break;
        sp.seed = seed + (uint64_t)s;
        int32_t got = terse_generate(c, ids + n - 1, 1, sp, xs + (int64_t)s * L, L);
        if (got < 0) rc = got;
        else if (got < L) rc = terse_err(TERSE_ERR_RANGE, "distill: sampling stopped after %d of %d "
                                         "tokens (context full)", got, L);
    }
    return rc;
}

int distill_rows(terse_ctx *c, const float *first, const int32_t *xs, int32_t n_samples,
                 int32_t L, float *rows) {
    const int64_t V = c->m->n_vocab;
    const int32_t k = terse_kv_len(c);
    int rc = TERSE_OK;
    for (int32_t s = 0; !rc && s < n_samples; s++) {
        float *r = rows + (int64_t)s * L * V;
        memcpy(r, first, (size_t)V * sizeof *r);
        if ((rc = terse_kv_truncate(c, k))) break;
        terse_batch b = {.n = L - 1, .ids = xs + (int64_t)s * L};
        if ((rc = terse_eval(c, &b))) break;
        for (int32_t t = 1; !rc && t < L; t++) rc = terse_eval_logits(c, t - 1, r + t * V, 1);
    }
    return rc;
}

/* The caller's continuations: one per non-empty line, cut to L tokens; lines of fewer than
 * L tokens are skipped (every continuation has L tokens). At most cap lines. */
static int data_lines(const terse_model *m, const char *text, size_t len, int32_t L, int32_t cap,
                      int32_t **xs_out, int32_t *n_out) {
    int32_t *xs = terse_malloc((size_t)cap * L * sizeof *xs, "continuations"), n = 0;
    int32_t *tmp = terse_malloc((size_t)(L + 1) * sizeof *tmp, "line ids");
    int rc = xs && tmp ? TERSE_OK : TERSE_ERR_NOMEM;
    int64_t short_lines = 0;
    for (size_t a = 0; !rc && a < len && n < cap;) {
        size_t b = a;
        while (b < len && text[b] != '\n') b++;
        if (b > a) {
            int64_t k = terse_tokenize(m->vocab, text + a, b - a, 0, tmp, NULL, L);
            if (k < 0) rc = (int)k;
            else if (k >= L) memcpy(xs + (int64_t)n++ * L, tmp, (size_t)L * sizeof *xs);
            else short_lines++;
        }
        a = b + 1;
    }
    free(tmp);
    if (!rc && n == 0)
        rc = terse_err(TERSE_ERR_INVALID, "distill: the data has no line of at least %d tokens "
                       "(%lld shorter lines)", L, (long long)short_lines);
    if (rc) { free(xs); return rc; }
    *xs_out = xs;
    *n_out = n;
    return TERSE_OK;
}

typedef struct {
    const terse_model *m;
    nn_grad *g;
    int32_t nb, N, L, T, bos;
    int64_t C, V;
    int32_t *ids;           /* (T) BOS, -1 x N, x_0..x_{L-2} */
    float *embd;            /* (T, C) rows nb..nb+N-1 = P */
    float *teacher;         /* (T, V) rows before nb+N-1 stay 0 (weight 0) */
    float *weight;          /* (T) */
    float *dlogits;         /* (T, V) */
    float *d_embd;          /* (T, C) */
    int reverse;
} student;

/* loss of sample x against its teacher rows (L, V); with grad, adds scale * dL/dP to G */
static int student_loss(student *s, const float *P, const int32_t *x, const float *rows,
                        float *G, float scale, double *loss) {
    memcpy(s->embd + s->nb * s->C, P, (size_t)(s->N * s->C) * sizeof *P);
    memcpy(s->ids + s->nb + s->N, x, (size_t)(s->L - 1) * sizeof *x);
    memcpy(s->teacher + (int64_t)(s->nb + s->N - 1) * s->V, rows,
           (size_t)(s->L * s->V) * sizeof *rows);
    const float *logits;
    int rc = nn_grad_forward(s->g, s->ids, s->embd, s->T, NULL, &logits);
    if (rc) return rc;
    *loss = nn_loss_kl(logits, s->teacher, s->weight, s->T, (int32_t)s->V, s->reverse,
                       G ? s->dlogits : NULL);
    if (!G) return TERSE_OK;
    if ((rc = nn_grad_backward(s->g, s->dlogits, s->d_embd))) return rc;
    const float *d = s->d_embd + s->nb * s->C;
    for (int64_t i = 0; i < s->N * s->C; i++) G[i] += scale * d[i];
    return TERSE_OK;
}

/* mean loss over all samples (forward only) */
static int full_loss(student *s, const float *P, const int32_t *xs, const float *rows,
                     int32_t n_samples, double *out) {
    double sum = 0, l;
    for (int32_t i = 0; i < n_samples; i++) {
        int rc = student_loss(s, P, xs + (int64_t)i * s->L, rows + (int64_t)i * s->L * s->V,
                              NULL, 0, &l);
        if (rc) return rc;
        sum += l;
    }
    *out = sum / n_samples;
    return TERSE_OK;
}

int distill_run(const terse_model *m, const int32_t *prompt, int32_t n, int32_t bos,
                const terse_distill_params *p, float *P, distill_stats *st) {
    double t0 = terse_now();
    memset(st, 0, sizeof *st);
    const int32_t nb = bos >= 0, N = p->n_tokens, L = p->cont_len;
    const int64_t C = m->n_embd, V = m->n_vocab;
    int32_t n_samples = p->n_samples, *xs = NULL, *full = NULL, *order = NULL;
    float *rows = NULL, *first = NULL, *G = NULL;
    terse_ctx *c = NULL;
    nn_grad *g = NULL;
    train_adamw *opt = NULL;
    student s;
    memset(&s, 0, sizeof s);
    int rc;

    /* 1. continuations and the teacher's rows, with the fast runtime */
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_ctx = nb + n + L;
    cp.n_threads = p->n_threads;
    if ((rc = terse_ctx_new(m, cp, &c))) goto done;
    full = terse_malloc((size_t)(nb + n) * sizeof *full, "prompt ids");
    first = terse_malloc((size_t)V * sizeof *first, "row");
    if (!full || !first) { rc = TERSE_ERR_NOMEM; goto done; }
    if (nb) full[0] = bos;
    memcpy(full + nb, prompt, (size_t)n * sizeof *full);
    if (p->data) {
        rc = data_lines(m, p->data, p->data_len, L, n_samples, &xs, &n_samples);
    } else {
        xs = terse_malloc((size_t)n_samples * L * sizeof *xs, "continuations");
        rc = xs ? distill_sample(c, full, nb + n, n_samples, L, p->temperature, p->seed, xs)
                : TERSE_ERR_NOMEM;
    }
    if (rc) goto done;
    rows = terse_malloc((size_t)n_samples * L * V * sizeof *rows, "teacher rows");
    if (!rows) { rc = TERSE_ERR_NOMEM; goto done; }
    terse_kv_clear(c);
    terse_batch b = {.n = nb + n, .ids = full};
    if ((rc = terse_eval(c, &b))) goto done;
    if ((rc = terse_eval_logits(c, nb + n - 1, first, 1))) goto done;
    if ((rc = distill_rows(c, first, xs, n_samples, L, rows))) goto done;
    terse_ctx_free(c);
    c = NULL;
    st->seconds_teacher = terse_now() - t0;

    /* 2. the student */
    s.m = m;
    s.nb = nb, s.N = N, s.L = L, s.T = nb + N + L - 1, s.bos = bos, s.C = C, s.V = V;
    s.reverse = p->reverse;
    nn_grad_params gp = {.max_tokens = s.T, .weight_grads = 0, .n_threads = p->n_threads};
    if ((rc = nn_grad_new(m, gp, &g))) goto done;
    s.g = g;
    s.ids = terse_malloc((size_t)s.T * sizeof *s.ids, "student ids");
    s.embd = terse_calloc((size_t)s.T * C, sizeof *s.embd, "student rows");
    s.teacher = terse_calloc((size_t)s.T * V, sizeof *s.teacher, "teacher rows");
    s.weight = terse_calloc((size_t)s.T, sizeof *s.weight, "row weights");
    s.dlogits = terse_malloc((size_t)s.T * V * sizeof *s.dlogits, "dlogits");
    s.d_embd = terse_malloc((size_t)s.T * C * sizeof *s.d_embd, "d_embd");
    G = terse_malloc((size_t)N * C * sizeof *G, "soft prompt gradient");
    order = terse_malloc((size_t)n_samples * sizeof *order, "sample order");
    if (!s.ids || !s.embd || !s.teacher || !s.weight || !s.dlogits || !s.d_embd || !G || !order) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    if (nb) s.ids[0] = bos;
    for (int32_t i = nb; i < nb + N; i++) s.ids[i] = -1;
    for (int32_t t = nb + N - 1; t < s.T; t++) s.weight[t] = 1;

    train_adamw_params ap = train_adamw_default_params();
    ap.lr = p->lr;
    ap.min_lr = p->lr * 0.1f;
    ap.warmup_steps = (int64_t)(p->warmup * (float)p->steps);
    ap.total_steps = p->steps;
    ap.weight_decay = p->weight_decay;
    ap.clip_norm = p->clip;
    ap.seed = p->seed;
    train_tensor tt = {.w = P, .g = G, .n = (int64_t)N * C, .decay = 1};
    if ((rc = train_adamw_new(&ap, &tt, 1, &opt))) goto done;

    if ((rc = full_loss(&s, P, xs, rows, n_samples, &st->kl_initial))) goto done;
    /* batches: a seeded shuffle of the samples, reshuffled at each pass */
    int32_t at = n_samples;
    double t_loop = terse_now();
    for (int32_t step = 1; step <= p->steps; step++) {
        memset(G, 0, (size_t)N * C * sizeof *G);
        double loss = 0, l;
        for (int32_t k = 0; k < p->batch; k++) {
            if (at == n_samples) {
                for (int32_t i = 0; i < n_samples; i++) order[i] = i;
                for (int32_t i = n_samples - 1; i > 0; i--) {
                    int32_t j = (int32_t)(train_adamw_rand_u64(opt) % (uint64_t)(i + 1));
                    int32_t t = order[i]; order[i] = order[j]; order[j] = t;
                }
                at = 0;
            }
            int32_t i = order[at++];
            rc = student_loss(&s, P, xs + (int64_t)i * L, rows + (int64_t)i * L * V, G,
                              1.0f / (float)p->batch, &l);
            if (rc) goto done;
            loss += l / p->batch;
        }
        if ((rc = train_adamw_step(opt, NULL, NULL))) goto done;
        st->steps = step;
        if (p->progress) {
            double el = terse_now() - t_loop;
            p->progress(p->progress_user, step, p->steps, loss, el / step * (p->steps - step));
        }
    }
    rc = full_loss(&s, P, xs, rows, n_samples, &st->kl_final);
done:
    terse_ctx_free(c);
    nn_grad_free(g);
    train_adamw_free(opt);
    free(s.ids);
    free(s.embd);
    free(s.teacher);
    free(s.weight);
    free(s.dlogits);
    free(s.d_embd);
    free(G);
    free(order);
    free(xs);
    free(full);
    free(first);
    free(rows);
    st->seconds = terse_now() - t0;
    return rc;
}
