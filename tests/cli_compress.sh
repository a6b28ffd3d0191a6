#!/bin/sh
# cli_compress.sh - `terse compress` end to end with the default model on the GSM8K 8-shot
# prompt: text and JSON output, JSON prompt input, HTML heatmap, compat mode, errors.
# Prints "N passed, N failed" last. Uses $BUILD/terse (or $TERSE_BIN).
. "$(dirname "$0")/cli_lib.sh"
cli_setup compress
SHARED=${TERSE_SHARED:-../shared}
G=$SHARED/data/gsm8k/prompt_hardest.txt

[ -f "$G" ] || cli_skip "$G missing"
head -c 1500 "$G" > "$TMP/short.txt"

check "help" "'$T' compress --help >/dev/null 2>&1"

# plain text in, text out: shorter, made of the input's lines' bytes
"$T" compress --rate 0.5 --no-progress -f "$G" > "$TMP/out.txt" 2> "$TMP/err.txt"
check "rate 0.5 runs" "[ \$? -eq 0 ] && [ -s '$TMP/out.txt' ]"
in_size=$(wc -c < "$G"); out_size=$(wc -c < "$TMP/out.txt")
check "output shorter" "[ $out_size -lt $in_size ] && [ $out_size -gt $((in_size / 5)) ]"

# JSON out: LLMLingua's field names, budget met
"$T" compress --rate 0.4 --unit token --json --no-progress < "$TMP/short.txt" > "$TMP/out.json" 2>/dev/null
check "json fields" "python3 -c 'import json,sys; d=json.load(open(\"$TMP/out.json\")); \
  assert all(k in d for k in (\"compressed_prompt\",\"origin_tokens\",\"compressed_tokens\",\"ratio\",\"rate\")); \
  assert d[\"compressed_tokens\"] <= d[\"target_tokens\"] == int(0.4 * d[\"origin_tokens\"]); \
  assert d[\"ratio\"].endswith(\"x\") and d[\"rate\"].endswith(\"%\")'"

# rate 1 returns the input unchanged
"$T" compress --rate 1 --no-progress < "$TMP/short.txt" > "$TMP/same.txt" 2>/dev/null
check "rate 1 unchanged" "cmp -s '$TMP/short.txt' '$TMP/same.txt'"

# JSON prompt in: instruction and question kept whole around the compressed contexts
python3 - "$TMP/short.txt" > "$TMP/prompt.json" <<'EOF'
import json, sys
t = open(sys.argv[1], encoding="utf-8", errors="replace").read()
print(json.dumps({"instruction": "Solve the problem.", "contexts": [t[:700], t[700:]],
                  "question": "Question: How many apples?"}))
EOF
"$T" compress --rate 0.5 --unit sentence --no-progress -f "$TMP/prompt.json" > "$TMP/p.txt" 2>/dev/null
check "json prompt" "head -c 20 '$TMP/p.txt' | grep -q '^Solve the problem.' && tail -c 26 '$TMP/p.txt' | grep -q 'Question: How many apples?'"

# HTML heatmap
"$T" compress --rate 0.5 --html "$TMP/h.html" --no-progress < "$TMP/short.txt" > /dev/null 2>&1
check "html" "grep -q '<!DOCTYPE html>' '$TMP/h.html' && grep -q 'line-through' '$TMP/h.html' && grep -q 'class=\"d\"' '$TMP/h.html'"

# compat mode: whitespace collapsed (no newline left)
"$T" compress --compat --unit phrase --rate 0.5 --no-progress < "$TMP/short.txt" > "$TMP/c.txt" 2>/dev/null
check "compat" "[ -s '$TMP/c.txt' ] && [ \$(tr -d -c '\n' < '$TMP/c.txt' | wc -c) -eq 0 ]"

# protected spans and a counting vocabulary
"$T" compress --rate 0.3 --keep-digits --force 'Question:' --json --count-vocab cl100k --no-progress \
    < "$TMP/short.txt" > "$TMP/k.json" 2>/dev/null
check "cl100k + protected" "python3 -c 'import json; d=json.load(open(\"$TMP/k.json\")); \
  assert \"origin_count_tokens\" in d and d[\"compressed_prompt\"].count(\"Question:\") >= 1; \
  assert sum(c.isdigit() for c in d[\"compressed_prompt\"]) == sum(c.isdigit() for c in open(\"$TMP/short.txt\").read())'"

# errors: bad rate (usage, 2), empty input (1), never a crash
"$T" compress --rate 1.5 < "$TMP/short.txt" > /dev/null 2>&1
check "bad rate" "[ \$? -eq 2 ]"
printf '' | "$T" compress --rate 0.5 > /dev/null 2> "$TMP/e.txt"
check "empty input" "[ \$? -eq 1 ] && grep -q 'empty prompt' '$TMP/e.txt'"
echo '{"question": "why?", "contexts": []}' | "$T" compress --rate 0.5 > /dev/null 2> "$TMP/e.txt"
check "question without contexts" "[ \$? -eq 1 ] && grep -q 'question' '$TMP/e.txt'"
"$T" compress --method llmlingua --rate 0.5 --no-progress < "$TMP/short.txt" > /dev/null 2>&1
check "llmlingua runs or says why" "[ \$? -le 1 ]"

# recover: response words copied from the compressed prompt map back to the original
printf 'Alice paid 12 dollars for three red apples at the market.' > "$TMP/o.txt"
printf 'Alice paid 12 dollars red apples market.' > "$TMP/c2.txt"
echo "Alice paid 12 dollars red apples" | "$T" recover -o "$TMP/o.txt" -c "$TMP/c2.txt" > "$TMP/r.txt" 2>&1
check "recover" "grep -q 'paid 12 dollars for three red apples' '$TMP/r.txt'"
echo "She said: paid 12 dollars red apples" | "$T" recover -o "$TMP/o.txt" -c "$TMP/c2.txt" > "$TMP/r.txt" 2>&1
check "recover mid-response (leading-space retry)" "grep -qx 'She said: paid 12 dollars for three red apples' '$TMP/r.txt'"

cli_finish
