/* hf_encoder.c - Hugging Face token classifiers (BertForTokenClassification,
 * XLMRobertaForTokenClassification: the LLMLingua-2 models) -> GGUF architecture "bert", with
 * llama.cpp's tensor names (nn/encoder.h lists them).
 *
 * What changes on the way:
 *   - names: bert.encoder.layer.N.attention.self.query.weight -> blk.N.attn_q.weight, ...
 *     ("roberta." instead of "bert." for XLM-R); classifier.{weight,bias} -> cls.{weight,bias};
 *   - XLM-R numbers positions from padding_idx + 1 (fairseq): the first pad_token_id + 1 rows of
 *     its position table are never used for a real token and are dropped, so that the runtime
 *     reads row i for position i of both models (context_length 514 -> 512);
 *   - config: hidden_act must be "gelu" (erf), position_embedding_type "absolute".
 * The tokenizer files go through tok_import_hf (WordPiece vocab.txt / tokenizer.json, or the
 * Unigram tokenizer.json of XLM-R). Tensors the converter does not know are an error; the
 * position_ids buffer and an unused pooler are skipped.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "convert/safetensors.h"
#include "tok/tok.h"

typedef struct {
    int xlmr;
    const char *prefix;             /* "bert." or "roberta." */
    int64_t V, C, L, H, F, P, n_types, n_labels, pos_skip;
    double eps;
    char name[256];
} enc_config;

static const char *const ENC_ARCHS[] = {"BertForTokenClassification",
                                        "XLMRobertaForTokenClassification"};

static json_t *load_config(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t e;
    return json_load_file(path, JSON_REJECT_DUPLICATES, &e);
}

int conv_hf_is_encoder(const char *dir) {
    json_t *root = load_config(dir);
    const char *a = json_string_value(json_array_get(json_object_get(root, "architectures"), 0));
    int yes = a && (!strcmp(a, ENC_ARCHS[0]) || !strcmp(a, ENC_ARCHS[1]));
    json_decref(root);
    return yes;
}

static int read_config(const char *dir, enc_config *c) {
    memset(c, 0, sizeof *c);
    json_t *root = load_config(dir);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return terse_err(TERSE_ERR_FORMAT, "hf: '%s/config.json' is missing or not a JSON object", dir);
    }
    int rc;
    const char *a = json_string_value(json_array_get(json_object_get(root, "architectures"), 0));
    c->xlmr = a && !strcmp(a, ENC_ARCHS[1]);
    c->prefix = c->xlmr ? "roberta." : "bert.";
    int64_t pad = 0;
    if ((rc = conv_cfg_int(root, "vocab_size", -1, 0, 1 << 24, &c->V)) ||
        (rc = conv_cfg_int(root, "hidden_size", -1, 0, 1 << 16, &c->C)) ||
        (rc = conv_cfg_int(root, "num_hidden_layers", -1, 0, 1 << 10, &c->L)) ||
        (rc = conv_cfg_int(root, "num_attention_heads", -1, 0, 1 << 10, &c->H)) ||
        (rc = conv_cfg_int(root, "intermediate_size", -1, 0, 1 << 20, &c->F)) ||
        (rc = conv_cfg_int(root, "max_position_embeddings", -1, 0, 1 << 16, &c->P)) ||
        (rc = conv_cfg_int(root, "type_vocab_size", 2, 0, 1 << 10, &c->n_types)) ||
        (rc = conv_cfg_int(root, "pad_token_id", c->xlmr ? 1 : 0, 0, 1 << 24, &pad)))
        goto done;
    if (c->C < 1 || c->L < 1 || c->H < 1 || c->F < 1 || c->V < 1 || c->n_types < 1 || c->C % c->H) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf config.json: bad shape (hidden_size %lld, heads %lld, "
                       "layers %lld, intermediate %lld, vocab %lld, type_vocab_size %lld)",
                       (long long)c->C, (long long)c->H, (long long)c->L, (long long)c->F,
                       (long long)c->V, (long long)c->n_types);
        goto done;
    }
    c->pos_skip = c->xlmr ? pad + 1 : 0;
    if (c->P <= c->pos_skip) {
        rc = terse_err(TERSE_ERR_FORMAT, "hf config.json: max_position_embeddings %lld leaves no "
                       "position after the padding offset %lld", (long long)c->P, (long long)c->pos_skip);
        goto done;
    }
    json_t *eps = json_object_get(root, "layer_norm_eps");
    c->eps = json_is_number(eps) ? json_number_value(eps) : 1e-12;
    const char *act = json_string_value(json_object_get(root, "hidden_act"));
    if (act && strcmp(act, "gelu")) {
        rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: hidden_act '%s' (only gelu)", act);
        goto done;
    }
    const char *pe = json_string_value(json_object_get(root, "position_embedding_type"));
    if (pe && strcmp(pe, "absolute")) {
        rc = terse_err(TERSE_ERR_UNSUPPORTED, "hf config.json: position_embedding_type '%s' "
                       "(only absolute)", pe);
        goto done;
    }
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(c->name, sizeof c->name, "%.*s", (int)(n - b), dir + b);
done:
    json_decref(root);
    return rc;
}

