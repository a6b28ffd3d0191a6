#!/usr/bin/env python3
"""runs_table.py - Markdown table of the default-model candidates from their train_default.py
reports (models/runs/RUN-SIZE.json, as tools/regen_default.sh names them): run, shape, steps,
tokens seen, training throughput and bits per byte (PyTorch, F16 weights) on the whole
held-out texts. The train log beside each report (RUN-SIZE_train_log.csv) gives the final loss.
Usage: python3 tools/runs_table.py models/runs/run3-small.json models/runs/run4-medium.json ..."""
import json
import os
import sys


def run_of(path, size):
    """The run id of models/runs/RUN-SIZE.json ("-" for a file named SIZE.json alone)."""
    stem = os.path.basename(path)[:-len(".json")] if path.endswith(".json") else os.path.basename(path)
    return stem[:-len("-" + size)] if stem.endswith("-" + size) else "-"


def main(paths):
    print("| run | size | parameters | layers x width, heads/kv, ffn | steps x batch | tokens seen | "
          "training tokens/s (3 runs sharing the GPU) | final loss | WikiText-2 raw | "
          "WikiText-2 detok. | val | val-v2 |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        r = json.load(open(p))
        c, b = r["config"], r.get("bpb", {})
        loss = "-"
        try:
            rows = open((p[:-len(".json")] if p.endswith(".json") else p) + "_train_log.csv").read().split()
            loss = rows[-1].split(",")[2]
        except (OSError, IndexError):
            pass
        tps = r.get("measured_steps_per_s", 0) * r["batch"] * c["ctx"]
        f = lambda k: f"{b[k]['bits_per_byte']:.3f}" + ("" if b[k].get("complete", True) else " (part)") \
            if k in b else "-"
        print(f"| {run_of(p, r['size'])} | {r['size']} | {r['params'] / 1e6:.1f}M | {c['n_layer']} x {c['d']}, "
              f"{c['n_head']}/{c['n_kv']}, {c['ff']} | {r['done_steps']:,} x {r['batch']} | "
              f"{r.get('tokens_seen', 0) / 1e6:.0f}M | {tps / 1e3:.0f}k | {loss} | "
              f"{f('wikitext2_raw')} | {f('wikitext2_detok')} | {f('val')} | {f('val_v2')} |"
              + (" (cut short)" if r.get("truncated") else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
