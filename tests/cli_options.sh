#!/bin/sh
# cli_options.sh - options every command spells the same way (issue 9, defects 9-11): -m and a
# positional model, -t everywhere, tokenize with the default model and cl100k, --count-vocab
# cl100k from any folder, --top-p 0 and --unit with llmlingua refused at parsing, random gpt2
# without --kv-heads, eval checking --out before the run, recover on copied text and newlines.
# Prints "N passed, N failed" last. Uses $BUILD/terse (or $TERSE_BIN).
. "$(dirname "$0")/cli_lib.sh"
cli_setup options
case $T in /*) ;; *) T=$(pwd)/$T ;; esac
SHARED=${TERSE_SHARED:-../shared}
[ -d "$SHARED" ] && SHARED=$(cd "$SHARED" && pwd)
M=${TERSE_MODEL:-models/terse-default.gguf}
case $M in /*) ;; *) M=$(pwd)/$M ;; esac
# run NAME CMD...: CMD succeeds
run() {
  name=$1; shift
  if "$@" > "$TMP/out" 2> "$TMP/err"; then ok; else ko "$name (status $?)"; fi
}

[ -f "$M" ] || cli_skip "$M missing"
export TERSE_MODEL="$M"
echo "The quick brown fox jumps over the lazy dog." > "$TMP/fox.txt"

# one model flag: -m (and --model) for every command that reads a model, positional where it was
run "info -m" "$T" info -m "$M"
run "info positional" "$T" info "$M"
run "info default" "$T" info
run "score -m" "$T" score -m "$M" -f "$TMP/fox.txt"
run "score --model" "$T" score --model "$M" -f "$TMP/fox.txt"
run "bpb -m" "$T" bpb -m "$M" -f "$TMP/fox.txt"
run "generate -m" "$T" generate -m "$M" -p "Once" -n 3
run "generate positional" "$T" generate "$M" -p "Once" -n 3
run "tokenize -m" "$T" tokenize -m "$M" -f "$TMP/fox.txt"
run "compress -m" "$T" compress -m "$M" --no-progress -f "$TMP/fox.txt"
expect "two models" 2 "two models given" "$T" score "$M" -m "$TMP/other.gguf"
expect "model then positional" 2 "unexpected argument" "$T" info -m "$M" "$TMP/other.gguf"

# -t everywhere (and checked everywhere)
for c in info score bpb tokenize; do
  if [ $c = info ]; then run "$c -t 1" "$T" $c -t 1; else run "$c -t 1" "$T" $c -t 1 -f "$TMP/fox.txt"; fi
  expect "$c -t x" 2 "-t wants an integer" "$T" $c -t x
done
run "generate -t 1" "$T" generate -t 1 -p "Once" -n 3
run "compress -t 1" "$T" compress --threads 1 --no-progress -f "$TMP/fox.txt"
expect "compress -t x" 2 "-t wants an integer" "$T" compress -t x
expect "eval -t x" 2 "-t wants an integer" "$T" eval --data x -t x
expect "-t without a value" 2 "-t needs a value" "$T" score -t

# tokenize: the default model without an argument, and cl100k by name
"$T" tokenize --count < "$TMP/fox.txt" > "$TMP/n1" 2> "$TMP/err" && "$T" tokenize "$M" --count < "$TMP/fox.txt" > "$TMP/n2"
if [ $? -eq 0 ] && cmp -s "$TMP/n1" "$TMP/n2"; then ok; else ko "tokenize with the default model"; fi
if [ -f "$SHARED/vocab/tiktoken/cl100k_base.tiktoken" ]; then
  # cl100k counts 10 tokens in the fox sentence (tiktoken), from any folder
  (cd "$TMP" && TERSE_SHARED="$SHARED" "$T" tokenize cl100k --count < fox.txt) > "$TMP/n" 2> "$TMP/err"
  if [ "$(cat "$TMP/n")" = 10 ]; then ok; else ko "tokenize cl100k: '$(cat "$TMP/n")'"; fi
  # --count-vocab cl100k outside the checkout: found through TERSE_SHARED, and with neither
  # TERSE_SHARED nor ../shared when it lies beside the executable (two folders down, so that
  # ../../shared falls inside this test's own temporary folder, whatever /tmp holds)
  (cd "$TMP" && TERSE_SHARED="$SHARED" "$T" compress --count-vocab cl100k --json --no-progress -f fox.txt) > "$TMP/c.json" 2> "$TMP/err"
  if [ $? -eq 0 ] && grep -q '"compressed_prompt"' "$TMP/c.json"; then ok; else ko "--count-vocab cl100k from another folder"; fi
  mkdir -p "$TMP/x/bin" "$TMP/elsewhere"
  cp "$T" "$TMP/x/bin/terse" && cp "$SHARED/vocab/tiktoken/cl100k_base.tiktoken" "$TMP/x/bin/"
  (cd "$TMP/elsewhere" && env -u TERSE_SHARED "$TMP/x/bin/terse" tokenize cl100k --count < ../fox.txt) > "$TMP/n" 2> "$TMP/err"
  if [ "$(cat "$TMP/n")" = 10 ]; then ok; else ko "cl100k beside the executable: '$(cat "$TMP/n")'"; fi
  rm -f "$TMP/x/bin/cl100k_base.tiktoken"
  (cd "$TMP/elsewhere" && env -u TERSE_SHARED "$TMP/x/bin/terse" tokenize cl100k --count < ../fox.txt) > "$TMP/n" 2> "$TMP/err"
  if [ $? -eq 1 ] && grep -q "not found.*looked in" "$TMP/err"; then ok; else ko "cl100k missing: precise error"; fi
  expect "TERSE_CL100K wrong" 1 "TERSE_CL100K='/nonexistent' is not a readable file" env TERSE_CL100K=/nonexistent "$T" tokenize cl100k -f "$TMP/fox.txt"
fi

# parsing refuses what used to be ignored or fail late
expect "generate --top-p 0" 2 "--top-p wants a number in \(0, 1\]" "$T" generate --top-p 0 -p x
expect "generate --top-p -1" 2 "--top-p" "$T" generate --top-p -1 -p x
run "generate --top-p 0.5" "$T" generate --top-p 0.5 --temp 1 -p "Once" -n 3
expect "eval --top-p 0" 2 "--top-p wants a number in \(0, 1\]" "$T" eval --data x --top-p 0
expect "llmlingua --unit" 2 "--unit is selective's option" "$T" compress --method llmlingua --unit token -f "$TMP/fox.txt"
expect "longllmlingua --unit (either order)" 2 "--unit is selective's option" "$T" compress --unit sentence --method longllmlingua -f "$TMP/fox.txt"

# random --arch gpt2 without --kv-heads; llama keeps its grouped default
run "random gpt2" "$T" random "$TMP/g.gguf" --arch gpt2
"$T" info "$TMP/g.gguf" > "$TMP/out" 2>&1
if grep -q "architecture  gpt2" "$TMP/out" && grep -q "heads         4 (kv 4)" "$TMP/out"; then ok; else ko "gpt2 random model's heads"; fi
run "score with the random gpt2" "$T" score -m "$TMP/g.gguf" -f "$TMP/fox.txt"
run "random llama, odd heads" "$T" random "$TMP/l.gguf" --heads 3 --embd 48
"$T" info "$TMP/l.gguf" > "$TMP/out" 2>&1
if grep -q "heads         3 (kv 3)" "$TMP/out"; then ok; else ko "llama random with 3 heads"; fi

# eval: --out checked before anything runs; its help says exact match compares numbers
echo '{"prompt": "2 + 2 =", "reference": "#### 4"}' > "$TMP/d.jsonl"
: > "$TMP/file"
expect "eval --out under a file" 1 "--out '.*': '.*file' is not a folder" "$T" eval --data "$TMP/d.jsonl" --out "$TMP/file/report" -m /nonexistent.gguf
"$T" eval --help > "$TMP/out" 2>&1
if grep -q "compares numbers" "$TMP/out"; then ok; else ko "eval --help: exact match compares numbers"; fi
run "eval -m --out" "$T" eval --data "$TMP/d.jsonl" -m "$TMP/g.gguf" --methods selective-token --max-new 2 --out "$TMP/rep/a" --no-progress -t 1
if [ -f "$TMP/rep/a/report.json" ]; then ok; else ko "eval wrote its report"; fi

# recover (defect 9): a response starting with copied text, a word before a newline
printf 'The cat sat on the mat' > "$TMP/o.txt"
printf 'cat on mat' > "$TMP/c.txt"
printf 'cat on mat\n' | "$T" recover -o "$TMP/o.txt" -c "$TMP/c.txt" -m "$M" -t 1 > "$TMP/out" 2> "$TMP/err"
if printf 'cat sat on the mat\n' | cmp -s - "$TMP/out"; then ok; else ko "recover: '$(cat "$TMP/out")'"; fi

cli_finish
