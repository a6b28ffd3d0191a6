#!/usr/bin/env python3
"""gist_train.py - the gist-token fine-tuning recipe of `terse finetune --gist K` in PyTorch.

Same recipe as src/train/gist.c + finetune.c (the C test tests/test_gist_train.c checks the
first 20 steps of both against tests/golden/gist/, made by tools/gist_golden.sh):
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
            clipping, linear warm-up then cosine to min_lr at the last step; here one update
            over a flat vector holding every weight (the tensors are views into it)
The trained weights are written as a GGUF with the input model's header and layout (all F32).
GGUF reading: tools/ref_gguf.py (imported from beside this file).

The training step runs on the device without waiting for the host: batches are slices of the
examples packed on the device once, masks are built there, the gradient norm and clipping stay
device tensors; the host reads the losses back every 10 steps. On CUDA the attention is
torch's scaled_dot_product_attention with the boolean mask; on the CPU (the float64 golden)
the plain masked softmax.

MODEL may also be the Q8_0 base model itself: it is made into the gist model here as terse
does (dequantised, the <GIST> row = the mean row; the id is the old vocabulary size), and the
trained weights are saved as OUT (.npz); `gist_train.py --splice INIT.gguf OUT.npz OUT.gguf`
puts them into the layout of terse's gist model INIT.gguf (`terse finetune --init`).
--eval EXAMPLES...: after training, greedy outputs of each example's prompt under the same
mask, batched with a KV cache (tested against full recomputation: --check-gen), written as
lines "index<TAB>ids" (index = the example's line); items run in a seeded order (--eval-seed),
so a run stopped by its time limit leaves a random subset, the same prefix for every model.

Usage: gist_train.py MODEL.gguf EXAMPLES.txt OUT.gguf [--steps N --batch B --lr X
       --min-lr X --warmup N --wd X --clip X --mask gist|pos|neg --dtype float32|float64
       --device cpu|cuda --log LOG.tsv --golden GOLDEN.txt --deadline EPOCH_S ...]
"""
import argparse
import lzma
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_gguf  # noqa: E402


def read_model(path, allow_q8=False):
    """(meta, {name: (offset, shape, type)}, bytes); F32 tensors (and Q8_0 when allow_q8)"""
    meta, infos, b = ref_gguf.read_gguf_raw(path)
    for name, (at, shape, typ) in infos.items():
        if typ != 0 and not (allow_q8 and typ == 8):
            sys.exit(f"{name}: type {typ}; the gist model must be all F32 (terse finetune --init)")
    return meta, infos, b


class Params:
    """every weight in one flat vector P (decayed matrices first), W[name] = leaf views into
    it whose .grad are views into one flat gradient vector G"""

    def __init__(self, arrays, dtype, device):
        decay = lambda n: arrays[n].ndim == 2 and n not in ("token_embd.weight",
                                                            "position_embd.weight")
        self.names = sorted(arrays, key=lambda n: (not decay(n), n))
        self.n_decay = sum(arrays[n].size for n in self.names if decay(n))
        total = sum(arrays[n].size for n in self.names)
        self.P = torch.empty(total, dtype=dtype, device=device)
        self.G = torch.zeros(total, dtype=dtype, device=device)
        self.W, self.span, off = {}, {}, 0
        for n in self.names:
            a = arrays[n]
            k = a.size
            self.P[off:off + k] = torch.from_numpy(np.ascontiguousarray(a).reshape(-1)).to(dtype)
            w = self.P[off:off + k].view(a.shape)
            w.requires_grad_(True)
            w.grad = self.G[off:off + k].view(a.shape)
            self.W[n], self.span[n] = w, (off, k)
            off += k


def load_weights(path, dtype, device):
    """F32 gist model as is; a base model (no terse.gist.token_id) becomes one as
    terse's gist_model_make does: a <GIST> row = the mean row of token_embd (and output)"""
    meta, infos, b = read_model(path, allow_q8=True)
    base = "terse.gist.token_id" not in meta
    A = {}
    for name, (at, shape, typ) in infos.items():
        a = ref_gguf.tensor_f64(b, at, shape, typ, name)
        if base and name in ("token_embd.weight", "output.weight"):
            a = np.concatenate([a, a.astype(np.float32).astype(np.float64).mean(0, keepdims=True)], 0)
        A[name] = a.astype(np.float32).astype(np.float64)
    return meta, infos, b, Params(A, dtype, device), base


