#!/usr/bin/env python3
"""train_default.py - the recipe of terse's embedded default model (see models/README.md).

One command sequence, seeded and resumable, for a machine with one CUDA GPU, PyTorch and the
Hugging Face `tokenizers`/`transformers` packages (no internet needed):

  python3 tools/train_default.py --corpus CORPUS_DIR --work WORK_DIR --out OUT_DIR [--steps N]

CORPUS_DIR holds ../shared/corpus (train-0*.txt.xz, val.txt.xz, eval-wikitext2.txt.xz).
WORK_DIR keeps the tokenizer, the token stream and checkpoints: run the same command again and
it resumes from the last checkpoint (each device command is limited to 10 minutes).
OUT_DIR receives, when training reaches --steps:
  model/      Hugging Face LlamaForCausalLM folder, F16 safetensors shards + tokenizer files
              (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json); terse converts it
              with `terse convert hf OUT_DIR/model models/terse-default.gguf --type q8_0`
  golden/     held-out text, its token ids and PyTorch's per-token log-probabilities
              (float64, from the F16-rounded weights) for the C runtime's agreement test
  train_log.csv, eval.json (bits per byte on val and WikiText-2), recipe.json

Steps: (1) byte-level BPE tokenizer, GPT-2 pre-tokenizer, vocabulary 12,288, trained on the
train shards only; (2) the whole train split tokenized, documents separated by <|endoftext|>;
(3) a Llama-architecture model (RMSNorm, rotary embeddings in Hugging Face's rotate-half
layout, SwiGLU, grouped-query attention, tied embeddings) trained on random 2,048-token windows
with AdamW, bf16 autocast, cosine schedule; (4) export through transformers' own
LlamaForCausalLM (checked against this script's model), evaluation, golden outputs.
val.txt.xz and eval-wikitext2.txt.xz are never trained on.
"""
import argparse
import json
import lzma
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 1234
VOCAB = 12288
EOT = "<|endoftext|>"
CFG = dict(d=512, n_layer=6, n_head=8, n_kv=4, ff=1280, ctx=2048, theta=10000.0, eps=1e-5)


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def read_xz(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def docs_of(text):
    return [d for d in text.split("\n\n\n") if d.strip()]


# ------------------------------------------------------------------------------------------
# 1-2. Tokenizer and token stream


def build_tokenizer(corpus, work, train_files):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    path = os.path.join(work, "tokenizer.json")
    if os.path.exists(path):
        return Tokenizer.from_file(path)
    log("training the BPE tokenizer")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)

    def it():
        for fn in train_files:
            for d in docs_of(read_xz(os.path.join(corpus, fn))):
                yield d
    tok.train_from_iterator(it(), trainer)
    tok.save(path)
    log(f"tokenizer: {tok.get_vocab_size()} tokens")
    return tok


def build_stream(corpus, work, tok, train_files):
    import numpy as np
    path = os.path.join(work, "train.u16")
    if os.path.exists(path):
        return np.fromfile(path, dtype=np.uint16)
    eot = tok.token_to_id(EOT)
    parts = []
    for fn in train_files:
        docs = docs_of(read_xz(os.path.join(corpus, fn)))
        for enc in tok.encode_batch(docs):
            parts.append(np.array([eot] + enc.ids, dtype=np.uint16))
        log(f"tokenized {fn}: {len(docs)} documents")
    arr = np.concatenate(parts)
    arr.tofile(path)
    log(f"train stream: {len(arr):,} tokens")
    return arr


# ------------------------------------------------------------------------------------------
# 3. The model (same maths as transformers' LlamaForCausalLM)


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
        h = F.rms_norm(x.float(), (d,), s.attn_norm.float(), c["eps"]).to(x.dtype)
        q = s.q(h).view(B, T, c["n_head"], s.hd).transpose(1, 2)
        k = s.k(h).view(B, T, c["n_kv"], s.hd).transpose(1, 2)
        v = s.v(h).view(B, T, c["n_kv"], s.hd).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + s.o(a.transpose(1, 2).reshape(B, T, -1))
        h = F.rms_norm(x.float(), (d,), s.ffn_norm.float(), c["eps"]).to(x.dtype)
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
        x = F.rms_norm(x.float(), (s.c["d"],), s.norm.float(), s.c["eps"])
        return x @ s.embed.weight.t()  # tied output projection


