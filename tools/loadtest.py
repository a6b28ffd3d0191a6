#!/usr/bin/env python3
"""loadtest.py - a bounded load generator for `terse serve` (standard library only).

    tools/loadtest.py --port 8080 --prompt short --clients 8 --requests 20
    tools/loadtest.py --port 8080 --prompt gsm8k --clients 64 --requests 1
    tools/loadtest.py --port 8080 --prompt mixed --clients 8 --duration 600 --rss-pid PID

Each client is a thread with its own keep-alive connection that sends POST /v1/compress one
request after the other, --requests times or until --duration seconds have passed (whichever
comes first: every loop is bounded). Prints one JSON line: requests, status counts, throughput,
latency p50/p90/p99/max of the successful ones, and with --rss-pid the server's resident memory
sampled every --rss-every seconds.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GSM8K = os.path.join(HERE, "..", "..", "shared", "data", "gsm8k", "prompt_hardest.txt")
SHORT = ("The quick brown fox jumps over the lazy dog. It was a sunny day and everyone in the "
         "small town was happy about the weather, so they went to the park to have a picnic.")


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prompt", choices=["short", "gsm8k", "mixed"], default="short")
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=10, help="per client (upper bound)")
    ap.add_argument("--duration", type=float, default=3600, help="seconds (upper bound)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--rss-pid", type=int)
    ap.add_argument("--rss-every", type=float, default=10)
    a = ap.parse_args()

    gsm8k = open(GSM8K, encoding="utf-8").read()
    bodies = {"short": json.dumps({"context": SHORT, "rate": a.rate}).encode(),
              "gsm8k": json.dumps({"context": gsm8k, "rate": a.rate}).encode()}
    lock = threading.Lock()
    lat, codes, errors = [], {}, []
    t_start = time.time()
    t_end = t_start + a.duration

    def client(k):
        conn = None
        for i in range(a.requests):
            if time.time() >= t_end:
                break
            kind = a.prompt if a.prompt != "mixed" else ("gsm8k" if (k + i) % 20 == 0 else "short")
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(a.host, a.port, timeout=a.timeout)
                conn.request("POST", "/v1/compress", body=bodies[kind], headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                st = r.status
                if st == 200:
                    json.loads(data)["compressed_prompt"]
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:                      # a failed request, not a status
                st = "exception"
                with lock:
                    errors.append(repr(e)[:200])
                if conn:
                    conn.close()
                conn = None
            dt = time.time() - t0
            with lock:
                codes[st] = codes.get(st, 0) + 1
                if st == 200:
                    lat.append(dt)
        if conn:
            conn.close()

    rss = []
    done = threading.Event()

    def sampler():
        while not done.is_set():
            v = rss_kb(a.rss_pid)
            if v is not None:
                rss.append((round(time.time() - t_start, 1), v))
            done.wait(a.rss_every)

    if a.rss_pid:
        threading.Thread(target=sampler, daemon=True).start()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    done.set()
    if a.rss_pid:
        v = rss_kb(a.rss_pid)
        if v is not None:
            rss.append((round(time.time() - t_start, 1), v))
    wall = time.time() - t_start
    n = sum(codes.values())
    out = {"prompt": a.prompt, "clients": a.clients, "requests": n, "codes": {str(k): v for k, v in codes.items()},
           "seconds": round(wall, 2), "ok_per_s": round(len(lat) / wall, 3),
           "p50_s": pct(lat, 0.5), "p90_s": pct(lat, 0.9), "p99_s": pct(lat, 0.99), "max_s": max(lat) if lat else None,
           "errors": errors[:5]}
    for k in ("p50_s", "p90_s", "p99_s", "max_s"):
        if out[k] is not None:
            out[k] = round(out[k], 4)
    if rss:
        kb = [v for _, v in rss]
        out["rss_kb"] = {"first": kb[0], "last": kb[-1], "min": min(kb), "max": max(kb), "samples": len(kb)}
        out["rss_series"] = rss
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
