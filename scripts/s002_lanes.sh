#!/usr/bin/env bash
# `arena reproduce s002` on pp7 and pp7_p05, one lane (league, core) per scenario, for msg_ppo's
# default penalty α = 0.1 and for α = 0; the teams are trained once and shared by both.
# Reports land in docs/s002/<scenario>_alpha<α>/. Measured: 57 minutes per lane for α = 0.1
# (with other work on the machine), then about 15 for α = 0. Then TarMAC on tj_easy, α = 0,
# without Table 3 (39 minutes), and in two lanes NDQ on 1o_2m_scout (3 seeds) and TarMAC on
# tj_hard (seed 0 only: its team alone takes over an hour on one core).
#
#   scripts/s002_lanes.sh [OUTDIR]        # default build/s002r
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-build/s002r}
mkdir -p "$W" docs/s002
[ -x .venv/bin/arena ] || make install
export OMP_NUM_THREADS=1
lane() {
    local S=$1 L="$W/$1.h5"
    [ -f "$L" ] || .venv/bin/arena --quiet --league "$L" init
    for a in 0.1 0; do
        .venv/bin/arena --quiet --device cpu --league "$L" reproduce s002 --scenarios "$S" \
            --seeds 0,1,2 --alpha "$a" --out "docs/s002/${S}_alpha$a"
    done
}
single() {  # α = 0, no Table 3: scenario, seeds, league stem
    [ -f "$W/$3.h5" ] || .venv/bin/arena --quiet --league "$W/$3.h5" init
    .venv/bin/arena --quiet --device cpu --league "$W/$3.h5" reproduce s002 --scenarios "$1" \
        --seeds "$2" --alpha 0 --psro-iterations 0 --out "docs/s002/$1_alpha0" > "$W/$3.log" 2>&1
}
lane pp7 > "$W/pp7.log" 2>&1 &
P1=$!
lane pp7_p05 > "$W/pp7_p05.log" 2>&1 &
P2=$!
wait $P1 && wait $P2
single tj_easy 0,1,2 tj_easy
single 1o_2m_scout 0,1,2 scout &
P3=$!
single tj_hard 0 tj_hard &
P4=$!
wait $P3 && wait $P4
echo "reports: docs/s002/*/report.md"
