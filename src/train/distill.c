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

static void log_softmax(float *x, int64_t V) {
    float mx = x[0];
    for (int64_t v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp((double)(x[v] - mx));
    float lse = mx + (float)log(sum);
    for (int64_t v = 0; v < V; v++) x[v] -= lse;
}

/* a token from log-probabilities at temperature T (0: argmax; ties: lower id) */
static int32_t draw(const float *logp, int64_t V, float T, uint64_t *rng) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++) best = logp[v] > logp[best] ? v : best;
    if (T <= 0) return (int32_t)best;
    double sum = 0, mx = logp[best] / T;
    for (int64_t v = 0; v < V; v++) sum += exp(logp[v] / T - mx);
    double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * sum, acc = 0;
    for (int64_t v = 0; v < V; v++) {
        acc += exp(logp[v] / T - mx);
        if (acc > u) return (int32_t)v;
    }
    return (int32_t)best;
}

/* log-softmax rows of the last eval's hidden rows [i, i+n) into out (n, V) */
static void rows_from_hidden(terse_ctx *c, int32_t i, int32_t n, float *out) {
    const int64_t V = c->m->n_vocab;
    nn_logits_chunk(c, c->hidden + (int64_t)i * c->m->n_embd, n, 0, (int32_t)V, out);
    for (int32_t r = 0; r < n; r++) log_softmax(out + r * V, V);
}

/* Sequences of a group run side by side in the cache after a prefix of k entries, with a
 * mask: each sees the prefix and its own tokens, at positions k, k+1, ... (keys carry their
 * rotary position, so this is the same computation as one sequence at a time). */
int distill_sample(terse_ctx *c, const int32_t *ids, int32_t n, int32_t n_samples, int32_t L,
                   float temperature, uint64_t seed, int32_t *xs, float *rows) {
    const int64_t V = c->m->n_vocab;
    const int32_t g = (c->n_ctx - n) / (L > 1 ? L - 1 : 1) < n_samples ?
                      (c->n_ctx - n) / (L > 1 ? L - 1 : 1) : n_samples;
    if (g < 1) return terse_err(TERSE_ERR_RANGE, "distill: prompt %d + %d tokens exceed the context "
                                "of %d", n, L, c->n_ctx);
    float *first = terse_malloc((size_t)V * sizeof *first, "row");
    float *buf = terse_malloc((size_t)g * V * sizeof *buf, "rows");
    int32_t *in = terse_malloc((size_t)g * 2 * sizeof *in, "batch");
    uint8_t *mask = terse_malloc((size_t)g * (n + (size_t)g * L), "mask");
    uint64_t *rng = terse_malloc((size_t)g * sizeof *rng, "rng");
    int rc = first && buf && in && mask && rng ? TERSE_OK : TERSE_ERR_NOMEM;
    terse_kv_clear(c);
    if (!rc) {
        terse_batch b = {.n = n, .ids = ids};
        rc = terse_eval(c, &b);
    }
    if (!rc) rows_from_hidden(c, n - 1, 1, first);
    for (int32_t s0 = 0; !rc && s0 < n_samples; s0 += g) {
        int32_t gn = n_samples - s0 < g ? n_samples - s0 : g;
        if ((rc = terse_kv_truncate(c, n))) break;
        for (int32_t j = 0; j < gn; j++) {
            uint64_t sd = seed + (uint64_t)(s0 + j);
            rng[j] = splitmix64(&sd);
            if (rows) memcpy(rows + (int64_t)(s0 + j) * L * V, first, (size_t)V * sizeof *first);
            xs[(int64_t)(s0 + j) * L] = draw(first, V, temperature, &rng[j]);
        }
        for (int32_t t = 1; !rc && t < L; t++) {
            int32_t kv = terse_kv_len(c), w = kv + gn;
            int32_t *pos = in + gn;
            memset(mask, 0, (size_t)gn * w);
            for (int32_t j = 0; j < gn; j++) {
                in[j] = xs[(int64_t)(s0 + j) * L + t - 1];
                pos[j] = n + t - 1;
                uint8_t *row = mask + (size_t)j * w;
                memset(row, 1, (size_t)n);
                for (int32_t u = 0; u < t; u++) row[n + u * gn + j] = 1; /* its own, this one too */
            }
            terse_batch b = {.n = gn, .ids = in, .pos = pos, .mask = mask};
            if ((rc = terse_eval(c, &b))) break;
            rows_from_hidden(c, 0, gn, buf);
            for (int32_t j = 0; j < gn; j++) {
                const float *r = buf + (int64_t)j * V;
                if (rows) memcpy(rows + ((int64_t)(s0 + j) * L + t) * V, r, (size_t)V * sizeof *r);
                xs[(int64_t)(s0 + j) * L + t] = draw(r, V, temperature, &rng[j]);
            }
        }
    }
    free(first);
    free(buf);
    free(in);
    free(mask);
    free(rng);
    return rc;
}

