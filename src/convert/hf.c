/* hf.c - Hugging Face model folders (config.json + *.safetensors + tokenizer files) -> GGUF
 * with llama.cpp's names and conventions, for LlamaForCausalLM (and MistralForCausalLM, the
 * same layout), Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel, PhiForCausalLM (phi2),
 * Phi3ForCausalLM, GemmaForCausalLM and Gemma2ForCausalLM.
 *
 * What changes on the way:
 *   - names: model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, and so on
 *     (the tables below);
 *   - llama q/k rows: HF stores each head's rotary pairs as (x[i], x[i + D/2]) ("rotate
 *     half"); llama.cpp's `llama` layout rotates adjacent pairs (x[2i], x[2i+1]), so the rows
 *     of each head are reordered from (2, D/2) to (D/2, 2), llama.cpp's permute(); k uses
 *     n_head_kv heads. qwen2 keeps the HF order (llama.cpp runs it in NEOX mode);
 *   - GPT-2's Conv1D weights are stored (in, out) and are transposed to (out, in);
 *   - Gemma's RMSNorm multiplies by (1 + w): the 1 is added to the stored weights (llama.cpp's
 *     convention), so the runtime's plain RMSNorm computes the same;
 *   - Llama 3 rope scaling becomes the rope_freqs tensor (per-frequency divisors, as llama.cpp
 *     writes it), linear scaling the rope.scaling.* keys; Mistral's and Gemma 2's sliding
 *     window, Gemma 2's soft-caps and query_pre_attn_scalar go to their llama.cpp keys;
 *   - a tied output projection (tie_word_embeddings, or no lm_head.weight) is not written
 *     (the runtime uses token_embd), except for gpt2, whose llama.cpp loader requires
 *     output.weight: there it is a copy of the embedding;
 *   - hyperparameters go to the standard <arch>.* keys; the tokenizer files, when present,
 *     go through tok_import_hf into tokenizer.ggml.*.
 * Every tensor's shape is checked against config.json, and a tensor this converter does not
 * know (q_norm, MoE experts, ...) is an error rather than silently dropped.
 *
 * Not handled: yarn/longrope/dynamic rope scaling, Qwen2/Qwen3's use_sliding_window, Phi's
 * qk_layernorm, dtypes other than F32/F16/BF16, big-endian hosts. All converted tensors are
 * held in memory until the file is written.
 */
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "tok/tok.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum {
    ARCH_LLAMA, ARCH_QWEN2, ARCH_GPT2, ARCH_PHI2, ARCH_PHI3, ARCH_GEMMA, ARCH_GEMMA2, ARCH_QWEN3
} hf_arch;

typedef enum { ROPE_SCALE_NONE, ROPE_SCALE_LINEAR, ROPE_SCALE_LLAMA3 } rope_scale;

typedef struct {
    const struct hf_arch_desc *desc; /* the row of hf_archs */
    hf_arch arch;
    const char *gguf_arch;     /* "llama", "qwen2", "gpt2", "phi2", ... */
    const char *pre;           /* pre-tokenizer name for tok_import_hf (NULL = guess) */
    int64_t n_vocab, n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    double rope_theta, norm_eps;
    int tied;
    rope_scale scale;          /* rope scaling and its parameters */
    double factor, low_freq, high_freq;
    int64_t orig_ctx;
    int64_t swa;               /* sliding window, 0 = none */
    double attn_softcap, final_softcap, attn_scale; /* 0 = none / default */
    char name[256];
} hf_config;

/* ---------------------------------------------------------------------------------------- */
/* Tensor tables                                                                              */

/* Dimensions a shape is written in. */
typedef enum { D_NONE, D_V, D_C, D_Q, D_KV, D_F, D_3C, D_POS, D_HD, D_QKV, D_2F } dim_kind;
/* What happens to a tensor on the way (T_PLUS1: Gemma's norm weights, w -> 1 + w). */
typedef enum { T_COPY, T_PERM_Q, T_PERM_K, T_TRANSPOSE, T_PLUS1 } transform;

typedef struct {
    const char *hf;       /* HF name after the prefix; %d = layer */
    const char *gguf;     /* GGUF name; %d = layer */
    dim_kind rows, cols;  /* HF shape: (rows, cols), or (rows) when cols == D_NONE */
    transform tf;
    int optional;
} tensor_map;

static const tensor_map llama_embd[] = {
    {"model.embed_tokens.weight", "token_embd.weight", D_V, D_C, T_COPY, 0},
};
static const tensor_map llama_final[] = {
    {"model.norm.weight", "output_norm.weight", D_C, D_NONE, T_COPY, 0},
};
static const tensor_map llama_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_PERM_Q, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_PERM_K, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", D_Q, D_NONE, T_PERM_Q, 1},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", D_KV, D_NONE, T_PERM_K, 1},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", D_KV, D_NONE, T_COPY, 1},
    {"model.layers.%d.self_attn.o_proj.bias", "blk.%d.attn_output.bias", D_C, D_NONE, T_COPY, 1},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
};
/* qwen2: llama's names, no permutation, q/k/v biases required. */
static const tensor_map qwen2_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", D_Q, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", D_KV, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", D_KV, D_NONE, T_COPY, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
};
/* qwen3: qwen2's names, biases optional, per-head q/k norms. */
static const tensor_map qwen3_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", D_Q, D_NONE, T_COPY, 1},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", D_KV, D_NONE, T_COPY, 1},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", D_KV, D_NONE, T_COPY, 1},
    {"model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", D_HD, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", D_HD, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
};
/* phi2 (PhiForCausalLM): LayerNorm with biases, q/k/v/dense with biases, fc1/fc2, no
 * ffn_norm (attention and MLP share input_layernorm); NEOX rotary, so no permutation. */
