/* test_golden.c - the runtime against PyTorch / Hugging Face transformers on the same weights.
 *
 * tests/golden/<arch>/ (llama, qwen2, gpt2; llama3 = Llama with Llama 3 rope scaling, mistral
 * = Mistral with a sliding window shorter than the ids, qwen3, gemma, gemma2, phi2, phi3) holds a tiny random-weight model as
 * save_pretrained wrote it and the reference's outputs (tools/ref_torch.py, float64 on the
 * CPU; see tests/golden/README.md). For each arch and each output type (F32, F16, BF16,
 * Q8_0) this converts the folder with terse_convert_hf, loads it, and compares:
 *   - per-token log-probs of ids.txt (terse_score and terse_eval_logprobs) with logprobs.txt;
 *   - the full log-softmax at 3 positions with logsoftmax.txt (max abs diff, KL) and the
 *     top-5 order there;
 *   - llama: the greedy continuation of ids[0..10) with greedy.txt, token for token.
 * Tolerances (max abs diff of log-probs, nats) are per type, below; every actual maximum is
 * printed. A folder that does not exist yet is skipped (SKIP, nothing counted).
 */
#include "harness.h"
#include "terse.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

enum { N_IDS = 100, N_POS = 3, TOPK = 5, MAX_V = 4096 };

/* Tolerances: max |log p - reference| in nats over the 99 log-probs (tol_lp) and over the
 * 3 x V log-softmax values (tol_lsm), and the largest KL(reference || terse) of the 3 rows.
 * The golden models are peaky (log-probs of the random ids reach -30), so weight rounding
 * moves log-probs more than on a trained model. Measured maxima over the three archs
 * (x86-64, OpenBLAS, 1 thread): F32 6.5e-6 / 9.9e-6 / 5.5e-7; F16 7.8e-3 / 7.4e-3 / 2.5e-6;
 * BF16 0.10 / 0.124 / 6.5e-4; Q8_0 0.376 / 0.316 / 2.4e-3. Limits are about 2x those,
 * except F32, held to 1e-3 as specified. */
static const struct { terse_type type; const char *name; double tol_lp, tol_lsm, tol_kl; } TYPES[] = {
    {TERSE_TYPE_F32, "F32", 1e-3, 1e-3, 1e-5},
    {TERSE_TYPE_F16, "F16", 2e-2, 2e-2, 2e-5},
    {TERSE_TYPE_BF16, "BF16", 0.25, 0.25, 3e-3},
    {TERSE_TYPE_Q8_0, "Q8_0", 0.75, 0.75, 1e-2},
    {TERSE_TYPE_Q6_K, "Q6_K", 1.0, 1.0, 1e-2},   /* rows of 64: Q6_K falls back to Q8_0 */
    {TERSE_TYPE_Q4_K_M, "Q4_K_M", 4.0, 4.0, 0.5}, /* Q5_0 / Q8_0 fallbacks, 4-5 bits */
};

typedef struct {
    int32_t ids[N_IDS];
    double lp[N_IDS - 1];
    int32_t pos[N_POS];
    double *lsm;              /* (N_POS, V) */
    int32_t n_vocab;
    int32_t greedy[64], n_greedy;
} golden;

static int read_ints(const char *path, int32_t *out, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    long v;
    while (n < cap && fscanf(f, "%ld", &v) == 1) out[n++] = (int32_t)v;
    fclose(f);
    return n;
}

static int load_golden(const char *dir, golden *g) {
    char p[512];
    memset(g, 0, sizeof *g);
    snprintf(p, sizeof p, "%s/ids.txt", dir);
    if (read_ints(p, g->ids, N_IDS) != N_IDS) return -1;
    snprintf(p, sizeof p, "%s/logprobs.txt", dir);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int n = 0;
    while (n < N_IDS - 1 && fscanf(f, "%lf", &g->lp[n]) == 1) n++;
    fclose(f);
    if (n != N_IDS - 1) return -1;
    /* logsoftmax.txt: lines "pos v0 .. v{V-1}"; V from the first line. */
    snprintf(p, sizeof p, "%s/logsoftmax.txt", dir);
    if (!(f = fopen(p, "r"))) return -1;
    g->lsm = malloc(sizeof(double) * N_POS * MAX_V);
    for (int r = 0; r < N_POS; r++) {
        if (fscanf(f, "%d", &g->pos[r]) != 1) break;
        int v = 0;
        int c;
        while ((c = fgetc(f)) != EOF && c != '\n') {
            ungetc(c, f);
            if (v >= MAX_V || fscanf(f, "%lf", &g->lsm[(size_t)r * MAX_V + v]) != 1) break;
            v++;
        }
        if (r == 0) g->n_vocab = v;
        else if (v != g->n_vocab) g->n_vocab = -1;
    }
    fclose(f);
    if (g->n_vocab <= 0) return -1;
    snprintf(p, sizeof p, "%s/greedy.txt", dir);
    g->n_greedy = read_ints(p, g->greedy, 64);
    if (g->n_greedy < 0) g->n_greedy = 0;
    return 0;
}

