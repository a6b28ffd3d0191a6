#!/bin/sh
# gist_post.sh RESULTS_DIR [K] - after the gist device job (tools/gist_job): unpack
# gist2-r.tgz, score every model's greedy outputs on Alpaca+ seen / unseen / human with
# build/gist_score (ROUGE-L, rouge-score semantics) over the items EVERY model finished (the
# same subset for each row), and splice the Q8_0 weights of gist K (default 1) into terse's
# gist-model layout: $W/gistK_f32.gguf. Prints a TSV: model split items rougeL
# prompt_tokens instruction_tokens, then the training and response-loss lines of each run.
# Needs the examples and init.gguf that tools/gist_prep.sh kept in $KEEP (/tmp/gist2/prep).
set -eu
R=${1:?usage: gist_post.sh RESULTS_DIR [K]}
K=${2:-1}
P=${KEEP:-/tmp/gist2/prep}
W=${WORK:-/tmp/gist2/post}
PY=${PYTHON:-/usr/bin/python3}
rm -rf "$W" && mkdir -p "$W"
tar xzf "$R/gist2-r.tgz" -C "$W"
G=$W/r
[ -x build/gist_score ] || cc -O2 -std=c11 -D_DEFAULT_SOURCE -Iinclude tools/gist_score.c build/libterse.a \
    -L/usr/lib/x86_64-linux-gnu/openblas-pthread/ -lopenblas -lpcre2-8 -ljansson -lstemmer -lm -lpthread \
    -o build/gist_score
ROWS="pos:k1 gist1:k1 gist2:k2 gist5:k5 gist10:k10 tfidf:tfidf neg:k1"
gen() { # model split -> its .gen file
  if [ "${2%%:*}" = tfidf ]; then echo "$G/tfidf.eval_tfidf_$1_k1.txt.gen"; else echo "$G/${2%%:*}.eval_$1_${2##*:}.txt.gen"; fi
}
exf() { if [ "${2##*:}" = tfidf ]; then echo "$P/eval_tfidf_$1_k1.txt"; else echo "$P/eval_$1_${2##*:}.txt"; fi; }
printf 'model\tsplit\titems\trougeL\tprompt_tokens\tinstruction_tokens\n'
for s in seen unseen human; do
  # the items every model finished
  only=$W/only_$s.txt
  first=1
  for r in $ROWS; do
    f=$(gen $s $r)
    [ -f "$f" ] || { echo "missing $f" >&2; continue; }
    cut -f1 "$f" | sort > "$W/idx"
    if [ $first = 1 ]; then cp "$W/idx" "$only"; first=0
    else comm -12 "$only" "$W/idx" > "$W/idx2"; mv "$W/idx2" "$only"; fi
  done
  [ -f "$only" ] || continue
  for r in $ROWS; do
    f=$(gen $s $r)
    [ -f "$f" ] || continue
    printf '%s\t%s\t%s\n' "${r%%:*}" $s "$(build/gist_score "$P/init.gguf" "$(exf $s $r)" "$f" "$only")"
  done
done
for r in $ROWS; do
  n=${r%%:*}
  [ -f "$G/$n.out" ] && grep -h "steps\|evalloss\|check-gen\|trained\|^eval" "$G/$n.out" | sed "s/^/$n: /"
done
if [ -f "$R/gist2-k$K.0.npz" ]; then
  $PY tools/gist_train.py --splice "$P/init.gguf" "$R/gist2-k$K.0.npz,$R/gist2-k$K.1.npz" "$W/gist${K}_f32.gguf"
  echo "spliced: $W/gist${K}_f32.gguf (ship: build/terse gist --q8 $W/gist${K}_f32.gguf models/terse-gist.gguf --gist $K)"
fi
