/* test_soft.c - soft prompts: the file (round trip, another model, truncation, temp+rename),
 * their use as a prefix (a soft prompt made of a text's own token embeddings must score
 * exactly like the text), KL measurement, the reconstruction probe, bad distill input, and a
 * short distillation on a tiny random model that must lower the KL. */
#include "harness.h"
#include "terse.h"
#include "nn/nn.h"
#include "train/distill.h"

#include <math.h>
#include <sys/stat.h>

static const char prompt[] = "The cat sat on the mat. ";

/* the token embeddings of BOS-less text, n x C */
static float *embed_text(const terse_model *m, const char *text, int32_t *n) {
    int32_t ids[256];
    int64_t k = terse_tokenize(terse_model_vocab(m), text, strlen(text), 0, ids, NULL, 256);
    float *v = malloc((size_t)k * m->n_embd * sizeof *v);
    for (int64_t i = 0; i < k; i++) nn_matrix_row(&m->tok_embd, ids[i], v + i * m->n_embd);
    *n = (int32_t)k;
    return v;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int main(void) {
    char mpath[256], mpath2[256], spath[256], tpath[256];
    snprintf(mpath, sizeof mpath, "%s", test_tmp_path("soft_model.gguf"));
    snprintf(mpath2, sizeof mpath2, "%s", test_tmp_path("soft_model2.gguf"));
    snprintf(spath, sizeof spath, "%s", test_tmp_path("soft.gguf"));
    snprintf(tpath, sizeof tpath, "%s", test_tmp_path("soft_trunc.gguf"));
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 160, .n_embd = 32,
                              .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 64,
                              .type = TERSE_TYPE_F32, .seed = 7, .init_std = 0.2f};
    CHECK_OK(terse_write_random_model(mpath, &rp));
    rp.seed = 8;
    CHECK_OK(terse_write_random_model(mpath2, &rp));
    terse_model *m = NULL, *m2 = NULL;
    CHECK_OK(terse_model_load(mpath, terse_model_default_params(), &m));
    CHECK_OK(terse_model_load(mpath2, terse_model_default_params(), &m2));
    if (!m || !m2) return test_summary("test_soft");
    const terse_vocab *v = terse_model_vocab(m);
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = 1;
    terse_ctx *c;
    CHECK_OK(terse_ctx_new(m, cp, &c));

    /* 1. a soft prompt of the prompt's own embeddings behaves exactly like the prompt */
    int32_t np;
    float *pv = embed_text(m, prompt, &np);
    terse_soft *s = NULL;
    CHECK_OK(terse_soft_from_vectors(m, pv, np, prompt, strlen(prompt), &s));
    const char *cont = "and the dog";
    int32_t ids[256], full[256];
    int64_t nc = terse_tokenize(v, cont, strlen(cont), 0, ids, NULL, 256);
    full[0] = terse_vocab_bos(v);
    int64_t nf = 1 + terse_tokenize(v, prompt, strlen(prompt), 0, full + 1, NULL, 255);
    memcpy(full + nf, ids, (size_t)nc * sizeof *ids);
    float soft_s[64], hard_s[256];
    CHECK_OK(terse_soft_score(c, s, ids, (int32_t)nc, soft_s));
    CHECK_OK(terse_score(c, full, (int32_t)(nf + nc), hard_s));
    float maxd = 0;
    for (int64_t i = 0; i < nc; i++) maxd = fmaxf(maxd, fabsf(soft_s[i] - hard_s[nf + i]));
    CHECK(maxd < 1e-4f, "soft(prompt embeddings) vs hard: max |d surprisal| %g", (double)maxd);

    /* generation after the soft prefix (n_prompt 0) = after the text */
    int32_t g1[16], g2[16];
    CHECK(terse_soft_prefix(c, s) == 1 + np, "prefix length");
    int32_t n1 = terse_generate(c, NULL, 0, terse_sample_default_params(), g1, 16);
    terse_kv_clear(c);
    int32_t n2 = terse_generate(c, full, (int32_t)nf, terse_sample_default_params(), g2, 16);
    CHECK(n1 == n2 && n1 > 0 && !memcmp(g1, g2, (size_t)n1 * sizeof *g1), "generate %d vs %d", n1, n2);
    terse_kv_clear(c);
    CHECK(terse_generate(c, NULL, 0, terse_sample_default_params(), g1, 4) == TERSE_ERR_INVALID,
          "n_prompt 0 without an eval");

    /* KL: 0 for the exact soft prompt and for the text itself, > 0 for nothing */
    double kl_soft = -1, kl_text = -1, kl_none = -1;
    CHECK_OK(terse_soft_kl(c, prompt, strlen(prompt), s, NULL, 0, 3, 8, 5, 0, &kl_soft));
    CHECK_OK(terse_soft_kl(c, prompt, strlen(prompt), NULL, prompt, strlen(prompt), 3, 8, 5, 0, &kl_text));
    CHECK_OK(terse_soft_kl(c, prompt, strlen(prompt), NULL, NULL, 0, 3, 8, 5, 0, &kl_none));
    CHECK(fabs(kl_soft) < 1e-4 && fabs(kl_text) < 1e-6 && kl_none > 1e-3,
          "kl soft %g, text %g, none %g", kl_soft, kl_text, kl_none);

    /* batched, masked sampling rows = one sequence at a time through the plain forward */
    {
        int32_t S = 5, L = 6, V = m->n_vocab, xs[30];
        float *rows = malloc((size_t)S * L * V * sizeof *rows), *one = malloc((size_t)V * sizeof *one);
        CHECK_OK(distill_sample(c, full, (int32_t)nf, S, L, 1.0f, 3, xs, rows));
        float md = 0;
        for (int32_t k = 0; k < S; k++) {
            int32_t seq[256];
            memcpy(seq, full, (size_t)nf * sizeof *seq);
            memcpy(seq + nf, xs + k * L, (size_t)L * sizeof *seq);
            terse_kv_clear(c);
            terse_batch b = {.n = (int32_t)nf + L - 1, .ids = seq};
            CHECK_OK(terse_eval(c, &b));
            for (int32_t t = 0; t < L; t++) {
                CHECK_OK(terse_eval_logits(c, (int32_t)nf - 1 + t, one, 1));
                for (int32_t u = 0; u < V; u++)
                    md = fmaxf(md, fabsf(one[u] - rows[((size_t)k * L + t) * V + u]));
            }
        }
        CHECK(md < 1e-4f, "masked side-by-side rows vs one sequence: max |d| %g", (double)md);
        free(rows);
        free(one);
    }

    /* 2. the file: round trip, another model, truncation, not a soft file, unwritable path */
    CHECK_OK(terse_soft_save(s, spath));
    terse_soft *r = NULL;
    CHECK_OK(terse_soft_load(spath, m, &r));
    if (r) {
        terse_soft_info a, b;
        terse_soft_get_info(s, &a);
        terse_soft_get_info(r, &b);
        CHECK(a.n_tokens == b.n_tokens && a.n_embd == b.n_embd && a.embd_hash == b.embd_hash &&
              a.prompt_hash == b.prompt_hash && b.prompt && !strcmp(b.prompt, prompt) &&
              !strcmp(b.arch, "llama") && b.prompt_tokens == np, "info round trip");
        CHECK(!memcmp(terse_soft_vectors(r), pv, (size_t)np * 32 * sizeof(float)), "vectors bit-equal");
        terse_soft_free(r);
    }
    r = NULL;
    CHECK(terse_soft_load(spath, m2, &r) == TERSE_ERR_INVALID && !r, "another model refused");
    CHECK(strstr(terse_last_error(), "another model") != NULL, "message: %s", terse_last_error());
    CHECK(terse_soft_prefix(c, s) > 0, "prefix ok");
    terse_ctx *c2;
    CHECK_OK(terse_ctx_new(m2, cp, &c2));
    CHECK(terse_soft_prefix(c2, s) == TERSE_ERR_INVALID, "prefix on another model refused");
    terse_ctx_free(c2);
    size_t flen;
    char *bytes = test_read_file(spath, &flen);
    CHECK(bytes != NULL, "read back");
    if (bytes) {
        size_t cuts[] = {flen - 1, flen - 100, flen / 2, 30, 3};
        for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
            FILE *f = fopen(tpath, "wb");
            fwrite(bytes, 1, cuts[k], f);
            fclose(f);
            int rc = terse_soft_load(tpath, m, &r);
            CHECK(rc == TERSE_ERR_FORMAT || rc == TERSE_ERR_IO, "truncated at %zu: %d", cuts[k], rc);
        }
        free(bytes);
        remove(tpath);
    }
    CHECK(terse_soft_load(mpath, m, &r) == TERSE_ERR_FORMAT, "a model file is not a soft prompt");
    CHECK(strstr(terse_last_error(), "not a soft prompt") != NULL, "message: %s", terse_last_error());
    CHECK(terse_soft_save(s, "/nonexistent-dir/x.gguf") == TERSE_ERR_IO, "unwritable path");
    CHECK(!file_exists("/nonexistent-dir/x.gguf"), "nothing written");

    /* 3. the probe: the exact soft prompt scores 1, the empty prefix 0 */
    terse_probe *pr = NULL;
    CHECK_OK(terse_probe_new(c, prompt, strlen(prompt), &pr));
    if (pr) {
        CHECK_OK(terse_probe_add(pr, c, "exact", s, NULL, 0));
        CHECK_OK(terse_probe_add(pr, c, "none", NULL, "", 0));
        double mp = 0, ml = 0, zp = 1, zl = 1;
        terse_probe_row(pr, 0, NULL, &mp, &ml, NULL, NULL);
        terse_probe_row(pr, 1, NULL, &zp, &zl, NULL, NULL);
        CHECK(fabs(mp - 1) < 1e-3 && fabs(ml - 1) < 1e-3, "exact row %g %g", mp, ml);
        CHECK(fabs(zp) < 1e-3 && fabs(zl) < 1e-3, "none row %g %g", zp, zl);
        char *html = NULL;
        CHECK_OK(terse_probe_html(pr, "t<est>", 0, &html));
        CHECK(html && strstr(html, "t&lt;est&gt;") && strstr(html, "exact"), "html");
        free(html);
        CHECK(terse_probe_rows(pr) == 2, "rows");
        terse_probe_free(pr);
    }
    CHECK(terse_probe_new(c, "", 0, &pr) == TERSE_ERR_INVALID, "probe of empty text");

    /* 3b. terse eval's "soft" method: the exact soft prompt in place of the shared context
     * gives the full prompt's output (KL 0) */
    {
        terse_dataset *ds = NULL;
        const char *jl = "{\"contexts\": [\"the dog ran\"], \"question\": \"Who ran?\"}\n";
        CHECK_OK(terse_dataset_parse(jl, strlen(jl), &ds));
        terse_evaluate_params ep = terse_evaluate_default_params();
        const char *meth[] = {"soft"};
        ep.methods = meth;
        ep.n_methods = 1;
        ep.max_new_tokens = 6;
        ep.heatmaps = 0;
        ep.shared_context = prompt;
        terse_report *rep = NULL;
        CHECK(terse_evaluate(c, c, ds, &ep, &rep) == TERSE_ERR_INVALID, "soft without params.soft");
        ep.soft = s;
        CHECK_OK(terse_evaluate(c, c, ds, &ep, &rep));
        char *js = NULL;
        if (rep) CHECK_OK(terse_report_json(rep, &js));
        const char *at = js ? strstr(js, "\"method\": \"soft\"") : NULL;
        const char *kl = at ? strstr(at, "\"kl\": ") : NULL;
        CHECK(kl && fabs(atof(kl + 6)) < 1e-4, "soft row KL: %.40s", kl ? kl : "(none)");
        free(js);
        terse_report_free(rep);
        terse_dataset_free(ds);
    }

    /* 4. bad distill input: nothing learned, clear errors */
    terse_distill_params dp = terse_distill_default_params();
    terse_soft *d = NULL;
    dp.n_tokens = 0;
    CHECK(terse_distill(m, prompt, strlen(prompt), &dp, &d) == TERSE_ERR_INVALID && !d, "N = 0");
    dp.n_tokens = 200;
    CHECK(terse_distill(m, prompt, strlen(prompt), &dp, &d) == TERSE_ERR_RANGE && !d, "N > context");
    dp.n_tokens = 4;
    CHECK(terse_distill(m, "", 0, &dp, &d) == TERSE_ERR_INVALID && !d, "empty prompt");
    CHECK(strstr(terse_last_error(), "empty prompt") != NULL, "message: %s", terse_last_error());
    dp.data = "short\n";
    dp.data_len = 6;
    CHECK(terse_distill(m, prompt, strlen(prompt), &dp, &d) == TERSE_ERR_INVALID && !d, "data too short");
    float bad = NAN;
    CHECK(terse_soft_from_vectors(m, &bad, 1, NULL, 0, &d) == TERSE_ERR_INVALID, "NaN vector");

    /* the packed student (3 sequences in one masked forward) sees exactly what the teacher
     * sees when the soft prompt is the prompt's own embeddings: loss 0 */
    dp = terse_distill_default_params();
    dp.n_tokens = np;
    dp.steps = 1;
    dp.batch = 3;
    dp.n_samples = 3;
    dp.cont_len = 6;
    dp.lr = 1e-6f;
    dp.n_threads = 1;
    CHECK_OK(terse_distill(m, prompt, strlen(prompt), &dp, &d));
    if (d) {
        terse_soft_info in;
        terse_soft_get_info(d, &in);
        CHECK(fabs(in.kl_initial) < 1e-5, "exact soft prompt, packed student: KL %g", in.kl_initial);
        terse_soft_free(d);
        d = NULL;
    }

    /* 5. a short distillation lowers the KL (random init, so there is something to learn) */
    dp = terse_distill_default_params();
    dp.n_tokens = 4;
    dp.steps = 30;
    dp.batch = 2;
    dp.n_samples = 4;
    dp.cont_len = 8;
    dp.lr = 0.05f;
    dp.init = TERSE_SOFT_INIT_RANDOM;
    dp.n_threads = 1;
    int rc = terse_distill(m, prompt, strlen(prompt), &dp, &d);
    CHECK_OK(rc);
    if (!rc && d) {
        terse_soft_info in;
        terse_soft_get_info(d, &in);
        CHECK(in.kl_final < 0.8 * in.kl_initial, "KL %g -> %g", in.kl_initial, in.kl_final);
        CHECK(in.steps == 30 && in.n_tokens == 4, "info");
        /* same seed, same vectors */
        terse_soft *d2 = NULL;
        CHECK_OK(terse_distill(m, prompt, strlen(prompt), &dp, &d2));
        CHECK(d2 && !memcmp(terse_soft_vectors(d), terse_soft_vectors(d2), 4 * 32 * sizeof(float)),
              "deterministic");
        terse_soft_free(d2);
        terse_soft_free(d);
    }

    terse_soft_free(s);
    free(pv);
    terse_ctx_free(c);
    terse_model_free(m);
    terse_model_free(m2);
    remove(mpath);
    remove(mpath2);
    remove(spath);
    return test_summary("test_soft");
}