static const tensor_map phi2_final[] = {
    {"model.final_layernorm.weight", "output_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.final_layernorm.bias", "output_norm.bias", D_C, D_NONE, T_COPY, 0},
};
static const tensor_map phi2_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.input_layernorm.bias", "blk.%d.attn_norm.bias", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", D_Q, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", D_KV, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", D_KV, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.dense.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.self_attn.dense.bias", "blk.%d.attn_output.bias", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.fc1.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.fc1.bias", "blk.%d.ffn_up.bias", D_F, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.fc2.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
    {"model.layers.%d.mlp.fc2.bias", "blk.%d.ffn_down.bias", D_C, D_NONE, T_COPY, 0},
};
/* phi3: fused qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up), kept fused. */
static const tensor_map phi3_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.self_attn.qkv_proj.weight", "blk.%d.attn_qkv.weight", D_QKV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"model.layers.%d.mlp.gate_up_proj.weight", "blk.%d.ffn_up.weight", D_2F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
};
/* gemma: llama's names, no permutation, norm weights + 1. */
static const tensor_map gemma_final[] = {
    {"model.norm.weight", "output_norm.weight", D_C, D_NONE, T_PLUS1, 0},
};
static const tensor_map gemma_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_PLUS1, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_PLUS1, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
};
/* gemma2: gemma + post norms; its post_attention_layernorm is the post-attention norm and
 * pre_feedforward_layernorm the ffn_norm. */
static const tensor_map gemma2_layer[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_PLUS1, 0},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", D_Q, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", D_KV, D_C, T_COPY, 0},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", D_C, D_Q, T_COPY, 0},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight", D_C, D_NONE, T_PLUS1, 0},
    {"model.layers.%d.pre_feedforward_layernorm.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_PLUS1, 0},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", D_F, D_C, T_COPY, 0},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", D_C, D_F, T_COPY, 0},
    {"model.layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight", D_C, D_NONE, T_PLUS1, 0},
};
/* gpt2: names relative to the transformer (prefix "transformer." or none). */
static const tensor_map gpt2_embd[] = {
    {"wte.weight", "token_embd.weight", D_V, D_C, T_COPY, 0},
    {"wpe.weight", "position_embd.weight", D_POS, D_C, T_COPY, 0},
};
static const tensor_map gpt2_layer[] = {
    {"h.%d.ln_1.weight", "blk.%d.attn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"h.%d.ln_1.bias", "blk.%d.attn_norm.bias", D_C, D_NONE, T_COPY, 0},
    {"h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight", D_C, D_3C, T_TRANSPOSE, 0},
    {"h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias", D_3C, D_NONE, T_COPY, 0},
    {"h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight", D_C, D_C, T_TRANSPOSE, 0},
    {"h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias", D_C, D_NONE, T_COPY, 0},
    {"h.%d.ln_2.weight", "blk.%d.ffn_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"h.%d.ln_2.bias", "blk.%d.ffn_norm.bias", D_C, D_NONE, T_COPY, 0},
    {"h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight", D_C, D_F, T_TRANSPOSE, 0},
    {"h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias", D_F, D_NONE, T_COPY, 0},
    {"h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight", D_F, D_C, T_TRANSPOSE, 0},
    {"h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias", D_C, D_NONE, T_COPY, 0},
};
static const tensor_map gpt2_final[] = {
    {"ln_f.weight", "output_norm.weight", D_C, D_NONE, T_COPY, 0},
    {"ln_f.bias", "output_norm.bias", D_C, D_NONE, T_COPY, 0},
};


#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MAP(t) t, N_OF(t)

/* One row per architecture config.json may name ("architectures"[0], or "model_type"): its
 * GGUF name and pre-tokenizer, and its tensors: those before the layers, each layer's, those
 * after (the output projection is handled by move_all: lm_head.weight or tied). */
typedef struct hf_arch_desc {
    const char *cls, *model_type, *gguf, *pre;
    hf_arch arch;
    const tensor_map *embd;   /* before the layers; embd[0] is the embedding */
    size_t n_embd;
    const tensor_map *layer;  /* each layer's (%d = layer) */
    size_t n_layer;
    const tensor_map *final;  /* after the layers */
    size_t n_final;
    const char *prefix;   /* names may carry this prefix (gpt2: "transformer.") */
    int head_bias;        /* lm_head.bias -> output.bias (phi2) */
    int head_copy;        /* a tied head is written as a copy (llama.cpp's gpt2 loader) */
} hf_arch_desc;

static const hf_arch_desc hf_archs[] = {
    {"LlamaForCausalLM", "llama", "llama", NULL, ARCH_LLAMA, MAP(llama_embd), MAP(llama_layer), MAP(llama_final), NULL, 0, 0},
    {"MistralForCausalLM", "mistral", "llama", NULL, ARCH_LLAMA, MAP(llama_embd), MAP(llama_layer), MAP(llama_final), NULL, 0, 0},
    {"Qwen2ForCausalLM", "qwen2", "qwen2", "qwen2", ARCH_QWEN2, MAP(llama_embd), MAP(qwen2_layer), MAP(llama_final), NULL, 0, 0},
    {"Qwen3ForCausalLM", "qwen3", "qwen3", "qwen2", ARCH_QWEN3, MAP(llama_embd), MAP(qwen3_layer), MAP(llama_final), NULL, 0, 0},
    {"GPT2LMHeadModel", "gpt2", "gpt2", "gpt-2", ARCH_GPT2, MAP(gpt2_embd), MAP(gpt2_layer), MAP(gpt2_final), "transformer.", 0, 1},
    {"PhiForCausalLM", "phi", "phi2", "phi-2", ARCH_PHI2, MAP(llama_embd), MAP(phi2_layer), MAP(phi2_final), NULL, 1, 0},
    {"Phi3ForCausalLM", "phi3", "phi3", NULL, ARCH_PHI3, MAP(llama_embd), MAP(phi3_layer), MAP(llama_final), NULL, 0, 0},
    {"GemmaForCausalLM", "gemma", "gemma", NULL, ARCH_GEMMA, MAP(llama_embd), MAP(gemma_layer), MAP(gemma_final), NULL, 0, 0},
    {"Gemma2ForCausalLM", "gemma2", "gemma2", NULL, ARCH_GEMMA2, MAP(llama_embd), MAP(gemma2_layer), MAP(gemma_final), NULL, 0, 0},
};

/* ---------------------------------------------------------------------------------------- */
/* config.json                                                                                */

/* The value v as JSON text (for messages), cut to fit buf. */
static const char *cfg_show(const json_t *v, char *buf, size_t cap) {
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, cap, "%s", t ? t : "?");
    free(t);
    return buf;
}

int conv_cfg_int(json_t *root, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return terse_err(TERSE_ERR_FORMAT, "hf config.json: missing '%s'", key);
        *out = def;
        return TERSE_OK;
    }
    char shown[64];
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return terse_err(TERSE_ERR_FORMAT, "hf config.json: '%s' is %s, must be an integer in "
                         "%lld..%lld", key, cfg_show(v, shown, sizeof shown), (long long)lo,
                         (long long)hi);
    *out = json_integer_value(v);
    return TERSE_OK;
}

