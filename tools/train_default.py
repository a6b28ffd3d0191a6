#!/usr/bin/env python3
"""train_default.py - the recipe of terse's embedded default model (see models/README.md).

Version 2 (issue 15): the enlarged corpus (../shared/corpus train-00..train-14; train-15 is
left out, research-only licence), a new tokenizer, several model sizes trained side by side.
Seeded and resumable; made for a machine with one CUDA GPU, PyTorch and the Hugging Face
`tokenizers`/`transformers`/`safetensors` packages (no internet needed).

Subcommands (each stage writes into WORK and can be rerun; finished stages are skipped):

  prep  --corpus C --work W            tokenizer + token stream, as shards arrive:
        (1) byte-level BPE, GPT-2 pre-tokenizer, vocabulary 16,384, trained on train-00 (v1,
            books and documentation) + train-05 (v2, Wikipedia and news), documents in a fixed
            seeded order; bytes per token on val, val-v2, WikiText-2 -> W/tokenizer_stats.json;
        (2) every train-NN.txt.xz (NN != 15) that appears in C -> W/tok/train-NN.u16
            (<|endoftext|> before each document), polling until all of --shards are done.
  train --size S --work W [--steps N | --minutes M]
        (3) a Llama-architecture model (RMSNorm, rotary embeddings in Hugging Face's
            rotate-half layout, SwiGLU, grouped-query attention with heads of 64, tied
            embeddings) of shape S on random 2,048-token windows of the concatenated stream
            (train-00 .. train-14 in order), AdamW, bf16 autocast, step-based schedule (linear
            warm-up, cosine to 10%). With --minutes and no --steps the step count is fixed
            from the throughput measured over 30 steps (during warm-up, so it does not change
            the schedule) and recorded: rerun with --steps N to reproduce the run.
        (4) bits per byte (PyTorch, F16-rounded weights) on WikiText-2 raw, val and val-v2
            (each at most --eval-bytes), then the export: W/S/export/model (Hugging Face
            LlamaForCausalLM folder, F16 safetensors, tokenizer files), checked against
            transformers' own LlamaForCausalLM; W/S/export/golden (val text, ids, float64
            log-probabilities); W/S/report.json, W/S/train_log.csv.

Sizes (parameters with the 16,384-token tied embedding): see SIZES.
val.txt.xz, val-v2.txt.xz and eval-wikitext2.txt.xz are never trained on.
"""
import argparse
import json
import lzma
import math
import os
import random
import time

