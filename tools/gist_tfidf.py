#!/usr/bin/env python3
"""gist_tfidf.py - the TF-IDF baseline of Mu et al. 2023 (issue 11): every instruction is
replaced by its single highest-TF-IDF word ("Given two integers, find their average." ->
"average"). Words: lower-cased runs of 2+ word characters; IDF = ln((1 + N) / (1 + df)) + 1
over the instructions of the training file (each one a document); ties: the first word.

Usage: gist_tfidf.py TRAIN.jsonl IN.jsonl OUT.jsonl [IN.jsonl OUT.jsonl ...]
  (JSONL lines {"instruction", "input", "output"}; the other fields are kept)
"""
import json
import math
import re
import sys

WORD = re.compile(r"\b\w\w+\b", re.UNICODE)


def words(s):
    return WORD.findall(s.lower())


def main(argv):
    docs = [json.loads(l)["instruction"] for l in open(argv[0], encoding="utf-8") if l.strip()]
    df = {}
    for d in docs:
        for w in set(words(d)):
            df[w] = df.get(w, 0) + 1
    N = len(docs)
    idf = lambda w: math.log((1 + N) / (1 + df.get(w, 0))) + 1
    for src, dst in zip(argv[1::2], argv[2::2]):
        with open(dst, "w", encoding="utf-8") as f:
            for l in open(src, encoding="utf-8"):
                if not l.strip():
                    continue
                o = json.loads(l)
                ws = words(o["instruction"])
                tf = {}
                for w in ws:
                    tf[w] = tf.get(w, 0) + 1
                best = max(ws, key=lambda w: tf[w] * idf(w)) if ws else o["instruction"]
                o["instruction"] = best
                f.write(json.dumps(o, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
