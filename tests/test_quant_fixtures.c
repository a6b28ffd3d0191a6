/* test_quant_fixtures.c - reading llama.cpp's quantised files (../shared/quant, README there):
 *   1. every fixture loads (llama and qwen2; pure files of 12 types and the K_M mixtures);
 *   2. dequantised attn_q / ffn_down equal the golden tensors (gguf-py, = libggml) bit for bit,
 *      through the SIMD path and the plain C path; every other quantised tensor of every file
 *      gives the same bits on both paths;
 *   3. per-position log-probs of ids.txt (terse_score, F32 compute on the exact weights) within
 *      TOL_REF of the float64 reference forward (ref_f64.txt), on 1 and 2 threads; and within
 *      TOL_LCPP of llama.cpp's own log-probs (which quantise the activations: README).
 * Skips (passing) when ../shared/quant is absent.
 */
#include <stdint.h>

#include "gguf/gguf.h"
#include "harness.h"
#include "nn/quant.h"
#include "nn/quant_blocks.h"
#include "terse.h"

#define TOL_REF 1e-4   /* task's bound; llama.cpp's own F32 path is within 2.6e-7 */
#define TOL_LCPP 3e-2  /* activation quantisation in llama.cpp: up to 1.7e-2 measured */
#define N_IDS 256

static const char *FIX[] = {"F32",  "Q4_0", "Q4_1", "Q5_0", "Q5_1",   "Q8_0",   "Q2_K",
                            "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "Q4_K_M",
                            "Q5_K_M", "qwen2-F32", "qwen2-Q4_K_M", "qwen2-Q8_0"};
#define N_FIX (int)(sizeof FIX / sizeof FIX[0])

static char qdir[512];
static int32_t ids[N_IDS];

static void gguf_path(const char *fix, char *out, size_t cap) {
    if (strncmp(fix, "qwen2-", 6) == 0) snprintf(out, cap, "%s/%s.gguf", qdir, fix);
    else snprintf(out, cap, "%s/llama-%s.gguf", qdir, fix);
}

static int read_doubles(const char *path, double *v, int cap) {
    size_t len;
    char *b = test_read_file(path, &len);
    if (!b) return -1;
    int n = 0;
    char *p = b, *e;
    while (n < cap) {
        double x = strtod(p, &e);
        if (e == p) break;
        v[n++] = x;
        p = e;
    }
    free(b);
    return n;
}

/* 2: goldens and fast-vs-reference over every tensor of the file. */
static void check_dequant(const char *fix) {
    char path[600];
    gguf_path(fix, path, sizeof path);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, 1, &g));
    if (!g) return;
    int64_t n_checked = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->type == GGML_F32) continue;
        CHECK(quant_supported(t->type), "%s: %.*s type %s", fix, (int)t->name.len, t->name.ptr,
              gguf_type_name(t->type));
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float *a = malloc(sizeof(float) * (size_t)nel), *b = malloc(sizeof(float) * (size_t)nel);
        size_t rb = quant_row_bytes(t->type, t->ne[0]);
        for (int64_t r = 0; r < nel / t->ne[0]; r++)
            dequantize_row_ref(t->type, (const uint8_t *)t->data + r * rb, b + r * t->ne[0],
                               t->ne[0]);
        for (int lv = 0; lv <= 2; lv++) { /* plain C, AVX2, AVX-512 where the CPU has them */
            if (!qb_force_level(lv)) continue;
            for (int64_t r = 0; r < nel / t->ne[0]; r++)
                dequantize_row(t->type, (const uint8_t *)t->data + r * rb, a + r * t->ne[0],
                               t->ne[0]);
            CHECK(memcmp(a, b, sizeof(float) * (size_t)nel) == 0, "%s: %.*s: level %d and plain "
                  "dequantisation differ", fix, (int)t->name.len, t->name.ptr, lv);
        }
        qb_force_level(-1);
        for (int64_t r = 0; r < nel / t->ne[0]; r++)
            dequantize_row(t->type, (const uint8_t *)t->data + r * rb, a + r * t->ne[0], t->ne[0]);
        CHECK(quant_row_bad_block(t->type, t->data, nel) < 0, "%s: bad block reported", fix);
        char gname[700], tname[128];
        snprintf(tname, sizeof tname, "%.*s", (int)t->name.len, t->name.ptr);
        int llama = strncmp(fix, "qwen2", 5) != 0; /* goldens exist for the llama files */
        if (llama && (!strcmp(tname, "blk.0.attn_q.weight") || !strcmp(tname, "blk.0.ffn_down.weight"))) {
            snprintf(gname, sizeof gname, "%s/%s.%s.f32", qdir, fix, tname);
            size_t glen = 0;
            char *gold = test_read_file(gname, &glen);
            CHECK(gold && glen == sizeof(float) * (size_t)nel, "%s: golden %s (%zu bytes)", fix,
                  gname, glen);
            if (gold && glen == sizeof(float) * (size_t)nel) {
                int64_t bad = 0, first = -1;
                for (int64_t k = 0; k < nel; k++) {
                    uint32_t x, y;
                    memcpy(&x, gold + 4 * k, 4);
                    memcpy(&y, a + k, 4);
                    if (x != y && !bad++) first = k;
                }
                CHECK(bad == 0, "%s %s: %lld of %lld values differ from the golden (first %lld)",
                      fix, tname, (long long)bad, (long long)nel, (long long)first);
                n_checked++;
            }
            free(gold);
        }
        free(a), free(b);
    }
    if (strstr(fix, "F32") == NULL && strncmp(fix, "qwen2", 5) != 0)
        CHECK(n_checked == 2, "%s: %lld golden tensors compared", fix, (long long)n_checked);
    gguf_close(g);
}

