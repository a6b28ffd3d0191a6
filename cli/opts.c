/* opts.c - the options every terse command spells the same way, one argument loop for all
 * commands, and where the CLI finds its data files. A command declares one table of its
 * options (cli.h: cli_opt, cli_cmd) and loops
 *
 *     cli_opts o = cli_opts_default();
 *     const cli_opt opts[] = {CLI_OPT_STR("-f", &file), CLI_OPT_SET("--json", &json, 1),
 *                             CLI_OPT_NUM("--window", &window, 2, 1 << 20), CLI_OPT_END};
 *     const cli_cmd cmd = {"bpb", bpb_usage, opts, CLI_MODEL_ARG};
 *     for (int i = 1, k; i < argc; i++)
 *         if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
 *     const char *path = cli_model_path(&o);    // -m, else the default model
 *     terse_ctx_params cp = cli_ctx_params(&o); // n_threads from -t
 *
 * cli_option takes --help, -m/--model, -t/--threads, the table's options and a positional
 * MODEL, and answers a missing or bad value or an unknown option with the message and status
 * 2; options that want code of their own (choices, repeated lists) the command reads when
 * cli_option says CLI_OWN (cli_cmd.flags CLI_OWN_ARGS).
 */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cli_opts cli_opts_default(void) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

/* -m/--model or -t/--threads at argv[*i]: take it and its value (*i advances), 1; 0 for any
 * other argument; 2 (message printed) for a missing or bad value. */
static int common_option(const char *cmd, int argc, char **argv, int *i, cli_opts *o) {
    const char *a = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    int model = !strcmp(a, "-m") || !strcmp(a, "--model");
    int threads = !strcmp(a, "-t") || !strcmp(a, "--threads");
    if (!model && !threads) return 0;
    if (!next) {
        fprintf(stderr, "terse %s: %s needs a value\n", cmd, a);
        return 2;
    }
    ++*i;
    if (model) {
        if (o->model && strcmp(o->model, next)) {
            fprintf(stderr, "terse %s: two models given ('%s' and '%s')\n", cmd, o->model, next);
            return 2;
        }
        o->model = next;
        return 1;
    }
    if (cli_parse_int(a, next, 0, 1024, &o->threads)) return 2;
    return 1;
}

static int take(const cli_cmd *c, const cli_opt *t, const char *a, const char *next) {
    long l;
    double d;
    int rc = 0;
    if (t->kind != CLI_SET && !next) {
        fprintf(stderr, "terse %s: %s needs a value\n", c->name, a);
        return 2;
    }
    if (t->seen) *t->seen = 1;
    switch (t->kind) {
    case CLI_SET: *(int *)t->dst = (int)t->lo; return 0;
    case CLI_STR:
        *(const char **)t->dst = next;
        return 0;
    case CLI_I32: case CLI_LONG: case CLI_U64:
        if ((rc = cli_parse_int(a, next, (long)t->lo, (long)t->hi, &l))) return rc;
        if (t->kind == CLI_I32) *(int32_t *)t->dst = (int32_t)l;
        else if (t->kind == CLI_LONG) *(long *)t->dst = l;
        else *(uint64_t *)t->dst = (uint64_t)l;
        return 0;
    case CLI_F32: case CLI_F64:
        if ((rc = cli_parse_float(a, next, t->lo, t->hi, &d))) return rc;
        if (t->kind == CLI_F32) *(float *)t->dst = (float)d;
        else *(double *)t->dst = d;
        return 0;
    }
    return 2;
}

int cli_option(const cli_cmd *c, int argc, char **argv, int *i, cli_opts *o) {
    const char *a = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        fputs(c->usage, stdout);
        return 0;
    }
    int k = common_option(c->name, argc, argv, i, o);
    if (k) return k == 1 ? CLI_NEXT : k;
    for (const cli_opt *t = c->opts; t && t->name; t++) {
        if (strcmp(a, t->name)) continue;
        int rc = take(c, t, a, next);
        if (rc) return rc;
        if (t->kind != CLI_SET) ++*i;
        return CLI_NEXT;
    }
    if ((c->flags & CLI_MODEL_ARG) && a[0] != '-' && !o->model) {
        o->model = a;
        return CLI_NEXT;
    }
    return c->flags & CLI_OWN_ARGS ? CLI_OWN : cli_bad_option(c->name, a, !next, "", c->usage);
}

