#!/bin/sh
# collect.sh OUTDIR [K] - bring back the gist2 results: gist2-r.tgz (logs, generations) and
# the Q8_0 weights of gist K (default 1) as gist2-kK.0.npz / .1.npz: 3 files, each < 15 MiB.
# If the job is still running, waits for it at most 60 s, then packs what exists.
J=/tmp/gist2/job
O=${1:?usage: collect.sh OUTDIR [K]}
K=${2:-1}
mkdir -p "$O"
n=0
while [ ! -f $J/DONE ] && [ $n -lt 30 ]; do sleep 2; n=$((n + 1)); done
if [ -f $J/DONE ]; then cp $J/gist2-r.tgz "$O/"
else echo "gist2: not done after 60 s; packing partial results"; (cd $J && tar czf "$O/gist2-r.tgz" r run.log); fi
for i in 0 1; do [ -f $J/w/gist$K.$i.npz ] && cp $J/w/gist$K.$i.npz "$O/gist2-k$K.$i.npz"; done
ls -la "$O"
