/* soft_experiment.c - the conditioning-contexts experiment of docs/soft/README.md for one
 * prompt: for each N, distil a soft prompt of N vectors and measure, on held-out
 * continuations sampled after the full prompt, the KL from the full prompt of
 *   none (BOS alone), a random soft prompt (N random vocabulary embeddings), the trained
 *   soft prompt, Selective Context (phrases) and LLMLingua compressions to N tokens;
 * then the reconstruction probe of all of them. Not part of the library or the tests.
 *
 *   make all && cc -O2 -march=native -Iinclude -Isrc tools/soft_experiment.c build/libterse.a \
 *       -lopenblas -lpcre2-8 -ljansson -lstemmer -lm -lpthread -o build/soft_experiment
 *   build/soft_experiment MODEL PROMPT.txt OUTDIR [steps] [N...]
 *
 * Writes OUTDIR/kl.tsv, OUTDIR/probe.tsv, OUTDIR/probe.html (probability space),
 * OUTDIR/probe_log.html, OUTDIR/soft_N.gguf. SOFT_HARD_ONLY=1: only the hard compressions
 * (newlines not protected) into OUTDIR/kl_hard.tsv and their N=64 texts. Threads:
 * TERSE_THREADS (default 1). Distillation settings other than the defaults: SOFT_CONT_LEN,
 * SOFT_SAMPLES, SOFT_BATCH, SOFT_LR.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "terse.h"
#include "nn/nn.h"

#define EVAL_SAMPLES 16
#define EVAL_LEN 32
#define EVAL_SEED 100000

static void die(const char *what) {
    fprintf(stderr, "soft_experiment: %s: %s\n", what, terse_last_error());
    exit(1);
}

/* a hard compression of text to n tokens: *out malloc'ed, *ntok its tokens */
static char *hard(terse_ctx *c, const char *text, terse_method method, int64_t n, int64_t *ntok) {
    terse_prompt pr = {.contexts = (const char *[]){text}, .n_contexts = 1};
    terse_compress_params p = terse_compress_default_params();
    p.method = method;
    p.target = n;
    p.keep_layout = 0; /* newlines are not protected: the budget is N tokens */
    terse_result *r;
    if (terse_compress(c, &pr, p, &r) != TERSE_OK) die("compress");
    terse_compress_stats st;
    terse_result_get_stats(r, &st);
    *ntok = st.compressed_model_tokens;
    char *s = strdup(terse_result_text(r, NULL));
    terse_result_free(r);
    return s;
}

