"""terse: prompt compression over libterse (ctypes; no third-party dependencies).

    from terse import PromptCompressor
    c = PromptCompressor(model_name="models/terse-default.gguf")
    r = c.compress_prompt(["long context ..."], question="...", rate=0.5)
    r["compressed_prompt"], r["origin_tokens"], r["compressed_tokens"], r["ratio"], r["rate"]

compress_prompt and structured_compress_prompt take LLMLingua's keyword arguments and return
LLMLingua's result keys. compress() takes the JSON request of `terse serve`'s /v1/compress and
returns the full result of `terse compress --json`; both go through the library's one request
parser and one result writer (terse_compress_json), so results are byte-identical to the CLI.
Batch calls run on several contexts in threads; ctypes releases the GIL during each call.
"""
import ctypes
import ctypes.util
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["PromptCompressor", "TerseError", "load_library", "default_model_path"]
__version__ = "0.1.0"

LLMLINGUA_KEYS = ("compressed_prompt", "origin_tokens", "compressed_tokens", "ratio", "rate", "saving")

_HERE = os.path.dirname(os.path.abspath(__file__))


class TerseError(RuntimeError):
    """A failing library call; .status is the terse_status, the message says why."""

    def __init__(self, status, message, detail=""):
        super().__init__(message)
        self.status = status
        self.detail = detail          # terse_last_error() alone


class TerseInvalidError(TerseError, ValueError):
    """TERSE_ERR_INVALID: a bad request (wrong type, out of range, unknown option...)."""


class _ModelParams(ctypes.Structure):
    _fields_ = [("use_mmap", ctypes.c_int), ("n_threads", ctypes.c_int), ("pack", ctypes.c_int)]


class _CtxParams(ctypes.Structure):
    _fields_ = [("n_ctx", ctypes.c_int32), ("n_batch", ctypes.c_int32),
                ("n_threads", ctypes.c_int32), ("vocab_chunk", ctypes.c_int32)]


_lib = None
_lib_lock = threading.Lock()


def _candidates():
    env = os.environ.get("TERSE_LIB")
    if env:
        yield env
    yield os.path.join(_HERE, "libterse.so")
    yield os.path.join(_HERE, "..", "..", "build", "libterse.so")   # the source tree
    found = ctypes.util.find_library("terse")
    if found:
        yield found


def load_library(path=None):
    """Load libterse.so: path, $TERSE_LIB, the package's copy, ../../build, the system's."""
    global _lib
    with _lib_lock:
        if _lib is not None and path is None:
            return _lib
        tried = []
        for cand in ([path] if path else _candidates()):
            if os.path.sep in cand and not os.path.exists(cand):
                tried.append(cand)
                continue
            try:
                lib = ctypes.CDLL(cand)
                break
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
        else:
            raise OSError("libterse.so not found (set TERSE_LIB); tried: " + ", ".join(tried))
        P = ctypes.POINTER
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        sig = {
            "terse_last_error": ([], cp),
            "terse_status_str": ([ctypes.c_int], cp),
            "terse_model_default_params": ([], _ModelParams),
            "terse_model_load": ([cp, _ModelParams, P(vp)], ctypes.c_int),
            "terse_model_free": ([vp], None),
            "terse_model_vocab": ([vp], vp),
            "terse_ctx_default_params": ([], _CtxParams),
            "terse_ctx_new": ([vp, _CtxParams, P(vp)], ctypes.c_int),
            "terse_ctx_free": ([vp], None),
            "terse_vocab_load": ([cp, P(vp)], ctypes.c_int),
            "terse_vocab_free": ([vp], None),
            "terse_token_count": ([vp, cp, sz], ctypes.c_int64),
            "terse_default_model_path": ([cp, sz], ctypes.c_int),
            "terse_compress_json": ([vp, cp, sz, ctypes.c_int, vp, P(vp)], ctypes.c_int),
            "terse_compress_recover": ([vp, cp, sz, cp, sz, cp, sz, P(vp), P(sz)], ctypes.c_int),
        }
        for name, (args, res) in sig.items():
            f = getattr(lib, name)
            f.argtypes = args
            f.restype = res
        # free() as the process resolves it (the library's malloc'ed results go back to the same
        # allocator, also when a sanitizer runtime is preloaded)
        libc = ctypes.CDLL(None)
        libc.free.argtypes = [vp]
        libc.free.restype = None
        lib._free = libc.free
        if path is None:
            _lib = lib
        return lib


