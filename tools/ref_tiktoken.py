#!/usr/bin/env python3
"""ref_tiktoken.py - OpenAI tiktoken reference counts and ids for terse's cl100k tests.

Builds the cl100k_base encoding from a local rank file (no download): the ranks come from the
.tiktoken file given on the command line (one "base64(token) rank" per line), the
pre-tokenizer pattern and special tokens are cl100k_base's as tiktoken defines them. Then it
encodes every string of the strings file with encode_ordinary (special-token text is plain
text, as terse counts it) and writes one line per string:

    <count> <id> <id> ...

The strings file has one string per line, with the escapes \\n, \\t, \\r and \\\\ (anything
else is literal UTF-8); tests/test_tok_tiktoken.c reads it the same way.

Usage: python3 tools/ref_tiktoken.py RANK_FILE STRINGS_FILE OUT_FILE
  e.g. python3 tools/ref_tiktoken.py ../shared/vocab/tiktoken/cl100k_base.tiktoken \\
           tests/data/tiktoken_strings.txt tests/golden/tiktoken_cl100k.txt
"""
import base64
import sys

import tiktoken

# cl100k_base's pattern, exactly as tiktoken_ext/openai_public.py defines it.
CL100K_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
              r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in "ntr\\":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[line[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rank_path, strings_path, out_path = sys.argv[1:]
    enc = tiktoken.Encoding(name="cl100k_base_local", pat_str=CL100K_PAT,
                            mergeable_ranks=load_ranks(rank_path),
                            special_tokens=CL100K_SPECIAL)
    with open(strings_path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file ends with a newline
    with open(out_path, "w") as out:
        for line in lines:
            ids = enc.encode_ordinary(unescape(line))
            out.write(" ".join([str(len(ids))] + [str(i) for i in ids]) + "\n")
    print(f"{out_path}: {len(lines)} strings, tiktoken {tiktoken.__version__}")


if __name__ == "__main__":
    main()
