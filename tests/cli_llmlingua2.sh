#!/bin/sh
# cli_llmlingua2.sh - terse convert hf of the LLMLingua-2 test encoders, terse compress
# --method llmlingua2 (default and --compat, output checked against the reference's), and
# hostile input: broken encoder checkpoints and tokenizers, a causal model given to
# llmlingua2, an encoder given to the other methods. Each failure must be a precise message
# and a non-zero status, never a crash. Prints "N passed, N failed" last.
. "$(dirname "$0")/cli_lib.sh"
cli_setup l2
SHARED=${TERSE_SHARED:-../shared}
G=tests/golden/llmlingua2

"$T" convert hf "$G/xlmr" "$TMP/x.gguf" 2> "$TMP/err"
check "convert xlm-r" "[ \$? -eq 0 ]"
"$T" convert hf "$G/bert" "$TMP/b.gguf" 2> "$TMP/err"
check "convert bert" "[ \$? -eq 0 ]"
"$T" info "$TMP/x.gguf" > "$TMP/out" 2> "$TMP/err"
check "info shows the encoder" "grep -q 'architecture  bert' $TMP/out && grep -q Unigram $TMP/out"

# default mode: a subsequence of the prompt's bytes, within the budget
printf 'What is the plan?\nWe meet on Thursday. Who brings the slides?\nSarah does.\n' > "$TMP/p.txt"
"$T" compress -m "$TMP/x.gguf" --method llmlingua2 --rate 0.5 -f "$TMP/p.txt" > "$TMP/out" 2> "$TMP/err"
check "llmlingua2 default" "[ \$? -eq 0 ] && [ -s $TMP/out ]"
check "force tokens kept" "[ \$(grep -c '?' $TMP/out) -ge 2 ]"
"$T" compress -m "$TMP/b.gguf" --method llmlingua2 --rate 0.5 --json -f "$TMP/p.txt" > "$TMP/out" 2> "$TMP/err"
check "llmlingua2 json" "grep -q '\"method\": *\"llmlingua2\"' $TMP/out"

# --compat against the reference (the GSM8K case of tests/golden/llmlingua2/*/ref.json)
if [ -f "$SHARED/vocab/tiktoken/cl100k_base.tiktoken" ]; then
  for m in x b; do
    dir=xlmr; [ $m = b ] && dir=bert
    TERSE_CL100K="$SHARED/vocab/tiktoken/cl100k_base.tiktoken" "$T" compress -m "$TMP/$m.gguf" \
      --method llmlingua2 --compat --rate 0.33 -f tests/data/llmlingua2/gsm8k.txt > "$TMP/out" 2> "$TMP/err"
    check "$dir --compat = reference" "python3 -c \"import json,sys; r=json.load(open('$G/$dir/ref.json'))[0]; sys.exit(open('$TMP/out', encoding='utf-8', newline='').read() != r['compressed_prompt'])\""
  done
fi

# hostile input
mkdir -p "$TMP/bad"
cp "$G/xlmr/"* "$TMP/bad/"
sed -i 's/"hidden_act": "gelu"/"hidden_act": "relu"/' "$TMP/bad/config.json"
expect "relu encoder" 1 "hidden_act 'relu'" "$T" convert hf "$TMP/bad" "$TMP/o.gguf"
cp "$G/xlmr/config.json" "$TMP/bad/"
sed -i 's/"hidden_size": 64/"hidden_size": 65/' "$TMP/bad/config.json"
expect "wrong hidden size" 1 "shape|multiple|bad shape" "$T" convert hf "$TMP/bad" "$TMP/o.gguf"
cp "$G/xlmr/config.json" "$TMP/bad/"
python3 -c "
import json; p='$TMP/bad/tokenizer.json'; t=json.load(open(p))
t['normalizer']['normalizers'][0]['precompiled_charsmap']='!!!notbase64'
json.dump(t, open(p,'w'))"
expect "bad charsmap" 1 "not base64" "$T" convert hf "$TMP/bad" "$TMP/o.gguf"
python3 -c "
import json,base64; p='$TMP/bad/tokenizer.json'; t=json.load(open(p))
t['normalizer']['normalizers'][0]['precompiled_charsmap']=base64.b64encode(b'\xff\xff\x00\x00abcd').decode()
json.dump(t, open(p,'w'))"
"$T" convert hf "$TMP/bad" "$TMP/o.gguf" 2> "$TMP/err"
expect "truncated charsmap" 1 "precompiled_charsmap" "$T" info "$TMP/o.gguf"
python3 -c "
import json; p='$TMP/bad/tokenizer.json'; t=json.load(open('$G/xlmr/tokenizer.json'))
t['normalizer']={'type':'NFD'}
json.dump(t, open(p,'w'))"
expect "unsupported normalizer" 1 "normalizer 'NFD'" "$T" convert hf "$TMP/bad" "$TMP/o.gguf"
head -c 5000 "$G/xlmr/model.safetensors" > "$TMP/bad/model.safetensors"
cp "$G/xlmr/tokenizer.json" "$TMP/bad/"
expect "truncated safetensors" 1 "safetensors|past|beyond|truncat" "$T" convert hf "$TMP/bad" "$TMP/o.gguf"
head -c 300000 "$TMP/x.gguf" > "$TMP/cut.gguf"
expect "truncated encoder gguf" 1 "loading model" "$T" compress -m "$TMP/cut.gguf" --method llmlingua2 -f "$TMP/p.txt"
expect "encoder with another method" 1 "encoder" "$T" compress -m "$TMP/x.gguf" --method llmlingua -f "$TMP/p.txt"
expect "encoder scoring" 1 "encoder|context" "$T" score "$TMP/x.gguf" -f "$TMP/p.txt"
"$T" random "$TMP/llama.gguf" > /dev/null 2>&1
expect "causal model with llmlingua2" 1 "not a token-classification encoder" "$T" compress -m "$TMP/llama.gguf" --method llmlingua2 -f "$TMP/p.txt"
expect "bad --token-to-word" 2 "first or mean" "$T" compress -m "$TMP/x.gguf" --method llmlingua2 --token-to-word max -f "$TMP/p.txt"
printf '\000\377\376 garbage \342\226 bytes?\n' > "$TMP/bin.txt"
"$T" compress -m "$TMP/x.gguf" --method llmlingua2 -f "$TMP/bin.txt" > "$TMP/out" 2> "$TMP/err"
check "invalid UTF-8 prompt" "! grep -q 'Sanitizer\|runtime error' $TMP/err"

cli_finish
