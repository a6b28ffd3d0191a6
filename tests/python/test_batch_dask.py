# test_batch_dask.py - `terse batch` over JSONL (one result per line, errors in place, resumable
# by line) and the Dask recipe on a LocalCluster: its output equals `terse batch`'s, line for
# line, up to the wall-time fields.
import json
import os
import subprocess

import pytest

from conftest import MODEL, TERSE, gsm8k_demos, strip_timing


def corpus(path):
    demos = [d[:500] for d in gsm8k_demos()[:4]]
    lines = [json.dumps({"id": i, "context": d, "rate": 0.5}) for i, d in enumerate(demos)]
    lines.insert(2, '{"context": 5}')
    lines.insert(3, "not json")
    lines.insert(4, "")
    lines.append(json.dumps({"context": ["Cats and dogs live together in the old house.", "It rains."],
                             "question": "Who lives in the house?", "method": "longllmlingua"}))
    lines.append(json.dumps({"prompt": "Ünïcödé text, with accents: café, naïve, résumé — and more words here."}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def batch(inp, out, *extra):
    p = subprocess.run([TERSE, "batch", "-m", MODEL, "-f", str(inp), "-o", str(out), "--rate", "0.5"] + list(extra),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    n = corpus(d / "in.jsonl")
    p = batch(d / "in.jsonl", d / "out.jsonl")
    return d, n, p


def test_batch_lines(batch_run):
    d, n, p = batch_run
    out = (d / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(out) == n
    objs = [json.loads(l) for l in out]
    assert "context\" is a number" in objs[2]["error"]["message"] and objs[2]["error"]["line"] == 3
    assert "invalid JSON" in objs[3]["error"]["message"] and objs[4]["error"]["line"] == 5
    ok = [o for o in objs if "error" not in o]
    assert len(ok) == n - 3 and all(o["compressed_tokens"] <= o["origin_tokens"] for o in ok)
    assert "3 lines failed" in p.stderr


def test_batch_resume(batch_run):
    d, n, _ = batch_run
    full = (d / "out.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    part = d / "part.jsonl"
    part.write_text("".join(full[:5]) + full[5][:20], encoding="utf-8")   # stopped mid-line 6
    p = batch(d / "in.jsonl", part, "--resume", "--progress")
    assert "resuming after line 5" in p.stderr
    assert strip_timing(part.read_text(encoding="utf-8")) == strip_timing("".join(full))


def test_dask_equals_batch(batch_run):
    d, n, _ = batch_run
    from distributed import Client, LocalCluster
    from terse.dask_recipe import compress_jsonl
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        written = compress_jsonl(client, d / "in.jsonl", d / "dask.jsonl", model=MODEL, defaults={"rate": 0.5},
                                 lines_per_task=3)
    assert written == n
    a = (d / "out.jsonl").read_text(encoding="utf-8")
    b = (d / "dask.jsonl").read_text(encoding="utf-8")
    assert strip_timing(b) == strip_timing(a)
