/* test_nn_arch.c - the architecture features that the golden models do not pin on their own,
 * on small random models rewritten with extra keys or tensors:
 *   - Llama 3 rope scaling: rope.scaling.* keys give the same log-probs as llama.cpp's
 *     rope_freqs tensor (divisors computed here from Meta's formula in double); linear
 *     scaling equals a constant rope_freqs; both differ from no scaling;
 *   - sliding window: exactly "query i sees keys j with i - j < W": with a window of 4 on the
 *     2 layers of a llama, changing tokens [0, k) leaves every surprisal >= k + 7 unchanged
 *     and changes surprisal k + 6 (a window one wider would reach back one more); a window as
 *     long as the sequence changes nothing; gemma2's window applies to even layers only;
 *   - blocked attention (nn_attention) equals the naive reference with window and soft-cap;
 *   - phi2 with a fused attn_qkv equals the same weights split into attn_q/k/v;
 *   - hostile keys: unsupported rope scaling, LongRoPE factors, value_length != key_length,
 *     negative soft-cap: precise errors.
 */
#include "harness.h"
#include "nn/nn.h"
#include "terse.h"

enum { NT = 40 };

static int32_t ids[NT];

typedef struct {
    const char *set_key[4];       /* keys to set (u32 if is_str 0 and is_f 0) */
    uint32_t u32[4];
    float f32[4];
    const char *str[4];
    char kind[4];                 /* 'u', 'f', 's' */
    int n_set;
    const char *drop_prefix[8];   /* tensors whose names start with these are left out */
    int n_drop;
    /* extra tensors */
    const char *t_name[8];
    int64_t t_ne0[8], t_ne1[8];
    float *t_data[8];
    int n_t;
} edit;

static void set_u(edit *e, const char *k, uint32_t v) { e->set_key[e->n_set] = k, e->kind[e->n_set] = 'u', e->u32[e->n_set++] = v; }
static void set_f(edit *e, const char *k, float v) { e->set_key[e->n_set] = k, e->kind[e->n_set] = 'f', e->f32[e->n_set++] = v; }
static void set_s(edit *e, const char *k, const char *v) { e->set_key[e->n_set] = k, e->kind[e->n_set] = 's', e->str[e->n_set++] = v; }

/* src with the edit applied, written to dst. */
static int rewrite(const char *src, const char *dst, const edit *e) {
    gguf_file *g = NULL;
    int rc = gguf_open(src, 1, &g);
    if (rc) return rc;
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; !rc && i < g->n_kv; i++) {
        int skip = 0;
        for (int k = 0; k < e->n_set; k++) skip |= gguf_str_eq(g->kv[i].key, e->set_key[k]);
        if (!skip) rc = gguf_writer_copy_kv(w, &g->kv[i]);
    }
    for (int k = 0; !rc && k < e->n_set; k++)
        rc = e->kind[k] == 'u' ? gguf_writer_set_u32(w, e->set_key[k], e->u32[k])
           : e->kind[k] == 'f' ? gguf_writer_set_f32(w, e->set_key[k], e->f32[k])
                               : gguf_writer_set_str(w, e->set_key[k], e->str[k]);
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        int skip = 0;
        for (int k = 0; k < e->n_drop; k++)
            skip |= t->name.len >= strlen(e->drop_prefix[k]) &&
                    !memcmp(t->name.ptr, e->drop_prefix[k], strlen(e->drop_prefix[k]));
        if (skip) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        rc = gguf_writer_add_tensor_copy(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    for (int k = 0; !rc && k < e->n_t; k++) {
        int64_t ne[2] = {e->t_ne0[k], e->t_ne1[k]};
        rc = gguf_writer_add_tensor_copy(w, e->t_name[k], GGML_F32, e->t_ne1[k] > 1 ? 2 : 1, ne,
                                         e->t_data[k], (uint64_t)(ne[0] * ne[1]) * sizeof(float));
    }
    if (!rc) rc = gguf_writer_write(w, dst);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}

