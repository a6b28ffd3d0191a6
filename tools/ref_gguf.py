#!/usr/bin/env python3
"""ref_gguf.py - PyTorch reference log-probabilities for a `llama` GGUF file, read as stored.

Reads a GGUF v3 file written by terse (or llama.cpp) with a plain parser, dequantises its
tensors (F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K) exactly as stored (GGML's block layouts),
undoes llama.cpp's q/k row permutation, loads the result into transformers' LlamaForCausalLM
and computes, in float64 on the CPU, log p(ids[i] | ids[:i]) for a list of ids. Where
transformers is not installed, a float64 forward written here (the same maths: RMSNorm,
rotate-half rope, GQA, SwiGLU) does it; tools/ref_gguf_check.py checks both the dequantisers and
that forward against ../shared/quant's llama.cpp fixtures. This gives the reference for the C runtime "in the
shipped type": both sides use the same dequantised weights, so they should agree to float32
rounding, and any difference is the runtime's.

Usage: python3 tools/ref_gguf.py MODEL.gguf IDS.txt OUT_LOGPROBS.txt
"""
import math
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


def f16(b):
    return b.copy().view(np.float16).astype(np.float32)


def scale_min_k4(sc):
    """The 8 six-bit scales and mins of a Q4_K / Q5_K block (12 bytes), as GGML packs them."""
    sc = sc.astype(np.uint8)
    s, m = np.zeros((len(sc), 8), np.float32), np.zeros((len(sc), 8), np.float32)
    for j in range(8):
        if j < 4:
            s[:, j], m[:, j] = sc[:, j] & 63, sc[:, j + 4] & 63
        else:
            s[:, j] = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m[:, j] = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
    return s, m


def deq_q4_k(b):   # d f16, dmin f16, scales[12], qs[128] -> 256 values
    d, dmin = f16(b[:, 0:2])[:, 0], f16(b[:, 2:4])[:, 0]
    s, m = scale_min_k4(b[:, 4:16])
    qs = b[:, 16:144]
    y = np.zeros((len(b), 256), np.float32)
    for k in range(4):   # 64 values: low nibbles (scale 2k), high nibbles (scale 2k+1)
        q = qs[:, 32 * k:32 * k + 32]
        y[:, 64 * k:64 * k + 32] = (d * s[:, 2 * k])[:, None] * (q & 0xF) - (dmin * m[:, 2 * k])[:, None]
        y[:, 64 * k + 32:64 * k + 64] = (d * s[:, 2 * k + 1])[:, None] * (q >> 4) - (dmin * m[:, 2 * k + 1])[:, None]
    return y.astype(np.float64)


def deq_q5_k(b):   # d, dmin, scales[12], qh[32], qs[128]
    d, dmin = f16(b[:, 0:2])[:, 0], f16(b[:, 2:4])[:, 0]
    s, m = scale_min_k4(b[:, 4:16])
    qh, qs = b[:, 16:48], b[:, 48:176]
    y = np.zeros((len(b), 256), np.float32)
    for k in range(4):
        q = qs[:, 32 * k:32 * k + 32]
        lo = (q & 0xF) + (((qh >> (2 * k)) & 1) << 4)
        hi = (q >> 4) + (((qh >> (2 * k + 1)) & 1) << 4)
        y[:, 64 * k:64 * k + 32] = (d * s[:, 2 * k])[:, None] * lo - (dmin * m[:, 2 * k])[:, None]
        y[:, 64 * k + 32:64 * k + 64] = (d * s[:, 2 * k + 1])[:, None] * hi - (dmin * m[:, 2 * k + 1])[:, None]
    return y.astype(np.float64)


def deq_q6_k(b):   # ql[128], qh[64], scales[16] (int8), d f16
    ql, qh = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32)
    sc = b[:, 192:208].copy().view(np.int8).astype(np.float32)
    d = f16(b[:, 208:210])[:, 0]
    y = np.zeros((len(b), 256), np.float32)
    for h in range(2):   # two halves of 128 values
        L, H, S = ql[:, 64 * h:64 * h + 64], qh[:, 32 * h:32 * h + 32], sc[:, 8 * h:8 * h + 8]
        for l0 in (0, 16):
            sl = slice(l0, l0 + 16)
            i = l0 // 16
            q1 = ((L[:, sl] & 0xF) | (((H[:, sl] >> 0) & 3) << 4)) - 32
            q2 = ((L[:, 32 + l0:48 + l0] & 0xF) | (((H[:, sl] >> 2) & 3) << 4)) - 32
            q3 = ((L[:, sl] >> 4) | (((H[:, sl] >> 4) & 3) << 4)) - 32
            q4 = ((L[:, 32 + l0:48 + l0] >> 4) | (((H[:, sl] >> 6) & 3) << 4)) - 32
            base = 128 * h + l0
            y[:, base:base + 16] = (d * S[:, i + 0])[:, None] * q1
            y[:, base + 32:base + 48] = (d * S[:, i + 2])[:, None] * q2
            y[:, base + 64:base + 80] = (d * S[:, i + 4])[:, None] * q3
            y[:, base + 96:base + 112] = (d * S[:, i + 6])[:, None] * q4
    return y.astype(np.float64)


