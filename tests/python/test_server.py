# test_server.py - `terse serve`: the endpoints against the CLI, the malformed-request suite
# (each a precise 4xx JSON error, the server alive afterwards), the bounded queue (503 +
# Retry-After), the time limit, the bearer token and the graceful SIGTERM.
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import MODEL, SHORT, TERSE, Server, gsm8k_demos, run_cli, strip_timing


def test_health_and_metrics(server):
    st, _, h = server.json("GET", "/health")
    assert st == 200 and h["status"] == "ok" and h["workers"] == 1 and h["queue_capacity"] == 8
    server.json("POST", "/v1/compress", {"context": SHORT})
    st, hdr, body = server.request("GET", "/metrics")
    text = body.decode()
    assert st == 200 and hdr["Content-Type"].startswith("text/plain")
    for name in ("terse_requests_total{path=\"/v1/compress\",code=\"200\"}",
                 "terse_request_duration_seconds_bucket{path=\"/v1/compress\",le=\"+Inf\"}",
                 "terse_tokens_in_total", "terse_tokens_out_total", "terse_queue_depth 0",
                 "terse_workers_busy", "process_resident_memory_bytes"):
        assert name in text, name


def test_compress_is_the_cli_json(server):
    prompt = {"instruction": "Answer briefly.", "contexts": gsm8k_demos()[:2], "question": "What is 2+2?"}
    req = dict(prompt, rate=0.4, method="selective", unit="phrase")
    st, _, body = server.request("POST", "/v1/compress", req)
    assert st == 200
    cli = run_cli(["compress", "-m", MODEL, "--json", "--rate", "0.4"], json.dumps(prompt).encode())
    assert strip_timing(body.decode()) == strip_timing(cli.decode())


def test_score_and_tokenize_match_cli(server):
    st, _, s = server.json("POST", "/v1/score", {"text": SHORT})
    assert st == 200
    cli = json.loads(run_cli(["score", MODEL, "--json"], SHORT.encode()))
    assert s["n_tokens"] == cli["n_tokens"]
    for a, b in zip(s["tokens"], cli["tokens"]):
        assert (a["id"], a["begin"], a["end"], a["text"]) == (b["id"], b["begin"], b["end"], b["text"])
        assert abs(a["surprisal"] - b["surprisal"]) < 2e-6
    st, _, t = server.json("POST", "/v1/tokenize", {"text": "héllo wörld\n"})
    cli = json.loads(run_cli(["tokenize", MODEL, "--json"], "héllo wörld\n".encode()))
    assert st == 200 and t == cli


# (body, status, words the message must hold)
MALFORMED = [
    (b"{", 400, "invalid JSON at line 1"),
    (b"[1, 2]", 400, "is an array, expected a JSON object"),
    (b'"text"', 400, "expected a JSON object"),
    (b"", 400, "the body is empty"),
    (b'{"rate": 0.5}', 400, "no \"context\""),
    (b'{"context": 5}', 400, "\"context\" is a number"),
    (b'{"context": ["a", 7]}', 400, "\"context\"[1] is a number"),
    (b'{"context": "a", "rate": "half"}', 400, "\"rate\" is a string, expected a number"),
    (b'{"context": "a", "rate": 1.5}', 400, "\"rate\" is 1.5"),
    (b'{"context": "a", "rate": 0}', 400, "(0, 1]"),
    (b'{"context": "a", "target_token": 0}', 400, "\"target_token\" is 0"),
    (b'{"context": "a", "target_token": 2.5}', 400, "\"target_token\" is a number, expected an integer"),
    (b'{"context": "a", "method": "magic"}', 400, "expected one of: selective, llmlingua, longllmlingua"),
    (b'{"context": "a", "force_tokens": "x"}', 400, "\"force_tokens\" is a string, expected an array"),
    (b'{"context": "a", "compat": 1}', 400, "\"compat\" is a number, expected true or false"),
    (b'{"context": "a", "protect": ["("]}', 400, "protect_patterns[0] '(' at offset 1: missing closing"),
    (b'{"context": "a", "context_budget": "+x"}', 400, "\"context_budget\""),
    (b'{"context": "a", "colour": "red"}', 400, "unknown field \"colour\""),
    (b'{"context": "a", "context": "b"}', 400, "duplicate"),
    (b'{"context": "\xff\xfe"}', 400, "unable to decode byte 0xff"),
    (b'{"context": "a\\u0000b"}', 400, "NUL"),
    (b"[" * 5000 + b"]" * 5000, 400, "invalid JSON"),
]


@pytest.mark.parametrize("body,status,words", MALFORMED)
def test_malformed_compress(server, body, status, words):
    st, hdr, data = server.request("POST", "/v1/compress", body)
    err = json.loads(data)["error"]
    assert (st, err["code"]) == (status, status), data
    assert words.lower() in err["message"].lower(), err["message"]
    assert hdr["Content-Type"] == "application/json"


