/* test_grad_ops.c - every op's backward (src/nn/grad_ops.h, the losses of grad.h) against
 * central finite differences of a float64 reference of the same op.
 *
 * For an op y = f(inputs) the test draws inputs (floats), a fixed cotangent r, and compares
 *   - the F32 forward with the float64 reference forward (relative error of y);
 *   - the F32 backward's gradients (dy = r) with d/d(input) of sum(r * f64(inputs)), by
 *     central differences in float64 (h = 1e-6 scaled, so the reference itself is good to
 *     about 1e-9).
 * Relative error = ||analytic - reference||_2 / ||reference||_2 per input, printed per op;
 * the bound is 1e-3 (F32 arithmetic). Sizes are small: the whole file runs in well under
 * a second.
 */
#include "harness.h"
#include "nn/grad.h"
#include "nn/grad_ops.h"
#include "nn/quant.h"

#define BOUND 1e-3

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}
static void fill(float *x, int64_t n, double s) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * urand());
}

static double worst_fwd, worst_bwd;

/* The products' buffers: nn_gemm allocates its own (work NULL), a roomy transpose buffer, and
 * a dequantisation buffer the tests shrink to force several blocks. */
static float tbuf_store[1 << 16], wbuf_store[1 << 12];
static nn_grad_ws ws = {NULL, NULL, tbuf_store, wbuf_store, 0, 1 << 16, 1 << 12};

/* ||a - b|| / ||b|| */
static double rel(const float *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* A float64 reference: evaluates sum(r * f(inputs)) from the double copies of the inputs. */
typedef double (*ref_loss)(void *ctx);

/* Central differences of loss with respect to x (n doubles), into g. */
static void fd(ref_loss loss, void *ctx, double *x, int64_t n, double *g) {
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i], h = 1e-6 * fmax(1.0, fabs(x0));
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * h);
    }
}