KQUANT = {12: (144, deq_q4_k), 13: (176, deq_q5_k), 14: (210, deq_q6_k)}


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
    elif typ in KQUANT:
        bs, fn = KQUANT[typ]
        blocks = np.frombuffer(b, np.uint8, n // 256 * bs, at).reshape(-1, bs)
        a = fn(blocks).reshape(-1)
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


def load_weights(model_path):
    """(hparams, HF-named float64 weights) of a llama GGUF, dequantised as stored."""
    meta, t = read_gguf(model_path)
    assert meta["general.architecture"] == "llama"
    g = lambda k: meta["llama." + k]
    n_head, n_kv = g("attention.head_count"), g("attention.head_count_kv")
    V, C = t["token_embd.weight"].shape
    hp = dict(vocab=V, d=C, ff=g("feed_forward_length"), n_layer=g("block_count"),
              n_head=n_head, n_kv=n_kv, ctx=g("context_length"),
              eps=g("attention.layer_norm_rms_epsilon"),
              theta=meta.get("llama.rope.freq_base", 10000.0), tied="output.weight" not in t,
              bos=meta.get("tokenizer.ggml.bos_token_id", 0))
    sd = {"model.embed_tokens.weight": t["token_embd.weight"],
          "model.norm.weight": t["output_norm.weight"],
          "lm_head.weight": t.get("output.weight", t["token_embd.weight"])}
    for i in range(hp["n_layer"]):
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
    return hp, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def logits_hf(hp, sd, ids):
    from transformers import LlamaConfig, LlamaForCausalLM
    kw = dict(vocab_size=hp["vocab"], hidden_size=hp["d"], intermediate_size=hp["ff"],
              num_hidden_layers=hp["n_layer"], num_attention_heads=hp["n_head"],
              num_key_value_heads=hp["n_kv"], max_position_embeddings=hp["ctx"],
              rms_norm_eps=hp["eps"], tie_word_embeddings=hp["tied"], attn_implementation="eager")
    try:
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": hp["theta"]}, **kw)
    except TypeError:
        cfg = LlamaConfig(rope_theta=hp["theta"], **kw)
    model = LlamaForCausalLM(cfg).double().eval()
    model.load_state_dict(sd, strict=False)
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].double()


def logits_plain(hp, sd, ids):
    """float64 llama forward without transformers: the same maths as LlamaForCausalLM."""
    T, nh, nkv = len(ids), hp["n_head"], hp["n_kv"]
    hd = hp["d"] // nh
    norm = lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + hp["eps"]) * w
    inv = 1.0 / (hp["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()
    rot = lambda x: torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    x = sd["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(hp["n_layer"]):
        p = f"model.layers.{i}."
        w = lambda n: sd[p + n]
        h = norm(x, w("input_layernorm.weight"))
        q = (h @ w("self_attn.q_proj.weight").T).view(T, nh, hd).transpose(0, 1)
        k = (h @ w("self_attn.k_proj.weight").T).view(T, nkv, hd).transpose(0, 1)
        v = (h @ w("self_attn.v_proj.weight").T).view(T, nkv, hd).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
        a = ((q @ k.transpose(1, 2)) / math.sqrt(hd)).masked_fill(mask, float("-inf")).softmax(-1)
        x = x + (a @ v).transpose(0, 1).reshape(T, nh * hd) @ w("self_attn.o_proj.weight").T
        h = norm(x, w("post_attention_layernorm.weight"))
        g, u = h @ w("mlp.gate_proj.weight").T, h @ w("mlp.up_proj.weight").T
        x = x + (torch.nn.functional.silu(g) * u) @ w("mlp.down_proj.weight").T
    return norm(x, sd["model.norm.weight"]) @ sd["lm_head.weight"].T


def logprobs(model_path, ids, plain=False):
    hp, sd = load_weights(model_path)
    if not plain:
        try:
            import transformers  # noqa: F401
        except ImportError:
            plain = True
    lg = (logits_plain if plain else logits_hf)(hp, sd, ids)
    return torch.log_softmax(lg, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])], plain


def main(model_path, ids_path, out_path):
    ids = [int(x) for x in open(ids_path).read().split()]
    lp, plain = logprobs(model_path, ids)
    with open(out_path, "w") as f:
        f.write("\n".join("%.9g" % v for v in lp.tolist()) + "\n")
    print(f"{model_path}: {len(ids)} ids, mean logprob {lp.mean().item():.5f}"
          f" ({'plain float64 forward' if plain else 'transformers LlamaForCausalLM'})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
