#!/usr/bin/env python3
"""ref_grad.py - PyTorch autograd reference gradients for terse's training engine.

Uses the same random-weight models as the forward goldens (tests/golden/<arch>/, written by
tools/ref_torch.py) and writes tests/golden/grad/<arch>_<case>.txt for the C test
tests/test_grad_golden.c.

The reference is a float64 re-implementation of the runtime's forward in llama.cpp's tensor
layout (the GGUF names and shapes terse_convert_hf produces: llama q/k rows permuted to
adjacent rotary pairs, GPT-2 Conv1D weights transposed), so that gradients come out per GGUF
tensor and custom attention masks and embedding input rows are easy. It is checked against
the Hugging Face model itself in the same run: logits of the causal case, and every weight
gradient of the CE case mapped through the same layout transform (a warning past 1e-6 of the
largest logit or 1e-5 relative gradient: transformers rounds the rotary cos/sin to float32,
which alone moves llama/qwen2 by about 1e-7 relative; gpt2 agrees to 1e-15).

Cases (T = 24 tokens, ids = the first 24 of tests/golden/<arch>/ids.txt):
  ce      causal; token ids only; cross-entropy of ids[i+1] at row i (i % 5 == 4 ignored,
          and the last row); weight and input-row gradients
  kl_mask rows 0..3 are embedding rows (formula below); custom mask; forward KL(p || q)
          against a formula teacher, with row weights
  rkl     rows 0..5 embedding rows; causal; reverse KL(q || p), no row weights
Formulas (the C test computes the same, in double, then rounds to float32 as here):
  embd[i][c]    = 0.5 sin(1.7 i + 0.31 c + 0.5)
  teacher z[t][v] = 2 sin(0.013 v (t + 1) + 0.7 t) + 0.5 cos(0.05 v);  logp = log_softmax(z)
  row_weight[t] = 0 if t % 6 == 5 else 0.5 + (7 t mod 4) / 6
  mask[i][j]    = (j <= i and not (i >= 12 and 4 <= j < 8)) or (i == 2 and j == 3)

File format (text, %.9e):
  loss L
  logits K       then K lines "index value" (sampled entries of the T x V logits)
  d_embd T C     then T lines of C values (dL / d input row, every row)
  tensor NAME N NORM DOT S   then S lines "index value": the gradient of one GGUF tensor,
                 its L2 norm, its dot with probe[i] = sin(0.001 i + 0.3), and S sampled
                 entries at index (7919 j + 13) mod N
Usage: python3 tools/ref_grad.py [GOLDEN_DIR] [OUT_DIR]   (defaults tests/golden, .../grad)
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as Fn

T = 24
N_SAMPLE = 48
N_LOGIT_SAMPLE = 64
CASES = ("ce", "kl_mask", "rkl")


def f32(x):
    """round a float64 tensor to float32 values, kept in float64"""
    return x.float().double()


# ------------------------------------------------------------------------------------------
# Weights: HF names -> GGUF names and layout

def permute_rows(w, n_groups):
    """HF rotate-half -> adjacent pairs, per group of D rows (row j*D/2+i -> 2i+j)"""
    R = w.shape[0]
    D = R // n_groups
    half = D // 2
    rest = w.shape[1:]
    return w.reshape(n_groups, 2, half, *rest).transpose(1, 2).reshape(R, *rest)


def to_gguf(sd, arch, cfg):
    """dict of GGUF name -> tensor, from an HF state dict (weights or gradients alike)"""
    out = {}
    if arch in ("llama", "qwen2"):
        H = cfg["num_attention_heads"]
        Hkv = cfg.get("num_key_value_heads", H)
        L = cfg["num_hidden_layers"]
        out["token_embd.weight"] = sd["model.embed_tokens.weight"]
        out["output_norm.weight"] = sd["model.norm.weight"]
        if "lm_head.weight" in sd and not cfg.get("tie_word_embeddings", False):
            out["output.weight"] = sd["lm_head.weight"]
        for l in range(L):
            p = f"model.layers.{l}."
            b = f"blk.{l}."
            q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
            if arch == "llama":
                q, k = permute_rows(q, H), permute_rows(k, Hkv)
            out[b + "attn_norm.weight"] = sd[p + "input_layernorm.weight"]
            out[b + "attn_q.weight"] = q
            out[b + "attn_k.weight"] = k
            out[b + "attn_v.weight"] = sd[p + "self_attn.v_proj.weight"]
            out[b + "attn_output.weight"] = sd[p + "self_attn.o_proj.weight"]
            for n in ("q", "k", "v"):
                key = p + f"self_attn.{n}_proj.bias"
                if key in sd:
                    t = sd[key]
                    if arch == "llama" and n in ("q", "k"):
                        t = permute_rows(t, H if n == "q" else Hkv)
                    out[b + f"attn_{n}.bias"] = t
            out[b + "ffn_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
            out[b + "ffn_gate.weight"] = sd[p + "mlp.gate_proj.weight"]
            out[b + "ffn_up.weight"] = sd[p + "mlp.up_proj.weight"]
            out[b + "ffn_down.weight"] = sd[p + "mlp.down_proj.weight"]
    else:
        pre = "transformer." if "transformer.wte.weight" in sd else ""
        L = cfg["n_layer"]
        out["token_embd.weight"] = sd[pre + "wte.weight"]
        out["position_embd.weight"] = sd[pre + "wpe.weight"]
        out["output_norm.weight"] = sd[pre + "ln_f.weight"]
        out["output_norm.bias"] = sd[pre + "ln_f.bias"]
        for l in range(L):
            p = f"{pre}h.{l}."
            b = f"blk.{l}."
            out[b + "attn_norm.weight"] = sd[p + "ln_1.weight"]
            out[b + "attn_norm.bias"] = sd[p + "ln_1.bias"]
            out[b + "attn_qkv.weight"] = sd[p + "attn.c_attn.weight"].t()
            out[b + "attn_qkv.bias"] = sd[p + "attn.c_attn.bias"]
            out[b + "attn_output.weight"] = sd[p + "attn.c_proj.weight"].t()
            out[b + "attn_output.bias"] = sd[p + "attn.c_proj.bias"]
            out[b + "ffn_norm.weight"] = sd[p + "ln_2.weight"]
            out[b + "ffn_norm.bias"] = sd[p + "ln_2.bias"]
            out[b + "ffn_up.weight"] = sd[p + "mlp.c_fc.weight"].t()
            out[b + "ffn_up.bias"] = sd[p + "mlp.c_fc.bias"]
            out[b + "ffn_down.weight"] = sd[p + "mlp.c_proj.weight"].t()
            out[b + "ffn_down.bias"] = sd[p + "mlp.c_proj.bias"]
    return {k: v.contiguous() for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# The runtime's forward, float64, GGUF layout

def rope(x, n_heads, D, theta, neox):
    """x (T, n_heads*D) at positions 0..T-1"""
    Tn = x.shape[0]
    half = D // 2
    # angles rounded as the runtime (and transformers) compute them: inv_freq and the
    # product in float32; everything after in float64
    inv = 1.0 / (theta ** (torch.arange(half, dtype=torch.float32) * 2.0 / D))
    ang = (torch.arange(Tn, dtype=torch.float32)[:, None] * inv[None, :]).double()  # (T, half)
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    v = x.reshape(Tn, n_heads, D)
    if neox:
        a, b = v[..., :half], v[..., half:]
        out = torch.cat([a * c - b * s, b * c + a * s], dim=-1)
    else:
        a, b = v[..., 0::2], v[..., 1::2]
        out = torch.stack([a * c - b * s, b * c + a * s], dim=-1).reshape(Tn, n_heads, D)
    return out.reshape(Tn, n_heads * D)


def attention(q, k, v, mask, H, Hkv, D):
    Tn = q.shape[0]
    G = H // Hkv
    qh = q.reshape(Tn, H, D).transpose(0, 1)                       # (H, T, D)
    kh = k.reshape(Tn, Hkv, D).transpose(0, 1).repeat_interleave(G, dim=0)
    vh = v.reshape(Tn, Hkv, D).transpose(0, 1).repeat_interleave(G, dim=0)
    s = qh @ kh.transpose(1, 2) / math.sqrt(D)
    s = s.masked_fill(~mask[None], float("-inf"))
    p = torch.softmax(s, dim=-1)
    return (p @ vh).transpose(0, 1).reshape(Tn, H * D)


def forward(W, arch, cfg, ids, embd, mask):
    """ids (T) long with -1 for embedding rows, embd (T, C) or None; mask (T, T) bool"""
    tok = W["token_embd.weight"]
    Tn = ids.shape[0]
    rows = []
    for i in range(Tn):
        rows.append(tok[ids[i]] if ids[i] >= 0 else embd[i])
    x = torch.stack(rows)
    if arch == "gpt2":
        C, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        Hkv, eps = H, cfg["layer_norm_epsilon"]
        x = x + W["position_embd.weight"][:Tn]
    else:
        C, H, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
        Hkv, eps = cfg.get("num_key_value_heads", H), cfg["rms_norm_eps"]
        rp = cfg.get("rope_parameters") or {}
        theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    D = C // H

    def norm(x, w, b):
        if arch == "gpt2":
            return Fn.layer_norm(x, (C,), w, b, eps)
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def lin(x, name, bias=None):
        y = x @ W[name].t()
        return y + W[bias] if bias and bias in W else y

    for l in range(L):
        b = f"blk.{l}."
        xn = norm(x, W[b + "attn_norm.weight"], W.get(b + "attn_norm.bias"))
        if arch == "gpt2":
            qkv = lin(xn, b + "attn_qkv.weight", b + "attn_qkv.bias")
            q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
        else:
            q = lin(xn, b + "attn_q.weight", b + "attn_q.bias")
            k = lin(xn, b + "attn_k.weight", b + "attn_k.bias")
            v = lin(xn, b + "attn_v.weight", b + "attn_v.bias")
            q = rope(q, H, D, theta, arch == "qwen2")
            k = rope(k, Hkv, D, theta, arch == "qwen2")
        a = attention(q, k, v, mask, H, Hkv, D)
        x = x + lin(a, b + "attn_output.weight", b + "attn_output.bias")
        xn = norm(x, W[b + "ffn_norm.weight"], W.get(b + "ffn_norm.bias"))
        if arch == "gpt2":
            h = Fn.gelu(lin(xn, b + "ffn_up.weight", b + "ffn_up.bias"), approximate="tanh")
        else:
            h = Fn.silu(lin(xn, b + "ffn_gate.weight")) * lin(xn, b + "ffn_up.weight")
        x = x + lin(h, b + "ffn_down.weight", b + "ffn_down.bias")
    hn = norm(x, W["output_norm.weight"], W.get("output_norm.bias"))
    out = W["output.weight"] if "output.weight" in W else W["token_embd.weight"]
    return hn @ out.t()


# ------------------------------------------------------------------------------------------
# Cases

def case_inputs(case, ids_all, C, V):
    ids = torch.tensor(ids_all[:T], dtype=torch.long)
    n_embd_rows = {"ce": 0, "kl_mask": 4, "rkl": 6}[case]
    ids[:n_embd_rows] = -1
    i = torch.arange(T, dtype=torch.float64)[:, None]
    c = torch.arange(C, dtype=torch.float64)[None, :]
    embd = f32(0.5 * torch.sin(1.7 * i + 0.31 * c + 0.5))
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if case == "kl_mask":
        for a in range(T):
            for b in range(T):
                mask[a, b] = (b <= a and not (a >= 12 and 4 <= b < 8)) or (a == 2 and b == 3)
    t = torch.arange(T, dtype=torch.float64)[:, None]
    v = torch.arange(V, dtype=torch.float64)[None, :]
    z = 2 * torch.sin(0.013 * v * (t + 1) + 0.7 * t) + 0.5 * torch.cos(0.05 * v)
    teacher = f32(torch.log_softmax(z, dim=-1))
    w = torch.tensor([0.0 if k % 6 == 5 else 0.5 + ((7 * k) % 4) / 6 for k in range(T)],
                     dtype=torch.float64)
    w = f32(w)
    targets = torch.tensor([-1 if (k % 5 == 4 or k == T - 1) else ids_all[k + 1] for k in range(T)])
    return ids, embd, mask, teacher, w, targets


def loss_of(case, logits, teacher, w, targets):
    lq = torch.log_softmax(logits, dim=-1)
    if case == "ce":
        keep = targets >= 0
        return -(lq[keep].gather(1, targets[keep][:, None])).mean()
    if case == "kl_mask":  # KL(p || q), weighted mean over rows
        p = teacher.exp()
        kl = (p * (teacher - lq)).sum(-1)
        return (w * kl).sum() / w.sum()
    q = lq.exp()  # reverse KL(q || p)
    return (q * (lq - teacher)).sum(-1).mean()


def fmt(x):
    return "%.9e" % float(x)


def write_case(path, loss, logits, d_embd, grads):
    V = logits.shape[1]
    with open(path, "w") as f:
        f.write(f"loss {fmt(loss)}\n")
        flat = logits.reshape(-1)
        f.write(f"logits {N_LOGIT_SAMPLE}\n")
        for j in range(N_LOGIT_SAMPLE):
            idx = (7919 * j + 13) % flat.numel()
            f.write(f"{idx} {fmt(flat[idx])}\n")
        f.write(f"d_embd {d_embd.shape[0]} {d_embd.shape[1]}\n")
        for r in d_embd:
            f.write(" ".join(fmt(x) for x in r.tolist()) + "\n")
        for name in sorted(grads):
            g = grads[name].reshape(-1)
            n = g.numel()
            probe = torch.sin(0.001 * torch.arange(n, dtype=torch.float64) + 0.3)
            s = min(N_SAMPLE, n)
            f.write(f"tensor {name} {n} {fmt(g.norm())} {fmt((g * probe).sum())} {s}\n")
            for j in range(s):
                idx = (7919 * j + 13) % n
                f.write(f"{idx} {fmt(g[idx])}\n")


def run_arch(arch, golden, out_dir, log):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    folder = os.path.join(golden, arch)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    sd = {k: v.double() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    ids_all = [int(x) for x in open(os.path.join(folder, "ids.txt")).read().split()]
    W0 = to_gguf(sd, arch, cfg)
    C = W0["token_embd.weight"].shape[1]
    V = W0["token_embd.weight"].shape[0]

    # HF cross-check on the causal CE case: logits and every weight gradient
    try:
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64)
    except TypeError:
        hf = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float64)
    hf = hf.double()
    try:
        hf.config._attn_implementation = "eager"
    except Exception:
        pass
    hf.eval()
    ids, embd, mask, teacher, w, targets = case_inputs("ce", ids_all, C, V)
    hf_logits = hf(input_ids=ids[None], use_cache=False).logits[0]
    hf_loss = loss_of("ce", hf_logits, teacher, w, targets)
    hf_loss.backward()
    hf_grads = to_gguf({k: p.grad for k, p in hf.named_parameters() if p.grad is not None}, arch, cfg)

    for case in CASES:
        ids, embd, mask, teacher, w, targets = case_inputs(case, ids_all, C, V)
        W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
        # the input rows: token rows read from the table, embedding rows given; the gradient
        # w.r.t. every input row is taken on a leaf built from them
        rows = torch.stack([W0["token_embd.weight"][ids[i]] if ids[i] >= 0 else embd[i]
                            for i in range(T)]).clone().requires_grad_(True)
        logits = forward_rows(W, arch, cfg, ids, rows, mask)
        loss = loss_of(case, logits, teacher, w, targets)
        loss.backward()
        grads = {k: v.grad for k, v in W.items()}
        msg = f"[{arch} {case}] loss {loss.item():.9f}"
        if case == "ce":
            dl = (logits - hf_logits).abs().max().item()
            worst = 0.0
            for k, g in grads.items():
                hg = hf_grads.get(k)
                if hg is None:
                    worst = float("inf")
                    log(f"[{arch}] HF has no gradient for {k}")
                    continue
                worst = max(worst, ((g - hg).norm() / max(hg.norm().item(), 1e-300)).item())
            msg += f"; vs HF: logits max |diff| {dl:.3g}, loss {abs(float(loss) - float(hf_loss)):.3g}, " \
                   f"worst weight-gradient rel diff {worst:.3g}"
            # transformers rounds the rotary cos/sin to float32: about 1e-7 relative
            if dl > 1e-6 * hf_logits.abs().max().item() or worst > 1e-5:
                msg += "  <-- WARNING: the re-implementation disagrees with transformers"
        log(msg)
        write_case(os.path.join(out_dir, f"{arch}_{case}.txt"), loss.item(), logits.detach(),
                   rows.grad, grads)


def forward_rows(W, arch, cfg, ids, rows, mask):
    """forward() with the input rows given directly (T, C): token and embedding rows alike;
    the token-table gradient flows through the rows that were looked up"""
    tok = W["token_embd.weight"]
    x_rows = []
    for i in range(rows.shape[0]):
        if ids[i] >= 0:
            # value = the table row, gradient to both the table and the row leaf
            x_rows.append(tok[ids[i]] + (rows[i] - rows[i].detach()))
        else:
            x_rows.append(rows[i])
    embd = torch.stack(x_rows)
    ids_all_embd = torch.full_like(ids, -1)
    return forward(W, arch, cfg, ids_all_embd, embd, mask)


def main():
    golden = sys.argv[1] if len(sys.argv) > 1 else "tests/golden"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(golden, "grad")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(4)
    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    import transformers
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, float64 CPU")
    for arch in ("llama", "qwen2", "gpt2"):
        try:
            run_arch(arch, golden, out_dir, log)
        except Exception as e:  # keep going: one architecture's failure must not cost the rest
            import traceback
            traceback.print_exc()
            log(f"[{arch}] FAILED: {e!r}")
    with open(os.path.join(out_dir, "info.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
