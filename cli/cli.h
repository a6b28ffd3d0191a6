/* cli.h - shared helpers of the terse command-line tool (the files of cli/). Each cmd_*.c file holds one
 * family of subcommands; main.c dispatches. Commands print results on stdout, errors on stderr
 * and return the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef TERSE_CLI_H
#define TERSE_CLI_H

#include "terse.h"
#include <stddef.h>
#include <stdio.h>

/* Read all of stdin (or a file when path is not NULL/"-") into a malloc'ed buffer. */
int cli_read_input(const char *path, char **out, size_t *len);
/* Print "terse: <what>: <terse_last_error()>" and return 1. */
int cli_fail(const char *what);
/* Parse helpers: return 0 on success, print a usage error and return 2 on failure. */
int cli_parse_int(const char *opt, const char *s, long min, long max, long *out);
int cli_parse_float(const char *opt, const char *s, double min, double max, double *out);
int cli_parse_type(const char *s, terse_type *out);
/* Usage error for argument arg of `terse cmd`: "OPT needs a value" when arg is the last
 * argument (last != 0) and one of the space-separated value_opts, else "unknown option" (or
 * "unexpected argument") and the usage. Returns 2. */
int cli_bad_option(const char *cmd, const char *arg, int last, const char *value_opts,
                   const char *usage);
/* Parse whitespace/comma separated ids from text. Returns count or -1 (message printed). */
int64_t cli_parse_ids(const char *text, int32_t **out);
/* Write s[0..n) as a JSON string body (escaped, without quotes; base's terse_buf_json, the
 * library's one JSON escaper); invalid UTF-8 as \ufffd. */
void cli_json_escape(FILE *f, const char *s, size_t n);
/* Write s[0..n) for a TSV cell: printable, with \n \t \\ and bytes >= 0x80 of invalid UTF-8
 * escaped. */
void cli_tsv_escape(FILE *f, const char *s, size_t n);

int cmd_info(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_bpb(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_random(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_gist(int argc, char **argv);

/* Options every command spells the same way (opts.c): -m/--model MODEL and -t/--threads N. */
typedef struct {
    const char *model;  /* -m, or a positional MODEL; NULL = the default model */
    long threads;       /* -t; 0 = all cores */
    char def[4096];     /* the default model's path, once looked up */
} cli_opts;

cli_opts cli_opts_default(void);
/* The model to load: -m's, else the default model's path; NULL (message printed) if none. */
const char *cli_model_path(cli_opts *o);
/* Context parameters with -t's thread count. */
terse_ctx_params cli_ctx_params(const cli_opts *o);
/* Model parameters with -t's thread count (threads: -t, 0 = all cores): loading work such as
 * packing F32 weights stays within it. */
terse_model_params cli_model_params(long threads);
/* A command's option table (one per command, ending with CLI_OPT_END): each option's
 * spelling, what it takes and where that goes. CLI_SET stores (int)lo in an int;
 * the number kinds parse their value in [lo, hi] (cli_parse_int / cli_parse_float) into an
 * int32_t, long, uint64_t, float or double; seen (may be NULL) is set to 1 when given. */
typedef enum { CLI_STR, CLI_SET, CLI_I32, CLI_LONG, CLI_U64, CLI_F32, CLI_F64 } cli_kind;
typedef struct {
    const char *name;
    cli_kind kind;
    void *dst;
    double lo, hi;
    int *seen;
} cli_opt;
/* Table rows: the kind follows from dst's type (a wrong type does not compile). */
#define CLI_KIND_OF(d) _Generic((d), const char **: CLI_STR, int32_t *: CLI_I32, long *: CLI_LONG, \
                                uint64_t *: CLI_U64, float *: CLI_F32, double *: CLI_F64)
#define CLI_OPT_STR(n, d)             {(n), CLI_KIND_OF(d), (d), 0, 0, NULL}
#define CLI_OPT_SET(n, d, v)          {(n), _Generic((d), int *: CLI_SET), (d), (v), 0, NULL}
#define CLI_OPT_NUM(n, d, lo, hi)     {(n), CLI_KIND_OF(d), (d), (lo), (hi), NULL}
#define CLI_OPT_SEEN(n, d, lo, hi, s) {(n), CLI_KIND_OF(d), (d), (lo), (hi), (s)}
#define CLI_OPT_SET_SEEN(n, d, v, s)  {(n), _Generic((d), int *: CLI_SET), (d), (v), 0, (s)}
#define CLI_OPT_END                   {NULL, CLI_STR, NULL, 0, 0, NULL}
enum { CLI_MODEL_ARG = 1, CLI_OWN_ARGS = 2 };
typedef struct {
    const char *name, *usage;     /* "compress", its usage text */
    const cli_opt *opts;
    int flags;                    /* CLI_MODEL_ARG: a positional MODEL (as -m); CLI_OWN_ARGS:
                                     the command reads other arguments itself */
} cli_cmd;
enum { CLI_NEXT = -1, CLI_OWN = -2 };
/* One step of a command's argument loop: --help/-h (usage on stdout: returns 0), -m/--model,
 * -t/--threads, the options of c's table and a positional MODEL are
 * taken here (CLI_NEXT, *i past the value); a bad or missing value prints its message and
 * returns 2. Anything else is a usage error (2, cli_bad_option), or with CLI_OWN_ARGS the
 * command's own (CLI_OWN). A command with a table alone loops
 *     for (int i = 1, k; i < argc; i++)
 *         if ((k = cli_option(&cmd, argc, argv, &i, &o)) != CLI_NEXT) return k;
 * and one with options that want code (choices, repeated lists) reads them on CLI_OWN. */
int cli_option(const cli_cmd *c, int argc, char **argv, int *i, cli_opts *o);
/* Help lines for the two options, for the usage texts. */
#define CLI_OPTS_USAGE                                                                   \
    "  -m, --model MODEL     GGUF model (default: the default model)\n"                  \
    "  -t, --threads N       threads, OpenBLAS's included (default: all cores)\n"
/* Load a vocabulary named on the command line: a GGUF or .tiktoken file, or "cl100k" (found
 * by cli_find_cl100k). Returns 0, or 1 with the message printed. */
int cli_load_vocab(const char *arg, terse_vocab **out);
/* Path of cl100k_base.tiktoken: $TERSE_CL100K; beside the default model; beside the
 * executable (and ../share/terse, ../models); $TERSE_SHARED/vocab/tiktoken; the checkout's
 * ../shared seen from the executable's folder; ./models and ../shared from the current
 * folder. Returns 0, or -1 with the places searched printed. */
int cli_find_cl100k(char *buf, size_t cap);

/* --count-vocab V: a vocabulary file, or "cl100k" (found beside the default model, in
 * $TERSE_CL100K or ../shared/vocab/tiktoken). 0, or 1 with a message printed. */
int load_count_vocab(const char *arg, terse_vocab **out);
int cmd_serve(int argc, char **argv);
int cmd_batch(int argc, char **argv);

#endif
