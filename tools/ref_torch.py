#!/usr/bin/env python3
"""ref_torch.py - PyTorch/transformers reference outputs for terse's golden tests.

For each architecture (llama, qwen2, gpt2, and phi2, phi3, gemma, gemma2, qwen3, mistral,
llama3: Llama with llama3 rope scaling) this builds a tiny model from a config with seeded
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
import transformers as T

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

    def rope_kwargs(theta, scaling=None, partial=None):
        if new_rope:
            rp = {"rope_type": "default", "rope_theta": float(theta)}
            if scaling:
                rp.update(scaling)
            if partial is not None:
                rp["partial_rotary_factor"] = partial
            kw = {"rope_parameters": rp}
        else:
            kw = {"rope_theta": float(theta)}
            if scaling:
                kw["rope_scaling"] = dict(scaling)
        if partial is not None:
            kw["partial_rotary_factor"] = partial
        return kw

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
    small = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=256, **common)
    if arch == "llama3":  # Llama with Llama 3 rope scaling (rope_freqs in GGUF)
        return LlamaConfig(num_key_value_heads=2, rms_norm_eps=1e-5, hidden_act="silu",
                           attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
                           bos_token_id=1, eos_token_id=2,
                           **rope_kwargs(500000.0, LLAMA3_SCALING), **small)
    if arch == "mistral":  # sliding window 32 < 100 ids: the window shows in the log-probs
        return T.MistralConfig(num_key_value_heads=2, rms_norm_eps=1e-5, hidden_act="silu",
                               sliding_window=32, head_dim=16, tie_word_embeddings=False,
                               bos_token_id=1, eos_token_id=2, **rope_kwargs(10000.0), **small)
    if arch == "qwen3":  # head_dim 32 != 64/4, q/k RMS norms, tied output
        return T.Qwen3Config(num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6,
                             hidden_act="silu", attention_bias=False, tie_word_embeddings=True,
                             use_sliding_window=False, bos_token_id=1, eos_token_id=2,
                             **rope_kwargs(1000000.0), **small)
    if arch == "gemma":  # head_dim 32, one KV head (MQA), GeGLU, (1 + w) norms, tied
        return T.GemmaConfig(num_key_value_heads=1, head_dim=32, rms_norm_eps=1e-6,
                             hidden_act="gelu_pytorch_tanh",
                             hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                             pad_token_id=0, bos_token_id=2, eos_token_id=1,
                             **rope_kwargs(10000.0), **small)
    if arch == "gemma2":  # + post norms, soft-capping, query_pre_attn_scalar, local layers
        return T.Gemma2Config(num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6,
                              hidden_activation="gelu_pytorch_tanh",
                              hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True,
                              query_pre_attn_scalar=24, sliding_window=24,
                              attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
                              pad_token_id=0, bos_token_id=2, eos_token_id=1,
                              **rope_kwargs(10000.0), **small)
    if arch == "phi2":  # LayerNorm, parallel attention + MLP, partial rotary, biases
        return T.PhiConfig(num_key_value_heads=4, hidden_act="gelu_new", layer_norm_eps=1e-5,
                           resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0,
                           qk_layernorm=False, tie_word_embeddings=False,
                           bos_token_id=1, eos_token_id=2,
                           **rope_kwargs(10000.0, partial=0.5), **small)
    if arch == "phi3":  # fused qkv and gate_up, RMSNorm, NEOX rotary
        return T.Phi3Config(num_key_value_heads=2, hidden_act="silu", rms_norm_eps=1e-5,
                            resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0,
                            sliding_window=None, tie_word_embeddings=False,
                            pad_token_id=0, bos_token_id=1, eos_token_id=2,
                            original_max_position_embeddings=256,
                            **rope_kwargs(10000.0), **small)
    raise ValueError(arch)


LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

MODEL_CLASS = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "gpt2": GPT2LMHeadModel,
               "llama3": LlamaForCausalLM, "mistral": getattr(T, "MistralForCausalLM", None),
               "qwen3": getattr(T, "Qwen3ForCausalLM", None),
               "gemma": getattr(T, "GemmaForCausalLM", None),
               "gemma2": getattr(T, "Gemma2ForCausalLM", None),
               "phi2": getattr(T, "PhiForCausalLM", None),
               "phi3": getattr(T, "Phi3ForCausalLM", None)}
SEEDS = {"llama": 1001, "qwen2": 1002, "gpt2": 1003, "llama3": 1004, "mistral": 1005,
         "qwen3": 1006, "gemma": 1007, "gemma2": 1008, "phi2": 1009, "phi3": 1010}
NEW_ARCHS = ["llama3", "mistral", "qwen3", "gemma", "gemma2", "phi2", "phi3"]


def llama3_inv_freq(theta, dim, sc):
    """The Llama 3 scaled inverse frequencies, computed here from the published formula."""
    import math
    inv = [1.0 / theta ** (2 * j / dim) for j in range(dim // 2)]
    lo_wl = sc["original_max_position_embeddings"] / sc["low_freq_factor"]
    hi_wl = sc["original_max_position_embeddings"] / sc["high_freq_factor"]
    out = []
    for f in inv:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(f)
        elif wl > lo_wl:
            out.append(f / sc["factor"])
        else:
            smooth = (sc["original_max_position_embeddings"] / wl - sc["low_freq_factor"]) / \
                     (sc["high_freq_factor"] - sc["low_freq_factor"])
            out.append((1 - smooth) * f / sc["factor"] + smooth * f)
    return out


def find_inv_freq(model):
    for name, b in model.named_buffers():
        if name.endswith("inv_freq"):
            return b.double().tolist()
    return None


def check_model(arch, model):
    """Checks that the config took effect in the built model; returns lines for info.txt.
    Raises if it did not (so a config variant the installed transformers ignores is caught
    here, not by a puzzling golden)."""
    notes = []
    inv = find_inv_freq(model)
    if inv is not None:
        notes.append(f"rotary_inv_freq_len {len(inv)}")
    if arch == "phi2":
        if inv is None or len(inv) != 4:  # head_dim 16 x partial 0.5 = 8 rotary dims
            raise RuntimeError(f"phi2: rotary dims {None if inv is None else 2 * len(inv)}, want 8")
    if arch == "llama3":
        want = llama3_inv_freq(500000.0, 16, LLAMA3_SCALING)
        err = max(abs(a - b) / b for a, b in zip(inv, want))
        notes.append(f"llama3_inv_freq_rel_err_vs_formula {err:.3g}")
        if err > 1e-5:
            raise RuntimeError(f"llama3 inv_freq differ from the formula by {err}: {inv} vs {want}")
    if arch in ("mistral", "gemma2"):
        notes.append(f"sliding_window {model.config.sliding_window}")
        lt = getattr(model.config, "layer_types", None)
        if lt is not None:
            notes.append("layer_types " + ",".join(lt))
    return notes


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

    # Config variants (eager keyword, rope keyword style) until one builds a model whose
    # rotary/scaling settings check out (check_model).
    tries = [(True, TF_MAJOR >= 5), (False, TF_MAJOR >= 5), (True, TF_MAJOR < 5),
             (False, TF_MAJOR < 5)]
    last = None
    for eager, new_rope in tries:
        try:
            config = make_config_with(arch, eager, new_rope)
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            model = MODEL_CLASS[arch](config)
            model = model.float()
            attn = force_eager(model)
            randomise(model, gen)
            model.eval()
            notes = check_model(arch, model)
            break
        except Exception as e:
            print(f"[{arch}] config variant eager={eager} new_rope={new_rope} rejected: {e}")
            last = e
    else:
        raise last
    if arch != "gpt2":
        rp = getattr(config, "rope_parameters", None) or {}
        theta = rp.get("rope_theta", getattr(config, "rope_theta", None))
        print(f"[{arch}] effective rope theta {theta}")
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
    if arch in ("mistral", "gemma2"):
        # the same weights without the window: the log-probs must differ past it
        import copy
        m2 = copy.deepcopy(model)
        m2.config.sliding_window = None
        if hasattr(m2.config, "layer_types") and m2.config.layer_types:
            m2.config.layer_types = ["full_attention"] * len(m2.config.layer_types)
        try:
            with torch.no_grad():
                lg2 = m2(input_ids=ids[None, :], use_cache=False).logits[0].double()
            d = (torch.log_softmax(lg2, -1) - logsm).abs().max().item()
            notes.append(f"max_abs_logsoftmax_change_without_window {d:.4g}")
            print(f"[{arch}] without the sliding window the log-softmax moves by {d:.4g}")
        except Exception as e:
            print(f"[{arch}] window-off comparison failed: {e}")
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
        for n in notes:
            f.write(n + "\n")
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
    ap.add_argument("--arch", action="append", choices=sorted(MODEL_CLASS) + ["new"],
                    help="only this architecture (repeatable); default all")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {sys.version.split()[0]}, CPU float64 reference")
    archs = args.arch or ["llama", "qwen2", "gpt2"] + NEW_ARCHS
    if "new" in archs:
        archs = [a for a in archs if a != "new"] + NEW_ARCHS
    failed = []
    for arch in archs:
        if MODEL_CLASS.get(arch) is None:
            print(f"[{arch}] SKIP: this transformers has no model class for it")
            failed.append(arch)
            continue
        try:
            run_arch(arch, args.out)
        except Exception as e:  # one architecture's failure does not lose the others
            import traceback
            traceback.print_exc()
            print(f"[{arch}] FAILED: {e}")
            failed.append(arch)
    print("done" + (f"; failed: {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
