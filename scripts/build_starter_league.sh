#!/usr/bin/env bash
# Builds the starter league shipped inside the package (store/data/starter.h5) with the
# project's own commands, from fixed seeds. About 35 minutes on 2 CPU cores (measured: 31.5
# before the message policies, which add about 25 to the pp7 lane): the 3m and pp7 lanes run
# side by side, one core each.
#
#   scripts/build_starter_league.sh            # writes store/data/starter.h5
#   SCALE=0.01 scripts/build_starter_league.sh /tmp/quick.h5   # a smoke build (90 s)
#
# Per scenario S (policies are named <name>.<S>; bare names resolve per scenario):
#   defenders  qmix, vdn (from scratch); qmix_fgsm (FGSM adversarial training), qmix_reg
#              (policy regularisation), qmix_atla and qmix_paad (alternating training with a
#              learned adversary), all fine-tuned from qmix
#   attackers  atla and pa_ad trained against qmix (transfer attacks for the other rows); random,
#              fgsm, pgd (parameter-only, shared); the adaptive attackers atla_vs_<team> and
#              pa_ad_vs_<team>, one per defender, trained by `arena matrix --adaptive`
#   then the full payoff table (32 episodes per cell) and one short PSRO run, whose
#   meta-strategies are stored as the mixtures psro_<S>_def and psro_<S>_att.
# Messages (scripts/starter_messages.sh): commnet.pp7, tarmac.tj_easy, their msg_ppo attackers
#   and filters, msg_random, and the ℜ-MACRL run rmacrl_pp7.
# Backdoors (scripts/starter_backdoors.sh): qmix.stag10, marnet.stag10 and trojdrl.stag10, the
#   defences as_delivered, finetune and prune, and the cells they make.
# The alternating robust teams keep one adversary across rounds (half the attacker budget per
# round); the regularised team trains under FGSM, as the paper's §IV-B does.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-store/data/starter.h5}
SCALE=${SCALE:-1}
LOGDIR=${LOGDIR:-build/starter}
mkdir -p "$LOGDIR" "$(dirname "$OUT")"
WORK="$LOGDIR/league.h5"
ARENA=".venv/bin/arena --quiet --device cpu --league $WORK"
steps() { python3 -c "print(max(200, int($1 * $SCALE)))"; }

[ -x .venv/bin/arena ] || make install
rm -rf "$WORK" "$WORK.journal" "$WORK.lock"
$ARENA init
$ARENA add-policy random --kind random --param eps=0.2
$ARENA add-policy fgsm --kind fgsm --param eps=0.2
$ARENA add-policy pgd --kind pgd --param eps=0.2 --param steps=10

lane() {  # lane SCENARIO CLEAN_STEPS FINETUNE_STEPS ATTACKER_STEPS
    local S=$1 CLEAN FT ATT
    CLEAN=$(steps "$2"); FT=$(steps "$3"); ATT=$(steps "$4")
    set -x
    $ARENA train defender "qmix.$S" --algo qmix --scenario "$S" --steps "$CLEAN" --seed 1
    $ARENA train defender "vdn.$S" --algo vdn --scenario "$S" --steps "$CLEAN" --seed 2
    $ARENA train defender "qmix_fgsm.$S" --scenario "$S" --init qmix --adv fgsm --eps 0.2 \
        --steps "$FT" --seed 3
    $ARENA train defender "qmix_reg.$S" --scenario "$S" --init qmix --reg policy --kappa 0.1 \
        --hinge 10 --steps "$FT" --seed 4
    $ARENA train attacker "atla.$S" --algo atla --scenario "$S" --against qmix --eps 0.2 \
        --steps "$ATT" --seed 5
    $ARENA train attacker "pa_ad.$S" --algo pa_ad --scenario "$S" --against qmix --eps 0.2 \
        --steps "$ATT" --seed 6
    $ARENA train defender "qmix_atla.$S" --scenario "$S" --init qmix --adv atla --eps 0.2 \
        --rounds 2 --attacker-steps "$(( ATT / 2 ))" --steps "$FT" --seed 7
    $ARENA train defender "qmix_paad.$S" --scenario "$S" --init qmix --adv pa_ad --eps 0.2 \
        --rounds 2 --attacker-steps "$(( ATT / 2 ))" --steps "$FT" --seed 8
    $ARENA matrix --scenario "$S" --episodes 32
    $ARENA psro --scenario "$S" --name "psro_$S" --defenders qmix,qmix_fgsm \
        --attackers none,fgsm,pa_ad --iterations 2 --attacker-oracle pa_ad \
        --defender-oracle mixture --steps-per-oracle "$(( FT / 2 ))" --episodes 32 --seed 9
    $ARENA matrix --scenario "$S" --episodes 32 --adaptive atla,pa_ad --adaptive-steps "$ATT" \
        --adaptive-eps 0.2 --seed 10
    set +x
}

# the backdoor and takeover policies (scripts/starter_backdoors.sh, starter_takeover.sh) follow
# 3m's lane on its core
{ lane 3m 800000 200000 100000 && SCALE="$SCALE" scripts/starter_backdoors.sh "$WORK" \
    && SCALE="$SCALE" scripts/starter_takeover.sh "$WORK"; } \
    > "$LOGDIR/3m.log" 2>&1 &
P3M=$!
# the message policies (scripts/starter_messages.sh) follow pp7's lane on its core
{ lane pp7 400000 150000 100000 && scripts/starter_messages.sh "$WORK" "$SCALE"; } \
    > "$LOGDIR/pp7.log" 2>&1 &
PPP=$!
status=0
wait $P3M || { echo "3m lane failed: see $LOGDIR/3m.log"; status=1; }
wait $PPP || { echo "pp7 lane failed: see $LOGDIR/pp7.log"; status=1; }
[ $status -eq 0 ] || exit $status

# The shipped league holds the policies and the PSRO runs but no match records: `arena demo`
# plays the table itself. The full league, matches included, stays in $WORK.
$ARENA ls > "$LOGDIR/ls.txt"
rm -f "$OUT"
.venv/bin/python -c "from store.starter import copy_policies_and_runs as c; import sys; c(sys.argv[1], sys.argv[2])" "$WORK" "$OUT"
echo "starter league written to $OUT ($(du -h "$OUT" | cut -f1))"
