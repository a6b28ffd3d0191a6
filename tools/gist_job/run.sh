#!/bin/sh
# run.sh - the whole gist2 job (start.sh starts it detached), every stage bounded by time:
#   7 trainings side by side (gist K = 1, 2, 5, 10; positive and negative control; the TF-IDF
#   baseline: the positive control's recipe on prompts whose instruction is its TF-IDF
#   keyword), each to 1,500 steps or what fits before T0+TRAIN_S; then each evaluates
#   (response loss, greedy outputs on Alpaca+ seen / unseen / human) until T0+EVAL_S;
#   anything still running at T0+KILL_S is stopped; r/ is packed.
J=/tmp/gist2/job
cd $J
T0=$(cat t0)
TRAIN_END=$((T0 + ${TRAIN_S:-300}))
EVAL_END=$((T0 + ${EVAL_S:-465}))
KILL_AT=$((T0 + ${KILL_S:-495}))
mkdir -p r w
rm -f pids DONE
nvidia-smi > r/gpu.txt 2>&1
for spec in "gist1 k1 gist" "gist2 k2 gist" "gist5 k5 gist" "gist10 k10 gist" "pos k1 pos" "neg k1 neg" \
            "tfidf tfidf pos"; do
  set -- $spec
  [ -n "${ONLY:-}" ] && ! echo " $ONLY " | grep -q " $1 " && continue     # local tests
  EV="data/eval_seen_$2.txt data/eval_unseen_$2.txt data/eval_human_$2.txt"
  [ $1 = tfidf ] && EV="data/eval_tfidf_seen_k1.txt data/eval_tfidf_unseen_k1.txt data/eval_tfidf_human_k1.txt"
  SAVE=--no-save
  case $1 in gist*) SAVE="--save-q8 2";; esac
  PYTHONUNBUFFERED=1 ${PY:-python3} gist_train.py terse-default.gguf data/train_$2.txt.xz w/$1 \
    --mask $3 --steps ${STEPS:-1500} --batch 16 --lr 3e-4 --min-lr 3e-5 --warmup 40 --clip 1 \
    --device ${DEVICE:-cuda} --mem-fraction 0.055 --tokens 32768 --deadline $TRAIN_END --eval-deadline $EVAL_END \
    --log r/$1.tsv $SAVE --eval-dir r --eval $EV --eval-loss --check-gen 8 --max-new ${MAXNEW:-128} \
    > r/$1.out 2>&1 &
  echo $! >> pids
done
echo "run: 7 trainings started at +$(( $(date +%s) - T0 ))s; train until +${TRAIN_S:-300}s, eval until +${EVAL_S:-465}s"
while :; do
  alive=0
  for p in $(cat pids); do kill -0 $p 2>/dev/null && alive=$((alive + 1)); done
  [ $alive = 0 ] && break
  if [ $(date +%s) -ge $KILL_AT ]; then
    echo "run: +$(( $(date +%s) - T0 ))s: stopping $alive still running"
    for p in $(cat pids); do kill $p 2>/dev/null; done
    sleep 2
    break
  fi
  sleep 2
done
nvidia-smi --query-gpu=memory.used,memory.total --format=csv >> r/gpu.txt 2>&1
cp run.log r/ 2>/dev/null
tar czf gist2-r.tgz r
touch DONE
echo "run: done at +$(( $(date +%s) - T0 ))s; $(ls w | wc -l) weight parts; $(du -h gist2-r.tgz | cut -f1) results"
