#!/bin/sh
# train.sh MINUTES - model2 device job, call 4 (returns at once).
# In the background: waits until every shard that has arrived is tokenized (at most 4 minutes; it
# does not wait for shards never sent), then trains the
# three sizes side by side until MINUTES after this command (step count fixed from measured
# throughput; checkpoints in /tmp/model2/work/SIZE), then evaluates and exports each
# (about 2 more minutes). Progress: sh /tmp/model2/bin/status.sh
MIN=${1:-9}
D=${MODEL2_DIR:-/tmp/model2}
mkdir -p "$D/log"
DL=$(( $(date +%s) + ${MIN%.*} * 60 ))
if [ -f "$D/work/driver.pid" ] && kill -0 "$(cat "$D/work/driver.pid")" 2>/dev/null; then
    echo "model2 train: already running"; exit 0
fi
setsid nohup sh "$D/bin/driver.sh" "$DL" >>"$D/log/driver.log" 2>&1 </dev/null &
echo "model2 train: started, training ends $(date -u -d @"$DL" +%H:%M:%S) UTC, then eval+export (~2 min)"
