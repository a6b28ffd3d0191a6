#!/bin/sh
# cli_gist.sh - terse finetune --gist, terse gist and terse generate --gist on tiny random
# models: a 3-step fine-tuning that makes the gist model, a gist cache of an instruction,
# generation from it (= generation from the gist-masked full prompt, checked in C), and bad
# input: K = 0 or too large, a model without a gist token, a cache for another model, a
# truncated cache, bad JSON data. Prints "N passed, N failed" last. Uses $BUILD/terse.
T=${TERSE_BIN:-${BUILD:-build}/terse}
TMP=$(mktemp -d /tmp/terse_cli_gist.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $1"; head -n 5 "$TMP/err" 2>/dev/null; }
check() { if eval "$2"; then ok; else ko "$1"; fi; }
expect() {
  name=$1; want=$2; pat=$3; shift 3
  "$@" > "$TMP/out" 2> "$TMP/err"; got=$?
  if [ $got -eq "$want" ] && grep -qE -- "$pat" "$TMP/err" && ! grep -q 'Sanitizer\|runtime error' "$TMP/err"
  then ok; else ko "$name (status $got, want $want)"; fi
}

M=$TMP/m.gguf; M2=$TMP/m2.gguf
"$T" random "$M" --arch llama --vocab 300 --ctx 256 --embd 32 --layers 2 --heads 4 --ff 64 --type f32 --seed 3 > /dev/null 2>&1
"$T" random "$M2" --arch llama --vocab 300 --ctx 256 --embd 32 --layers 2 --heads 4 --ff 64 --type f32 --seed 4 > /dev/null 2>&1
check "random models" "[ -f '$M' ] && [ -f '$M2' ]"
head -n 30 tests/golden/gist/data.jsonl > "$TMP/d.jsonl"
xz -c "$TMP/d.jsonl" > "$TMP/d.jsonl.xz" 2>/dev/null

expect "finetune" 0 "finetune: [0-9]+ examples" "$T" finetune "$M" --gist 1 --data "$TMP/d.jsonl.xz" \
  -o "$TMP/g.gguf" --init "$TMP/init.gguf" --steps 3 --batch 2 --max-len 160 -t 1
check "losses printed" "[ \$(wc -l < '$TMP/out') -eq 3 ]"
check "gist model written" "[ -s '$TMP/g.gguf' ] && [ -s '$TMP/init.gguf' ]"
printf 'Summarize the text.\n' > "$TMP/i.txt"
"$T" gist "$TMP/g.gguf" -f "$TMP/i.txt" -o "$TMP/c.gguf" > "$TMP/out" 2> "$TMP/err"
check "gist output" "grep -q '^k	1' '$TMP/out' && grep -q '^next_pos' '$TMP/out' && [ -s '$TMP/c.gguf' ]"
"$T" generate "$TMP/g.gguf" --gist "$TMP/c.gguf" -p "some text" -n 4 --print-ids > "$TMP/out" 2> "$TMP/err"; rc=$?
check "generate --gist" "[ $rc -eq 0 ] && [ -s '$TMP/out' ]"

# bad input
expect "K = 0" 2 "needs --mask" "$T" finetune "$M" --gist 0 --data "$TMP/d.jsonl" -o "$TMP/x.gguf"
expect "K = 65" 2 "gist" "$T" finetune "$M" --gist 65 --data "$TMP/d.jsonl" -o "$TMP/x.gguf"
expect "gist K = 0" 2 "gist" "$T" gist "$TMP/g.gguf" -f "$TMP/i.txt" -o "$TMP/x.gguf" --gist 0
expect "no gist token" 1 "no gist token" "$T" gist "$M" -f "$TMP/i.txt" -o "$TMP/x.gguf"
expect "other model" 1 "made with model" "$T" generate "$M2" --gist "$TMP/c.gguf" -p x -n 2
head -c 300 "$TMP/c.gguf" > "$TMP/t.gguf"
expect "truncated cache" 1 "gist" "$T" generate "$TMP/g.gguf" --gist "$TMP/t.gguf" -p x -n 2
printf '{"instruction": 3}\n' > "$TMP/bad.jsonl"
expect "bad data" 1 "line 1" "$T" finetune "$M" --gist 1 --data "$TMP/bad.jsonl" -o "$TMP/x.gguf" --init "$TMP/i2.gguf"
head -c 2000 /dev/zero | tr '\0' 'x' > "$TMP/long.txt"
expect "instruction past the context" 1 "exceeds the context" "$T" gist "$TMP/g.gguf" -f "$TMP/long.txt" -o "$TMP/x.gguf"
check "no output left by failures" "[ ! -e '$TMP/x.gguf' ]"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
