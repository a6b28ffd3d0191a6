#!/usr/bin/env python3
"""pareto.py - bits per byte against scoring speed for the default-model candidates (issue 15),
as a plain SVG (no plotting library) and a Markdown table.

Usage: python3 tools/pareto.py OUT.svg OUT.md SPEED.txt NAME=MODEL.gguf:BPB.json ...
  SPEED.txt  output of tools/speed_shapes.sh (farm-bench runs of `terse compress`, selective
             and llmlingua, per model: its path, or the NAME it was given as NAME=PATH)
  NAME=MODEL:BPB.json   a candidate: the model as SPEED.txt calls it (models/speed.txt:
             previous-default, models/terse-default.gguf), and a JSON with bits per byte
             {"wikitext2_raw": {"bits_per_byte": x}, "val": ..., "val_v2": ...} (a
             train_default.py report, e.g. models/runs/run3-small.json, or a flat file of the
             same keys)
Speed = prompt tokens of both runs / (median CPU seconds of selective + of llmlingua, -t 2),
with --tokens N prompt tokens per run (2507: the GSM8K 8-shot prompt in the old tokenizer); the
chart uses CPU seconds, which a shared machine disturbs far less than wall time (both are in the
table).
"""
import json
import math
import re
import sys

SERIES = [("wikitext2_raw", "WikiText-2 raw", "#d62728"), ("val", "val (v1 held-out)", "#1f77b4"),
          ("val_v2", "val-v2 (Wikipedia/news held-out)", "#2ca02c")]


def parse_speed(path):
    """{model path: {method: {"wall": median, "cpu": median}}} from farm-bench output."""
    out, cur = {}, None
    for line in open(path):
        m = re.match(r"== (\S+) (\S+) \(vs", line)
        if m:
            cur = out.setdefault(m.group(1), {}).setdefault(m.group(2), {})
            continue
        m = re.match(r"A (wall|cpu) s\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m and cur is not None:
            cur[m.group(1)] = float(m.group(3))
    return out


def bpb_of(path):
    d = json.load(open(path))
    d = d.get("bpb", d)
    get = lambda k: (d.get(k + "_prefix") or d.get(k) or {}).get("bits_per_byte")
    return {k: get(k) for k, _, _ in SERIES}


def main(a):
    tokens = 2507
    if "--tokens" in a:
        i = a.index("--tokens")
        tokens = int(a[i + 1])
        del a[i:i + 2]
    svg, md, speed = a[0], a[1], parse_speed(a[2])
    pts = []
    for spec in a[3:]:
        name, rest = spec.split("=", 1)
        model, bpb = rest.rsplit(":", 1)
        if model not in speed:
            sys.exit(f"pareto.py: {model} is not timed in {a[2]} (it times: {', '.join(speed)})")
        sp = speed[model]
        wall = sp["selective"]["wall"] + sp["llmlingua"]["wall"]
        cpu = sp["selective"]["cpu"] + sp["llmlingua"]["cpu"]
        pts.append({"name": name, "tps": 2 * tokens / wall, "tps_cpu": 2 * tokens / cpu,
                    "wall_sel": sp["selective"]["wall"], "wall_ll": sp["llmlingua"]["wall"],
                    "bpb": bpb_of(bpb)})
    W, H, L, R, T, B = 720, 430, 70, 230, 40, 55
    xs = [p["tps_cpu"] for p in pts]
    ys = [v for p in pts for v in p["bpb"].values() if v]
    step = 250 if max(xs) > 600 else 100
    x0, x1 = 0, math.ceil(max(xs) * 1.1 / step) * step
    y0, y1 = min(ys) - 0.05, max(ys) + 0.05
    sx = lambda v: L + (v - x0) / (x1 - x0) * (W - L - R)
    sy = lambda v: T + (1 - (v - y0) / (y1 - y0)) * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{(W - R + L) / 2}" y="22" text-anchor="middle" font-size="15">bits per byte vs '
         f'scoring speed (lower right is better)</text>']
    for v in range(x0, x1 + 1, step):
        o.append(f'<line x1="{sx(v):.1f}" y1="{T}" x2="{sx(v):.1f}" y2="{H - B}" stroke="#eee"/>')
        o.append(f'<text x="{sx(v):.1f}" y="{H - B + 18}" text-anchor="middle">{v:.0f}</text>')
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5
        o.append(f'<line x1="{L}" y1="{sy(v):.1f}" x2="{W - R}" y2="{sy(v):.1f}" stroke="#eee"/>')
        o.append(f'<text x="{L - 8}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for k, label, c in SERIES:
        line = [(p["tps_cpu"], p["bpb"][k]) for p in pts if p["bpb"][k] and p["name"] != "old"]
        line.sort()
        if len(line) > 1:
            o.append(f'<polyline fill="none" stroke="{c}" stroke-dasharray="4 3" points="' +
                     " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line) + '"/>')
        for p in pts:
            if p["bpb"][k]:
                fill = f'fill="white" stroke="{c}" stroke-width="2"' if p["name"] == "old" else f'fill="{c}"'
                o.append(f'<circle cx="{sx(p["tps_cpu"]):.1f}" cy="{sy(p["bpb"][k]):.1f}" r="4" {fill}/>')
                o.append(f'<text x="{sx(p["tps_cpu"]) + 6:.1f}" y="{sy(p["bpb"][k]) - 6:.1f}" '
                         f'font-size="11">{p["name"]}</text>')
    for i, (k, label, c) in enumerate(SERIES):
        o.append(f'<circle cx="{W - R + 16}" cy="{T + 14 + 18 * i}" r="4" fill="{c}"/>')
        o.append(f'<text x="{W - R + 26}" y="{T + 18 + 18 * i}">{label}</text>')
    o.append(f'<circle cx="{W - R + 16}" cy="{T + 14 + 18 * 3}" r="4" fill="white" stroke="#555" '
             f'stroke-width="2"/><text x="{W - R + 26}" y="{T + 18 + 18 * 3}">old default model</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">prompt tokens per '
             f'CPU-second, `terse compress` selective + llmlingua, -t 2</text>')
    o.append(f'<text transform="translate(16,{(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
             f'bits per byte</text>')
    o.append("</svg>")
    open(svg, "w").write("\n".join(o) + "\n")
    with open(md, "w") as f:
        f.write("| model | WikiText-2 raw | val | val-v2 | selective wall s | llmlingua wall s | "
                "tokens/s (wall) | tokens/s (CPU) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
        fmt = lambda v: f"{v:.3f}" if v else "-"
        for p in pts:
            b = p["bpb"]
            f.write(f"| {p['name']} | {fmt(b['wikitext2_raw'])} | {fmt(b['val'])} | "
                    f"{fmt(b['val_v2'])} | {p['wall_sel']:.2f} | {p['wall_ll']:.2f} | "
                    f"{p['tps']:.0f} | {p['tps_cpu']:.0f} |\n")
    print(open(md).read())


if __name__ == "__main__":
    main(sys.argv[1:])