static double *to_d(const float *x, int64_t n) {
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void report_fwd(const char *op, const float *y, const double *yr, int64_t n) {
    double e = rel(y, yr, n);
    if (e > worst_fwd) worst_fwd = e;
    printf("  %-22s forward  rel err %.2e\n", op, e);
    CHECK(e < BOUND, "%s forward rel err %g", op, e);
}

/* Compare an analytic gradient with the FD of loss w.r.t. the double copy x. */
static void check_grad(const char *op, const char *wrt, ref_loss loss, void *ctx, double *x,
                       const float *an, int64_t n) {
    double *g = malloc(sizeof(double) * (size_t)n);
    fd(loss, ctx, x, n, g);
    double e = rel(an, g, n);
    if (e > worst_bwd) worst_bwd = e;
    printf("  %-22s d/d%-8s rel err %.2e\n", op, wrt, e);
    CHECK(e < BOUND, "%s d/d%s rel err %g", op, wrt, e);
    free(g);
}

/* ---------------------------------------------------------------------------------------- */
/* Embedding                                                                                 */

typedef struct { double *tok, *pos, *embd, *r; const int32_t *ids; int T, C, V; } emb_ctx;

static void emb_ref(const emb_ctx *c, double *y) {
    for (int i = 0; i < c->T; i++)
        for (int k = 0; k < c->C; k++)
            y[i * c->C + k] = (c->ids[i] >= 0 ? c->tok[c->ids[i] * c->C + k] : c->embd[i * c->C + k]) +
                              c->pos[i * c->C + k];
}
static double emb_loss(void *p) {
    emb_ctx *c = p;
    double y[64], s = 0;
    emb_ref(c, y);
    for (int i = 0; i < c->T * c->C; i++) s += c->r[i] * y[i];
    return s;
}

static void test_embed(void) {
    enum { T = 5, C = 8, V = 6 };
    float tok[V * C], pos[T * C], embd[T * C], r[T * C], y[T * C];
    int32_t ids[T] = {3, -1, 0, 3, -1};
    fill(tok, V * C, 1), fill(pos, T * C, 1), fill(embd, T * C, 1), fill(r, T * C, 1);
    nn_matrix mt = {GGML_F32, (const uint8_t *)tok, V, C, C * 4, NULL}, mp = {GGML_F32, (const uint8_t *)pos, T, C, C * 4, NULL};
    float tmp[C];
    nn_embed_forward(y, ids, embd, &mt, &mp, T, C, tmp);
    emb_ctx c = {to_d(tok, V * C), to_d(pos, T * C), to_d(embd, T * C), to_d(r, T * C), ids, T, C, V};
    double yr[T * C];
    emb_ref(&c, yr);
    report_fwd("embedding (+pos)", y, yr, T * C);
    float de[T * C] = {0}, dt[V * C] = {0}, dp[T * C] = {0};
    nn_embed_backward(de, dt, dp, r, ids, T, C);
    /* d/d embd only counts for rows without an id: zero the others as the reference does */
    check_grad("embedding (+pos)", "tok", emb_loss, &c, c.tok, dt, V * C);
    check_grad("embedding (+pos)", "pos", emb_loss, &c, c.pos, dp, T * C);
    for (int i = 0; i < T; i++)
        if (ids[i] >= 0) memset(de + i * C, 0, sizeof(float) * C);
    check_grad("embedding (+pos)", "embd", emb_loss, &c, c.embd, de, T * C);
    free(c.tok), free(c.pos), free(c.embd), free(c.r);
}

/* ---------------------------------------------------------------------------------------- */
/* Norms                                                                                     */

typedef struct { double *x, *w, *b, *r; int T, C, layer; double eps; } norm_ctx;

static void norm_ref(const norm_ctx *c, double *y) {
    for (int i = 0; i < c->T; i++) {
        const double *x = c->x + i * c->C;
        double mu = 0, v = 0;
        if (c->layer) {
            for (int k = 0; k < c->C; k++) mu += x[k];
            mu /= c->C;
        }
        for (int k = 0; k < c->C; k++) v += (x[k] - mu) * (x[k] - mu);
        v /= c->C;
        double rs = 1 / sqrt(v + c->eps);
        for (int k = 0; k < c->C; k++)
            y[i * c->C + k] = (x[k] - mu) * rs * c->w[k] + (c->layer ? c->b[k] : 0);
    }
}
static double norm_loss(void *p) {
    norm_ctx *c = p;
    double y[256], s = 0;
    norm_ref(c, y);
    for (int i = 0; i < c->T * c->C; i++) s += c->r[i] * y[i];
    return s;
}

static void test_norm(int layer) {
    enum { T = 5, C = 24 };
    float x[T * C], w[C], b[C], r[T * C], y[T * C], mean[T], rstd[T];
    fill(x, T * C, 2), fill(w, C, 1), fill(b, C, 1), fill(r, T * C, 1);
    for (int k = 0; k < C; k++) x[k] += 1.5f; /* a row with a large mean */
    const float eps = 1e-5f;
    const char *op = layer ? "layernorm" : "rmsnorm";
    if (layer) nn_layernorm_forward(y, mean, rstd, x, w, b, T, C, eps, NULL);
    else nn_rmsnorm_forward(y, rstd, x, w, T, C, eps, NULL);
    norm_ctx c = {to_d(x, T * C), to_d(w, C), to_d(b, C), to_d(r, T * C), T, C, layer, eps};
    double yr[T * C];
    norm_ref(&c, yr);
    report_fwd(op, y, yr, T * C);
    float dx[T * C] = {0}, dw[C] = {0}, db[C] = {0};
    if (layer) nn_layernorm_backward(dx, dw, db, r, x, w, mean, rstd, T, C, NULL);
    else nn_rmsnorm_backward(dx, dw, r, x, w, rstd, T, C, NULL);
    check_grad(op, "x", norm_loss, &c, c.x, dx, T * C);
    check_grad(op, "w", norm_loss, &c, c.w, dw, C);
    if (layer) check_grad(op, "b", norm_loss, &c, c.b, db, C);
    free(c.x), free(c.w), free(c.b), free(c.r);
}

/* ---------------------------------------------------------------------------------------- */
/* Rotary                                                                                    */

typedef struct { double *x, *r; int T, nh, D, n_rot, neox; double base; } rope_ctx;

static void rope_ref(const rope_ctx *c, double *y) {
    const int half = c->n_rot / 2, W = c->nh * c->D;
    memcpy(y, c->x, sizeof(double) * (size_t)(c->T * W));
    for (int i = 0; i < c->T; i++)
        for (int h = 0; h < c->nh; h++)
            for (int k = 0; k < half; k++) {
                /* the angle as the runtime rounds it (float), then exact rotation */
                float inv = 1.0f / powf((float)c->base, (float)(2 * k) / (float)c->n_rot);
                double a = (double)((float)i * inv);
                int ia = c->neox ? k : 2 * k, ib = c->neox ? k + half : 2 * k + 1;
                double xa = c->x[i * W + h * c->D + ia], xb = c->x[i * W + h * c->D + ib];
                y[i * W + h * c->D + ia] = xa * cos(a) - xb * sin(a);
                y[i * W + h * c->D + ib] = xb * cos(a) + xa * sin(a);
            }
}
static double rope_loss(void *p) {
    rope_ctx *c = p;
    double y[512], s = 0;
    rope_ref(c, y);
    for (int i = 0; i < c->T * c->nh * c->D; i++) s += c->r[i] * y[i];
    return s;
}

static void test_rope(int neox, int n_rot, const char *op) {
    enum { T = 7, NH = 3, D = 8 };
    float x[T * NH * D], r[T * NH * D], cs[T * D / 2], sn[T * D / 2];
    fill(x, T * NH * D, 1), fill(r, T * NH * D, 1);
    nn_rope_tables(cs, sn, T, n_rot, 10000.0f, NULL);
    rope_ctx c = {to_d(x, T * NH * D), to_d(r, T * NH * D), T, NH, D, n_rot, neox, 10000.0};
    nn_rope_forward(x, T, NH, D, n_rot, neox, cs, sn, NULL);
    double yr[T * NH * D];
    rope_ref(&c, yr);
    report_fwd(op, x, yr, T * NH * D);
    float dx[T * NH * D];
    memcpy(dx, r, sizeof dx);
    nn_rope_backward(dx, T, NH, D, n_rot, neox, cs, sn, NULL);
    check_grad(op, "x", rope_loss, &c, c.x, dx, T * NH * D);
    free(c.x), free(c.r);
}

/* ---------------------------------------------------------------------------------------- */
/* Attention                                                                                 */

typedef struct { double *q, *k, *v, *r; const uint8_t *mask; int T, H, Hkv, D; } att_ctx;

static void att_ref(const att_ctx *c, double *y) {
    const int HD = c->H * c->D, KV = c->Hkv * c->D, G = c->H / c->Hkv;
    double p[64];
    for (int i = 0; i < c->T; i++)
        for (int h = 0; h < c->H; h++) {
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < c->T; j++) {
                int vis = c->mask ? c->mask[i * c->T + j] != 0 : j <= i;
                double d = 0;
                for (int e = 0; e < c->D; e++) d += c->q[i * HD + h * c->D + e] * c->k[j * KV + (h / G) * c->D + e];
                p[j] = vis ? d / sqrt((double)c->D) : -INFINITY;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < c->T; j++) s += p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
            for (int e = 0; e < c->D; e++) {
                double o = 0;
                for (int j = 0; j < c->T; j++) o += p[j] * c->v[j * KV + (h / G) * c->D + e];
                y[i * HD + h * c->D + e] = s > 0 ? o / s : 0;
            }
        }
}
static double att_loss(void *p) {
    att_ctx *c = p;
    double *y = malloc(sizeof(double) * (size_t)(c->T * c->H * c->D)), s = 0;
    att_ref(c, y);
    for (int i = 0; i < c->T * c->H * c->D; i++) s += c->r[i] * y[i];
    free(y);
    return s;
}

