#!/usr/bin/env python3
"""shape_model.py - a Hugging Face llama folder of a given shape with random weights and a real
tokenizer, to measure scoring speed of a shape before it is trained (issue 15).

The tokenizer (byte-level BPE tokens and merges) is taken from an existing terse GGUF file, so
the prompt tokenizes as a trained model's would; config.json's vocab_size may be larger (terse's
converter fills the ids nobody defines with unused [PAD<id>] tokens), which keeps the cost of the
output projection right. Weights: N(0, 0.02), F16, written as safetensors without any library.

Usage: python3 tools/shape_model.py OUT_DIR --from models/terse-default.gguf \
           --vocab 16384 --embd 512 --layers 6 --heads 8 --kv-heads 4 --ff 1280
then:  ./build/terse convert hf OUT_DIR OUT.gguf --type q8_0
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_gguf import Reader  # noqa: E402


def gguf_meta(path):
    r = Reader(path)
    assert r.take("4s") == b"GGUF"
    r.take("I")
    r.take("Q")
    n_kv = r.take("Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("I"))
    return meta


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype=np.float16).tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--embd", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--ff", type=int, required=True)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    meta = gguf_meta(a.src)
    toks, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"]
    assert len(toks) <= a.vocab, "the source vocabulary is larger than --vocab"
    eot = meta.get("tokenizer.ggml.bos_token_id", 0)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(toks)}, f, ensure_ascii=False)
    with open(os.path.join(a.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    et = toks[eot]
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": et, "eos_token": et,
                   "unk_token": et, "add_bos_token": True, "add_prefix_space": False}, f)
    hd = a.embd // a.heads
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": a.vocab,
           "hidden_size": a.embd, "intermediate_size": a.ff, "num_hidden_layers": a.layers,
           "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
           "max_position_embeddings": a.ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": eot,
           "eos_token_id": eot, "torch_dtype": "float16"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    rng = np.random.default_rng(a.seed)
    w = lambda r, c: rng.normal(0, 0.02, (r, c)).astype(np.float16)
    t = {"model.embed_tokens.weight": w(a.vocab, a.embd),
         "model.norm.weight": np.ones(a.embd, np.float16)}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": np.ones(a.embd, np.float16),
                  p + "post_attention_layernorm.weight": np.ones(a.embd, np.float16),
                  p + "self_attn.q_proj.weight": w(a.heads * hd, a.embd),
                  p + "self_attn.k_proj.weight": w(a.kv_heads * hd, a.embd),
                  p + "self_attn.v_proj.weight": w(a.kv_heads * hd, a.embd),
                  p + "self_attn.o_proj.weight": w(a.embd, a.heads * hd),
                  p + "mlp.gate_proj.weight": w(a.ff, a.embd),
                  p + "mlp.up_proj.weight": w(a.ff, a.embd),
                  p + "mlp.down_proj.weight": w(a.embd, a.ff)})
    write_safetensors(os.path.join(a.out, "model.safetensors"), t)
    n = sum(v.size for v in t.values())
    print(f"{a.out}: {n:,} parameters")


if __name__ == "__main__":
    main()
