#!/bin/sh
# collect.sh report OUTDIR        reports, logs, tokenizer, goldens of every size (1 small file)
# collect.sh SIZE OUTDIR PART      the SIZE export (HF folder + golden + logs) cut in 15 MiB
#                                  pieces: PART 1 = report + 2 pieces, PART k = 3 pieces
#                                  SIZE auto: the size the choice rule picks (speed.json)
D=${MODEL2_DIR:-/tmp/model2}
W=$D/work
WHAT=$1; OUT=$2; PART=${3:-1}
[ -n "$OUT" ] || { echo "usage: collect.sh report|SIZE OUTDIR [PART]"; exit 2; }
mkdir -p "$OUT" "$D/pack"
report() {
    cd "$W" || exit 1
    sha=""; for s in "$D"/pack/*.sha256; do [ -f "$s" ] && sha="$sha ../pack/$(basename "$s")"; done
    tar czf "$OUT/model2-report.tar.gz" --ignore-failed-read tokenizer.json tokenizer_stats.json \
        prep_status.txt */report.json */run.json */train_log.csv */status.txt */export/golden \
        ../log $sha 2>/dev/null
    echo "model2 collect: $(ls -l "$OUT/model2-report.tar.gz" | awk '{print $5}') bytes model2-report.tar.gz"
}
if [ "$WHAT" = report ]; then report; exit 0; fi
S=$WHAT
if [ "$S" = auto ]; then   # the size the rule fixed before training picks (speed.json)
    S=$(python3 "$D/bin/train_default.py" choose --work "$W" --speed "$D/bin/speed.json" 2>"$D/log/choose.log" | tail -n 1)
    cat "$D/log/choose.log"
    echo "model2 collect: auto -> $S"
fi
[ -d "$W/$S/export/model" ] || { echo "model2 collect: no export for $S"; exit 1; }
P=$D/pack/$S
if [ ! -f "$P/done" ]; then
    rm -rf "$P"; mkdir -p "$P"
    (cd "$W/$S" && tar cf - export) | split -b 15m -d -a 2 - "$P/model2-$S.tar.part-"
    cat "$P"/model2-$S.tar.part-* | sha256sum | cut -d' ' -f1 > "$D/pack/model2-$S.sha256"
    touch "$P/done"
fi
n=$(ls "$P" | grep -c part-)
parts=$(( (n + 1 + 2) / 3 ))
if [ "$PART" = 1 ]; then
    report
    first=0; count=2
else
    first=$(( 2 + (PART - 2) * 3 )); count=3
fi
i=0
for f in $(ls "$P" | grep part- | sort); do
    if [ $i -ge $first ] && [ $i -lt $(( first + count )) ]; then cp "$P/$f" "$OUT/"; echo "model2 collect: $f"; fi
    i=$((i + 1))
done
echo "model2 collect: $S part $PART of $parts ($n pieces; sha256 of the whole tar $(cat "$D/pack/model2-$S.sha256"))"