static void test_attention(const char *op, int T, int H, int Hkv, const uint8_t *mask, int qb) {
    const int D = 8, HD = H * D, KV = Hkv * D;
    float *q = malloc(sizeof(float) * T * HD), *k = malloc(sizeof(float) * T * KV);
    float *v = malloc(sizeof(float) * T * KV), *r = malloc(sizeof(float) * T * HD);
    float *y = malloc(sizeof(float) * T * HD), *lse = malloc(sizeof(float) * H * T);
    float *sc = malloc(sizeof(float) * nn_attention_scratch(T, qb));
    fill(q, T * HD, 1.5), fill(k, T * KV, 1.5), fill(v, T * KV, 1), fill(r, T * HD, 1);
    nn_attention_forward(y, lse, q, k, v, mask, T, H, Hkv, D, qb, sc, &ws);
    att_ctx c = {to_d(q, T * HD), to_d(k, T * KV), to_d(v, T * KV), to_d(r, T * HD), mask, T, H, Hkv, D};
    double *yr = malloc(sizeof(double) * T * HD);
    att_ref(&c, yr);
    report_fwd(op, y, yr, T * HD);
    float *dq = calloc((size_t)T * HD, 4), *dk = calloc((size_t)T * KV, 4), *dv = calloc((size_t)T * KV, 4);
    nn_attention_backward(dq, dk, dv, r, y, q, k, v, lse, mask, T, H, Hkv, D, qb, sc, &ws);
    check_grad(op, "q", att_loss, &c, c.q, dq, T * HD);
    check_grad(op, "k", att_loss, &c, c.k, dk, T * KV);
    check_grad(op, "v", att_loss, &c, c.v, dv, T * KV);
    free(q), free(k), free(v), free(r), free(y), free(lse), free(sc), free(yr);
    free(dq), free(dk), free(dv), free(c.q), free(c.k), free(c.v), free(c.r);
}