@pytest.mark.parametrize("path,body,words", [
    ("/v1/score", b'{"text": 3}', "\"text\" is not a string"),
    ("/v1/score", b'{"txt": "a"}', "unknown field \"txt\""),
    ("/v1/score", b'{"text": "a", "bos": "yes"}', "\"bos\" is not true or false"),
    ("/v1/tokenize", b'{}', "no \"text\""),
    ("/v1/tokenize", b'nope', "invalid JSON"),
])
def test_malformed_small_endpoints(server, path, body, words):
    st, _, data = server.request("POST", path, body)
    assert st == 400 and words in json.loads(data)["error"]["message"]


def test_methods_paths_types(server):
    st, hdr, data = server.request("GET", "/v1/compress")
    assert st == 405 and hdr["Allow"] == "POST" and json.loads(data)["error"]["type"] == "method_not_allowed"
    st, hdr, data = server.request("DELETE", "/health")
    assert st == 405 and hdr["Allow"] == "GET, HEAD"
    st, _, data = server.request("POST", "/v2/nothing", b"{}")
    assert st == 404 and "no such endpoint: POST /v2/nothing" in json.loads(data)["error"]["message"]
    st, _, data = server.request("POST", "/v1/chat/completions", b"{}")
    assert st == 404          # no --upstream: no proxy
    st, _, data = server.request("POST", "/v1/compress", b"--x--", {"Content-Type": "multipart/form-data; boundary=x"})
    assert st == 415 and "multipart/form-data" in json.loads(data)["error"]["message"]


def raw(server, payload, read_timeout=30):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.settimeout(read_timeout)
    s.sendall(payload)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out and out.split(b"\r\n\r\n", 1)[1].endswith(b"\n"):
                break
    except socket.timeout:
        pass
    s.close()
    return out