def write_gguf(src_bytes, infos, W, path):
    out = bytearray(src_bytes)
    for name, (at, shape, typ) in infos.items():
        a = W[name].detach().to("cpu", torch.float64).numpy().astype(np.float32).tobytes()
        out[at:at + len(a)] = a
    open(path, "wb").write(bytes(out))


def save_q8(W, names, out, parts):
    """matrices as GGML Q8_0 (f16 scale amax/127 per 32, int8 round(x/d)); vectors as f32;
    spread over `parts` .npz files of about equal size"""
    items = []
    for n in names:
        w = W[n].detach().to("cpu", torch.float32)
        if w.dim() == 2 and w.shape[1] % 32 == 0:
            b = w.reshape(-1, 32)
            d = (b.abs().amax(1) / 127).to(torch.float16)
            df = d.to(torch.float32)
            q = torch.where(df[:, None] > 0, b / df.clamp_min(1e-30)[:, None], torch.zeros_like(b))
            q = (q.sign() * (q.abs() + 0.5).floor()).clamp(-127, 127).to(torch.int8)
            items.append((n, {n + ".d": d.numpy(), n + ".q": q.numpy(), n + ".shape": np.array(w.shape)}))
        else:
            items.append((n, {n: w.numpy()}))
    size = lambda it: sum(v.nbytes for v in it[1].values())
    total, acc, k, cur = sum(size(it) for it in items), 0, 0, {}
    for it in items:
        cur.update(it[1])
        acc += size(it)
        if acc >= total * (k + 1) / parts and k < parts - 1:
            np.savez(f"{out}.{k}.npz", **cur)
            cur, k = {}, k + 1
    np.savez(f"{out}.{k}.npz", **cur)


def load_q8_parts(paths):
    """the inverse of save_q8: {name: float32 array}"""
    W = {}
    for p in paths:
        z = np.load(p)
        for key in z.files:
            if key.endswith(".q"):
                n = key[:-2]
                d = z[n + ".d"].astype(np.float32)
                W[n] = (d[:, None] * z[key].astype(np.float32)).reshape(z[n + ".shape"])
            elif not key.endswith(".d") and not key.endswith(".shape"):
                W[key] = z[key]
    return W


def splice(init_path, npz_path, out_path):
    """weights saved as .npz (training started from a base model) -> a GGUF with the layout
    of terse's gist model init_path (terse finetune --init)"""
    meta, infos, b = read_model(init_path)
    z = load_q8_parts(npz_path.split(",")) if "," in npz_path else np.load(npz_path)
    out = bytearray(b)
    for name, (at, shape, typ) in infos.items():
        a = z[name].astype(np.float32)
        assert list(a.shape) == shape, f"{name}: shape {a.shape} vs {shape}"
        out[at:at + a.nbytes] = a.tobytes()
    open(out_path, "wb").write(bytes(out))


# ------------------------------------------------------------------------------------------
# The runtime's forward, batched: B sequences padded to T, positions pos (B, T); `attend`
# turns the layer's q (B, H, T, D) and roped k, v (B, Hkv, T, D) into (B, T, H*D)

def config(meta):
    arch = meta["general.architecture"]
    g = lambda k, d=None: meta.get(f"{arch}.{k}", d)
    C, H = g("embedding_length"), g("attention.head_count")
    return dict(arch=arch, C=C, L=g("block_count"), H=H, Hkv=g("attention.head_count_kv", H) or H,
                D=C // H, theta=g("rope.freq_base", 10000.0),
                eps=g("attention.layer_norm_epsilon" if arch == "gpt2"
                      else "attention.layer_norm_rms_epsilon", 1e-5))


_INV = {}


