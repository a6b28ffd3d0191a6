/* test_grad_golden.c - whole-model gradients of the training engine (nn/grad.h) against
 * PyTorch autograd in float64 on the forward goldens' random-weight models.
 *
 * tests/golden/grad/<arch>_<case>.txt come from tools/ref_grad.py (see its header for the
 * cases, formulas and file format; info.txt there records the versions and the reference's
 * own agreement with transformers). For llama (GQA, untied), qwen2 (biases, NEOX rotary)
 * and gpt2 (tied, position embeddings) and the cases ce (causal, cross-entropy), kl_mask
 * (embedding rows, custom mask, forward KL with row weights) and rkl (embedding rows,
 * reverse KL), this converts tests/golden/<arch>/ to F32 GGUF, runs forward, loss, backward
 * with every weight trainable, and compares:
 *   loss, sampled logits, the input-row gradient (T x C, whole), and per weight tensor its
 *   gradient's L2 norm, its dot with a probe vector, and 48 sampled entries.
 * Bound: 1e-4 relative for each (the norm-wise relative error of a vector; the probe dot
 * relative to |g| |probe|). The worst value of each is printed. Missing goldens: SKIP.
 */
#include "harness.h"
#include "nn/grad.h"
#include "terse.h"

#include <sys/stat.h>

enum { T = 24, N_IDS = 100 };
#define BOUND 1e-4

static char *next_line(char **p) {
    char *s = *p;
    if (!s || !*s) return NULL;
    char *e = strchr(s, '\n');
    if (e) *e = 0, *p = e + 1;
    else *p = s + strlen(s);
    return s;
}