/* ---------------------------------------------------------------------------------------- */
/* Linear                                                                                    */

typedef struct { double *x, *w, *b, *r; int T, I, O, row0, n; } mm_ctx;

static void mm_ref(const mm_ctx *c, double *y) {
    for (int t = 0; t < c->T; t++)
        for (int j = 0; j < c->n; j++) {
            double s = c->b ? c->b[j] : 0;
            for (int i = 0; i < c->I; i++) s += c->x[t * c->I + i] * c->w[(c->row0 + j) * c->I + i];
            y[t * c->n + j] = s;
        }
}
static double mm_loss(void *p) {
    mm_ctx *c = p;
    double y[512], s = 0;
    mm_ref(c, y);
    for (int i = 0; i < c->T * c->n; i++) s += c->r[i] * y[i];
    return s;
}

/* type: weights stored as F32 (trainable, dW checked) or Q8_0 (frozen: dx only, against the
 * dequantised values); rows [row0, row0+n) of an (O, I) matrix, as gpt2's fused qkv. */
static void test_matmul(const char *op, uint32_t type, int row0, int n) {
    enum { T = 6, I = 64, O = 12 };
    float x[T * I], w[O * I], b[O], r[T * O], y[T * O];
    fill(x, T * I, 1), fill(w, O * I, 0.5), fill(b, O, 1), fill(r, T * O, 1);
    uint8_t *wq = malloc(quant_row_bytes(type, I) * O);
    for (int o = 0; o < O; o++) quantize_row(type, w + o * I, wq + quant_row_bytes(type, I) * o, I);
    for (int o = 0; o < O; o++) dequantize_row(type, wq + quant_row_bytes(type, I) * o, w + o * I, I);
    nn_matrix m = {type, wq, O, I, quant_row_bytes(type, I), NULL};
    ws.wbuf_cap = 5 * I; /* several dequantised blocks in the backward */
    nn_matmul_forward(y, x, &m, row0, n, b, T, &ws);
    mm_ctx c = {to_d(x, T * I), to_d(w, O * I), to_d(b, n), to_d(r, T * n), T, I, O, row0, n};
    double yr[T * O];
    mm_ref(&c, yr);
    report_fwd(op, y, yr, T * n);
    float dx[T * I] = {0}, dw[O * I] = {0}, db[O] = {0};
    nn_matmul_backward(dx, type == GGML_F32 ? dw + row0 * I : NULL, db, r, x, &m, row0, n, T, &ws);
    ws.wbuf_cap = 1 << 12;
    check_grad(op, "x", mm_loss, &c, c.x, dx, T * I);
    if (type == GGML_F32) check_grad(op, "W", mm_loss, &c, c.w, dw, O * I);
    check_grad(op, "b", mm_loss, &c, c.b, db, n);
    free(wq), free(c.x), free(c.w), free(c.b), free(c.r);
}

