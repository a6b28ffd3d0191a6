/* cmd_compress.c - `terse compress`: read a prompt (plain text, or a JSON object with
 * instruction / contexts / question), compress it with terse_compress, write the text or a
 * JSON result (LLMLingua's field names), and optionally an HTML heatmap of the tokens.
 * Not here: any compression logic (src/compress), JSON of the result (terse_result_json). */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char compress_usage[] =
    "usage: terse compress [options] < prompt\n"
    "  -m, --model MODEL     scoring model (default: the default model)\n"
    "  -f FILE               read the prompt from FILE instead of stdin\n"
    "  --method M            selective (default) | llmlingua | longllmlingua | llmlingua2\n"
    "  --unit U              selective's units: token | phrase (default) | sentence\n"
    "                        (an error with the other methods)\n"
    "  --rate R              keep this fraction of the tokens, in (0, 1] (default 0.5)\n"
    "  --target N            keep at most N tokens (whole output)\n"
    "  --count-vocab V       count the budget in V: a .tiktoken/.gguf file, or cl100k\n"
    "  --instruction TEXT    instruction (kept whole)\n"
    "  --question TEXT       question (kept whole; used by longllmlingua)\n"
    "  --compat              reproduce the reference implementation, quirks included\n"
    "  --force STR           never drop STR where it occurs (repeatable)\n"
    "  --protect REGEX       never drop what REGEX (PCRE2) matches (repeatable)\n"
    "  --keep-digits         never drop tokens with digits\n"
    "  --no-tags             treat <llmlingua ...> tags as plain text\n"
    "  --no-layout           line ends are plain whitespace (default: the line ends between\n"
    "                        kept text are kept, paragraph breaks too unless the budget is tight)\n"
    "  --json                write a JSON result (compressed_prompt, origin_tokens, ...)\n"
    "  --tokens              with --json: add per-token scores and keep flags\n"
    "  --html FILE           write a token heatmap (surprisal colours, dropped struck through)\n"
    "  --progress            show progress on stderr (default: when stderr is a terminal)\n"
    "  -t, --threads N       threads, OpenBLAS's included (default: all cores)\n"
    "  llmlingua2 (-m: a converted BERT / XLM-R token classifier): --force defaults to \\n and ?;\n"
    "  --no-force, --drop-consecutive, --token-to-word first|mean, --no-context-filter\n"
    "LLMLingua / LongLLMLingua (defaults: LongLLMLingua's recommended settings for\n"
    "longllmlingua, upstream's compress_prompt defaults for llmlingua and with --compat):\n"
    "  --condition C         rank contexts by the question: none | before | after\n"
    "  --contrastive         contrastive token scores (surprisal without - with the question)\n"
    "  --no-contrastive      plain token surprisal (longllmlingua default: contrastive)\n"
    "  --reorder O           kept contexts: original | sort | two_stage (longllmlingua: sort)\n"
    "  --dynamic-ratio D     per-context rate spread by rank, in [0, 1] (longllmlingua: 0.3)\n"
    "  --context-budget E    coarse budget: +N (target + N, default +100) or *K (target x K)\n"
    "  --iterative-size N    token-level window (default 200)\n"
    "  --force-context I     always keep context I (0-based; repeatable)\n"
    "  --sentence-filter     drop whole sentences before the token level\n"
    "  --no-context-filter   keep every context (no coarse filter)\n"
    "Default mode never splits a character, a line end or a number (\"1000/5 = 200\"), keeps\n"
    "one separator between kept words, outputs valid UTF-8, and keeps at least one unit\n"
    "(with a warning when that exceeds the target); --compat reproduces the references.\n"
    "Input: plain text is one context. A JSON object {\"instruction\": ..., \"contexts\": [...],\n"
    "\"question\": ...} (or \"context\"/\"prompt\": a string or a list) gives the prompt's parts.\n";

/* ---------------------------------------------------------------------------------------- */
/* Input                                                                                     */