static char *tmp(const char *name) {
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 256, "%s", test_tmp_path(name));
    return b;
}

static const char *random_model(const char *arch, const char *name) {
    terse_random_params rp = {arch, 300, 128, 64, 2, 4, 2, 128, TERSE_TYPE_F32, 11, 0.2f, 0};
    char *p = tmp(name);
    CHECK_OK(terse_write_random_model(p, &rp));
    return p;
}

/* Surprisals of ids[0..n) (s[0] = 0); returns 0 on success. */
static int score(const char *path, const int32_t *toks, int n, float *s) {
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    int rc = terse_model_load(path, terse_model_default_params(), &m);
    if (!rc) {
        terse_ctx_params cp = terse_ctx_default_params();
        cp.n_threads = 1;
        rc = terse_ctx_new(m, cp, &c);
    }
    if (!rc) rc = terse_score(c, toks, n, s);
    terse_ctx_free(c);
    terse_model_free(m);
    return rc;
}

static double max_diff(const float *a, const float *b, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
    return e;
}

/* ------------------------------------------------------------------------------------------ */

static void test_rope_scaling(void) {
    const char *base = random_model("llama", "arch_llama.gguf");
    const int n_rot = 16, half = 8;
    const double theta = 10000, factor = 8, lo = 1, hi = 4, orig = 32;
    float div[8], lin[8];
    int n_mid = 0, n_low = 0, n_high = 0;
    for (int k = 0; k < half; k++) { /* Meta's formula, in double */
        double inv = 1.0 / pow(theta, 2.0 * k / n_rot), wl = 2 * M_PI / inv, scaled;
        if (wl < orig / hi) scaled = inv, n_high++;
        else if (wl > orig / lo) scaled = inv / factor, n_low++;
        else {
            double sm = (orig / wl - lo) / (hi - lo);
            scaled = (1 - sm) * inv / factor + sm * inv;
            n_mid++;
        }
        div[k] = (float)(inv / scaled);
        lin[k] = 2.0f;
    }
    CHECK(n_mid > 0 && n_low > 0 && n_high > 0, "the test covers all three llama3 regions "
          "(%d high, %d mid, %d low)", n_high, n_mid, n_low);
    edit t = {.t_name = {"rope_freqs.weight"}, .t_ne0 = {half}, .t_ne1 = {1}, .t_data = {div}, .n_t = 1};
    edit k = {0};
    set_s(&k, "llama.rope.scaling.type", "llama3");
    set_f(&k, "llama.rope.scaling.factor", (float)factor);
    set_u(&k, "llama.rope.scaling.original_context_length", (uint32_t)orig);
    edit tl = {.t_name = {"rope_freqs.weight"}, .t_ne0 = {half}, .t_ne1 = {1}, .t_data = {lin}, .n_t = 1};
    edit kl = {0};
    set_s(&kl, "llama.rope.scaling.type", "linear");
    set_f(&kl, "llama.rope.scaling.factor", 2.0f);
    const char *pt = tmp("arch_l3_tensor.gguf"), *pk = tmp("arch_l3_keys.gguf");
    const char *plt = tmp("arch_lin_tensor.gguf"), *plk = tmp("arch_lin_keys.gguf");
    CHECK_OK(rewrite(base, pt, &t));
    CHECK_OK(rewrite(base, pk, &k));
    CHECK_OK(rewrite(base, plt, &tl));
    CHECK_OK(rewrite(base, plk, &kl));
    float s0[NT], st[NT], sk[NT], slt[NT], slk[NT];
    CHECK_OK(score(base, ids, NT, s0));
    CHECK_OK(score(pt, ids, NT, st));
    CHECK_OK(score(pk, ids, NT, sk));
    CHECK_OK(score(plt, ids, NT, slt));
    CHECK_OK(score(plk, ids, NT, slk));
    printf("llama3 rope: keys vs rope_freqs tensor %.3g, vs unscaled %.3g; linear keys vs "
           "tensor %.3g, vs unscaled %.3g\n", max_diff(sk, st, NT), max_diff(st, s0, NT),
           max_diff(slk, slt, NT), max_diff(slt, s0, NT));
    CHECK(max_diff(sk, st, NT) < 1e-5, "llama3 keys vs tensor: %g", max_diff(sk, st, NT));
    CHECK(max_diff(st, s0, NT) > 1e-3, "llama3 scaling changes the log-probs");
    CHECK(max_diff(slk, slt, NT) < 1e-5, "linear keys vs tensor: %g", max_diff(slk, slt, NT));
    CHECK(max_diff(slt, s0, NT) > 1e-3, "linear scaling changes the log-probs");
    remove(pt), remove(pk), remove(plt), remove(plk), remove(base);
}