/* Integer field: required unless def >= 0; must lie in [1, max]. */
static int cfg_int(json_t *root, const char *key, int64_t def, int64_t max, int64_t *out) {
    return conv_cfg_int(root, key, def, 1, max, out);
}

static int cfg_real(json_t *root, const char *key, double def, double *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return TERSE_OK;
    }
    char shown[64];
    if (!json_is_number(v) || !(json_number_value(v) > 0))
        return terse_err(TERSE_ERR_FORMAT, "hf config.json: '%s' is %s, must be a positive "
                         "number", key, cfg_show(v, shown, sizeof shown));
    *out = json_number_value(v);
    return TERSE_OK;
}

static int cfg_bool(json_t *root, const char *key, int def) {
    json_t *v = json_object_get(root, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Rotary settings: theta from rope_theta (transformers 4) or rope_parameters.rope_theta
 * (transformers 5); scaling from rope_scaling (4) or rope_parameters (5): "default" (none),
 * "linear" (factor) and "llama3" (factor, low/high_freq_factor, original_max_position_
 * embeddings); any other type is refused. partial_rotary_factor (top level or in
 * rope_parameters) sets the rotated share of each head. */
static int cfg_rope(json_t *root, double def_theta, hf_config *c, double *partial) {
    json_t *rp = json_object_get(root, "rope_parameters");
    int rc = cfg_real(root, "rope_theta", def_theta, &c->rope_theta);
    if (rc) return rc;
    if (json_is_object(rp) && json_object_get(rp, "rope_theta") &&
        (rc = cfg_real(rp, "rope_theta", def_theta, &c->rope_theta)))
        return rc;
    if ((rc = cfg_real(root, "partial_rotary_factor", *partial, partial))) return rc;
    if (json_is_object(rp) && json_object_get(rp, "partial_rotary_factor") &&
        (rc = cfg_real(rp, "partial_rotary_factor", *partial, partial)))
        return rc;
    if (*partial > 1.0)
        return terse_err(TERSE_ERR_FORMAT, "hf config.json: partial_rotary_factor %g above 1",
                         *partial);
    json_t *sc[2] = {json_object_get(root, "rope_scaling"), rp};
    for (int i = 0; i < 2; i++) {
        if (!json_is_object(sc[i])) continue;
        json_t *t = json_object_get(sc[i], "rope_type");
        if (!t) t = json_object_get(sc[i], "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "default") == 0) continue;
        const char *ty = json_string_value(t);
        if (strcmp(ty, "linear") && strcmp(ty, "llama3"))
            return terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: rope scaling '%s' is not "
                             "supported (default, linear, llama3 are)", ty);
        c->scale = strcmp(ty, "linear") ? ROPE_SCALE_LLAMA3 : ROPE_SCALE_LINEAR;
        if ((rc = cfg_real(sc[i], "factor", -1, &c->factor))) return rc;
        if (c->factor <= 0)
            return terse_err(TERSE_ERR_FORMAT, "hf config.json: rope scaling '%s' without a "
                             "factor", ty);
        if (c->scale == ROPE_SCALE_LLAMA3) {
            if ((rc = cfg_real(sc[i], "low_freq_factor", 1.0, &c->low_freq)) ||
                (rc = cfg_real(sc[i], "high_freq_factor", 4.0, &c->high_freq)) ||
                (rc = cfg_int(sc[i], "original_max_position_embeddings", 8192, INT32_MAX,
                              &c->orig_ctx)))
                return rc;
            if (!(c->high_freq > c->low_freq))
                return terse_err(TERSE_ERR_FORMAT, "hf config.json: llama3 rope scaling: "
                                 "high_freq_factor %g must exceed low_freq_factor %g",
                                 c->high_freq, c->low_freq);
        }
    }
    return TERSE_OK;
}

/* The GELU variant of gemma/phi configs must be the tanh one. */
static int cfg_gelu_tanh(json_t *root, const char *key, const char *def) {
    const char *act = json_string_value(json_object_get(root, key));
    if (!act) act = def;
    if (act && strcmp(act, "gelu_pytorch_tanh") && strcmp(act, "gelu_new") && strcmp(act, "gelu_fast"))
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: %s '%s' (only the tanh GELU, "
                         "gelu_pytorch_tanh / gelu_new, is supported)", key, act);
    return TERSE_OK;
}

static void dir_basename(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    size_t len = n - b < cap - 1 ? n - b : cap - 1;
    memcpy(out, dir + b, len);
    out[len] = 0;
}

static int read_config(const char *dir, hf_config *c) {
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return terse_err(TERSE_ERR_IO, "hf: '%s': %s (line %d)", path, jerr.text, jerr.line);
    int rc = TERSE_OK;
    if (!json_is_object(root)) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf: '%s' is not a JSON object", path);
        goto done;
    }
    const char *arch = json_string_value(json_array_get(json_object_get(root, "architectures"), 0));
    const char *mtype = json_string_value(json_object_get(root, "model_type"));
    if (!arch) arch = mtype ? mtype : "(none)";
    size_t k = 0, n_archs = sizeof hf_archs / sizeof hf_archs[0];
    while (k < n_archs && strcmp(arch, hf_archs[k].cls) && strcmp(arch, hf_archs[k].model_type)) k++;
    if (k == n_archs) {
        rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf: architecture '%s' is not supported "
                       "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                       "GPT2LMHeadModel, PhiForCausalLM, Phi3ForCausalLM, GemmaForCausalLM, "
                       "Gemma2ForCausalLM)", arch);
        goto done;
    }
    c->desc = &hf_archs[k];
    c->arch = hf_archs[k].arch, c->gguf_arch = hf_archs[k].gguf, c->pre = hf_archs[k].pre;
    const int64_t BIG = 1 << 24, CTX = INT32_MAX;
    if (c->arch == ARCH_GPT2) {
        int64_t ctx_alt;
        if ((rc = cfg_int(root, "vocab_size", -1, BIG, &c->n_vocab)) ||
            (rc = cfg_int(root, "n_embd", -1, 1 << 16, &c->n_embd)) ||
            (rc = cfg_int(root, "n_layer", -1, 1 << 10, &c->n_layer)) ||
            (rc = cfg_int(root, "n_head", -1, 1 << 10, &c->n_head)) ||
            (rc = cfg_int(root, "n_ctx", 1024, CTX, &ctx_alt)) ||
            (rc = cfg_int(root, "n_positions", ctx_alt, CTX, &c->n_ctx)) ||
            (rc = cfg_int(root, "n_inner", 4 * c->n_embd, 1 << 20, &c->n_ff)) ||
            (rc = cfg_real(root, "layer_norm_epsilon", 1e-5, &c->norm_eps)))
            goto done;
        c->n_head_kv = c->n_head;
        c->tied = cfg_bool(root, "tie_word_embeddings", 1);
        const char *act = json_string_value(json_object_get(root, "activation_function"));
        if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh") &&
            strcmp(act, "gelu_fast")) {
            rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: GPT-2 activation '%s' (only "
                           "the tanh GELU, gelu_new, is supported)", act);
            goto done;
        }
        if (cfg_bool(root, "scale_attn_by_inverse_layer_idx", 0) ||
            !cfg_bool(root, "scale_attn_weights", 1)) {
            rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: GPT-2 attention scaling "
                           "variant (scale_attn_by_inverse_layer_idx / scale_attn_weights)");
            goto done;
        }
    } else {
        const int gemma = c->arch == ARCH_GEMMA || c->arch == ARCH_GEMMA2;
        double def_eps = c->arch == ARCH_LLAMA || c->arch == ARCH_PHI2 || c->arch == ARCH_PHI3
                             ? 1e-5 : 1e-6;
        double partial = c->arch == ARCH_PHI2 ? 0.5 : 1.0;
        if ((rc = cfg_int(root, "vocab_size", -1, BIG, &c->n_vocab)) ||
            (rc = cfg_int(root, "hidden_size", -1, 1 << 16, &c->n_embd)) ||
            (rc = cfg_int(root, "num_hidden_layers", -1, 1 << 10, &c->n_layer)) ||
            (rc = cfg_int(root, "num_attention_heads", -1, 1 << 10, &c->n_head)) ||
            (rc = cfg_int(root, "num_key_value_heads", c->n_head, 1 << 10, &c->n_head_kv)) ||
            (rc = cfg_int(root, "intermediate_size", -1, 1 << 20, &c->n_ff)) ||
            (rc = cfg_int(root, "max_position_embeddings", 2048, CTX, &c->n_ctx)) ||
            (rc = cfg_real(root, c->arch == ARCH_PHI2 ? "layer_norm_eps" : "rms_norm_eps",
                           def_eps, &c->norm_eps)) ||
            (rc = cfg_rope(root, c->arch == ARCH_QWEN2 || c->arch == ARCH_QWEN3 ? 1e6 : 1e4, c,
                           &partial)))
            goto done;
        if (c->scale != ROPE_SCALE_NONE && c->arch != ARCH_LLAMA) {
            rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: rope scaling for %s (only "
                           "Llama's is converted)", c->gguf_arch);
            goto done;
        }
        c->tied = cfg_bool(root, "tie_word_embeddings", gemma);
        /* sliding windows: Mistral (all layers), Phi-3 (all), Gemma 2 (every other layer) */
        json_t *sw = json_object_get(root, "sliding_window");
        if ((c->arch == ARCH_LLAMA || c->arch == ARCH_PHI3 || c->arch == ARCH_GEMMA2) &&
            json_is_integer(sw) && json_integer_value(sw) > 0 &&
            json_integer_value(sw) < c->n_ctx)
            c->swa = json_integer_value(sw);
        if (cfg_bool(root, "use_sliding_window", 0)) {
            rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: use_sliding_window is true");
            goto done;
        }
        if (c->arch == ARCH_GEMMA2) {
            json_t *lt = json_object_get(root, "layer_types"), *x;
            size_t i;
            json_array_foreach(lt, i, x) {
                const char *want = i % 2 ? "full_attention" : "sliding_attention";
                if (!json_is_string(x) || strcmp(json_string_value(x), want)) {
                    rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: layer_types[%zu] is not "
                                   "'%s' (Gemma 2 alternates, sliding first)", i, want);
                    goto done;
                }
            }
            double qpas;
            if ((rc = cfg_real(root, "attn_logit_softcapping", 0, &c->attn_softcap)) ||
                (rc = cfg_real(root, "final_logit_softcapping", 0, &c->final_softcap)) ||
                (rc = cfg_real(root, "query_pre_attn_scalar", 0, &qpas)))
                goto done;
            if (qpas > 0) c->attn_scale = 1.0 / sqrt(qpas);
        }
        if (gemma) {
            /* transformers runs Gemma with hidden_activation, the tanh GELU when absent
             * (whatever hidden_act says) */
            if (json_is_string(json_object_get(root, "hidden_activation")) &&
                (rc = cfg_gelu_tanh(root, "hidden_activation", NULL)))
                goto done;
        } else if (c->arch == ARCH_PHI2) {
            if ((rc = cfg_gelu_tanh(root, "hidden_act", "gelu_new"))) goto done;
            if (cfg_bool(root, "qk_layernorm", 0)) {
                rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: Phi qk_layernorm is true");
                goto done;
            }
        } else {
            const char *act = json_string_value(json_object_get(root, "hidden_act"));
            if (act && strcmp(act, "silu")) {
                rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: hidden_act '%s' (silu "
                               "expected)", act);
                goto done;
            }
        }
        c->n_rot = -1;
        if ((rc = cfg_int(root, "head_dim", c->n_embd / c->n_head, 1 << 12, &c->head_dim))) goto done;
        c->n_rot = (int64_t)(c->head_dim * partial);
        if (c->n_rot < 2 || c->n_rot % 2) {
            rc = terse_err(TERSE_ERR_FORMAT, "hf config.json: rotary dimensions %lld (head_dim %lld "
                           "x partial_rotary_factor %g) must be even and positive",
                           (long long)c->n_rot, (long long)c->head_dim, partial);
            goto done;
        }
    }
    if ((c->arch == ARCH_GPT2 && c->n_embd % c->n_head != 0) || c->n_head % c->n_head_kv != 0) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf config.json: hidden size %lld, %lld heads, %lld kv "
                       "heads do not divide", (long long)c->n_embd, (long long)c->n_head,
                       (long long)c->n_head_kv);
        goto done;
    }
    if (c->arch == ARCH_GPT2) c->head_dim = c->n_embd / c->n_head;
    if (c->head_dim % 2 != 0) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf config.json: head_dim %lld is odd", (long long)c->head_dim);
        goto done;
    }
    const char *nm = json_string_value(json_object_get(root, "_name_or_path"));
    if (nm && *nm) {
        const char *slash = strrchr(nm, '/');
        snprintf(c->name, sizeof c->name, "%s", slash && slash[1] ? slash + 1 : nm);
    } else {
        dir_basename(dir, c->name, sizeof c->name);
    }
