#!/usr/bin/env python3
"""ref_torch.py - PyTorch/transformers reference outputs for terse's golden tests.

For each architecture (llama, qwen2, gpt2) this builds a tiny model from a config with seeded
random weights, saves it with save_pretrained (safetensors + config.json) into
<out>/<arch>/, and writes what the reference computes on a fixed seeded sequence of 100 token
ids:

  ids.txt         the 100 ids, one per line
  logprobs.txt    log p(ids[i] | ids[0..i)) for i = 1..99, one per line (99 lines, %.9g)
  logsoftmax.txt  the full log-softmax over the vocab at 3 positions: one line per position,
                  "pos v0 v1 ... v{V-1}", the distribution of the token AFTER ids[0..pos]
  greedy.txt      (llama only) 20 greedy ids continuing ids[0..10), one per line
  tensors.txt     name, dtype and shape of every tensor in model.safetensors
  info.txt        versions, seeds, what was done

The reference runs on the CPU in float64 (weights are saved in float32, which float64 holds
exactly), eager attention, eval mode, no cache. It does not download anything and does not
need a tokenizer (the golden models have none; ids are arbitrary).

Usage: python3 tools/ref_torch.py [OUT_DIR]        (default tests/golden)
       python3 tools/ref_torch.py OUT_DIR --arch llama
"""
import argparse
import json
import os
import sys

import torch
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

SEQ_LEN = 100
LOGSOFTMAX_POS = (0, 50, 99)
GREEDY_PROMPT = 10
GREEDY_NEW = 20
VOCAB = 320

TF_MAJOR = int(transformers.__version__.split(".")[0])


# transformers 5 folded rope_theta into config.rope_parameters; 4.x takes rope_theta.
def make_config(arch):
    """The config, built with attn_implementation="eager" and the version's rope keyword; if
    this transformers rejects either keyword, retry without/with the other."""
    tries = [(True, TF_MAJOR >= 5), (False, TF_MAJOR >= 5), (True, TF_MAJOR < 5),
             (False, TF_MAJOR < 5)]
    last = None
    for eager, new_rope in tries:
        try:
            return make_config_with(arch, eager, new_rope)
        except TypeError as e:
            last = e
    raise last


def make_config_with(arch, eager, new_rope):
    common = dict(attn_implementation="eager") if eager else {}

    def rope_kwargs(theta):
        if new_rope:
            return {"rope_parameters": {"rope_type": "default", "rope_theta": float(theta)}}
        return {"rope_theta": float(theta)}

    if arch == "llama":
        return LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=172,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=256, rms_norm_eps=1e-5, hidden_act="silu",
                           attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
                           bos_token_id=1, eos_token_id=2, **rope_kwargs(10000.0), **common)
    if arch == "qwen2":
        return Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=172,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=256, rms_norm_eps=1e-6, hidden_act="silu",
                           tie_word_embeddings=False, use_sliding_window=False,
                           bos_token_id=1, eos_token_id=2, **rope_kwargs(1000000.0), **common)
    if arch == "gpt2":
        return GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=64, n_layer=2, n_head=4,
                          n_inner=None, activation_function="gelu_new", layer_norm_epsilon=1e-5,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                          bos_token_id=0, eos_token_id=0, tie_word_embeddings=True, **common)
    raise ValueError(arch)


MODEL_CLASS = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "gpt2": GPT2LMHeadModel}
SEEDS = {"llama": 1001, "qwen2": 1002, "gpt2": 1003}


def force_eager(model):
    try:
        model.config._attn_implementation = "eager"
    except Exception:
        pass
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
        except Exception as e:  # older/newer API differences: the config setting is enough
            print(f"  note: set_attn_implementation failed ({e}); relying on the config")
    return getattr(model.config, "_attn_implementation", "?")


