#!/bin/sh
# cli_soft.sh - terse distill / probe and --soft in score, generate and eval, on two tiny random
# models: a short distillation that writes a file the other commands read, and bad input
# (N = 0, N past the context, an empty prompt, a soft file for another model, a truncated
# soft file, an unwritable output): a clear message, a non-zero status, no file left behind.
# Prints "N passed, N failed" last. Uses $BUILD/terse (or $TERSE_BIN).
. "$(dirname "$0")/cli_lib.sh"
cli_setup soft
random_models
printf 'The cat sat on the mat, and the dog sat on the log.' > "$TMP/p.txt"
S="$TMP/s.gguf"
D="--steps 3 --samples 2 --batch 2 --cont-len 6 -t 1"

# a distillation, its file, and the commands that read it
"$T" distill "$M" -f "$TMP/p.txt" --tokens 4 -o "$S" $D --probe "$TMP/probe.html" > "$TMP/out" 2> "$TMP/err"
check "distill runs" "[ \$? -eq 0 ] && [ -f '$S' ] && grep -q '^kl_final' '$TMP/out' && grep -q 'step 3/3' '$TMP/err'"
check "distill --probe page" "grep -q 'Now repeat the text' '$TMP/probe.html'"
check "no temporary file left" "[ \$(ls '$TMP' | grep -c tmp) -eq 0 ]"
echo "the dog" > "$TMP/x.txt"
"$T" score "$M" --soft "$S" -f "$TMP/x.txt" > "$TMP/out" 2> "$TMP/err"
check "score --soft" "[ \$? -eq 0 ] && [ \$(wc -l < '$TMP/out') -ge 2 ]"
"$T" generate "$M" --soft "$S" -n 5 --print-ids > "$TMP/out" 2> "$TMP/err"
check "generate --soft, no text" "[ \$? -eq 0 ] && [ -s '$TMP/out' ]"
"$T" generate "$M" --soft "$S" -p "the" -n 5 > "$TMP/out" 2> "$TMP/err"
check "generate --soft -p" "[ \$? -eq 0 ]"
"$T" probe "$M" --soft "$S" --prefix "$TMP/x.txt" --html "$TMP/p2.html" --html-log "$TMP/p3.html" > "$TMP/out" 2> "$TMP/err"
check "probe" "[ \$? -eq 0 ] && grep -q '^prefix' '$TMP/out' && [ \$(wc -l < '$TMP/out') -eq 3 ] && [ -s '$TMP/p2.html' ] && [ -s '$TMP/p3.html' ]"
echo '{"contexts": ["the log"], "question": "Who sat?"}' > "$TMP/d.jsonl"
"$T" eval --data "$TMP/d.jsonl" --model "$M" --context-file "$TMP/p.txt" --soft "$S" --methods soft \
    --max-new 4 --no-progress > "$TMP/out" 2> "$TMP/err"
check "eval --soft" "[ \$? -eq 0 ] && grep -q '| soft' '$TMP/out'"

printf 'and then the cat ran off to the barn\nshort\nthe dog slept under the old tree all day\n' > "$TMP/data.txt"
"$T" distill "$M" -f "$TMP/p.txt" --tokens 2 -o "$TMP/sd.gguf" $D --data "$TMP/data.txt" --reverse --init random > "$TMP/out" 2> "$TMP/err"
check "distill --data --reverse --init random" "[ \$? -eq 0 ] && [ -f '$TMP/sd.gguf' ]"

# bad input
expect "N = 0" 1 "--tokens 0 \\(want >= 1\\)" "$T" distill "$M" -f "$TMP/p.txt" --tokens 0 -o "$TMP/a.gguf" $D
expect "N past the context" 1 "exceed the model's context of 256" "$T" distill "$M" -f "$TMP/p.txt" --tokens 300 -o "$TMP/a.gguf" $D
: > "$TMP/empty.txt"
expect "empty prompt" 1 "empty prompt" "$T" distill "$M" -f "$TMP/empty.txt" --tokens 2 -o "$TMP/a.gguf" $D
expect "no -o" 2 "required" "$T" distill "$M" -f "$TMP/p.txt" --tokens 2
expect "unwritable output" 1 "cannot create" "$T" distill "$M" -f "$TMP/p.txt" --tokens 2 -o "$TMP/no/such/dir.gguf" $D
check "nothing written" "[ ! -e '$TMP/a.gguf' ] && [ \$(ls '$TMP' | grep -c tmp) -eq 0 ]"
expect "soft for another model (score)" 1 "made for another model" "$T" score "$M2" --soft "$S" -f "$TMP/x.txt"
expect "soft for another model (generate)" 1 "made for another model" "$T" generate "$M2" --soft "$S" -n 2
expect "soft for another model (probe)" 1 "made for another model" "$T" probe "$M2" --soft "$S"
size=$(wc -c < "$S")
for n in 10 200 $((size / 2)) $((size - 4)); do
  head -c $n "$S" > "$TMP/cut.gguf"
  expect "soft file cut at $n bytes" 1 "soft prompt" "$T" score "$M" --soft "$TMP/cut.gguf" -f "$TMP/x.txt"
done
expect "a model is not a soft prompt" 1 "not a soft prompt file" "$T" score "$M" --soft "$M" -f "$TMP/x.txt"
expect "probe without rows" 2 "at least one" "$T" probe "$M"

cli_finish