SEED = 1234
VOCAB = 16384
EOT = "<|endoftext|>"
CTX = 2048
TOK_TRAIN = ["train-00", "train-05"]       # the tokenizer's sample: one v1 and one v2 shard
ALL_SHARDS = ["train-%02d" % i for i in range(15)]   # train-15: research-only, left out
EVALS = {"wikitext2_raw": "eval-wikitext2.txt.xz", "val": "val.txt.xz", "val_v2": "val-v2.txt.xz"}
BASE = dict(ctx=CTX, theta=10000.0, eps=1e-5)
SIZES = {   # heads of 64; widths and ffn multiples of 256 (K-quant super-blocks)
    "small": dict(d=512, n_layer=6, n_head=8, n_kv=4, ff=1280, lr=2e-3, micro=16),
    "medium": dict(d=512, n_layer=12, n_head=8, n_kv=4, ff=1536, lr=1.5e-3, micro=8),
    "large": dict(d=768, n_layer=12, n_head=12, n_kv=4, ff=1792, lr=1.2e-3, micro=8),
    "tiny": dict(d=64, n_layer=2, n_head=1, n_kv=1, ff=256, lr=3e-3, micro=2),   # CPU tests
    "tiny2": dict(d=128, n_layer=2, n_head=2, n_kv=1, ff=256, lr=3e-3, micro=2),
}


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def read_xz(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def docs_of(text):
    return [d for d in text.split("\n\n\n") if d.strip()]


def atomic_write(path, data, mode="w"):
    with open(path + ".tmp", mode) as f:
        f.write(data)
    os.replace(path + ".tmp", path)


# ------------------------------------------------------------------------------------------
# 1-2. Tokenizer and token stream


class ByteTok:
    """Stand-in when `tokenizers` is missing (CPU tests only, TERSE_FAKE_TOKENIZER=1):
    id 0 is <|endoftext|>, byte b is id b + 1."""
    class Enc:
        def __init__(s, ids):
            s.ids = ids

    def encode(s, t):
        return ByteTok.Enc([b + 1 for b in t.encode("utf-8")])

    def encode_batch(s, ts):
        return [s.encode(t) for t in ts]

    def token_to_id(s, t):
        return 0

    def get_vocab_size(s):
        return 257

    def save(s, path):
        atomic_write(path, json.dumps({"fake": "bytes"}))


def have_tokenizers():
    try:
        import tokenizers  # noqa: F401
        return True
    except ImportError:
        if os.environ.get("TERSE_FAKE_TOKENIZER") == "1":
            return False
        raise


def load_tokenizer(work):
    path = os.path.join(work, "tokenizer.json")
    if not os.path.exists(path):
        return None
    if not have_tokenizers():
        return ByteTok()
    from tokenizers import Tokenizer
    return Tokenizer.from_file(path)


def train_tokenizer(corpus, work):
    path = os.path.join(work, "tokenizer.json")
    files = [os.path.join(corpus, s + ".txt.xz") for s in TOK_TRAIN]
    docs = []
    for fn in files:
        docs += docs_of(read_xz(fn))
    random.Random(SEED).shuffle(docs)
    nb = sum(len(d) for d in docs)
    log(f"tokenizer: training on {len(docs):,} documents ({nb / 1e6:.1f} M chars) of {TOK_TRAIN}")
    if not have_tokenizers():
        ByteTok().save(path)
        return ByteTok()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(docs, trainer, length=len(docs))
    tok.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    log(f"tokenizer: {tok.get_vocab_size()} tokens")
    return tok


def tokenizer_stats(corpus, work, tok):
    out = {}
    for name, fn in EVALS.items():
        p = os.path.join(corpus, fn)
        if not os.path.exists(p):
            continue
        text = read_xz(p)
        n = len(tok.encode(text).ids)
        nb = len(text.encode("utf-8"))
        out[name] = {"bytes": nb, "tokens": n, "bytes_per_token": nb / n}
        log(f"tokenizer: {name} {nb / n:.3f} bytes/token ({n:,} tokens)")
    atomic_write(os.path.join(work, "tokenizer_stats.json"), json.dumps(out, indent=1))


def tokenize_shard(corpus, work, tok, shard):
    import numpy as np
    dst = os.path.join(work, "tok", shard + ".u16")
    t0 = time.time()
    docs = docs_of(read_xz(os.path.join(corpus, shard + ".txt.xz")))
    eot = tok.token_to_id(EOT)
    parts = [np.array([eot] + e.ids, dtype=np.uint16) for e in tok.encode_batch(docs)]
    arr = np.concatenate(parts)
    arr.tofile(dst + ".tmp")
    os.replace(dst + ".tmp", dst)
    log(f"tokenized {shard}: {len(docs):,} documents, {len(arr):,} tokens, "
        f"{time.time() - t0:.1f} s")
    return len(arr)


def cmd_prep(args):
    os.makedirs(os.path.join(args.work, "tok"), exist_ok=True)
    want = args.shards.split(",")
    st = os.path.join(args.work, "prep_status.txt")
    atomic_write(os.path.join(args.work, "prep.pid"), str(os.getpid()))
    tok = load_tokenizer(args.work)
    t_idle = time.time()
    while True:
        if tok is None:
            have = all(os.path.exists(os.path.join(args.corpus, s + ".txt.xz")) for s in TOK_TRAIN)
            if have:
                atomic_write(st, "prep: training tokenizer\n")
                tok = train_tokenizer(args.corpus, args.work)
                tokenizer_stats(args.corpus, args.work, tok)
            else:
                atomic_write(st, f"prep: waiting for {TOK_TRAIN}\n")
        if tok is not None:
            todo = [s for s in want if not os.path.exists(os.path.join(args.work, "tok", s + ".u16"))
                    and os.path.exists(os.path.join(args.corpus, s + ".txt.xz"))]
            for s in todo:
                atomic_write(st, f"prep: tokenizing {s}\n")
                tokenize_shard(args.corpus, args.work, tok, s)
                t_idle = time.time()
            done = [s for s in want if os.path.exists(os.path.join(args.work, "tok", s + ".u16"))]
            missing = [s for s in want if s not in done]
            atomic_write(st, f"prep: {len(done)}/{len(want)} shards tokenized"
                         + (f"; waiting for {','.join(missing)}" if missing else "; done") + "\n")
            if not missing:
                log("prep: all shards tokenized")
                return
        if time.time() - t_idle > args.idle_minutes * 60:
            log("prep: idle too long, exiting")
            return
        time.sleep(args.poll)


# ------------------------------------------------------------------------------------------
# 3. The model (same maths as transformers' LlamaForCausalLM)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


OOM = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
GQA_SDPA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5)


