#!/bin/sh
# ingest.sh - model2 device job, every corpus call (returns in seconds).
# Moves ./scratch/model2/shards/*.xz to /tmp/model2/corpus (sha256-checked against the
# corpus MANIFEST), installs the scripts in /tmp/model2/bin, and (re)starts the background
# "prep" stage: tokenizer training (train-00 + train-05), bytes/token on the held-out texts,
# then tokenization of each train shard as it arrives (-> /tmp/model2/work/tok/*.u16).
HERE=$(cd "$(dirname "$0")" && pwd)
D=${MODEL2_DIR:-/tmp/model2}
mkdir -p "$D/corpus" "$D/bin" "$D/work" "$D/log"
for f in "$HERE"/*.py "$HERE"/*.sh "$HERE"/*.json "$HERE"/SHA256SUMS "$HERE"/README.txt; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    cp "$f" "$D/bin/.$b.tmp" && mv -f "$D/bin/.$b.tmp" "$D/bin/$b"   # atomic: never edit a running script
done
for f in "$HERE"/shards/*.xz; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    want=$(grep " $b\$" "$HERE/SHA256SUMS" | cut -d' ' -f1)
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [ -n "$want" ] && [ "$want" != "$got" ]; then
        echo "model2 ingest: BAD CHECKSUM $b (left out)"; continue
    fi
    cp "$f" "$D/corpus/.$b.tmp" && mv -f "$D/corpus/.$b.tmp" "$D/corpus/$b" && rm -f "$f"
    echo "model2 ingest: $b ok"
done
pid=$(cat "$D/work/prep.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "model2 ingest: prep running (pid $pid)"
else
    cd "$D/work" && setsid nohup python3 "$D/bin/train_default.py" prep --corpus "$D/corpus" \
        --work "$D/work" >>"$D/log/prep.log" 2>&1 </dev/null &
    echo "model2 ingest: prep started"
fi
sleep 2
echo "model2 ingest: corpus has $(ls "$D/corpus" | grep -c 'xz$') files: $(ls "$D/corpus" | grep 'xz$' | sed 's/.txt.xz//' | tr '\n' ' ')"
sh "$D/bin/status.sh"
