#!/usr/bin/env python3
"""plot_loss.py - draw training logs (CSV: step,tokens,loss,lr,seconds) as a small SVG.
No plotting library: plain SVG text, so it runs anywhere python3 does.
Usage: python3 tools/plot_loss.py models/train_log.csv models/loss_curve.svg
       python3 tools/plot_loss.py --runs OUT.svg A_train_log.csv B_train_log.csv ...
       (one curve per file, named after the file up to "_train_log")"""
import csv
import math
import os
import sys

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def read(src):
    rows = [r for r in csv.DictReader(open(src)) if r.get("step")]
    return [int(r["tokens"]) / 1e6 for r in rows], [float(r["loss"]) for r in rows]


def plot(dst, runs, title):
    W, H, L, R, T, B = 720, 400, 70, 20, 40, 55
    xs = [v for _, x, _ in runs for v in x]
    ys = [v for _, _, y in runs for v in y]
    x0, x1 = 0.0, max(xs)
    y0, y1 = math.floor(min(ys) * 2) / 2, math.ceil(min(max(ys), 8.0) * 2) / 2
    sx = lambda v: L + (v - x0) / (x1 - x0) * (W - L - R)
    sy = lambda v: T + (1 - (min(v, y1) - y0) / (y1 - y0)) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i in range(6):
        v = x0 + (x1 - x0) * i / 5
        out.append(f'<line x1="{sx(v):.1f}" y1="{T}" x2="{sx(v):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{sx(v):.1f}" y="{H - B + 18}" text-anchor="middle">{v:.0f}M</text>')
    v = y0
    while v <= y1 + 1e-9:
        out.append(f'<line x1="{L}" y1="{sy(v):.1f}" x2="{W - R}" y2="{sy(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{L - 8}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        v += 0.5
    for i, (name, x, y) in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, y))
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
        out.append(f'<text x="{W - R - 4}" y="{T + 16 + 16 * i}" text-anchor="end" fill="{c}">'
                   f'{name + ": " if name else ""}final loss {y[-1]:.3f} after {x[-1]:.0f}M tokens</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">training tokens</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


def main(a):
    if a and a[0] == "--runs":
        runs = [(os.path.basename(p).split("_train_log")[0],) + read(p) for p in a[2:]]
        plot(a[1], runs, "training loss (nats/token) vs tokens seen")
    else:
        plot(a[1], [("",) + read(a[0])], "terse-default: training loss (nats/token) vs tokens seen")


if __name__ == "__main__":
    main(sys.argv[1:])
