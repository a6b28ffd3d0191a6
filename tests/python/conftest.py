# conftest.py - shared fixtures of the Python-side tests (run by tests/cli_python.sh):
# paths of the built binary, library and default model; a `terse serve` started on an
# ephemeral port and stopped with SIGTERM; a tiny HTTP client.
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("TERSE_BUILD", "build"))
TERSE = os.path.join(BUILD, "terse")
LIB = os.path.join(BUILD, "libterse.so")
MODEL = os.path.join(ROOT, "models", "terse-default.gguf")
GSM8K = os.path.join(ROOT, "..", "shared", "data", "gsm8k", "prompt_hardest.txt")
os.environ["TERSE_LIB"] = LIB
os.environ["TERSE_MODEL"] = MODEL
sys.path.insert(0, os.path.join(ROOT, "python"))

SHORT = ("The quick brown fox jumps over the lazy dog. It was a sunny day and everyone in the "
         "small town was happy about the weather, so they went to the park to have a picnic.")


def gsm8k_demos():
    with open(GSM8K, encoding="utf-8") as f:
        return f.read().split("\n\n")


def strip_timing(text):
    """A result JSON with its wall-time fields blanked (they differ run to run)."""
    return re.sub(r'("seconds(?:_model)?": ?)[-0-9.eE+]+', r"\1T", text)


class Server:
    def __init__(self, args, env=None):
        self.log = tempfile.NamedTemporaryFile(prefix="terse-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([TERSE, "serve", "--port", "0", "-m", MODEL] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on http://[0-9.]+:(\d+)", open(self.log.name).read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if not self.port:
            raise RuntimeError("terse serve did not start: " + open(self.log.name).read())

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        return st, h, json.loads(data)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        os.unlink(self.log.name)
        return rc

    def stderr(self):
        return open(self.log.name).read()


@pytest.fixture(scope="module")
def server():
    s = Server(["--workers", "1", "--queue", "8"])
    yield s
    assert s.stop() == 0


def run_cli(args, input_bytes=None):
    p = subprocess.run([TERSE] + args, input=input_bytes, capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout
