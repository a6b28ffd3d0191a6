#!/bin/sh
# cli_integrity.sh - issue 9's reproductions, as `terse compress` runs with the default model:
# the compressed prompt must still say what the original said.
#  1 valid UTF-8 from every method and mode (the GSM8K x sign), --json agrees with the text
#  2 line ends kept or dropped whole, words not glued across lines
#  3 no fused numbers or words ("32+114146", "10005", "195672", "resultssome")
#  4 tight budgets go to words, not to line ends and punctuation; the warning names the cause
#  5 LongLLMLingua question-aware by default, each setting a flag
#  6 no silent loss: keep at least one unit, with a warning
#  7 --protect: a PCRE2 engine error is an error
#  8 --compat --json --tokens / --html mark the kept tokens
# Prints "N passed, N failed" last. Uses $BUILD/terse (or $TERSE_BIN).
. "$(dirname "$0")/cli_lib.sh"
cli_setup integrity
D=$(dirname "$0")/golden/compat/in
if [ -n "$TERSE_MODEL" ]; then M=$TERSE_MODEL; else M=$(dirname "$T")/../models/terse-default.gguf; fi
if [ ! -f "$M" ] && [ ! -f models/terse-default.gguf ]; then cli_skip "no default model"; fi
C="$T compress --no-progress -t 2"
G=$D/gsm8k_b.txt # CRLF lines, "5 boxes × 6 highlighters/box = 30"

# python3 helpers: valid UTF-8; every letter run and digit run of the output is in the input
cat > "$TMP/words.py" <<'EOF'
import os, re, sys
src = open(sys.argv[1], "rb").read().decode("utf-8") + "\n\n" + " ".join(sys.argv[3:])
out = open(sys.argv[2], "rb").read().decode("utf-8")      # raises on invalid UTF-8
digits_in = set(re.findall(r"\d+", src))
for d in re.findall(r"\d+", out):
    if d not in digits_in: sys.exit("number %r is not in the input" % d)
# a letter run of the output is in the input; with PIECES=1 (token-level methods, which may drop
# a word's inner tokens: "highlighters" -> "high" + "ighters") it may instead be made of pieces
# of one input word in order, but never of pieces of two words ("results (some" -> "resultssome")
words_in = set(re.findall(r"[^\W\d_]+", src))
def pieces_of_one(w):
    def sub(a, b):
        it = iter(b)
        return all(ch in it for ch in a)
    return any(len(x) > len(w) and sub(w, x) for x in words_in)
pieces = os.environ.get("PIECES") == "1"
for w in re.findall(r"[^\W\d_]+", out):
    if w not in src and not (pieces and pieces_of_one(w)):
        sys.exit("word %r is not in the input (glued?)" % w)
if out.replace("\r\n", "").count("\r") or out.replace("\r\n", "").count("\n") and "\r\n" in src and "\n" not in src.replace("\r\n", ""):
    sys.exit("a line end split")
EOF

# 1 + 2 + 3: every method, default and compat: valid UTF-8; default mode: whole lines, words, numbers
for m in "--unit token" "--unit phrase" "--method llmlingua" "--method longllmlingua --question Question:_How_many_highlighters?"; do
    q=$(echo "$m" | sed -n 's/.*--question //p')
    for mode in "" "--compat"; do
        # shellcheck disable=SC2086
        $C $m $mode --rate 0.4 -f "$G" > "$TMP/o.txt" 2>/dev/null
        check "$m $mode: valid UTF-8" "python3 -c 'open(\"$TMP/o.txt\",\"rb\").read().decode(\"utf-8\")'"
        # shellcheck disable=SC2086
        $C $m $mode --rate 0.4 --json -f "$G" > "$TMP/o.json" 2>/dev/null
        check "$m $mode: --json equals the text" "python3 -c 'import json; assert json.load(open(\"$TMP/o.json\"))[\"compressed_prompt\"].encode() == open(\"$TMP/o.txt\",\"rb\").read()'"
        if [ -z "$mode" ]; then
            pieces=1; [ "$m" = "--unit phrase" ] && pieces=0
            check "$m: lines, words and numbers whole" "PIECES=$pieces python3 '$TMP/words.py' '$G' '$TMP/o.txt' '$q'"
        fi
    done
done
# the x sign of the GSM8K prompt: whole in default mode
$C --method llmlingua --rate 0.5 -f "$G" > "$TMP/o.txt" 2>/dev/null
check "llmlingua: the x sign whole or absent" "python3 -c 'd=open(\"$TMP/o.txt\",\"rb\").read(); assert d.count(b\"\\xc3\") == d.count(b\"\\xc3\\x97\") + d.count(b\"\\xc3\\xa9\")'"

# 3: the issue's fused examples, at several rates and methods
printf 'Check: 32+114=146 and then 1000/5 = 200 apples. Events in 1956 and 1972 were noted. The search results (some of them) were irrelevant.\nDocument two mentions safety.\nQuestion: which years?\n' > "$TMP/f.txt"
for m in "--unit token" "--unit phrase" "--method llmlingua"; do
    for r in 0.3 0.5 0.7; do
        # shellcheck disable=SC2086
        $C $m --rate $r -f "$TMP/f.txt" > "$TMP/o.txt" 2>/dev/null
        check "$m rate $r: nothing fused" "python3 '$TMP/words.py' '$TMP/f.txt' '$TMP/o.txt' && ! grep -qE '32\\+114146|10005|195672|resultssome|irreDocument|safetyQuestion' '$TMP/o.txt'"
    done
done

