#!/usr/bin/env python3
"""ref_metrics.py - reference values for terse's METEOR test, computed with NLTK.

Runs on a machine with Debian's python3-nltk (NLTK 3.8) and wordnet-base (WordNet 3.0 under
/usr/share/wordnet); no network, no nltk_data download: NLTK's WordNetCorpusReader is pointed
at the Debian files (plus a stand-in 'lexnames' file, which only names lexicographer files).

Writes tests/data/meteor_nltk.tsv: one case a line, "reference<TAB>hypothesis<TAB>score",
words separated by single spaces, score = nltk.translate.meteor_score.single_meteor_score
with its defaults (PorterStemmer(), WordNet, alpha 0.9, beta 3, gamma 0.5), and
tests/data/wordnet_nltk.tsv: "word<TAB>synonyms" (sorted, space separated) as the METEOR
synonym stage collects them. The sentence pairs come from GSM8K test questions
(../shared/data/gsm8k/test.jsonl) with deterministic edits: dropped words, reordered halves,
inflections and synonyms swapped in.

usage: /usr/bin/python3 tools/ref_metrics.py [SHARED_DIR]
       /usr/bin/python3 tools/ref_metrics.py --check-report REPORT.json [--libstemmer]
The second form recomputes, for every run of a `terse eval` report, ROUGE-1/2/L F (Google
rouge-score's tokenizer and scoring, re-stated below, with NLTK's PorterStemmer as rouge-score
uses it) and METEOR (NLTK, same word split as terse's) of the run's output against the full
prompt's output, and prints how far terse's values are from them. With --libstemmer both use
libstemmer's "porter" (terse's stemmer) instead of NLTK's, which isolates the stemmer's share.
"""
import json
import os
import sys
import tempfile
from itertools import chain

import nltk
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from nltk.translate.meteor_score import single_meteor_score

WN_DIR = "/usr/share/wordnet"


def open_wordnet():
    tmp = tempfile.mkdtemp(prefix="wn")
    for name in os.listdir(WN_DIR):
        os.symlink(os.path.join(WN_DIR, name), os.path.join(tmp, name))
    with open(os.path.join(tmp, "lexnames"), "w") as f:
        for i in range(45):
            f.write("%02d\tlex.%d\t1\n" % (i, i))
    return WordNetCorpusReader(tmp, None)


SWAPS = {"buy": "purchase", "buys": "purchases", "bought": "purchased", "big": "large",
         "many": "numerous", "total": "sum", "money": "cash", "store": "shop",
         "makes": "earns", "each": "every", "day": "daytime", "car": "automobile",
         "house": "home", "gets": "receives", "has": "owns", "hours": "hour",
         "eggs": "egg", "friends": "friend", "sells": "sold", "runs": "running"}


def edits(words, k):
    out = []
    for i, w in enumerate(words):
        lw = w.lower()
        if k % 3 == 0 and i % 4 == 3:
            continue
        if lw in SWAPS and (i + k) % 2 == 0:
            out.append(SWAPS[lw])
        else:
            out.append(w)
    if k % 5 == 1:
        half = len(out) // 2
        out = out[half:] + out[:half]
    return out


def rouge_tokens(text, stemmer):
    # rouge_score/tokenize.py: lowercase, non-[a-z0-9] -> space, stem words longer than 3
    import re as _re
    toks = _re.split(r"\s+", _re.sub(r"[^a-z0-9]+", " ", text.lower()))
    toks = [stemmer.stem(t) if len(t) > 3 else t for t in toks]
    return [t for t in toks if _re.match(r"^[a-z0-9]+$", t)]


def rouge_f(target, pred, n=None):
    from collections import Counter
    if n is not None:
        tg = Counter(tuple(target[i:i + n]) for i in range(len(target) - n + 1))
        pg = Counter(tuple(pred[i:i + n]) for i in range(len(pred) - n + 1))
        inter = sum(min(c, pg[g]) for g, c in tg.items())
        p = inter / max(sum(pg.values()), 1)
        r = inter / max(sum(tg.values()), 1)
    else:
        if not target or not pred:
            return 0.0
        row = [0] * (len(pred) + 1)
        for t in target:
            diag = 0
            for j, q in enumerate(pred, 1):
                up = row[j]
                row[j] = diag + 1 if t == q else max(row[j - 1], row[j])
                diag = up
        p, r = row[-1] / len(pred), row[-1] / len(target)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


