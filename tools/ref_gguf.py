#!/usr/bin/env python3
"""ref_gguf.py - PyTorch reference log-probabilities for a `llama` GGUF file, read as stored.

Reads a GGUF v3 file written by terse (or llama.cpp) with a plain parser, dequantises its
tensors (F32, F16, BF16, Q8_0) exactly as stored, undoes llama.cpp's q/k row permutation,
loads the result into transformers' LlamaForCausalLM and computes, in float64 on the CPU,
log p(ids[i] | ids[:i]) for a list of ids. This gives the reference for the C runtime "in the
shipped type": both sides use the same dequantised weights, so they should agree to float32
rounding, and any difference is the runtime's.

Usage: python3 tools/ref_gguf.py MODEL.gguf IDS.txt OUT_LOGPROBS.txt
"""
import struct
import sys

import numpy as np
import torch

GGUF_TYPES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
              12: "d"}


class Reader:
    def __init__(self, path):
        self.b = open(path, "rb").read()
        self.p = 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.p)
        self.p += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("Q")
        s = self.b[self.p:self.p + n].decode("utf-8", "replace")
        self.p += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("I"), self.take("Q")
            if et in GGUF_TYPES:        # numbers: one unpack for the whole array
                f = "<%d%s" % (n, GGUF_TYPES[et])
                v = struct.unpack_from(f, self.b, self.p)
                self.p += struct.calcsize(f)
                return list(v)
            return [self.value(et) for _ in range(n)]
        return self.take(GGUF_TYPES[t])


def read_gguf_raw(path):
    """(meta, {name: (absolute offset, shape (outermost first), type)}, the file's bytes)"""
    r = Reader(path)
    if r.b[:4] != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    r.p = 4
    version, n_t, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("I"))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("I")
        ne = [r.take("Q") for _ in range(nd)]
        infos.append((name, ne, r.take("I"), r.take("Q")))
    align = meta.get("general.alignment", 32)
    start = (r.p + align - 1) // align * align
    return meta, {n: (start + off, list(reversed(ne)), typ) for n, ne, typ, off in infos}, r.b


def tensor_f64(b, at, shape, typ, name="tensor"):
    """one tensor of the file's bytes b at offset `at`, dequantised exactly, float64"""
    n = int(np.prod(shape))
    if typ == 0:
        a = np.frombuffer(b, np.float32, n, at).astype(np.float64)
    elif typ == 1:
        a = np.frombuffer(b, np.float16, n, at).astype(np.float64)
    elif typ == 30:
        u = np.frombuffer(b, np.uint16, n, at).astype(np.uint32) << 16
        a = u.view(np.float32).astype(np.float64)
    elif typ == 8:      # Q8_0: f16 scale, 32 int8 (the product is exact in float32 too)
        blocks = np.frombuffer(b, np.uint8, n // 32 * 34, at).reshape(-1, 34)
        d = blocks[:, :2].copy().view(np.float16).astype(np.float64)
        q = blocks[:, 2:].copy().view(np.int8).astype(np.float64)
        a = (d * q).reshape(-1)
    else:
        raise SystemExit(f"{name}: type {typ} not handled")
    return a.reshape(shape)


def read_gguf(path):
    """(meta, {name: float64 array}) of every tensor"""
    meta, infos, b = read_gguf_raw(path)
    return meta, {n: tensor_f64(b, at, shape, typ, n) for n, (at, shape, typ) in infos.items()}


def unpermute(w, n_head):
    # llama.cpp: w.reshape(n_head, 2, hd/2, C).swapaxes(1, 2); inverse here.
    rows, C = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, C).swapaxes(1, 2).reshape(rows, C)


def main(model_path, ids_path, out_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    meta, t = read_gguf(model_path)
    assert meta["general.architecture"] == "llama"
    g = lambda k: meta["llama." + k]
    n_head, n_kv = g("attention.head_count"), g("attention.head_count_kv")
    V, C = t["token_embd.weight"].shape
    kw = dict(vocab_size=V, hidden_size=C, intermediate_size=g("feed_forward_length"),
              num_hidden_layers=g("block_count"), num_attention_heads=n_head,
              num_key_value_heads=n_kv, max_position_embeddings=g("context_length"),
              rms_norm_eps=g("attention.layer_norm_rms_epsilon"),
              tie_word_embeddings="output.weight" not in t, attn_implementation="eager")
    theta = meta.get("llama.rope.freq_base", 10000.0)
    try:
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": theta}, **kw)
    except TypeError:
        cfg = LlamaConfig(rope_theta=theta, **kw)
    model = LlamaForCausalLM(cfg).double().eval()
    sd = {"model.embed_tokens.weight": t["token_embd.weight"],
          "model.norm.weight": t["output_norm.weight"],
          "lm_head.weight": t.get("output.weight", t["token_embd.weight"])}
    for i in range(cfg.num_hidden_layers):
        b, p = f"blk.{i}.", f"model.layers.{i}."
        sd.update({p + "input_layernorm.weight": t[b + "attn_norm.weight"],
                   p + "post_attention_layernorm.weight": t[b + "ffn_norm.weight"],
                   p + "self_attn.q_proj.weight": unpermute(t[b + "attn_q.weight"], n_head),
                   p + "self_attn.k_proj.weight": unpermute(t[b + "attn_k.weight"], n_kv),
                   p + "self_attn.v_proj.weight": t[b + "attn_v.weight"],
                   p + "self_attn.o_proj.weight": t[b + "attn_output.weight"],
                   p + "mlp.gate_proj.weight": t[b + "ffn_gate.weight"],
                   p + "mlp.up_proj.weight": t[b + "ffn_up.weight"],
                   p + "mlp.down_proj.weight": t[b + "ffn_down.weight"]})
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()},
                          strict=False)
    ids = [int(x) for x in open(ids_path).read().split()]
    with torch.no_grad():
        lg = model(input_ids=torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(lg, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    with open(out_path, "w") as f:
        f.write("\n".join("%.9g" % v for v in lp.tolist()) + "\n")
    print(f"{model_path}: {len(ids)} ids, mean logprob {lp.mean().item():.5f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