def _check(lib, status, what):
    if status < 0:
        msg = (lib.terse_last_error() or b"").decode("utf-8", "replace")
        cls = TerseInvalidError if status == -4 else TerseError
        raise cls(status, "%s: %s" % (what, msg or lib.terse_status_str(status).decode()), msg)
    return status


def _take_string(lib, ptr, n=None):
    """Copy a malloc'ed C string into bytes and free it."""
    try:
        return ctypes.string_at(ptr, n) if n is not None else ctypes.string_at(ptr)
    finally:
        lib._free(ptr)


def default_model_path():
    """$TERSE_MODEL, the source tree's models/terse-default.gguf, or the library's search."""
    env = os.environ.get("TERSE_MODEL")
    if env:
        return env
    try:
        from . import _paths
        if _paths.DEFAULT_MODEL and os.path.exists(_paths.DEFAULT_MODEL):
            return _paths.DEFAULT_MODEL
    except ImportError:
        pass
    tree = os.path.join(_HERE, "..", "..", "models", "terse-default.gguf")
    if os.path.exists(tree):
        return os.path.abspath(tree)
    lib = load_library()
    buf = ctypes.create_string_buffer(4096)
    _check(lib, lib.terse_default_model_path(buf, 4096), "finding the default model")
    return buf.value.decode()


def _encode(s, what):
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError("%s must be a string, not %s" % (what, type(s).__name__))
    return s.encode("utf-8")


# compress_prompt's LLMLingua arguments that terse does not implement: their defaults, so that
# passing the default is fine and anything else is refused by name.
_UNSUPPORTED = {
    "force_context_number": None, "keep_split": False, "context_segs": None,
    "context_segs_rate": None, "context_segs_compress": None, "target_context": -1,
    "context_level_rate": 1.0, "context_level_target_token": -1, "return_word_label": False,
    "word_sep": "\t\t|\t\t", "label_sep": " ", "token_to_word": "mean", "drop_consecutive": False,
    "chunk_end_tokens": [".", "\n"], "strict_preserve_uncompressed": True,
}


