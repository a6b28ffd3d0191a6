/* test_tok_hf.c - Hugging Face tokenizer import and WordPiece, against llama.cpp's golden
 * vectors.
 *
 * 1. qwen2/ (vocab.json + merges.txt + configs) and llama3.2/ (encoder.json + vocab.bpe) are
 *    imported with tok_import_hf into a GGUF in a temporary folder, loaded back with
 *    terse_vocab_load, and every case of ggml-vocab-{qwen2,llama-bpe}.gguf.inp/.out must match.
 *    Both are also rewritten as one tokenizer.json (pre-tokenizer left to guess) and imported
 *    again: same 46 cases each.
 * 2. ggml-vocab-bert-bge.gguf (WordPiece, wpm.c) against its .inp/.out; and the same
 *    vocabulary rebuilt as Hugging Face vocab.txt and tokenizer.json files, imported.
 * 3. Small hand-written folders: a tokenizer.json BPE and WordPiece import, and one hostile
 *    file per failure class (bad JSON, id out of range, duplicate id, merge of unknown tokens,
 *    missing merges file, wrong field types) that must fail with a message naming the file.
 *
 * The .inp format: each case is followed by "\n__ggml_vocab_test__\n"; the case itself is the
 * bytes in between (so a case never ends with the newline that precedes the separator).
 * The .out file has one line of space-separated ids per case, without BOS.
 */
#include "harness.h"
#include "terse.h"
#include "tok/tok.h"
#include "tok/vocab.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[256];

static void write_file(const char *dir, const char *name, const char *content);
static void remove_file(const char *dir, const char *name);

/* ------------------------------------------------------------------------------------------ */
/* Golden vectors                                                                              */

typedef struct {
    char **text;
    size_t *len;
    int n;
} cases;

static int read_cases(const char *path, cases *c) {
    char *buf;
    size_t len;
    memset(c, 0, sizeof *c);
    if (terse_read_all(path, &buf, &len)) return -1;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t ns = sizeof sep - 1;
    for (size_t at = 0; at < len;) {
        size_t e = at;
        while (e + ns <= len && memcmp(buf + e, sep, ns) != 0) e++;
        if (e + ns > len) break;  /* trailing bytes without a separator: not a case */
        c->text = realloc(c->text, (size_t)(c->n + 1) * sizeof *c->text);
        c->len = realloc(c->len, (size_t)(c->n + 1) * sizeof *c->len);
        c->text[c->n] = malloc(e - at + 1);
        memcpy(c->text[c->n], buf + at, e - at);
        c->text[c->n][e - at] = 0;
        c->len[c->n++] = e - at;
        at = e + ns;
    }
    free(buf);
    return 0;
}

static void free_cases(cases *c) {
    for (int i = 0; i < c->n; i++) free(c->text[i]);
    free(c->text);
    free(c->len);
}

