/* cmd_model.c - the model commands of the CLI: info, score, generate. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *type_name(int t) {
    switch (t) {
    case TERSE_TYPE_F32: return "F32";
    case TERSE_TYPE_F16: return "F16";
    case TERSE_TYPE_BF16: return "BF16";
    case TERSE_TYPE_Q8_0: return "Q8_0";
    default: return "?";
    }
}

static const char *vocab_kind_name(terse_vocab_type t) {
    switch (t) {
    case TERSE_VOCAB_SPM: return "SentencePiece BPE";
    case TERSE_VOCAB_BPE: return "byte-level BPE";
    case TERSE_VOCAB_WPM: return "WordPiece";
    case TERSE_VOCAB_TIKTOKEN: return "tiktoken";
    case TERSE_VOCAB_UGM: return "Unigram";
    default: return "none";
    }
}

/* Load the model of o (-m, positional or the default); *path gets its path. */
static int load_model(cli_opts *o, const char **path, terse_model **m) {
    *m = NULL;
    if (!(*path = cli_model_path(o))) return 1;
    if (terse_model_load(*path, cli_model_params(o->threads), m) != TERSE_OK)
        return cli_fail("loading model");
    return 0;
}

static const char info_usage[] =
    "usage: terse info [MODEL] [-m MODEL]\n"
    "  Architecture, shape, size and vocabulary of a GGUF model (default: the default model).\n"
    CLI_OPTS_USAGE;