/* Indices of the k largest of x[0..n), largest first. */
static void topk_ref(const double *x, int n, int k, int32_t *out) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int q = 0; q < j; q++) taken |= out[q] == i;
            if (!taken && (best < 0 || x[i] > x[best])) best = i;
        }
        out[j] = best;
    }
}

static void run_type(const char *arch, const char *dir, const golden *gd, int t,
                     const char *tmpdir) {
    /* gemma's golden model is twice as sharp as the others (log-softmax range ~26 nats, not
     * ~14: its norms multiply by 1 + w with w ~ 1 from the shared randomiser, and the tied
     * embeddings are scaled by sqrt(C)), so weight rounding moves it more: its F16/BF16/Q8_0
     * limits are 5x (measured F16 0.073, BF16 0.20 / 0.32, Q8_0 1.28 / 1.38 nats, KL 0.028).
     * F32 keeps 1e-3 for every arch. */
    const double k = TYPES[t].type != TERSE_TYPE_F32 && !strcmp(arch, "gemma") ? 5.0 : 1.0;
    const double tol_lp = k * TYPES[t].tol_lp, tol_lsm = k * TYPES[t].tol_lsm,
                 tol_kl = k * TYPES[t].tol_kl;
    char out[512];
    snprintf(out, sizeof out, "%s/%s_%s.gguf", tmpdir, arch, TYPES[t].name);
    int rc = terse_convert_hf(dir, out, TYPES[t].type);
    CHECK(rc == 0, "%s %s: convert: %s", arch, TYPES[t].name, terse_last_error());
    if (rc) return;
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    rc = terse_model_load(out, terse_model_default_params(), &m);
    CHECK(rc == 0, "%s %s: load: %s", arch, TYPES[t].name, terse_last_error());
    if (rc) {
        unlink(out);
        return;
    }
    terse_model_info info;
    terse_model_get_info(m, &info);
    CHECK(info.n_vocab == gd->n_vocab, "%s: n_vocab %d vs golden %d", arch, info.n_vocab,
          gd->n_vocab);
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1;
    rc = terse_ctx_new(m, cp, &c);
    CHECK(rc == 0, "%s: ctx: %s", arch, terse_last_error());
    if (rc) goto done;

    /* 1. terse_score: surprisal[i] = -log p(ids[i] | ids[<i]). */
    float s[N_IDS], lp[N_IDS];
    double d_score = 0, d_eval = 0;
    CHECK_OK(terse_score(c, gd->ids, N_IDS, s));
    for (int i = 1; i < N_IDS; i++) d_score = fmax(d_score, fabs(-(double)s[i] - gd->lp[i - 1]));

    /* 1b. F32 again with the default thread count: the threaded paths agree too. */
    if (TYPES[t].type == TERSE_TYPE_F32) {
        terse_ctx *c2 = NULL;
        float s2[N_IDS];
        double d2 = 0;
        CHECK_OK(terse_ctx_new(m, terse_ctx_default_params(), &c2));
        if (c2 && terse_score(c2, gd->ids, N_IDS, s2) == 0)
            for (int i = 1; i < N_IDS; i++) d2 = fmax(d2, fabs(-(double)s2[i] - gd->lp[i - 1]));
        else
            d2 = INFINITY;
        printf("%-7s %-4s  log-probs max |diff| with default threads %.3g\n", arch, TYPES[t].name, d2);
        CHECK(d2 <= tol_lp, "%s F32 threaded: max diff %g", arch, d2);
        terse_ctx_free(c2);
    }

    /* 2. One terse_eval over all ids, then log-probs, full log-softmax and top-k from it. */
    terse_kv_clear(c);
    terse_batch b = {N_IDS, gd->ids, NULL, NULL, NULL};
    CHECK_OK(terse_eval(c, &b));
    CHECK_OK(terse_eval_logprobs(c, gd->ids + 1, N_IDS - 1, lp));
    for (int i = 0; i < N_IDS - 1; i++) d_eval = fmax(d_eval, fabs((double)lp[i] - gd->lp[i]));
    double d_lsm = 0, kl_max = 0;
    int top_ok = 1, top1_ok = 1;
    float *row = malloc(sizeof(float) * (size_t)gd->n_vocab);
    for (int r = 0; r < N_POS; r++) {
        const double *ref = gd->lsm + (size_t)r * MAX_V;
        CHECK_OK(terse_eval_logits(c, gd->pos[r], row, 1));
        double kl = 0;
        for (int v = 0; v < gd->n_vocab; v++) {
            d_lsm = fmax(d_lsm, fabs((double)row[v] - ref[v]));
            kl += exp(ref[v]) * (ref[v] - (double)row[v]);
        }
        kl_max = fmax(kl_max, kl);
        int32_t want[TOPK], got[TOPK];
        float got_lp[TOPK];
        topk_ref(ref, gd->n_vocab, TOPK, want);
        CHECK_OK(terse_eval_topk(c, gd->pos[r], TOPK, got, got_lp));
        /* Order only counts where the reference separates neighbours by more than the type's
         * error could move them. */
        for (int k = 0; k < TOPK; k++) {
            int separated = (k == 0 || ref[want[k - 1]] - ref[want[k]] > 2 * tol_lsm) &&
                            (k == TOPK - 1 || ref[want[k]] - ref[want[k + 1]] > 2 * tol_lsm);
            if (separated && got[k] != want[k]) {
                top_ok = 0;
                if (k == 0) top1_ok = 0;
            }
        }
    }
    free(row);
    printf("%-7s %-4s  log-probs max |diff| score %.3g eval %.3g; log-softmax %.3g, KL %.3g; "
           "top-%d %s (limits %.2g, KL %.2g)\n", arch, TYPES[t].name, d_score, d_eval, d_lsm, kl_max,
           TOPK, top_ok ? "same order" : top1_ok ? "top-1 same, order differs" : "DIFFERS",
           tol_lp, tol_kl);
    CHECK(d_score <= tol_lp, "%s %s: terse_score max diff %g > %g", arch, TYPES[t].name,
          d_score, tol_lp);
    CHECK(d_eval <= tol_lp, "%s %s: eval_logprobs max diff %g > %g", arch,
          TYPES[t].name, d_eval, tol_lp);
    CHECK(d_lsm <= tol_lsm, "%s %s: log-softmax max diff %g > %g", arch, TYPES[t].name,
          d_lsm, tol_lsm);
    CHECK(kl_max <= tol_kl, "%s %s: KL %g > %g", arch, TYPES[t].name, kl_max,
          tol_kl);
    CHECK(top_ok, "%s %s: top-%d order differs where the reference separates it", arch,
          TYPES[t].name, TOPK);

    /* 3. Greedy continuation (llama). */
    if (gd->n_greedy > 0) {
        int32_t gen[64];
        terse_sample_params sp = terse_sample_default_params();
        sp.temperature = 0;
        sp.stop_at_eos = 0;
        terse_kv_clear(c);
        int32_t n = terse_generate(c, gd->ids, 10, sp, gen, gd->n_greedy);
        int same = n == gd->n_greedy, first_diff = -1;
        for (int i = 0; same && i < n; i++)
            if (gen[i] != gd->greedy[i]) same = 0, first_diff = i;
        printf("%-7s %-4s  greedy %d tokens: %s", arch, TYPES[t].name, (int)n,
               same ? "identical\n" : "DIFFERS");
        if (!same) printf(" at token %d\n", first_diff);
        /* the reference's closest top-1/top-2 margin is 3e-3: only F32 is held to it */
        if (TYPES[t].type == TERSE_TYPE_F32) CHECK(same, "%s F32 greedy differs at %d", arch, first_diff);
    }
done:
    terse_ctx_free(c);
    terse_model_free(m);
    unlink(out);
}

int main(void) {
    const char *archs[] = {"llama", "qwen2", "gpt2", "llama3", "mistral", "qwen3",
                           "gemma", "gemma2", "phi2", "phi3"};
    char tmpdir[64] = "/tmp/terse_golden_XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (int a = 0; a < (int)(sizeof archs / sizeof archs[0]); a++) {
        char dir[256], cfg[300];
        snprintf(dir, sizeof dir, "tests/golden/%s", archs[a]);
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        struct stat st;
        if (stat(cfg, &st) != 0) {
            printf("SKIP %s: %s not found (run tools/ref_torch.py)\n", archs[a], cfg);
            continue;
        }
        golden gd;
        int rc = load_golden(dir, &gd);
        CHECK(rc == 0, "%s: golden files unreadable", dir);
        if (rc == 0)
            for (int t = 0; t < (int)(sizeof TYPES / sizeof TYPES[0]); t++)
                run_type(archs[a], dir, &gd, t, tmpdir);
        free(gd.lsm);
    }
    rmdir(tmpdir);
    return test_summary("golden");
}
