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

MODEL may also be the Q8_0 base model itself: it is made into the gist model here as terse
does (dequantised, the <GIST> row = the mean row; the id is the old vocabulary size), and the
trained weights are saved as OUT (.npz); `gist_train.py --splice INIT.gguf OUT.npz OUT.gguf`
puts them into the layout of terse's gist model INIT.gguf (`terse finetune --init`).
--eval EXAMPLES...: after training, greedy outputs (ids) of each example's prompt, same mask.

Usage: gist_train.py MODEL.gguf EXAMPLES.txt OUT.gguf [--steps N --batch B --lr X
       --min-lr X --warmup N --wd X --clip X --mask gist|pos|neg --dtype float32|float64|
       bfloat16 --device cpu|cuda --log LOG.tsv --golden GOLDEN.txt]
"""
import argparse
import lzma
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


def read_gguf(path, allow_q8=False):
    """(meta, {name: (offset in file, shape, type)}, raw bytes); F32 tensors (and Q8_0 when
    allow_q8: a base model made into a gist model here, see gist_init)"""
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
        if typ != 0 and not (allow_q8 and typ == 8):
            sys.exit(f"{name}: type {typ}; the gist model must be all F32 (terse finetune --init)")
        infos.append((name, ne, off, typ))
    align = meta.get("general.alignment", 32)
    start = (r.p + align - 1) // align * align
    return meta, {n: (start + off, list(reversed(ne)), t) for n, ne, off, t in infos}, b


def tensor_f64(b, at, shape, typ):
    n = int(np.prod(shape))
    if typ == 0:
        return np.frombuffer(b, np.float32, n, at).astype(np.float64).reshape(shape)
    blocks = np.frombuffer(b, np.uint8, n // 32 * 34, at).reshape(-1, 34)   # Q8_0
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(shape).astype(np.float64)     # GGML: f32(d) * q in float32


def load_weights(path, dtype, device):
    """F32 gist model as is; a base model (no terse.gist.token_id) becomes one as
    terse's gist_model_make does: a <GIST> row = the mean row of token_embd (and output)"""
    meta, infos, b = read_gguf(path, allow_q8=True)
    base = "terse.gist.token_id" not in meta
    W = {}
    for name, (at, shape, typ) in infos.items():
        a = tensor_f64(b, at, shape, typ)
        if base and name in ("token_embd.weight", "output.weight"):
            a = np.concatenate([a, a.astype(np.float32).astype(np.float64).mean(0, keepdims=True)], 0)
        W[name] = torch.tensor(a.astype(np.float32).astype(np.float64), dtype=dtype,
                               device=device, requires_grad=True)
    return meta, infos, b, W, base


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
    meta, infos, b = read_gguf(init_path)
    z = load_q8_parts(npz_path.split(",")) if "," in npz_path else np.load(npz_path)
    out = bytearray(b)
    for name, (at, shape, typ) in infos.items():
        a = z[name].astype(np.float32)
        assert list(a.shape) == shape, f"{name}: shape {a.shape} vs {shape}"
        out[at:at + a.nbytes] = a.tobytes()
    open(out_path, "wb").write(bytes(out))


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
    op = lzma.open if path.endswith(".xz") else open
    for line in op(path, "rt"):
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


@torch.no_grad()
def generate(W, meta, exs, kind, device, max_new, eos, chunk=64, deadline=None):
    """greedy continuations of each example's prompt (ids[:n_prompt]) under the mask, full
    recompute per token (the gist mask = the gist cache, tests/test_gist_mask.c)"""
    outs = []
    for k in range(0, len(exs), chunk):
        if deadline and time.time() > deadline:
            break
        part = exs[k:k + chunk]
        seqs = [list(e[0][:e[3]]) for e in part]
        done = [False] * len(part)
        for _ in range(max_new):
            T = max(len(q) for q in seqs)
            B = len(seqs)
            ids = torch.zeros(B, T, dtype=torch.long)
            mask = torch.zeros(B, T, T, dtype=torch.bool)
            for b, q in enumerate(seqs):
                ids[b, :len(q)] = torch.tensor(q)
                mask[b, :len(q), :len(q)] = gist_mask(kind, len(q), part[b][1], part[b][2])
                for t in range(len(q), T):
                    mask[b, t, t] = True
            logits = forward(W, meta, ids.to(device), mask.to(device))
            for b, q in enumerate(seqs):
                if done[b]:
                    continue
                nt = int(logits[b, len(q) - 1].argmax())
                if nt == eos:
                    done[b] = True
                else:
                    q.append(nt)
            if all(done):
                break
        for b, e in enumerate(part):
            outs.append(seqs[b][e[3]:])
    return outs


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
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--micro", type=int, default=0, help="sequences per forward (0: batch)")
    ap.add_argument("--log", default=None)
    ap.add_argument("--golden", default=None, help="write losses and weight samples")
    ap.add_argument("--eval", nargs="*", default=[], help="EXAMPLES.txt files: greedy outputs "
                    "after training to EXAMPLES.txt.<out basename>.gen (ids per line)")
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--eos", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-n", type=int, default=0, help="first N items of each eval file")
    ap.add_argument("--eval-dir", default=None, help="where .gen files go (default: beside OUT)")
    ap.add_argument("--time-limit", type=float, default=0, help="stop training after S seconds")
    ap.add_argument("--eval-time-limit", type=float, default=0, help="per eval file, seconds")
    ap.add_argument("--no-save", action="store_true", help="do not write the weights")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--save-q8", type=int, default=0, help="save matrices as Q8_0 blocks in N "
                    ".npz parts OUT.0.npz ... (to bring back under a file-size limit)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    dtype = getattr(torch, a.dtype)
    meta, infos, raw, W, from_base = load_weights(a.model, dtype, a.device)
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
        if a.time_limit and time.time() - t0 > a.time_limit:
            print(f"time limit: stopped after step {s} of {a.steps}", flush=True)
            break
    if a.no_save:
        pass
    elif a.save_q8:
        save_q8(W, names, a.out, a.save_q8)
    elif from_base:
        np.savez(a.out, **{n: W[n].detach().to("cpu", torch.float32).numpy() for n in names})
    else:
        write_gguf(raw, infos, W, a.out)
    for path in a.eval:
        ev = read_examples(path)
        if a.eval_n:
            ev = ev[:a.eval_n]
        t1 = time.time()
        gen = generate(W, meta, ev, a.mask, a.device, a.max_new, a.eos, a.chunk,
                       t1 + a.eval_time_limit if a.eval_time_limit else None)
        import os
        d = a.eval_dir or os.path.dirname(os.path.abspath(a.out))
        base = os.path.basename(a.out).rsplit(".", 1)[0]
        with open(os.path.join(d, f"{base}.{os.path.basename(path)}.gen"), "w") as f:
            for g in gen:
                f.write(" ".join(map(str, g)) + "\n")
        print(f"eval {path}: {len(ev)} items, {time.time() - t1:.1f}s", flush=True)
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
