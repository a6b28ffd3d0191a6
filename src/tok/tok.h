/* tok.h - tokenizers (internal interface between the tokenizer layer and the layers above).
 * The public calls (terse_vocab_load, terse_tokenize, ...) are declared in include/terse.h. */
#ifndef TERSE_TOK_H
#define TERSE_TOK_H

#include "gguf/gguf.h"

/* Build a vocabulary from the tokenizer.ggml.* metadata of an open GGUF file.
 * If the file has no tokenizer.ggml.model key, *out = NULL and TERSE_OK is returned.
 * The vocabulary copies what it needs: it does not keep g alive. */
int terse_vocab_from_gguf(const gguf_file *g, terse_vocab **out);

/* Import Hugging Face tokenizer files found in dir (tokenizer.json, or vocab.json + merges.txt,
 * or encoder.json + vocab.bpe, plus tokenizer_config.json / special_tokens_map.json /
 * added_tokens.json when present) as tokenizer.ggml.* metadata into w.
 * pre: the pre-tokenizer name to record ("gpt2", "llama-bpe", "qwen2", ...; NULL = guess).
 * Returns TERSE_ERR_IO with a message when no known tokenizer file is in dir. */
int tok_import_hf(const char *dir, const char *pre, gguf_writer *w);

#endif