static double vec_rel(const double *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The inputs of a case, as ref_grad.py builds them. */
static void inputs(const char *cs, const int32_t *ids_all, int C, int V, int32_t *ids,
                   float *embd, uint8_t *mask, float *teacher, float *w, int32_t *targets) {
    int ne = !strcmp(cs, "ce") ? 0 : !strcmp(cs, "kl_mask") ? 4 : 6;
    for (int i = 0; i < T; i++) {
        ids[i] = i < ne ? -1 : ids_all[i];
        for (int c = 0; c < C; c++) embd[i * C + c] = (float)(0.5 * sin(1.7 * i + 0.31 * c + 0.5));
        for (int j = 0; j < T; j++)
            mask[i * T + j] = !strcmp(cs, "kl_mask")
                                  ? (j <= i && !(i >= 12 && j >= 4 && j < 8)) || (i == 2 && j == 3)
                                  : j <= i;
        double *z = malloc(sizeof(double) * V), mx = -1e300, s = 0;
        for (int v = 0; v < V; v++) {
            z[v] = 2 * sin(0.013 * v * (i + 1) + 0.7 * i) + 0.5 * cos(0.05 * v);
            mx = fmax(mx, z[v]);
        }
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        for (int v = 0; v < V; v++) teacher[(size_t)i * V + v] = (float)(z[v] - mx - log(s));
        free(z);
        w[i] = (float)(i % 6 == 5 ? 0.0 : 0.5 + ((7 * i) % 4) / 6.0);
        targets[i] = i % 5 == 4 || i == T - 1 ? -1 : ids_all[i + 1];
    }
}

static double worst_all;

static void run_case(nn_grad *g, const char *arch, const char *cs, const char *path,
                     const int32_t *ids_all, int C, int V) {
    char *text = test_read_file(path, NULL);
    if (!text) {
        printf("SKIP %s (no golden)\n", path);
        return;
    }
    int32_t ids[T], targets[T];
    float *embd = malloc(sizeof(float) * T * C), *teacher = malloc(sizeof(float) * T * V);
    float *dl = malloc(sizeof(float) * T * V), *d_embd = malloc(sizeof(float) * T * C), w[T];
    uint8_t mask[T * T];
    inputs(cs, ids_all, C, V, ids, embd, mask, teacher, w, targets);
    const float *logits = NULL;
    nn_grad_zero(g);
    CHECK_OK(nn_grad_forward(g, ids, embd, T, !strcmp(cs, "kl_mask") ? mask : NULL, &logits));
    double loss = !strcmp(cs, "ce") ? nn_loss_ce(logits, targets, T, V, dl)
                  : nn_loss_kl(logits, teacher, !strcmp(cs, "kl_mask") ? w : NULL, T, V,
                               !strcmp(cs, "rkl"), dl);
    CHECK_OK(nn_grad_backward(g, dl, d_embd));

    char *p = text, *ln;
    double e_loss = INFINITY, e_logit = INFINITY, e_embd = INFINITY;
    double w_sample = 0, w_norm = 0, w_dot = 0;
    int n_tensors = 0, n_missing = 0;
    char worst_name[96] = "";
    while ((ln = next_line(&p))) {
        double ref;
        int n1, n2;
        char name[96];
        if (sscanf(ln, "loss %lf", &ref) == 1) {
            e_loss = fabs(loss - ref) / fabs(ref);
        } else if (sscanf(ln, "logits %d", &n1) == 1) {
            double num = 0, den = 0;
            for (int k = 0; k < n1 && (ln = next_line(&p)); k++) {
                long idx;
                double v;
                if (sscanf(ln, "%ld %lf", &idx, &v) != 2 || idx < 0 || idx >= (long)T * V) break;
                num = fmax(num, fabs(logits[idx] - v)), den = fmax(den, fabs(v));
            }
            e_logit = num / den;
        } else if (sscanf(ln, "d_embd %d %d", &n1, &n2) == 2 && n1 == T && n2 == C) {
            double *ref_e = malloc(sizeof(double) * T * C), *got = malloc(sizeof(double) * T * C);
            int k = 0;
            for (int r = 0; r < T && (ln = next_line(&p)); r++) {
                char *s = ln, *end;
                for (int c = 0; c < C; c++, s = end) {
                    ref_e[k] = strtod(s, &end);
                    got[k] = d_embd[k];
                    if (end == s) break;
                    k++;
                }
            }
            e_embd = k == T * C ? vec_rel(got, ref_e, T * C) : INFINITY;
            free(ref_e), free(got);
        } else if (ln[0] == 't') {
            long n, ns;
            double nref, dref;
            if (sscanf(ln, "tensor %95s %ld %lf %lf %ld", name, &n, &nref, &dref, &ns) != 5) continue;
            nn_grad_tensor *t = nn_grad_find(g, name);
            double *a = malloc(sizeof(double) * ns), *b = malloc(sizeof(double) * ns);
            int ok = t && t->n == n;
            for (long j = 0; j < ns && (ln = next_line(&p)); j++) {
                long idx;
                if (sscanf(ln, "%ld %lf", &idx, &b[j]) != 2 || idx < 0 || idx >= n) ok = 0;
                a[j] = ok ? t->g[idx] : 0;
            }
            if (!ok) {
                n_missing++;
                CHECK(0, "%s %s: tensor %s missing or of another size", arch, cs, name);
                free(a), free(b);
                continue;
            }
            double nrm = 0, dot = 0, pn = 0;
            for (int64_t i = 0; i < t->n; i++) {
                double pr = sin(0.001 * (double)i + 0.3);
                nrm += (double)t->g[i] * t->g[i];
                dot += (double)t->g[i] * pr;
                pn += pr * pr;
            }
            double es = vec_rel(a, b, ns), en = fabs(sqrt(nrm) - nref) / nref;
            double ed = fabs(dot - dref) / (nref * sqrt(pn));
            if (es > w_sample) w_sample = es, snprintf(worst_name, sizeof worst_name, "%s", name);
            w_norm = fmax(w_norm, en), w_dot = fmax(w_dot, ed);
            n_tensors++;
            free(a), free(b);
        }
    }
    int n_expected = 0;
    nn_grad_tensors(g, &n_expected);
    printf("%-5s %-7s loss %.6f rel %.1e | logits %.1e | d_embd %.1e | %d tensors: samples "
           "%.1e (%s), norms %.1e, probe %.1e\n", arch, cs, loss, e_loss, e_logit, e_embd,
           n_tensors, w_sample, worst_name, w_norm, w_dot);
    CHECK(n_tensors == n_expected && n_missing == 0, "%s %s: %d tensors in the golden, %d here",
          arch, cs, n_tensors, n_expected);
    const double es[] = {e_loss, e_logit, e_embd, w_sample, w_norm, w_dot};
    const char *what[] = {"loss", "logits", "d_embd", "weight-gradient samples", "norms", "probe"};
    for (int k = 0; k < 6; k++) {
        CHECK(es[k] <= BOUND, "%s %s: %s rel err %g > %g", arch, cs, what[k], es[k], BOUND);
        if (es[k] > worst_all) worst_all = es[k];
    }
    free(text), free(embd), free(teacher), free(dl), free(d_embd);
}

static void run_arch(const char *arch) {
    char dir[256], path[512], gguf[256];
    snprintf(dir, sizeof dir, "tests/golden/%s", arch);
    snprintf(path, sizeof path, "tests/golden/grad/%s_ce.txt", arch);
    struct stat st;
    if (stat(dir, &st) || stat(path, &st)) {
        printf("SKIP %s (no golden)\n", arch);
        return;
    }
    int32_t ids_all[N_IDS];
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && n < N_IDS && fscanf(f, "%d", &ids_all[n]) == 1) n++;
    if (f) fclose(f);
    CHECK(n == N_IDS, "%s: ids.txt", arch);
    if (n != N_IDS) return;
    snprintf(gguf, sizeof gguf, "%s", test_tmp_path(arch));
    CHECK_OK(terse_convert_hf(dir, gguf, TERSE_TYPE_F32));
    terse_model *m = NULL;
    if (terse_model_load(gguf, terse_model_default_params(), &m)) {
        CHECK(0, "%s: load: %s", arch, terse_last_error());
        unlink(gguf);
        return;
    }
    unlink(gguf);
    terse_model_info info;
    terse_model_get_info(m, &info);
    nn_grad *g = NULL;
    CHECK_OK(nn_grad_new(m, (nn_grad_params){.max_tokens = T, .weight_grads = 1, .n_threads = 2}, &g));
    static const char *cases[] = {"ce", "kl_mask", "rkl"};
    for (int k = 0; g && k < 3; k++) {
        snprintf(path, sizeof path, "tests/golden/grad/%s_%s.txt", arch, cases[k]);
        run_case(g, arch, cases[k], path, ids_all, info.n_embd, info.n_vocab);
    }
    nn_grad_free(g);
    terse_model_free(m);
}

int main(void) {
    run_arch("llama");
    run_arch("qwen2");
    run_arch("gpt2");
    printf("worst relative error over all checks %.2e (bound %.0e)\n", worst_all, BOUND);
    return test_summary("test_grad_golden");
}