/* More weight rows than one block of the backward's products (NN_GRAD_ROW_BLOCK): dx, dW, db
 * against a direct float64 evaluation of the same sums (the products are linear: no FD). */
static void test_matmul_blocks(void) {
    enum { T = 5, I = 32, O = 2 * NN_GRAD_ROW_BLOCK + 77 };
    float *x = malloc(sizeof(float) * T * I), *w = malloc(sizeof(float) * O * I);
    float *dy = malloc(sizeof(float) * T * O), *dx = calloc(T * I, 4), *dw = calloc((size_t)O * I, 4);
    float *db = calloc(O, 4);
    double *rx = malloc(sizeof(double) * T * I), *rw = malloc(sizeof(double) * O * I), *rb = malloc(sizeof(double) * O);
    fill(x, T * I, 1), fill(w, O * I, 1), fill(dy, T * O, 1);
    nn_matrix m = {GGML_F32, (const uint8_t *)w, O, I, I * 4, NULL};
    float big[1 << 15]; /* tbuf: a block of rows x T */
    nn_grad_ws ws2 = {NULL, NULL, big, NULL, 0, 1 << 15, 0};
    nn_matmul_backward(dx, dw, db, dy, x, &m, 0, O, T, &ws2);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++) {
            double s = 0;
            for (int o = 0; o < O; o++) s += (double)dy[t * O + o] * w[o * I + i];
            rx[t * I + i] = s;
        }
    for (int o = 0; o < O; o++) {
        double sb = 0;
        for (int t = 0; t < T; t++) sb += dy[t * O + o];
        rb[o] = sb;
        for (int i = 0; i < I; i++) {
            double s = 0;
            for (int t = 0; t < T; t++) s += (double)dy[t * O + o] * x[t * I + i];
            rw[o * I + i] = s;
        }
    }
    double ex = rel(dx, rx, T * I), ew = rel(dw, rw, (int64_t)O * I), eb = rel(db, rb, O);
    printf("  %-22s d/dx %.2e  d/dW %.2e  d/db %.2e\n", "linear 2125 rows", ex, ew, eb);
    CHECK(ex < BOUND && ew < BOUND && eb < BOUND, "row blocks: %g %g %g", ex, ew, eb);
    if (fmax(ex, fmax(ew, eb)) > worst_bwd) worst_bwd = fmax(ex, fmax(ew, eb));
    free(x), free(w), free(dy), free(dx), free(dw), free(db), free(rx), free(rw), free(rb);
}

/* ---------------------------------------------------------------------------------------- */
/* Activations, log-softmax                                                                  */

typedef struct { double *a, *b, *r; int n, kind; } act_ctx;

