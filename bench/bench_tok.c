/* bench_tok.c - tokenization throughput, one thread, every tokenizer, growing input sizes.
 *
 *     ./build/bench/bench_tok [prose_file] [code_file]
 *
 * Prose: the held-out corpus split (../shared/corpus/val.txt.xz, 2.7 MB, topped up with
 * eval-wikitext2.txt.xz to reach 4 MB), read through `xz -dc`; a plain file if given.
 * Code: this repository's C sources (src/, include/, tests/, bench/, cli/) concatenated,
 * repeated to 4 MB; a plain file if given.
 * Each cell times terse_tokenize (ids + spans, no special tokens) on the first 64 KB, 256 KB,
 * 1 MB and 4 MB of the text (best of at least 3 runs / 0.3 s of thread CPU time) and prints
 * MB/s (10^6 bytes per CPU second);
 * roughly constant MB/s across sizes means linear time. Tokenizers: the six
 * ../shared/vocab GGUFs, qwen2 and llama-bpe imported from their Hugging Face files, cl100k.
 * Note: bpe.c caches words within one call, so the repeated code text flatters the 1-4 MB
 * code columns a little; the prose columns are not repeated.
 */
#include "terse.h"
#include "tok/tok.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES (4u << 20)

typedef struct {
    char *s;
    size_t n;
} text;

static void append(text *t, const char *p, size_t n) {
    if (t->n + n > MAX_BYTES) n = MAX_BYTES - t->n;
    memcpy(t->s + t->n, p, n);
    t->n += n;
}

static void append_cmd(text *t, const char *cmd) {
    FILE *f = popen(cmd, "r");
    if (!f) return;
    char buf[65536];
    size_t k;
    while (t->n < MAX_BYTES && (k = fread(buf, 1, sizeof buf, f)) > 0) append(t, buf, k);
    while (fread(buf, 1, sizeof buf, f) > 0) {}   /* let the child finish */
    pclose(f);
}

static void append_file(text *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[65536];
    size_t k;
    while (t->n < MAX_BYTES && (k = fread(buf, 1, sizeof buf, f)) > 0) append(t, buf, k);
    fclose(f);
}

static int load_prose(text *t, const char *path, const char *shared) {
    if (path) {
        append_file(t, path);
        return t->n > 0;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "xz -dc '%s/corpus/val.txt.xz'", shared);
    append_cmd(t, cmd);
    snprintf(cmd, sizeof cmd, "xz -dc '%s/corpus/eval-wikitext2.txt.xz'", shared);
    if (t->n < MAX_BYTES) append_cmd(t, cmd);
    return t->n > 0;
}

static int load_code(text *t, const char *path) {
    if (path) {
        append_file(t, path);
        return t->n > 0;
    }
    static const char *const pats[] = {"src/*/*.c", "src/*/*.h", "include/*.h", "tests/*.c",
                                       "bench/*.c", "cli/*.c"};
    size_t one = 0;
    for (int pass = 0; t->n < MAX_BYTES; pass++) {
        for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
            glob_t g;
            if (glob(pats[i], 0, NULL, &g) == 0)
                for (size_t k = 0; k < g.gl_pathc; k++) append_file(t, g.gl_pathv[k]);
            globfree(&g);
        }
        if (pass == 0) one = t->n;
        if (one == 0) break;
    }
    return t->n > 0;
}

/* CPU seconds of this thread: on a shared machine, time stolen by other processes does not
 * count (wall time would make the table a measure of the machine's load). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* MB/s of terse_tokenize over s[0..n): the best of repeated runs (at least 3, and until
 * 0.3 CPU seconds have passed). */
