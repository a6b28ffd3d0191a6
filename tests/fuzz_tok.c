/* fuzz_tok.c - libFuzzer target: tokenize the input with every vocabulary and check the spans.
 *
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). Run from the repository root:
 *     ./build/fuzz/fuzz_tok -max_total_time=60 [corpus_dir]
 * TERSE_FUZZ_VOCAB=<name> restricts the run to one vocabulary: gpt-2, llama-spm, phi-3,
 * starcoder, deepseek-coder, bert-bge (the ../shared/vocab GGUFs), qwen2, llama-bpe (imported
 * from the Hugging Face files at start-up), cl100k (the .tiktoken file). TERSE_SHARED overrides
 * ../shared. TERSE_FUZZ_VOCAB=hf-import fuzzes tok_import_hf instead (see fuzz_import).
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

/* content: also compare byte-level tokens with their spans (off for the tiny imported
 * vocabularies of hf-import, which lack bytes: their gaps join a neighbour's span). */
static void check(const fz_vocab *fv, const uint8_t *s, size_t n, int content) {
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
        if (!content || !byte_level || id == v->unk) continue;
        if (sl == 1 && byte_char_piece(v, id, ss[0])) continue;
        const char *p = v->raw && v->raw[id] ? v->raw[id] : v->piece[id];
        uint32_t l = v->raw && v->raw[id] ? v->raw_len[id] : v->piece_len[id];
        if (l != sl || memcmp(p, ss, sl)) fail(fv->name, "token bytes differ from span", i);
    }
    /* (a vocabulary without some bytes and without <unk> may give no token at all) */
    if (at != (int64_t)n && !(!content && k == 0) &&
        !(wpm && terse_token_count(v, (const char *)s + at, n - (size_t)at) == 0))
        fail(fv->name, "spans stop before the end", k);
    if (content && !wpm && n > 0 && k == 0) fail(fv->name, "no tokens for non-empty input", 0);
    char out[256];
    if (terse_detokenize(v, ids, k, out, sizeof out) < 0) fail(fv->name, terse_last_error(), -1);
    free(ids);
    free(sp);
}

/* ------------------------------------------------------------------------------------------ */
/* TERSE_FUZZ_VOCAB=hf-import: the input is a Hugging Face tokenizer file. The first byte picks
 * which one (the others are small valid files); the import must fail cleanly or give a GGUF
 * that loads and tokenizes with tiling spans. */

static char hf_dir[256];

static void put_file(const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", hf_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void del_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", hf_dir, name);
    unlink(path);
}

static void clear_hf_dir(void) {
    static const char *const all[] = {"tokenizer.json", "vocab.json", "merges.txt", "vocab.txt",
                                      "added_tokens.json", "tokenizer_config.json",
                                      "encoder.json", "vocab.bpe", "config.json", "out.gguf"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) del_file(all[i]);
}

static void remove_hf_dir(void) {
    clear_hf_dir();
    rmdir(hf_dir);
}

static void fuzz_import(const uint8_t *data, size_t size) {
    if (!hf_dir[0]) {
        snprintf(hf_dir, sizeof hf_dir, "/tmp/fuzz_tok_hf_XXXXXX");
        if (!mkdtemp(hf_dir)) abort();
        atexit(remove_hf_dir);
    }
    clear_hf_dir();
    if (size == 0) return;
    static const char vocab[] = "{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,\"\\u0120ab\":4}";
    static const char merges[] = "#version: 0.2\na b\n\u0120 ab\n";
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 6) {
    case 0: put_file("tokenizer.json", p, n); break;
    case 1: put_file("vocab.json", p, n); put_file("merges.txt", merges, sizeof merges - 1); break;
    case 2: put_file("vocab.json", vocab, sizeof vocab - 1); put_file("merges.txt", p, n); break;
    case 3: put_file("vocab.txt", p, n); break;
    case 4:
        put_file("vocab.json", vocab, sizeof vocab - 1);
        put_file("merges.txt", merges, sizeof merges - 1);
        put_file("tokenizer_config.json", p, n);
        break;
    default:
        put_file("vocab.json", vocab, sizeof vocab - 1);
        put_file("merges.txt", merges, sizeof merges - 1);
        put_file(data[0] & 8 ? "added_tokens.json" : "config.json", p, n);
        break;
    }
    gguf_writer *w = gguf_writer_new();
    int rc = tok_import_hf(hf_dir, data[0] & 16 ? "gpt-2" : NULL, w);
    if (rc > 0 || (rc < 0 && !terse_last_error()[0])) fail("hf-import", "no message", rc);
    if (rc == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/out.gguf", hf_dir);
        if (gguf_writer_write(w, path)) fail("hf-import", terse_last_error(), -1);
        terse_vocab *v = NULL;
        if (terse_vocab_load(path, &v) == 0) {
            fz_vocab fv = {"hf-import", v};
            static const uint8_t text[] = "ab abab b a\xff \xe4\xb8\xad [UNK] <|x|>";
            check(&fv, text, sizeof text - 1, 0);
            check(&fv, p, n < 512 ? n : 512, 0);
            terse_vocab_free(v);
        }
        unlink(path);
    }
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *which = getenv("TERSE_FUZZ_VOCAB");
    if (which && !strcmp(which, "hf-import")) {
        fuzz_import(data, size);
        return 0;
    }
    if (!n_vocabs) load_all();
    if (size > 1 << 16) return 0;
    for (int i = 0; i < n_vocabs; i++) check(&vocabs[i], data, size, 1);
    return 0;
}
