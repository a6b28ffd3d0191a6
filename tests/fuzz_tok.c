/* fuzz_tok.c - libFuzzer target: tokenize the input with every vocabulary and check the spans.
 *
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). Run from the repository root:
 *     ./build/fuzz/fuzz_tok -max_total_time=60 [corpus_dir]
 * TERSE_FUZZ_VOCAB=<name> restricts the run to one vocabulary: gpt-2, llama-spm, phi-3,
 * starcoder, deepseek-coder, bert-bge (the ../shared/vocab GGUFs), qwen2, llama-bpe (imported
 * from the Hugging Face files at start-up), cl100k (the .tiktoken file). TERSE_SHARED overrides
 * ../shared.
 *
 * Checked for every input and vocabulary (abort() on violation, so libFuzzer keeps the input):
 * tokenize succeeds; terse_token_count agrees; spans are in order and tile the input (WordPiece
 * may leave bytes uncovered only where they make no token on their own); byte-level BPE and
 * tiktoken tokens hold exactly their span's bytes (special tokens: their piece; the unknown
 * token and deepseek-coder's byte characters exempt, see test_tok_spans.c); detokenize of all
 * ids succeeds.
 */
#include "terse.h"
#include "tok/tok.h"
#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    const char *name;
    terse_vocab *v;
} fz_vocab;

static fz_vocab vocabs[9];
static int n_vocabs;

static const char *shared_dir(void) {
    const char *s = getenv("TERSE_SHARED");
    return s ? s : "../shared";
}

static int wanted(const char *name) {
    const char *w = getenv("TERSE_FUZZ_VOCAB");
    return !w || !strcmp(w, name);
}

static void add(const char *name, terse_vocab *v) {
    if (!v) {
        fprintf(stderr, "fuzz_tok: %s: %s\n", name, terse_last_error());
        abort();
    }
    vocabs[n_vocabs].name = name;
    vocabs[n_vocabs++].v = v;
}

static void load_all(void) {
    static const char *const ggufs[] = {"gpt-2", "llama-spm", "phi-3", "starcoder",
                                        "deepseek-coder", "bert-bge"};
    char path[512];
    for (size_t i = 0; i < sizeof ggufs / sizeof *ggufs; i++) {
        if (!wanted(ggufs[i])) continue;
        terse_vocab *v = NULL;
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared_dir(), ggufs[i]);
        terse_vocab_load(path, &v);
        add(ggufs[i], v);
    }
    static const char *const hf[][3] = {{"qwen2", "qwen2", "qwen2"},
                                        {"llama-bpe", "llama3.2", "llama-bpe"}};
    for (size_t i = 0; i < 2; i++) {
        if (!wanted(hf[i][0])) continue;
        char dir[512], tmp[256];
        snprintf(dir, sizeof dir, "%s/vocab/%s", shared_dir(), hf[i][1]);
        snprintf(tmp, sizeof tmp, "/tmp/fuzz_tok_%d_%s.gguf", (int)getpid(), hf[i][0]);
        gguf_writer *w = gguf_writer_new();
        terse_vocab *v = NULL;
        if (tok_import_hf(dir, hf[i][2], w) == 0 && gguf_writer_write(w, tmp) == 0)
            terse_vocab_load(tmp, &v);
        gguf_writer_free(w);
        unlink(tmp);
        add(hf[i][0], v);
    }
    if (wanted("cl100k")) {
        terse_vocab *v = NULL;
        snprintf(path, sizeof path, "%s/vocab/tiktoken/cl100k_base.tiktoken", shared_dir());
        terse_vocab_load(path, &v);
        add("cl100k", v);
    }
    if (!n_vocabs) {
        fprintf(stderr, "fuzz_tok: TERSE_FUZZ_VOCAB names no vocabulary\n");
        abort();
    }
}

static void fail(const char *vname, const char *what, int64_t tok) {
    fprintf(stderr, "fuzz_tok: %s: %s (token %lld)\n", vname, what, (long long)tok);
    abort();
}

static int byte_char_piece(const terse_vocab *v, int32_t id, uint8_t b) {
    uint32_t cp = b, k = 0;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
        for (uint32_t c = 0; c < b; c++)
            if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) k++;
        cp = 256 + k;
    }
    char u[4];
    int l = terse_utf8_encode(cp, u);
    return v->piece_len[id] == (uint32_t)l && !memcmp(v->piece[id], u, (size_t)l);
}

static void check(const fz_vocab *fv, const uint8_t *s, size_t n) {
    const terse_vocab *v = fv->v;
    int64_t cap = (int64_t)n + 8;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    terse_span *sp = malloc((size_t)cap * sizeof *sp);
    if (!ids || !sp) abort();
    int64_t k = terse_tokenize(v, (const char *)s, n, 0, ids, sp, cap);
    if (k < 0) fail(fv->name, terse_last_error(), -1);
    if (k > cap) fail(fv->name, "more tokens than bytes + 8", k);
    if (terse_token_count(v, (const char *)s, n) != k) fail(fv->name, "token_count differs", -1);
    int wpm = v->type == TERSE_VOCAB_WPM;
    int byte_level = v->type == TERSE_VOCAB_BPE || v->type == TERSE_VOCAB_TIKTOKEN;
    int64_t at = 0;
    for (int64_t i = 0; i < k; i++) {
        if (ids[i] < 0 || ids[i] >= v->n_tokens) fail(fv->name, "id out of range", i);
        if (sp[i].begin < at || sp[i].end < sp[i].begin || sp[i].end > (int64_t)n)
            fail(fv->name, "span out of order", i);
        if (sp[i].begin != at &&
            !(wpm && terse_token_count(v, (const char *)s + at, (size_t)(sp[i].begin - at)) == 0))
            fail(fv->name, "gap before span", i);
        at = sp[i].end;
        int32_t id = ids[i];
        size_t sl = (size_t)(sp[i].end - sp[i].begin);
        const uint8_t *ss = s + sp[i].begin;
        if (!byte_level || id == v->unk) continue;
        if (sl == 1 && byte_char_piece(v, id, ss[0])) continue;
        const char *p = v->raw && v->raw[id] ? v->raw[id] : v->piece[id];
        uint32_t l = v->raw && v->raw[id] ? v->raw_len[id] : v->piece_len[id];
        if (l != sl || memcmp(p, ss, sl)) fail(fv->name, "token bytes differ from span", i);
    }
    if (at != (int64_t)n &&
        !(wpm && terse_token_count(v, (const char *)s + at, n - (size_t)at) == 0))
        fail(fv->name, "spans stop before the end", k);
    if (!wpm && n > 0 && k == 0) fail(fv->name, "no tokens for non-empty input", 0);
    char out[256];
    if (terse_detokenize(v, ids, k, out, sizeof out) < 0) fail(fv->name, terse_last_error(), -1);
    free(ids);
    free(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_vocabs) load_all();
    if (size > 1 << 16) return 0;
    for (int i = 0; i < n_vocabs; i++) check(&vocabs[i], data, size);
    return 0;
}