def rms_norm(x, w, eps):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(hd, T, theta, device):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd))
    f = torch.outer(torch.arange(T, dtype=torch.float32, device=device), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, hd = c["d"], c["d"] // c["n_head"]
        s.c, s.hd = c, hd
        s.attn_norm = nn.Parameter(torch.ones(d))
        s.q = nn.Linear(d, c["n_head"] * hd, bias=False)
        s.k = nn.Linear(d, c["n_kv"] * hd, bias=False)
        s.v = nn.Linear(d, c["n_kv"] * hd, bias=False)
        s.o = nn.Linear(c["n_head"] * hd, d, bias=False)
        s.ffn_norm = nn.Parameter(torch.ones(d))
        s.gate = nn.Linear(d, c["ff"], bias=False)
        s.up = nn.Linear(d, c["ff"], bias=False)
        s.down = nn.Linear(c["ff"], d, bias=False)

    def forward(s, x, cos, sin):
        B, T, d = x.shape
        c = s.c
        h = rms_norm(x.float(), s.attn_norm.float(), c["eps"]).to(x.dtype)
        q = s.q(h).view(B, T, c["n_head"], s.hd).transpose(1, 2)
        k = s.k(h).view(B, T, c["n_kv"], s.hd).transpose(1, 2)
        v = s.v(h).view(B, T, c["n_kv"], s.hd).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        rep = c["n_head"] // c["n_kv"]
        if GQA_SDPA:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        elif hasattr(F, "scaled_dot_product_attention"):
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:         # torch < 2 (CPU tests here)
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(s.hd)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            a = att.float().masked_fill(mask, float("-inf")).softmax(-1).to(v.dtype) @ v
        x = x + s.o(a.transpose(1, 2).reshape(B, T, -1))
        h = rms_norm(x.float(), s.ffn_norm.float(), c["eps"]).to(x.dtype)
        return x + s.down(F.silu(s.gate(h)) * s.up(h))


class LM(nn.Module):
    def __init__(s, c, vocab):
        super().__init__()
        s.c = c
        s.embed = nn.Embedding(vocab, c["d"])
        s.blocks = nn.ModuleList([Block(c) for _ in range(c["n_layer"])])
        s.norm = nn.Parameter(torch.ones(c["d"]))
        for n, p in s.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * c["n_layer"]) if n.endswith(("o.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(s, ids):
        T = ids.shape[1]
        cos, sin = rope_tables(s.c["d"] // s.c["n_head"], T, s.c["theta"], ids.device)
        x = s.embed(ids)
        for b in s.blocks:
            x = b(x, cos, sin)
        x = rms_norm(x.float(), s.norm.float(), s.c["eps"])
        return x @ s.embed.weight.t()  # tied output projection


def config_of(size):
    c = dict(BASE)
    c.update({k: v for k, v in SIZES[size].items() if k not in ("lr", "micro")})
    return c


def n_params(c, vocab):
    d, hd = c["d"], c["d"] // c["n_head"]
    per = 2 * d + d * c["n_head"] * hd * 2 + 2 * d * c["n_kv"] * hd + 3 * d * c["ff"]
    return vocab * d + c["n_layer"] * per + d


# ------------------------------------------------------------------------------------------
# Training


def lr_at(step, steps, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def load_stream(work, shards, dev):
    import numpy as np
    parts, used = [], []
    for s in shards:
        p = os.path.join(work, "tok", s + ".u16")
        if os.path.exists(p):
            parts.append(np.fromfile(p, dtype=np.uint16))
            used.append(s)
    if not parts:
        raise SystemExit("no tokenized shard in " + os.path.join(work, "tok"))
    arr = np.concatenate(parts).astype(np.int32)
    return torch.from_numpy(arr).to(dev), used


def write_status(sdir, line):
    atomic_write(os.path.join(sdir, "status.txt"), line + "\n")


def train(args, c, vocab, dev, sdir):
    torch.manual_seed(SEED)
    model = LM(c, vocab).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    other = [p for n, p in model.named_parameters() if p.ndim < 2]
    kw = {"fused": True} if dev == "cuda" else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **kw)
    ck = os.path.join(sdir, "ckpt.pt")
    runf = os.path.join(sdir, "run.json")
    step, steps, run = 0, args.steps, {}
    gen = torch.Generator(device=dev).manual_seed(SEED)
    if os.path.exists(ck):
        try:
            st = torch.load(ck, map_location=dev, weights_only=False)
        except TypeError:
            st = torch.load(ck, map_location=dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        g = st["gen"]
        gen.set_state(g.cpu() if hasattr(g, "cpu") else g)
        log(f"resumed from step {step}")
    if os.path.exists(runf):
        run = json.load(open(runf))
        if not steps:
            steps = run.get("steps", 0)
    data, used = load_stream(args.work, args.shards.split(","), dev)
    npar = sum(p.numel() for p in model.parameters())
    B, T, micro = args.batch, c["ctx"], min(args.micro, args.batch)
    log(f"{args.size}: {npar:,} parameters; stream {len(data):,} tokens from {len(used)} shards; "
        f"batch {B} x {T} (micro {micro}); lr {args.lr}")
    run.update({"size": args.size, "params": npar, "config": c, "batch": B, "lr": args.lr,
                "warmup": args.warmup, "shards": used, "stream_tokens": len(data), "seed": SEED,
                "torch": torch.__version__})
    fwd = model
    if args.compile and hasattr(torch, "compile"):
        fwd = torch.compile(model)
    logp = os.path.join(sdir, "train_log.csv")
    logf = open(logp, "a")
    if step == 0 or os.path.getsize(logp) == 0:
        logf.write("step,tokens,loss,lr,seconds\n")
    t0 = time.time()
    deadline = args.deadline if args.deadline else (t0 + args.minutes * 60 if args.minutes else 0)
    ready = os.path.join(args.work, "ready")
    os.makedirs(ready, exist_ok=True)
    peers = args.peers.split(",") if args.peers else [args.size]
    meas0 = None                 # (step, time) when all peers were running
    last_ck = time.time()
    t_last, s_last = t0, step
    tok_s = 0.0
    truncated = False
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev == "cuda" else None
    while True:
        if steps and step >= steps:
            break
        S = steps if steps else 10 ** 9
        lr = lr_at(step, S, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(data) - T - 1, (B,), generator=gen, device=dev)
        while True:   # one optimizer step; on CUDA out-of-memory halve the micro-batch, retry
            opt.zero_grad(set_to_none=True)
            tot, oom = 0.0, False
            for m0 in range(0, B, micro):
                idx = starts[m0:m0 + micro, None] + torch.arange(T + 1, device=dev)[None, :]
                chunk = data[idx].long()
                x, y = chunk[:, :-1], chunk[:, 1:]
                try:
                    if autocast is not None:
                        with autocast:
                            logits = fwd(x)
                    else:
                        logits = fwd(x)
                    loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
                    (loss * (x.shape[0] / B)).backward()
                except OOM as e:
                    if micro == 1 or "out of memory" not in str(e).lower():
                        raise
                    oom = True
                except Exception as e:   # torch.compile failing: go on uncompiled
                    if fwd is model or step > 5:
                        raise
                    log(f"{args.size}: WARNING: compiled model failed ({type(e).__name__}: "
                        f"{str(e)[:200]}); running uncompiled")
                    fwd, oom = model, True
                    micro *= 2   # the retry below halves it again
                if oom:
                    logits = loss = None
                    if dev == "cuda":
                        torch.cuda.empty_cache()
                    micro //= 2
                    log(f"{args.size}: micro-batch now {micro}")
                    break
                tot += loss.item() * x.shape[0] / B
                del logits, loss
            if not oom:
                break
        if True:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            now = time.time()
            # Fix the step count from the throughput measured while all peers are training,
            # from --measure-from steps on (compilation and autotuning done) up to the end of
            # warm-up: the schedule depends on the step count only after warm-up, so the run
            # is exactly what --steps N gives. (Device run 1 measured right after compiling,
            # under-estimated the rate by about 2x and finished early.)
            if not steps and deadline:
                if step >= 3:
                    open(os.path.join(ready, args.size), "w").close()
                if meas0 is None and step >= args.measure_from:
                    if all(os.path.exists(os.path.join(ready, p)) for p in peers) or \
                            now - t0 > args.barrier_s:
                        meas0 = (step, now)
                elif meas0 is not None and step - meas0[0] >= args.measure_steps and \
                        step >= args.warmup - 1:
                    rate = (step - meas0[0]) / (now - meas0[1])
                    steps = step + int(args.safety * rate * max(0.0, deadline - now))
                    steps = max(steps, step + 1)
                    run.update({"steps": steps, "measured_steps_per_s": rate,
                                "measured_over_steps": [meas0[0], step], "fixed_at_step": step})
                    atomic_write(runf, json.dumps(run, indent=1))
                    log(f"{args.size}: {rate:.2f} steps/s over steps {meas0[0]}-{step} with peers "
                        f"running -> --steps {steps} ({steps * B * T / 1e6:.0f} M tokens)")
                    if step >= args.warmup:
                        log(f"{args.size}: WARNING: steps fixed after warm-up ended")
            if step % 10 == 0 or step == steps or now - t_last > 5:
                tok_s = (step - s_last) * B * T / max(1e-9, now - t_last)
                t_last, s_last = now, step
                logf.write(f"{step},{step * B * T},{tot:.5f},{lr:.6g},{now - t0:.1f}\n")
                logf.flush()
                eta = (steps - step) * B * T / tok_s if steps and tok_s else float("nan")
                write_status(sdir, f"{args.size}: step {step}/{steps or '?'} loss {tot:.4f} "
                             f"lr {lr:.2e} {tok_s:,.0f} tok/s ETA {eta:.0f} s")
            if step % 100 == 0:
                log(f"{args.size}: step {step}/{steps or '?'} loss {tot:.4f} lr {lr:.2e} "
                    f"{tok_s:,.0f} tok/s")
            hard = deadline and now > deadline + args.grace_s
            if now - last_ck > args.ckpt_s or step == steps or hard:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                            "gen": gen.get_state()}, ck + ".tmp")
                os.replace(ck + ".tmp", ck)
                last_ck = time.time()
            if hard and step < (steps or 10 ** 9):
                log(f"{args.size}: WARNING: hard deadline at step {step} of {steps}; "
                    "stopping (schedule not finished)")
                truncated = True
                break
    if not steps:
        steps = step
    run.update({"steps": steps, "done_steps": step, "truncated": truncated, "micro": micro,
                "train_seconds_this_run": time.time() - t0,
                "tokens_seen": step * B * T})
    atomic_write(runf, json.dumps(run, indent=1))
    return model, run


# ------------------------------------------------------------------------------------------
# 4. Evaluation, export, golden outputs


def hf_config(c, vocab, eot):
    from transformers import LlamaConfig
    kw = dict(vocab_size=vocab, hidden_size=c["d"], intermediate_size=c["ff"],
              num_hidden_layers=c["n_layer"], num_attention_heads=c["n_head"],
              num_key_value_heads=c["n_kv"], max_position_embeddings=c["ctx"],
              rms_norm_eps=c["eps"], hidden_act="silu", tie_word_embeddings=True,
              bos_token_id=eot, eos_token_id=eot, attention_bias=False, mlp_bias=False)
    try:
        return LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": c["theta"]}, **kw)
    except TypeError:
        return LlamaConfig(rope_theta=c["theta"], **kw)


def to_hf(model, vocab, eot):
    from transformers import LlamaForCausalLM
    hf = LlamaForCausalLM(hf_config(model.c, vocab, eot))
    sd = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm,
          "lm_head.weight": model.embed.weight}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        sd.update({p + "input_layernorm.weight": b.attn_norm,
                   p + "post_attention_layernorm.weight": b.ffn_norm,
                   p + "self_attn.q_proj.weight": b.q.weight, p + "self_attn.k_proj.weight": b.k.weight,
                   p + "self_attn.v_proj.weight": b.v.weight, p + "self_attn.o_proj.weight": b.o.weight,
                   p + "mlp.gate_proj.weight": b.gate.weight, p + "mlp.up_proj.weight": b.up.weight,
                   p + "mlp.down_proj.weight": b.down.weight})
    missing, unexpected = hf.load_state_dict({k: v.detach().float().cpu() for k, v in sd.items()},
                                             strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    return hf


@torch.no_grad()
def bits_per_byte(model, tok, text, eot, dev, T, max_bytes, seconds, batch=8):
    """As `terse bpb [--max-bytes N]`: the text (cut to its first max_bytes bytes, whole
    characters) tokenized whole, windows of T-1 tokens each after <|endoftext|>, every token
    counted once. Stops early (marked incomplete) past `seconds`."""
    raw = text.encode("utf-8")
    if max_bytes and len(raw) > max_bytes:
        text = raw[:max_bytes].decode("utf-8", "ignore")
    ids = tok.encode(text).ids
    nats, n, t0 = 0.0, 0, time.time()
    step = T - 1
    wins = [ids[s:s + step] for s in range(0, len(ids), step)]
    for b0 in range(0, len(wins), batch):   # windows of one length batched together
        group = wins[b0:b0 + batch]
        full_len = [w for w in group if len(w) == step]
        for part in ([full_len] if full_len else []) + [[w] for w in group if len(w) != step]:
            x = torch.tensor([[eot] + w for w in part], device=dev)
            logits = model(x)[:, :-1].double()
            nats += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                    reduction="sum").item()
            n += sum(len(w) for w in part)
        if time.time() - t0 > seconds and n < len(ids):
            break
    full = n == len(ids)   # else the windows scored are a prefix of the ids (the short one is last)
    nb = len(text.encode("utf-8")) if full else len(tok.decode(ids[:n]).encode("utf-8")) \
        if hasattr(tok, "decode") else n
    return {"bits_per_byte": nats / math.log(2) / nb, "bytes": nb, "tokens": n,
            "nats_per_token": nats / n, "bytes_per_token": nb / n, "complete": full,
            "max_bytes": max_bytes or None}


def detok_wikitext(t):
    for a, b in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" , ", ", "), (" . ", ". "),
                 (" ; ", "; "), (" : ", ": "), (" 's", "'s"), (" n't", "n't"), (" ( ", " ("),
                 (" ) ", ") ")):
        t = t.replace(a, b)
    return t


