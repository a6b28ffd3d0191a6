"""Compress a JSONL corpus on a Dask cluster, line for line what `terse batch` writes.

    from distributed import Client
    from terse.dask_recipe import compress_jsonl
    with Client("tcp://scheduler:8786") as client:          # or Client(LocalCluster(...))
        compress_jsonl(client, "corpus.jsonl", "out.jsonl", model="models/terse-default.gguf",
                       defaults={"rate": 0.3}, lines_per_task=200)

The driver only finds where lines start; each task reads its own byte range of the input
(so the workers must see the file: the same path on a shared filesystem) and compresses it with
one PromptCompressor per worker process (loaded on the first task, then reused). Results are
written in input order, one line per input line: the result JSON on one line, or the same
{"error": {...}} object `terse batch` writes for a bad line. Requests are parsed as batch does
(unknown fields ignored; `defaults` fill fields a line does not give).
Needs dask.distributed (Debian: python3-distributed); nothing else beyond the standard library.
"""
import json
import os

from . import PromptCompressor, TerseError

_WORKER_COMPRESSORS = {}


def _compressor(model, count_vocab, n_threads):
    key = (model, count_vocab, n_threads)
    c = _WORKER_COMPRESSORS.get(key)
    if c is None:
        c = _WORKER_COMPRESSORS[key] = PromptCompressor(model, method="selective", count_vocab=count_vocab,
                                                        n_threads=n_threads)
    return c


def compress_line(c, line, lineno, defaults=None):
    """One output line (str, no newline) for one input line (bytes, without its newline)."""
    data = line
    if defaults:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            for k, v in defaults.items():
                obj.setdefault(k, v)
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    try:
        return c.compress_json(data, strict=False, compact=True)
    except TerseError as e:
        status = c._lib.terse_status_str(e.status).decode()
        return json.dumps({"error": {"message": e.detail, "line": lineno, "status": status}},
                          ensure_ascii=False, separators=(",", ":"))


def compress_range(path, first_line, begin, end, model=None, count_vocab=None, n_threads=0, defaults=None):
    """Compress the lines in bytes [begin, end) of path; first_line is the 1-based number of
    the first. Returns the output lines."""
    c = _compressor(model, count_vocab, n_threads)
    with open(path, "rb") as f:
        f.seek(begin)
        chunk = f.read(end - begin)
    lines = chunk.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        out.append(compress_line(c, line.rstrip(b"\r\n"), first_line + i, defaults))
    return out


def line_ranges(path, lines_per_task):
    """(first_line, begin, end) byte ranges of lines_per_task lines each."""
    ranges, begin, first, n, pos = [], 0, 1, 0, 0
    with open(path, "rb") as f:
        for line in f:
            pos += len(line)
            n += 1
            if n == lines_per_task:
                ranges.append((first, begin, pos))
                first, begin, n = first + n, pos, 0
    if pos > begin:
        ranges.append((first, begin, pos))
    return ranges


def compress_jsonl(client, in_path, out_path, model=None, count_vocab=None, n_threads=1,
                   defaults=None, lines_per_task=100):
    """Compress in_path (JSONL) into out_path on the Dask cluster of client (a
    distributed.Client). Returns the number of lines written."""
    in_path = os.path.abspath(in_path)
    model = os.path.abspath(model) if model else None
    ranges = line_ranges(in_path, lines_per_task)
    futures = [client.submit(compress_range, in_path, first, b, e, model, count_vocab, n_threads, defaults,
                             pure=False) for first, b, e in ranges]
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for fut in futures:               # in input order
            for line in fut.result():
                out.write(line + "\n")
                n += 1
    return n
