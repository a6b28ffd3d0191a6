#!/bin/sh
# loadtest.sh - the load test of docs/serve.md: `terse serve` on loopback, driven from other
# processes (tools/loadtest.py and wrk) at 1, 8 and 64 clients on short prompts and on the GSM8K
# prompt; then more clients than the queue holds (503s expected); then, with SOAK=SECONDS, a
# soak at 8 clients with the server's RSS sampled. Every loop is bounded. Results: one JSON
# line per run in $OUT (default /tmp/terse-loadtest-<pid>).
#   usage: sh tools/loadtest.sh          (SOAK=600 sh tools/loadtest.sh for the 10-minute soak)
set -e
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/terse-loadtest-$$}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-0}
mkdir -p "$OUT"
PY=/usr/bin/python3
LT="$PY tools/loadtest.py"

start() {   # start NAME ARGS...: a server on a free port; sets PORT and SPID
  name=$1; shift
  $BUILD/terse serve --port 0 "$@" 2>"$OUT/$name.server.log" &
  SPID=$!
  i=0
  while [ $i -lt 600 ]; do
    PORT=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$OUT/$name.server.log")
    [ -n "$PORT" ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "server did not start"; cat "$OUT/$name.server.log"; exit 1
}
stop() { kill -TERM $SPID; wait $SPID; }

if [ -z "$SOAK_ONLY" ]; then
  start main --workers $WORKERS -t $THREADS --queue 64 --timeout 3600
  for c in 1 8 64; do
    n=$((400 / c)); [ $n -gt 50 ] && n=50
    $LT --port $PORT --prompt short --clients $c --requests $n --rss-pid $SPID | tee -a "$OUT/results.jsonl"
  done
  $LT --port $PORT --prompt gsm8k --clients 1 --requests 2 | tee -a "$OUT/results.jsonl"
  $LT --port $PORT --prompt gsm8k --clients 8 --requests 1 | tee -a "$OUT/results.jsonl"
  $LT --port $PORT --prompt gsm8k --clients 64 --requests 1 --rss-pid $SPID | tee -a "$OUT/results.jsonl"
  if command -v wrk >/dev/null; then
    printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' \
      "'{\"context\": \"The quick brown fox jumps over the lazy dog. It was a sunny day and everyone in the small town was happy about the weather, so they went to the park to have a picnic.\", \"rate\": 0.5}'" > "$OUT/post.lua"
    for c in 1 8 64; do
      echo "== wrk -c $c" | tee -a "$OUT/wrk.txt"
      t=2; [ $c -lt 2 ] && t=1
      wrk -t $t -c $c -d 10s --timeout 60s --latency -s "$OUT/post.lua" http://127.0.0.1:$PORT/v1/compress | tee -a "$OUT/wrk.txt"
    done
  fi
  curl -s http://127.0.0.1:$PORT/metrics > "$OUT/metrics.txt" || true
  stop
  # above the queue limit: 64 clients, queue 8 -> 503 + Retry-After for the overflow
  start small --workers $WORKERS -t $THREADS --queue 8 --timeout 3600
  $LT --port $PORT --prompt short --clients 64 --requests 4 | tee -a "$OUT/results.jsonl"
  stop
fi
if [ -n "$SOAK" ]; then
  start soak --workers $WORKERS -t $THREADS --queue 64 --timeout 3600
  $LT --port $PORT --prompt mixed --clients 8 --requests 1000000 --duration $SOAK --rss-pid $SPID --rss-every 10 \
    | tee -a "$OUT/soak.jsonl"
  stop
fi
echo "results in $OUT"
