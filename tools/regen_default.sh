#!/bin/sh
# regen_default.sh RESULTS SIZE TYPE [STAGES] - install a newly trained default model and
# regenerate everything that pins the default model's numbers or token ids (issue 15).
#
# RESULTS: the folder with what tools/default_device/collect.sh brought back from the device
#   (model2-report.tar.gz and model2-SIZE.tar.part-NN); SIZE: small | medium | large;
#   TYPE: the shipped weight type for `terse convert --type` (q8_0, q6_k, q5_k, q4_k, ...).
# RUN (default: RESULTS' folder name, e.g. run3): the device run's id, which names its files
#   in models/runs/ (RUN-SIZE.json, RUN-SIZE_train_log.csv, RUN-tokenizer_stats.json), so a
#   later run of the same size adds files rather than overwriting these.
# STAGES (default: all, in this order; give a comma list to redo some):
#   unpack   reports of every size -> models/runs/RUN-*; the SIZE export -> $WORK/export
#   convert  models/terse-default.gguf (must stay under 50,000,000 bytes)
#   golden   tests/golden/default/{text.txt,ids.txt,logprobs_f16.txt} from the export,
#            logprobs_gguf.txt from tools/ref_gguf.py (float64, the shipped dequantised weights),
#            model.txt (shape; F16 bounds = twice what test_default_model measures)
#   card     models/{recipe.json,train_log.csv,eval_pytorch.json,loss_curve.svg}
#   bpb      models/eval_terse.json: `terse bpb` on the first 250,000 bytes of val, val-v2 and
#            WikiText-2 (the device measured PyTorch, F16, on the same prefixes), and on 20,000
#            bytes against a float64 PyTorch forward on the same weights (tools/ref_bpb.py)
#   pins     tests/golden/compat/*.out (TERSE_PIN_GEN=1 tests/cli_compat_pinned.sh)
#   keep     models/keep_stats.md (what each method keeps, tools/keep_stats.py)
#   speed    models/speed.txt: the compression workload, new vs old (tools/speed_shapes.sh;
#            the old model is called previous-default there, not by its path in $WORK)
#   eval     docs/eval corpus experiment rerun (sh docs/eval/run.sh corpus)
# Run from the repository root after `make all`. WORK (default /tmp/regen_default.$USER) keeps
# the unpacked export between stages. The old model is kept as $WORK/old.gguf for `speed`.
set -e
R=${1:?results folder}; S=${2:?size}; TY=${3:?type}
RUN=${RUN:-$(basename "$(cd "$R" && pwd)")}
STAGES=${4:-unpack,convert,golden,card,bpb,pins,keep,speed,eval}
T=${TERSE:-build/terse}
PY=${PYTHON:-/usr/bin/python3}
SH=${SHARED:-../shared}
WORK=${WORK:-/tmp/regen_default.$(id -un)}
G=tests/golden/default
mkdir -p "$WORK"
has() { case ",$STAGES," in *",$1,"*) return 0;; esac; return 1; }
say() { echo "regen_default: $*"; }

if has unpack; then
    rm -rf "$WORK/report" "$WORK/export"; mkdir -p "$WORK/report" models/runs
    tar xzf "$R/model2-report.tar.gz" -C "$WORK/report"
    cat "$R"/model2-"$S".tar.part-* > "$WORK/export.tar"
    want=$(cat "$WORK/report/pack/model2-$S.sha256" 2>/dev/null || true)
    got=$(sha256sum "$WORK/export.tar" | cut -d' ' -f1)
    [ -z "$want" ] || [ "$want" = "$got" ] || { say "sha256 of the reassembled tar differs"; exit 1; }
    tar xf "$WORK/export.tar" -C "$WORK"
    for d in "$WORK"/report/*/; do
        n=$(basename "$d")
        [ -f "$d/report.json" ] || continue
        cp "$d/report.json" "models/runs/$RUN-$n.json"
        cp "$d/train_log.csv" "models/runs/$RUN-${n}_train_log.csv"
    done
    cp "$WORK/report/tokenizer_stats.json" "models/runs/$RUN-tokenizer_stats.json" 2>/dev/null || true
    [ -f models/terse-default.gguf ] && [ ! -f "$WORK/old.gguf" ] && cp models/terse-default.gguf "$WORK/old.gguf"
    say "unpacked $S ($(du -sh "$WORK/export" | cut -f1)); reports as models/runs/$RUN-*"
fi

if has convert; then
    "$T" convert hf "$WORK/export/model" models/terse-default.gguf --type "$TY"
    b=$(wc -c < models/terse-default.gguf)
    [ "$b" -lt 50000000 ] || { say "models/terse-default.gguf is $b bytes: over 50 MB"; exit 1; }
    say "models/terse-default.gguf: $b bytes, $TY"
fi

if has golden; then
    cp "$WORK/export/golden/text.txt" "$WORK/export/golden/ids.txt" "$G/"
    cp "$WORK/export/golden/logprobs.txt" "$G/logprobs_f16.txt"
    "$PY" tools/ref_gguf.py models/terse-default.gguf "$G/ids.txt" "$G/logprobs_gguf.txt"
    info=$("$T" info models/terse-default.gguf)
    params=$(echo "$info" | awk '/^parameters/ {print $2}')
    vocab=$(echo "$info" | awk '/^vocab/ {print $2}')
    ctx=$(echo "$info" | awk '/^context/ {print $2}')
    printf 'vocab %s\nparams %s\nctx %s\ntype %s\nf16_max 10\nf16_mean 1\n' "$vocab" "$params" "$ctx" "$TY" > "$G/model.txt"
    make -s build/tests/test_default_model
    out=$(build/tests/test_default_model)
    line=$(echo "$out" | grep "F16 export")
    mx=$(echo "$line" | sed 's/.*max |dlogp| \([0-9.e+-]*\).*/\1/')
    mn=$(echo "$line" | sed 's/.*mean \([0-9.e+-]*\) over.*/\1/')
    "$PY" -c "
