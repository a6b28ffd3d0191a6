/* test_llamacpp_compat.c - files terse writes follow llama.cpp's loader conventions, checked
 * key by key and tensor by tensor against what llama.cpp's loader (llama-model.cpp
 * load_hparams / load_tensors, llama-vocab.cpp load, llama-quant.cpp; read at commit c392e50)
 * requires for the three architectures terse writes:
 *   keys: general.architecture; <arch>.context_length, .embedding_length, .block_count,
 *         .feed_forward_length, .attention.head_count (u32); llama/qwen2:
 *         .attention.layer_norm_rms_epsilon (f32), .attention.head_count_kv, .rope.freq_base,
 *         .rope.dimension_count (optional in llama.cpp, written by terse); gpt2:
 *         .attention.layer_norm_epsilon (f32); general.file_type (u32, llama_ftype numbering,
 *         matching the tensors: 0 F32 ... 15 Q4_K_M); general.quantization_version = 2 for
 *         quantised files; tokenizer.ggml.model (string; "none" when there is no vocabulary);
 *         for "gpt2" vocabularies tokenizer.ggml.pre (one of the names llama.cpp knows, e.g.
 *         "gpt-2", not "gpt2"), tokenizer.ggml.tokens (string array), tokenizer.ggml.merges
 *         (string array, may be empty), tokenizer.ggml.token_type (i32 array, one per token).
 *   tensors (shapes in GGUF order [ne0, ne1]): token_embd [C, V]; output_norm [C];
 *         output [C, V] (required for gpt2; llama/qwen2 may tie); per layer attn_norm [C],
 *         ffn_norm [C]; llama/qwen2 attn_q [C, C], attn_k [C, KV], attn_v [C, KV],
 *         attn_output [C, C], ffn_gate [C, F], ffn_up [C, F], ffn_down [F, C]; qwen2 also
 *         attn_q/k/v.bias [C] [KV] [KV]; gpt2 position_embd [C, N], output_norm.bias,
 *         attn_norm.bias, ffn_norm.bias [C], attn_qkv [C, 3C] + bias [3C], attn_output [C, C]
 *         + bias [C], ffn_up [C, F] + bias [F], ffn_down [F, C] + bias [C]; norms and biases F32.
 * Files checked: terse_write_random_model for each architecture in F32, Q8_0, Q6_K, Q4_K_M,
 * Q4_0, and the Hugging Face golden folders converted to F16 and Q4_K_M.
 * (Run by hand, outside the tests: llama.cpp c392e50 loads every one of these files and its
 * log-probs agree with terse's to 5e-6 on F32 llama/qwen2 files, see the quant report.)
 */
#include <sys/stat.h>

#include "gguf/gguf.h"
#include "harness.h"
#include "nn/quant.h"
#include "terse.h"

static const char *LCPP_PRE[] = {
    "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "deepseek-llm", "deepseek-coder",
    "deepseek-v3", "falcon", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de",
    "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe",
    "refact", "command-r", "qwen2", "deepseek-r1-qwen", "stablelm2", "olmo", "dbrx", "smaug-bpe",
    "poro-chat", "chatglm-bpe", "viking", "jais", "tekken", "smollm", "codeshell", "bloom",
    "gpt3-finnish", "exaone", "chameleon", "minerva-7b", "megrez"};

static int64_t u32_key(const gguf_file *g, const char *label, const char *arch, const char *key,
                       int required) {
    char k[160];
    snprintf(k, sizeof k, arch ? "%s.%s" : "%s%s", arch ? arch : "", key);
    const gguf_kv *kv = gguf_get(g, k);
    if (!kv) {
        CHECK(!required, "%s: key %s missing", label, k);
        return -1;
    }
    uint32_t v = 0;
    CHECK(kv->type == GGUF_UINT32 && gguf_get_u32(g, k, &v) == 0, "%s: %s is not u32", label, k);
    return v;
}