static void test_window(void) {
    const char *base = random_model("llama", "arch_llama_w.gguf");
    edit e4 = {0}, e40 = {0};
    set_u(&e4, "llama.attention.sliding_window", 4);
    set_u(&e40, "llama.attention.sliding_window", NT);
    const char *p4 = tmp("arch_w4.gguf"), *p40 = tmp("arch_w40.gguf");
    CHECK_OK(rewrite(base, p4, &e4));
    CHECK_OK(rewrite(base, p40, &e40));
    int32_t other[NT];
    const int k = 10;
    memcpy(other, ids, sizeof ids);
    for (int i = 0; i < k; i++) other[i] = (ids[i] + 101) % 300;
    float a[NT], b[NT], s0[NT], s40[NT];
    CHECK_OK(score(p4, ids, NT, a));
    CHECK_OK(score(p4, other, NT, b));
    CHECK_OK(score(base, ids, NT, s0));
    CHECK_OK(score(p40, ids, NT, s40));
    /* 2 layers, window 4: the hidden state at i depends on tokens i-6 .. i, and surprisal
     * s[i] comes from the hidden state at i-1: tokens i-7 .. i-1 */
    double after = max_diff(a + k + 7, b + k + 7, NT - k - 7);
    double edge = fabs((double)a[k + 6] - b[k + 6]);
    printf("sliding window 4, 2 layers: tokens [0, %d) changed -> surprisals >= %d move %.3g, "
           "surprisal %d moves %.3g; window %d vs none %.3g\n", k, k + 7, after, k + 6, edge, NT,
           max_diff(s40, s0, NT));
    CHECK(after < 1e-5, "window: positions past the receptive field moved by %g", after);
    CHECK(edge > 1e-4, "window: surprisal k+6 (receptive field edge) did not move: %g", edge);
    CHECK(max_diff(s40, s0, NT) < 1e-6, "a window as long as the text changes nothing: %g",
          max_diff(s40, s0, NT));
    remove(p4), remove(p40), remove(base);

    /* gemma2: window on even layers only. Layer 1 (odd) is global, so with window 1 on layer
     * 0, early tokens still reach late positions; no window at all differs again. */
    const char *g = random_model("gemma2", "arch_gemma2.gguf");
    edit g1 = {0}, g0 = {0};
    set_u(&g1, "gemma2.attention.sliding_window", 1);
    set_u(&g0, "gemma2.attention.sliding_window", 0);
    const char *pg1 = tmp("arch_g2_w1.gguf"), *pg0 = tmp("arch_g2_w0.gguf");
    CHECK_OK(rewrite(g, pg1, &g1));
    CHECK_OK(rewrite(g, pg0, &g0));
    CHECK_OK(score(pg1, ids, NT, a));
    CHECK_OK(score(pg1, other, NT, b));
    CHECK_OK(score(pg0, ids, NT, s0));
    double far = max_diff(a + 30, b + 30, NT - 30);
    printf("gemma2 window 1 on layer 0 only: far positions still move %.3g; vs no window %.3g\n",
           far, max_diff(a, s0, NT));
    CHECK(far > 1e-4, "gemma2: the odd layer is global (far positions move: %g)", far);
    CHECK(max_diff(a, s0, NT) > 1e-4, "gemma2: the window changes layer 0");
    remove(pg1), remove(pg0), remove(g);
}