const char *cli_model_path(cli_opts *o) {
    if (o->model) return o->model;
    if (terse_default_model_path(o->def, sizeof o->def) < 0) {
        cli_fail("finding the default model");
        return NULL;
    }
    return o->def;
}

terse_ctx_params cli_ctx_params(const cli_opts *o) {
    terse_ctx_params p = terse_ctx_default_params();
    p.n_threads = (int32_t)o->threads;
    return p;
}

terse_model_params cli_model_params(long threads) {
    terse_model_params p = terse_model_default_params();
    p.n_threads = (int)threads;
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Data files: cl100k_base.tiktoken                                                          */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

#define CL100K "cl100k_base.tiktoken"

int cli_find_cl100k(char *buf, size_t cap) {
    char cand[12][PATH_MAX + 64];
    int n = 0;
    const char *env = getenv("TERSE_CL100K");
    if (env && *env) {
        if (is_file(env)) return snprintf(buf, cap, "%s", env) < (int)cap ? 0 : -1;
        fprintf(stderr, "terse: TERSE_CL100K='%s' is not a readable file\n", env);
        return -1;
    }
    char def[PATH_MAX], exe[PATH_MAX];
    if (terse_default_model_path(def, sizeof def) > 0) { /* beside the default model */
        char *slash = strrchr(def, '/');
        snprintf(cand[n++], sizeof cand[0], "%.*s" CL100K, slash ? (int)(slash - def + 1) : 0, def);
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) { /* beside the executable: build/terse, bin/terse -> ../share/terse */
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[n++], sizeof cand[0], "%s/" CL100K, exe);
        snprintf(cand[n++], sizeof cand[0], "%s/../share/terse/" CL100K, exe);
        snprintf(cand[n++], sizeof cand[0], "%s/../models/" CL100K, exe);
    }
    const char *shared = getenv("TERSE_SHARED");
    if (shared && *shared) snprintf(cand[n++], sizeof cand[0], "%s/vocab/tiktoken/" CL100K, shared);
    if (len > 0) { /* a checkout's ../shared, seen from its build folder */
        snprintf(cand[n++], sizeof cand[0], "%s/../../shared/vocab/tiktoken/" CL100K, exe);
        snprintf(cand[n++], sizeof cand[0], "%s/../shared/vocab/tiktoken/" CL100K, exe);
    }
    snprintf(cand[n++], sizeof cand[0], "models/" CL100K);
    snprintf(cand[n++], sizeof cand[0], "../shared/vocab/tiktoken/" CL100K);
    for (int k = 0; k < n; k++)
        if (is_file(cand[k])) return snprintf(buf, cap, "%s", cand[k]) < (int)cap ? 0 : -1;
    fprintf(stderr, "terse: " CL100K " not found: set TERSE_CL100K (or TERSE_SHARED) or give "
            "its path; looked in:\n");
    for (int k = 0; k < n; k++) fprintf(stderr, "  %s\n", cand[k]);
    return -1;
}

int cli_load_vocab(const char *arg, terse_vocab **out) {
    *out = NULL;
    char path[PATH_MAX + 64];
    if (!strcmp(arg, "cl100k") || !strcmp(arg, "cl100k_base")) {
        if (cli_find_cl100k(path, sizeof path)) return 1;
        arg = path;
    }
    if (terse_vocab_load(arg, out) != TERSE_OK) {
        char what[PATH_MAX + 96];
        snprintf(what, sizeof what, "loading the vocabulary '%s'", arg);
        return cli_fail(what);
    }
    return 0;
}