import math, sys
up = lambda v: float('%.2g' % (2 * float(v) * 1.0001))
open('$G/model.txt', 'w').write('vocab $vocab\nparams $params\nctx $ctx\ntype $TY\nf16_max %g\nf16_mean %g\n' % (up('$mx'), up('$mn')))"
    build/tests/test_default_model | tail -n 3
fi

if has card; then
    cp "$WORK/export/train_log.csv" models/train_log.csv
    "$PY" - "$WORK/export/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keep = ("size", "params", "config", "batch", "lr", "warmup", "steps", "done_steps", "truncated",
        "shards", "stream_tokens", "tokens_seen", "seed", "torch", "measured_steps_per_s",
        "fixed_at_step", "micro", "train_seconds_this_run")
json.dump({k: r[k] for k in keep if k in r}, open("models/recipe.json", "w"), indent=1)
json.dump(r["bpb"], open("models/eval_pytorch.json", "w"), indent=1)
PY
    "$PY" tools/plot_loss.py models/train_log.csv models/loss_curve.svg
    ls models/runs/*_train_log.csv >/dev/null 2>&1 && "$PY" tools/plot_loss.py --runs models/loss_curves.svg models/runs/*_train_log.csv
    say "model card data written (models/recipe.json, eval_pytorch.json, train_log.csv, SVGs)"
fi

if has bpb; then
    N=${PREFIX_BYTES:-250000}
    out=models/eval_terse.json
    echo "{" > "$out.tmp"
    sep=""
    for f in wikitext2_raw:eval-wikitext2 val:val val_v2:val-v2; do
        k=${f%%:*}; x=${f#*:}
        xz -dc "$SH/corpus/$x.txt.xz" > "$WORK/$x.txt"
        r=$("$T" bpb models/terse-default.gguf -t 2 --max-bytes "$N" -f "$WORK/$x.txt")
        echo "$k: $(echo "$r" | tr '\n' ' ')"
        printf '%s "%s": {%s}' "$sep" "$k" "$(echo "$r" | awk -F'\t' '{printf "%s\"%s\": %s", (NR>1?", ":""), $1, $2}')" >> "$out.tmp"
        sep=",
"
    done
    # the same numbers from a float64 PyTorch forward on the same (dequantised) weights
    head -c 20000 "$WORK/eval-wikitext2.txt" > "$WORK/wt20k.txt"
    a=$("$T" bpb models/terse-default.gguf -t 2 -f "$WORK/wt20k.txt" | awk -F'\t' '/^bits_per_byte/ {print $2}')
    b=$("$T" tokenize models/terse-default.gguf -f "$WORK/wt20k.txt" | "$PY" tools/ref_bpb.py models/terse-default.gguf 20000 | awk -F'\t' '/^bits_per_byte/ {print $2}')
    echo "first 20,000 bytes of WikiText-2: terse $a, float64 PyTorch on the same weights $b"
    printf ',\n "same_weights_wikitext2_20000_bytes": {"terse": %s, "pytorch_float64": %s}\n}\n' "$a" "$b" >> "$out.tmp"
    mv "$out.tmp" "$out"
    "$PY" -m json.tool "$out" > /dev/null
    say "wrote $out"
fi

if has pins; then
    TERSE_PIN_GEN=1 sh tests/cli_compat_pinned.sh | tail -n 2
    sh tests/cli_compat_pinned.sh | tail -n 1
fi

if has keep; then
    P="$SH/data/gsm8k/prompt_hardest.txt"
    for u in token phrase sentence; do
        "$T" compress -t 2 --rate 0.5 --unit $u --json --tokens -f "$P" > "$WORK/keep_$u.json"
    done
    "$T" compress -t 2 --rate 0.5 --method llmlingua --json --tokens -f "$P" > "$WORK/keep_ll.json"
    "$PY" tools/keep_stats.py "$WORK/keep_token.json" "$WORK/keep_phrase.json" \
        "$WORK/keep_sentence.json" "$WORK/keep_ll.json" > models/keep_stats.md
    cat models/keep_stats.md
fi

if has speed; then
    [ -f "$WORK/old.gguf" ] || { say "no $WORK/old.gguf to compare with"; exit 1; }
    SHARED="$SH" sh tools/speed_shapes.sh models/speed.txt "previous-default=$WORK/old.gguf" \
        models/terse-default.gguf
    grep -E "^==|A cpu|A wall|A/B" models/speed.txt
fi

if has eval; then
    SHARED="$SH" sh docs/eval/run.sh corpus
    say "docs/eval/corpus regenerated: update docs/eval/README.md's tables from it"
fi
say "done: $STAGES"
