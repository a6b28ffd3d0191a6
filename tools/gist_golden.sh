#!/bin/sh
# gist_golden.sh - the reference numbers of tests/test_gist_train.c: the C trainer and
# tools/gist_train.py (PyTorch, float64) run the same 20 steps of the gist recipe on a small
# random llama model; the PyTorch side's losses and weights become tests/golden/gist/ref.txt.
# Needs torch (Debian: apt-get install python3-torch) and a built terse (make all).
# Usage: tools/gist_golden.sh   (from the repository root)
set -eu
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
G=tests/golden/gist
# the model of the C test: llama, V 300, ctx 256, C 32, 2 layers, 4 heads / 2 kv, ff 64, seed 3
build/terse random "$T/r.gguf" --arch llama --vocab 300 --ctx 256 --embd 32 --layers 2 \
    --heads 4 --kv-heads 2 --ff 64 --type f32 --seed 3
# the recipe (the C test uses the same values)
ARGS="--steps 20 --batch 2 --lr 1e-3 --min-lr 1e-4 --warmup 2 --wd 0.1 --clip 1"
build/terse finetune "$T/r.gguf" --gist 2 --data $G/data.jsonl -o "$T/c.gguf" --init "$T/init.gguf" \
    --examples $G/examples.txt --max-len 160 --seed 7 -t 2 $ARGS > "$T/c_losses.txt"
$PY tools/gist_train.py "$T/init.gguf" $G/examples.txt "$T/py.gguf" $ARGS --mask gist \
    --dtype float64 --golden $G/ref.txt
echo "C losses:"; cat "$T/c_losses.txt"