/* 1 and 3. */
static void check_logprobs(const char *fix) {
    char path[600], ref[600];
    gguf_path(fix, path, sizeof path);
    terse_model *m = NULL;
    int rc = terse_model_load(path, terse_model_default_params(), &m);
    CHECK(rc == 0, "%s: load: %s", fix, terse_last_error());
    if (rc) return;
    double r64[N_IDS], lc[N_IDS];
    snprintf(ref, sizeof ref, "%s/%s.ref_f64.txt", qdir, fix);
    CHECK(read_doubles(ref, r64, N_IDS) == N_IDS - 1, "%s: %s", fix, ref);
    snprintf(ref, sizeof ref, "%s/%s.logprobs.txt", qdir, fix);
    CHECK(read_doubles(ref, lc, N_IDS) == N_IDS - 1, "%s: %s", fix, ref);
    for (int th = 1; th <= 2; th++) {
        terse_ctx_params cp = terse_ctx_default_params();
        cp.n_threads = th;
        terse_ctx *c = NULL;
        CHECK_OK(terse_ctx_new(m, cp, &c));
        if (!c) break;
        float s[N_IDS];
        CHECK_OK(terse_score(c, ids, N_IDS, s));
        double d_ref = 0, d_lc = 0;
        for (int i = 1; i < N_IDS; i++) {
            d_ref = fmax(d_ref, fabs(-(double)s[i] - r64[i - 1]));
            d_lc = fmax(d_lc, fabs(-(double)s[i] - lc[i - 1]));
        }
        CHECK(d_ref <= TOL_REF, "%s (%d threads): max |lp - ref_f64| = %.3g", fix, th, d_ref);
        CHECK(d_lc <= TOL_LCPP, "%s (%d threads): max |lp - llama.cpp| = %.3g", fix, th, d_lc);
        if (th == 1 && getenv("TERSE_TEST_VERBOSE"))
            printf("%-14s max|d| vs ref_f64 %.3g, vs llama.cpp %.3g\n", fix, d_ref, d_lc);
        terse_ctx_free(c);
    }
    terse_model_free(m);
}

int main(void) {
    snprintf(qdir, sizeof qdir, "%s/quant", test_shared_dir());
    char p[600];
    snprintf(p, sizeof p, "%s/ids.txt", qdir);
    double v[N_IDS];
    if (read_doubles(p, v, N_IDS) != N_IDS) {
        printf("test_quant_fixtures: %s not found, skipped\n", p);
        return test_summary("test_quant_fixtures");
    }
    for (int i = 0; i < N_IDS; i++) ids[i] = (int32_t)v[i];
    printf("dequantisers: %s\n", quant_simd_level());
    for (int f = 0; f < N_FIX; f++) {
        check_dequant(FIX[f]);
        check_logprobs(FIX[f]);
    }
    return test_summary("test_quant_fixtures");
}