/* Compare every case; returns the number that match. */
static int check_vectors(const terse_vocab *v, const char *stem, const char *name) {
    char inp[512], outp[512];
    snprintf(inp, sizeof inp, "%s/vocab/%s.inp", test_shared_dir(), stem);
    snprintf(outp, sizeof outp, "%s/vocab/%s.out", test_shared_dir(), stem);
    cases c;
    char *want_all;
    size_t want_len;
    if (read_cases(inp, &c) || terse_read_all(outp, &want_all, &want_len)) {
        CHECK(0, "%s: cannot read %s / %s", name, inp, outp);
        return 0;
    }
    int ok = 0;
    char *line = want_all;
    for (int i = 0; i < c.n; i++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        int32_t want[1024];
        int nw = 0;
        for (char *p = line; *p && nw < 1024;) {
            char *e;
            long id = strtol(p, &e, 10);
            if (e == p) break;
            want[nw++] = (int32_t)id;
            p = e;
        }
        int32_t got[4096];
        terse_span sp[4096];
        int64_t ng = terse_tokenize(v, c.text[i], c.len[i], 0, got, sp, 4096);
        int same = ng == nw;
        for (int k = 0; same && k < nw; k++) same = got[k] == want[k];
        if (same) {
            ok++;
        } else {
            fprintf(stderr, "%s case %d (%zu bytes) '", name, i, c.len[i]);
            for (size_t k = 0; k < c.len[i] && k < 80; k++) {
                unsigned char ch = (unsigned char)c.text[i][k];
                if (ch < 32 || ch == '\\') fprintf(stderr, "\\x%02x", ch);
                else fputc(ch, stderr);
            }
            fprintf(stderr, "'\n  want:");
            for (int k = 0; k < nw; k++) fprintf(stderr, " %d", want[k]);
            fprintf(stderr, "\n  got: ");
            if (ng < 0) fprintf(stderr, " error %lld: %s", (long long)ng, terse_last_error());
            for (int64_t k = 0; k < ng && k < 4096; k++) fprintf(stderr, " %d", got[k]);
            fprintf(stderr, "\n");
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    printf("%s: %d/%d golden cases match\n", name, ok, c.n);
    CHECK(ok == c.n && c.n == 46, "%s: %d/%d cases match", name, ok, c.n);
    free_cases(&c);
    free(want_all);
    return ok;
}

/* Import dir into tmp_dir/name.gguf and load it. */
static terse_vocab *import_load(const char *dir, const char *pre, const char *name) {
    gguf_writer *w = gguf_writer_new();
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, name);
    int rc = tok_import_hf(dir, pre, w);
    CHECK(rc == 0, "import %s: %s", dir, terse_last_error());
    if (rc == 0) {
        rc = gguf_writer_write(w, path);
        CHECK(rc == 0, "write %s: %s", path, terse_last_error());
    }
    gguf_writer_free(w);
    terse_vocab *v = NULL;
    if (rc == 0) {
        rc = terse_vocab_load(path, &v);
        CHECK(rc == 0, "load %s: %s", path, terse_last_error());
    }
    unlink(path);
    return v;
}

static void test_imported(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vocab/qwen2", test_shared_dir());
    terse_vocab *v = import_load(dir, "qwen2", "qwen2");
    if (v) {
        CHECK(terse_vocab_size(v) == 151646, "qwen2 size %d", terse_vocab_size(v));
        CHECK(terse_vocab_eos(v) == 151645, "qwen2 eos %d", terse_vocab_eos(v));
        CHECK(terse_vocab_bos(v) == -1, "qwen2 bos %d", terse_vocab_bos(v));
        const char *p = terse_vocab_piece(v, 151644);
        CHECK(p && !strcmp(p, "<|im_start|>"), "qwen2 151644 = %s", p ? p : "(null)");
        check_vectors(v, "ggml-vocab-qwen2.gguf", "qwen2 (imported)");
        terse_vocab_free(v);
    }
    snprintf(dir, sizeof dir, "%s/vocab/llama3.2", test_shared_dir());
    v = import_load(dir, "llama-bpe", "llama-bpe");
    if (v) {
        CHECK(terse_vocab_size(v) == 128256, "llama3 size %d", terse_vocab_size(v));
        CHECK(terse_vocab_bos(v) == 128000, "llama3 bos %d", terse_vocab_bos(v));
        const char *p = terse_vocab_piece(v, 128009);
        CHECK(p && !strcmp(p, "<|eot_id|>"), "llama3 128009 = %s", p ? p : "(null)");
        p = terse_vocab_piece(v, 128255);
        CHECK(p && !strcmp(p, "<|reserved_special_token_247|>"), "llama3 128255 = %s",
              p ? p : "(null)");
        check_vectors(v, "ggml-vocab-llama-bpe.gguf", "llama-bpe (imported)");
        /* a special token in the text is one token, BOS added with add_special */
        int32_t ids[8];
        int64_t n = terse_tokenize(v, "<|begin_of_text|>Hi", 19, 1, ids, NULL, 8);
        CHECK(n == 3 && ids[0] == 128000 && ids[1] == 128000, "llama3 specials: n=%lld",
              (long long)n);
        terse_vocab_free(v);
    }
    /* guessing the pre-tokenizer works for both */
    gguf_writer *w = gguf_writer_new();
    CHECK_OK(tok_import_hf(dir, NULL, w));
    gguf_writer_free(w);
}

/* Rewrite a vocab.json/encoder.json + merges file pair as one tokenizer.json in dir (the layout
 * Hugging Face repositories ship): pre-tokenizer Sequence[Split(regex), ByteLevel], the given
 * added tokens and post-processor (may be NULL). Returns 0 on success. */
static int write_tokenizer_json(const char *dir, const char *sub, const char *vocab_name,
                                const char *merges_name, const char *re, json_t *added,
                                json_t *post) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/%s/%s", test_shared_dir(), sub, vocab_name);
    json_t *vocab = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/vocab/%s/%s", test_shared_dir(), sub, merges_name);
    char *m;
    size_t ml;
    if (!vocab || terse_read_all(path, &m, &ml)) {
        json_decref(vocab);
        json_decref(added);
        json_decref(post);
        return -1;
    }
    json_t *merges = json_array();
    int first = 1;
    for (char *line = m; *line; first = 0) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[l - 1] = 0;   /* qwen2's file has CRLF line ends */
        if (*line && !(first && *line == '#')) json_array_append_new(merges, json_string(line));
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(m);
    json_t *tj = json_pack("{s:o,s:{s:s,s:[{s:s,s:{s:s},s:s},{s:s,s:b}]},s:{s:s},"
                           "s:{s:s,s:o,s:o}}",
                           "added_tokens", added, "pre_tokenizer", "type", "Sequence",
                           "pretokenizers", "type", "Split", "pattern", "Regex", re, "behavior",
                           "Isolated", "type", "ByteLevel", "use_regex", 0, "decoder", "type",
                           "ByteLevel", "model", "type", "BPE", "vocab", vocab, "merges", merges);
    if (tj && post) json_object_set_new(tj, "post_processor", post);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = tj && json_dump_file(tj, path, JSON_COMPACT) == 0 ? 0 : -1;
    json_decref(tj);
    return rc;
}

