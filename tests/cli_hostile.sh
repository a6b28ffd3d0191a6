#!/bin/sh
# cli_hostile.sh - hostile input to the terse command: corrupt and truncated models, NUL bytes,
# malformed JSON prompts, out-of-range numbers, prompts longer than the context, absurd model
# shapes. Each must give a precise message and a non-zero status (or a warning, where the
# input is still usable), never a crash. Prints "N passed, N failed" last. Uses $BUILD/terse
# (or $TERSE_BIN); run under ASan by `make debug`.
. "$(dirname "$0")/cli_lib.sh"
cli_setup hostile
SHARED=${TERSE_SHARED:-../shared}
M=${TERSE_MODEL:-models/terse-default.gguf}
G=$SHARED/data/gsm8k/prompt_hardest.txt

[ -f "$M" ] || cli_skip "$M missing"
echo "The quick brown fox jumps over the lazy dog." > "$TMP/fox.txt"

# corrupt model files: empty, truncated in the header, the metadata and the tensor data
: > "$TMP/empty.gguf"
expect "empty model" 1 "bad magic" "$T" info "$TMP/empty.gguf"
for n in 6 100 100000 3000000; do
  head -c $n "$M" > "$TMP/cut.gguf"
  expect "model cut at $n bytes" 1 "runs past end|cannot fit|past the end" "$T" score "$TMP/cut.gguf" -f "$TMP/fox.txt"
done

# score: the default model's path in --json (it was a NULL dereference), bad ids, too long
TERSE_MODEL="$M" "$T" score --json -f "$TMP/fox.txt" > "$TMP/s.json" 2> "$TMP/err"
check "score --json, default model" "[ \$? -eq 0 ] && python3 -c 'import json; d=json.load(open(\"$TMP/s.json\")); assert d[\"model\"].endswith(\".gguf\")'"
# bytes JSON and HTML cannot hold as they are (quote, backslash, control bytes, invalid UTF-8,
# markup): tokenize --json (base's JSON escaper) parses and says what the input said; the
# --html heatmap (base's XML/HTML escaper) holds no raw < or & of the prompt (a raw one would
# stand just before a token's </span>)
printf 'a"\\\001\377<b>&\r\n' > "$TMP/odd.txt"
cat > "$TMP/odd.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
got = "".join(t["text"] for t in d["tokens"])
assert got == 'a"\\\x01\ufffd<b>&\r\n', repr(got)
PY
"$T" tokenize "$M" --json -f "$TMP/odd.txt" > "$TMP/t.json" 2> "$TMP/err"
check "tokenize --json escapes" "[ \$? -eq 0 ] && python3 '$TMP/odd.py' '$TMP/t.json'"
"$T" compress -m "$M" --rate 0.5 --html "$TMP/odd.html" --no-progress -f "$TMP/odd.txt" > /dev/null 2> "$TMP/err"
check "--html escapes" "[ \$? -eq 0 ] && grep -q '&lt;' '$TMP/odd.html' && grep -q '&amp;' '$TMP/odd.html' && ! grep -q '<<\\|&<' '$TMP/odd.html'"
echo "1 2 x3" > "$TMP/ids.txt"
expect "score --ids garbage" 1 "bad token id 'x3'" "$T" score "$M" --ids -f "$TMP/ids.txt"
echo "1 2 99999" > "$TMP/ids.txt"
expect "score --ids out of range" 1 "token id 99999 at 2 outside" "$T" score "$M" --ids -f "$TMP/ids.txt"
expect "-f a directory" 1 "reading .* failed: Is a directory" "$T" score "$M" -f "$TMP"
if [ -w /dev/full ]; then
  "$T" tokenize "$M" -f "$TMP/fox.txt" > /dev/full 2> "$TMP/err"
  check "full disk is an error" "[ \$? -eq 1 ] && grep -q 'writing the output failed' '$TMP/err'"
fi
expect "score empty input" 1 "empty input" "$T" score "$M" -f /dev/null
if [ -f "$G" ]; then
  cat "$G" "$G" "$G" > "$TMP/long.txt"
  expect "score past the context" 1 "exceed the model's context of 2048" "$T" score "$M" -f "$TMP/long.txt"