# ------------------------------------------------------------------------------------------
# Training


def lr_at(step, steps, peak, warmup=200, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def train(args, stream, vocab, dev):
    import numpy as np
    torch.manual_seed(SEED)
    model = LM(CFG, vocab).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    other = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    ck = os.path.join(args.work, "ckpt.pt")
    step = 0
    gen = torch.Generator(device=dev).manual_seed(SEED)
    if os.path.exists(ck):
        st = torch.load(ck, map_location=dev, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        gen.set_state(st["gen"].to("cpu") if st["gen"].device.type != "cpu" else st["gen"])
        log(f"resumed from step {step}")
    data = torch.from_numpy(stream.astype(np.int64)).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters; stream {len(data):,} tokens; "
        f"batch {args.batch} x {CFG['ctx']}")
    fwd = torch.compile(model) if args.compile else model
    T = CFG["ctx"]
    logf = open(os.path.join(args.work, "train_log.csv"), "a")
    if step == 0:
        logf.write("step,tokens,loss,lr,seconds\n")
    t0 = time.time()
    deadline = t0 + args.minutes * 60
    tokens_per_step = args.batch * T
    while step < args.steps:
        lr = lr_at(step, args.steps, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=gen, device=dev)
        idx = starts[:, None] + torch.arange(T + 1, device=dev)[None, :]
        chunk = data[idx]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fwd(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0 or step == args.steps:
            el = time.time() - t0
            logf.write(f"{step},{step * tokens_per_step},{loss.item():.5f},{lr:.6g},{el:.1f}\n")
            logf.flush()
        if step % 100 == 0:
            log(f"step {step}/{args.steps} loss {loss.item():.4f} lr {lr:.2e} "
                f"{tokens_per_step * 100 / max(1e-9, time.time() - getattr(train, 't_last', t0)):,.0f} tok/s")
            train.t_last = time.time()
        if time.time() > deadline or step % 500 == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "gen": gen.get_state()}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
            if time.time() > deadline and step < args.steps:
                log(f"time budget spent at step {step}; run again to resume")
                return model, step
    return model, step


# ------------------------------------------------------------------------------------------
# 4. Export, evaluation, golden outputs


def hf_config(vocab, eot):
    from transformers import LlamaConfig
    kw = dict(vocab_size=vocab, hidden_size=CFG["d"], intermediate_size=CFG["ff"],
              num_hidden_layers=CFG["n_layer"], num_attention_heads=CFG["n_head"],
              num_key_value_heads=CFG["n_kv"], max_position_embeddings=CFG["ctx"],
              rms_norm_eps=CFG["eps"], hidden_act="silu", tie_word_embeddings=True,
              bos_token_id=eot, eos_token_id=eot, attention_bias=False, mlp_bias=False)
    try:
        return LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": CFG["theta"]}, **kw)
    except TypeError:
        return LlamaConfig(rope_theta=CFG["theta"], **kw)


def to_hf(model, vocab, eot):
    from transformers import LlamaForCausalLM
    hf = LlamaForCausalLM(hf_config(vocab, eot))
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
def bits_per_byte(fwd, tok, text, eot, dev, T=2048, max_bytes=None):
    if max_bytes:
        text = text[:max_bytes]
    ids = tok.encode(text).ids
    nb = len(text.encode("utf-8"))
    nats, n = 0.0, 0
    step = T - 1
    for s in range(0, len(ids), step):
        chunk = ids[s:s + step]
        x = torch.tensor([[eot] + chunk], device=dev)
        logits = fwd(x)[0, :-1].double()
        nats += F.cross_entropy(logits, x[0, 1:], reduction="sum").item()
        n += len(chunk)
    return {"bits_per_byte": nats / math.log(2) / nb, "bytes": nb, "tokens": n,
            "nats_per_token": nats / n, "bytes_per_token": nb / n}


def detok_wikitext(t):
    for a, b in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" , ", ", "), (" . ", ". "),
                 (" ; ", "; "), (" : ", ": "), (" 's", "'s"), (" n't", "n't"), (" ( ", " ("),
                 (" ) ", ") ")):
        t = t.replace(a, b)
    return t


