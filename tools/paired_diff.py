#!/usr/bin/env python3
"""paired_diff.py - Selective Context minus random, paired over items, from a `terse eval`
report (docs/eval corpus experiment): for every unit (phrase, token, sentence) and requested
rate, the mean over items of (selective-U - random-U) for each metric, +- one standard error
of that mean, as a Markdown table. "*" marks a difference of at least two standard errors.
Usage: python3 tools/paired_diff.py docs/eval/corpus/report.json [OLD_REPORT.json]
With OLD_REPORT, a second table gives the same for it (what changed with the model)."""
import json
import math
import sys

METRICS = [("bleu", "BLEU", 1), ("rougeL", "ROUGE-L", 3), ("meteor", "METEOR", 3),
           ("bertscore", "BERTScore", 3), ("kl", "KL", 3)]


def table(path):
    r = json.load(open(path))
    runs = {}
    for it in r["items"]:
        for run in it["runs"]:
            runs[(it["item"], run["method"], run["rate_requested"])] = run
    items = sorted({it["item"] for it in r["items"]})
    rates = sorted({k[2] for k in runs if k[1] != "full"}, reverse=True)
    out = [f"`{path}`: {r.get('compressor')}, {len(items)} items; selective - random, mean +- s.e.",
           "", "| unit | reduce ratio | " + " | ".join(m[1] for m in METRICS) + " |",
           "|---|---|" + "---:|" * len(METRICS)]
    for unit in ("phrase", "token", "sentence"):
        for rate in rates:
            cells = []
            for key, _, nd in METRICS:
                d = [runs[(i, "selective-" + unit, rate)][key] - runs[(i, "random-" + unit, rate)][key]
                     for i in items if (i, "selective-" + unit, rate) in runs
                     and (i, "random-" + unit, rate) in runs]
                d = [x for x in d if x is not None and math.isfinite(x)]
                if len(d) < 2:
                    cells.append("-")
                    continue
                m = sum(d) / len(d)
                se = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))
                star = "*" if abs(m) >= 2 * se and se > 0 else ""
                cells.append(f"{m:+.{nd}f} +- {se:.{nd}f}{star}")
            out.append(f"| {unit} | {1 - rate:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(table(p))
