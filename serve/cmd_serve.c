/* cmd_serve.c - `terse serve`: options, loading the model once, the worker pool, then
 * serve_run (http.c) until SIGTERM. */
#include "serve.h"
#include "../cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: terse serve [MODEL] [options]\n"
    "  HTTP: POST /v1/compress (the JSON prompt of `terse compress` plus options; answers the\n"
    "  result of `terse compress --json`), POST /v1/score, POST /v1/tokenize ({\"text\": ...}),\n"
    "  GET /health, GET /metrics (Prometheus). Errors: {\"error\": {\"message\", \"type\", \"code\"}}.\n"
    "  -m MODEL                scoring model (default: the default model)\n"
    "  --host ADDR             IPv4 address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port N                port (default 8080; 0: any free port, printed on stderr)\n"
    "  --workers N             requests compressed at once, one model context each (default 1)\n"
    "  --queue N               requests waiting beyond that before 503 + Retry-After (default 16)\n"
    "  -t N                    threads per worker (default: cores / workers)\n"
    "  --max-body BYTES        largest request body (default 8388608)\n"
    "  --max-tokens N          largest prompt, in model tokens (default 32768)\n"
    "  --timeout S             answer within S seconds of arrival, else 504 (default 120)\n"
    "  --grace S               on SIGTERM, wait up to S seconds for requests in flight (default 30)\n"
    "  --idle-timeout S        408 and disconnect for a client silent S seconds before its request\n"
    "                          is complete; idle keep-alive connections are closed (default 15)\n"
    "  --api-key-file FILE     require 'Authorization: Bearer <the file's first line>'\n"
    "  --count-vocab V         count budgets and results in V (.tiktoken/.gguf, or cl100k)\n"
    "Proxy (OpenAI-compatible POST /v1/chat/completions):\n"
    "  --upstream URL          forward compressed chat requests to URL (http://host:port[/v1])\n"
    "  --upstream-key-file F   send 'Authorization: Bearer <key>' upstream (default: the client's\n"
    "                          Authorization header, when the server has no --api-key-file)\n"
    "  --upstream-timeout S    connect timeout and longest upstream silence (default 60)\n"
    "  --roles LIST            roles whose messages are compressed (default system,user)\n"
    "  --min-tokens N          leave shorter messages alone (default 64)\n"
    "  --compress-last         compress the last message too (default: kept, it is the question)\n"
    "  --rate R | --target N   budget per message (default rate 0.5)\n"
    "  --method M              selective (default) | llmlingua | longllmlingua\n"
    "  --force STR             never drop STR (repeatable); --protect REGEX (repeatable)\n";

static char *read_key(const char *path) {
    char *text;
    size_t len;
    if (cli_read_input(path, &text, &len)) return NULL;
    char *nl = strpbrk(text, "\r\n");
    if (nl) *nl = 0;
    len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t')) text[--len] = 0;
    if (!len) { fprintf(stderr, "terse serve: the key file %s is empty\n", path); free(text); return NULL; }
    return text;
}

