#!/bin/sh
# driver.sh DEADLINE_EPOCH - started by train.sh; do not run by hand.
D=${MODEL2_DIR:-/tmp/model2}
DL=$1
SIZES=${MODEL2_SIZES:-small,medium,large}
echo $$ > "$D/work/driver.pid"
echo "[$(date +%H:%M:%S)] driver: waiting for tokenization"
t0=$(date +%s)
while :; do   # until every train shard that has arrived (train-15 never used) is tokenized
    n=$(ls "$D/work/tok" 2>/dev/null | grep -c '\.u16$')
    pending=0
    for f in "$D"/corpus/train-*.txt.xz; do
        b=$(basename "$f" .txt.xz)
        [ -f "$f" ] && [ "$b" != train-15 ] && [ ! -f "$D/work/tok/$b.u16" ] && pending=$((pending + 1))
    done
    [ -f "$D/work/tokenizer.json" ] && [ "$pending" = 0 ] && [ "$n" -gt 0 ] && break
    if [ $(( $(date +%s) - t0 )) -gt 240 ]; then
        echo "[$(date +%H:%M:%S)] driver: WARNING going on with $n tokenized shards ($pending pending)"; break
    fi
    sleep 2
done
echo "[$(date +%H:%M:%S)] driver: $(ls "$D/work/tok" | grep -c '\.u16$') shards tokenized; training $SIZES until $(date -u -d @"$DL" +%H:%M:%S)"
pids=""
for s in $(echo "$SIZES" | tr ',' ' '); do
    python3 "$D/bin/train_default.py" train --size "$s" --corpus "$D/corpus" --work "$D/work" \
        --deadline "$DL" --peers "$SIZES" $MODEL2_TRAIN_ARGS >>"$D/log/train-$s.log" 2>&1 </dev/null &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; echo "[$(date +%H:%M:%S)] driver: process $p exit $?"; done
echo "[$(date +%H:%M:%S)] driver: all done"
touch "$D/work/ALL_DONE"
