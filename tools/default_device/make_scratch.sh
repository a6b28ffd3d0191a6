#!/bin/sh
# make_scratch.sh DEST - lay out the model2 device folder (what the lead carries to the GPU):
# the device scripts, tools/train_default.py, SHA256SUMS and speed.json (the choice rule's
# CPU speeds); shards/ is filled per call.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:?destination folder}
mkdir -p "$DEST/shards"
cp "$HERE"/ingest.sh "$HERE"/train.sh "$HERE"/driver.sh "$HERE"/status.sh "$HERE"/collect.sh \
   "$HERE"/README.txt "$HERE"/SHA256SUMS "$HERE"/speed.json "$HERE/../train_default.py" "$DEST/"
echo "model2 scratch ready in $DEST"