static void f32_key(const gguf_file *g, const char *label, const char *arch, const char *key) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    const gguf_kv *kv = gguf_get(g, k);
    CHECK(kv && kv->type == GGUF_FLOAT32, "%s: key %s missing or not f32", label, k);
}

static void tensor(const gguf_file *g, const char *label, const char *name, int64_t ne0,
                   int64_t ne1, int vector) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    CHECK(t != NULL, "%s: tensor %s missing", label, name);
    if (!t) return;
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1 &&
          t->n_dims == (ne1 == 1 ? 1u : 2u), "%s: %s shape [%lld, %lld] (%u dims), want [%lld, %lld]",
          label, name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims, (long long)ne0,
          (long long)ne1);
    if (vector) CHECK(t->type == GGML_F32, "%s: %s is %s, want F32", label, name,
                      gguf_type_name(t->type));
    CHECK(t->offset % g->alignment == 0, "%s: %s misaligned", label, name);
}

static void check_file(const char *path, const char *label, uint32_t want_ftype) {
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, 1, &g));
    if (!g) return;
    gguf_str a;
    CHECK_OK(gguf_get_str(g, "general.architecture", &a));
    char arch[16] = "";
    snprintf(arch, sizeof arch, "%.*s", (int)a.len, a.ptr);
    int gpt2 = !strcmp(arch, "gpt2"), qwen2 = !strcmp(arch, "qwen2");
    CHECK(gpt2 || qwen2 || !strcmp(arch, "llama"), "%s: arch %s", label, arch);
    int64_t N = u32_key(g, label, arch, "context_length", 1);
    int64_t C = u32_key(g, label, arch, "embedding_length", 1);
    int64_t L = u32_key(g, label, arch, "block_count", 1);
    int64_t F = u32_key(g, label, arch, "feed_forward_length", 1);
    int64_t H = u32_key(g, label, arch, "attention.head_count", 1);
    int64_t Hkv = H;
    if (gpt2) {
        f32_key(g, label, arch, "attention.layer_norm_epsilon");
    } else {
        f32_key(g, label, arch, "attention.layer_norm_rms_epsilon");
        f32_key(g, label, arch, "rope.freq_base");
        Hkv = u32_key(g, label, arch, "attention.head_count_kv", 1);
        CHECK(u32_key(g, label, arch, "rope.dimension_count", 1) == C / H, "%s: rope dims", label);
    }
    int64_t ft = u32_key(g, label, NULL, "general.file_type", 1);
    CHECK(ft == (int64_t)want_ftype, "%s: general.file_type %lld, want %u", label, (long long)ft,
          want_ftype);
    if (want_ftype > 1 && want_ftype != 32)
        CHECK(u32_key(g, label, NULL, "general.quantization_version", 1) == 2, "%s: qversion", label);

    /* vocabulary */
    gguf_str model = {"", 0};
    CHECK(gguf_get_str(g, "tokenizer.ggml.model", &model) == 0, "%s: tokenizer.ggml.model", label);
    int64_t V = gguf_find_tensor(g, "token_embd.weight") ? gguf_find_tensor(g, "token_embd.weight")->ne[1] : 0;
    if (gguf_str_eq(model, "gpt2")) {
        gguf_str pre = {"", 0};
        CHECK(gguf_get_str(g, "tokenizer.ggml.pre", &pre) == 0, "%s: tokenizer.ggml.pre", label);
        int known = 0;
        for (size_t i = 0; i < sizeof LCPP_PRE / sizeof LCPP_PRE[0]; i++) known |= gguf_str_eq(pre, LCPP_PRE[i]);
        CHECK(known, "%s: tokenizer.ggml.pre '%.*s' unknown to llama.cpp", label, (int)pre.len, pre.ptr);
        const gguf_kv *kv = NULL;
        CHECK(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &kv) == 0, "%s: tokens", label);
        CHECK(gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING, &kv) == 0, "%s: merges", label);
        if (gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32, &kv) == 0) {
            const gguf_kv *tk = NULL;
            gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING, &tk);
            CHECK(tk && kv->n == tk->n, "%s: token_type count", label);
        }
    } else {
        CHECK(gguf_str_eq(model, "none") || gguf_str_eq(model, "llama") || gguf_str_eq(model, "bert"),
              "%s: tokenizer.ggml.model '%.*s'", label, (int)model.len, model.ptr);
    }

    /* tensors */
    const int64_t KV = C / H * Hkv;
    char n[96];
    tensor(g, label, "token_embd.weight", C, V, 0);
    tensor(g, label, "output_norm.weight", C, 1, 1);
    if (gpt2 || gguf_find_tensor(g, "output.weight")) tensor(g, label, "output.weight", C, V, 0);
    if (gpt2) {
        tensor(g, label, "position_embd.weight", C, N, 0);
        tensor(g, label, "output_norm.bias", C, 1, 1);
    }
