#!/usr/bin/env bash
# The starter league's agent-surface policies (hijacked teammates, 3m), added to LEAGUE with
# the project's own commands from fixed seeds. build_starter_league.sh runs it after the 3m
# lane; alone, it adds them to a copy of the shipped league (about 3 min on one core).
#
#   scripts/starter_takeover.sh LEAGUE            # SCALE=0.01 for a smoke build
#
#   takeover_random             one teammate plays random available actions (any scenario)
#   takeover_ppo.3m, takeover_dev.3m   adversarial teammates trained against qmix.3m (seed 0,
#                               arena reproduce s004's budget, learning curve stored)
#   qmix_tk.3m                  qmix.3m retrained against a hijacked teammate (takeover_dev)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:?usage: scripts/starter_takeover.sh LEAGUE}
SCALE=${SCALE:-1}
A=".venv/bin/arena --quiet --device cpu --league $L"
steps() { python3 -c "print(max(200, int($1 * $SCALE)))"; }
export OMP_NUM_THREADS=1
set -x
$A add-policy takeover_random --kind takeover_random --param targets=1
for algo in takeover_ppo takeover_dev; do
    $A train attacker "$algo.3m" --algo "$algo" --against qmix.3m --scenario 3m \
        --steps "$(steps 50000)" --seed 0 --param targets=1
done
$A train defender qmix_tk.3m --algo qmix --scenario 3m --init qmix.3m --adv takeover \
    --takeover-algo takeover_dev --rounds 2 --attacker-steps "$(steps 25000)" \
    --steps "$(steps 100000)" --adv-fraction 0.5 --seed 0 --no-test-attacks
