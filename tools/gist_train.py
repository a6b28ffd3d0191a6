#!/usr/bin/env python3
"""gist_train.py - the gist-token fine-tuning recipe of `terse finetune --gist K` in PyTorch.

Same recipe as src/train/gist.c + finetune.c (the C test tests/test_gist_train.c checks the
first 20 steps of both against tests/golden/gist/):
  model     a gist model made by terse (`terse finetune ... --init PATH`): every tensor F32,
            GGUF layout (the runtime's forward re-implemented below: llama / qwen2 / gpt2)
  data      the tokenised examples `terse finetune --examples PATH` writes, in training order,
            one per line "n first last n_prompt ids..."; step s takes examples
            (s-1)B .. sB-1 (modulo their number)
  mask      gist: rows after the last gist see the gists and later tokens only; pos: causal;
            neg: rows after the last gist see only tokens after it; causal everywhere
  loss      cross-entropy of the response tokens (and EOS), the mean over all of them in
            the batch
  optimiser terse's AdamW (src/train/adamw.c): bias-corrected moments, eps outside the root,
            decoupled decay on matrices other than the embedding tables, global-norm
            clipping, linear warm-up then cosine to min_lr at the last step
The trained weights are written as a GGUF with the input model's header and layout (all F32).

Usage: gist_train.py MODEL.gguf EXAMPLES.txt OUT.gguf [--steps N --batch B --lr X
       --min-lr X --warmup N --wd X --clip X --mask gist|pos|neg --dtype float32|float64|
       bfloat16 --device cpu|cuda --log LOG.tsv --golden GOLDEN.txt]
"""
import argparse
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

GGUF_FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.p)
        self.p += struct.calcsize("<" + fmt)
        return v[0]

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
            if et in GGUF_FMT and et != 8:
                f = "<%d%s" % (n, GGUF_FMT[et])
                v = struct.unpack_from(f, self.b, self.p)
                self.p += struct.calcsize(f)
                return list(v)
            return [self.value(et) for _ in range(n)]
        return self.take(GGUF_FMT[t])


def read_gguf(path):
    """(meta, {name: (offset in file, shape)}, raw bytes); every tensor must be F32"""
    b = open(path, "rb").read()
    r = Reader(b)
    assert r.b[:4] == b"GGUF", "not a GGUF file"
    r.p = 4
    r.take("I")
    n_t, n_kv = r.take("Q"), r.take("Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("I"))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("I")
        ne = [r.take("Q") for _ in range(nd)]
        typ, off = r.take("I"), r.take("Q")
        if typ != 0:
            sys.exit(f"{name}: type {typ}; the gist model must be all F32 (terse finetune --init)")
        infos.append((name, ne, off))
    align = meta.get("general.alignment", 32)
    start = (r.p + align - 1) // align * align
    return meta, {n: (start + off, list(reversed(ne))) for n, ne, off in infos}, b


def load_weights(path, dtype, device):
    meta, infos, b = read_gguf(path)
    W = {}
    for name, (at, shape) in infos.items():
        a = np.frombuffer(b, np.float32, int(np.prod(shape)), at).reshape(shape)
        W[name] = torch.tensor(a.astype(np.float64), dtype=dtype, device=device,
                               requires_grad=True)
    return meta, infos, b, W


def write_gguf(src_bytes, infos, W, path):
    out = bytearray(src_bytes)
    for name, (at, shape) in infos.items():
        a = W[name].detach().to("cpu", torch.float64).numpy().astype(np.float32).tobytes()
        out[at:at + len(a)] = a
    open(path, "wb").write(bytes(out))


# ------------------------------------------------------------------------------------------
# The runtime's forward, batched (B sequences padded to T; mask (B, T, T) bool)

def rope(x, H, D, theta, neox, T):
    half = D // 2
    inv = 1.0 / (theta ** (torch.arange(half, dtype=torch.float32) * 2.0 / D))
    ang = (torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]).to(torch.float64)
    c = torch.cos(ang).to(x.dtype).to(x.device)[None, :, None, :]
    s = torch.sin(ang).to(x.dtype).to(x.device)[None, :, None, :]
    B = x.shape[0]
    v = x.reshape(B, T, H, D)
    if neox:
        a, b = v[..., :half], v[..., half:]
        out = torch.cat([a * c - b * s, b * c + a * s], dim=-1)
    else:
        a, b = v[..., 0::2], v[..., 1::2]
        out = torch.stack([a * c - b * s, b * c + a * s], dim=-1).reshape(B, T, H, D)
    return out.reshape(B, T, H * D)


