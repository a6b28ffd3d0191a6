#!/bin/sh
# bench_vs_llamacpp.sh - terse vs llama.cpp on the same GGUF files: full per-token scoring of T
# tokens (terse: bench_forward's terse_score; llama.cpp: llama-perplexity, one chunk of T with
# logits at every position), interleaved runs, medians. llama.cpp is not part of terse: build
# it yourself (cmake, Release, GGML_NATIVE) and point LLAMA_BIN at its bin/ folder.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin tools/bench_vs_llamacpp.sh MODEL TYPE T THREADS RUNS
#   MODEL: gpt2 | llama (bench_forward's random shapes; files cached in /tmp)
#   TYPE:  f32 | q8_0 | q6_k | q4_k_m
# llama.cpp runs with its defaults (F16 K/V cache, no flash attention), -c T -b T -ub T.
# On a loaded machine give OMP_WAIT_POLICY=PASSIVE (passed through): llama.cpp's OpenMP
# threads otherwise spin at every barrier and lose far more to other load than terse's do.
# terse's time is bench_forward's (after its untimed 16-token warm-up, as llama.cpp warms up).
# Prints one line per run and the medians (seconds per T tokens; tokens/s; ratio), then the
# best run of each (on a shared machine other load only ever adds time).
set -eu
model=$1 type=$2 T=$3 th=$4 runs=${5:-3}
B=${BUILD:-build}
: "${LLAMA_BIN:?set LLAMA_BIN to llama.cpp's build/bin}"
case $type in f32) id=0 ;; q8_0) id=8 ;; q6_k) id=14 ;; q4_k_m) id=1015 ;; *) echo "type?" >&2; exit 2 ;; esac
case $model in gpt2) label=gpt2-124m ;; llama) label=llama-0.44b ;; *) echo "model?" >&2; exit 2 ;; esac
file=/tmp/terse_bench_${label}_${id}.gguf
text=$(mktemp /tmp/terse_lcpp_text.XXXXXX)
python3 -c "
import random
random.seed(1)
w=['the','of','and','model','token','prompt','compression','speed','quant','layer']
print(' '.join(random.choice(w) for _ in range($T * 3)))" > "$text"
tt="" tl=""
for r in $(seq 1 "$runs"); do
    a=$("$B"/bench/bench_forward --model "$model" --type "$type" --T "$T" --threads "$th" --runs 1 |
        awk -v l="$label" '$1 == l { print $6 }')
    b=$(OMP_NUM_THREADS=$th "$LLAMA_BIN"/llama-perplexity -m "$file" -f "$text" -c "$T" -b "$T" \
        -ub "$T" --chunks 1 -t "$th" -tb "$th" \
        --override-kv tokenizer.ggml.pre=str:gpt-2 2>&1 |
        sed -n 's/.*prompt eval time = *\([0-9.]*\) ms.*/\1/p' | awk '{ printf "%.3f", $1 / 1000 }')
    echo "run $r: terse ${a}s  llama.cpp ${b}s  load $(cut -d' ' -f1 /proc/loadavg)"
    tt="$tt $a" tl="$tl $b"
done
rm -f "$text"
med() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mt=$(med $tt) ml=$(med $tl)
least() { echo "$@" | tr ' ' '\n' | grep . | sort -g | head -1; }
echo "$model $type T=$T threads=$th: median terse ${mt}s ($(echo "$T $mt" | awk '{ printf "%.1f", $1 / $2 }') tok/s)," \
     "llama.cpp ${ml}s ($(echo "$T $ml" | awk '{ printf "%.1f", $1 / $2 }') tok/s), terse/llama.cpp speed" \
     "$(echo "$mt $ml" | awk '{ printf "%.2fx", $2 / $1 }'); best runs: terse $(least $tt)s," \
     "llama.cpp $(least $tl)s ($(echo "$(least $tt) $(least $tl)" | awk '{ printf "%.2fx", $2 / $1 }'))"
