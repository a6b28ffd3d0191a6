#!/usr/bin/env python3
"""soft_report.py - tables and SVG plot of the soft-prompt experiment (tools/soft_experiment.c).
No plotting library: plain SVG text.
Usage: python3 tools/soft_report.py RUNDIR:STEPS[,RUNDIR2:STEPS2...] OUTDIR
  (RUNDIR/<prompt>.log or RUNDIR/<prompt>/kl.tsv, kl_hard.tsv, probe.tsv; a later run dir adds
  the N values the earlier ones lack, with its own step count)
Writes OUTDIR/kl.svg and prints the Markdown tables for docs/soft/README.md (the probe table
from OUTDIR/probe_<prompt>.tsv, the output of `terse probe`)."""
import csv
import math
import os
import re
import sys

PROMPTS = [("gsm8k", "GSM8K demonstrations"), ("passage", "passage (Siddhartha)"),
           ("instruction", "instruction prompt")]
SERIES = [("none", "no prompt", "#888888", "4 3"), ("random_soft", "random soft", "#bbbbbb", "2 2"),
          ("selective", "Selective Context", "#1f77b4", ""), ("llmlingua", "LLMLingua", "#2ca02c", ""),
          ("soft", "soft prompt", "#d62728", "")]


def read(path):
    return list(csv.DictReader(open(path), delimiter="\t"))


