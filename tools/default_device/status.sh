#!/bin/sh
# status.sh - one line per stage/size (step, loss, tokens/s, ETA).
D=${MODEL2_DIR:-/tmp/model2}
cat "$D/work/prep_status.txt" 2>/dev/null || echo "prep: not started"
[ -f "$D/work/tokenizer_stats.json" ] && python3 -c "import json;d=json.load(open('$D/work/tokenizer_stats.json'));print('tokenizer bytes/token: '+', '.join('%s %.3f'%(k,v['bytes_per_token']) for k,v in d.items()))"
for f in "$D"/work/*/status.txt; do [ -f "$f" ] && cat "$f"; done
tail -n 2 "$D/log/driver.log" 2>/dev/null
for f in "$D"/log/train-*.log; do [ -f "$f" ] && grep -E "WARN|Error|error|Traceback|steps/s" "$f" | tail -n 3; done
[ -f "$D/work/ALL_DONE" ] && echo "model2: ALL_DONE"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader | sed 's/^/gpu: /'
exit 0