/* nn_attention vs nn_attention_ref on gemma2 with window 5 and soft-cap 2, cache offset 20. */
static void test_attention_ref(void) {
    const char *g = random_model("gemma2", "arch_gemma2_a.gguf");
    edit e = {0};
    set_u(&e, "gemma2.attention.sliding_window", 5);
    set_f(&e, "gemma2.attn_logit_softcapping", 2.0f);
    const char *p = tmp("arch_g2_att.gguf");
    CHECK_OK(rewrite(g, p, &e));
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    CHECK_OK(terse_model_load(p, terse_model_default_params(), &m));
    if (!m) return;
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 2;
    CHECK_OK(terse_ctx_new(m, cp, &c));
    CHECK(m->swa == 5 && m->attn_softcap == 2.0f, "keys read: window %d, cap %g", m->swa,
          (double)m->attn_softcap);
    terse_batch b1 = {.n = 20, .ids = ids}, b2 = {.n = 15, .ids = ids + 20};
    CHECK_OK(terse_eval(c, &b1));
    CHECK_OK(terse_eval(c, &b2));
    float *ref = malloc(sizeof(float) * 15 * m->n_q);
    double e0 = 0;
    for (int l = 0; l < 2; l++) { /* the last layer's queries against each layer's cache */
        nn_attention_ref(c, l, 15, 20, NULL, 0, ref);
        nn_attention(c, l, 15, 20, NULL, 0);
        e0 = fmax(e0, max_diff(c->att, ref, 15 * m->n_q));
    }
    printf("gemma2 attention (window 5, soft-cap 2) blocked vs naive: %.3g\n", e0);
    CHECK(e0 < 1e-5, "blocked vs naive attention: %g", e0);
    free(ref);
    terse_ctx_free(c);
    terse_model_free(m);
    remove(p), remove(g);
}

/* phi2: one attn_qkv (rows q, k, v; biases likewise) equals the split tensors. */
static void test_fused_qkv(void) {
    const char *base = random_model("phi2", "arch_phi2.gguf");
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(base, 1, &g));
    if (!g) return;
    edit e = {.drop_prefix = {"blk.0.attn_q.", "blk.0.attn_k.", "blk.0.attn_v.",
                              "blk.1.attn_q.", "blk.1.attn_k.", "blk.1.attn_v."}, .n_drop = 6};
    float *buf[4] = {0};
    for (int l = 0; l < 2; l++) {
        const char *parts[3] = {"q", "k", "v"};
        int64_t rows = 0;
        float *w = malloc(sizeof(float) * 128 * 64), *bias = malloc(sizeof(float) * 128);
        for (int p = 0; p < 3; p++) {
            char n[64];
            snprintf(n, sizeof n, "blk.%d.attn_%s.weight", l, parts[p]);
            const gguf_tensor *t = gguf_find_tensor(g, n);
            snprintf(n, sizeof n, "blk.%d.attn_%s.bias", l, parts[p]);
            const gguf_tensor *tb = gguf_find_tensor(g, n);
            CHECK(t && tb && t->type == GGML_F32, "phi2 %s present in F32", n);
            if (!t || !tb) continue;
            memcpy(w + rows * 64, t->data, (size_t)t->nbytes);
            memcpy(bias + rows, tb->data, (size_t)tb->nbytes);
            rows += t->ne[1];
        }
        static char names[2][2][32];
        snprintf(names[l][0], 32, "blk.%d.attn_qkv.weight", l);
        snprintf(names[l][1], 32, "blk.%d.attn_qkv.bias", l);
        e.t_name[e.n_t] = names[l][0], e.t_ne0[e.n_t] = 64, e.t_ne1[e.n_t] = rows, e.t_data[e.n_t++] = w;
        e.t_name[e.n_t] = names[l][1], e.t_ne0[e.n_t] = rows, e.t_ne1[e.n_t] = 1, e.t_data[e.n_t++] = bias;
        buf[2 * l] = w, buf[2 * l + 1] = bias;
    }
    const char *pf = tmp("arch_phi2_fused.gguf");
    CHECK_OK(rewrite(base, pf, &e));
    gguf_close(g);
    float a[NT], b[NT];
    CHECK_OK(score(base, ids, NT, a));
    CHECK_OK(score(pf, ids, NT, b));
    printf("phi2 fused attn_qkv vs split q/k/v: %.3g\n", max_diff(a, b, NT));
    CHECK(max_diff(a, b, NT) < 1e-6, "phi2 fused vs split: %g", max_diff(a, b, NT));
    for (int i = 0; i < 4; i++) free(buf[i]);
    remove(pf), remove(base);
}

