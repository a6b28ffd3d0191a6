/* cmd_eval.c - `terse eval`: compress every item of a JSONL dataset with each method at each
 * rate, let a target model write after the original and after each compressed prompt with the
 * same decoding settings, and score (a thin layer over terse_evaluate and terse_report_*).
 * Prints the Markdown table on stdout; --out DIR also writes report.json, report.md, one SVG
 * plot per metric and HTML token heatmaps of the first item.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char eval_usage[] =
    "usage: terse eval --data FILE.jsonl [options]\n"
    "  Items: {\"prompt\": ...} or {\"instruction\", \"contexts\": [...], \"question\"}, optional\n"
    "  \"reference\" / \"answer\": scored by exact match, which compares numbers: the final\n"
    "  number of the output with that of the reference (after GSM8K's \"####\" when there is\n"
    "  one, else the last number; commas and a trailing .0 ignored), and by ROUGE-L.\n"
    "  -m, --model M          target model (default: the default model)\n"
    "  --compressor M         model that scores for the compressors (default: the target)\n"
    "  --methods A,B,...      selective-token, selective-phrase, selective-sentence, llmlingua,\n"
    "                         longllmlingua, random-token, random-phrase, random-sentence, tfidf,\n"
    "                         none (no context); the full prompt always runs;\n"
    "                         gist, gist-full: a gist model as the target (terse finetune\n"
    "                         --gist K): the item's instruction as K cached gist tokens, or\n"
    "                         in full, in the gist template; an item's \"input\" is its\n"
    "                         context and \"output\" its reference (Alpaca-style JSONL)\n"
    "                         (default selective-phrase,random-phrase)\n"
    "  --rates R1,R2,...      fractions of tokens kept (default 0.5)\n"
    "  --max-new N            tokens the target writes (default 64)\n"
    "  --stop STR             cut outputs at STR (\\n, \\r, \\t are escapes)\n"
    "  --temperature T --top-p P --sample-seed S   decoding (default greedy)\n"
    "  --seed S               random baselines' seed (default 1)\n"
    "  --limit N --offset K   items K .. K+N-1\n"
    "  --context-file F       a context put before every item's (few-shot demonstrations)\n"
    "  --context-split S      split that context into several at each S (e.g. \\n\\n)\n"
    "  --question-prefix S --question-suffix S   wrap each question (\\n is a newline)\n"
    "  --count-vocab V        also count tokens with V (a .tiktoken file, GGUF, or cl100k)\n"
    "  --compat               reference behaviour of the compressors\n"
    "  --wordnet DIR          WordNet database (default /usr/share/wordnet)\n"
    "  --no-texts             leave prompts and outputs out of report.json\n"
    "  --out DIR              write the report files into DIR (checked before the run)\n"
    "  --gist-k K             gist tokens for methods gist, gist-full (default: the K the\n"
    "                         model was trained with, terse.gist.k; 1 if it has none)\n"
    "  --soft F.gguf          add method \"soft\": this soft prompt (terse distill) in place of\n"
    "                         the --context-file text\n"
    "  -t, --threads N        threads, OpenBLAS's included (default all cores)\n"
    "  --progress/--no-progress   progress bar on stderr (default: when a terminal)\n";

#define MAX_LIST 32

/* split s at commas into out (pointers into s, which is modified) */
static int split_list(char *s, const char **out, int cap) {
    int n = 0;
    for (char *t = strtok(s, ","); t && n < cap; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

/* "\n", "\r" and "\t" written as two characters become the characters */
static char *unescape(const char *s) {
    char *o = malloc(strlen(s) + 1), *p = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == 'n') *p++ = '\n', s++;
        else if (s[0] == '\\' && s[1] == 't') *p++ = '\t', s++;
        else if (s[0] == '\\' && s[1] == 'r') *p++ = '\r', s++;
        else *p++ = *s;
    }
    *p = 0;
    return o;
}

/* --out DIR must be writable before hours of work: create it (and its parents) if missing,
 * then write and remove a probe file. Returns 0, or 1 with the message printed. */
