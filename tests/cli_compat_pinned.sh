#!/bin/sh
# cli_compat_pinned.sh - `terse compress --compat` must keep reproducing what it produced
# before issue 9 (tests/golden/compat/*.out, pinned with the binary of commit 77a1e7e) for
# every method on GSM8K, BBH, multi-document and non-ASCII prompts. The one change allowed is
# the reference's own decoding: Python's bytes.decode("utf-8", "replace") turns a character
# split by the compression into U+FFFD (one per maximal invalid subsequence). LLMLingua
# decodes the kept ids in one piece; Selective Context decodes every token alone, so a
# character split over two kept tokens shows as U+FFFD there too: for its token level a run
# of non-ASCII characters may be all U+FFFD where the old bytes held a character.
# TERSE_PIN_GEN=1 rewrites the .out files (only ever with the pre-change binary).
# Prints "N passed, N failed" last.
. "$(dirname "$0")/cli_lib.sh"
cli_setup pinned
D=$(dirname "$0")/golden/compat
# under the sanitizers (build-debug) every third case: the optimised run covers them all
step=1; case "$T" in *debug*) step=3;; esac
grep -v '^#' "$D/cases.txt" | awk -v s=$step 'NF && (NR - 1) % s == 0' | while read -r name input args; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    "$T" compress --compat --no-progress -t 2 $args -f "$D/$input" > "$TMP/$name.out" 2> "$TMP/err"
    rc=$?
    if [ -n "$TERSE_PIN_GEN" ]; then cp "$TMP/$name.out" "$D/$name.out"; echo "pinned $name"; continue; fi
    if [ $rc -ne 0 ]; then echo "FAIL: $name: status $rc: $(cat "$TMP/err")"; echo x >> "$TMP/fails"; continue; fi
    if python3 - "$D/$name.out" "$TMP/$name.out" "$name" <<'PY'
import re, sys
old = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
raw = open(sys.argv[2], "rb").read()
try:
    new = raw.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("invalid UTF-8 in the output: %s" % e)
if new == old:
    sys.exit(0)
if sys.argv[3].startswith("sc_token"):   # per-token decoding: compare non-ASCII runs
    split = lambda s: re.split(r"([^\x00-\x7f]+)", s)
    a, b = split(old), split(new)
    if len(a) == len(b) and all(x == y or (i % 2 and set(y) == {"\ufffd"}) for i, (x, y) in enumerate(zip(a, b))):
        sys.exit(0)
i = next((k for k in range(min(len(old), len(new))) if old[k] != new[k]), min(len(old), len(new)))
sys.exit("differs at char %d: old %r new %r" % (i, old[max(0, i - 30):i + 30], new[max(0, i - 30):i + 30]))
PY
    then echo ok >> "$TMP/passes"; else echo "FAIL: $name"; echo x >> "$TMP/fails"; fi
done
pass=$(cat "$TMP/passes" 2>/dev/null | wc -l); fail=$(cat "$TMP/fails" 2>/dev/null | wc -l)
cli_finish