typedef struct {
    terse_request *req;       /* owns the strings of prompt when the input was JSON */
    terse_prompt prompt;
    const char *text[1];      /* plain text: the one context */
} prompt_in;

/* A JSON request (terse_request_parse, src/compress/request.c, which names a mistyped field)
 * if text is a JSON object with "contexts", "context" or "prompt"; else plain text, with a
 * warning when it starts with '{'. Only the request's prompt is used: the options come from
 * the command line. */
static int parse_prompt(const char *text, size_t len, prompt_in *in) {
    memset(in, 0, sizeof *in);
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) i++;
    if (i < len && text[i] == '{') {
        json_error_t err;
        json_t *root = json_loadb(text, len, 0, &err);
        int is_json = root != NULL, has = root && json_is_object(root) &&
                  (json_object_get(root, "contexts") || json_object_get(root, "context") ||
                   json_object_get(root, "prompt"));
        json_decref(root);
        if (has) {
            if (terse_request_parse(text, len, 0, &in->req) != TERSE_OK)
                return cli_fail("compress: the JSON prompt");
            in->prompt = *terse_request_prompt(in->req);
            return 0;
        }
        if (!is_json)
            fprintf(stderr, "terse compress: warning: the input starts with '{' but is not JSON "
                    "(line %d, column %d: %s); compressing it as plain text\n", err.line,
                    err.column, err.text);
        else
            fprintf(stderr, "terse compress: warning: the input is JSON without \"contexts\", "
                    "\"context\" or \"prompt\"; compressing it as plain text\n");
    }
    const char *nul = memchr(text, 0, len);
    if (nul) {
        fprintf(stderr, "terse compress: the input has a NUL byte at offset %td; a prompt is "
                "text without NUL bytes\n", nul - text);
        return 1;
    }
    in->text[0] = text;
    in->prompt.contexts = in->text;
    in->prompt.n_contexts = 1;
    return 0;
}

/* --count-vocab: a file, or cl100k wherever it is (cli_load_vocab, opts.c). */
int load_count_vocab(const char *arg, terse_vocab **out) { return cli_load_vocab(arg, out); }

/* ---------------------------------------------------------------------------------------- */
/* HTML heatmap                                                                              */

static int write_html(const char *path, const terse_result *r) {
    char *html;
    if (terse_result_html(r, "terse compress", &html) != TERSE_OK) return cli_fail("heatmap");
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "terse compress: cannot write %s\n", path); free(html); return 1; }
    int bad = fputs(html, f) < 0;
    free(html);
    if (fclose(f) || bad) { fprintf(stderr, "terse compress: error writing %s\n", path); return 1; }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The command                                                                               */

static void show_progress(void *user, int64_t done, int64_t total) {
    (void)user;
    fprintf(stderr, "\rterse compress: scored %lld / %lld tokens", (long long)done, (long long)total);
}

#define MAX_LIST 64

