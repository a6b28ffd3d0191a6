#!/usr/bin/env python3
"""ref_gguf_check.py - check tools/ref_gguf.py against ../shared/quant (llama.cpp's fixtures):
its dequantisers against gguf-py's golden tensors (bit for bit), and its float64 forward
(transformers or the plain one) against the fixtures' float64 reference log-probs.
Usage: python3 tools/ref_gguf_check.py [../shared/quant]"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_gguf  # noqa: E402


def main(q):
    ids = [int(x) for x in open(os.path.join(q, "ids.txt")).read().split()]
    bad = 0
    for name in ("F32", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "Q5_K_M"):
        meta, t = ref_gguf.read_gguf(os.path.join(q, f"llama-{name}.gguf"))
        for tn in ("blk.0.attn_q.weight", "blk.0.ffn_down.weight"):
            g = os.path.join(q, f"{name}.{tn}.f32")
            if not os.path.exists(g):
                continue
            want = np.fromfile(g, np.float32).astype(np.float64)
            got = t[tn].reshape(-1)
            nd = int((want != got).sum())
            bad += nd != 0
            print(f"{name} {tn}: {nd} values differ from gguf-py's")
        ref = np.loadtxt(os.path.join(q, f"{name}.ref_f64.txt"))
        for plain in (True, False):
            try:
                lp, used = ref_gguf.logprobs(os.path.join(q, f"llama-{name}.gguf"), ids, plain)
            except ImportError:
                continue
            if used != plain:
                continue
            d = np.abs(lp.numpy() - ref).max()
            bad += d > 1e-9
            print(f"{name} log-probs ({'plain' if plain else 'transformers'}): max |diff| {d:.2e}")
    print(f"{'FAIL' if bad else 'ok'}: {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/quant"))
