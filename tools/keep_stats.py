#!/usr/bin/env python3
"""keep_stats.py - what a compression kept: share of digit tokens and of stop-word tokens among
kept versus dropped tokens, from `terse compress --json --tokens` output (stdin or files).

Usage: terse compress --rate 0.5 --json --tokens < prompt.txt | python3 tools/keep_stats.py
A token counts as a digit token when its text has a digit, as a stop word when its text,
stripped and lower-cased, is in the list below (closed-class English words)."""
import json
import sys

STOP = set("""a an the and or but if then so of to in on at by for with from as into onto
about over under than that this these those is are was were be been being am do does did
have has had having it its they them their there he she him her his we us our you your i me
my not no nor can could will would shall should may might must just also very too each
which who whom whose what when where why how all any some such only own same other""".split())


def stats(d):
    rows = {True: [0, 0, 0], False: [0, 0, 0]}  # tokens, digit tokens, stop-word tokens
    for t in d["tokens"]:
        r = rows[bool(t["kept"])]
        text = t["text"]
        r[0] += 1
        r[1] += any(c.isdigit() for c in text)
        r[2] += text.strip().lower() in STOP
    return rows


def main():
    docs = [json.load(open(p)) for p in sys.argv[1:]] or [json.load(sys.stdin)]
    print("| method | unit | rate | kept: digits | dropped: digits | kept: stop words | "
          "dropped: stop words | digit tokens kept | stop-word tokens kept | other tokens kept |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in docs:
        r = stats(d)
        k, x = r[True], r[False]
        pct = lambda a, b: f"{100.0 * a / max(1, b):.1f}%"
        print(f"| {d.get('method')} | {d.get('unit', '-')} | {d.get('achieved_rate', 0):.2f} | "
              f"{pct(k[1], k[0])} | {pct(x[1], x[0])} | {pct(k[2], k[0])} | {pct(x[2], x[0])} | "
              f"{pct(k[1], k[1] + x[1])} | {pct(k[2], k[2] + x[2])} | "
              f"{pct(k[0] - k[1] - k[2], k[0] + x[0] - k[1] - x[1] - k[2] - x[2])} |")


if __name__ == "__main__":
    main()