done:
    json_decref(root);
    return rc;
}

/* Buffers the runtime never reads: rotary caches and GPT-2's causal-mask buffers. */
static int ignorable(const char *name) {
    size_t n = strlen(name);
    static const char *const suffix[] = {"rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        size_t k = strlen(suffix[i]);
        if (n >= k && strcmp(name + n - k, suffix[i]) == 0) return 1;
    }
    return 0;
}

static int64_t dim_value(const hf_config *c, dim_kind d) {
    switch (d) {
    case D_V: return c->n_vocab;
    case D_C: return c->n_embd;
    case D_Q: return c->n_head * c->head_dim;
    case D_KV: return c->n_head_kv * c->head_dim;
    case D_F: return c->n_ff;
    case D_3C: return 3 * c->n_embd;
    case D_POS: return c->n_ctx;
    case D_HD: return c->head_dim;
    case D_QKV: return (c->n_head + 2 * c->n_head_kv) * c->head_dim;
    case D_2F: return 2 * c->n_ff;
    default: return 1;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Moving one tensor                                                                          */

/* src (R, K) -> dst: within each of n_groups groups of D = R / n_groups rows, row j*D/2 + i
 * goes to 2*i + j (HF rotate-half -> adjacent pairs). */
static void permute_rows(const float *src, float *dst, int64_t R, int64_t K, int64_t n_groups) {
    int64_t D = R / n_groups, half = D / 2;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t j = 0; j < 2; j++)
            for (int64_t i = 0; i < half; i++)
                memcpy(dst + (g * D + 2 * i + j) * K, src + (g * D + j * half + i) * K,
                       (size_t)K * sizeof *src);
}

static void transpose(const float *src, float *dst, int64_t R, int64_t K) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < K; k++) dst[k * R + r] = src[r * K + k];
}