/* Add HF tensor `hf` (prefix + name) of shape (rows, cols) (cols = 0: a vector) as gg,
 * skipping its first `skip` rows. */
static int move(conv_out *o, st_set *s, const char *prefix, const char *hf, const char *gg,
                int64_t rows, int64_t cols, int64_t skip) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, hf);
    st_tensor *t = st_find(s, full);
    if (!t) return terse_err(TERSE_ERR_FORMAT, "hf: tensor '%s' is missing", full);
    int nd = cols ? 2 : 1;
    if (t->n_dims != nd || t->shape[0] != rows || (nd == 2 && t->shape[1] != cols))
        return terse_err(TERSE_ERR_FORMAT, "hf: tensor '%s' has shape [%lld, %lld], config.json "
                         "implies [%lld, %lld]", full, (long long)t->shape[0],
                         (long long)(t->n_dims > 1 ? t->shape[1] : 0), (long long)rows, (long long)cols);
    if (t->dtype == ST_OTHER)
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: tensor '%s' has dtype %s", full, t->dtype_name);
    t->used = 1;
    int64_t K = nd == 2 ? cols : rows, R = nd == 2 ? rows - skip : 1;
    int64_t ne[2] = {K, R};
    uint32_t type = conv_pick_type(o, gg, (uint32_t)nd, K);
    uint32_t src = t->dtype == ST_F32 ? GGML_F32 : t->dtype == ST_F16 ? GGML_F16 : GGML_BF16;
    size_t esz = t->dtype == ST_F32 ? 4 : 2;
    if (type == src)
        return conv_add_raw(o, gg, type, (uint32_t)nd, ne, t->data + (size_t)(skip * K) * esz,
                            (uint64_t)(R * K) * esz);
    float *a = terse_malloc((size_t)t->n_elems * sizeof *a, full);
    if (!a) return TERSE_ERR_NOMEM;
    int rc = st_to_f32(t, a);
    if (rc) {
        free(a);
        return rc;
    }
    if (skip) memmove(a, a + skip * K, (size_t)(R * K) * sizeof *a);
    return conv_add_f32(o, gg, (uint32_t)nd, ne, a, 1);
}

static const struct {
    const char *hf, *gg;
    int cols_f, rows_f;   /* shape: rows = F if rows_f else C; cols = F if cols_f, C, or 0 */
    int vec;
} LAYER[] = {
    {"attention.self.query.weight", "attn_q.weight", 0, 0, 0},
    {"attention.self.query.bias", "attn_q.bias", 0, 0, 1},
    {"attention.self.key.weight", "attn_k.weight", 0, 0, 0},
    {"attention.self.key.bias", "attn_k.bias", 0, 0, 1},
    {"attention.self.value.weight", "attn_v.weight", 0, 0, 0},
    {"attention.self.value.bias", "attn_v.bias", 0, 0, 1},
    {"attention.output.dense.weight", "attn_output.weight", 0, 0, 0},
    {"attention.output.dense.bias", "attn_output.bias", 0, 0, 1},
    {"attention.output.LayerNorm.weight", "attn_output_norm.weight", 0, 0, 1},
    {"attention.output.LayerNorm.bias", "attn_output_norm.bias", 0, 0, 1},
    {"intermediate.dense.weight", "ffn_up.weight", 0, 1, 0},
    {"intermediate.dense.bias", "ffn_up.bias", 0, 1, 1},
    {"output.dense.weight", "ffn_down.weight", 1, 0, 0},
    {"output.dense.bias", "ffn_down.bias", 0, 0, 1},
    {"output.LayerNorm.weight", "layer_output_norm.weight", 0, 0, 1},
    {"output.LayerNorm.bias", "layer_output_norm.bias", 0, 0, 1},
};

