/* cmd_distill.c - the soft-prompt commands of the CLI: distill (learn a soft prompt from a
 * prompt) and probe (the reconstruction probe of one or more soft prompts). */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load(cli_opts *o, terse_model **m) {
    *m = NULL;
    const char *path = cli_model_path(o);
    if (!path) return 1;
    if (terse_model_load(path, cli_model_params(o->threads), m) != TERSE_OK)
        return cli_fail("loading model");
    return 0;
}

static int write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    size_t n = strlen(s);
    int bad = fwrite(s, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) { fprintf(stderr, "terse: writing '%s' failed\n", path); remove(path); }
    return bad;
}

/* probe rows for the given soft prompts (and text prefixes) on text; HTML to html_path */
static int run_probe(terse_model *m, int32_t threads, const char *text, size_t len,
                     terse_soft *const *softs, const char *const *labels, int32_t n_soft,
                     const char *const *prefix_files, int32_t n_prefix, const char *html_path,
                     const char *html_log_path, int json) {
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = threads;
    terse_ctx *c;
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) return cli_fail("creating context");
    terse_probe *p = NULL;
    int rc = 1;
    if (terse_probe_new(c, text, len, &p) != TERSE_OK) { cli_fail("reconstruction"); goto done; }
    for (int32_t i = 0; i < n_soft; i++)
        if (terse_probe_add(p, c, labels[i], softs[i], NULL, 0) != TERSE_OK) { cli_fail(labels[i]); goto done; }
    for (int32_t i = 0; i < n_prefix; i++) {
        char *pt;
        size_t pl;
        if (cli_read_input(prefix_files[i], &pt, &pl)) goto done;
        int r = terse_probe_add(p, c, prefix_files[i], NULL, pt, pl);
        free(pt);
        if (r != TERSE_OK) { cli_fail(prefix_files[i]); goto done; }
    }
    if (json) printf("[");
    else printf("prefix\tmean_prob\tmean_log\n");
    for (int32_t r = 0; r < terse_probe_rows(p); r++) {
        const char *lb;
        double mp, ml;
        terse_probe_row(p, r, &lb, &mp, &ml, NULL, NULL);
        if (json) {
            printf("%s\n  {\"prefix\": \"", r ? "," : "");
            cli_json_escape(stdout, lb, strlen(lb));
            printf("\", \"mean_prob\": %.6f, \"mean_log\": %.6f}", isnan(mp) ? -1.0 : mp, isnan(ml) ? -1.0 : ml);
        } else {
            cli_tsv_escape(stdout, lb, strlen(lb));
            printf("\t%.4f\t%.4f\n", mp, ml);
        }
    }
    if (json) printf("\n]\n");
    for (int lg = 0; lg < 2; lg++) {
        const char *path = lg ? html_log_path : html_path;
        if (!path) continue;
        char *html;
        if (terse_probe_html(p, "reconstruction probe", lg, &html) != TERSE_OK) { cli_fail("probe page"); goto done; }
        int bad = write_file(path, html);
        free(html);
        if (bad) goto done;
    }
    rc = 0;
done:
    terse_probe_free(p);
    terse_ctx_free(c);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* distill                                                                                   */

static const char distill_usage[] =
    "usage: terse distill [MODEL] -f PROMPT --tokens N -o SOFT.gguf [options]\n"
    "  Learns N soft-prompt vectors that make the model behave as after the whole prompt\n"
    "  (conditioning contexts, Wingate et al. 2022): KL between the next-token distributions\n"
    "  after the prompt and after the soft prompt, over continuations of the prompt.\n"
    "  --steps S        optimiser steps (default 100)\n"
    "  --batch B        continuations per step (default 4)\n"
    "  --samples K      continuations sampled after the prompt (default 32)\n"
    "  --cont-len L     tokens per continuation (default 32)\n"
    "  --data FILE      continuations from FILE instead (lines of >= L tokens, cut to L)\n"
    "  --temp T         sampling temperature of the continuations (default 1)\n"
    "  --lr LR          peak learning rate, AdamW, warm-up + cosine (default 0.02)\n"
    "  --reverse        minimise KL(soft || prompt) instead of KL(prompt || soft)\n"
    "  --init prompt|random  start from the prompt's token embeddings (default) or random ones\n"
    "  --seed S         (default 1)\n"
    "  --no-text        store only a hash of the prompt in the file, not its text\n"
    "  --probe HTML     then run the reconstruction probe and write its heatmap\n"
    CLI_OPTS_USAGE;