def svg(runs, dst):
    W, H, L, R, T, B, gap = 980, 360, 60, 10, 50, 70, 30
    pw = (W - L - R - 2 * gap) / 3
    ys = [float(r[k]) for rows in runs.values() for r in rows for k, *_ in SERIES]
    y1 = math.ceil(max(ys) * 2) / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">', f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">KL(full prompt || condition), '
           f'nats/token, vs N (soft vectors or hard tokens); terse-default</text>']
    for pi, (key, title) in enumerate(PROMPTS):
        rows = runs.get(key)
        if not rows:
            continue
        x0 = L + pi * (pw + gap)
        Ns = [int(r["N"]) for r in rows]
        lx = lambda n: x0 + (math.log2(n) - math.log2(Ns[0])) / max(1e-9, math.log2(Ns[-1]) - math.log2(Ns[0])) * pw
        sy = lambda v: T + (1 - min(v, y1) / y1) * (H - T - B)
        out.append(f'<text x="{x0 + pw / 2}" y="{T - 10}" text-anchor="middle" font-size="12">{title}</text>')
        for n in Ns:
            out.append(f'<line x1="{lx(n):.1f}" y1="{T}" x2="{lx(n):.1f}" y2="{H - B}" stroke="#eee"/>')
            out.append(f'<text x="{lx(n):.1f}" y="{H - B + 15}" text-anchor="middle">{n}</text>')
        v = 0.0
        while v <= y1 + 1e-9:
            out.append(f'<line x1="{x0}" y1="{sy(v):.1f}" x2="{x0 + pw}" y2="{sy(v):.1f}" stroke="#eee"/>')
            if pi == 0:
                out.append(f'<text x="{x0 - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
            v += 0.5
        out.append(f'<text x="{x0 + pw / 2}" y="{H - B + 32}" text-anchor="middle">N</text>')
        for k, label, color, dash in SERIES:
            pts = " ".join(f"{lx(int(r['N'])):.1f},{sy(float(r[k])):.1f}" for r in rows)
            d = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{d}/>')
            for r in rows:
                out.append(f'<circle cx="{lx(int(r["N"])):.1f}" cy="{sy(float(r[k])):.1f}" r="2.5" fill="{color}"/>')
    lx0 = L
    for i, (k, label, color, dash) in enumerate(SERIES):
        x = lx0 + i * 170
        d = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="{H - 14}" x2="{x + 28}" y2="{H - 14}" stroke="{color}" stroke-width="2"{d}/>')
        out.append(f'<text x="{x + 34}" y="{H - 10}">{label}</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


LINE = re.compile(r"^N=(\d+): none ([\d.]+) random ([\d.]+) soft ([\d.]+) selective ([\d.]+) \((\d+)\) "
                  r"llmlingua ([\d.]+) \((\d+)\); train ([\d.]+) -> ([\d.]+) in ([\d.]+) s")
KEYS = ["N", "none", "random_soft", "soft", "selective", "selective_tokens", "llmlingua",
        "llmlingua_tokens", "train_kl_initial", "train_kl_final", "distill_seconds"]


def read_kl(run, key):
    """kl.tsv rows, or the same numbers from the run's log (RUN/<key>.log); the hard
    compressions from kl_hard.tsv when present (budget of N tokens, newlines not protected)"""
    rows = []
    log = os.path.join(run, key + ".log")
    if os.path.exists(log):
        seen = set()
        for line in open(log):
            m = LINE.match(line)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                rows.append(dict(zip(KEYS, m.groups())))
    elif os.path.exists(os.path.join(run, key, "kl.tsv")):
        rows = read(os.path.join(run, key, "kl.tsv"))
    hard = os.path.join(run, key, "kl_hard.tsv")
    if os.path.exists(hard):
        h = {r["N"]: r for r in read(hard)}
        for r in rows:
            if r["N"] in h:
                r.update({k: h[r["N"]][k] for k in ("selective", "selective_tokens", "llmlingua", "llmlingua_tokens")})
    return rows


def main(spec, dst):
    dirs = [(d.split(":")[0], d.split(":")[1] if ":" in d else "?") for d in spec.split(",")]
    run = dirs[0][0]
    runs = {}
    for key, _ in PROMPTS:
        have = {}
        for d, steps in dirs:
            for r in read_kl(d, key):
                if r["N"] not in have:
                    r["steps"] = steps
                    have[r["N"]] = r
        for d, _ in dirs:  # hard compressions at exactly N tokens, from any run dir
            hard = os.path.join(d, key, "kl_hard.tsv")
            if os.path.exists(hard):
                for h in read(hard):
                    if h["N"] in have:
                        have[h["N"]].update({k: h[k] for k in ("selective", "selective_tokens", "llmlingua", "llmlingua_tokens")})
        if have:
            runs[key] = sorted(have.values(), key=lambda r: int(r["N"]))
    os.makedirs(dst, exist_ok=True)
    svg(runs, os.path.join(dst, "kl.svg"))
    for key, title in PROMPTS:
        if key not in runs:
            continue
        print(f"\n**{title}** (no prompt: KL {float(runs[key][0]['none']):.3f})\n")
        print("| N | random soft | Selective Context (tokens) | LLMLingua (tokens) | soft prompt | steps | soft: train KL before -> after | distill s (loaded machine) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in runs[key]:
            best = min(float(r["selective"]), float(r["llmlingua"]))
            soft = float(r["soft"])
            mark = "**" if soft < best else ""
            print(f"| {r['N']} | {float(r['random_soft']):.3f} | {float(r['selective']):.3f} ({r['selective_tokens']}) "
                  f"| {float(r['llmlingua']):.3f} ({r['llmlingua_tokens']}) | {mark}{soft:.3f}{mark} | {r['steps']} "
                  f"| {float(r['train_kl_initial']):.3f} -> {float(r['train_kl_final']):.3f} | {float(r['distill_seconds']):.0f} |")
    print("\n| prefix | " + " | ".join(t for k, t in PROMPTS if k in runs) + " |")
    print("|---|" + "---|" * len(runs))
    probes = {k: read(os.path.join(dst, f"probe_{k}.tsv")) for k in runs
              if os.path.exists(os.path.join(dst, f"probe_{k}.tsv"))}
    if probes:
        labels = []
        for rows in probes.values():
            for r in rows:
                if r["prefix"] not in labels:
                    labels.append(r["prefix"])
        soft = sorted((l for l in labels if l.startswith("soft")), key=lambda l: int(l.split("=")[1]))
        labels = soft + [l for l in labels if not l.startswith("soft")]
        for label in labels:
            cells = []
            for k, _ in PROMPTS:
                q = next((r for r in probes.get(k, []) if r["prefix"] == label), None)
                cells.append(f"{float(q['mean_prob']):.3f} / {float(q['mean_log']):.3f}" if q else "-")
            print(f"| {label} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
