#!/bin/sh
# cpu_test.sh CORPUS_DIR - rehearse the model2 device job here on CPU with tiny settings:
# four "calls" (ingest.sh with that call's shards), train.sh, status.sh, collect.sh.
# Needs /usr/bin/python3 with torch; without `tokenizers` a byte tokenizer stands in.
set -e
C=${1:?corpus dir with the .txt.xz files (small ones for a test)}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/model2-cpu-test.XXXXXX)
export MODEL2_DIR=$T/dev TERSE_FAKE_TOKENIZER=1 MODEL2_SIZES=tiny,tiny2
export MODEL2_TRAIN_ARGS="--batch 4 --no-compile --eval-bytes 30000 --eval-seconds 20 --warmup 12 --measure-from 4 --measure-steps 4 --ckpt-s 5"
mkdir -p "$T/bin"; ln -s /usr/bin/python3 "$T/bin/python3"; export PATH="$T/bin:$PATH"
call() {  # call N FILES...: a fresh copy of the scratch folder with those shards
    n=$1; shift
    rm -rf "$T/repo"; mkdir -p "$T/repo/scratch/model2/shards"
    cp "$HERE"/*.sh "$HERE"/README.txt "$HERE/../train_default.py" "$T/repo/scratch/model2/"
    (cd "$C" && sha256sum *.xz) > "$T/repo/scratch/model2/SHA256SUMS"
    echo '{"sizes": {"tiny": {"slowdown": 1.0, "type": "q8_0", "quant_cost": 0.0},
           "tiny2": {"slowdown": 1.5, "type": "q6_k", "quant_cost": 0.002}}}' > "$T/repo/scratch/model2/speed.json"
    for f in "$@"; do cp "$C/$f.txt.xz" "$T/repo/scratch/model2/shards/"; done
    echo "== call $n"
    (cd "$T/repo" && sh scratch/model2/ingest.sh)
}
call 1 train-00 train-05 val val-v2 eval-wikitext2
sleep 5
call 2 train-01 train-02 train-03 train-06 train-07
call 3 train-04 train-08 train-09 train-10 train-11
call 4 train-12 train-13 train-14
(cd "$T/repo" && sh "$MODEL2_DIR/bin/train.sh" 3)
i=0
while [ ! -f "$MODEL2_DIR/work/ALL_DONE" ] && [ $i -lt 200 ]; do sleep 5; i=$((i + 1)); [ $((i % 6)) = 0 ] && sh "$MODEL2_DIR/bin/status.sh"; done
sh "$MODEL2_DIR/bin/status.sh"
mkdir -p "$T/out1" "$T/out2" "$T/outr"
sh "$MODEL2_DIR/bin/collect.sh" report "$T/outr"
sh "$MODEL2_DIR/bin/collect.sh" auto "$T/out1" 1
sh "$MODEL2_DIR/bin/collect.sh" tiny2 "$T/out2" 2
ls -l "$T/outr" "$T/out1" "$T/out2"
tail -n 30 "$MODEL2_DIR"/log/*.log
echo "cpu_test: results in $T"