def evaluate(args, model, tok, eot, dev):
    """Whole texts (at most --eval-bytes) and their first --prefix-bytes (what the terse
    runtime re-measures on the CPU: `terse bpb --max-bytes N`)."""
    ev = {}
    t_end = time.time() + args.eval_seconds
    jobs = [(k, fn, 0) for k, fn in EVALS.items()] + [("wikitext2_detok", EVALS["wikitext2_raw"], 0)]
    jobs += [(k + "_prefix", fn, args.prefix_bytes) for k, fn in EVALS.items()]
    for i, (name, fn, cut) in enumerate(jobs):
        p = os.path.join(args.corpus, fn)
        if not os.path.exists(p):
            log(f"eval {name}: {fn} missing")
            continue
        text = read_xz(p)
        if name == "wikitext2_detok":
            text = detok_wikitext(text)
        left = max(5.0, (t_end - time.time()) / (len(jobs) - i))
        ev[name] = bits_per_byte(model, tok, text, eot, dev, model.c["ctx"], cut or args.eval_bytes,
                                 left)
        v = ev[name]
        log(f"{args.size}: eval {name}: {v['bits_per_byte']:.4f} bits/byte ({v['tokens']:,} "
            f"tokens, {v['bytes_per_token']:.2f} bytes/token{'' if v['complete'] else ', PARTIAL'})")
    return ev