static double throughput(const terse_vocab *v, const char *s, size_t n, int32_t *ids,
                         terse_span *sp, int64_t cap, double *tok_per_byte) {
    double start = cpu_now(), best = 1e30;
    int64_t k = 0;
    for (int reps = 0; reps < 3 || cpu_now() - start < 0.3; reps++) {
        double t0 = cpu_now();
        k = terse_tokenize(v, s, n, 0, ids, sp, cap);
        double t = cpu_now() - t0;
        if (k < 0) return -1;
        if (t < best) best = t;
    }
    *tok_per_byte = (double)k / (double)n;
    return (double)n / best / 1e6;
}

static terse_vocab *load_hf(const char *shared, const char *sub, const char *pre) {
    char dir[512], tmp[256];
    snprintf(dir, sizeof dir, "%s/vocab/%s", shared, sub);
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/bench_tok_%d.gguf", td ? td : "/tmp", (int)getpid());
    gguf_writer *w = gguf_writer_new();
    terse_vocab *v = NULL;
    if (tok_import_hf(dir, pre, w) == 0 && gguf_writer_write(w, tmp) == 0)
        terse_vocab_load(tmp, &v);
    gguf_writer_free(w);
    unlink(tmp);
    return v;
}

int main(int argc, char **argv) {
    const char *shared = getenv("TERSE_SHARED") ? getenv("TERSE_SHARED") : "../shared";
    text prose = {malloc(MAX_BYTES), 0}, code = {malloc(MAX_BYTES), 0};
    if (!prose.s || !code.s) return 1;
    if (!load_prose(&prose, argc > 1 ? argv[1] : NULL, shared) ||
        !load_code(&code, argc > 2 ? argv[2] : NULL)) {
        fprintf(stderr, "bench_tok: no input text (prose %zu bytes, code %zu bytes)\n", prose.n,
                code.n);
        return 1;
    }
    static const size_t sizes[] = {64u << 10, 256u << 10, 1u << 20, 4u << 20};
    static const char *const names[] = {"gpt-2", "llama-spm", "phi-3", "starcoder",
                                        "deepseek-coder", "bert-bge", "qwen2", "llama-bpe",
                                        "cl100k"};
    int64_t cap = (int64_t)MAX_BYTES + 16;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    terse_span *sp = malloc((size_t)cap * sizeof *sp);
    if (!ids || !sp) return 1;
    printf("tokenize throughput, MB per CPU second (1e6 bytes), one thread; prose %.1f MB, "
           "code %.1f MB\n",
           prose.n / 1e6, code.n / 1e6);
    printf("%-15s |%8s%8s%8s%8s  tok/B |%8s%8s%8s%8s  tok/B\n", "tokenizer", "64K", "256K",
           "1M", "4M", "64K", "256K", "1M", "4M");
    printf("%-15s |%41s|%40s\n", "", "prose", "code");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        terse_vocab *v = NULL;
        char path[512];
        if (i < 6) {
            snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared, names[i]);
            terse_vocab_load(path, &v);
        } else if (i == 6) {
            v = load_hf(shared, "qwen2", "qwen2");
        } else if (i == 7) {
            v = load_hf(shared, "llama3.2", "llama-bpe");
        } else {
            snprintf(path, sizeof path, "%s/vocab/tiktoken/cl100k_base.tiktoken", shared);
            terse_vocab_load(path, &v);
        }
        if (!v) {
            printf("%-15s | not loaded: %s\n", names[i], terse_last_error());
            continue;
        }
        printf("%-15s |", names[i]);
        const text *tx[2] = {&prose, &code};
        for (int k = 0; k < 2; k++) {
            double tpb = 0;
            for (size_t j = 0; j < 4; j++) {
                size_t n = sizes[j] < tx[k]->n ? sizes[j] : tx[k]->n;
                double mbs = throughput(v, tx[k]->s, n, ids, sp, cap, &tpb);
                printf("%8.2f", mbs);
                fflush(stdout);
            }
            printf("  %.3f %s", tpb, k ? "" : "|");
        }
        printf("\n");
        terse_vocab_free(v);
    }
    free(ids);
    free(sp);
    free(prose.s);
    free(code.s);
    return 0;
}