static void progress(void *user, int32_t step, int32_t steps, double loss, double eta) {
    if (step == 1 || step == steps || step % 10 == 0)
        fprintf(stderr, "  [%s] step %d/%d loss %.4f eta %.0fs\n", (const char *)user, step, steps, loss, eta);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: soft_experiment MODEL PROMPT.txt OUTDIR [steps] [N...]\n");
        return 2;
    }
    int Ns[32] = {1, 2, 4, 8, 16, 32, 64}, nN = 7, steps = argc > 4 ? atoi(argv[4]) : 60;
    if (argc > 5) {
        nN = 0;
        for (int i = 5; i < argc && nN < 32; i++) Ns[nN++] = atoi(argv[i]);
    }
    const char *dir = argv[3];
    mkdir(dir, 0755);
    int threads = getenv("TERSE_THREADS") ? atoi(getenv("TERSE_THREADS")) : 1;
    terse_model *m;
    if (terse_model_load(argv[1], terse_model_default_params(), &m)) die("model");
    size_t len;
    char *text = NULL;
    if (terse_read_all(argv[2], &text, &len)) die("prompt");
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = threads;
    terse_ctx *c;
    if (terse_ctx_new(m, cp, &c)) die("context");
    char path[1024];
    if (getenv("SOFT_HARD_ONLY")) { /* the hard compressions again, into kl_hard.tsv */
        snprintf(path, sizeof path, "%s/kl_hard.tsv", dir);
        FILE *hf = fopen(path, "w");
        fprintf(hf, "N\tselective\tselective_tokens\tllmlingua\tllmlingua_tokens\n");
        for (int k = 0; k < nN; k++) {
            int64_t sn, ln;
            double ks, kl;
            char *sel = hard(c, text, TERSE_METHOD_SELECTIVE, Ns[k], &sn);
            char *lin = hard(c, text, TERSE_METHOD_LLMLINGUA, Ns[k], &ln);
            if (terse_soft_kl(c, text, len, NULL, sel, strlen(sel), EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &ks) ||
                terse_soft_kl(c, text, len, NULL, lin, strlen(lin), EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl))
                die("kl hard");
            fprintf(hf, "%d\t%.5f\t%lld\t%.5f\t%lld\n", Ns[k], ks, (long long)sn, kl, (long long)ln);
            fflush(hf);
            if (Ns[k] == 64) {
                snprintf(path, sizeof path, "%s/selective_64.txt", dir);
                FILE *o = fopen(path, "w"); fputs(sel, o); fclose(o);
                snprintf(path, sizeof path, "%s/llmlingua_64.txt", dir);
                o = fopen(path, "w"); fputs(lin, o); fclose(o);
            }
            free(sel);
            free(lin);
        }
        fclose(hf);
        return 0;
    }
    snprintf(path, sizeof path, "%s/kl.tsv", dir);
    FILE *kf = fopen(path, "w");
    fprintf(kf, "N\tnone\trandom_soft\tsoft\tselective\tselective_tokens\tllmlingua\t"
                "llmlingua_tokens\ttrain_kl_initial\ttrain_kl_final\tdistill_seconds\n");
    double kl_none;
    if (terse_soft_kl(c, text, len, NULL, NULL, 0, EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl_none))
        die("kl none");
    fprintf(stderr, "none: KL %.4f\n", kl_none);
    terse_soft *softs[32];
    char *labels[32], *sel64 = NULL, *lin64 = NULL;
    int64_t sel64_n = 0, lin64_n = 0;
    for (int k = 0; k < nN; k++) {
        int N = Ns[k];
        char tag[32];
        snprintf(tag, sizeof tag, "N=%d", N);
        terse_distill_params dp = terse_distill_default_params();
        dp.n_tokens = N;
        dp.steps = steps;
        dp.n_threads = threads;
        if (getenv("SOFT_CONT_LEN")) dp.cont_len = atoi(getenv("SOFT_CONT_LEN"));
        if (getenv("SOFT_SAMPLES")) dp.n_samples = atoi(getenv("SOFT_SAMPLES"));
        if (getenv("SOFT_BATCH")) dp.batch = atoi(getenv("SOFT_BATCH"));
        if (getenv("SOFT_LR")) dp.lr = (float)atof(getenv("SOFT_LR"));
        dp.progress = progress;
        dp.progress_user = tag;
        if (terse_distill(m, text, len, &dp, &softs[k])) die("distill");
        snprintf(path, sizeof path, "%s/soft_%d.gguf", dir, N);
        if (terse_soft_save(softs[k], path)) die("save");
        terse_soft_info in;
        terse_soft_get_info(softs[k], &in);
        double kl_soft, kl_rand, kl_sel, kl_lin;
        if (terse_soft_kl(c, text, len, softs[k], NULL, 0, EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl_soft))
            die("kl soft");
        /* random soft prompt: N random vocabulary rows (the paper's initialisation) */
        float *rv = malloc((size_t)N * m->n_embd * sizeof *rv);
        uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(N + 7);
        for (int i = 0; i < N; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            nn_matrix_row(&m->tok_embd, (int64_t)(s % (uint64_t)m->n_vocab), rv + (size_t)i * m->n_embd);
        }
        terse_soft *rs;
        if (terse_soft_from_vectors(m, rv, N, NULL, 0, &rs)) die("random soft");
        if (terse_soft_kl(c, text, len, rs, NULL, 0, EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl_rand))
            die("kl random");
        terse_soft_free(rs);
        free(rv);
        int64_t sel_n, lin_n;
        char *sel = hard(c, text, TERSE_METHOD_SELECTIVE, N, &sel_n);
        char *lin = hard(c, text, TERSE_METHOD_LLMLINGUA, N, &lin_n);
        if (terse_soft_kl(c, text, len, NULL, sel, strlen(sel), EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl_sel))
            die("kl selective");
        if (terse_soft_kl(c, text, len, NULL, lin, strlen(lin), EVAL_SAMPLES, EVAL_LEN, EVAL_SEED, 0, &kl_lin))
            die("kl llmlingua");
        fprintf(kf, "%d\t%.5f\t%.5f\t%.5f\t%.5f\t%lld\t%.5f\t%lld\t%.5f\t%.5f\t%.1f\n", N, kl_none,
                kl_rand, kl_soft, kl_sel, (long long)sel_n, kl_lin, (long long)lin_n, in.kl_initial,
                in.kl_final, in.seconds);
        fflush(kf);
        fprintf(stderr, "N=%d: none %.4f random %.4f soft %.4f selective %.4f (%lld) llmlingua "
                "%.4f (%lld); train %.4f -> %.4f in %.0f s\n", N, kl_none, kl_rand, kl_soft, kl_sel,
                (long long)sel_n, kl_lin, (long long)lin_n, in.kl_initial, in.kl_final, in.seconds);
        labels[k] = strdup(tag);
        if (k == nN - 1) sel64 = sel, lin64 = lin, sel64_n = sel_n, lin64_n = lin_n;
        else free(sel), free(lin);
    }
    fclose(kf);

    /* the probe */
    terse_probe *p;
    if (terse_probe_new(c, text, len, &p)) die("probe");
    for (int k = 0; k < nN; k++) {
        char lb[64];
        snprintf(lb, sizeof lb, "soft %s", labels[k]);
        if (terse_probe_add(p, c, lb, softs[k], NULL, 0)) die("probe row");
    }
    char lb[64];
    snprintf(lb, sizeof lb, "selective %lld tok", (long long)sel64_n);
    if (terse_probe_add(p, c, lb, NULL, sel64, strlen(sel64))) die("probe row");
    snprintf(lb, sizeof lb, "llmlingua %lld tok", (long long)lin64_n);
    if (terse_probe_add(p, c, lb, NULL, lin64, strlen(lin64))) die("probe row");
    snprintf(path, sizeof path, "%s/probe.tsv", dir);
    FILE *pf = fopen(path, "w");
    fprintf(pf, "prefix\tmean_prob\tmean_log\n");
    for (int32_t r = 0; r < terse_probe_rows(p); r++) {
        const char *l;
        double mp, ml;
        terse_probe_row(p, r, &l, &mp, &ml, NULL, NULL);
        fprintf(pf, "%s\t%.4f\t%.4f\n", l, mp, ml);
    }
    fclose(pf);
    for (int lg = 0; lg < 2; lg++) {
        char *html;
        if (terse_probe_html(p, argv[2], lg, &html)) die("html");
        snprintf(path, sizeof path, "%s/probe%s.html", dir, lg ? "_log" : "");
        FILE *f = fopen(path, "w");
        fputs(html, f);
        fclose(f);
        free(html);
    }
    terse_probe_free(p);
    for (int k = 0; k < nN; k++) terse_soft_free(softs[k]), free(labels[k]);
    free(sel64);
    free(lin64);
    free(text);
    terse_ctx_free(c);
    terse_model_free(m);
    return 0;
}
