#!/bin/sh
# Run every test binary given, then the CLI scripts tests/cli_*.sh; sum their
# "N passed, N failed" lines. The last line printed is the total.
pass=0; fail=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  p=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed.*/\2/'); f=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) failed.*/\2/')
  [ -z "$line" ] && { p=0; f=1; }
  [ $rc -ne 0 ] && [ "${f:-0}" = 0 ] && f=1
  [ $rc -ne 0 ] && printf '%s\n' "$out" | tail -n 30
  echo "$(basename "$t"): $p passed, $f failed"
  pass=$((pass + p)); fail=$((fail + f))
done
for s in tests/cli_*.sh; do
  [ -f "$s" ] || continue
  out=$(BUILD=${BUILD:-build} sh "$s" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  p=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed.*/\2/'); f=$(printf '%s' "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) failed.*/\2/')
  [ -z "$line" ] && { p=0; f=1; }
  [ $rc -ne 0 ] && [ "${f:-0}" = 0 ] && f=1
  [ $rc -ne 0 ] && printf '%s\n' "$out" | tail -n 30
  echo "$(basename "$s"): $p passed, $f failed"
  pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
