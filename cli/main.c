/* main.c - the terse command: dispatch to subcommands, and the small helpers they share
 * (input reading, option parsing, escaping). No compression logic lives here: every command
 * is a thin layer over include/terse.h. */
#include "cli.h"
#include "base/base.h" /* terse_buf_json, terse_utf8_decode: internal, linked from libterse.a */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: terse <command> [options]\n"
    "\n"
    "commands:\n"
    "  info [MODEL]                    architecture, shape, size, vocabulary of a GGUF model\n"
    "  score [MODEL] [opts] < text     per-token surprisal (nats) as TSV or --json\n"
    "  bpb [MODEL] [opts] < text       bits per byte of a text of any length\n"
    "  generate [MODEL] [opts]         continue a prompt (greedy or sampled)\n"
    "  compress [opts] < prompt        shorter prompt from the original bytes (selective,\n"
    "                                  llmlingua, longllmlingua); --html heatmap, --json\n"
    "  recover -o ORIG -c COMPRESSED < response   map a response back to the original text\n"
    "  eval --data F.jsonl [opts]      methods x rates on a dataset: BLEU, ROUGE, METEOR,\n"
    "                                  BERTScore-style F1, KL, accuracy; JSON/Markdown/SVG\n"
    "  tokenize [MODEL_OR_VOCAB] < text  ids, pieces and byte spans (GGUF, .tiktoken, cl100k)\n"
    "  convert llama2c CKPT TOK OUT    llama2.c checkpoint + tokenizer -> llama GGUF\n"
    "  convert hf DIR OUT              Hugging Face folder (safetensors) -> GGUF\n"
    "  random OUT [opts]               model of a given shape with random weights\n"
    "  distill [MODEL] -f PROMPT --tokens N -o SOFT.gguf   learn a soft prompt (N vectors)\n"
    "  probe [MODEL] --soft SOFT.gguf  reconstruction probe of soft prompts (HTML heatmap)\n"
    "  serve [MODEL] [opts]            HTTP service (/v1/compress, ...) and OpenAI-compatible proxy\n"
    "  batch -f IN.jsonl -o OUT.jsonl  compress one JSON request per line, resumable\n"
    "  finetune [MODEL] --gist K --data F -o OUT   gist-token fine-tuning (Mu et al. 2023)\n"
    "  gist [MODEL] -f INSTRUCTION -o G.gguf   cache an instruction as K gist tokens (--gist G in generate)\n"
    "\n"
    "MODEL defaults to the default model (models/terse-default.gguf, or $TERSE_MODEL).\n"
    "Every command that reads a model takes it as -m MODEL (--model), and -t N (--threads):\n"
    "the most threads it runs, OpenBLAS's included.\n"
    "Run 'terse <command> --help' for the options of a command.\n";

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("terse %s\n", TERSE_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"info", cmd_info},         {"score", cmd_score},     {"bpb", cmd_bpb},     {"generate", cmd_generate},
        {"tokenize", cmd_tokenize}, {"convert", cmd_convert}, {"random", cmd_random},
        {"compress", cmd_compress}, {"recover", cmd_recover}, {"eval", cmd_eval},
        {"distill", cmd_distill},   {"probe", cmd_probe},
        {"serve", cmd_serve},       {"batch", cmd_batch},
        {"finetune", cmd_finetune}, {"gist", cmd_gist},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[1], cmds[i].name)) {
            int rc = cmds[i].fn(argc - 1, argv + 1);
            errno = 0; /* a full disk must not look like success */
            if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "terse %s: writing the output failed: %s\n", argv[1],
                        errno ? strerror(errno) : "I/O error");
                return rc ? rc : 1;
            }
            return rc;
        }
    fprintf(stderr, "terse: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}

/* ---------------------------------------------------------------------------------------- */
/* Shared helpers                                                                            */

int cli_fail(const char *what) {
    const char *msg = terse_last_error();
    fprintf(stderr, "terse: %s: %s\n", what, msg && *msg ? msg : "failed");
    return 1;
}

int cli_read_input(const char *path, char **out, size_t *len) {
    FILE *f = stdin;
    if (path && strcmp(path, "-")) {
        f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "terse: cannot open '%s': %s\n", path, strerror(errno));
            return 1;
        }
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) { free(buf); buf = NULL; break; }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0, from_stdin = f == stdin;
    if (!from_stdin) fclose(f);
    if (!buf || err) {
        fprintf(stderr, "terse: reading %s failed: %s\n", from_stdin ? "standard input" : path,
                buf ? strerror(err) : "out of memory");
        free(buf);
        return 1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int cli_parse_int(const char *opt, const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < min || v > max) {
        fprintf(stderr, "terse: %s wants an integer in [%ld, %ld], got '%s'\n", opt, min, max,
                s ? s : "(nothing)");
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= min && v <= max)) {
        fprintf(stderr, "terse: %s wants a number in [%g, %g], got '%s'\n", opt, min, max,
                s ? s : "(nothing)");
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_type(const char *s, terse_type *out) {
    static const struct { const char *n; terse_type t; } types[] = {
        {"f32", TERSE_TYPE_F32}, {"f16", TERSE_TYPE_F16}, {"bf16", TERSE_TYPE_BF16},
        {"q8_0", TERSE_TYPE_Q8_0},
        {"q4_0", TERSE_TYPE_Q4_0}, {"q4_1", TERSE_TYPE_Q4_1}, {"q5_0", TERSE_TYPE_Q5_0},
        {"q5_1", TERSE_TYPE_Q5_1}, {"q4_k", TERSE_TYPE_Q4_K}, {"q5_k", TERSE_TYPE_Q5_K},
        {"q6_k", TERSE_TYPE_Q6_K}, {"q4_k_m", TERSE_TYPE_Q4_K_M}, {"q5_k_m", TERSE_TYPE_Q5_K_M},
    };
    for (size_t i = 0; s && i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(s, types[i].n)) {
            *out = types[i].t;
            return 0;
        }
    fprintf(stderr, "terse: unknown tensor type '%s' (want f32, f16, bf16, q8_0, q4_0, q4_1, "
            "q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m or q5_k_m)\n",
            s ? s : "(nothing)");
    return 2;
}

int64_t cli_parse_ids(const char *text, int32_t **out) {
    int64_t n = 0, cap = 256;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    const char *p = text;
    while (ids) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            size_t w = strcspn(p, " ,\n\t\r");
            fprintf(stderr, "terse: bad token id '%.*s' (want integers in [0, %d])\n",
                    w > 40 ? 40 : (int)w, p, INT32_MAX);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *b = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!b) { free(ids); ids = NULL; break; }
            ids = b;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (!ids) {
        fprintf(stderr, "terse: out of memory\n");
        return -1;
    }
    *out = ids;
    return n;
}