int cmd_serve(int argc, char **argv) {
    serve_config cfg = {.host = "127.0.0.1", .port = 8080, .workers = 1, .queue = 16,
                        .max_body = 8 << 20, .max_tokens = 32768, .timeout = 120, .grace = 30,
                        .idle_timeout = 15, .upstream_timeout = 60, .roles = "system,user", .min_tokens = 64,
                        .keep_last = 1, .rate = 0.5, .method = "selective"};
    const char *count_vocab = NULL;
    cli_opts o = cli_opts_default();
    const cli_opt opts[] = {
        CLI_OPT_STR("--host", &cfg.host),
        CLI_OPT_NUM("--port", &cfg.port, 0, 65535),
        CLI_OPT_NUM("--workers", &cfg.workers, 1, 256),
        CLI_OPT_NUM("--queue", &cfg.queue, 0, 100000),
        CLI_OPT_NUM("--max-body", &cfg.max_body, 1, 1L << 30),
        CLI_OPT_NUM("--max-tokens", &cfg.max_tokens, 1, INT32_MAX),
        CLI_OPT_NUM("--timeout", &cfg.timeout, 0.001, 86400),
        CLI_OPT_NUM("--grace", &cfg.grace, 0, 86400),
        CLI_OPT_NUM("--idle-timeout", &cfg.idle_timeout, 0.1, 86400),
        CLI_OPT_STR("--api-key-file", &cfg.api_key_file),
        CLI_OPT_STR("--count-vocab", &count_vocab),
        CLI_OPT_STR("--upstream", &cfg.upstream),
        CLI_OPT_STR("--upstream-key-file", &cfg.upstream_key_file),
        CLI_OPT_NUM("--upstream-timeout", &cfg.upstream_timeout, 0.001, 86400),
        CLI_OPT_STR("--roles", &cfg.roles),
        CLI_OPT_NUM("--min-tokens", &cfg.min_tokens, 0, INT32_MAX),
        CLI_OPT_SET("--compress-last", &cfg.keep_last, 0),
        CLI_OPT_NUM("--rate", &cfg.rate, 0, 1),
        CLI_OPT_NUM("--target", &cfg.target, 1, INT32_MAX),
        CLI_OPT_STR("--method", &cfg.method),
        CLI_OPT_END};
    const cli_cmd cmd = {"serve", serve_usage, opts, CLI_MODEL_ARG | CLI_OWN_ARGS};
    for (int i = 1; i < argc; i++) {
        int k = cli_option(&cmd, argc, argv, &i, &o);
        if (k == CLI_NEXT) continue;
        if (k != CLI_OWN) return k;
        const char *a = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(a, "--force") || !strcmp(a, "--protect")) && more) {
            int f = a[2] == 'f';
            int *n = f ? &cfg.n_force : &cfg.n_protect;
            if (*n == SERVE_MAX_LIST) { fprintf(stderr, "terse serve: at most %d %s\n", SERVE_MAX_LIST, a); return 2; }
            (f ? cfg.force : cfg.protect)[(*n)++] = argv[++i];
        } else return cli_bad_option(cmd.name, a, !more, "--force --protect", cmd.usage);
    }
    cfg.model_path = o.model;
    cfg.threads = (int)o.threads;
    if (!(cfg.rate > 0)) { fprintf(stderr, "terse serve: --rate %g outside (0, 1]\n", cfg.rate); return 2; }
    if (strcmp(cfg.method, "selective") && strcmp(cfg.method, "llmlingua") && strcmp(cfg.method, "longllmlingua")) {
        fprintf(stderr, "terse serve: --method '%s': selective, llmlingua or longllmlingua\n", cfg.method);
        return 2;
    }
    if (cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = cores / cfg.workers > 0 ? (int)(cores / cfg.workers) : 1;
    }
    char def[4096];
    if (!cfg.model_path) {
        if (terse_default_model_path(def, sizeof def) < 0) return cli_fail("finding the model");
        cfg.model_path = def;
    }
    serve_state s = {.cfg = &cfg};
    int rc = 1;
    if (cfg.api_key_file && !(s.api_key = read_key(cfg.api_key_file))) goto done;
    if (cfg.upstream_key_file && !(s.upstream_key = read_key(cfg.upstream_key_file))) goto done;
    if (cfg.upstream && (strncmp(cfg.upstream, "http://", 7) && strncmp(cfg.upstream, "https://", 8))) {
        fprintf(stderr, "terse serve: --upstream '%s' must start with http:// or https://\n", cfg.upstream);
        rc = 2;
        goto done;
    }
    if (cfg.upstream && proxy_global_init()) { fprintf(stderr, "terse serve: libcurl failed to start\n"); goto done; }
    if (count_vocab && load_count_vocab(count_vocab, &s.count_vocab)) goto done;
    if (terse_model_load(cfg.model_path, cli_model_params(o.threads), &s.model)) { cli_fail("loading model"); goto done; }
    s.vocab = terse_model_vocab(s.model);
    if (!s.vocab) { fprintf(stderr, "terse serve: %s has no tokenizer\n", cfg.model_path); goto done; }
    if (serve_pool_new(s.model, cfg.workers, cfg.queue, cfg.threads, &s.pool)) { cli_fail("creating the workers"); goto done; }
    rc = serve_run(&s);
done:
    serve_pool_free(s.pool);
    terse_model_free(s.model);
    terse_vocab_free(s.count_vocab);
    free(s.api_key);
    free(s.upstream_key);
    return rc;
}