static double act_ref1(const act_ctx *c, int i) {
    double x = c->a[i];
    if (c->kind == 0) return x / (1 + exp(-x)) * c->b[i];
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double act_loss(void *p) {
    act_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->r[i] * act_ref1(c, i);
    return s;
}

static void test_act(int kind) {
    enum { N = 300 };
    float a[N], b[N], r[N], y[N];
    fill(a, N, 4), fill(b, N, 1), fill(r, N, 1);
    const char *op = kind == 0 ? "swiglu" : "gelu (tanh)";
    if (kind == 0) nn_swiglu_forward(y, a, b, N, NULL);
    else nn_gelu_forward(y, a, N, NULL);
    act_ctx c = {to_d(a, N), to_d(b, N), to_d(r, N), N, kind};
    double yr[N];
    for (int i = 0; i < N; i++) yr[i] = act_ref1(&c, i);
    report_fwd(op, y, yr, N);
    float da[N] = {0}, db[N] = {0};
    if (kind == 0) nn_swiglu_backward(da, db, r, a, b, N, NULL);
    else nn_gelu_backward(da, r, a, N, NULL);
    check_grad(op, kind == 0 ? "gate" : "x", act_loss, &c, c.a, da, N);
    if (kind == 0) check_grad(op, "up", act_loss, &c, c.b, db, N);
    free(c.a), free(c.b), free(c.r);
}

typedef struct { double *x, *r, *t; const int32_t *tg; const float *w; int T, V, kind; } ls_ctx;

/* kind 0: sum r * logsoftmax(x); 1: CE mean; 2: KL(p||q); 3: KL(q||p) (t: teacher log-probs) */
static double ls_loss(void *p) {
    ls_ctx *c = p;
    double s = 0, wsum = 0;
    int n = 0;
    for (int t = 0; t < c->T; t++) {
        const double *x = c->x + t * c->V;
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < c->V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < c->V; v++) z += exp(x[v] - mx);
        double l = mx + log(z), w = c->w ? c->w[t] : 1, kl = 0;
        wsum += w;
        for (int v = 0; v < c->V; v++) {
            double lq = x[v] - l, lp = c->t ? c->t[t * c->V + v] : 0;
            if (c->kind == 0) s += c->r[t * c->V + v] * lq;
            if (c->kind == 2 && lp > -INFINITY) kl += exp(lp) * (lp - lq);
            if (c->kind == 3) kl += exp(lq) * (lq - lp);
        }
        if (c->kind == 1 && c->tg[t] >= 0) s += l - x[c->tg[t]], n++;
        if (c->kind >= 2) s += w * kl;
    }
    return c->kind == 1 ? s / n : c->kind >= 2 ? s / wsum : s;
}

