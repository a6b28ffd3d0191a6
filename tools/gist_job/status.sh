#!/bin/sh
# status.sh - where the gist2 job stands (returns at once)
J=/tmp/gist2/job
[ -f $J/t0 ] || { echo "gist2: not started"; exit 0; }
echo "gist2: +$(( $(date +%s) - $(cat $J/t0) ))s since start; $([ -f $J/DONE ] && echo DONE || echo running)"
for f in $J/r/*.out; do [ -f "$f" ] && echo "$(basename $f .out): $(tail -1 $f)"; done
tail -2 $J/run.log
nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader 2>/dev/null
