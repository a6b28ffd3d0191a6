#!/bin/sh
# speed_shapes.sh OUT.txt [NAME=]MODEL.gguf... - the compression workload's wall time for each
# model (GSM8K 8-shot prompt, `terse compress` selective/phrase and llmlingua at rate 0.5,
# 2 threads), medians of farm-bench, each paired with the first model given (the yardstick).
# NAME=MODEL: OUT.txt calls the model NAME (its "==" headers and commands), not by its path,
# so that a model in a temporary folder leaves no such path behind; a first line says which
# path each name stood for, without folders. tools/pareto.py looks models up by these names.
# Issue 15: run on random-weight models of the candidate shapes (tools/shape_model.py) before
# training, and on the trained models after.
set -e
OUT=${1:?out file}; shift
P=${SHARED:-../shared}/data/gsm8k/prompt_hardest.txt
[ -f "$P" ] || { echo "speed_shapes: no $P (set SHARED)"; exit 1; }
name() { case "$1" in *=*) echo "${1%%=*}";; *) echo "$1";; esac; }
path() { echo "${1#*=}"; }
quote() { printf '%s' "$1" | sed 's/[][\/.*^$&]/\\&/g'; }  # literal text for a sed s/// (both sides)
BASE=$(path "$1"); BASE_NAME=$(name "$1")
for a in "$@"; do   # a model that cannot compress would be timed failing fast
    m=$(path "$a")
    ./build/terse compress -m "$m" -t 2 -f "$P" > /dev/null || { echo "speed_shapes: $m fails"; exit 1; }
done
names=""
for a in "$@"; do [ "$(name "$a")" = "$(path "$a")" ] || names="$names $(name "$a") = $(basename "$(path "$a")");"; done
: > "$OUT"
[ -z "$names" ] || echo "# names:$names" >> "$OUT"
for a in "$@"; do
    m=$(path "$a"); n=$(name "$a")
    for meth in selective llmlingua; do
        echo "== $n $meth (vs $BASE_NAME)" | tee -a "$OUT"
        farm-bench -n ${RUNS:-5} --timeout 900 \
            --vs "./build/terse compress -m $BASE -t 2 --method $meth -f $P" -- \
            ./build/terse compress -m "$m" -t 2 --method "$meth" -f "$P" 2>&1 |
            sed "s/ -m $(quote "$m") / -m $(quote "$n") /; s/ -m $(quote "$BASE") / -m $(quote "$BASE_NAME") /" |
            tee -a "$OUT"
    done
done