/* qwen2 and Llama 3 again, each through a tokenizer.json, the pre-tokenizer left to guess
 * from the Split regex (and, for Llama 3, add_bos_token from the post-processor). */
static void test_tokenizer_json(void) {
    char dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/tj", tmp_dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    json_t *added = json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b}]",
                              "id", 151643, "content", "<|endoftext|>", "special", 1,
                              "id", 151644, "content", "<|im_start|>", "special", 1,
                              "id", 151645, "content", "<|im_end|>", "special", 1);
    static const char *const qwen2_re =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
        "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    int rc = write_tokenizer_json(dir, "qwen2", "vocab.json", "merges.txt", qwen2_re, added,
                                  NULL);
    CHECK(rc == 0, "cannot write %s", path);
    terse_vocab *v = rc ? NULL : import_load(dir, NULL, "qwen2-tj");
    if (v) {
        CHECK(!strcmp(v->pre, "qwen2"), "guessed pre '%s'", v->pre);
        check_vectors(v, "ggml-vocab-qwen2.gguf", "qwen2 (tokenizer.json)");
        terse_vocab_free(v);
    }
    unlink(path);

    added = json_array();
    for (int i = 0; i < 256; i++) {
        char name[64];
        if (i == 0) snprintf(name, sizeof name, "<|begin_of_text|>");
        else if (i == 9) snprintf(name, sizeof name, "<|eot_id|>");
        else snprintf(name, sizeof name, "<|reserved_special_token_%d|>", i);
        json_array_append_new(added, json_pack("{s:i,s:s,s:b}", "id", 128000 + i, "content",
                                               name, "special", 1));
    }
    json_t *post = json_pack("{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}}]}", "type",
                             "TemplateProcessing", "single", "SpecialToken", "id",
                             "<|begin_of_text|>", "type_id", 0, "Sequence", "id", "A", "type_id",
                             0);
    static const char *const llama3_re =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}"
        "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    rc = write_tokenizer_json(dir, "llama3.2", "encoder.json", "vocab.bpe", llama3_re, added,
                              post);
    CHECK(rc == 0, "cannot write %s", path);
    write_file(dir, "tokenizer_config.json", "{\"bos_token\":\"<|begin_of_text|>\","
               "\"eos_token\":\"<|eot_id|>\"}");
    v = rc ? NULL : import_load(dir, NULL, "llama3-tj");
    if (v) {
        CHECK(!strcmp(v->pre, "llama-bpe"), "guessed pre '%s'", v->pre);
        CHECK(v->bos == 128000 && v->eos == 128009 && v->add_bos, "llama3 bos %d eos %d add %d",
              v->bos, v->eos, v->add_bos);
        check_vectors(v, "ggml-vocab-llama-bpe.gguf", "llama-bpe (tokenizer.json)");
        terse_vocab_free(v);
    }
    unlink(path);
    remove_file(dir, "tokenizer_config.json");
    rmdir(dir);
}