def test_huge_bodies(server):
    # announced too big: refused before the body is read
    out = raw(server, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 999999999\r\n\r\n{")
    assert out.startswith(b"HTTP/1.1 413") and b"at most 8388608" in out
    # chunked without a length: refused once past the limit
    chunk = b"a" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(140)) + b"0\r\n\r\n"
    out = raw(server, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 413") and b"longer than this server's limit" in out
    assert server.json("GET", "/health")[0] == 200


def test_too_many_tokens_and_slow_client():
    s = Server(["--max-tokens", "40", "--timeout", "2"])
    try:
        st, _, e = s.json("POST", "/v1/compress", {"context": SHORT * 3})
        assert st == 413 and "this server compresses at most 40" in e["error"]["message"]
        st, _, e = s.json("POST", "/v1/score", {"text": SHORT * 3})
        assert st == 413 and "at most 40 can be scored" in e["error"]["message"]
        # a client that sends its body a byte at a time, slower than the limit: a JSON 408
        # at the limit (written before the body is complete), then the connection is closed
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        t0, closed, got = time.time(), False, b""
        c.settimeout(0.5)
        while time.time() - t0 < 20 and not closed:
            try:
                if not got:
                    c.sendall(b" ")
                r = c.recv(4096)
                got += r
                closed = r == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
        c.close()
        assert closed and time.time() - t0 < 10
        assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got[:200]
        head, _, body = got.partition(b"\r\n\r\n")
        assert b"Content-Type: application/json" in head and b"Connection: close" in head
        assert (b"Content-Length: %d" % len(body)) in head and body.endswith(b"\n")
        e = json.loads(body)["error"]
        assert e["code"] == 408 and e["type"] == "timeout", e
        assert "slower than the server's limit of 2 s" in e["message"], e
        _, _, m = s.request("GET", "/metrics")
        assert b'terse_requests_total{path="/v1/compress",code="408"} 1' in m
        assert s.json("GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_silent_client_gets_408_and_is_dropped():
    s = Server(["--idle-timeout", "1"])
    try:
        def silent(payload):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.settimeout(10)
            t0, got = time.time(), b""
            if payload:
                c.sendall(payload)
            try:
                while True:
                    r = c.recv(4096)
                    if not r:
                        break
                    got += r
            except OSError:
                pass
            c.close()
            return time.time() - t0, got

        cases = [b"",                                                        # nothing at all
                 b"POST /v1/compress HTTP/1.1\r\nHost: x\r\n",                # stalls in the headers
                 b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"co"]  # in the body
        for payload in cases:
            took, got = silent(payload)
            assert 0.9 < took < 5, (payload, took)
            assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), (payload, got[:200])
            head, _, body = got.partition(b"\r\n\r\n")
            assert b"Connection: close" in head and (b"Content-Length: %d" % len(body)) in head
            e = json.loads(body)["error"]
            assert e["code"] == 408 and e["type"] == "timeout" and "--idle-timeout" in e["message"], e
        # an idle keep-alive connection after an answered request: closed without a 408
        took, got = silent(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert 0.9 < took < 5 and got.startswith(b"HTTP/1.1 200") and b"408" not in got, got[:300]
        st, _, h = s.json("GET", "/health")
        assert st == 200
        _, _, m = s.request("GET", "/metrics")
        assert b'terse_requests_total{path="/v1/compress",code="408"} 1' in m
        assert b'terse_requests_total{path="other",code="408"} 2' in m
    finally:
        assert s.stop() == 0
    p = subprocess.run([TERSE, "serve", "--idle-timeout", "0"], capture_output=True, timeout=60)
    assert p.returncode == 2 and b"--idle-timeout" in p.stderr, p.stderr


def test_queue_full_gives_503_with_retry_after():
    s = Server(["--workers", "1", "--queue", "1"])
    try:
        big = {"context": "\n\n".join(gsm8k_demos()[:3]), "rate": 0.5}
        results = []

        def go():
            results.append(s.request("POST", "/v1/compress", big))

        ts = [threading.Thread(target=go) for _ in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        codes = sorted(r[0] for r in results)
        assert codes.count(200) >= 1 and codes.count(503) >= 1 and set(codes) <= {200, 503}, codes
        for st, hdr, data in results:
            if st == 503:
                assert int(hdr["Retry-After"]) >= 1
                assert json.loads(data)["error"]["type"] == "overloaded"
    finally:
        assert s.stop() == 0


def test_client_gone_leaves_the_queue():
    s = Server(["--workers", "1", "--queue", "4"])
    try:
        t = threading.Thread(target=lambda: s.request("POST", "/v1/compress",
                                                      {"context": "\n\n".join(gsm8k_demos()[:6])}))
        t.start()

        def health():
            return s.json("GET", "/health")[2]

        deadline = time.time() + 30
        while health()["busy"] != 1 and time.time() < deadline:
            time.sleep(0.02)
        body = json.dumps({"context": "\n\n".join(gsm8k_demos()[:2])}).encode()
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        while health()["queued"] != 1 and time.time() < deadline:
            time.sleep(0.02)
        c.close()                                         # the client leaves while queued
        t0 = time.time()
        while health()["queued"] != 0 and time.time() - t0 < 5:
            time.sleep(0.05)
        h = health()
        assert h["queued"] == 0 and h["busy"] == 1, h     # out of the queue while the first still runs
        _, _, m = s.request("GET", "/metrics")
        assert b'terse_requests_total{path="/v1/compress",code="499"} 1' in m
        t.join()
    finally:
        assert s.stop() == 0


def test_time_limit_gives_504():
    # the whole GSM8K prompt (about 2,500 tokens) takes tenths of a second on the fastest
    # machine seen; 4 demos against 0.3 s did not always run over it
    s = Server(["--timeout", "0.01"])
    try:
        st, _, e = s.json("POST", "/v1/compress", {"context": "\n\n".join(gsm8k_demos()), "rate": 0.5})
        assert st == 504 and "limit of 0.01 s" in e["error"]["message"]
        assert s.json("GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_bearer_token():
    with tempfile.NamedTemporaryFile("w", suffix=".key", delete=False) as f:
        f.write("s3cret-token\n")
    s = Server(["--api-key-file", f.name])
    try:
        assert s.json("GET", "/health")[0] == 200                 # open
        st, hdr, e = s.json("POST", "/v1/compress", {"context": SHORT})
        assert st == 401 and hdr["WWW-Authenticate"] == "Bearer" and e["error"]["type"] == "unauthorized"
        st, _, _ = s.json("POST", "/v1/compress", {"context": SHORT}, {"Authorization": "Bearer wrong"})
        assert st == 401
        st, _, r = s.json("POST", "/v1/compress", {"context": SHORT}, {"Authorization": "Bearer s3cret-token"})
        assert st == 200 and r["compressed_tokens"] < r["origin_tokens"]
    finally:
        assert s.stop() == 0
        os.unlink(f.name)


def test_sigterm_finishes_requests_in_flight():
    s = Server(["--workers", "1"])
    out = []
    t = threading.Thread(target=lambda: out.append(s.request("POST", "/v1/compress",
                                                             {"context": "\n\n".join(gsm8k_demos()[:2])})))
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline:                     # wait until the worker has it
        _, _, m = s.request("GET", "/metrics")
        if b"terse_workers_busy 1" in m:
            break
        time.sleep(0.02)
    s.proc.send_signal(15)
    t.join()
    assert out and out[0][0] == 200 and json.loads(out[0][2])["compressed_prompt"]
    assert s.proc.wait(60) == 0
    assert "finishing the requests in flight" in s.stderr() and "stopped" in s.stderr()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()


def test_loopback_by_default(server):
    assert "listening on http://127.0.0.1:" in server.stderr()
