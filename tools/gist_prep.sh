#!/bin/sh
# gist_prep.sh DIR - prepare the gist device job (issue 11) in DIR: the data as JSONL, the
# TF-IDF baseline's instructions (tools/gist_tfidf.py), the tokenised examples
# (terse finetune --examples), the base model, tools/gist_train.py + ref_gguf.py and the job
# scripts of tools/gist_job/ (README.txt there says how the device runs them).
#   training: ../shared/data/instruct alpaca_5000 + gpteacher + code_alpaca (21,060 items),
#             max 256 tokens, shuffled with seed 1; K = 1, 2, 5, 10, and the TF-IDF prompts (K = 1)
#   evaluation: Alpaca+ seen / unseen / human (1000 / 1000 / 252), max 2048 tokens (all fit),
#             seed 0: the same item order for every K and for the TF-IDF prompts
# Needs a built terse (make all) and python3. Usage: tools/gist_prep.sh /work/main/scratch/gist2
set -eu
O=${1:?usage: gist_prep.sh DIR}
PY=${PYTHON:-python3}
BASE=${BASE:-models/terse-default.gguf}
[ -f "$BASE" ] || BASE=/work/main/models/terse-default.gguf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$O"
for f in alpaca_5000 gpteacher code_alpaca; do xz -dc ../shared/data/instruct/$f.jsonl.xz; done > $T/train.jsonl
for s in seen unseen human; do
  $PY -c "import json,sys; [print(json.dumps(o, ensure_ascii=False)) for o in json.load(open(sys.argv[1]))]" \
      ../shared/data/alpaca_plus/alpaca_plus_validation_$s.json > $T/$s.jsonl
done
$PY tools/gist_tfidf.py $T/train.jsonl $T/train.jsonl $T/tfidf_train.jsonl \
    $T/seen.jsonl $T/tfidf_seen.jsonl $T/unseen.jsonl $T/tfidf_unseen.jsonl $T/human.jsonl $T/tfidf_human.jsonl
F="build/terse finetune"
$F "$BASE" --gist 1 --data $T/train.jsonl --init $T/init.gguf --examples $T/train_k1.txt --max-len 256 --seed 1 -t 1
for K in 2 5 10; do $F $T/init.gguf --gist $K --data $T/train.jsonl --examples $T/train_k$K.txt --max-len 256 --seed 1 -t 1; done
$F $T/init.gguf --gist 1 --data $T/tfidf_train.jsonl --examples $T/train_tfidf.txt --max-len 256 --seed 1 -t 1
mkdir -p $T/ev
for K in 1 2 5 10; do
  for s in seen unseen human; do
    $F $T/init.gguf --gist $K --data $T/$s.jsonl --examples $T/ev/eval_${s}_k$K.txt --max-len 2048 --seed 0 -t 1
  done
done
for s in seen unseen human; do
  $F $T/init.gguf --gist 1 --data $T/tfidf_$s.jsonl --examples $T/ev/eval_tfidf_${s}_k1.txt --max-len 2048 --seed 0 -t 1
done
for f in train_k1 train_k2 train_k5 train_k10 train_tfidf; do xz -9 -c $T/$f.txt > "$O/$f.txt.xz"; done
(cd $T/ev && tar cJf "$O/eval.tar.xz" *.txt)
cp "$BASE" "$O/terse-default.gguf"
cp tools/gist_train.py tools/ref_gguf.py tools/gist_job/* "$O/"
# kept here for scoring: the evaluation examples and terse's gist model (F32 layout)
mkdir -p "${KEEP:-/tmp/gist2/prep}"
cp $T/ev/*.txt $T/init.gguf "${KEEP:-/tmp/gist2/prep}/"
du -sh "$O"; ls -la "$O"