/* bert-bge again, from Hugging Face files rebuilt out of its GGUF: the phantom-space pieces
 * turned back into BERT's spelling ("\u2581abc" -> "abc", "abc" -> "##abc"), written once as
 * vocab.txt and once as a WordPiece tokenizer.json; each import must pass the 46 cases. */
static void test_wordpiece_import(void) {
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-bert-bge.gguf", test_shared_dir());
    gguf_file *g;
    const gguf_kv *toks;
    if (gguf_open(path, 0, &g) || gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &toks)) {
        CHECK(0, "%s: %s", path, terse_last_error());
        return;
    }
    snprintf(dir, sizeof dir, "%s/wp", tmp_dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = fopen(path, "wb");
    json_t *vocab = json_object(), *added = json_array();
    char piece[512];
    for (uint64_t i = 0; f && i < toks->n; i++) {
        gguf_str t = gguf_arr_str(toks, i);
        if (t.len >= sizeof piece - 3) t.len = sizeof piece - 3;
        if (t.len >= 3 && !memcmp(t.ptr, "\xe2\x96\x81", 3))
            snprintf(piece, sizeof piece, "%.*s", (int)t.len - 3, t.ptr + 3);
        else if (t.len && t.ptr[0] == '[' && t.ptr[t.len - 1] == ']')
            snprintf(piece, sizeof piece, "%.*s", (int)t.len, t.ptr);
        else
            snprintf(piece, sizeof piece, "##%.*s", (int)t.len, t.ptr);
        fprintf(f, "%s\n", piece);
        json_object_set_new(vocab, piece, json_integer((json_int_t)i));
        if (!strcmp(piece, "[PAD]") || !strcmp(piece, "[UNK]") || !strcmp(piece, "[CLS]") ||
            !strcmp(piece, "[SEP]") || !strcmp(piece, "[MASK]"))
            json_array_append_new(added, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)i,
                                                   "content", piece, "special", 1));
    }
    if (f) fclose(f);
    gguf_close(g);
    terse_vocab *v = import_load(dir, NULL, "bert-txt");
    if (v) {
        check_vectors(v, "ggml-vocab-bert-bge.gguf", "bert-bge (vocab.txt)");
        terse_vocab_free(v);
    }
    unlink(path);
    json_t *tj = json_pack("{s:o,s:{s:s,s:s,s:s,s:i,s:o}}", "added_tokens", added, "model",
                           "type", "WordPiece", "unk_token", "[UNK]",
                           "continuing_subword_prefix", "##", "max_input_chars_per_word", 100,
                           "vocab", vocab);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(tj && json_dump_file(tj, path, JSON_COMPACT) == 0, "cannot write %s", path);
    json_decref(tj);
    v = import_load(dir, NULL, "bert-json");
    if (v) {
        check_vectors(v, "ggml-vocab-bert-bge.gguf", "bert-bge (tokenizer.json)");
        CHECK(v->unk == 100 && v->cls == 101 && v->sep == 102, "bert specials %d %d %d", v->unk,
              v->cls, v->sep);
        terse_vocab_free(v);
    }
    unlink(path);
    rmdir(dir);
}