int cli_bad_option(const char *cmd, const char *arg, int last, const char *value_opts,
                   const char *usage) {
    size_t n = strlen(arg);
    for (const char *p = value_opts; last && n && (p = strstr(p, arg)) != NULL; p += n)
        if ((p == value_opts || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) {
            fprintf(stderr, "terse %s: %s needs a value\n", cmd, arg);
            return 2;
        }
    fprintf(stderr, "terse %s: %s '%s'\n%s", cmd, arg[0] == '-' ? "unknown option" : "unexpected argument",
            arg, usage);
    return 2;
}

void cli_json_escape(FILE *f, const char *s, size_t n) {
    terse_buf b = {0};
    if (terse_buf_json(&b, s, n) == TERSE_OK && b.n) fwrite(b.s, 1, b.n, f);
    terse_buf_free(&b);
}

void cli_tsv_escape(FILE *f, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '\n') { fputs("\\n", f); i++; continue; }
        if (c == '\t') { fputs("\\t", f); i++; continue; }
        if (c == '\r') { fputs("\\r", f); i++; continue; }
        if (c == '\\') { fputs("\\\\", f); i++; continue; }
        if (c < 0x20 || c == 0x7f) { fprintf(f, "\\x%02x", c); i++; continue; }
        uint32_t cp;
        int len = terse_utf8_decode(u + i, n - i, &cp);
        if (!len) { fprintf(f, "\\x%02x", c); i++; continue; }
        fwrite(u + i, 1, (size_t)len, f);
        i += (size_t)len;
    }
}
