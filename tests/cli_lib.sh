# cli_lib.sh - the set-up shared by CLI test scripts (sourced, not run: tests/run.sh skips it).
#   cli_setup NAME          T (the terse binary: $TERSE_BIN, else $BUILD/terse), TMP (a fresh
#                           folder /tmp/terse_cli_NAME.XXXXXX, removed on exit), counters
#   ok / ko MSG             count a pass / a failure (ko prints MSG and the head of the log:
#                           $CLI_LOG when set, else $TMP/err)
#   check MSG CONDITION     CONDITION (a shell expression, eval'ed) must hold
#   expect MSG STATUS RE CMD...   CMD exits with STATUS, its stderr matches the ERE RE, and
#                           no sanitizer report (stdout in $TMP/out, stderr in $TMP/err)
#   random_models ARGS...   $M and $M2: tiny random llama models (vocab 300, ctx 256, 32 wide,
#                           2 layers), seeds 3 and 4, with ARGS added (e.g. --type f32)
#   cli_skip WHY            prints "WHY: skipped" and "0 passed, 0 failed", exits 0
#   cli_finish              prints "N passed, N failed" (the last line) and sets the status
cli_setup() {
  T=${TERSE_BIN:-${BUILD:-build}/terse}
  TMP=$(mktemp -d "/tmp/terse_cli_$1.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  pass=0; fail=0
}
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $1"; head -n 5 "${CLI_LOG:-$TMP/err}" 2>/dev/null; }
check() { if eval "$2"; then ok; else ko "$1"; fi; }
expect() {
  name=$1; want=$2; pat=$3; shift 3
  "$@" > "$TMP/out" 2> "$TMP/err"; got=$?
  if [ $got -eq "$want" ] && grep -qE -- "$pat" "$TMP/err" && ! grep -q 'Sanitizer\|runtime error' "$TMP/err"
  then ok; else ko "$name (status $got, want $want)"; fi
}
random_models() {
  M=$TMP/m.gguf; M2=$TMP/m2.gguf
  "$T" random "$M" --arch llama --vocab 300 --ctx 256 --embd 32 --layers 2 --heads 4 --ff 64 --seed 3 "$@" > /dev/null 2>&1
  "$T" random "$M2" --arch llama --vocab 300 --ctx 256 --embd 32 --layers 2 --heads 4 --ff 64 --seed 4 "$@" > /dev/null 2>&1
  check "random models" "[ -f '$M' ] && [ -f '$M2' ]"
}
cli_skip() {
  echo "$1: skipped"; echo "0 passed, 0 failed"; exit 0
}
cli_finish() {
  echo "$pass passed, $fail failed"
  [ $fail -eq 0 ]
}