def rope_tables(pos, D, theta, dtype):
    """cos, sin (B, T, 1, D/2) of positions pos (B, T): angles in float32 as the runtime,
    cos and sin in float64"""
    key = (D, theta, pos.device)
    if key not in _INV:
        inv = 1.0 / (theta ** (torch.arange(D // 2, dtype=torch.float32) * 2.0 / D))
        _INV[key] = inv.to(pos.device)
    ang = (pos.to(torch.float32)[..., None] * _INV[key]).to(torch.float64)
    return torch.cos(ang).to(dtype)[:, :, None, :], torch.sin(ang).to(dtype)[:, :, None, :]


def rope(x, H, D, neox, c, s):
    """x (B, T, H*D), tables of rope_tables"""
    half = D // 2
    B, T = x.shape[:2]
    v = x.reshape(B, T, H, D)
    if neox:
        a, b = v[..., :half], v[..., half:]
        out = torch.cat([a * c - b * s, b * c + a * s], dim=-1)
    else:
        a, b = v[..., 0::2], v[..., 1::2]
        out = torch.stack([a * c - b * s, b * c + a * s], dim=-1).reshape(B, T, H, D)
    return out.reshape(B, T, H * D)


def hidden(W, cf, ids, pos, attend):
    arch, C, H, Hkv, D = cf["arch"], cf["C"], cf["H"], cf["Hkv"], cf["D"]
    B, T = ids.shape
    x = W["token_embd.weight"][ids]
    if arch == "gpt2":
        x = x + W["position_embd.weight"][pos]
    else:
        rc, rs = rope_tables(pos, D, cf["theta"], x.dtype)

    def norm(x, w, b):
        if arch == "gpt2":
            return Fn.layer_norm(x, (C,), w, b, cf["eps"])
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + cf["eps"]) * w

    def lin(x, name, bias=None):
        y = x @ W[name].t()
        return y + W[bias] if bias and bias in W else y

    for l in range(cf["L"]):
        p = f"blk.{l}."
        xn = norm(x, W[p + "attn_norm.weight"], W.get(p + "attn_norm.bias"))
        if arch == "gpt2":
            qkv = lin(xn, p + "attn_qkv.weight", p + "attn_qkv.bias")
            q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
        else:
            q = lin(xn, p + "attn_q.weight", p + "attn_q.bias")
            k = lin(xn, p + "attn_k.weight", p + "attn_k.bias")
            v = lin(xn, p + "attn_v.weight", p + "attn_v.bias")
            q = rope(q, H, D, arch == "qwen2", rc, rs)
            k = rope(k, Hkv, D, arch == "qwen2", rc, rs)
        a = attend(l, q.reshape(B, T, H, D).transpose(1, 2), k.reshape(B, T, Hkv, D).transpose(1, 2),
                   v.reshape(B, T, Hkv, D).transpose(1, 2))
        x = x + lin(a, p + "attn_output.weight", p + "attn_output.bias")
        xn = norm(x, W[p + "ffn_norm.weight"], W.get(p + "ffn_norm.bias"))
        if arch == "gpt2":
            h = Fn.gelu(lin(xn, p + "ffn_up.weight", p + "ffn_up.bias"), approximate="tanh")
        else:
            h = Fn.silu(lin(xn, p + "ffn_gate.weight")) * lin(xn, p + "ffn_up.weight")
        x = x + lin(h, p + "ffn_down.weight", p + "ffn_down.bias")
    return norm(x, W["output_norm.weight"], W.get("output_norm.bias"))


def logits_of(W, h):
    out = W["output.weight"] if "output.weight" in W else W["token_embd.weight"]
    return h @ out.t()


def masked_attention(q, k, v, mask, sdpa):
    """q (B, H, T, D), k v (B, Hkv, S, D), mask (B, T, S) bool -> (B, T, H*D)"""
    B, H, T, D = q.shape
    rep = H // k.shape[1]
    if rep > 1:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    if sdpa:
        a = Fn.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
    else:
        s = q @ k.transpose(-1, -2) / math.sqrt(D)
        s = s.masked_fill(~mask[:, None], torch.finfo(s.dtype).min)
        a = torch.softmax(s, dim=-1) @ v
    return a.transpose(1, 2).reshape(B, T, H * D)


def forward(W, meta, ids, mask, sdpa=False):
    """logits (B, T, V) of ids (B, T) under mask (B, T, T)"""
    cf = config(meta)
    B, T = ids.shape
    pos = torch.arange(T, device=ids.device)[None].expand(B, T)
    att = lambda l, q, k, v: masked_attention(q, k, v, mask, sdpa)
    return logits_of(W, hidden(W, cf, ids, pos, att))


def gist_mask(kind, T, first, last):
    """(B, T, T) masks on first's device; first, last (B,) (first < 0: no gist, causal)"""
    dev = first.device
    i = torch.arange(T, device=dev)[None, :, None]
    j = torch.arange(T, device=dev)[None, None, :]
    f, l = first[:, None, None], last[:, None, None]
    m = j <= i
    if kind == "gist":
        m = m & ((f < 0) | (i <= l) | (j >= f))
    elif kind == "neg":
        m = m & ((f < 0) | (i <= l) | (j > l))
    return m


def read_examples(path):
    ex = []
    op = lzma.open if path.endswith(".xz") else open
    for line in op(path, "rt"):
        f = [int(t) for t in line.split()]
        n, first, last, n_prompt = f[:4]
        assert len(f) == 4 + n, "bad examples line"
        ex.append((f[4:], first, last, n_prompt))
    return ex


class Packed:
    """examples as device tensors: toks (N, Lmax) padded, lens, first, last, n_prompt; the
    same on the host (numpy) for the lengths a batch needs"""

    def __init__(self, exs, device):
        N, L = len(exs), max(len(e[0]) for e in exs)
        t = np.zeros((N, L), np.int64)
        for i, e in enumerate(exs):
            t[i, :len(e[0])] = e[0]
        self.lens = np.array([len(e[0]) for e in exs], np.int64)
        self.np_prompt = np.array([e[3] for e in exs], np.int64)
        self.toks = torch.from_numpy(t).to(device)
        meta = torch.tensor([[len(e[0]), e[1], e[2], e[3]] for e in exs], dtype=torch.long)
        self.n, self.first, self.last, self.n_prompt = meta.to(device).unbind(1)

    def batch(self, idx, kind, it=None):
        """ids (B, T), targets (B, T) with -100 outside the response, mask (B, T, T), and the
        number of target tokens (host int); idx: numpy indices, it: the same on the device"""
        T = int(self.lens[idx].max()) - 1
        if it is None:
            it = torch.as_tensor(idx, device=self.toks.device)
        toks = self.toks[it, :T + 1]
        ids, nxt = toks[:, :T], toks[:, 1:]
        t = torch.arange(T, device=ids.device)[None]
        want = (t >= self.n_prompt[it][:, None] - 1) & (t < self.n[it][:, None] - 1)
        tg = torch.where(want, nxt, torch.full_like(nxt, -100))
        total = int((self.lens[idx] - self.np_prompt[idx]).sum())
        return ids, tg, gist_mask(kind, T, self.first[it], self.last[it]), total


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


class AdamW:
    """src/train/adamw.c over the flat vectors of Params; no host synchronisation"""

    def __init__(self, prm, a):
        self.prm, self.a = prm, a
        self.M = torch.zeros_like(prm.P)
        self.V = torch.zeros_like(prm.P)

    @torch.no_grad()
    def step(self, s, lr):
        a, P, G, M, V = self.a, self.prm.P, self.prm.G, self.M, self.V
        b1, b2, eps = 0.9, 0.999, 1e-8
        norm = torch.linalg.vector_norm(G, dtype=torch.float64)
        if a.clip > 0:
            sc = torch.clamp(a.clip / norm, max=1.0).to(G.dtype)
            g = G * sc
        else:
            g = G
        c1, c2 = 1 - b1 ** s, 1 - b2 ** s
        M.mul_(b1).add_(g, alpha=1 - b1)
        V.mul_(b2).addcmul_(g, g, value=1 - b2)
        upd = (M / c1).div_((V / c2).sqrt_().add_(eps))
        if a.wd > 0:
            d = self.prm.n_decay
            upd[:d].add_(P[:d], alpha=a.wd)
        P.add_(upd, alpha=-lr)
        return norm


# ------------------------------------------------------------------------------------------
# Greedy generation

@torch.no_grad()
def generate_recompute(W, meta, exs, kind, max_new, eos):
    """reference: one sequence at a time, the whole sequence recomputed for every token"""
    outs = []
    for toks, first, last, n_prompt in exs:
        q = list(toks[:n_prompt])
        dev = W["token_embd.weight"].device
        for _ in range(max_new):
            ids = torch.tensor([q], device=dev)
            m = gist_mask(kind, len(q), torch.tensor([first], device=dev),
                          torch.tensor([last], device=dev))
            nt = int(forward(W, meta, ids, m)[0, -1].argmax())
            if nt == eos:
                break
            q.append(nt)
        outs.append(q[n_prompt:])
    return outs


@torch.no_grad()
def generate_batch(W, meta, exs, kind, max_new, eos, sdpa):
    """greedy continuations of the prompts of exs (one batch, right-padded) with a KV cache:
    the prompt under the mask, then one token per step attending to the cached entries the
    mask allows (every generated token comes after the gists)"""
    cf = config(meta)
    dev = W["token_embd.weight"].device
    B = len(exs)
    Lp = torch.tensor([e[3] for e in exs], device=dev)
    Tp = max(e[3] for e in exs)
    S = Tp + max_new
    ids = torch.zeros(B, Tp, dtype=torch.long)
    for b, e in enumerate(exs):
        ids[b, :e[3]] = torch.tensor(e[0][:e[3]])
    ids = ids.to(dev)
    first = torch.tensor([e[1] for e in exs], device=dev)
    last = torch.tensor([e[2] for e in exs], device=dev)
    dt = W["token_embd.weight"].dtype
    Kc = [torch.zeros(B, cf["Hkv"], S, cf["D"], dtype=dt, device=dev) for _ in range(cf["L"])]
    Vc = [torch.zeros_like(Kc[0]) for _ in range(cf["L"])]
    mask = gist_mask(kind, Tp, first, last)

    def prefill(l, q, k, v):
        Kc[l][:, :, :Tp], Vc[l][:, :, :Tp] = k, v
        return masked_attention(q, k, v, mask, sdpa)

    pos = torch.arange(Tp, device=dev)[None].expand(B, Tp)
    h = hidden(W, cf, ids, pos, prefill)
    h = h[torch.arange(B, device=dev), Lp - 1]
    nxt = logits_of(W, h).argmax(-1)
    out = torch.zeros(B, max_new, dtype=torch.long, device=dev)
    out[:, 0] = nxt
    done = nxt == eos
    j = torch.arange(S, device=dev)[None]
    f, l_ = first[:, None], last[:, None]
    seen = torch.ones(B, S, dtype=torch.bool, device=dev)
    if kind == "gist":
        seen = (f < 0) | (j >= f)
    elif kind == "neg":
        seen = (f < 0) | (j > l_)
    cur = Lp.clone()              # where the token being fed goes
    rows = torch.arange(B, device=dev)
    for s in range(1, max_new):
        allow = (seen & (j <= cur[:, None]))[:, None, :]        # (B, 1, S)

        def step(l, q, k, v):
            Kc[l][rows, :, cur] = k[:, :, 0]
            Vc[l][rows, :, cur] = v[:, :, 0]
            return masked_attention(q, Kc[l], Vc[l], allow, sdpa)

        h = hidden(W, cf, nxt[:, None], cur[:, None], step)
        nxt = logits_of(W, h[:, 0]).argmax(-1)
        out[:, s] = nxt
        done = done | (nxt == eos)
        cur = cur + 1
        if s % 8 == 0 and bool(done.all()):
            break
    res = []
    for row in out.tolist():
        res.append(row[:row.index(eos)] if eos in row else row)
    return res


def generate(W, meta, exs, order, kind, max_new, eos, chunk, tokens, deadline, sdpa, emit):
    """items of exs in `order`, chunk by chunk (each sorted by prompt length and split so a
    batch holds at most `tokens` cache positions); emit(index, ids) per item; stops between
    chunks at the deadline. Returns the number of items done."""
    done = 0
    for k in range(0, len(order), chunk):
        if deadline and time.time() > deadline:
            break
        part = sorted(order[k:k + chunk], key=lambda i: exs[i][3])
        b0 = 0
        while b0 < len(part):
            b1 = b0 + 1
            while b1 < len(part) and (b1 + 1 - b0) * (exs[part[b1]][3] + max_new) <= tokens:
                b1 += 1
            sub = part[b0:b1]
            for i, g in zip(sub, generate_batch(W, meta, [exs[i] for i in sub], kind, max_new,
                                                eos, sdpa)):
                emit(i, g)
            b0 = b1
        done += len(part)
    return done


@torch.no_grad()
def eval_loss(W, meta, exs, kind, device, sdpa, deadline, batch):
    """mean response cross-entropy (nats per token) of exs under the mask"""
    pk = Packed(exs, device)
    tot, cnt = 0.0, 0
    by_len = np.argsort(pk.lens, kind="stable")
    for k in range(0, len(exs), batch):
        if deadline and time.time() > deadline:
            break
        idx = by_len[k:k + batch]
        ids, tg, mask, n = pk.batch(idx, kind)
        lg = forward(W, meta, ids, mask, sdpa)
        tot += float(Fn.cross_entropy(lg.reshape(-1, lg.shape[-1]).float(), tg.reshape(-1),
                                      ignore_index=-100, reduction="sum"))
        cnt += n
    return tot / max(cnt, 1), cnt


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--splice":
        return splice(sys.argv[2], sys.argv[3], sys.argv[4])
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
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--micro", type=int, default=0, help="sequences per forward (0: batch)")
    ap.add_argument("--log", default=None)
    ap.add_argument("--golden", default=None, help="write losses and weight samples")
    ap.add_argument("--deadline", type=float, default=0, help="stop training at this time "
                    "(epoch seconds); at step --fit-at the step count is cut to what fits")
    ap.add_argument("--fit-at", type=int, default=30)
    ap.add_argument("--mem-fraction", type=float, default=0, help="CUDA memory cap (fraction)")
    ap.add_argument("--eval", nargs="*", default=[], help="EXAMPLES.txt files: greedy outputs "
                    "after training to <eval-dir>/<out base>.<file>.gen")
    ap.add_argument("--eval-deadline", type=float, default=0, help="epoch seconds")
    ap.add_argument("--eval-loss", action="store_true", help="also the response loss per file")
    ap.add_argument("--eval-seed", type=int, default=1)
    ap.add_argument("--eval-dir", default=None, help="where .gen files go (default: beside OUT)")
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--eos", type=int, default=-1, help="default: the model's")
    ap.add_argument("--chunk", type=int, default=256, help="eval items per chunk")
    ap.add_argument("--tokens", type=int, default=65536, help="cache positions per batch")
    ap.add_argument("--check-gen", type=int, default=0, help="check N items of the first eval "
                    "file: KV-cache generation = full recomputation (16 tokens)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true", help="do not write the weights")
    ap.add_argument("--save-q8", type=int, default=0, help="save matrices as Q8_0 blocks in N "
                    ".npz parts OUT.0.npz ... (to bring back under a file-size limit)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cuda = a.device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        if a.mem_fraction:
            torch.cuda.set_per_process_memory_fraction(a.mem_fraction)
    sdpa = cuda and hasattr(Fn, "scaled_dot_product_attention")
    dtype = getattr(torch, a.dtype)
    t_load = time.time()
    meta, infos, raw, prm, from_base = load_weights(a.model, dtype, a.device)
    W = prm.W
    eos = a.eos if a.eos >= 0 else meta.get("tokenizer.ggml.eos_token_id", 0)
    exs = read_examples(a.examples)
    pk = Packed(exs, a.device)
    opt = AdamW(prm, a)
    print(f"loaded {len(exs)} examples, {prm.P.numel()} weights in {time.time() - t_load:.1f}s; "
          f"{'sdpa' if sdpa else 'plain'} attention", flush=True)
    log = open(a.log, "w") if a.log else None
    losses, pending = [], []
    t0 = time.time()
    t_fit = None
    s = 0

    def flush():
        if not pending:
            return
        vals = torch.stack([torch.stack([l.double(), n.double()]) for _, l, n, _ in pending]).tolist()
        for (st, _, _, lr), (lv, nv) in zip(pending, vals):
            losses.append(lv)
            msg = f"{st}\t{lv:.9g}\t{nv:.6g}\t{lr:.6g}\t{time.time() - t0:.1f}"
            if log:
                log.write(msg + "\n")
            if st == 1 or st % 50 == 0 or st == a.steps:
                print(msg, flush=True)
            if not math.isfinite(lv) or not math.isfinite(nv):
                sys.exit(f"step {st}: loss {lv} gradient norm {nv}; stopped")
        if log:
            log.flush()
        pending.clear()

    ar = torch.arange(a.batch, device=prm.P.device)
    while s < a.steps:
        s += 1
        idx = np.array([((s - 1) * a.batch + b) % len(exs) for b in range(a.batch)])
        prm.G.zero_()
        loss_v = torch.zeros((), dtype=torch.float64, device=prm.P.device)
        micro = a.micro or a.batch
        total = int((pk.lens[idx] - pk.np_prompt[idx]).sum())
        it = (ar + (s - 1) * a.batch) % len(exs)       # = idx, made on the device
        for k in range(0, a.batch, micro):
            ids, tg, mask, _ = pk.batch(idx[k:k + micro], a.mask, it[k:k + micro])
            lg = forward(W, meta, ids, mask, sdpa)
            loss = Fn.cross_entropy(lg.reshape(-1, lg.shape[-1]), tg.reshape(-1),
                                    ignore_index=-100, reduction="sum") / total
            loss.backward()
            loss_v += loss.detach()
        lr = lr_at(a, s)
        norm = opt.step(s, lr)
        pending.append((s, loss_v, norm, lr))
        if s % 10 == 0 or s == a.steps:
            flush()
        if s == 5:
            t_fit = time.time()
        if a.deadline and s == a.fit_at and t_fit:
            flush()
            rate = (time.time() - t_fit) / (s - 5)
            fit = s + int(0.85 * (a.deadline - time.time()) / rate)
            if fit < a.steps:
                print(f"{rate * 1000:.0f} ms/step: {fit} of {a.steps} steps fit before the "
                      f"deadline; the schedule now ends at {fit}", flush=True)
                a.steps = max(fit, a.warmup + 1, s + 1)
            else:
                print(f"{rate * 1000:.0f} ms/step: {a.steps} steps fit", flush=True)
        if a.deadline and time.time() > a.deadline:
            print(f"deadline: stopped after step {s} of {a.steps}", flush=True)
            break
    if pending:
        flush()
    print(f"trained {s} steps in {time.time() - t0:.1f}s", flush=True)
    if a.no_save:
        pass
    elif a.save_q8:
        save_q8(W, prm.names, a.out, a.save_q8)
    elif from_base:
        np.savez(a.out, **{n: W[n].detach().to("cpu", torch.float32).numpy() for n in prm.names})
    else:
        write_gguf(raw, infos, W, a.out)
    d = a.eval_dir or os.path.dirname(os.path.abspath(a.out))
    base = os.path.basename(a.out).rsplit(".", 1)[0]
    if a.check_gen and a.eval:
        ev = read_examples(a.eval[0])[:a.check_gen]
        t1 = time.time()
        ref = generate_recompute(W, meta, ev, a.mask, 16, eos)
        got = generate_batch(W, meta, ev, a.mask, 16, eos, sdpa)
        same = sum(r == g for r, g in zip(ref, got))
        print(f"check-gen: {same} of {len(ev)} items identical (KV cache vs recompute, 16 "
              f"tokens), {time.time() - t1:.1f}s", flush=True)
    loss_end = 0
    if a.eval_loss and a.eval_deadline:     # at most a tenth of the evaluation's time
        loss_end = time.time() + max(0.0, a.eval_deadline - time.time()) / 10
    for fi, path in enumerate(a.eval):
        ev = read_examples(path)
        if a.eval_loss:
            t1 = time.time()
            end = t1 + max(0.0, loss_end - t1) / (len(a.eval) - fi) if loss_end else 0
            el, n = eval_loss(W, meta, ev, a.mask, a.device, sdpa, end, a.chunk // 16 or 1)
            print(f"evalloss {os.path.basename(path)}: {el:.5f} nats/token over {n} tokens, "
                  f"{time.time() - t1:.1f}s", flush=True)
    for fi, path in enumerate(a.eval):
        ev = read_examples(path)
        order = np.random.RandomState(a.eval_seed).permutation(len(ev)).tolist()
        t1 = time.time()
        end = 0             # the time left, shared evenly by the files left
        if a.eval_deadline:
            end = t1 + max(0.0, a.eval_deadline - t1) / (len(a.eval) - fi)
        with open(os.path.join(d, f"{base}.{os.path.basename(path)}.gen"), "w", buffering=1) as f:
            def emit(i, g):
                f.write(f"{i}\t" + " ".join(map(str, g)) + "\n")
            n = generate(W, meta, ev, order, a.mask, a.max_new, eos, a.chunk, a.tokens, end,
                         sdpa, emit)
        print(f"eval {path}: {n} of {len(ev)} items, {time.time() - t1:.1f}s", flush=True)
    if a.golden:
        with open(a.golden, "w") as f:
            f.write(f"steps {a.steps}\n")
            for st, l in enumerate(losses, 1):
                f.write(f"loss {st} {l:.9e}\n")
            for n in sorted(prm.names):
                w = W[n].detach().double().reshape(-1)
                f.write(f"tensor {n} {w.numel()} {float(w.norm()):.9e}\n")
                for j in range(8):
                    i = (7919 * j + 13) % w.numel()
                    f.write(f"w {n} {i} {float(w[i]):.9e}\n")


if __name__ == "__main__":
    main()