int cmd_info(int argc, char **argv) {
    cli_opts o = cli_opts_default();
    const cli_cmd cmd = {"info", info_usage, NULL, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    terse_model *m;
    const char *path;
    if (load_model(&o, &path, &m)) return 1;
    terse_model_info in;
    terse_model_get_info(m, &in);
    if (o.model) printf("file          %s\n", path);
    printf("name          %s\n", in.name);
    printf("architecture  %s\n", in.arch);
    printf("parameters    %lld (%.1f M)\n", (long long)in.n_params, (double)in.n_params / 1e6);
    printf("weights       %s, %.1f MiB\n", type_name(in.weight_type),
           (double)in.file_bytes / (1024.0 * 1024.0));
    printf("context       %d\n", in.n_ctx_train);
    printf("embedding     %d\n", in.n_embd);
    printf("layers        %d\n", in.n_layer);
    printf("heads         %d (kv %d)\n", in.n_head, in.n_head_kv);
    printf("feed-forward  %d\n", in.n_ff);
    printf("vocab         %d", in.n_vocab);
    const terse_vocab *v = terse_model_vocab(m);
    if (v)
        printf(" (%s tokenizer, %d tokens, bos %d, eos %d)\n", vocab_kind_name(terse_vocab_kind(v)),
               terse_vocab_size(v), terse_vocab_bos(v), terse_vocab_eos(v));
    else
        printf(" (no tokenizer in file)\n");
    terse_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* score                                                                                     */

static const char score_usage[] =
    "usage: terse score [MODEL] [-m MODEL] [--ids] [--json] [--no-bos] [-f FILE] [-t N] < text\n"
    "  Prints each token's surprisal -log p(token | everything before it) in nats.\n"
    "  --ids      input is token ids (whitespace/comma separated) instead of text\n"
    "  --json     JSON output instead of TSV (columns: index id begin end surprisal text)\n"
    "  --no-bos   do not add the vocabulary's BOS token\n"
    "  --soft F   score after the soft prompt F (terse distill) instead of BOS\n"
    CLI_OPTS_USAGE;

int cmd_score(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *soft_path = NULL;
    terse_soft *soft = NULL;
    int json = 0, as_ids = 0, bos = 1;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_SET("--json", &json, 1),
        CLI_OPT_SET("--ids", &as_ids, 1),
        CLI_OPT_SET("--no-bos", &bos, 0),
        CLI_OPT_STR("-f", &file),
        CLI_OPT_STR("--soft", &soft_path),
        CLI_OPT_END};
    const cli_cmd cmd = {"score", score_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    if (soft_path) bos = 0; /* the soft prompt brings its own BOS */
    char *text;
    size_t len;
    if (cli_read_input(file, &text, &len)) return 1;
    terse_model *m;
    if (load_model(&o, &model_path, &m)) { free(text); return 1; }
    if (soft_path && terse_soft_load(soft_path, m, &soft) != TERSE_OK) {
        free(text);
        terse_model_free(m);
        return cli_fail("loading soft prompt");
    }
    const terse_vocab *v = terse_model_vocab(m);
    int rc = 1;
    int32_t *ids = NULL;
    terse_span *spans = NULL;
    float *s = NULL;
    terse_ctx *c = NULL;
    int64_t n;

    if (as_ids) {
        n = cli_parse_ids(text, &ids);
        if (n < 0) goto done;
    } else {
        if (!v) { fprintf(stderr, "terse score: model has no tokenizer; use --ids\n"); goto done; }
        if (len == 0) { fprintf(stderr, "terse score: empty input\n"); goto done; }
        n = terse_tokenize(v, text, len, bos, NULL, NULL, 0);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
        ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        spans = malloc((size_t)(n ? n : 1) * sizeof *spans);
        if (!ids || !spans) { fprintf(stderr, "terse: out of memory\n"); goto done; }
        n = terse_tokenize(v, text, len, bos, ids, spans, n);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
    }
    if (n == 0) { fprintf(stderr, "terse score: no tokens to score\n"); goto done; }
    terse_ctx_params cp = cli_ctx_params(&o);
    if (terse_ctx_new(m, cp, &c) != TERSE_OK) { cli_fail("creating context"); goto done; }
    if (n > terse_ctx_n_ctx(c)) {
        fprintf(stderr, "terse score: %lld tokens exceed the model's context of %d tokens\n",
                (long long)n, terse_ctx_n_ctx(c));
        goto done;
    }
    s = malloc((size_t)n * sizeof *s);
    if (!s) { fprintf(stderr, "terse: out of memory\n"); goto done; }
    if (soft ? terse_soft_score(c, soft, ids, (int32_t)n, s) : terse_score(c, ids, (int32_t)n, s)) {
        cli_fail("scoring");
        goto done;
    }

    double total = 0;
    for (int64_t i = soft ? 0 : 1; i < n; i++) total += s[i];
    if (json) {
        printf("{\"model\": \"");
        cli_json_escape(stdout, model_path, strlen(model_path));
        printf("\", \"n_tokens\": %lld, \"total_nats\": %.6f, \"mean_nats\": %.6f, \"tokens\": [",
               (long long)n, total, soft ? total / (double)n : n > 1 ? total / (double)(n - 1) : 0.0);
        for (int64_t i = 0; i < n; i++) {
            printf("%s\n  {\"i\": %lld, \"id\": %d", i ? "," : "", (long long)i, ids[i]);
            if (spans) {
                printf(", \"begin\": %lld, \"end\": %lld, \"text\": \"", (long long)spans[i].begin,
                       (long long)spans[i].end);
                cli_json_escape(stdout, text + spans[i].begin,
                                (size_t)(spans[i].end - spans[i].begin));
                printf("\"");
            }
            printf(", \"surprisal\": %.6f}", s[i]);
        }
        printf("\n]}\n");
    } else {
        printf("index\tid\tbegin\tend\tsurprisal\ttext\n");
        for (int64_t i = 0; i < n; i++) {
            printf("%lld\t%d\t", (long long)i, ids[i]);
            if (spans) printf("%lld\t%lld\t", (long long)spans[i].begin, (long long)spans[i].end);
            else printf("-\t-\t");
            printf("%.6f\t", s[i]);
            if (spans)
                cli_tsv_escape(stdout, text + spans[i].begin, (size_t)(spans[i].end - spans[i].begin));
            else if (v && terse_vocab_piece(v, ids[i]))
                cli_tsv_escape(stdout, terse_vocab_piece(v, ids[i]), strlen(terse_vocab_piece(v, ids[i])));
            putchar('\n');
        }
    }
    rc = 0;
done:
    free(s);
    free(ids);
    free(spans);
    free(text);
    terse_ctx_free(c);
    terse_soft_free(soft);
    terse_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* generate                                                                                  */

static const char gen_usage[] =
    "usage: terse generate [MODEL] [-m MODEL] [-p PROMPT | --ids IDS] [-n N] [--temp T]\n"
    "                      [--top-p P] [--seed S] [--no-bos] [--print-ids] [-t N]\n"
    "  Continues the prompt (default: just BOS) with up to N tokens (default 256).\n"
    "  --temp 0 (default) is greedy decoding; --top-p in (0, 1] (default 1: off).\n"
    "  --soft F   start from the soft prompt F (terse distill): BOS, its vectors, then PROMPT\n"
    "  --gist G   start from the gist cache G (terse gist): PROMPT is the input, fed as\n"
    "             \"\\nInput: PROMPT\\nOutput:\" after the cached gist tokens\n"
    CLI_OPTS_USAGE;

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = "", *id_text = NULL, *soft_path = NULL;
    const char *gist_path = NULL;
    terse_soft *soft = NULL;
    terse_gist *gist = NULL;
    long n_new = 256, seed = 42;
    double temp = 0, top_p = 1;
    int bos = 1, print_ids = 0;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("-p", &prompt),
        CLI_OPT_STR("--ids", &id_text),
        CLI_OPT_STR("--soft", &soft_path),
        CLI_OPT_STR("--gist", &gist_path),
        CLI_OPT_NUM("-n", &n_new, 0, 1 << 20),
        CLI_OPT_NUM("--temp", &temp, 0, 100),
        CLI_OPT_NUM("--top-p", &top_p, 0, 1),
        CLI_OPT_NUM("--seed", &seed, 0, 0x7fffffffL),
        CLI_OPT_SET("--no-bos", &bos, 0),
        CLI_OPT_SET("--print-ids", &print_ids, 1),
        CLI_OPT_END};
    const cli_cmd cmd = {"generate", gen_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    if (!(top_p > 0)) { fprintf(stderr, "terse generate: --top-p wants a number in (0, 1], got '%g'\n", top_p); return 2; }
    if (soft_path) bos = 0; /* the soft prompt brings its own BOS */
    if (soft_path && gist_path) { fprintf(stderr, "terse generate: --soft and --gist exclude each other\n"); return 2; }
    if (gist_path && id_text) { fprintf(stderr, "terse generate: --gist takes -p INPUT, not --ids\n"); return 2; }
    terse_model *m;
    if (load_model(&o, &model_path, &m)) return 1;
    if (gist_path) {
        if (terse_gist_load(m, gist_path, &gist) != TERSE_OK) {
            terse_model_free(m);
            return cli_fail("loading gist cache");
        }
        bos = 0;
    }
    if (soft_path && terse_soft_load(soft_path, m, &soft) != TERSE_OK) {
        terse_model_free(m);
        return cli_fail("loading soft prompt");
    }
    const terse_vocab *v = terse_model_vocab(m);
    int rc = 1;
    int32_t *ids = NULL, *out = NULL;
    terse_ctx *c = NULL;
    int64_t n = 0;
    if (id_text) {
        n = cli_parse_ids(id_text, &ids);
        if (n < 0) goto done;
    } else if (gist) {
        size_t len = strlen(prompt);
        n = terse_gist_input_ids(m, prompt, len, NULL, 0);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
        ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (!ids) goto done;
        n = terse_gist_input_ids(m, prompt, len, ids, n);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
    } else {
        if (!v) { fprintf(stderr, "terse generate: model has no tokenizer; use --ids\n"); goto done; }
        size_t len = strlen(prompt);
        n = terse_tokenize(v, prompt, len, bos, NULL, NULL, 0);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
        ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (!ids) goto done;
        n = terse_tokenize(v, prompt, len, bos, ids, NULL, n);
        if (n < 0) { cli_fail("tokenizing"); goto done; }
    }
    if (n == 0 && !soft) { fprintf(stderr, "terse generate: empty prompt (no BOS either)\n"); goto done; }
    if (terse_ctx_new(m, cli_ctx_params(&o), &c) != TERSE_OK) { cli_fail("creating context"); goto done; }
    int32_t pre = 0;
    if (soft && (pre = terse_soft_prefix(c, soft)) < 0) { cli_fail("soft prompt"); goto done; }
    if (gist && terse_gist_apply(c, gist) != TERSE_OK) { cli_fail("gist cache"); goto done; }
    if (gist) pre = terse_gist_k(gist);
    n += pre; /* the context holds the soft prefix too */
    if (n + n_new > terse_ctx_n_ctx(c) && n <= terse_ctx_n_ctx(c)) {
        fprintf(stderr, "terse generate: -n %ld clipped to %lld: the context of %d tokens holds "
                "the prompt's %lld\n", n_new, (long long)(terse_ctx_n_ctx(c) - n),
                terse_ctx_n_ctx(c), (long long)n);
        n_new = terse_ctx_n_ctx(c) - n;
    }
    if (n > terse_ctx_n_ctx(c)) {
        fprintf(stderr, "terse generate: prompt of %lld tokens exceeds the context of %d\n",
                (long long)n, terse_ctx_n_ctx(c));
        goto done;
    }
    out = malloc((size_t)(n_new ? n_new : 1) * sizeof *out);
    if (!out) goto done;
    terse_sample_params sp = terse_sample_default_params();
    sp.temperature = (float)temp;
    sp.top_p = (float)top_p;
    sp.seed = (uint64_t)seed;
    int32_t got = terse_generate(c, ids, (int32_t)(n - pre), sp, out, (int32_t)n_new);
    if (got < 0) { cli_fail("generating"); goto done; }
    if (print_ids || !v) {
        for (int32_t i = 0; i < got; i++) printf("%s%d", i ? " " : "", out[i]);
        putchar('\n');
    } else {
        int64_t need = terse_detokenize(v, out, got, NULL, 0);
        char *txt = need >= 0 ? malloc((size_t)need + 1) : NULL;
        if (!txt) { cli_fail("detokenizing"); goto done; }
        terse_detokenize(v, out, got, txt, need + 1);
        fputs(prompt, stdout);
        fwrite(txt, 1, (size_t)need, stdout);
        putchar('\n');
        free(txt);
    }
    rc = 0;
done:
    terse_gist_free(gist);
    free(ids);
    free(out);
    terse_ctx_free(c);
    terse_soft_free(soft);
    terse_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* bpb: bits per byte of a text of any length                                                */

static const char bpb_usage[] =
    "usage: terse bpb [MODEL] [-m MODEL] [-f FILE] [--window N] [--max-bytes N] [-t N] < text\n"
    "  Bits per byte (tokenizer-independent quality): the text is tokenized whole, cut into\n"
    "  windows of N-1 tokens (default: the model's context), each scored after the BOS token;\n"
    "  every token is counted once. Prints tokens, bytes, nats/token, bits/byte, tokens/s.\n"
    CLI_OPTS_USAGE;

int cmd_bpb(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL;
    long window = 0, max_bytes = 0;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("-f", &file),
        CLI_OPT_NUM("--window", &window, 2, 1 << 20),
        CLI_OPT_NUM("--max-bytes", &max_bytes, 1, 0x7fffffffL),
        CLI_OPT_END};
    const cli_cmd cmd = {"bpb", bpb_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    char *text;
    size_t len;
    if (cli_read_input(file, &text, &len)) return 1;
    if (max_bytes && (size_t)max_bytes < len) {
        len = (size_t)max_bytes;
        while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80) len--; /* whole characters */
    }
    terse_model *m;
    if (load_model(&o, &model_path, &m)) { free(text); return 1; }
    const terse_vocab *v = terse_model_vocab(m);
    int rc = 1;
    int32_t *ids = NULL, *win = NULL;
    float *s = NULL;
    terse_ctx *c = NULL;
    if (!v) { fprintf(stderr, "terse bpb: model has no tokenizer\n"); goto done; }
    if (len == 0) { fprintf(stderr, "terse bpb: empty input\n"); goto done; }
    int32_t bos = terse_vocab_bos(v);
    if (bos < 0) { fprintf(stderr, "terse bpb: vocabulary has no BOS token\n"); goto done; }
    int64_t n = terse_tokenize(v, text, len, 0, NULL, NULL, 0);
    if (n < 0 || !(ids = malloc((size_t)(n ? n : 1) * sizeof *ids))) { cli_fail("tokenizing"); goto done; }
    n = terse_tokenize(v, text, len, 0, ids, NULL, n);
    if (n < 0) { cli_fail("tokenizing"); goto done; }
    if (n == 0) { fprintf(stderr, "terse bpb: the input (%zu bytes) has no tokens\n", len); goto done; }
    if (terse_ctx_new(m, cli_ctx_params(&o), &c) != TERSE_OK) { cli_fail("creating context"); goto done; }
    int32_t w = window ? (int32_t)window : terse_ctx_n_ctx(c);
    if (w > terse_ctx_n_ctx(c)) w = terse_ctx_n_ctx(c);
    win = malloc((size_t)w * sizeof *win);
    s = malloc((size_t)w * sizeof *s);
    if (!win || !s) { fprintf(stderr, "terse: out of memory\n"); goto done; }
    double nats = 0, t0 = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    for (int64_t at = 0; at < n; at += w - 1) {
        int32_t k = (int32_t)(n - at < w - 1 ? n - at : w - 1);
        win[0] = bos;
        memcpy(win + 1, ids + at, (size_t)k * sizeof *win);
        if (terse_score(c, win, k + 1, s) != TERSE_OK) { cli_fail("scoring"); goto done; }
        for (int32_t i = 1; i <= k; i++) nats += s[i];
        if (isatty(2)) fprintf(stderr, "\r%lld / %lld tokens", (long long)(at + k), (long long)n);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double dt = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - t0;
    if (isatty(2)) fputc('\n', stderr);
    printf("tokens\t%lld\nbytes\t%zu\nbytes_per_token\t%.4f\nnats_per_token\t%.5f\n"
           "bits_per_byte\t%.5f\nseconds\t%.2f\ntokens_per_second\t%.1f\n",
           (long long)n, len, (double)len / (double)n, nats / (double)n,
           nats / log(2.0) / (double)len, dt, (double)n / dt);
    rc = 0;
done:
    free(ids);
    free(win);
    free(s);
    free(text);
    terse_ctx_free(c);
    terse_model_free(m);
    return rc;
}
