#!/usr/bin/env python3
"""ref_bpb.py - bits per byte of a text by a float64 PyTorch forward on a GGUF model's
dequantised weights (tools/ref_gguf.py), windowed exactly as `terse bpb`: the ids (from
`terse tokenize`, whose ids equal Hugging Face's: tests/test_default_model.c) cut into windows of
ctx-1 tokens, each scored after the BOS token. Prints the same keys as `terse bpb`.
Usage: terse tokenize MODEL -f TEXT | python3 tools/ref_bpb.py MODEL BYTES [--window N]"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_gguf  # noqa: E402


def main(a):
    model, nbytes = a[0], int(a[1])
    win = int(a[a.index("--window") + 1]) if "--window" in a else 0
    ids = [int(line.split("\t")[1]) for line in sys.stdin if line[:1].isdigit()]
    hp, sd = ref_gguf.load_weights(model)
    bos = hp["bos"]
    w = win or hp["ctx"]
    nats = 0.0
    for at in range(0, len(ids), w - 1):
        chunk = [bos] + ids[at:at + w - 1]
        with torch.no_grad():
            lg = ref_gguf.logits_plain(hp, sd, chunk)
        lp = torch.log_softmax(lg, -1)[torch.arange(len(chunk) - 1), torch.tensor(chunk[1:])]
        nats -= lp.sum().item()
    print(f"tokens\t{len(ids)}\nbytes\t{nbytes}\nbytes_per_token\t{nbytes / len(ids):.4f}\n"
          f"nats_per_token\t{nats / len(ids):.5f}\nbits_per_byte\t{nats / math.log(2) / nbytes:.5f}")


if __name__ == "__main__":
    main(sys.argv[1:])