static void progress(void *user, int32_t step, int32_t steps, double loss, double eta) {
    int tty = *(int *)user;
    if (tty) {
        fprintf(stderr, "\rstep %d/%d  loss %.4f  eta %.0fs   ", step, steps, loss, eta);
        if (step == steps) fputc('\n', stderr);
    } else if (step == 1 || step == steps || step % (steps / 10 > 0 ? steps / 10 : 1) == 0) {
        fprintf(stderr, "step %d/%d  loss %.4f  eta %.0fs\n", step, steps, loss, eta);
    }
}

int cmd_distill(int argc, char **argv) {
    const char *file = NULL, *out_path = NULL, *data_path = NULL, *probe_path = NULL;
    terse_distill_params p = terse_distill_default_params();
    cli_opts o = cli_opts_default();
    int have_n = 0;
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &file),
        CLI_OPT_STR("-o", &out_path),
        CLI_OPT_STR("--data", &data_path),
        CLI_OPT_STR("--probe", &probe_path),
        CLI_OPT_SEEN("--tokens", &p.n_tokens, 0, 1 << 20, &have_n),
        CLI_OPT_NUM("--steps", &p.steps, 1, 1 << 24),
        CLI_OPT_NUM("--batch", &p.batch, 1, 1 << 16),
        CLI_OPT_NUM("--samples", &p.n_samples, 1, 1 << 16),
        CLI_OPT_NUM("--cont-len", &p.cont_len, 2, 1 << 16),
        CLI_OPT_NUM("--seed", &p.seed, 0, 0x7fffffffL),
        CLI_OPT_NUM("--temp", &p.temperature, 0, 100),
        CLI_OPT_NUM("--lr", &p.lr, 1e-9, 99),
        CLI_OPT_SET("--reverse", &p.reverse, 1),
        CLI_OPT_SET("--no-text", &p.keep_text, 0),
        CLI_OPT_END};
    const cli_cmd cmd = {"distill", distill_usage, opts, CLI_MODEL_ARG | CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &o);
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) return k;
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--init") && next) {
            if (!strcmp(next, "prompt")) p.init = TERSE_SOFT_INIT_PROMPT;
            else if (!strcmp(next, "random")) p.init = TERSE_SOFT_INIT_RANDOM;
            else { fprintf(stderr, "terse distill: --init wants prompt or random, got '%s'\n", next); return 2; }
            i++;
        } else return cli_bad_option(cmd.name, a, !next, "--init", cmd.usage);
    }
    p.n_threads = (int32_t)o.threads;
    if (!file || !out_path || !have_n) {
        fprintf(stderr, "terse distill: -f PROMPT, --tokens N and -o OUT are required\n%s", distill_usage);
        return 2;
    }
    char *text = NULL, *data = NULL;
    size_t len = 0, data_len = 0;
    if (cli_read_input(file, &text, &len)) return 1;
    if (data_path && cli_read_input(data_path, &data, &data_len)) { free(text); return 1; }
    p.data = data;
    p.data_len = data_len;
    terse_model *m;
    if (load(&o, &m)) { free(text); free(data); return 1; }
    int tty = isatty(2), rc = 1;
    p.progress = progress;
    p.progress_user = &tty;
    terse_soft *s = NULL;
    if (terse_distill(m, text, len, &p, &s) != TERSE_OK) { cli_fail("distill"); goto done; }
    if (terse_soft_save(s, out_path) != TERSE_OK) { cli_fail("saving"); goto done; }
    terse_soft_info in;
    terse_soft_get_info(s, &in);
    printf("soft prompt\t%s\ntokens\t%d\nprompt_tokens\t%d\nkl_initial\t%.5f\nkl_final\t%.5f\n"
           "steps\t%d\nseconds\t%.1f\n", out_path, in.n_tokens, in.prompt_tokens, in.kl_initial,
           in.kl_final, in.steps, in.seconds);
    if (probe_path) {
        const char *label = out_path;
        if (run_probe(m, p.n_threads, text, len, &s, &label, 1, NULL, 0, probe_path, NULL, 0)) goto done;
    }
    rc = 0;
