#!/usr/bin/env python3
"""lingua_survival.py - does the document that holds the answer survive compression?

Multi-document questions made from GSM8K test items: each item's solution (calculator
annotations and the "#### N" line removed) is one document; a question gets its own item's
solution plus N-1 others (a fixed random draw), shuffled, and asks the item's question.
For each method at the given rate, the script runs `terse compress --json --tokens` and
reports how often the answer document keeps any of its tokens, the mean share of its tokens
kept, and how often the final answer number is still in the output's documents (the
question, kept whole at the end, left out; a distractor that holds the same number counts).

usage: tools/lingua_survival.py [--items 30] [--docs 10] [--rate 0.3] [--terse build/terse]
       [--data ../shared/data/gsm8k/test.jsonl] [--threads 1] [--json out.json]
"""
import argparse, json, random, re, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--items", type=int, default=30)
ap.add_argument("--docs", type=int, default=10)
ap.add_argument("--rate", type=float, default=0.3)
ap.add_argument("--terse", default="build/terse")
ap.add_argument("--data", default="../shared/data/gsm8k/test.jsonl")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--json", default=None)
ap.add_argument("--methods", default="llmlingua,longllmlingua")
a = ap.parse_args()

rows = [json.loads(l) for l in open(a.data, encoding="utf-8")]
def solution(r):
    s = r["answer"].split("####")[0]
    s = re.sub(r"<<[^>]*>>", "", s).strip()
    return s, r["answer"].split("####")[1].strip().replace(",", "")

rng = random.Random(9)
items = []
for i in range(a.items):
    sol, ans = solution(rows[i])
    others = rng.sample([k for k in range(len(rows)) if k != i], a.docs - 1)
    docs = [sol] + [solution(rows[k])[0] for k in others]
    order = list(range(a.docs))
    rng.shuffle(order)
    docs = [docs[k] for k in order]
    items.append({"docs": docs, "gold": order.index(0), "answer": ans, "question": rows[i]["question"]})

methods = a.methods.split(",")
res = {m: {"doc_any": 0, "doc_share": 0.0, "answer": 0, "rate": 0.0, "seconds": 0.0} for m in methods}
for it in items:
    instr = "Answer the question using the documents."
    prompt = {"instruction": instr, "contexts": it["docs"], "question": "Question: " + it["question"]}
    # the assembled source: "\n\n".join([instruction] + contexts + [question])
    at = len((instr + "\n\n").encode())
    spans = []
    for d in it["docs"]:
        n = len(d.encode())
        spans.append((at, at + n))
        at += n + 2
    gb, ge = spans[it["gold"]]
    for m in methods:
        t0 = time.time()
        p = subprocess.run([a.terse, "compress", "--method", m, "--rate", str(a.rate), "--json",
                            "--tokens", "--no-progress", "-t", str(a.threads)],
                           input=json.dumps(prompt).encode(), capture_output=True)
        if p.returncode:
            sys.exit("%s failed: %s" % (m, p.stderr.decode()))
        d = json.loads(p.stdout)
        toks = [t for t in d["tokens"] if t["begin"] >= gb and t["end"] <= ge]
        kept = sum(t["kept"] for t in toks)
        r = res[m]
        r["doc_any"] += kept > 0
        r["doc_share"] += kept / max(1, len(toks))
        body = d["compressed_prompt"]  # without the question (kept whole at the end)
        qtext = "Question: " + it["question"]
        if body.endswith(qtext):
            body = body[:-len(qtext)]
        r["answer"] += re.search(r"(?<![\d.,])%s(?![\d])" % re.escape(it["answer"]),
                                 body.replace(",", "")) is not None
        r["rate"] += d["compressed_tokens"] / d["origin_tokens"]
        r["seconds"] += time.time() - t0
    print("item %d done" % len(items[:items.index(it) + 1]), file=sys.stderr, flush=True)

n = len(items)
print("| method | answer document kept | its tokens kept (mean) | answer number in output | achieved rate | s / prompt |")
print("|---|---:|---:|---:|---:|---:|")
for m in methods:
    r = res[m]
    print("| %s | %d/%d (%.0f%%) | %.0f%% | %d/%d (%.0f%%) | %.2f | %.1f |" % (
        m, r["doc_any"], n, 100 * r["doc_any"] / n, 100 * r["doc_share"] / n, r["answer"], n,
        100 * r["answer"] / n, r["rate"] / n, r["seconds"] / n))
if a.json:
    json.dump({"items": n, "docs": a.docs, "rate": a.rate, "results": res}, open(a.json, "w"), indent=1)
