#!/usr/bin/env python3
"""gist_paired.py - paired comparisons of per-item ROUGE-L (gist_score --items) between two
evaluation rows on the same items: mean difference and a 95% bootstrap interval (10,000
resamples of the items, seed 0).

Usage: gist_paired.py A.items B.items   (prints "mean_A mean_B diff lo hi n")
"""
import sys

import numpy as np


def load(p):
    d = {}
    for line in open(p):
        f = line.split("\t")
        if len(f) == 2:
            d[int(f[0])] = float(f[1])
    return d


def main(a_path, b_path):
    a, b = load(a_path), load(b_path)
    keys = sorted(set(a) & set(b))
    x = np.array([a[k] for k in keys]) - np.array([b[k] for k in keys])
    rng = np.random.RandomState(0)
    boots = x[rng.randint(0, len(x), (10000, len(x)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    print("%.2f\t%.2f\t%+.2f\t%+.2f\t%+.2f\t%d" % (np.mean([a[k] for k in keys]),
          np.mean([b[k] for k in keys]), x.mean(), lo, hi, len(keys)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