def export_hf(args, model, tok, vocab, eot, dev, edir):
    """Hugging Face folder + golden files; the model's weights are already F16-rounded."""
    mdir, gdir = os.path.join(edir, "model"), os.path.join(edir, "golden")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(gdir, exist_ok=True)
    eval_model = model
    model = model.cpu()
    out = {}
    try:
        import transformers  # noqa: F401
        have_hf = True
    except ImportError:
        have_hf = False
        log("WARNING: transformers missing: no Hugging Face folder (CPU test only)")
    if have_hf:
        hf = to_hf(model, vocab, eot).eval()
        probe = torch.randint(0, vocab, (1, 64), generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            a = model(probe).double()
            b = hf(input_ids=probe).logits.double()
        diff = (a - b).abs().max().item()
        out["export_check_max_abs_dlogit"] = diff
        log(f"{args.size}: export check: model vs transformers LlamaForCausalLM max |dlogit| {diff:.2e}")
        assert diff < 1e-3, diff
        hf.half().save_pretrained(mdir, max_shard_size="2GB")
        tok.model.save(mdir)  # vocab.json + merges.txt
        tok.save(os.path.join(mdir, "tokenizer.json"))
        with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": EOT, "eos_token": EOT,
                       "unk_token": EOT, "add_bos_token": True, "add_prefix_space": False,
                       "model_max_length": model.c["ctx"]}, f, indent=1)
        with open(os.path.join(mdir, "special_tokens_map.json"), "w") as f:
            json.dump({"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}, f, indent=1)
    else:
        torch.save(model.state_dict(), os.path.join(mdir, "state_dict.pt"))
    # Golden: start of val, ids with BOS, float64 log-probs from the F16-rounded weights.
    val = read_xz(os.path.join(args.corpus, "val.txt.xz"))
    text = val[:6000]
    ids = ([eot] + tok.encode(text).ids)[:1024]
    with torch.no_grad():
        m64 = to_hf(model, vocab, eot).double().eval() if have_hf else model  # f32: test only
        x = torch.tensor([ids])
        lg = m64(input_ids=x).logits[0] if have_hf else m64(x)[0]
        lp = torch.log_softmax(lg, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    with open(os.path.join(gdir, "text.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(gdir, "ids.txt"), "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")
    with open(os.path.join(gdir, "logprobs.txt"), "w") as f:
        f.write("\n".join("%.9g" % v for v in lp.tolist()) + "\n")
    log(f"{args.size}: golden: {len(ids)} ids, mean logprob {lp.mean().item():.4f}")
    out["golden_mean_logprob"] = lp.mean().item()
    eval_model.to(dev)
    return out


def cmd_train(args):
    sdir = os.path.join(args.work, args.size)
    os.makedirs(sdir, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        if args.mem_fraction:
            torch.cuda.set_per_process_memory_fraction(args.mem_fraction)
    else:
        torch.set_num_threads(args.cpu_threads)
    tok = load_tokenizer(args.work)
    if tok is None:
        raise SystemExit("no tokenizer in " + args.work + ": run prep first")
    vocab, eot = tok.get_vocab_size(), tok.token_to_id(EOT)
    c = config_of(args.size)
    hp = SIZES[args.size]
    args.lr = args.lr or hp["lr"]
    args.micro = args.micro or hp["micro"]
    model, run = train(args, c, vocab, dev, sdir)
    if run["done_steps"] < run["steps"] and not args.export_partial:
        log(f"{args.size}: stopped at {run['done_steps']}/{run['steps']}; rerun to resume")
        return
    write_status(sdir, f"{args.size}: evaluating (step {run['done_steps']}/{run['steps']})")
    model = model.float().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())     # what ships: F16 (then quantised by terse convert)
    t0 = time.time()
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False   # full float32 for the measurements
    run["bpb"] = evaluate(args, model, tok, eot, dev)
    run["eval_seconds"] = time.time() - t0
    write_status(sdir, f"{args.size}: exporting")
    edir = os.path.join(sdir, "export")
    run.update(export_hf(args, model, tok, vocab, eot, dev, edir))
    st = os.path.join(args.work, "tokenizer_stats.json")
    if os.path.exists(st):
        run["tokenizer"] = json.load(open(st))
    atomic_write(os.path.join(sdir, "report.json"), json.dumps(run, indent=1))
    import shutil
    shutil.copy(os.path.join(sdir, "train_log.csv"), os.path.join(edir, "train_log.csv"))
    shutil.copy(os.path.join(sdir, "report.json"), os.path.join(edir, "report.json"))
    b = run["bpb"]
    write_status(sdir, f"{args.size}: DONE step {run['done_steps']}/{run['steps']} bpb " +
                 " ".join(f"{k} {v['bits_per_byte']:.4f}" for k, v in b.items()))
    log(f"{args.size}: done")


def cmd_choose(args):
    """The size to ship, by the rule fixed before training (models/README.md): among the sizes
    whose training finished, whose workload time (measured on the CPU with random weights of
    the same shape, in the type that fits the 50 MB budget) is at most --max-slowdown times the
    old model's, take the lowest mean bits per byte over WikiText-2 raw, val and val-v2 (PyTorch,
    F16) plus the expected cost of that type; a faster size within --margin of it wins."""
    speed = json.load(open(args.speed))
    rows = []
    for size, sp in speed["sizes"].items():
        p = os.path.join(args.work, size, "report.json")
        if not os.path.exists(p):
            log(f"choose: {size}: no report")
            continue
        r = json.load(open(p))
        b = r.get("bpb", {})
        vals = [b.get(k, {}).get("bits_per_byte") for k in EVALS]
        if None in vals or sp["slowdown"] > args.max_slowdown:
            log(f"choose: {size}: left out (bpb {vals}, slowdown {sp['slowdown']})")
            continue
        score = sum(vals) / len(vals) + sp.get("quant_cost", 0.0)
        rows.append((score, sp["slowdown"], size, vals, bool(r.get("truncated"))))
        log(f"choose: {size}: mean bpb {sum(vals) / len(vals):.4f} + {sp.get('quant_cost', 0)} "
            f"({sp['type']}) = {score:.4f}; workload x{sp['slowdown']:.2f} the old model's")
    if not rows:
        print("none")
        return
    if any(not r[4] for r in rows):   # a run the deadline cut short only if nothing else
        rows = [r for r in rows if not r[4]]
    best = min(rows)
    pick = min((r for r in rows if r[0] <= best[0] + args.margin), key=lambda r: r[1])
    log(f"choose: {pick[2]} (best score {best[2]} {best[0]:.4f}; margin {args.margin})")
    print(pick[2])


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--corpus", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--shards", default=",".join(ALL_SHARDS))
    p.add_argument("--poll", type=float, default=2.0)
    p.add_argument("--idle-minutes", type=float, default=45.0)
    p = sub.add_parser("train")
    p.add_argument("--size", required=True, choices=sorted(SIZES))
    p.add_argument("--corpus", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--shards", default=",".join(ALL_SHARDS))
    p.add_argument("--steps", type=int, default=0, help="total steps (0: fix from --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall time for training")
    p.add_argument("--deadline", type=float, default=0, help="epoch seconds training ends")
    p.add_argument("--peers", default="", help="sizes trained at the same time (throughput)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--micro", type=int, default=0)
    p.add_argument("--lr", type=float, default=0)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--measure-steps", type=int, default=30, help="at least this many steps")
    p.add_argument("--measure-from", type=int, default=40)
    p.add_argument("--barrier-s", type=float, default=150)
    p.add_argument("--safety", type=float, default=0.95)
    p.add_argument("--grace-s", type=float, default=45)
    p.add_argument("--ckpt-s", type=float, default=120)
    p.add_argument("--eval-bytes", type=int, default=5_100_000)
    p.add_argument("--eval-seconds", type=float, default=180)
    p.add_argument("--prefix-bytes", type=int, default=250_000)
    p.add_argument("--mem-fraction", type=float, default=0.14)
    p.add_argument("--cpu-threads", type=int, default=1)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--export-partial", action="store_true", default=True)
    p = sub.add_parser("choose")
    p.add_argument("--work", required=True)
    p.add_argument("--speed", required=True, help="JSON: sizes -> slowdown, type, quant_cost")
    p.add_argument("--max-slowdown", type=float, default=4.0)
    p.add_argument("--margin", type=float, default=0.03)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    {"prep": cmd_prep, "train": cmd_train, "choose": cmd_choose}[args.cmd](args)


if __name__ == "__main__":
    main()