class LibStemmer:
    """libstemmer's "porter" through ctypes (the stemmer terse uses), for --libstemmer."""

    def __init__(self):
        import ctypes
        lib = ctypes.CDLL("libstemmer.so.0d")
        lib.sb_stemmer_new.restype = ctypes.c_void_p
        lib.sb_stemmer_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.sb_stemmer_stem.restype = ctypes.POINTER(ctypes.c_ubyte)
        lib.sb_stemmer_stem.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.sb_stemmer_length.argtypes = [ctypes.c_void_p]
        self.lib, self.h = lib, lib.sb_stemmer_new(b"porter", None)

    def stem(self, w):
        b = w.encode("utf-8")
        out = self.lib.sb_stemmer_stem(self.h, b, len(b))
        n = self.lib.sb_stemmer_length(self.h)
        return bytes(out[:n]).decode("utf-8", "replace")


def check_report(path, use_libstemmer=False):
    import re as _re
    from nltk.stem.porter import PorterStemmer
    ps = LibStemmer() if use_libstemmer else PorterStemmer()
    wn = open_wordnet()
    split = lambda t: _re.findall(r"[A-Za-z0-9'\u0080-\U0010ffff]+|[^\sA-Za-z0-9'\u0080-\U0010ffff]", t)
    rep = json.load(open(path))
    worst = {"rouge1": 0, "rouge2": 0, "rougeL": 0, "meteor": 0}
    equal = dict.fromkeys(worst, 0)
    n = 0
    for it in rep["items"]:
        ref = it["output"] or ""
        for run in it["runs"]:
            hyp = run.get("output")
            if hyp is None:
                continue
            n += 1
            t, p = rouge_tokens(ref, ps), rouge_tokens(hyp, ps)
            want = {"rouge1": rouge_f(t, p, 1), "rouge2": rouge_f(t, p, 2), "rougeL": rouge_f(t, p)}
            if run.get("meteor") is not None:
                want["meteor"] = single_meteor_score(split(ref), split(hyp), wordnet=wn,
                                                     stemmer=ps)
            for k, v in want.items():
                d = abs((run[k] or 0) - v)
                worst[k] = max(worst[k], d)
                equal[k] += d < 1e-5
    print("%d runs of %s" % (n, path))
    for k in worst:
        print("  %-7s equal (|diff| < 1e-5) in %d/%d, max |diff| %.4f" % (k, equal[k], n, worst[k]))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--check-report":
        check_report(sys.argv[2], "--libstemmer" in sys.argv[3:])
        return
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
    wn = open_wordnet()
    cases = [
        # NLTK's documented example (meteor_score.py docstring; test_meteor.py: 0.6944)
        ("It is a guide to action that ensures that the military will forever heed Party "
         "commands", "It is a guide to action which ensures that the military always obeys the "
         "commands of the party"),
        ("this is a test", "THIS Is a tEST"),
    ]
    with open(os.path.join(shared, "data/gsm8k/test.jsonl")) as f:
        for k, line in enumerate(f):
            if k >= 40:
                break
            q = json.loads(line)["question"].replace("\t", " ")
            words = q.split()[:40]
            cases.append((" ".join(words), " ".join(edits(words, k))))
    with open("tests/data/meteor_nltk.tsv", "w") as f:
        f.write("# reference\thypothesis\tNLTK %s single_meteor_score (WordNet 3.0, Debian)\n"
                % nltk.__version__)
        for ref, hyp in cases:
            s = single_meteor_score(ref.split(), hyp.split(), wordnet=wn)
            f.write("%s\t%s\t%.12f\n" % (ref, hyp, s))
    words = ["obeys", "heed", "dogs", "running", "better", "geese", "purchased", "large",
             "went", "children", "quickly", "happiest", "feet", "axes", "womens", "n't",
             "ran", "thinking", "cars", "the"]
    with open("tests/data/wordnet_nltk.tsv", "w") as f:
        f.write("# word\tsynonyms as nltk %s meteor_score._enum_wordnetsyn_match collects "
                "them\n" % nltk.__version__)
        for w in words:
            syns = set(chain.from_iterable(
                (l.name() for l in s.lemmas() if l.name().find("_") < 0)
                for s in wn.synsets(w))).union({w})
            f.write("%s\t%s\n" % (w, " ".join(sorted(syns))))
    print("wrote %d METEOR cases, %d synonym sets" % (len(cases), len(words)))


if __name__ == "__main__":
    main()