static int move_all(conv_out *o, st_set *s, void *cfg) {
    enc_config *c = cfg;
    const char *p = c->prefix;
    int rc;
    if ((rc = move(o, s, p, "embeddings.word_embeddings.weight", "token_embd.weight", c->V, c->C, 0)) ||
        (rc = move(o, s, p, "embeddings.position_embeddings.weight", "position_embd.weight", c->P,
                   c->C, c->pos_skip)) ||
        (rc = move(o, s, p, "embeddings.token_type_embeddings.weight", "token_types.weight",
                   c->n_types, c->C, 0)) ||
        (rc = move(o, s, p, "embeddings.LayerNorm.weight", "token_embd_norm.weight", c->C, 0, 0)) ||
        (rc = move(o, s, p, "embeddings.LayerNorm.bias", "token_embd_norm.bias", c->C, 0, 0)))
        return rc;
    for (int64_t l = 0; l < c->L; l++)
        for (size_t i = 0; i < sizeof LAYER / sizeof LAYER[0]; i++) {
            char hf[256], gg[256];
            snprintf(hf, sizeof hf, "encoder.layer.%lld.%s", (long long)l, LAYER[i].hf);
            snprintf(gg, sizeof gg, "blk.%lld.%s", (long long)l, LAYER[i].gg);
            int64_t rows = LAYER[i].rows_f ? c->F : c->C;
            int64_t cols = LAYER[i].vec ? 0 : LAYER[i].cols_f ? c->F : c->C;
            if ((rc = move(o, s, p, hf, gg, rows, cols, 0))) return rc;
        }
    st_tensor *cls = st_find(s, "classifier.weight");
    if (!cls || cls->n_dims != 2 || cls->shape[0] < 2 || cls->shape[0] > 4096)
        return terse_err(TERSE_ERR_FORMAT, "hf: classifier.weight missing or not (labels, %lld)",
                         (long long)c->C);
    c->n_labels = cls->shape[0];
    if ((rc = move(o, s, "", "classifier.weight", "cls.weight", c->n_labels, c->C, 0)) ||
        (rc = move(o, s, "", "classifier.bias", "cls.bias", c->n_labels, 0, 0)))
        return rc;
    for (int64_t i = 0; i < s->n; i++) {
        const char *n = s->t[i].name;
        if (s->t[i].used || strstr(n, "position_ids") || strstr(n, "pooler.")) continue;
        return terse_err(TERSE_ERR_UNSUPPORTED, "hf: tensor '%s' is not part of the %s layout this "
                         "converter knows", n, c->xlmr ? ENC_ARCHS[1] : ENC_ARCHS[0]);
    }
    return TERSE_OK;
}

static int write_hparams(gguf_writer *w, const void *cfg) {
    const enc_config *c = cfg;
    int rc;
    if ((rc = gguf_writer_set_str(w, "general.architecture", "bert")) ||
        (rc = gguf_writer_set_str(w, "general.name", c->name)) ||
        (rc = gguf_writer_set_u32(w, "bert.vocab_size", (uint32_t)c->V)) ||
        (rc = gguf_writer_set_u32(w, "bert.context_length", (uint32_t)(c->P - c->pos_skip))) ||
        (rc = gguf_writer_set_u32(w, "bert.embedding_length", (uint32_t)c->C)) ||
        (rc = gguf_writer_set_u32(w, "bert.block_count", (uint32_t)c->L)) ||
        (rc = gguf_writer_set_u32(w, "bert.feed_forward_length", (uint32_t)c->F)) ||
        (rc = gguf_writer_set_u32(w, "bert.attention.head_count", (uint32_t)c->H)) ||
        (rc = gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", (float)c->eps)) ||
        (rc = gguf_writer_set_bool(w, "bert.attention.causal", 0)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)c->n_types)))
        return rc;
    return TERSE_OK;
}

int conv_hf_encoder(const char *dir, const char *out_path, terse_type type) {
    enc_config c;
    int rc = read_config(dir, &c);
    if (rc) return rc;
    conv_hf_plan p = {.hparams = write_hparams, .move = move_all};
    return conv_hf_write(dir, out_path, type, &p, &c);
}