def randomise(model, gen):
    """Weights big enough that a wrong transpose/permutation/norm shows in the log-probs:
    matrices N(0, 0.15), embeddings and lm_head N(0, 0.3), norm weights 1 + N(0, 0.2),
    biases N(0, 0.1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.ndim == 1:
                if name.endswith("bias"):
                    p.copy_(0.1 * noise)
                else:
                    p.copy_(1.0 + 0.2 * noise)
            elif any(k in name for k in ("embed_tokens", "wte", "wpe", "lm_head")):
                p.copy_(0.3 * noise)
            else:
                p.copy_(0.15 * noise)


def write_lines(path, values, fmt):
    with open(path, "w") as f:
        for v in values:
            f.write(fmt(v) + "\n")


def g9(x):
    return "%.9g" % float(x)


def run_arch(arch, out_root):
    out = os.path.join(out_root, arch)
    os.makedirs(out, exist_ok=True)
    seed = SEEDS[arch]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    config = make_config(arch)
    if arch != "gpt2":
        rp = getattr(config, "rope_parameters", None) or {}
        theta = rp.get("rope_theta", getattr(config, "rope_theta", None))
        print(f"[{arch}] effective rope theta {theta}")
    model = MODEL_CLASS[arch](config)
    model = model.float()
    attn = force_eager(model)
    randomise(model, gen)
    model.eval()
    model.save_pretrained(out)

    # What was saved (names, shapes), read back with safetensors.
    from safetensors import safe_open
    st_path = os.path.join(out, "model.safetensors")
    lines = []
    with safe_open(st_path, framework="pt") as f:
        for k in sorted(f.keys()):
            t = f.get_tensor(k)
            lines.append(f"{k} {str(t.dtype).replace('torch.', '')} {list(t.shape)}")
    write_lines(os.path.join(out, "tensors.txt"), lines, str)

    # Fixed id sequence (its own generator so it does not depend on the weights' draws).
    id_gen = torch.Generator().manual_seed(seed + 7)
    ids = torch.randint(0, VOCAB, (SEQ_LEN,), generator=id_gen)
    write_lines(os.path.join(out, "ids.txt"), ids.tolist(), str)

    model = model.double()
    with torch.no_grad():
        logits = model(input_ids=ids[None, :], use_cache=False).logits[0].double()  # (T, V)
        logsm = torch.log_softmax(logits, dim=-1)
        lp = logsm[torch.arange(SEQ_LEN - 1), ids[1:]]  # (T-1,)
    write_lines(os.path.join(out, "logprobs.txt"), lp.tolist(), g9)
    with open(os.path.join(out, "logsoftmax.txt"), "w") as f:
        for p in LOGSOFTMAX_POS:
            f.write(str(p) + " " + " ".join(g9(v) for v in logsm[p].tolist()) + "\n")
    print(f"[{arch}] attn={attn} params={sum(p.numel() for p in model.parameters())} "
          f"mean logprob={lp.mean().item():.4f} min={lp.min().item():.4f} "
          f"max={lp.max().item():.4f}")

    min_margin = None
    if arch == "llama":
        seq = ids[:GREEDY_PROMPT].tolist()
        new = []
        with torch.no_grad():
            for _ in range(GREEDY_NEW):
                lg = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
                top2 = torch.topk(lg, 2)
                margin = (top2.values[0] - top2.values[1]).item()
                min_margin = margin if min_margin is None else min(min_margin, margin)
                nxt = int(top2.indices[0])
                new.append(nxt)
                seq.append(nxt)
        write_lines(os.path.join(out, "greedy.txt"), new, str)
        print(f"[{arch}] greedy from ids[0..{GREEDY_PROMPT}): {new} "
              f"(smallest top-1/top-2 logit margin {min_margin:.4g})")
        if min_margin < 1e-3:
            print(f"[{arch}] WARNING: a greedy step is nearly tied; the C test may flip there")

    with open(os.path.join(out, "info.txt"), "w") as f:
        f.write(f"arch {arch}\nclass {MODEL_CLASS[arch].__name__}\n")
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")
        f.write(f"seed {seed}\nids_seed {seed + 7}\nseq_len {SEQ_LEN}\n")
        f.write(f"attn_implementation {attn}\nreference_dtype float64 (weights saved float32)\n")
        f.write("logsoftmax_positions " + " ".join(map(str, LOGSOFTMAX_POS)) + "\n")
        if min_margin is not None:
            f.write(f"greedy_prompt ids[0..{GREEDY_PROMPT}) new {GREEDY_NEW} "
                    f"min_margin {min_margin:.6g}\n")
    files = sorted(os.listdir(out))
    size = sum(os.path.getsize(os.path.join(out, x)) for x in files)
    print(f"[{arch}] wrote {out}: {', '.join(files)} ({size} bytes)")
    for ln in lines:
        print(f"[{arch}]   {ln}")
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    print(f"[{arch}] config.json keys: {', '.join(sorted(cfg))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default="tests/golden")
    ap.add_argument("--arch", action="append", choices=sorted(MODEL_CLASS),
                    help="only this architecture (repeatable); default all")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {sys.version.split()[0]}, CPU float64 reference")
    for arch in args.arch or ["llama", "qwen2", "gpt2"]:
        run_arch(arch, args.out)
    print("done")


if __name__ == "__main__":
    main()