static void test_bert(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-bert-bge.gguf", test_shared_dir());
    terse_vocab *v;
    int rc = terse_vocab_load(path, &v);
    CHECK(rc == 0, "load %s: %s", path, terse_last_error());
    if (rc) return;
    check_vectors(v, "ggml-vocab-bert-bge.gguf", "bert-bge");
    /* spans: whitespace and dropped characters go to a neighbour; the spans tile the input */
    static const char text[] = "  Hello,\tWORLD\x01 caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd  ";
    int32_t ids[64];
    terse_span sp[64];
    int64_t n = terse_tokenize(v, text, sizeof text - 1, 0, ids, sp, 64);
    CHECK(n == 6, "bert spans: %lld tokens", (long long)n);
    int tiles = n > 0 && sp[0].begin == 0 && sp[n - 1].end == (int64_t)sizeof text - 1;
    for (int64_t i = 1; i < n; i++) tiles &= sp[i].begin == sp[i - 1].end;
    CHECK(tiles, "bert spans do not tile the input");
    /* "  Hello" | "," | "\tWORLD" | "\x01 caf\xc3\xa9" | " \xe4\xbd\xa0" | "\xe5\xa5\xbd  " */
    static const int64_t ends[6] = {7, 8, 14, 21, 25, 30};
    for (int64_t i = 0; i < n && i < 6; i++)
        CHECK(sp[i].end == ends[i], "bert span %lld ends at %lld, want %lld", (long long)i,
              (long long)sp[i].end, (long long)ends[i]);
    /* add_special: [CLS] ... [SEP] */
    n = terse_tokenize(v, "hello", 5, 1, ids, sp, 64);
    CHECK(n == 3 && ids[0] == 101 && ids[1] == 7592 && ids[2] == 102, "bert cls/sep: n=%lld",
          (long long)n);
    /* a word longer than 100 characters is [UNK] */
    char longw[256];
    memset(longw, 'a', 101);
    n = terse_tokenize(v, longw, 101, 0, ids, sp, 64);
    CHECK(n == 1 && ids[0] == 100, "bert long word: n=%lld id=%d", (long long)n, n ? ids[0] : -1);
    n = terse_tokenize(v, longw, 100, 0, ids, sp, 64);
    CHECK(n > 1 || (n == 1 && ids[0] != 100), "bert 100-char word is not [UNK]");
    terse_vocab_free(v);
}

/* ------------------------------------------------------------------------------------------ */
/* Small folders                                                                               */

static void write_file(const char *dir, const char *name, const char *content) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fputs(content, f);
    fclose(f);
}

static void remove_file(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

static const char *const all_names[] = {"tokenizer.json", "vocab.json", "merges.txt",
                                        "encoder.json", "vocab.bpe", "vocab.txt",
                                        "added_tokens.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "config.json"};

static void clear_dir(const char *dir) {
    for (size_t i = 0; i < sizeof all_names / sizeof *all_names; i++)
        remove_file(dir, all_names[i]);
}

/* Import dir, write, reopen the GGUF; returns the gguf_file (caller closes) or NULL. */
static gguf_file *import_reopen(const char *dir, const char *pre) {
    gguf_writer *w = gguf_writer_new();
    char path[512];
    snprintf(path, sizeof path, "%s/small.gguf", tmp_dir);
    int rc = tok_import_hf(dir, pre, w);
    CHECK(rc == 0, "import %s: %s", dir, terse_last_error());
    if (!rc) CHECK_OK(rc = gguf_writer_write(w, path));
    gguf_writer_free(w);
    gguf_file *g = NULL;
    if (!rc) CHECK_OK(gguf_open(path, 0, &g));
    unlink(path);
    return g;
}

static int piece_is(const gguf_file *g, uint64_t id, const char *want) {
    const gguf_kv *kv;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &kv) || id >= kv->n) return 0;
    return gguf_str_eq(gguf_arr_str(kv, id), want);
}