int cmd_compress(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *count_vocab = NULL, *html = NULL;
    const char *question = NULL, *instruction = NULL;
    const char *force[MAX_LIST], *protect[MAX_LIST];
    int n_force = 0, n_protect = 0, json = 0, tokens = 0, progress = isatty(2), unit_given = 0;
    int no_force = 0;
    int32_t force_ctx[MAX_LIST];
    int n_force_ctx = 0, lingua_flag = 0;
    long threads = 0;
    double rate = -1;
    long target = 0;
    terse_compress_params p = terse_compress_default_params();
    cli_opts co = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &file),
        CLI_OPT_NUM("--rate", &rate, 0, 1),
        CLI_OPT_NUM("--target", &target, 1, INT32_MAX),
        CLI_OPT_STR("--count-vocab", &count_vocab),
        CLI_OPT_STR("--question", &question),
        CLI_OPT_STR("--instruction", &instruction),
        CLI_OPT_SET("--compat", &p.compat, 1),
        CLI_OPT_SET("--keep-digits", &p.keep_digits, 1),
        CLI_OPT_SET("--no-force", &no_force, 1),
        CLI_OPT_SET("--drop-consecutive", &p.drop_consecutive, 1),
        CLI_OPT_SET("--no-context-filter", &p.use_context_filter, 0),
        CLI_OPT_SET("--no-tags", &p.structured, 0),
        CLI_OPT_SET("--no-layout", &p.keep_layout, 0),
        CLI_OPT_SET_SEEN("--contrastive", &p.condition_compare, 1, &lingua_flag),
        CLI_OPT_SET_SEEN("--no-contrastive", &p.condition_compare, 0, &lingua_flag),
        CLI_OPT_SEEN("--dynamic-ratio", &p.dynamic_ratio, 0, 1, &lingua_flag),
        CLI_OPT_SEEN("--iterative-size", &p.iterative_size, 1, 1 << 20, &lingua_flag),
        CLI_OPT_SET_SEEN("--sentence-filter", &p.use_sentence_filter, 1, &lingua_flag),
        CLI_OPT_SET("--json", &json, 1),
        CLI_OPT_SET("--tokens", &tokens, 1),
        CLI_OPT_STR("--html", &html),
        CLI_OPT_SET("--progress", &progress, 1),
        CLI_OPT_SET("--no-progress", &progress, 0),
        CLI_OPT_END};
    const cli_cmd cmd = {"compress", compress_usage, opts, CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &co);   /* -m, -t, the table (opts.c) */
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) return k;
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--method") && more) {
            const char *m = argv[++i];
            if (!strcmp(m, "selective")) p.method = TERSE_METHOD_SELECTIVE;
            else if (!strcmp(m, "llmlingua")) p.method = TERSE_METHOD_LLMLINGUA;
            else if (!strcmp(m, "longllmlingua")) p.method = TERSE_METHOD_LONGLLMLINGUA;
            else if (!strcmp(m, "llmlingua2")) p.method = TERSE_METHOD_LLMLINGUA2;
            else { fprintf(stderr, "terse compress: --method '%s': selective, llmlingua, longllmlingua or llmlingua2\n", m); return 2; }
        } else if (!strcmp(a, "--unit") && more) {
            const char *u = argv[++i];
            unit_given = 1;
            if (!strcmp(u, "token")) p.unit = TERSE_UNIT_TOKEN;
            else if (!strcmp(u, "phrase")) p.unit = TERSE_UNIT_PHRASE;
            else if (!strcmp(u, "sentence") || !strcmp(u, "sent")) p.unit = TERSE_UNIT_SENTENCE;
            else { fprintf(stderr, "terse compress: --unit '%s': token, phrase or sentence\n", u); return 2; }
        } else if (!strcmp(a, "--force") && more) {
            if (n_force == MAX_LIST) { fprintf(stderr, "terse compress: at most %d --force\n", MAX_LIST); return 2; }
            force[n_force++] = argv[++i];
        } else if (!strcmp(a, "--protect") && more) {
            if (n_protect == MAX_LIST) { fprintf(stderr, "terse compress: at most %d --protect\n", MAX_LIST); return 2; }
            protect[n_protect++] = argv[++i];
        } else if (!strcmp(a, "--token-to-word") && more) {
            const char *t = argv[++i];
            if (!strcmp(t, "first")) p.token_to_word_first = 1;
            else if (!strcmp(t, "mean")) p.token_to_word_first = 0;
            else { fprintf(stderr, "terse compress: --token-to-word '%s': first or mean\n", t); return 2; }
        } else if (!strcmp(a, "--condition") && more) {
            const char *c = argv[++i];
            lingua_flag = 1;
            if (!strcmp(c, "none")) p.condition_in_question = TERSE_CONDITION_NONE;
            else if (!strcmp(c, "before")) p.condition_in_question = TERSE_CONDITION_BEFORE;
            else if (!strcmp(c, "after")) p.condition_in_question = TERSE_CONDITION_AFTER;
            else { fprintf(stderr, "terse compress: --condition '%s': none, before or after\n", c); return 2; }
        } else if (!strcmp(a, "--reorder") && more) {
            const char *o = argv[++i];
            lingua_flag = 1;
            if (!strcmp(o, "original")) p.reorder = TERSE_REORDER_ORIGINAL;
            else if (!strcmp(o, "sort")) p.reorder = TERSE_REORDER_SORT;
            else if (!strcmp(o, "two_stage") || !strcmp(o, "two-stage")) p.reorder = TERSE_REORDER_TWO_STAGE;
            else { fprintf(stderr, "terse compress: --reorder '%s': original, sort or two_stage\n", o); return 2; }
        } else if (!strcmp(a, "--context-budget") && more) {
            const char *e = argv[++i];
            double v;
            lingua_flag = 1;
            if ((e[0] != '+' && e[0] != '*') || cli_parse_float("--context-budget", e + 1, 0, 1e9, &v)) {
                fprintf(stderr, "terse compress: --context-budget '%s': +N or *K (N, K >= 0)\n", e);
                return 2;
            }
            if (e[0] == '+') p.context_budget_mul = 1.0, p.context_budget_add = v;
            else p.context_budget_mul = v, p.context_budget_add = 0.0;
        } else if (!strcmp(a, "--force-context") && more) {
            long v;
            if (cli_parse_int("--force-context", argv[++i], 0, INT32_MAX, &v)) return 2;
            if (n_force_ctx == MAX_LIST) { fprintf(stderr, "terse compress: at most %d --force-context\n", MAX_LIST); return 2; }
            force_ctx[n_force_ctx++] = (int32_t)v;
            lingua_flag = 1;
        } else return cli_bad_option(cmd.name, a, !more, "--method --unit --force --protect "
                                    "--token-to-word --condition --reorder --context-budget "
                                    "--force-context", cmd.usage);
    }
    model_path = co.model;
    threads = co.threads;
    if (rate == 0) { fprintf(stderr, "terse compress: --rate %g outside (0, 1]\n", rate); return 2; }
    if (rate > 0 && target > 0) { fprintf(stderr, "terse compress: give --rate or --target, not both\n"); return 2; }
    if (unit_given && p.method != TERSE_METHOD_SELECTIVE) {
        fprintf(stderr, "terse compress: --unit is selective's option; llmlingua, longllmlingua and "
                "llmlingua2 drop tokens\n");
        return 2;
    }
    if (lingua_flag && p.method == TERSE_METHOD_SELECTIVE) {
        fprintf(stderr, "terse compress: --condition, --contrastive, --reorder, --dynamic-ratio, "
                "--context-budget, --iterative-size, --force-context, --sentence-filter and "
                "--no-context-filter apply to --method llmlingua or longllmlingua\n");
        return 2;
    }
    p.force_context_ids = force_ctx;
    p.n_force_context_ids = n_force_ctx;
    if (rate > 0) p.rate = rate;
    p.target = target;
    if (p.method == TERSE_METHOD_LLMLINGUA2 && n_force == 0 && !no_force) { /* LLMLingua-2's usual */
        force[n_force++] = "\n";
        force[n_force++] = "?";
    }
    p.force_tokens = force;
    p.n_force_tokens = n_force;
    p.protect_patterns = protect;
    p.n_protect_patterns = n_protect;
    p.return_tokens = tokens || html != NULL;
    if (progress) p.progress = show_progress;

    char *text = NULL;
    size_t len = 0;
    if (cli_read_input(file, &text, &len)) return 1;
    int rc = 1;
    prompt_in in;
    terse_model *m = NULL;
    terse_ctx *c = NULL;
    terse_vocab *cv = NULL;
    terse_result *r = NULL;
    if (parse_prompt(text, len, &in)) goto done;
    if (question) in.prompt.question = question;
    if (instruction) in.prompt.instruction = instruction;
    if (!count_vocab && p.method == TERSE_METHOD_LLMLINGUA2 && p.compat) count_vocab = "cl100k";
    if (count_vocab && load_count_vocab(count_vocab, &cv)) goto done;
    p.count_vocab = cv;
    char def[4096];
    if (!model_path) {
        if (terse_default_model_path(def, sizeof def) < 0) { cli_fail("finding the model"); goto done; }
        model_path = def;
    }
    if (terse_model_load(model_path, cli_model_params(threads), &m) != TERSE_OK) { cli_fail("loading model"); goto done; }
    terse_ctx_params cp = terse_ctx_default_params();
    cp.n_threads = (int32_t)threads;
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) { cli_fail("creating context"); goto done; }
    int st = terse_compress(c, &in.prompt, p, &r);
    if (progress && p.progress) fputc('\n', stderr);
    if (st != TERSE_OK) { cli_fail("compressing"); goto done; }
    const char *w = terse_result_warning(r);
    if (*w) fprintf(stderr, "terse compress: warning: %s\n", w);
    if (json) {
        char *js;
        if (terse_result_json(r, tokens, &js) != TERSE_OK) { cli_fail("writing JSON"); goto done; }
        fputs(js, stdout);
        fputc('\n', stdout);
        free(js);
    } else {
        size_t olen;
        const char *o = terse_result_text(r, &olen);
        fwrite(o, 1, olen, stdout);
        if (isatty(1) && (olen == 0 || o[olen - 1] != '\n')) fputc('\n', stdout);
    }
    if (html && write_html(html, r)) goto done;
    if (progress) {
        terse_compress_stats s;
        terse_result_get_stats(r, &s);
        fprintf(stderr, "terse compress: %lld -> %lld tokens (%.1f%%), %.2f s (%.0f%% in the model)\n",
                (long long)s.origin_tokens, (long long)s.compressed_tokens, s.rate * 100.0, s.seconds,
                s.seconds > 0 ? 100.0 * s.seconds_model / s.seconds : 0.0);
    }
    rc = fflush(stdout) ? 1 : 0;
