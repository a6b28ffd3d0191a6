#!/bin/sh
# cli_symbols.sh - libterse.so exports the functions declared in include/terse.h and nothing
# else: internal helpers (terse_json_bytes, terse_utf8_decode, nn_*, cmp_*, ...) stay local
# (the version script $BUILD/libterse.map, Makefile). Prints "N passed, N failed" last.
. "$(dirname "$0")/cli_lib.sh"
cli_setup symbols
B=${BUILD:-build}
SO=$B/libterse.so
if [ ! -f "$SO" ] || ! command -v nm > /dev/null; then cli_skip "$SO or nm missing"; fi
grep -oE '\bterse_[a-z0-9_]+ *\(' include/terse.h | sed 's/ *(//' | sort -u > "$TMP/api"
nm -D --defined-only "$SO" | awk 'NF == 3 { print $3 }' | sed 's/@.*//' | sort -u > "$TMP/exported"
comm -23 "$TMP/exported" "$TMP/api" > "$TMP/extra"
if [ -s "$TMP/exported" ] && [ ! -s "$TMP/extra" ]; then ok; else ko "exported but not in terse.h: $(head -n 10 "$TMP/extra" | tr '\n' ' ')"; fi
# every public entry point is there (names the header mentions with "(" that are not functions,
# such as the type terse_ctx in comments, are skipped: they are not defined at all)
nm --defined-only "$B/libterse.a" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u > "$TMP/defined"
comm -12 "$TMP/api" "$TMP/defined" | comm -23 - "$TMP/exported" > "$TMP/missing"
if [ ! -s "$TMP/missing" ]; then ok; else ko "in terse.h but not exported: $(head -n 10 "$TMP/missing" | tr '\n' ' ')"; fi
for s in terse_json_bytes terse_utf8_decode nn_sgemm; do
  if grep -qx "$s" "$TMP/exported"; then ko "$s exported"; else ok; fi
done
cli_finish