def export(args, model, tok, vocab, dev):
    eot = tok.token_to_id(EOT)
    out = args.out
    mdir, gdir = os.path.join(out, "model"), os.path.join(out, "golden")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(gdir, exist_ok=True)
    model = model.float().eval()
    # Round to F16 (what ships), and use the rounded weights for everything below.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    hf = to_hf(model, vocab, eot).eval()
    probe = torch.randint(0, vocab, (1, 64), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = model.cpu()(probe).double()
        b = hf(input_ids=probe).logits.double()
    diff = (a - b).abs().max().item()
    log(f"export check: this script's model vs transformers LlamaForCausalLM max |dlogit| {diff:.2e}")
    assert diff < 1e-3, diff
    model.to(dev)
    hf.half().save_pretrained(mdir, max_shard_size="14MB")
    tok.model.save(mdir)  # vocab.json + merges.txt
    tok.save(os.path.join(mdir, "tokenizer.json"))
    with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": EOT, "eos_token": EOT,
                   "unk_token": EOT, "add_bos_token": True, "add_prefix_space": False,
                   "model_max_length": CFG["ctx"]}, f, indent=1)
    with open(os.path.join(mdir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}, f, indent=1)

    # Golden: held-out text (start of val), ids with BOS, float64 log-probs from the F16 weights.
    val = read_xz(os.path.join(args.corpus, "val.txt.xz"))
    text = val[:6000]
    ids = [eot] + tok.encode(text).ids
    ids = ids[:1024]
    with torch.no_grad():
        hf64 = to_hf(model.cpu(), vocab, eot).double().eval()
        lg = hf64(input_ids=torch.tensor([ids])).logits[0]
        lp = torch.log_softmax(lg, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    model.to(dev)
    with open(os.path.join(gdir, "text.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(gdir, "ids.txt"), "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")
    with open(os.path.join(gdir, "logprobs.txt"), "w") as f:
        f.write("\n".join("%.9g" % v for v in lp.tolist()) + "\n")
    log(f"golden: {len(ids)} ids, mean logprob {lp.mean().item():.4f}")

    # Bits per byte (this script's model, F16-rounded weights, float32 maths).
    fwd = lambda x: model(x)
    wiki = read_xz(os.path.join(args.corpus, "eval-wikitext2.txt.xz"))
    ev = {"val": bits_per_byte(fwd, tok, val, eot, dev),
          "wikitext2_raw": bits_per_byte(fwd, tok, wiki, eot, dev),
          "wikitext2_detok": bits_per_byte(fwd, tok, detok_wikitext(wiki), eot, dev)}
    for k, v in ev.items():
        log(f"eval {k}: {v['bits_per_byte']:.4f} bits/byte ({v['tokens']:,} tokens, "
            f"{v['bytes_per_token']:.2f} bytes/token)")
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(ev, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--minutes", type=float, default=6.5, help="stop (checkpointed) after this")
    ap.add_argument("--shards", default="train-00,train-01,train-02,train-03,train-04")
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--export-partial", action="store_true",
                    help="export even if the time budget stopped training before --steps")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = "cuda"
    files = [s + ".txt.xz" for s in args.shards.split(",")]
    t0 = time.time()
    tok = build_tokenizer(args.corpus, args.work, files)
    stream = build_stream(args.corpus, args.work, tok, files)
    log(f"data ready in {time.time() - t0:.0f} s")
    vocab = tok.get_vocab_size()
    if vocab != VOCAB:
        log(f"WARNING: vocabulary has {vocab} tokens, wanted {VOCAB}")
    model, step = train(args, stream, vocab, dev)
    with open(os.path.join(args.out, "recipe.json"), "w") as f:
        json.dump({"seed": SEED, "vocab": VOCAB, "config": CFG, "steps": args.steps,
                   "batch": args.batch, "lr": args.lr, "shards": files, "done_steps": step,
                   "torch": torch.__version__}, f, indent=1)
    import shutil
    shutil.copy(os.path.join(args.work, "train_log.csv"), os.path.join(args.out, "train_log.csv"))
    if step >= args.steps or args.export_partial:
        export(args, model, tok, vocab, dev)
    log("done")


if __name__ == "__main__":
    main()