static uint32_t ggml_of(st_dtype d) {
    return d == ST_F32 ? GGML_F32 : d == ST_F16 ? GGML_F16 : d == ST_BF16 ? GGML_BF16 : UINT32_MAX;
}

/* Checks t against the expected HF shape, transforms it and adds it as gguf_name. */
static int move_tensor(conv_out *o, const hf_config *c, st_tensor *t, const tensor_map *m,
                       const char *gguf_name) {
    int64_t rows = dim_value(c, m->rows), cols = m->cols == D_NONE ? 0 : dim_value(c, m->cols);
    int nd = m->cols == D_NONE ? 1 : 2;
    if (t->n_dims != nd || t->shape[0] != rows || (nd == 2 && t->shape[1] != cols))
        return terse_err(TERSE_ERR_FORMAT, "hf: tensor '%s' has shape [%lld%s%lld%s], config.json "
                         "implies [%lld%s%lld]", t->name, (long long)(t->n_dims ? t->shape[0] : 0),
                         t->n_dims > 1 ? ", " : "", (long long)(t->n_dims > 1 ? t->shape[1] : 0),
                         t->n_dims > 2 ? ", ..." : "", (long long)rows, nd == 2 ? ", " : "",
                         (long long)(nd == 2 ? cols : 0));
    t->used = 1;
    int64_t R = rows, K = nd == 2 ? cols : 1;
    transform tf = m->tf;
    int64_t groups = tf == T_PERM_Q ? c->n_head : c->n_head_kv;
    if (tf == T_TRANSPOSE) R = cols, K = rows; /* output shape (cols, rows) */
    int64_t ne[2] = {K, R};                     /* GGUF order: row length first */
    if (nd == 1) ne[0] = R;

    uint32_t out_type = conv_pick_type(o, gguf_name, (uint32_t)nd, K);
    if (tf == T_COPY && ggml_of(t->dtype) == out_type)
        return conv_add_raw(o, gguf_name, out_type, (uint32_t)nd, ne, t->data, t->nbytes);

    size_t n = (size_t)t->n_elems;
    float *a = terse_malloc(n * sizeof *a, t->name), *b = NULL;
    int rc = a ? st_to_f32(t, a) : TERSE_ERR_NOMEM;
    if (!rc && tf != T_COPY) {
        if (!(b = terse_malloc(n * sizeof *b, t->name))) rc = TERSE_ERR_NOMEM;
        else if (tf == T_TRANSPOSE) transpose(a, b, rows, cols);
        else if (tf == T_PLUS1)
            for (size_t i = 0; i < n; i++) b[i] = a[i] + 1.0f;
        else permute_rows(a, b, R, K, groups);
        free(a);
        a = b;
    }
    if (rc) {
        free(a);
        return rc;
    }
    return conv_add_f32(o, gguf_name, (uint32_t)nd, ne, a, 1);
}