def forward(W, meta, ids, mask):
    arch = meta["general.architecture"]
    g = lambda k, d=None: meta.get(f"{arch}.{k}", d)
    C, L, H = g("embedding_length"), g("block_count"), g("attention.head_count")
    Hkv = g("attention.head_count_kv", H) or H
    D = C // H
    B, T = ids.shape
    x = W["token_embd.weight"][ids]
    if arch == "gpt2":
        eps = g("attention.layer_norm_epsilon", 1e-5)
        x = x + W["position_embd.weight"][:T][None]
    else:
        eps = g("attention.layer_norm_rms_epsilon", 1e-5)
        theta = g("rope.freq_base", 10000.0)

    def norm(x, w, b):
        if arch == "gpt2":
            return Fn.layer_norm(x, (C,), w, b, eps)
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def lin(x, name, bias=None):
        y = x @ W[name].t()
        return y + W[bias] if bias and bias in W else y

    neg = torch.finfo(x.dtype).min
    for l in range(L):
        p = f"blk.{l}."
        xn = norm(x, W[p + "attn_norm.weight"], W.get(p + "attn_norm.bias"))
        if arch == "gpt2":
            qkv = lin(xn, p + "attn_qkv.weight", p + "attn_qkv.bias")
            q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
        else:
            q = lin(xn, p + "attn_q.weight", p + "attn_q.bias")
            k = lin(xn, p + "attn_k.weight", p + "attn_k.bias")
            v = lin(xn, p + "attn_v.weight", p + "attn_v.bias")
            q = rope(q, H, D, theta, arch == "qwen2", T)
            k = rope(k, Hkv, D, theta, arch == "qwen2", T)
        qh = q.reshape(B, T, H, D).transpose(1, 2)
        kh = k.reshape(B, T, Hkv, D).transpose(1, 2).repeat_interleave(H // Hkv, dim=1)
        vh = v.reshape(B, T, Hkv, D).transpose(1, 2).repeat_interleave(H // Hkv, dim=1)
        s = qh @ kh.transpose(-1, -2) / math.sqrt(D)
        s = s.masked_fill(~mask[:, None], neg)
        a = (torch.softmax(s, dim=-1) @ vh).transpose(1, 2).reshape(B, T, H * D)
        x = x + lin(a, p + "attn_output.weight", p + "attn_output.bias")
        xn = norm(x, W[p + "ffn_norm.weight"], W.get(p + "ffn_norm.bias"))
        if arch == "gpt2":
            h = Fn.gelu(lin(xn, p + "ffn_up.weight", p + "ffn_up.bias"), approximate="tanh")
        else:
            h = Fn.silu(lin(xn, p + "ffn_gate.weight")) * lin(xn, p + "ffn_up.weight")
        x = x + lin(h, p + "ffn_down.weight", p + "ffn_down.bias")
    hn = norm(x, W["output_norm.weight"], W.get("output_norm.bias"))
    out = W["output.weight"] if "output.weight" in W else W["token_embd.weight"]
    return hn @ out.t()


def gist_mask(kind, T, first, last):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    m = j <= i
    if first >= 0:
        if kind == "gist":
            m = m & ((i <= last) | (j >= first))
        elif kind == "neg":
            m = m & ((i <= last) | (j > last))
    return m


def read_examples(path):
    ex = []
    for line in open(path):
        f = [int(t) for t in line.split()]
        n, first, last, n_prompt = f[:4]
        assert len(f) == 4 + n, "bad examples line"
        ex.append((f[4:], first, last, n_prompt))
    return ex


def batch_tensors(exs, kind, device):
    """ids (B, T), targets (B, T) with -100 outside the response, mask (B, T, T)"""
    T = max(len(e[0]) - 1 for e in exs)
    B = len(exs)
    ids = torch.zeros(B, T, dtype=torch.long)
    tg = torch.full((B, T), -100, dtype=torch.long)
    mask = torch.zeros(B, T, T, dtype=torch.bool)
    for b, (toks, first, last, n_prompt) in enumerate(exs):
        n = len(toks) - 1
        ids[b, :n] = torch.tensor(toks[:n])
        for t in range(n_prompt - 1, n):
            tg[b, t] = toks[t + 1]
        mask[b, :n, :n] = gist_mask(kind, n, first, last)
        for t in range(n, T):       # padding rows see themselves (no NaN); no loss there
            mask[b, t, t] = True
    return ids.to(device), tg.to(device), mask.to(device)


# ------------------------------------------------------------------------------------------
# terse's AdamW

def lr_at(a, s):
    if a.warmup > 0 and s <= a.warmup:
        return a.lr * s / a.warmup
    if s >= a.steps:
        return a.min_lr
    span = a.steps - a.warmup
    frac = (s - a.warmup) / span if span > 0 else 1.0
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1.0 + math.cos(math.pi * frac))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("examples")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--min-lr", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--mask", default="gist", choices=["gist", "pos", "neg"])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--micro", type=int, default=0, help="sequences per forward (0: batch)")
    ap.add_argument("--log", default=None)
    ap.add_argument("--golden", default=None, help="write losses and weight samples")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    meta, infos, raw, W = load_weights(a.model, dtype, a.device)
    exs = read_examples(a.examples)
    names = sorted(W)
    decay = {n: W[n].dim() == 2 and n not in ("token_embd.weight", "position_embd.weight")
             for n in names}
    M = {n: torch.zeros_like(W[n], dtype=torch.float64 if dtype == torch.float64 else torch.float32) for n in names}
    V2 = {n: torch.zeros_like(M[n]) for n in names}
    log = open(a.log, "w") if a.log else None
    losses = []
    b1, b2, eps = 0.9, 0.999, 1e-8
    t0 = time.time()
    for s in range(1, a.steps + 1):
        batch = [exs[((s - 1) * a.batch + b) % len(exs)] for b in range(a.batch)]
        total = sum(len(e[0]) - e[3] for e in batch)
        for n in names:
            W[n].grad = None
        loss_v = 0.0
        micro = a.micro or a.batch
        for k in range(0, a.batch, micro):
            ids, tg, mask = batch_tensors(batch[k:k + micro], a.mask, a.device)
            logits = forward(W, meta, ids, mask)
            lp = torch.log_softmax(logits.float() if dtype == torch.bfloat16 else logits, -1)
            loss = Fn.nll_loss(lp.reshape(-1, lp.shape[-1]), tg.reshape(-1), ignore_index=-100,
                               reduction="sum") / total
            loss.backward()
            loss_v += float(loss)
        with torch.no_grad():
            gs = {n: (W[n].grad if W[n].grad is not None else torch.zeros_like(W[n])).to(M[n].dtype) for n in names}
            norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in gs.values()))
            sc = a.clip / norm if a.clip > 0 and norm > a.clip else 1.0
            lr = lr_at(a, s)
            c1, c2 = 1 - b1 ** s, 1 - b2 ** s
            for n in names:
                g = gs[n] * sc
                M[n].mul_(b1).add_(g, alpha=1 - b1)
                V2[n].mul_(b2).addcmul_(g, g, value=1 - b2)
                upd = (M[n] / c1) / ((V2[n] / c2).sqrt() + eps)
                if decay[n] and a.wd > 0:
                    upd = upd + a.wd * W[n].to(M[n].dtype)
                W[n].sub_((lr * upd).to(dtype))
        losses.append(loss_v)
        msg = f"{s}\t{loss_v:.9g}\t{norm:.6g}\t{lr:.6g}\t{time.time() - t0:.1f}"
        if log:
            log.write(msg + "\n")
            log.flush()
        if s == 1 or s % 10 == 0 or s == a.steps:
            print(msg, flush=True)
    write_gguf(raw, infos, W, a.out)
    if a.golden:
        with open(a.golden, "w") as f:
            f.write(f"steps {a.steps}\n")
            for s, l in enumerate(losses, 1):
                f.write(f"loss {s} {l:.9e}\n")
            for n in names:
                w = W[n].detach().double().reshape(-1)
                f.write(f"tensor {n} {w.numel()} {float(w.norm()):.9e}\n")
                for j in range(8):
                    i = (7919 * j + 13) % w.numel()
                    f.write(f"w {n} {i} {float(w[i]):.9e}\n")


if __name__ == "__main__":
    main()
