#!/bin/sh
# start.sh - first device call of the gist2 job: copy this folder to /tmp/gist2/job, unpack
# the evaluation examples, start run.sh detached and return (about 5 s).
set -e
S=$(cd "$(dirname "$0")" && pwd)
J=/tmp/gist2/job
if [ -f $J/pid ] && kill -0 "$(cat $J/pid)" 2>/dev/null; then echo "gist2: already running"; exit 0; fi
rm -rf $J && mkdir -p $J/data && cp -r "$S"/. $J/
cd $J
tar xJf eval.tar.xz -C data
mv train_*.txt.xz data/
date +%s > t0
setsid nohup sh run.sh > run.log 2>&1 < /dev/null &
echo $! > pid
sleep 3
echo "gist2: started at $(date -u +%H:%M:%S) UTC (pid $(cat pid)); ends by itself within 520 s"
echo "gist2: then: sh $J/status.sh ; sh $J/collect.sh OUTDIR"
head -5 run.log
