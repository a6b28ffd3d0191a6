#!/usr/bin/env python3
"""ref_pretok.py - reference pre-tokenizer splits for every tokenizer.ggml.pre name terse knows.

Each name maps to a list of regexes (llama.cpp's loader names them; the strings are the
published ones from the models' tokenizer.json files, as llama.cpp's llama-vocab.cpp lists
them, with Hugging Face's originals where llama.cpp rewrote a pattern for its own engine).
A pre-tokenizer is Hugging Face's Sequence of Split(regex, behavior="isolated"): each regex
is applied to every piece the previous one left, and both the matches and the gaps between
them become pieces; a zero-width match is a cut.

The splits of a fixed set of test strings are computed by one of two engines:
  --engine tokenizers  Hugging Face `tokenizers` (Oniguruma), the models' own library
  --engine regex       Python's `regex` module (an independent engine), the same semantics
and written as (OUT, default tests/golden/pretok/splits_<engine>.txt):
  N <name> <alias> ...                the names of one regex sequence (the first names it below)
  R <name> <k> <hex of regex k>      the regexes (tests/test_tok_pretok.c checks terse's
                                      table holds the same strings)
  S <i> <hex of test string i>
  P <name> <i> <end> <end> ...       byte offsets where the pieces of string i end
  X <name> <i> <error>               the engine could not run that regex
Usage: python3 tools/ref_pretok.py [--engine regex|tokenizers] [OUT]
"""
import argparse
import sys

WS = None  # filled per engine

# --- the regexes ------------------------------------------------------------------------------
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
         r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BLOOM = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
          r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
          r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
         r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
         r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BAILING = (r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}|"
           r" ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+")
SEED_CODER = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}|"
              r" ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+")
CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
DEEPSEEK_LLM_LETTERS = (
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293"
    "\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c"
    "\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5"
    "\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
    "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59"
    "\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc"
    "\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107"
    "\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee"
    "\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e"
    "\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
    "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
    "\U000118a0-\U000118df\U0001e900-\U0001e943]+")
DEEPSEEK_LLM_PUNCT = "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+"
DEEPSEEK_V3 = ("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|"
               "[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|"
               "\\s*[\r\n]+|\\s+(?!\\S)|\\s+")

