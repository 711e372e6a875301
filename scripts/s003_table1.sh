#!/usr/bin/env bash
# Regenerates Table I of Guo et al. (2023) on all four maps (`arena reproduce s003`) and writes
# the combined report to docs/s003/. Two lanes side by side, one core each, one league per map
# (build/s003/<map>.h5), so a lane never waits for the other's writes; an interrupted run
# resumes where it stopped (every trained policy is stored at once). About 95 minutes on the
# 2-core CPU with the budgets below (measured: the lanes took 76 and 95 minutes).
#
#   scripts/s003_table1.sh                 # the four maps
#   STEPS=2000000 scripts/s003_table1.sh   # the paper's vanilla budget
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-1000000}          # vanilla QMIX (the paper: 2M)
FINETUNE=${FINETUNE:-250000}     # each robust model, fine-tuned from the vanilla one
OUT=${OUT:-build/s003}
mkdir -p "$OUT" docs/s003
[ -x .venv/bin/arena ] || make install

lane() {
    for m in "$@"; do
        [ -f "$OUT/$m.h5" ] || .venv/bin/arena --quiet --league "$OUT/$m.h5" init
        .venv/bin/arena --quiet --device cpu --league "$OUT/$m.h5" reproduce s003 --maps "$m" \
            --steps "$STEPS" --finetune-steps "$FINETUNE" --robust-attacker-steps 50000 \
            --attacker-steps 100000 --out "$OUT/out_$m" > "$OUT/$m.log" 2>&1
    done
}
OMP_NUM_THREADS=1 lane 2m_vs_1z 3m & A=$!
OMP_NUM_THREADS=1 lane 3s_vs_3z 2s3z & B=$!
wait $A && wait $B
.venv/bin/python scripts/s003_combine.py "$OUT"/out_2m_vs_1z "$OUT"/out_3m "$OUT"/out_3s_vs_3z \
    "$OUT"/out_2s3z --out docs/s003
