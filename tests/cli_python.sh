#!/bin/sh
# The Python-side tests (pytest, tests/python/): the Python module, `terse serve` and its
# proxy, `terse batch` and the Dask recipe, with Debian's python3. Last line: "N passed, N failed".
BUILD=${BUILD:-build}
PY=/usr/bin/python3
if ! $PY -c "import pytest, distributed" 2>/dev/null; then
  echo "python3-pytest or python3-distributed missing (run: make setup)"; echo "0 passed, 1 failed"; exit 1
fi
# Under the sanitizers (build-debug) the library loaded into python needs the runtimes first.
pre=""
case "$BUILD" in *debug*)
  pre="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}";;
esac
log=$(mktemp /tmp/terse-pytest-XXXXXX)
TERSE_BUILD=$BUILD LD_PRELOAD="$pre" $PY -m pytest -q -p no:cacheprovider tests/python >"$log" 2>&1
rc=$?
tail -n 40 "$log"
sum=$(grep -E '(passed|failed|error)' "$log" | tail -n 1)
p=$(printf '%s' "$sum" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
f=$(printf '%s' "$sum" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
e=$(printf '%s' "$sum" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
f=$(( ${f:-0} + ${e:-0} ))
[ $rc -ne 0 ] && [ $f -eq 0 ] && f=1
rm -f "$log"
echo "${p:-0} passed, $f failed"
[ $f -eq 0 ]