class PromptCompressor:
    """LLMLingua's PromptCompressor over libterse. model_name: a GGUF file (None: the default
    model). device_map and the config dicts are accepted for compatibility (terse runs on the
    CPU). method: the algorithm compress_prompt runs, "llmlingua" (default, as LLMLingua),
    "longllmlingua" (also chosen by rank_method="longllmlingua") or "selective".
    count_vocab: a vocabulary file counting budgets and results (a .tiktoken file such as
    cl100k_base.tiktoken gives LLMLingua's counts); None counts in the model's tokens."""

    def __init__(self, model_name=None, device_map="cpu", model_config=None, open_api_config=None,
                 use_llmlingua2=False, llmlingua2_config=None, *, method="llmlingua",
                 count_vocab=None, n_threads=0, n_ctx=0, library=None):
        if use_llmlingua2:
            raise NotImplementedError("terse does not implement LLMLingua-2 (use_llmlingua2=True)")
        if method not in ("llmlingua", "longllmlingua", "selective"):
            raise ValueError("method must be 'llmlingua', 'longllmlingua' or 'selective', not %r" % (method,))
        self._lib = load_library(library)
        self.method = method
        self.model_name = model_name if model_name is not None else default_model_path()
        if not os.path.exists(self.model_name):
            raise ValueError("model_name %r is not a file: terse loads GGUF models (convert a Hugging "
                             "Face model with `terse convert hf DIR OUT.gguf`)" % (self.model_name,))
        self._model = ctypes.c_void_p()
        mp = self._lib.terse_model_default_params()
        mp.n_threads = n_threads                # loading work (packing F32 weights) too
        _check(self._lib, self._lib.terse_model_load(_encode(self.model_name, "model_name"), mp,
                                                     ctypes.byref(self._model)), "loading model")
        self._vocab = self._lib.terse_model_vocab(self._model)
        self._count_vocab = None
        if count_vocab is not None:
            v = ctypes.c_void_p()
            _check(self._lib, self._lib.terse_vocab_load(_encode(count_vocab, "count_vocab"), ctypes.byref(v)),
                   "loading count_vocab")
            self._count_vocab = v
        self._n_threads, self._n_ctx = n_threads, n_ctx
        self._free_ctxs = {}                   # n_threads -> contexts not in use
        self._ctx_lock = threading.Lock()
        self._all_ctxs = []

    # -- contexts: one per thread at a time --------------------------------------------------
    def _acquire(self, n_threads):
        with self._ctx_lock:
            free = self._free_ctxs.setdefault(n_threads, [])
            if free:
                return free.pop()
        p = self._lib.terse_ctx_default_params()
        p.n_threads, p.n_ctx = n_threads, self._n_ctx
        c = ctypes.c_void_p()
        _check(self._lib, self._lib.terse_ctx_new(self._model, p, ctypes.byref(c)), "creating context")
        with self._ctx_lock:
            self._all_ctxs.append(c)
        return c

    def _release(self, n_threads, c):
        with self._ctx_lock:
            self._free_ctxs[n_threads].append(c)

    def close(self):
        """Free the contexts, the model and the count vocabulary (also done on collection)."""
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        with self._ctx_lock:
            for c in self._all_ctxs:
                lib.terse_ctx_free(c)
            self._all_ctxs, self._free_ctxs = [], {}
        if self._model:
            lib.terse_model_free(self._model)
            self._model = ctypes.c_void_p()
        if self._count_vocab:
            lib.terse_vocab_free(self._count_vocab)
            self._count_vocab = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the request interface (the body of POST /v1/compress) -------------------------------
    def compress_json(self, request, strict=True, compact=False, _n_threads=None):
        """request: the JSON text of a /v1/compress request (str or bytes); returns the result
        JSON text exactly as `terse compress --json` writes it (on one line with compact, as
        `terse batch` does). strict: unknown fields are errors (else ignored, as in batch)."""
        data = _encode(request, "request")
        flags = (1 if strict else 0) | (2 if compact else 0)
        n_threads = self._n_threads if _n_threads is None else _n_threads
        c = self._acquire(n_threads)
        try:
            out = ctypes.c_void_p()
            st = self._lib.terse_compress_json(c, data, len(data), flags, self._count_vocab, ctypes.byref(out))
            _check(self._lib, st, "compress")
            return _take_string(self._lib, out).decode("utf-8")
        finally:
            self._release(n_threads, c)

    def compress(self, request=None, **fields):
        """A /v1/compress request as a dict (or keyword fields); returns the full result dict."""
        req = dict(request or {}, **fields)
        return json.loads(self.compress_json(json.dumps(req, ensure_ascii=False)))

    def compress_batch(self, requests, n_workers=None):
        """Many requests (dicts) on n_workers contexts in parallel threads (default: the
        number of cores); results in order. Each call releases the GIL while it runs."""
        requests = list(requests)
        n = n_workers or os.cpu_count() or 1
        n = max(1, min(n, len(requests) or 1))
        threads = self._n_threads or max(1, (os.cpu_count() or 1) // n)
        texts = [json.dumps(r, ensure_ascii=False) for r in requests]
        with ThreadPoolExecutor(max_workers=n) as ex:
            outs = list(ex.map(lambda t: self.compress_json(t, _n_threads=threads), texts))
        return [json.loads(o) for o in outs]

    # -- LLMLingua's interface ---------------------------------------------------------------
    def _request(self, context, instruction, question, rate, target_token, structured, kw):
        if isinstance(context, str):
            context = [context]
        context = list(context)
        rank_method = kw.pop("rank_method", "llmlingua")
        if rank_method not in ("llmlingua", "longllmlingua"):
            raise NotImplementedError("rank_method=%r: terse ranks with 'llmlingua' or 'longllmlingua'" % (rank_method,))
        for name, default in _UNSUPPORTED.items():
            if name in kw:
                v = kw.pop(name)
                if v != default:
                    raise NotImplementedError("terse does not implement %s=%r" % (name, v))
        method = "longllmlingua" if rank_method == "longllmlingua" else kw.pop("method", self.method)
        req = {"context": context, "instruction": instruction or "", "question": question or "",
               "method": method, "rate": rate, "target_token": target_token, "structured": structured}
        if req["target_token"] is None:
            req["target_token"] = -1
        if kw.get("force_context_ids") is None:
            kw.pop("force_context_ids", None)
        if "force_tokens" in kw:
            kw["force_tokens"] = list(kw["force_tokens"])
        req.update(kw)   # the other LLMLingua and terse options, checked by the library
        return req

    def compress_prompt(self, context, instruction="", question="", rate=0.5, target_token=-1, **kwargs):
        """LLMLingua's compress_prompt: same arguments, same result keys (compressed_prompt,
        origin_tokens, compressed_tokens, ratio, rate, saving). <llmlingua> tags are text here,
        as upstream; structured_compress_prompt honours them."""
        req = self._request(context, instruction, question, rate, target_token, False, kwargs)
        r = self.compress(req)
        return {k: r[k] for k in LLMLINGUA_KEYS}

    def structured_compress_prompt(self, context, instruction="", question="", rate=0.5, target_token=-1,
                                   **kwargs):
        """LLMLingua's structured_compress_prompt: <llmlingua, rate=R, compress=False> tags in
        the contexts set each segment's rate (and are removed from the output)."""
        req = self._request(context, instruction, question, rate, target_token, True, kwargs)
        r = self.compress(req)
        return {k: r[k] for k in LLMLINGUA_KEYS}

    def compress_prompt_batch(self, contexts, n_workers=None, instruction="", question="", rate=0.5,
                              target_token=-1, **kwargs):
        """compress_prompt over a list of contexts (each a string or a list of strings), in
        parallel threads; a list of LLMLingua result dicts, in order."""
        reqs = [self._request(c, instruction, question, rate, target_token, False, dict(kwargs)) for c in contexts]
        return [{k: r[k] for k in LLMLINGUA_KEYS} for r in self.compress_batch(reqs, n_workers)]

    def recover(self, original_prompt, compressed_prompt, response):
        """LongLLMLingua's recover(): response words copied from the compressed prompt are
        replaced by the original text they came from."""
        o, c, r = (_encode(x, n) for x, n in ((original_prompt, "original_prompt"),
                                               (compressed_prompt, "compressed_prompt"), (response, "response")))
        out, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(self._lib, self._lib.terse_compress_recover(self._vocab, o, len(o), c, len(c), r, len(r),
                                                           ctypes.byref(out), ctypes.byref(n)), "recover")
        return _take_string(self._lib, out, n.value).decode("utf-8", "replace")

    def get_token_length(self, text, use_oai_tokenizer=False):
        """Tokens of text in the model's vocabulary (the count vocabulary with
        use_oai_tokenizer=True, when one was given)."""
        b = _encode(text, "text")
        v = self._count_vocab if use_oai_tokenizer and self._count_vocab else self._vocab
        return _check(self._lib, self._lib.terse_token_count(v, b, len(b)), "token count")
