# test_proxy.py - `terse serve --upstream`: the OpenAI-compatible compressing proxy against a
# fake upstream (a small http.server in a thread) that records what arrives and answers in the
# mode the request's "model" names: "echo" (JSON), "stream" (server-sent events, paced by the
# test), "error" (429 with an OpenAI error body), "slow" (no answer for a while).
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Server, gsm8k_demos


class Upstream:
    def __init__(self):
        self.received = []
        self.first_chunk_read = threading.Event()
        up = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                up.received.append((self.path, dict(self.headers), body))
                mode = body.get("model")
                if mode == "error":
                    data = json.dumps({"error": {"message": "Rate limit reached", "type": "requests",
                                                 "code": "rate_limit_exceeded"}}).encode()
                    self.send_response(429)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif mode == "slow":
                    time.sleep(4)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif mode == "stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(5):
                        ev = "data: %s\n\n" % json.dumps({"choices": [{"index": 0, "delta": {"content": "tok%d" % i}}]})
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev.encode()))
                        self.wfile.flush()
                        if i == 0:   # the rest only after the client has seen the first chunk
                            up.first_chunk_read.wait(30)
                    ev = b"data: [DONE]\n\n"
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(ev), ev))
                else:
                    data = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                        "echo": body["messages"]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def proxy():
    up = Upstream()
    s = Server(["--upstream", "http://127.0.0.1:%d" % up.port, "--upstream-timeout", "1.5",
                "--min-tokens", "50", "--rate", "0.5", "--force", "Angelo"])
    yield s, up
    assert s.stop() == 0
    up.close()


def chat(model, system, user, **extra):
    return dict({"model": model, "messages": [{"role": "system", "content": system},
                                              {"role": "user", "content": user}]}, **extra)


def test_messages_compressed_upstream(proxy):
    s, up = proxy
    long_ctx = "\n\n".join(gsm8k_demos()[:2])
    st, hdr, data = s.request("POST", "/v1/chat/completions",
                              chat("echo", long_ctx, "Natalia sold clips. How many?"),
                              {"Authorization": "Bearer client-key"})
    assert st == 200, data
    path, headers, body = up.received[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer client-key"
    sent = body["messages"]
    assert len(sent[0]["content"]) < len(long_ctx)                  # system message compressed
    assert sent[1]["content"] == "Natalia sold clips. How many?"    # the question kept as is
    assert "Angelo" in sent[0]["content"]                           # force token kept
    before, after = int(hdr["X-Terse-Tokens-Before"]), int(hdr["X-Terse-Tokens-After"])
    assert before > after > 0 and int(hdr["X-Terse-Tokens-Saved"]) == before - after
    assert hdr["X-Terse-Messages-Compressed"] == "1"
    assert json.loads(data)["echo"] == sent                          # the answer passed back


def test_short_messages_and_parts(proxy):
    s, up = proxy
    long_ctx = gsm8k_demos()[0]
    req = {"model": "echo", "messages": [
        {"role": "system", "content": "Be brief."},                                  # short: kept
        {"role": "user", "content": [{"type": "text", "text": long_ctx}]},           # parts
        {"role": "assistant", "content": long_ctx},                                  # role not listed
        {"role": "user", "content": "Question?"}]}
    st, hdr, _ = s.request("POST", "/v1/chat/completions", req)
    assert st == 200
    sent = up.received[-1][2]["messages"]
    assert sent[0]["content"] == "Be brief."
    assert len(sent[1]["content"][0]["text"]) < len(long_ctx) and sent[1]["content"][0]["type"] == "text"
    assert sent[2]["content"] == long_ctx
    assert hdr["X-Terse-Messages-Compressed"] == "1"


def test_streaming_passes_chunks_as_they_arrive(proxy):
    s, up = proxy
    up.first_chunk_read.clear()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    c.request("POST", "/v1/chat/completions", json.dumps(chat("stream", "Hi.", "Go", stream=True)),
              {"Content-Type": "application/json", "Accept": "text/event-stream"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    first = r.readline()            # arrives while the upstream still holds the rest back
    assert first.startswith(b"data: ") and b"tok0" in first
    up.first_chunk_read.set()
    rest = r.read().decode()
    events = [first.decode().strip()] + [e for e in rest.split("\n\n") if e.strip()]
    toks = [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events if e != "data: [DONE]"]
    assert toks == ["tok0", "tok1", "tok2", "tok3", "tok4"] and events[-1] == "data: [DONE]"
    c.close()


def test_upstream_error_passes_through(proxy):
    s, _ = proxy
    st, _, data = s.request("POST", "/v1/chat/completions", chat("error", "a", "b"))
    assert st == 429 and json.loads(data)["error"]["code"] == "rate_limit_exceeded"


def test_upstream_timeout_is_504(proxy):
    s, _ = proxy
    st, _, data = s.request("POST", "/v1/chat/completions", chat("slow", "a", "b"))
    e = json.loads(data)["error"]
    assert st == 504 and e["type"] == "upstream_timeout"


def test_upstream_down_is_502():
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                        # nothing listens there now
    s = Server(["--upstream", "http://127.0.0.1:%d/v1" % port])
    try:
        st, _, data = s.request("POST", "/v1/chat/completions", chat("echo", "a", "b"))
        e = json.loads(data)["error"]
        assert st == 502 and e["type"] == "upstream_error" and "did not answer" in e["message"]
        _, _, m = s.request("GET", "/metrics")
        assert b'terse_upstream_responses_total{code="0"} 1' in m
    finally:
        assert s.stop() == 0


def test_bad_chat_requests(proxy):
    s, _ = proxy
    st, _, data = s.request("POST", "/v1/chat/completions", b'{"model": "echo"}')
    assert st == 400 and "\"messages\"" in json.loads(data)["error"]["message"]
    st, _, data = s.request("POST", "/v1/chat/completions", b'{"messages": [{"content": "x"}]}')
    assert st == 400 and "messages[0] needs a string \"role\"" in json.loads(data)["error"]["message"]
    st, _, data = s.request("POST", "/v1/chat/completions", b'{"messages": [')
    assert st == 400 and "invalid JSON" in json.loads(data)["error"]["message"]