/* One table entry, expanded for layer (or -1 for global entries). */
static int move_entry(conv_out *o, const hf_config *c, st_set *s, const char *prefix,
                      const tensor_map *m, int layer) {
    char hf[512], hf_full[600], gg[256];
    snprintf(hf, sizeof hf, m->hf, layer);
    snprintf(hf_full, sizeof hf_full, "%s%s", prefix, hf);
    snprintf(gg, sizeof gg, m->gguf, layer);
    st_tensor *t = st_find(s, hf_full);
    if (!t) {
        if (m->optional) return TERSE_OK;
        return terse_err(TERSE_ERR_FORMAT, "hf: tensor '%s' is missing", hf_full);
    }
    return move_tensor(o, c, t, m, gg);
}

static int move_table(conv_out *o, const hf_config *c, st_set *s, const char *prefix,
                      const tensor_map *m, size_t n, int layer) {
    int rc = TERSE_OK;
    for (size_t i = 0; !rc && i < n; i++) rc = move_entry(o, c, s, prefix, &m[i], layer);
    return rc;
}

/* llama.cpp's rope_freqs for Llama 3 scaling: per rotary frequency, the divisor of its
 * inverse frequency (1 above the high-frequency wavelength, factor below the low one, the
 * smooth blend between). */
static int add_rope_freqs(conv_out *o, const hf_config *c) {
    int64_t half = c->n_rot / 2;
    float *f = terse_malloc((size_t)half * sizeof *f, "rope_freqs");
    if (!f) return TERSE_ERR_NOMEM;
    const double lo_wl = c->orig_ctx / c->low_freq, hi_wl = c->orig_ctx / c->high_freq;
    for (int64_t k = 0; k < half; k++) {
        double inv = 1.0 / pow(c->rope_theta, 2.0 * (double)k / (double)c->n_rot);
        double wl = 2 * M_PI / inv, div;
        if (wl < hi_wl) div = 1.0;
        else if (wl > lo_wl) div = c->factor;
        else {
            double sm = (c->orig_ctx / wl - c->low_freq) / (c->high_freq - c->low_freq);
            div = 1.0 / ((1 - sm) / c->factor + sm);
        }
        f[k] = (float)div;
    }
    int64_t ne[1] = {half};
    return conv_add_f32(o, "rope_freqs.weight", 1, ne, f, 1);
}