fi
expect "-t 1e999" 2 "-t wants an integer" "$T" score "$M" -t 1e999
expect "-f without a value" 2 "-f needs a value" "$T" score "$M" -f
expect "extra argument" 2 "unexpected argument 'b'" "$T" score "$M" b

# compress: NUL bytes, malformed or mistyped JSON, impossible rates and targets, bad regex
printf 'abc\000def' > "$TMP/nul.txt"
echo '<llmlingua, rate=nan>a b c</llmlingua> d e f' > "$TMP/tag.txt"
expect "NUL byte" 1 "NUL byte at offset 3" "$T" compress -m "$M" --no-progress -f "$TMP/nul.txt"
printf '{"contexts": ["The quick brown fox jumps over the lazy dog."' > "$TMP/bad.json"
expect "malformed JSON warns" 0 "not JSON \\(line 1, column" "$T" compress -m "$M" --no-progress -f "$TMP/bad.json"
printf '{"contexts": [1, "a"]}' > "$TMP/bad.json"
expect "context not a string" 1 "\"contexts\"\\[0\\] is a number, expected a string" "$T" compress -m "$M" -f "$TMP/bad.json"
printf '{"contexts": ["a b c"], "question": null}' > "$TMP/bad.json"
expect "question null" 1 "\"question\" is null, expected a string" "$T" compress -m "$M" -f "$TMP/bad.json"
printf '{"prompt": "The quick brown fox jumps over the lazy dog."}' > "$TMP/p.json"
"$T" compress -m "$M" --no-progress -f "$TMP/p.json" > "$TMP/out" 2> "$TMP/err"
check "\"prompt\" key" "[ \$? -eq 0 ] && ! grep -q prompt '$TMP/out' && ! grep -q warning '$TMP/err'"
expect "--rate nan" 2 "--rate wants a number in \\[0, 1\\], got 'nan'" "$T" compress --rate nan
expect "--rate 0" 2 "--rate 0 outside" "$T" compress --rate 0
expect "--unit without a value" 2 "--unit needs a value" "$T" compress --unit
expect "tag rate nan" 1 "<llmlingua> rate 'nan' is not a number" "$T" compress -m "$M" -f "$TMP/tag.txt"
expect "--target 0" 2 "--target wants an integer" "$T" compress --target 0
expect "--protect (" 1 "protect_patterns\\[0\\] '\\(' at offset 1" "$T" compress -m "$M" --protect '(' -f "$TMP/fox.txt"
expect "--count-vocab junk" 1 "neither a GGUF file nor a .tiktoken" "$T" compress -m "$M" --count-vocab "$TMP/nul.txt" -f "$TMP/fox.txt"
expect "tiny rate warns" 0 "no unit fits the target of 0 tokens" "$T" compress -m "$M" --rate 0.0001 --no-progress -f "$TMP/fox.txt"
expect "empty prompt" 1 "empty prompt" "$T" compress -m "$M" -f /dev/null

# random: absurd shapes refused before allocating; generate -n past the context is clipped
expect "random --vocab 1" 1 "n_vocab = 1, expected 257" "$T" random "$TMP/r.gguf" --vocab 1
expect "random huge" 1 "exceed the 16 GiB" "$T" random "$TMP/r.gguf" --embd 65536 --heads 64 --kv-heads 64 --ff 1048576 --layers 4096
expect "random --embd 7 --heads 3" 1 "do not divide" "$T" random "$TMP/r.gguf" --embd 7 --heads 3
"$T" random "$TMP/tiny.gguf" --ctx 16 > /dev/null 2>&1
"$T" generate "$TMP/tiny.gguf" --ids 256 -n 100000 --print-ids > "$TMP/g.txt" 2> "$TMP/err"
check "generate -n 100000 clipped" "[ \$? -eq 0 ] && [ \$(wc -w < '$TMP/g.txt') -eq 15 ] && grep -q 'clipped to 15' '$TMP/err'"

cli_finish
