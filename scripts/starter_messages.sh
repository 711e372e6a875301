#!/usr/bin/env bash
# The starter league's message policies (ℜ-MACRL, Xue et al. 2022), added to LEAGUE with the
# project's own commands from fixed seeds; `arena reproduce s002 --quick` reads them.
# build_starter_league.sh runs it as its third lane; alone, it adds them to a copy of the
# shipped league. About 30 minutes on one core (pp7 ~14, tj_easy ~15).
#
#   scripts/starter_messages.sh LEAGUE [SCALE]
#   PART=pp7 scripts/starter_messages.sh LEAGUE   # only the pp7 policies (PART=tj_easy: the rest)
#
#   msg_random, msg_random2, msg_random_all   random same-norm messages from one / two / all
#                               agents
#   commnet.pp7                 CommNet team (one-step delayed mean of the others' messages)
#   msg_ppo.pp7, msg_ppo2.pp7   msg_ppo with one / two malicious agents, against commnet
#   msg_filter.pp7              the message filter around commnet, against msg_ppo and noise
#   msg_filter2.pp7             the same against msg_ppo2 and msg_random2
#   msg_ppo_vs_filter.pp7       msg_ppo retrained against the frozen msg_filter
#   rmacrl_pp7                  a two-iteration ℜ-MACRL run from msg_filter and msg_random
#   tarmac.tj_easy, msg_ppo.tj_easy, msg_filter.tj_easy   the same on the traffic junction
# Every msg_ppo is unpenalised (α = 0): with msg_ppo's default α = 0.1 the penalty outweighs
# what a 16-wide message can cost the team, and the attacker learns nothing (measured on pp7 by
# `arena reproduce s002`, README "The message surface").
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:?usage: scripts/starter_messages.sh LEAGUE [SCALE]}
SCALE=${2:-${SCALE:-1}}
A=".venv/bin/arena --quiet --device cpu --league $L"
steps() { python3 -c "print(max(200, int($1 * $SCALE)))"; }
# TarMAC's recipe on tj_easy (arena reproduce s002's TEAMS)
TJ_STEPS=$(steps 300000)
TJ_PARAMS=(--updates-per-collect 4)
export OMP_NUM_THREADS=1
PART=${PART:-all}
set -x
if [ "$PART" != tj_easy ]; then
$A add-policy msg_random --kind msg_random --param targets=1
$A add-policy msg_random2 --kind msg_random --param targets=2
$A add-policy msg_random_all --kind msg_random --param targets=all
$A train defender commnet.pp7 --algo commnet --scenario pp7 --steps "$(steps 400000)" --seed 11
$A train attacker msg_ppo.pp7 --algo msg_ppo --scenario pp7 --against commnet \
    --param alpha=0 --steps "$(steps 300000)" --seed 12
$A train defender msg_filter.pp7 --algo msg_filter --init commnet.pp7 \
    --against msg_ppo,msg_random --steps "$(steps 100000)" --seed 13
$A train attacker msg_ppo_vs_filter.pp7 --algo msg_ppo --scenario pp7 --against msg_filter \
    --param alpha=0 --steps "$(steps 300000)" --seed 14
$A train attacker msg_ppo2.pp7 --algo msg_ppo --scenario pp7 --against commnet \
    --param targets=2 --param alpha=0 --steps "$(steps 300000)" --seed 15
$A train defender msg_filter2.pp7 --algo msg_filter --init commnet.pp7 \
    --against msg_ppo2,msg_random2 --steps "$(steps 100000)" --seed 16
$A psro --surface message --scenario pp7 --name rmacrl_pp7 --defenders msg_filter \
    --attackers msg_random --iterations 2 --steps-per-oracle "$(steps 100000)" --episodes 64 \
    --param alpha=0 --seed 17
fi
[ "$PART" = pp7 ] && exit 0
$A train defender tarmac.tj_easy --algo tarmac --scenario tj_easy --steps "$TJ_STEPS" \
    "${TJ_PARAMS[@]}" --seed 18
$A train attacker msg_ppo.tj_easy --algo msg_ppo --scenario tj_easy --against tarmac \
    --param alpha=0 --steps "$(steps 300000)" --seed 19
$A train defender msg_filter.tj_easy --algo msg_filter --init tarmac.tj_easy \
    --against msg_ppo,msg_random --steps "$(steps 100000)" --seed 20