static int move_all(conv_out *o, st_set *s, void *cfg) {
    const hf_config *c = cfg;
    const hf_arch_desc *d = c->desc;
    int rc;
    char probe[128] = "";
    if (d->prefix) snprintf(probe, sizeof probe, "%s%s", d->prefix, d->embd[0].hf);
    const char *prefix = d->prefix && st_find(s, probe) ? d->prefix : "";
    if ((rc = move_table(o, c, s, prefix, d->embd, d->n_embd, -1))) return rc;
    if (c->scale == ROPE_SCALE_LLAMA3 && (rc = add_rope_freqs(o, c))) return rc;
    for (int l = 0; l < (int)c->n_layer; l++)
        if ((rc = move_table(o, c, s, prefix, d->layer, d->n_layer, l))) return rc;
    if ((rc = move_table(o, c, s, prefix, d->final, d->n_final, -1))) return rc;

    /* Output projection: its own matrix unless tied. */
    st_tensor *head = st_find(s, "lm_head.weight");
    if (head && c->tied) head->used = 1;
    else if (!head && !c->tied)
        return terse_err(TERSE_ERR_FORMAT, "hf: lm_head.weight is missing and config.json says "
                         "tie_word_embeddings is false");
    else if (head) {
        tensor_map m = {"lm_head.weight", "output.weight", D_V, D_C, T_COPY, 0};
        if ((rc = move_tensor(o, c, head, &m, "output.weight"))) return rc;
    }
    if (d->head_bias) { /* phi's lm_head has a bias */
        static const tensor_map hb = {"lm_head.bias", "output.bias", D_V, D_NONE, T_COPY, 0};
        if ((rc = move_entry(o, c, s, "", &hb, -1))) return rc;
    }
    /* llama.cpp's gpt2 loader requires output.weight: a tied head is written as a copy of
     * the embedding (zero-copy when the types agree) */
    if (d->head_copy && (c->tied || !head)) {
        char wte[256];
        snprintf(wte, sizeof wte, "%s%s", prefix, d->embd[0].hf);
        st_tensor *e = st_find(s, wte);
        tensor_map m = {d->embd[0].hf, "output.weight", D_V, D_C, T_COPY, 0};
        if (e && (rc = move_tensor(o, c, e, &m, "output.weight"))) return rc;
    }
    for (int64_t i = 0; i < s->n; i++)
        if (!s->t[i].used && !ignorable(s->t[i].name))
            return terse_err(TERSE_ERR_UNSUPPORTED, "hf: tensor '%s' is not part of the %s layout "
                             "this converter knows", s->t[i].name, c->gguf_arch);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Metadata and the whole conversion                                                          */

static int set_u32(gguf_writer *w, const hf_config *c, const char *suffix, int64_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->gguf_arch, suffix);
    return gguf_writer_set_u32(w, key, (uint32_t)v);
}

