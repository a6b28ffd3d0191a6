#!/bin/sh
# cli_gist.sh - terse finetune --gist, terse gist and terse generate --gist on tiny random
# models: a 3-step fine-tuning that makes the gist model, a gist cache of an instruction,
# generation from it (= generation from the gist-masked full prompt, checked in C), terse eval
# --methods gist,gist-full, and bad
# input: K = 0 or too large, a model without a gist token, a cache for another model, a
# truncated cache, bad JSON data. Prints "N passed, N failed" last. Uses $BUILD/terse.
. "$(dirname "$0")/cli_lib.sh"
cli_setup gist
random_models --type f32
head -n 30 tests/golden/gist/data.jsonl > "$TMP/d.jsonl"
xz -c "$TMP/d.jsonl" > "$TMP/d.jsonl.xz" 2>/dev/null

expect "finetune" 0 "finetune: [0-9]+ examples" "$T" finetune "$M" --gist 1 --data "$TMP/d.jsonl.xz" \
  -o "$TMP/g.gguf" --init "$TMP/init.gguf" --steps 3 --batch 2 --max-len 160 -t 1
check "losses printed" "[ \$(wc -l < '$TMP/out') -eq 3 ]"
check "gist model written" "[ -s '$TMP/g.gguf' ] && [ -s '$TMP/init.gguf' ]"
printf 'Summarize the text.\n' > "$TMP/i.txt"
"$T" gist "$TMP/g.gguf" -f "$TMP/i.txt" -o "$TMP/c.gguf" > "$TMP/out" 2> "$TMP/err"
check "gist output" "grep -q '^k	1' '$TMP/out' && grep -q '^next_pos' '$TMP/out' && [ -s '$TMP/c.gguf' ]"
# the Q8_0 copy records the trained K (--gist K), and terse gist defaults to it
"$T" gist --q8 "$TMP/g.gguf" "$TMP/q.gguf" --gist 3 2> "$TMP/err"
"$T" gist "$TMP/q.gguf" -f "$TMP/i.txt" -o "$TMP/c3.gguf" > "$TMP/out" 2> "$TMP/err"
check "gist --q8 --gist 3: K 3 by default" "grep -q '^k	3' '$TMP/out'"
"$T" gist "$TMP/q.gguf" -f "$TMP/i.txt" -o "$TMP/c3.gguf" --gist 1 > "$TMP/out" 2> "$TMP/err"
check "--gist 1 overrides the model's K" "grep -q '^k	1' '$TMP/out'"
for k in "" "--gist-k 3" "--gist-k 1"; do
  "$T" eval --model "$TMP/q.gguf" --data "$TMP/d.jsonl" --methods gist --limit 2 --max-new 4 \
      --no-progress --no-texts $k 2> "$TMP/err" | grep '| gist |' | cut -d'|' -f2-8 > "$TMP/ev${k#--gist-k }"
done
check "eval: --gist-k defaults to the model's K" "[ -s '$TMP/ev' ] && cmp -s '$TMP/ev' '$TMP/ev3' && ! cmp -s '$TMP/ev' '$TMP/ev1'"
"$T" generate "$TMP/g.gguf" --gist "$TMP/c.gguf" -p "some text" -n 4 --print-ids > "$TMP/out" 2> "$TMP/err"; rc=$?
check "generate --gist" "[ $rc -eq 0 ] && [ -s '$TMP/out' ]"
"$T" eval --model "$TMP/g.gguf" --data "$TMP/d.jsonl" --methods gist,gist-full --limit 2 \
    --max-new 4 --no-progress > "$TMP/out" 2> "$TMP/err"
check "eval --methods gist,gist-full" "[ \$? -eq 0 ] && grep -q '| gist |' '$TMP/out' && grep -q '| gist-full |' '$TMP/out' && grep -q 'ROUGE-L (reference)' '$TMP/out'"

# the shipped gist model (models/terse-gist.gguf, trained with K = 2): cache an instruction
# as its two gists, generate from it
G=models/terse-gist.gguf
if [ -f "$G" ]; then
  printf 'Given two integers, find their average.' > "$TMP/avg.txt"
  "$T" gist "$G" -f "$TMP/avg.txt" -o "$TMP/avg.gguf" -t 1 > "$TMP/out" 2> "$TMP/err"
  check "shipped model: gist (K = 2, the model's)" "grep -q '^k	2' '$TMP/out' && grep -q '^instruction_tokens	15' '$TMP/out' && grep -q '^compression	7.50' '$TMP/out'"
  "$T" generate "$G" --gist "$TMP/avg.gguf" -p "2, 3" -n 6 -t 1 --print-ids > "$TMP/out" 2> "$TMP/err"
  check "shipped model: generate --gist" "[ \$? -eq 0 ] && [ -s '$TMP/out' ]"
  expect "shipped model's cache on the default model" 1 "made with model" "$T" generate \
      models/terse-default.gguf --gist "$TMP/avg.gguf" -p x -n 2 -t 1
fi

# bad input
expect "K = 0" 2 "needs --mask" "$T" finetune "$M" --gist 0 --data "$TMP/d.jsonl" -o "$TMP/x.gguf"
expect "K = 65" 2 "gist" "$T" finetune "$M" --gist 65 --data "$TMP/d.jsonl" -o "$TMP/x.gguf"
expect "gist K = 0" 2 "gist" "$T" gist "$TMP/g.gguf" -f "$TMP/i.txt" -o "$TMP/x.gguf" --gist 0
expect "no gist token" 1 "no gist token" "$T" gist "$M" -f "$TMP/i.txt" -o "$TMP/x.gguf"
expect "q8 of a model without a gist token" 1 "no gist token" "$T" gist --q8 "$M" "$TMP/x.gguf"
expect "q8 --gist 0" 2 "gist" "$T" gist --q8 "$TMP/g.gguf" "$TMP/x.gguf" --gist 0
expect "q8 extra argument" 2 "gist --q8" "$T" gist --q8 "$TMP/g.gguf" "$TMP/x.gguf" --gist
expect "q8 unknown --type" 2 "type" "$T" gist --q8 "$TMP/g.gguf" "$TMP/x.gguf" --type q3_x
expect "q8 unknown option" 2 "gist --q8" "$T" gist --q8 "$TMP/g.gguf" "$TMP/x.gguf" --bogus 1
expect "eval gist without a gist token" 1 "needs a target model with a gist token" "$T" eval \
    --model "$M" --data "$TMP/d.jsonl" --methods gist --limit 1 --max-new 2 --no-progress
expect "eval --gist-k 0" 2 "gist-k" "$T" eval --model "$TMP/g.gguf" --data "$TMP/d.jsonl" --methods gist --gist-k 0
expect "other model" 1 "made with model" "$T" generate "$M2" --gist "$TMP/c.gguf" -p x -n 2
head -c 300 "$TMP/c.gguf" > "$TMP/t.gguf"
expect "truncated cache" 1 "gist" "$T" generate "$TMP/g.gguf" --gist "$TMP/t.gguf" -p x -n 2
printf '{"instruction": 3}\n' > "$TMP/bad.jsonl"
expect "bad data" 1 "line 1" "$T" finetune "$M" --gist 1 --data "$TMP/bad.jsonl" -o "$TMP/x.gguf" --init "$TMP/i2.gguf"
head -c 2000 /dev/zero | tr '\0' 'x' > "$TMP/long.txt"
expect "instruction past the context" 1 "exceeds the context" "$T" gist "$TMP/g.gguf" -f "$TMP/long.txt" -o "$TMP/x.gguf"
check "no output left by failures" "[ ! -e '$TMP/x.gguf' ]"
cli_finish
