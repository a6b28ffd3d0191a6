#!/usr/bin/env python3
"""make_eval_data.py - the evaluation sets of docs/eval/, made deterministically from the
shared fixtures (standard library only).

  corpus_passages.jsonl: {"prompt": passage} for held-out corpus passages
      (../shared/corpus/val.txt.xz: documents separated by two blank lines). From each
      document of at least 2,000 characters (GSM8K-style "Question:" documents skipped), in
      file order, one passage: from the start of its second paragraph (the first is often a
      title), whole sentences up to about 1,400 characters. The target model continues it.
  gsm8k_questions.jsonl: {"question", "answer"} for the first N GSM8K test items
      (../shared/data/gsm8k/test.jsonl).

usage: python3 tools/make_eval_data.py [SHARED_DIR] [OUT_DIR] [N_PASSAGES] [N_QUESTIONS]
"""
import json
import lzma
import os
import re
import sys


def passages(shared, n):
    with lzma.open(os.path.join(shared, "corpus/val.txt.xz"), "rt", encoding="utf-8") as f:
        docs = f.read().split("\n\n\n")
    out = []
    for d in docs:
        if len(d) < 2000 or d.lstrip().startswith("Question:"):
            continue
        paras = d.split("\n\n")
        body = "\n\n".join(paras[1:]) if len(paras) > 2 else d
        body = body.strip()
        # whole sentences up to ~1400 characters
        ends = [m.end() for m in re.finditer(r"[.?!][\"')\]]?(?=\s)", body)]
        cut = max([e for e in ends if e <= 1400], default=0)
        if cut < 600:
            continue
        out.append(body[:cut])
        if len(out) == n:
            break
    return out


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "docs/eval/data"
    n_pass = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    n_q = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    os.makedirs(out_dir, exist_ok=True)
    ps = passages(shared, n_pass)
    with open(os.path.join(out_dir, "corpus_passages.jsonl"), "w") as f:
        for p in ps:
            f.write(json.dumps({"prompt": p}, ensure_ascii=False) + "\n")
    with open(os.path.join(shared, "data/gsm8k/test.jsonl")) as f, \
         open(os.path.join(out_dir, "gsm8k_questions.jsonl"), "w") as g:
        for k, line in enumerate(f):
            if k >= n_q:
                break
            o = json.loads(line)
            g.write(json.dumps({"question": o["question"], "answer": o["answer"]},
                               ensure_ascii=False) + "\n")
    print("%d passages, %d questions -> %s" % (len(ps), min(n_q, k + 1), out_dir))


if __name__ == "__main__":
    main()