#define T(fmt, a, b, v) (snprintf(n, sizeof n, "blk.%d." fmt, (int)l), tensor(g, label, n, a, b, v))
    for (int64_t l = 0; l < L; l++) {
        T("attn_norm.weight", C, 1, 1);
        T("ffn_norm.weight", C, 1, 1);
        T("attn_output.weight", C, C, 0);
        T("ffn_up.weight", C, F, 0);
        T("ffn_down.weight", F, C, 0);
        if (gpt2) {
            T("attn_norm.bias", C, 1, 1);
            T("ffn_norm.bias", C, 1, 1);
            T("attn_qkv.weight", C, 3 * C, 0);
            T("attn_qkv.bias", 3 * C, 1, 1);
            T("attn_output.bias", C, 1, 1);
            T("ffn_up.bias", F, 1, 1);
            T("ffn_down.bias", C, 1, 1);
        } else {
            T("attn_q.weight", C, C, 0);
            T("attn_k.weight", C, KV, 0);
            T("attn_v.weight", C, KV, 0);
            T("ffn_gate.weight", C, F, 0);
            if (qwen2) {
                T("attn_q.bias", C, 1, 1);
                T("attn_k.bias", KV, 1, 1);
                T("attn_v.bias", KV, 1, 1);
            }
        }
    }
#undef T
    gguf_close(g);
}

int main(void) {
    char path[512];
    const char *archs[] = {"gpt2", "llama", "qwen2"};
    const terse_type types[] = {TERSE_TYPE_F32, TERSE_TYPE_Q8_0, TERSE_TYPE_Q6_K,
                                TERSE_TYPE_Q4_K_M, TERSE_TYPE_Q4_0};
    const uint32_t ftypes[] = {0, 7, 18, 15, 2};
    const char *tnames[] = {"F32", "Q8_0", "Q6_K", "Q4_K_M", "Q4_0"};
    snprintf(path, sizeof path, "%s", test_tmp_path("compat.gguf"));
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < 5; t++) {
            terse_random_params rp = {archs[a], 320, 64, 256, 2, 4, a == 0 ? 4 : 2, 512, types[t], 3, 0, 0};
            CHECK_OK(terse_write_random_model(path, &rp));
            char label[64];
            snprintf(label, sizeof label, "random %s %s", archs[a], tnames[t]);
            check_file(path, label, ftypes[t]);
        }
    for (int a = 0; a < 3; a++) {
        char dir[512];
        struct stat st;
        snprintf(dir, sizeof dir, "tests/golden/%s", archs[a]);
        if (stat(dir, &st) != 0) continue;
        const terse_type ct[] = {TERSE_TYPE_F16, TERSE_TYPE_Q4_K_M};
        const uint32_t cf[] = {1, 15};
        for (int t = 0; t < 2; t++) {
            CHECK_OK(terse_convert_hf(dir, path, ct[t]));
            char label[64];
            snprintf(label, sizeof label, "hf %s %s", archs[a], t ? "Q4_K_M" : "F16");
            check_file(path, label, cf[t]);
        }
    }
    unlink(path);
    return test_summary("llamacpp_compat");
}
