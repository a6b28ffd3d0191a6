/* encoder.h - bidirectional encoders with a token-classification head (BERT, XLM-RoBERTa), the
 * scoring models of LLMLingua-2. Internal header (not API); encoder.c holds the code.
 *
 * One GGUF architecture, "bert" (llama.cpp's name, which it also uses for XLM-RoBERTa):
 *   token_embd (V, C), position_embd (P, C), token_types (n_types, C),
 *   token_embd_norm.{weight,bias}, and per layer blk.N.{attn_q, attn_k, attn_v, attn_output,
 *   ffn_up, ffn_down}.{weight,bias}, blk.N.{attn_output_norm, layer_output_norm}.{weight,bias},
 *   then the classifier cls.{weight,bias} (n_labels, C).
 * Hyper-parameters: bert.{context_length, embedding_length, block_count, feed_forward_length,
 * attention.head_count, attention.layer_norm_epsilon}.
 * XLM-RoBERTa numbers its positions from padding_idx + 1 = 2; the converter drops the first two
 * rows of its position table, so position i of a sequence is row i for both models.
 *
 * The layer (post-LayerNorm, as Hugging Face's BertLayer):
 *     x = LN_attn(x + Wo attention(Wq x, Wk x, Wv x) + bo)
 *     x = LN_out(x + W_down gelu(W_up x + b_up) + b_down)       gelu = exact (erf) form
 * attention sees every token of its own sequence (no causal mask).
 */
#ifndef TERSE_NN_ENCODER_H
#define TERSE_NN_ENCODER_H

#include "nn/nn.h"

typedef struct {
    nn_matrix wq, wk, wv, wo, w_up, w_down;
    const float *bq, *bk, *bv, *bo, *b_up, *b_down;
    const float *attn_norm, *attn_norm_b;   /* attn_output_norm */
    const float *out_norm, *out_norm_b;     /* layer_output_norm */
} nn_enc_layer;

struct nn_encoder {
    int32_t n_pos, n_types, n_labels;
    nn_matrix pos_embd, type_embd, cls;
    const float *embd_norm, *embd_norm_b, *cls_b;
    nn_enc_layer *layers;
};

/* Called by terse_model_load for general.architecture "bert": hyper-parameters, tensors (all
 * checked), m->enc; m->vocab is loaded by the caller. */
int  nn_encoder_load(terse_model *m);
void nn_encoder_free(nn_encoder *e);

/* Probabilities of label `label` (softmax over the classifier's labels) for every token of
 * n_seq sequences. ids holds the sequences back to back; len[s] tokens each (1..n_pos).
 * out has one value per id. Sequences are packed into passes of about max_tokens tokens (0 =
 * a default): the linear layers run over the whole pass at once, attention per sequence.
 * n_threads: element-wise threads (0 = default). */
int nn_encoder_probs(const terse_model *m, const int32_t *ids, const int32_t *len, int32_t n_seq,
                     int32_t label, int32_t max_tokens, int32_t n_threads, float *out);

/* random_encoder.c: a random-weight encoder of the given shape (2 labels, F32) at out, with
 * the tokenizer.* keys of the GGUF vocab_gguf (benchmarks). */
int nn_write_random_encoder(const char *out, const char *vocab_gguf, int32_t n_vocab, int32_t n_pos,
                            int32_t C, int32_t L, int32_t H, int32_t F, uint64_t seed);

#endif