done:
    terse_soft_free(s);
    terse_model_free(m);
    free(text);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* probe                                                                                     */

static const char probe_usage[] =
    "usage: terse probe [MODEL] --soft SOFT.gguf [--soft ...] [--prefix FILE ...] [-f TEXT]\n"
    "                   [--html OUT.html] [--html-log OUT.html] [--json]\n"
    "  The reconstruction probe: each token of TEXT (default: the prompt stored in the first\n"
    "  soft prompt) scored after the prefix + \"Now repeat the text:\", normalised between\n"
    "  no prefix (0) and the text itself as prefix (1). Prints each prefix's mean normalised\n"
    "  score in probability and log space; --html writes the heatmap in probability space,\n"
    "  --html-log in log space.\n"
    "  --prefix FILE adds a text prefix (a hard compression) as a row.\n" CLI_OPTS_USAGE;

int cmd_probe(int argc, char **argv) {
    const char *file = NULL, *html = NULL, *html_log = NULL;
    cli_opts o = cli_opts_default();
    const char **soft_paths = calloc((size_t)argc, sizeof *soft_paths);
    const char **prefix = calloc((size_t)argc, sizeof *prefix);
    terse_soft **softs = calloc((size_t)argc, sizeof *softs);
    int32_t ns = 0, np = 0;
    int json = 0, rc = 2;
    terse_model *m = NULL;
    char *text = NULL;
    if (!soft_paths || !prefix || !softs) { fprintf(stderr, "terse: out of memory\n"); goto done; }
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &file),
        CLI_OPT_STR("--html", &html),
        CLI_OPT_STR("--html-log", &html_log),
        CLI_OPT_SET("--json", &json, 1),
        CLI_OPT_END};
    const cli_cmd cmd = {"probe", probe_usage, opts, CLI_MODEL_ARG | CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &o);
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) { rc = k; goto done; }
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--soft") && next) { soft_paths[ns++] = next; i++; }   /* repeatable */
        else if (!strcmp(a, "--prefix") && next) { prefix[np++] = next; i++; }
        else { rc = cli_bad_option(cmd.name, a, !next, "--soft --prefix", cmd.usage); goto done; }
    }
    if (ns + np == 0) { fprintf(stderr, "terse probe: give at least one --soft or --prefix\n%s", probe_usage); goto done; }
    rc = 1;
    if (load(&o, &m)) goto done;
    for (int32_t i = 0; i < ns; i++)
        if (terse_soft_load(soft_paths[i], m, &softs[i]) != TERSE_OK) { cli_fail("loading soft prompt"); goto done; }
    size_t len = 0;
    if (file) {
        if (cli_read_input(file, &text, &len)) goto done;
    } else {
        terse_soft_info in;
        terse_soft_get_info(ns ? softs[0] : NULL, &in);
        if (!in.prompt) {
            fprintf(stderr, "terse probe: %s; give the text with -f\n",
                    ns ? "the soft prompt does not store its prompt (--no-text)" : "no text");
            goto done;
        }
        if (!(text = malloc(in.prompt_len + 1))) goto done;
        memcpy(text, in.prompt, in.prompt_len + 1);
        len = in.prompt_len;
    }
    rc = run_probe(m, (int32_t)o.threads, text, len, softs, soft_paths, ns, prefix, np, html,
                   html_log, json);
done:
    for (int32_t i = 0; softs && i < ns; i++) terse_soft_free(softs[i]);
    free(softs);
    free(soft_paths);
    free(prefix);
    free(text);
    terse_model_free(m);
    return rc;
}
