#!/bin/sh
# Run every test binary given, then the CLI scripts tests/cli_*.sh; sum their
# "N passed, N failed" lines. The last line printed is the total.
pass=0; fail=0

# run NAME CMD...: run one test, read its last "N passed, N failed" line, add it up.
# A test that exits non-zero without reporting a failure counts as one failure.
run() {
  name=$1; shift
  out=$("$@" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  p=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed.*/\2/')
  f=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) failed.*/\2/')
  [ -z "$line" ] && { p=0; f=1; }
  [ $rc -ne 0 ] && [ "${f:-0}" = 0 ] && f=1
  [ $rc -ne 0 ] && printf '%s\n' "$out" | tail -n 30
  echo "$name: $p passed, $f failed"
  pass=$((pass + p)); fail=$((fail + f))
}

for t in "$@"; do run "$(basename "$t")" "$t"; done
for s in tests/cli_*.sh; do
  [ "$s" = tests/cli_lib.sh ] && continue    # shared set-up, sourced by the scripts
  [ -f "$s" ] && run "$(basename "$s")" env BUILD="${BUILD:-build}" sh "$s"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