# 4: tight budgets: words first; the KV style prompt keeps keys and values, not only quotes
$C --target 15 -f "$G" > "$TMP/o.txt" 2>/dev/null
check "target 15: words, not line ends" "python3 -c 'd=open(\"$TMP/o.txt\").read(); assert sum(c.isalpha() for c in d) > 20 and d.count(\"\\n\") < 6, repr(d)'"
python3 -c '
import random
r = random.Random(4)
h = lambda: "%04x-%04x" % (r.getrandbits(16), r.getrandbits(16))
print("Key-value pairs: " + ", ".join("\"%s\": \"%s\"" % (h(), h()) for _ in range(40)))' > "$TMP/kv.txt"
for m in "--unit phrase" "--unit token" "--method llmlingua"; do
    # shellcheck disable=SC2086
    $C $m --target 20 -f "$TMP/kv.txt" > "$TMP/o.txt" 2>/dev/null
    check "kv $m target 20: keys and values, not only punctuation" "python3 -c 'd=open(\"$TMP/o.txt\").read(); s=[c for c in d if not c.isspace()]; assert sum(c.isalnum() for c in s) >= len(s) / 2, repr(d)'"
done
$C --target 5 --question "Question: how many highlighters did Sam take home from the boxes he bought?" -f "$G" > "$TMP/o.txt" 2> "$TMP/e.txt"
check "over budget: the warning names the question" "grep -q 'question' '$TMP/e.txt' && grep -q 'target 5' '$TMP/e.txt'"

# 5: LongLLMLingua: question-aware by default, each setting a flag
Q="Question: How many highlighters did Sam take home?"
$C --method llmlingua --question "$Q" --rate 0.4 -f "$G" > "$TMP/l.txt" 2>/dev/null
$C --method longllmlingua --question "$Q" --rate 0.4 -f "$G" > "$TMP/ll.txt" 2>/dev/null
check "longllmlingua differs from llmlingua on one context" "! cmp -s '$TMP/l.txt' '$TMP/ll.txt'"
$C --method longllmlingua --question "$Q" --rate 0.4 --no-contrastive --reorder original --dynamic-ratio 0 -f "$G" > "$TMP/ll0.txt" 2>/dev/null
check "longllmlingua with the paper's settings off = llmlingua" "cmp -s '$TMP/l.txt' '$TMP/ll0.txt'"
$C --method longllmlingua --question "$Q" --rate 0.4 --condition after --contrastive --reorder sort --dynamic-ratio 0.3 --context-budget +100 -f "$G" > "$TMP/ll1.txt" 2>/dev/null
check "the paper's settings spelt out = the default" "cmp -s '$TMP/ll.txt' '$TMP/ll1.txt'"
$C --reorder sort < "$G" > /dev/null 2>&1
check "LLMLingua flags refused for selective" "[ \$? -eq 2 ]"
$C --method llmlingua --reorder sideways < "$G" > /dev/null 2>&1
check "bad --reorder refused" "[ \$? -eq 2 ]"
$C --method llmlingua --dynamic-ratio 2 < "$G" > /dev/null 2>&1
check "bad --dynamic-ratio refused" "[ \$? -eq 2 ]"

# 6: no silent loss
printf 'Hello world' | $C > "$TMP/o.txt" 2> "$TMP/e.txt"
check "'Hello world': kept, with a warning" "[ \$? -eq 0 ] && [ \"\$(cat '$TMP/o.txt')\" = 'Hello world' ] && grep -q 'at least one unit' '$TMP/e.txt'"
printf 'The committee approved the new budget for the coming year.' | $C --unit sentence --rate 0.5 > "$TMP/o.txt" 2>/dev/null
check "one sentence at sentence level, rate 0.5: kept" "[ -s '$TMP/o.txt' ]"
python3 -c 'print("".join("abcdefghijklmnopqrstuvwxyz"[(i * 7) % 26] for i in range(3000)), end="")' > "$TMP/w.txt"
$C --rate 0.5 -f "$TMP/w.txt" > "$TMP/o.txt" 2> "$TMP/e.txt"
check "one long word: not silently cut to nothing" "[ -s '$TMP/o.txt' ] && { [ \$(wc -c < '$TMP/o.txt') -gt 1000 ] || grep -q warning '$TMP/e.txt'; }"

# 7: PCRE2 engine errors are errors
printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaab and more words here.' | $C --protect '(*LIMIT_MATCH=50)(a+)+$' > /dev/null 2> "$TMP/e.txt"
check "--protect match limit: an error" "[ \$? -eq 1 ] && grep -q 'match limit' '$TMP/e.txt'"

# 8: compat per-token detail
for m in "--method llmlingua" "--unit token"; do
    # shellcheck disable=SC2086
    $C --compat $m --rate 0.5 --json --tokens -f "$D/gsm8k_a.txt" > "$TMP/t.json" 2>/dev/null
    check "compat $m --tokens: kept tokens are the output" "python3 -c '
import json; d = json.load(open(\"$TMP/t.json\")); t = d[\"tokens\"]
k = [x for x in t if x[\"kept\"]]
assert 0.2 * len(t) < len(k) < len(t), (len(k), len(t))
assert sum(x[\"score\"] is not None for x in k) > len(k) / 3
s = \"\".join(\"\".join(x[\"text\"].split()) for x in k)
assert \"\".join(d[\"compressed_prompt\"].split()) == s'"
done
$C --compat --method llmlingua --rate 0.5 --html "$TMP/h.html" -f "$D/gsm8k_a.txt" > /dev/null 2>&1
check "compat --html: kept tokens not struck through" "python3 -c 'h=open(\"$TMP/h.html\").read(); n=h.count(\"<span class=\"); d=h.count(\"<span class=\\\"d\\\"\"); assert 0 < d < n * 0.8, (d, n)'"

cli_finish
