#!/bin/sh
# speed_shapes.sh OUT.txt MODEL.gguf... - the compression workload's wall time for each model
# (GSM8K 8-shot prompt, `terse compress` selective/phrase and llmlingua at rate 0.5, 2 threads),
# medians of farm-bench, each paired with the first model given (the yardstick).
# Issue 15: run on random-weight models of the candidate shapes (tools/shape_model.py) before
# training, and on the trained models after.
set -e
OUT=${1:?out file}; shift
BASE=$1
P=${SHARED:-../shared}/data/gsm8k/prompt_hardest.txt
[ -f "$P" ] || { echo "speed_shapes: no $P (set SHARED)"; exit 1; }
for m in "$@"; do   # a model that cannot compress would be timed failing fast
    ./build/terse compress -m "$m" -t 2 -f "$P" > /dev/null || { echo "speed_shapes: $m fails"; exit 1; }
done
: > "$OUT"
for m in "$@"; do
    for meth in selective llmlingua; do
        echo "== $m $meth (vs $BASE)" | tee -a "$OUT"
        farm-bench -n ${RUNS:-5} --timeout 900 \
            --vs "./build/terse compress -m $BASE -t 2 --method $meth -f $P" -- \
            ./build/terse compress -m "$m" -t 2 --method "$meth" -f "$P" 2>&1 | tee -a "$OUT"
    done
done