done:
    terse_result_free(r);
    terse_ctx_free(c);
    terse_model_free(m);
    terse_vocab_free(cv);
    terse_request_free(in.req);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* recover: map a response written under a compressed prompt back to the original's words    */

static const char recover_usage[] =
    "usage: terse recover [-m MODEL] -o ORIGINAL_FILE -c COMPRESSED_FILE [-f RESPONSE] < response\n"
    "  LongLLMLingua's recover(): words of the response copied from the compressed prompt are\n"
    "  replaced by the original text they came from (matched token by token in the model's\n"
    "  vocabulary); everything else is copied. Prints the recovered response.\n"
    CLI_OPTS_USAGE;

int cmd_recover(int argc, char **argv) {
    const char *model_path = NULL, *orig_path = NULL, *comp_path = NULL, *resp_path = NULL;
    cli_opts co = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("-o", &orig_path),
        CLI_OPT_STR("-c", &comp_path),
        CLI_OPT_STR("-f", &resp_path),
        CLI_OPT_END};
    const cli_cmd cmd = {"recover", recover_usage, opts, 0};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &co)) != CLI_NEXT) return k;
    if (!orig_path || !comp_path) { fputs(recover_usage, stderr); return 2; }
    if (!(model_path = cli_model_path(&co))) return 1;
    char *orig = NULL, *comp = NULL, *resp = NULL, *out = NULL;
    size_t ol, cl, rl, outl;
    int rc = 1;
    terse_vocab *v = NULL;
    if (cli_read_input(orig_path, &orig, &ol) || cli_read_input(comp_path, &comp, &cl) ||
        cli_read_input(resp_path, &resp, &rl))
        goto done;
    if (terse_vocab_load(model_path, &v) != TERSE_OK) { cli_fail("loading vocabulary"); goto done; }
    if (terse_compress_recover(v, orig, ol, comp, cl, resp, rl, &out, &outl) != TERSE_OK) {
        cli_fail("recovering");
        goto done;
    }
    fwrite(out, 1, outl, stdout);
    rc = 0;
done:
    free(orig);
    free(comp);
    free(resp);
    free(out);
    terse_vocab_free(v);
    return rc;
}