# name list -> regexes (first matching group wins; names as llama.cpp's loader spells them)
TABLE = [
    (["default"], [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
    (["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
      "jina-v5-nano", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"], [LLAMA3]),
    (["deepseek-llm"], ["[\r\n]", DEEPSEEK_LLM_LETTERS, DEEPSEEK_LLM_PUNCT, "\\s+$", CJK,
                        r"\p{N}+"]),
    (["deepseek-coder"], ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"]),
    (["deepseek-v3", "hunyuan-dense"], [r"\p{N}{1,3}",
                                        "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
                                        DEEPSEEK_V3]),
    (["falcon"], [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
    (["gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
      "jina-v2-de", "jina-v2-code", "roberta-bpe", "a.x-4.0", "mellum", "modern-bert",
      "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling"], [GPT2]),
    (["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
     [r"\p{N}", GPT2]),
    (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan",
      "grok-2"], [QWEN2]),
    (["poro-chat", "bloom", "gpt3-finnish"], [BLOOM]),
    (["viking"], [BLOOM, r"\p{N}"]),
    (["tekken"], [TEKKEN]),
    (["chameleon"], ["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                     "([\\t\\n]|    |  )", r"\p{N}", r"[\p{P}!-/:-@\[-`{-~]", GPT2]),
    (["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], [GPT4O]),
    (["superbpe"], [r"\p{N}+", r"(?=(\d{3})+(?!\d))"]),
    (["bailingmoe", "bailingmoe2", "llada-moe"], [BAILING]),
    (["seed-coder"], [SEED_CODER]),
]

def esc(p):
    """Non-ASCII characters as \\x{HHHH} (PCRE2, Oniguruma and `regex` all read it), so the
    C table can hold the very same strings."""
    return "".join(ch if ord(ch) < 128 else "\\x{%x}" % ord(ch) for ch in p)


TABLE = [(names, [esc(p) for p in patterns]) for names, patterns in TABLE]

STRINGS = [
    "Hello world! I'M HERE, you'LL see: it's 2024.",
    "12345678 and 3.14159 or 1,000,000 apples",
    "\u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f \ud55c\uad6d\uc5b4 \uc548\ub155",
    "Hello!!! (world)... \u00bfqu\u00e9? \u2026end\u3002next\uff0cthen",
    "a\n\n  b\r\nc\n",
    "camelCaseWords HTTPServer iPhone XMLHttpRequest",
    "  x   y\t\tz  ",
    "na\u00efve caf\u00e9 \u00c9COLE \u03a9mega \u0394\u03b5\u03bb\u03c4\u03b1",
    "\u0928\u092e\u0938\u094d\u0924\u0947\u0964 \u0645\u0631\u062d\u0628\u0627\u060c \u0627\u0644\u0639\u0627\u0644\u0645\u06d4",
    "def f(x):\n    return x**2  # a/b/c $5 <tag>",
    "<sentinel:12> IMGIMGABZ token",
    "don't Won'T I'd they've we'RE",
    "path/to/file.txt\n\n\nnext  line",
    "x=1+2^3~4|5<6>7 `code` @home #tag",
]


def unesc(p):
    """\\x{HHHH} back to the character, for engines that lack the notation."""
    import re
    return re.sub(r"(?<!\\)\\x\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), p)


def engine_regex():
    import regex

    def split_one(rx, s):
        out, prev = [], 0
        for m in rx.finditer(s):
            if m.start() > prev:
                out.append(s[prev:m.start()])
            if m.end() > m.start():
                out.append(s[m.start():m.end()])
            prev = m.end()
        if prev < len(s):
            out.append(s[prev:])
        return out

    def make(patterns):
        rxs = [regex.compile(unesc(p), regex.V0) for p in patterns]

        def run(s):
            pieces = [s]
            for rx in rxs:
                pieces = [q for p in pieces for q in split_one(rx, p)]
            return pieces
        return run
    return make


def engine_tokenizers():
    from tokenizers import Regex, pre_tokenizers

    def make(patterns):
        pt = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(unesc(p)), "isolated") for p in patterns])

        def run(s):
            return [w for w, _ in pt.pre_tokenize_str(s)]
        return run
    return make


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["regex", "tokenizers"], default="regex")
    ap.add_argument("out", nargs="?")
    a = ap.parse_args()
    out = a.out or f"tests/golden/pretok/splits_{a.engine}.txt"
    make = engine_regex() if a.engine == "regex" else engine_tokenizers()
    lines = []
    for i, s in enumerate(STRINGS):
        lines.append(f"S {i} {s.encode().hex()}")
    n_ok = n_err = 0
    for names, patterns in TABLE:
        lines.append("N " + " ".join(names))
        for k, p in enumerate(patterns):
            lines.append(f"R {names[0]} {k} {p.encode().hex()}")
        try:
            run = make(patterns)
        except Exception as e:
            for i in range(len(STRINGS)):
                lines.append(f"X {names[0]} {i} compile: {str(e).splitlines()[0]}")
            n_err += 1
            continue
        for i, s in enumerate(STRINGS):
            try:
                pieces = run(s)
            except Exception as e:
                lines.append(f"X {names[0]} {i} {str(e).splitlines()[0]}")
                n_err += 1
                continue
            if "".join(pieces) != s:
                lines.append(f"X {names[0]} {i} pieces do not tile the string")
                n_err += 1
                continue
            ends, at = [], 0
            for w in pieces:
                at += len(w.encode())
                ends.append(str(at))
            lines.append(f"P {names[0]} {i} " + " ".join(ends))
            n_ok += 1
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{a.engine}: {n_ok} splits, {n_err} errors -> {out}")


if __name__ == "__main__":
    main()
