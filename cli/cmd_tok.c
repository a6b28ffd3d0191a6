/* cmd_tok.c - `terse tokenize`: ids, pieces and byte spans of a text, with any vocabulary
 * terse reads (a model GGUF, a vocab-only GGUF, or a .tiktoken rank file). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char tok_usage[] =
    "usage: terse tokenize [MODEL_OR_VOCAB] [-m MODEL_OR_VOCAB] [--json] [--count] [--special]\n"
    "                      [-f FILE] < text\n"
    "  Prints one token per line: index, id, begin, end (byte span of the input), piece, text.\n"
    "  MODEL_OR_VOCAB: a GGUF model or vocabulary, a .tiktoken file, or cl100k (OpenAI's\n"
    "  cl100k_base, found beside the executable, in $TERSE_SHARED or ../shared); default: the\n"
    "  default model's vocabulary.\n"
    "  --count    print only the number of tokens\n"
    "  --special  add BOS/EOS as the vocabulary says\n"
    "  -t N       accepted like every command's (tokenizing runs on one thread)\n";

int cmd_tokenize(int argc, char **argv) {
    const char *file = NULL;
    int json = 0, count = 0, special = 0;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_SET("--json", &json, 1),
        CLI_OPT_SET("--count", &count, 1),
        CLI_OPT_SET("--special", &special, 1),
        CLI_OPT_STR("-f", &file),
        CLI_OPT_END};
    const cli_cmd cmd = {"tokenize", tok_usage, opts, CLI_MODEL_ARG};
    for (int i = 1, k; i < argc; i++)
        if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
    const char *path = cli_model_path(&o);
    if (!path) return 1;
    char *text;
    size_t len;
    if (cli_read_input(file, &text, &len)) return 1;
    terse_vocab *v;
    if (cli_load_vocab(path, &v)) { free(text); return 1; }
    int rc = 1;
    int32_t *ids = NULL;
    terse_span *spans = NULL;
    int64_t n = terse_tokenize(v, text, len, special, NULL, NULL, 0);
    if (n < 0) { cli_fail("tokenizing"); goto done; }
    if (count) { printf("%lld\n", (long long)n); rc = 0; goto done; }
    ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    spans = malloc((size_t)(n ? n : 1) * sizeof *spans);
    if (!ids || !spans) { fprintf(stderr, "terse: out of memory\n"); goto done; }
    n = terse_tokenize(v, text, len, special, ids, spans, n);
    if (n < 0) { cli_fail("tokenizing"); goto done; }
    if (json) printf("{\"n_tokens\": %lld, \"tokens\": [", (long long)n);
    else printf("index\tid\tbegin\tend\tpiece\ttext\n");
    for (int64_t i = 0; i < n; i++) {
        const char *piece = terse_vocab_piece(v, ids[i]);
        if (!piece) piece = "";
        const char *s = text + spans[i].begin;
        size_t sl = (size_t)(spans[i].end - spans[i].begin);
        if (json) {
            printf("%s\n  {\"id\": %d, \"begin\": %lld, \"end\": %lld, \"piece\": \"", i ? "," : "",
                   ids[i], (long long)spans[i].begin, (long long)spans[i].end);
            cli_json_escape(stdout, piece, strlen(piece));
            printf("\", \"text\": \"");
            cli_json_escape(stdout, s, sl);
            printf("\"}");
        } else {
            printf("%lld\t%d\t%lld\t%lld\t", (long long)i, ids[i], (long long)spans[i].begin,
                   (long long)spans[i].end);
            cli_tsv_escape(stdout, piece, strlen(piece));
            putchar('\t');
            cli_tsv_escape(stdout, s, sl);
            putchar('\n');
        }
    }
    if (json) printf("\n]}\n");
    rc = 0;
done:
    free(ids);
    free(spans);
    free(text);
    terse_vocab_free(v);
    return rc;
}