static void test_small_folders(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/hf", tmp_dir);
    mkdir(dir, 0700);

    /* tokenizer.json, byte-level BPE, pair-style merges, a hole at id 5, added special */
    write_file(dir, "tokenizer.json",
               "{\"added_tokens\":[{\"id\":6,\"content\":\"<|end|>\",\"special\":true}],"
               "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
               "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,"
               "\"\\u0120ab\":4},\"merges\":[\"a b\",[\"\\u0120\",\"ab\"]]}}");
    write_file(dir, "tokenizer_config.json", "{\"eos_token\":\"<|end|>\",\"add_bos_token\":false}");
    gguf_file *g = import_reopen(dir, "gpt-2");
    if (g) {
        const gguf_kv *kv;
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &kv));
        CHECK(kv && kv->n == 2 && gguf_str_eq(gguf_arr_str(kv, 1), "\xc4\xa0 ab"), "merges");
        CHECK(piece_is(g, 5, "[PAD5]") && piece_is(g, 6, "<|end|>"), "hole/added pieces");
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &kv));
        CHECK(kv && kv->n == 7 && gguf_arr_i32(kv, 5) == 5 && gguf_arr_i32(kv, 6) == 3 &&
              gguf_arr_i32(kv, 0) == 1, "token types");
        uint32_t eos = 0;
        CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos));
        CHECK(eos == 6, "eos %u", eos);
        gguf_close(g);
    }
    clear_dir(dir);

    /* OpenAI GPT-2 layout: <|endoftext|> becomes bos = eos, control */
    write_file(dir, "encoder.json", "{\"a\":0,\"b\":1,\"ab\":2,\"<|endoftext|>\":3}");
    write_file(dir, "vocab.bpe", "#version: 0.2\r\na b\r\n");
    g = import_reopen(dir, "gpt-2");
    if (g) {
        uint32_t bos = 0, eos = 0;
        const gguf_kv *kv;
        CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos));
        CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos));
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &kv));
        CHECK(bos == 3 && eos == 3 && kv && gguf_arr_i32(kv, 3) == 3, "gpt-2 endoftext %u %u",
              bos, eos);
        gguf_close(g);
    }
    clear_dir(dir);

    /* tokenizer.json WordPiece -> phantom-space pieces */
    write_file(dir, "tokenizer.json",
               "{\"added_tokens\":[{\"id\":0,\"content\":\"[PAD]\",\"special\":true},"
               "{\"id\":1,\"content\":\"[UNK]\",\"special\":true}],"
               "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
               "\"continuing_subword_prefix\":\"##\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,"
               "\"hello\":2,\"##lo\":3,\"[CLS]\":4,\"[SEP]\":5}}}");
    g = import_reopen(dir, NULL);
    if (g) {
        gguf_str s;
        CHECK_OK(gguf_get_str(g, "tokenizer.ggml.model", &s));
        CHECK(gguf_str_eq(s, "bert"), "model %.*s", (int)s.len, s.ptr);
        CHECK(piece_is(g, 2, "\xe2\x96\x81hello") && piece_is(g, 3, "lo") &&
              piece_is(g, 1, "[UNK]"), "phantom pieces");
        uint32_t id = 0;
        CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &id));
        CHECK(id == 1, "unk %u", id);
        CHECK_OK(gguf_get_u32(g, "tokenizer.ggml.cls_token_id", &id));
        CHECK(id == 4, "cls %u", id);
        gguf_close(g);
    }
    clear_dir(dir);

    /* hostile folders: each must fail and name the file */
    static const struct {
        const char *file, *content, *file2, *content2, *needle;
    } bad[] = {
        {"vocab.json", "{\"a\":0,", "merges.txt", "", "vocab.json"},
        {"vocab.json", "{\"a\":0,\"b\":99999999}", "merges.txt", "", "out of range"},
        {"vocab.json", "{\"a\":0,\"b\":-1}", "merges.txt", "", "out of range"},
        {"vocab.json", "{\"a\":0,\"b\":0}", "merges.txt", "", "id 0"},
        {"vocab.json", "{\"a\":0,\"b\":\"1\"}", "merges.txt", "", "not an integer"},
        {"vocab.json", "{\"a\":0,\"a\":1}", "merges.txt", "", "vocab.json"},
        {"vocab.json", "[1,2]", "merges.txt", "", "expected an object"},
        {"vocab.json", "{\"a\":0,\"b\":1}", "merges.txt", "#version: 0.2\na c\n", "merges.txt"},
        {"vocab.json", "{\"a\":0,\"b\":1}", "merges.txt", "a b\n", "merged token"},
        {"vocab.json", "{\"a\":0,\"b\":1}", "merges.txt", "ab\n", "line 1"},
        {"vocab.json", "{\"a\":0}", NULL, NULL, "merges.txt"},
        {"vocab.json", "{\"a\":0,\"b\":1}", "added_tokens.json", "{\"<x>\":1}", "id 1"},
        {"vocab.json", "{\"a\":0,\"b\":1}", "merges.txt", "a\xff b\n", "merge"},
        {"tokenizer.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", NULL, NULL,
         "[piece, score]"},
        {"tokenizer.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],"
         "\"byte_fallback\":true}}", NULL, NULL, "SentencePiece"},
        {"tokenizer.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[7]},"
         "\"decoder\":{\"type\":\"ByteLevel\"}}", NULL, NULL, "merges[0]"},
        {"tokenizer.json", "{\"model\":3}", NULL, NULL, "model"},
        {"tokenizer.json", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}},"
         "\"added_tokens\":[{\"id\":\"x\"}]}", NULL, NULL, "added_tokens[0]"},
        {"tokenizer_config.json", "{\"eos_token\":\"<nope>\"}", NULL, NULL, "eos_token"},
        {"vocab.txt", "a\nb\xff\n", NULL, NULL, "line 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        clear_dir(dir);
        write_file(dir, bad[i].file, bad[i].content);
        if (bad[i].file2) write_file(dir, bad[i].file2, bad[i].content2);
        if (bad[i].file2 && !strcmp(bad[i].file2, "added_tokens.json"))
            write_file(dir, "merges.txt", "");
        if (!strcmp(bad[i].file, "tokenizer_config.json"))   /* needs a vocabulary too */
            write_file(dir, "vocab.txt", "[UNK]\nx\n");
        gguf_writer *w = gguf_writer_new();
        int rc = tok_import_hf(dir, "gpt-2", w);
        gguf_writer_free(w);
        const char *msg = terse_last_error();
        CHECK(rc < 0 && strstr(msg, bad[i].needle), "bad case %zu (%s): rc=%d msg='%s'", i,
              bad[i].needle, rc, msg);
    }
    clear_dir(dir);
    gguf_writer *w = gguf_writer_new();
    CHECK(tok_import_hf(dir, NULL, w) == TERSE_ERR_IO, "empty folder");
    gguf_writer_free(w);
    rmdir(dir);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/terse_tok_hf_XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    test_small_folders();
    test_imported();
    test_tokenizer_json();
    test_bert();
    test_wordpiece_import();
    rmdir(tmp_dir);
    return test_summary("tok_hf");
}