static int check_out_dir(const char *dir) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n + 32 > sizeof path) {
        fprintf(stderr, "terse eval: --out '%s': bad folder name\n", dir);
        return 1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) { /* mkdir -p */
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "terse eval: --out '%s': '%s' is not a folder\n", dir, path);
                return 1;
            }
        } else if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "terse eval: --out '%s': cannot make the folder '%s': %s\n", dir,
                    path, strerror(errno));
            return 1;
        }
        *p = c;
        if (!c) break;
    }
    snprintf(path, sizeof path, "%s/.terse-write-test-%d", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "terse eval: --out '%s' is not writable: %s\n", dir, strerror(errno));
        return 1;
    }
    unlink(path);
    return 0;
}

static void progress_bar(void *user, int64_t done, int64_t total) {
    double t0 = *(double *)user;
    const int W = 30;
    int fill = total > 0 ? (int)(W * done / total) : 0;
    char bar[64];
    for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
    bar[W] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double el = (double)ts.tv_sec + ts.tv_nsec * 1e-9 - t0;
    double eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\rterse eval [%s] %lld/%lld runs, %.0f s, ~%.0f s left ", bar,
            (long long)done, (long long)total, el, eta);
    if (done == total) fputc('\n', stderr);
}

int cmd_eval(int argc, char **argv) {
    const char *data = NULL, *model_path = NULL, *comp_path = NULL, *out_dir = NULL;
    const char *ctx_file = NULL, *count_vocab = NULL, *wordnet = NULL, *soft_path = NULL;
    terse_soft *soft = NULL;
    const char *methods_arg = NULL, *rates_arg = NULL, *stop = NULL, *qpre = NULL, *qsuf = NULL;
    const char *csplit = NULL;
    const char *methods[MAX_LIST];
    double rates[MAX_LIST];
    int n_methods = 0, n_rates = 0, progress = isatty(2), rc = 1;
    cli_opts o = cli_opts_default();
    terse_evaluate_params p = terse_evaluate_default_params();
    const cli_opt opts[] = {
        CLI_OPT_STR("--data", &data),
        CLI_OPT_STR("--compressor", &comp_path),
        CLI_OPT_STR("--methods", &methods_arg),
        CLI_OPT_STR("--rates", &rates_arg),
        CLI_OPT_STR("--out", &out_dir),
        CLI_OPT_STR("--context-file", &ctx_file),
        CLI_OPT_STR("--count-vocab", &count_vocab),
        CLI_OPT_STR("--wordnet", &wordnet),
        CLI_OPT_STR("--soft", &soft_path),
        CLI_OPT_STR("--stop", &stop),
        CLI_OPT_STR("--context-split", &csplit),
        CLI_OPT_STR("--question-prefix", &qpre),
        CLI_OPT_STR("--question-suffix", &qsuf),
        CLI_OPT_SET("--compat", &p.compat, 1),
        CLI_OPT_SET("--no-texts", &p.keep_texts, 0),
        CLI_OPT_SET("--progress", &progress, 1),
        CLI_OPT_SET("--no-progress", &progress, 0),
        CLI_OPT_NUM("--max-new", &p.max_new_tokens, 1, 4096),
        CLI_OPT_NUM("--limit", &p.limit, 0, 1 << 30),
        CLI_OPT_NUM("--offset", &p.offset, 0, 1 << 30),
        CLI_OPT_NUM("--gist-k", &p.gist_k, 1, 64),
        CLI_OPT_NUM("--seed", &p.seed, 0, 0x7fffffff),
        CLI_OPT_NUM("--sample-seed", &p.sample.seed, 0, 0x7fffffff),
        CLI_OPT_NUM("--temperature", &p.sample.temperature, 0, 100),
        CLI_OPT_NUM("--top-p", &p.sample.top_p, 0, 1),
        CLI_OPT_END};
    const cli_cmd cmd = {"eval", eval_usage, opts, 0};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    if (!(p.sample.top_p > 0)) {
        fprintf(stderr, "terse eval: --top-p wants a number in (0, 1], got '%g'\n", (double)p.sample.top_p);
        return 2;
    }
    if (!data) { fputs(eval_usage, stderr); return 2; }
    if (out_dir && check_out_dir(out_dir)) return 1;
    char *methods_copy = NULL; /* methods[] points into it until the end */
    if (methods_arg) {
        if (!(methods_copy = strdup(methods_arg))) return 1;
        n_methods = split_list(methods_copy, methods, MAX_LIST);
        p.methods = methods;
        p.n_methods = n_methods;
    }
    if (rates_arg) {
        char *copy = strdup(rates_arg), *t;
        if (!copy) return 1;
        for (t = strtok(copy, ","); t && n_rates < MAX_LIST; t = strtok(NULL, ","))
            if (cli_parse_float("--rates", t, 1e-6, 1, &rates[n_rates++])) {
                free(copy);
                free(methods_copy);
                return 2;
            }
        free(copy);
        p.rates = rates;
        p.n_rates = n_rates;
    }

    terse_model *m = NULL, *cm = NULL;
    terse_ctx *c = NULL, *cc = NULL;
    terse_dataset *d = NULL;
    terse_vocab *cv = NULL;
    terse_report *r = NULL;
    char *ctx_text = NULL, *s = NULL;
    size_t ctx_len;
    char *stop_u = stop ? unescape(stop) : NULL, *qpre_u = qpre ? unescape(qpre) : NULL;
    char *qsuf_u = qsuf ? unescape(qsuf) : NULL, *csplit_u = csplit ? unescape(csplit) : NULL;
    p.shared_context_split = csplit_u;
    p.stop = stop_u;
    p.question_prefix = qpre_u;
    p.question_suffix = qsuf_u;
    p.wordnet_dir = wordnet;
    if (!(model_path = cli_model_path(&o))) goto done;
    if (terse_dataset_load(data, &d) != TERSE_OK) { cli_fail("loading the dataset"); goto done; }
    if (ctx_file) {
        if (cli_read_input(ctx_file, &ctx_text, &ctx_len)) goto done;
        p.shared_context = ctx_text;
    }
    if (count_vocab) {
        if (cli_load_vocab(count_vocab, &cv)) goto done;
        p.count_vocab = cv;
    }
    if (terse_model_load(model_path, cli_model_params(o.threads), &m) != TERSE_OK) {
        cli_fail("loading the target model");
        goto done;
    }
    terse_ctx_params cp = cli_ctx_params(&o);
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) { cli_fail("creating a context"); goto done; }
    if (soft_path) { /* method "soft", added to the list when not named */
        if (terse_soft_load(soft_path, m, &soft) != TERSE_OK) { cli_fail("loading the soft prompt"); goto done; }
        p.soft = soft;
        int named = 0;
        for (int k = 0; k < n_methods; k++) named |= !strcmp(methods[k], "soft");
        if (!named) {
            if (!n_methods) methods[n_methods++] = "selective-phrase", methods[n_methods++] = "random-phrase";
            if (n_methods < MAX_LIST) methods[n_methods++] = "soft";
            p.methods = methods;
            p.n_methods = n_methods;
        }
    }
    if (comp_path && strcmp(comp_path, model_path)) {
        if (terse_model_load(comp_path, cli_model_params(o.threads), &cm) != TERSE_OK) {
            cli_fail("loading the compressor model");
            goto done;
        }
        if (terse_ctx_new(cm, cp, &cc) != TERSE_OK) { cli_fail("creating a context"); goto done; }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t0 = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    if (progress) {
        p.progress = progress_bar;
        p.progress_user = &t0;
    }
    if (terse_evaluate(cc ? cc : c, c, d, &p, &r) != TERSE_OK) {
        if (progress) fputc('\n', stderr);
        cli_fail("evaluating");
        goto done;
    }
    if (terse_report_markdown(r, &s) != TERSE_OK) { cli_fail("writing the table"); goto done; }
    fputs(s, stdout);
    if (out_dir && terse_report_write(r, out_dir) != TERSE_OK) { cli_fail("writing the report"); goto done; }
    rc = 0;
done:
    free(s);
    terse_report_free(r);
    terse_ctx_free(c);
    terse_ctx_free(cc);
    terse_model_free(m);
    terse_model_free(cm);
    terse_vocab_free(cv);
    terse_soft_free(soft);
    terse_dataset_free(d);
    free(ctx_text);
    free(stop_u);
    free(qpre_u);
    free(qsuf_u);
    free(csplit_u);
    free(methods_copy);
    return rc;
}