static void test_softmax_losses(int V) {
    enum { T = 4 };
    float *x = malloc(sizeof(float) * T * V), *r = malloc(sizeof(float) * T * V);
    float *y = malloc(sizeof(float) * T * V), *tl = malloc(sizeof(float) * T * V);
    float *tl_full = malloc(sizeof(float) * T * V), *dx = calloc((size_t)T * V, sizeof(float));
    float *dz = malloc(sizeof(float) * T * V);
    double *yr = malloc(sizeof(double) * T * V);
    char name[64];
    int32_t tg[T] = {3, -1, V - 1, 0};
    float w[T] = {1.0f, 0.5f, 0.0f, 2.0f};
    fill(x, T * V, 3), fill(r, T * V, 1), fill(tl, T * V, 2);
    nn_logsoftmax_forward(tl, tl, T, V); /* teacher log-probs, one impossible token */
    memcpy(tl_full, tl, sizeof(float) * T * V);
    tl[V + 5] = -INFINITY;
    { /* renormalise row 1 without token 5 */
        double z = 0;
        for (int v = 0; v < V; v++) z += v == 5 ? 0 : exp(tl[V + v]);
        for (int v = 0; v < V; v++) if (v != 5) tl[V + v] -= (float)log(z);
    }
    ls_ctx c = {to_d(x, T * V), to_d(r, T * V), to_d(tl, T * V), tg, w, T, V, 0};
    nn_logsoftmax_forward(y, x, T, V);
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, c.x[t * V + v]);
        for (int v = 0; v < V; v++) z += exp(c.x[t * V + v] - mx);
        for (int v = 0; v < V; v++) yr[t * V + v] = c.x[t * V + v] - mx - log(z);
    }
    snprintf(name, sizeof name, "log-softmax V=%d", V);
    report_fwd(name, y, yr, T * V);
    nn_logsoftmax_backward(dx, r, y, T, V);
    check_grad(name, "x", ls_loss, &c, c.x, dx, T * V);

    static const char *names[] = {"", "cross-entropy", "KL(p||q)", "KL(q||p) reverse"};
    for (int kind = 1; kind <= 3; kind++) {
        c.kind = kind;
        if (kind == 3) { /* the reverse KL needs a teacher without impossible tokens */
            memcpy(tl, tl_full, sizeof(float) * T * V);
            for (int i = 0; i < T * V; i++) c.t[i] = tl[i];
        }
        snprintf(name, sizeof name, "%s V=%d", names[kind], V);
        double L = kind == 1 ? nn_loss_ce(x, tg, T, V, dz)
                             : nn_loss_kl(x, tl, w, T, V, kind == 3, dz);
        double Lr = ls_loss(&c);
        double e = fabs(L - Lr) / fabs(Lr);
        if (e > worst_fwd) worst_fwd = e;
        printf("  %-22s loss     rel err %.2e (%.6f)\n", name, e, L);
        CHECK(e < BOUND, "%s loss %g vs %g", name, L, Lr);
        check_grad(name, "logits", ls_loss, &c, c.x, dz, T * V);
    }
    /* the forward KL ignores an impossible teacher token (checked above); the reverse KL of a
     * student that gives it mass is infinite. No counted target: CE 0, zero gradient. */
    tl[V + 5] = -INFINITY;
    CHECK(isinf(nn_loss_kl(x, tl, w, T, V, 1, NULL)), "reverse KL with p = 0 is infinite");
    int32_t none[T] = {-1, -1, -1, -1};
    CHECK(nn_loss_ce(x, none, T, V, dz) == 0.0 && dz[7] == 0.0f, "CE with no target");
    free(c.x), free(c.r), free(c.t);
    free(x), free(r), free(y), free(tl), free(tl_full), free(dx), free(dz), free(yr);
}

int main(void) {
    printf("op                     check    relative error (bound %.0e)\n", BOUND);
    test_embed();
    test_norm(0);
    test_norm(1);
    test_rope(0, 8, "rope llama (pairs)");
    test_rope(1, 8, "rope neox (halves)");
    test_rope(1, 4, "rope neox, n_rot < D");
    test_rope(0, 4, "rope pairs, n_rot < D");
    test_attention("attention causal", 9, 2, 2, NULL, 256);
    test_attention("attention causal GQA", 9, 4, 2, NULL, 256);
    test_attention("attention blocks of 4", 11, 4, 1, NULL, 4);
    {
        enum { T = 10 };
        uint8_t mask[T * T];
        for (int i = 0; i < T; i++) /* causal, a bidirectional pair, a hidden span, an empty row */
            for (int j = 0; j < T; j++)
                mask[i * T + j] = (j <= i && !(i >= 6 && j >= 2 && j < 5)) || (i == 1 && j == 3);
        memset(mask + 4 * T, 0, T);
        test_attention("attention custom mask", T, 4, 2, mask, 256);
        test_attention("attention mask blocks", T, 4, 2, mask, 3);
    }
    test_matmul("linear F32 + bias", GGML_F32, 0, 12);
    test_matmul("linear F32 rows 4..9", GGML_F32, 4, 5);
    test_matmul("linear Q8_0 (frozen)", GGML_Q8_0, 2, 9);
    test_matmul("linear F16 (frozen)", GGML_F16, 0, 12);
    test_matmul_blocks();
    test_act(0);
    test_act(1);
    test_softmax_losses(13);
    test_softmax_losses(600); /* two exponential chunks per row */
    printf("worst forward rel err %.2e, worst gradient rel err %.2e (bound %.0e)\n", worst_fwd,
           worst_bwd, BOUND);
    return test_summary("test_grad_ops");
}