static void expect_load_fail(const char *path, int want, const char *needle, const char *what) {
    terse_model *m = NULL;
    int rc = terse_model_load(path, terse_model_default_params(), &m);
    CHECK(rc == want && !m && strstr(terse_last_error(), needle), "%s: rc %d, '%s'", what, rc,
          terse_last_error());
    terse_model_free(m);
}

static void test_hostile(void) {
    const char *base = random_model("llama", "arch_llama_h.gguf");
    const char *p = tmp("arch_bad.gguf");
    edit e = {0};
    set_s(&e, "llama.rope.scaling.type", "yarn");
    CHECK_OK(rewrite(base, p, &e));
    expect_load_fail(p, TERSE_ERR_UNSUPPORTED, "yarn", "yarn rope scaling");
    edit v = {0};
    set_u(&v, "llama.attention.value_length", 8);
    CHECK_OK(rewrite(base, p, &v));
    expect_load_fail(p, TERSE_ERR_UNSUPPORTED, "value_length", "value_length != key_length");
    edit f = {0};
    set_s(&f, "llama.rope.scaling.type", "llama3");
    set_f(&f, "llama.rope.scaling.low_freq_factor", 4.0f);
    set_f(&f, "llama.rope.scaling.high_freq_factor", 1.0f);
    CHECK_OK(rewrite(base, p, &f));
    expect_load_fail(p, TERSE_ERR_FORMAT, "high_freq_factor", "llama3 factors reversed");
    remove(base);
    const char *g2 = random_model("gemma2", "arch_gemma2_h.gguf");
    edit s = {0};
    set_f(&s, "gemma2.attn_logit_softcapping", -1.0f);
    CHECK_OK(rewrite(g2, p, &s));
    expect_load_fail(p, TERSE_ERR_FORMAT, "attn_logit_softcapping", "negative soft-cap");
    remove(g2);
    const char *p3 = random_model("phi3", "arch_phi3_h.gguf");
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    edit lr = {.t_name = {"rope_factors_long.weight"}, .t_ne0 = {8}, .t_ne1 = {1}, .t_data = {ones},
               .n_t = 1};
    CHECK_OK(rewrite(p3, p, &lr));
    expect_load_fail(p, TERSE_ERR_UNSUPPORTED, "LongRoPE", "phi3 LongRoPE factors");
    remove(p3);
    remove(p);
    terse_random_params rp = {"falcon", 300, 128, 64, 2, 4, 2, 128, TERSE_TYPE_F32, 1, 0, 0};
    CHECK(terse_write_random_model(p, &rp) == TERSE_ERR_UNSUPPORTED &&
          strstr(terse_last_error(), "gemma2"), "random model of an unknown arch names the known "
          "ones: %s", terse_last_error());
}

int main(void) {
    for (int i = 0; i < NT; i++) ids[i] = (i * 131 + 7) % 300;
    test_rope_scaling();
    test_window();
    test_attention_ref();
    test_fused_qkv();
    test_hostile();
    return test_summary("nn_arch");
}