int distill_rows(terse_ctx *c, const float *first, const int32_t *xs, int32_t n_samples,
                 int32_t L, float *rows) {
    const int64_t V = c->m->n_vocab;
    const int32_t k = terse_kv_len(c), l1 = L - 1;
    int32_t g = (c->n_ctx - k) / l1 < n_samples ? (c->n_ctx - k) / l1 : n_samples;
    if (g > 16) g = 16; /* a batch of at most 16 x (L-1) tokens */
    if (g < 1) return terse_err(TERSE_ERR_RANGE, "distill: prefix %d + %d tokens exceed the context "
                                "of %d", k, L, c->n_ctx);
    int32_t *in = terse_malloc((size_t)g * l1 * 2 * sizeof *in, "batch");
    uint8_t *mask = terse_malloc((size_t)g * l1 * ((size_t)k + (size_t)g * l1), "mask");
    int rc = in && mask ? TERSE_OK : TERSE_ERR_NOMEM;
    for (int32_t s0 = 0; !rc && s0 < n_samples; s0 += g) {
        int32_t gn = n_samples - s0 < g ? n_samples - s0 : g, m = gn * l1, w = k + m;
        int32_t *pos = in + m;
        if ((rc = terse_kv_truncate(c, k))) break;
        memset(mask, 0, (size_t)m * w);
        for (int32_t j = 0; j < gn; j++)
            for (int32_t t = 0; t < l1; t++) {
                int32_t i = j * l1 + t;
                in[i] = xs[(int64_t)(s0 + j) * L + t];
                pos[i] = k + t;
                uint8_t *row = mask + (size_t)i * w;
                memset(row, 1, (size_t)k);
                memset(row + k + j * l1, 1, (size_t)t + 1);
            }
        terse_batch b = {.n = m, .ids = in, .pos = pos, .mask = mask};
        if ((rc = terse_eval(c, &b))) break;
        for (int32_t j = 0; j < gn; j++) {
            float *r = rows + (int64_t)(s0 + j) * L * V;
            memcpy(r, first, (size_t)V * sizeof *r);
            rows_from_hidden(c, j * l1, l1, r + V);
        }
    }
    free(in);
    free(mask);
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

/* The student: k sequences [BOS, P, x_0..x_{L-2}] of T0 tokens each, packed into one
 * forward of k*T0 tokens with a block-diagonal causal mask. Rotary attention depends only on
 * the distance between positions, so a block at offset b*T0 computes what it would alone;
 * gpt2's absolute positions do not allow this, there k = 1. */
typedef struct {
    nn_grad *g;
    int32_t nb, N, L, T0, blocks;
    int64_t C, V;
    int32_t *ids;           /* (blocks*T0) per block: BOS, -1 x N, x_0..x_{L-2} */
    float *embd;            /* (blocks*T0, C) rows nb..nb+N-1 of each block = P */
    float *teacher;         /* (blocks*T0, V) rows before nb+N-1 of a block stay 0 (weight 0) */
    float *weight;          /* (blocks*T0) */
    uint8_t *mask;          /* (blocks*T0)^2, NULL when blocks = 1 */
    float *dlogits;         /* (blocks*T0, V) */
    float *d_embd;          /* (blocks*T0, C) */
    int reverse;
} student;

/* mean loss of the k samples idx[0..k) against their teacher rows; with G, adds
 * scale * sum over the blocks of dL/dP (L = the mean over the k samples) */
static int student_loss(student *s, const float *P, const int32_t *xs, const float *rows,
                        const int32_t *idx, int32_t k, float *G, float scale, double *loss) {
    const int64_t T0 = s->T0, T = k * T0;
    for (int32_t b = 0; b < k; b++) {
        memcpy(s->embd + (b * T0 + s->nb) * s->C, P, (size_t)(s->N * s->C) * sizeof *P);
        memcpy(s->ids + b * T0 + s->nb + s->N, xs + (int64_t)idx[b] * s->L,
               (size_t)(s->L - 1) * sizeof *xs);
        memcpy(s->teacher + (b * T0 + s->nb + s->N - 1) * s->V, rows + (int64_t)idx[b] * s->L * s->V,
               (size_t)(s->L * s->V) * sizeof *rows);
    }
    if (s->mask) {
        memset(s->mask, 0, (size_t)(T * T));
        for (int64_t i = 0; i < T; i++) memset(s->mask + i * T + (i / T0) * T0, 1, (size_t)(i % T0 + 1));
    }
    const float *logits;
    int rc = nn_grad_forward(s->g, s->ids, s->embd, (int32_t)T, s->mask, &logits);
    if (rc) return rc;
    *loss = nn_loss_kl(logits, s->teacher, s->weight, (int32_t)T, (int32_t)s->V, s->reverse,
                       G ? s->dlogits : NULL);
    if (!G) return TERSE_OK;
    if ((rc = nn_grad_backward(s->g, s->dlogits, s->d_embd))) return rc;
    for (int32_t b = 0; b < k; b++) {
        const float *d = s->d_embd + (b * T0 + s->nb) * s->C;
        for (int64_t i = 0; i < s->N * s->C; i++) G[i] += scale * d[i];
    }
    return TERSE_OK;
}

/* mean loss over all samples (forward only) */
static int full_loss(student *s, const float *P, const int32_t *xs, const float *rows,
                     int32_t n_samples, double *out) {
    double sum = 0, l;
    int32_t idx[64];
    for (int32_t i = 0; i < n_samples; i += s->blocks) {
        int32_t k = n_samples - i < s->blocks ? n_samples - i : s->blocks;
        for (int32_t b = 0; b < k; b++) idx[b] = i + b;
        int rc = student_loss(s, P, xs, rows, idx, k, NULL, 0, &l);
        if (rc) return rc;
        sum += l * k;
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
    int64_t want = (int64_t)nb + n + (int64_t)n_samples * (L - 1) + 1;
    int32_t cap = m->n_ctx_train < 8192 ? m->n_ctx_train : 8192;
    cp.n_ctx = want < cap ? (int32_t)want : cap;
    cp.n_threads = p->n_threads;
    if ((rc = terse_ctx_new(m, cp, &c))) goto done;
    full = terse_malloc((size_t)(nb + n) * sizeof *full, "prompt ids");
    first = terse_malloc((size_t)V * sizeof *first, "row");
    if (!full || !first) { rc = TERSE_ERR_NOMEM; goto done; }
    if (nb) full[0] = bos;
    memcpy(full + nb, prompt, (size_t)n * sizeof *full);
    if (p->data) {
        rc = data_lines(m, p->data, p->data_len, L, n_samples, &xs, &n_samples);
        if (rc) goto done;
        rows = terse_malloc((size_t)n_samples * L * V * sizeof *rows, "teacher rows");
        if (!rows) { rc = TERSE_ERR_NOMEM; goto done; }
        terse_kv_clear(c);
        terse_batch b = {.n = nb + n, .ids = full};
        if ((rc = terse_eval(c, &b))) goto done;
        if ((rc = terse_eval_logits(c, nb + n - 1, first, 1))) goto done;
        if ((rc = distill_rows(c, first, xs, n_samples, L, rows))) goto done;
    } else {
        xs = terse_malloc((size_t)n_samples * L * sizeof *xs, "continuations");
        rows = terse_malloc((size_t)n_samples * L * V * sizeof *rows, "teacher rows");
        if (!xs || !rows) { rc = TERSE_ERR_NOMEM; goto done; }
        rc = distill_sample(c, full, nb + n, n_samples, L, p->temperature, p->seed, xs, rows);
        if (rc) goto done;
    }
    terse_ctx_free(c);
    c = NULL;
    st->seconds_teacher = terse_now() - t0;

    /* 2. the student */
    s.nb = nb, s.N = N, s.L = L, s.T0 = nb + N + L - 1, s.C = C, s.V = V;
    s.reverse = p->reverse;
    /* blocks per forward: the batch, within the context and 64 */
    s.blocks = m->arch == NN_ARCH_GPT2 ? 1 : p->batch;
    if (s.blocks > 64) s.blocks = 64;
    if ((int64_t)s.blocks * s.T0 > m->n_ctx_train) s.blocks = m->n_ctx_train / s.T0;
    if (s.blocks < 1) s.blocks = 1;
    const int64_t TT = (int64_t)s.blocks * s.T0;
    nn_grad_params gp = {.max_tokens = (int32_t)TT, .weight_grads = 0, .n_threads = p->n_threads,
                         .f32_cache = 1}; /* short sequences: dequantise the weights once */
    if ((rc = nn_grad_new(m, gp, &g))) goto done;
    s.g = g;
    s.ids = terse_malloc((size_t)TT * sizeof *s.ids, "student ids");
    s.embd = terse_calloc((size_t)TT * C, sizeof *s.embd, "student rows");
    s.teacher = terse_calloc((size_t)TT * V, sizeof *s.teacher, "teacher rows");
    s.weight = terse_calloc((size_t)TT, sizeof *s.weight, "row weights");
    s.dlogits = terse_malloc((size_t)TT * V * sizeof *s.dlogits, "dlogits");
    s.d_embd = terse_malloc((size_t)TT * C * sizeof *s.d_embd, "d_embd");
    if (s.blocks > 1) s.mask = terse_malloc((size_t)(TT * TT), "block mask");
    G = terse_malloc((size_t)N * C * sizeof *G, "soft prompt gradient");
    order = terse_malloc((size_t)n_samples * sizeof *order, "sample order");
    if (!s.ids || !s.embd || !s.teacher || !s.weight || !s.dlogits || !s.d_embd || !G || !order ||
        (s.blocks > 1 && !s.mask)) {
        rc = TERSE_ERR_NOMEM;
        goto done;
    }
    for (int32_t b = 0; b < s.blocks; b++) {
        int32_t *id = s.ids + (int64_t)b * s.T0;
        if (nb) id[0] = bos;
        for (int32_t i = nb; i < nb + N; i++) id[i] = -1;
        for (int32_t t = nb + N - 1; t < s.T0; t++) s.weight[(int64_t)b * s.T0 + t] = 1;
    }

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
        for (int32_t k = 0; k < p->batch;) {
            int32_t idx[64], kk = p->batch - k < s.blocks ? p->batch - k : s.blocks;
            for (int32_t b = 0; b < kk; b++) {
                if (at == n_samples) {
                    for (int32_t i = 0; i < n_samples; i++) order[i] = i;
                    for (int32_t i = n_samples - 1; i > 0; i--) {
                        int32_t j = (int32_t)(train_adamw_rand_u64(opt) % (uint64_t)(i + 1));
                        int32_t t = order[i]; order[i] = order[j]; order[j] = t;
                    }
                    at = 0;
                }
                idx[b] = order[at++];
            }
            rc = student_loss(&s, P, xs, rows, idx, kk, G, (float)kk / (float)p->batch, &l);
            if (rc) goto done;
            loss += l * kk / p->batch;
            k += kk;
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
    free(s.mask);
    free(G);
    free(order);
    free(xs);
    free(full);
    free(first);
    free(rows);
    st->seconds = terse_now() - t0;
    return rc;
}