static int set_f32(gguf_writer *w, const hf_config *c, const char *suffix, double v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->gguf_arch, suffix);
    return gguf_writer_set_f32(w, key, (float)v);
}

static int write_hparams(gguf_writer *w, const void *cfg) {
    const hf_config *c = cfg;
    int rc;
    if ((rc = gguf_writer_set_str(w, "general.architecture", c->gguf_arch)) ||
        (rc = gguf_writer_set_str(w, "general.name", c->name)) ||
        (rc = set_u32(w, c, "vocab_size", c->n_vocab)) ||
        (rc = set_u32(w, c, "context_length", c->n_ctx)) ||
        (rc = set_u32(w, c, "embedding_length", c->n_embd)) ||
        (rc = set_u32(w, c, "block_count", c->n_layer)) ||
        (rc = set_u32(w, c, "feed_forward_length", c->n_ff)) ||
        (rc = set_u32(w, c, "attention.head_count", c->n_head)))
        return rc;
    if (c->arch == ARCH_GPT2) return set_f32(w, c, "attention.layer_norm_epsilon", c->norm_eps);
    if ((rc = set_u32(w, c, "attention.head_count_kv", c->n_head_kv)) ||
        (rc = set_u32(w, c, "rope.dimension_count", c->n_rot)) ||
        (rc = set_f32(w, c, "rope.freq_base", c->rope_theta)) ||
        (rc = set_f32(w, c, c->arch == ARCH_PHI2 ? "attention.layer_norm_epsilon"
                                                 : "attention.layer_norm_rms_epsilon", c->norm_eps)))
        return rc;
    char key[128];
    if (c->scale == ROPE_SCALE_LINEAR &&
        ((rc = gguf_writer_set_str(w, (snprintf(key, sizeof key, "%s.rope.scaling.type",
                                                c->gguf_arch), key), "linear")) ||
         (rc = set_f32(w, c, "rope.scaling.factor", c->factor))))
        return rc;
    /* gemma2: always written, since llama.cpp's defaults when absent are 4096, 50 and 30 */
    const int g2 = c->arch == ARCH_GEMMA2;
    if (((c->swa || g2) && (rc = set_u32(w, c, "attention.sliding_window", c->swa))) ||
        ((c->attn_softcap > 0 || g2) &&
         (rc = set_f32(w, c, "attn_logit_softcapping", c->attn_softcap))) ||
        ((c->final_softcap > 0 || g2) &&
         (rc = set_f32(w, c, "final_logit_softcapping", c->final_softcap))) ||
        (c->attn_scale > 0 && fabs(c->attn_scale * sqrt((double)c->head_dim) - 1) > 1e-9 &&
         (rc = set_f32(w, c, "attention.scale", c->attn_scale))))
        return rc;
    if (c->head_dim * c->n_head != c->n_embd &&
        ((rc = set_u32(w, c, "attention.key_length", c->head_dim)) ||
         (rc = set_u32(w, c, "attention.value_length", c->head_dim))))
        return rc;
    return TERSE_OK;
}

static int has_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

int conv_hf_write(const char *dir, const char *out_path, terse_type type, const conv_hf_plan *p,
                  void *cfg) {
    st_set s;
    conv_out o;
    int rc = conv_begin(&o, type);
    if (rc) {
        conv_end(&o);
        return rc;
    }
    o.n_layer = p->n_layer;
    o.has_output = p->has_output;
    if ((rc = st_open_dir(dir, &s))) {
        conv_end(&o);
        return rc;
    }
    if ((rc = p->hparams(o.w, cfg))) goto done;
    if (!p->tok_optional || has_file(dir, "tokenizer.json") || has_file(dir, "vocab.json") ||
        has_file(dir, "encoder.json")) {
        if ((rc = tok_import_hf(dir, p->pre, o.w))) {
            rc = terse_err_wrap(rc, "hf: tokenizer in '%s'", dir);
            goto done;
        }
    } else if ((rc = gguf_writer_set_str(o.w, "tokenizer.ggml.model", "none"))) {
        goto done;
    }
    if ((rc = p->move(&o, &s, cfg))) goto done;
    rc = conv_write(&o, out_path);
done:
    st_close(&s);
    conv_end(&o);
    return rc;
}

int terse_convert_hf(const char *dir, const char *out_path, terse_type type) {
    if (!dir || !out_path) return terse_err(TERSE_ERR_INVALID, "hf: NULL path");
    if (conv_hf_is_encoder(dir)) return conv_hf_encoder(dir, out_path, type); /* LLMLingua-2 */
    hf_config c;
    int rc = read_config(dir, &c);
    if (rc) return rc;
    conv_hf_plan p = {.n_layer = (int32_t)c.n_layer, .has_output = !c.tied || c.desc->head_copy,
                      .pre = c.pre, .tok_optional = 1, .hparams = write_hparams, .move = move_all};
    return conv_hf_write(dir, out_path, type, &p, &c);
}
