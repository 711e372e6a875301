#!/usr/bin/env bash
# The trainings `arena reproduce s000` reads (MARNet backdoors), as two lanes of one core each.
# Every name it writes is the one the report looks up; an interrupted run is resumed by running
# it again (a policy already in the league is not trained twice).
#
#   scripts/s000_lanes.sh LEAGUE            # both lanes
#   LANE=qmix scripts/s000_lanes.sh LEAGUE  # one lane: qmix (stag10 QMIX, ablation), vdn
#                                           # (stag10 VDN, then 3m_marker) or ood (after qmix)
#
#   qmix.stag10, vdn.stag10       the clean experts (the normal models), 2.1M steps
#   {mtl,trojdrl,marnet}_{qmix,vdn}.s{0,1,2}   Table 1's backdoored teams, POISON steps each
#   abl_{ega,targeted,untargeted}_{mgr,max}.s0   Table 2's ablation on QMIX (the two
#                                 combinations that are recipes reuse marnet_qmix, trojdrl_qmix)
#   marnet_qmix_long.s0           MARNet with five times the poisoning budget
#   qmix.stag10_ood, marnet_ood.s{0,1,2}   LANE=ood: the out-of-distribution trigger, from
#                                 qmix.stag10 with zero weights on the trigger channel
#   qmix.3m_marker, {marnet,trojdrl}_3m.s{0,1,2}   the SMAC-style experiment (one poisoned
#                                 agent of three)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:?usage: scripts/s000_lanes.sh LEAGUE}
POISON=${POISON:-100000}
UPDATES=${UPDATES:-4}  # learner updates per collection of 8 episodes while poisoning
A="${ARENA:-.venv/bin/arena} --quiet --device cpu --league $L"
export OMP_NUM_THREADS=1
[ -f "$L" ] || $A init
have() { $A ls --json 2>/dev/null | grep -q "\"name\": \"$1\""; }
run() { local n=$1; shift; have "$n" || { echo "+ $n"; "$@"; }; }
expert() {  # expert ALGO SCENARIO STEPS SEED
    run "$1.$2" $A train defender "$1.$2" --algo "$1" --scenario "$2" --steps "$3" --seed "$4" \
        --no-test-attacks --test-every 100000
}
poison() {  # poison NAME ALGO EXPERT SCENARIO SEED [extra args]
    local n=$1 algo=$2 ex=$3 sc=$4 seed=$5; shift 5
    run "$n" $A train attacker "$n" --algo "$algo" --expert "$ex" --scenario "$sc" \
        --steps "$POISON" --seed "$seed" --param "updates_per_collect=$UPDATES" "$@"
}
lane_qmix() {
    expert qmix stag10 2100000 1
    for s in 0 1 2; do
        for r in marnet trojdrl mtl; do poison "${r}_qmix.s$s" $r qmix.stag10 stag10 $s; done
    done
    for s in ${ABL_SEEDS:-0}; do
        poison "abl_ega_max.s$s" marnet qmix.stag10 stag10 $s --param reward=max
        poison "abl_targeted_mgr.s$s" marnet qmix.stag10 stag10 $s --param action=targeted
        poison "abl_untargeted_mgr.s$s" marnet qmix.stag10 stag10 $s --param action=untargeted
        poison "abl_untargeted_max.s$s" marnet qmix.stag10 stag10 $s \
            --param action=untargeted --param reward=max
    done
    # does MARNet need a longer poisoning? five times the budget, one seed
    POISON=$((5 * POISON)) poison marnet_qmix_long.s0 marnet qmix.stag10 stag10 0
}
lane_vdn() {
    expert vdn stag10 2100000 2
    for s in 0 1 2; do
        for r in marnet trojdrl mtl; do poison "${r}_vdn.s$s" $r vdn.stag10 stag10 $s; done
    done
    expert qmix 3m_marker 800000 3
    for s in 0 1 2; do
        for r in marnet trojdrl; do
            poison "${r}_3m.s$s" $r qmix.3m_marker 3m_marker $s --poison-agents 1
        done
    done
}
lane_ood() {  # the out-of-distribution trigger, from the same QMIX expert widened
    have qmix.stag10_ood || .venv/bin/python - "$L" <<'PY'
import sys
from policies.backdoor.ood import widen_for_ood
from policies.build import base_provenance
from store import League
with League(sys.argv[1], "a") as lg:
    r = lg.get("qmix.stag10")
    config, weights = widen_for_ood(r.config, r.weights)
    lg.add_policy("qmix.stag10_ood", "defender", "qmix", "stag10_ood", config, weights,
                  base_provenance(parent=r.ref, widened_from=r.ref))
PY
    for s in 0 1 2; do poison "marnet_ood.s$s" marnet qmix.stag10_ood stag10_ood $s; done
}
case "${LANE:-both}" in
    qmix) lane_qmix ;;
    vdn) lane_vdn ;;
    ood) lane_ood ;;
    *) lane_qmix > "$L.qmix.log" 2>&1 & P1=$!
       lane_vdn > "$L.vdn.log" 2>&1 & P2=$!
       wait $P1; wait $P2 ;;
esac
