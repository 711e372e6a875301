#!/usr/bin/env bash
# The starter league's backdoor policies (MARNet, environment surface, stag10), added to LEAGUE
# with the project's own commands from fixed seeds. build_starter_league.sh runs it after its
# lanes; alone, it adds them to a copy of the shipped league.
#
#   scripts/starter_backdoors.sh LEAGUE           # trains everything (about 25 min, one core;
#                                                 # SCALE=0.01 for a smoke build)
#   scripts/starter_backdoors.sh LEAGUE SOURCE    # copies the expert and the seed-0 backdoors
#                                                 # of scripts/s000_lanes.sh's league SOURCE
#
#   qmix.stag10                  the clean expert (the normal model)
#   marnet.stag10, trojdrl.stag10   backdoored from it (trigger 25 % of the walls, 4 of 8
#                                agents poisoned), arena reproduce s000's recipes
#   as_delivered, finetune, prune   the defences; `arena matrix --surface backdoor` applies each
#                                to each delivered team once (the cells `<defence>_vs_<attacker>`)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:?usage: scripts/starter_backdoors.sh LEAGUE [SOURCE]}
SOURCE=${2:-}
SCALE=${SCALE:-1}
A=".venv/bin/arena --quiet --device cpu --league $L"
steps() { python3 -c "print(max(200, int($1 * $SCALE)))"; }
export OMP_NUM_THREADS=1
set -x
if [ -n "$SOURCE" ]; then
    .venv/bin/python - "$SOURCE" "$L" <<'PY'
import sys
from policies.build import base_provenance
from store import League
src, dest = sys.argv[1:]
with League(src) as a, League(dest, "a") as b, b.transaction():
    for old, new in (("qmix.stag10", "qmix.stag10"), ("marnet_qmix.s0", "marnet.stag10"),
                     ("trojdrl_qmix.s0", "trojdrl.stag10")):
        r = a.get(old)
        b.add_policy(new, r.role, r.kind, r.scenario, r.config, r.weights,
                     base_provenance(**{**r.provenance, "copied_from": r.ref}))
PY
else
    $A train defender qmix.stag10 --algo qmix --scenario stag10 --steps "$(steps 2100000)" --seed 1 \
        --no-test-attacks --test-every 100000
    for r in marnet trojdrl; do
        $A train attacker "$r.stag10" --algo $r --expert qmix.stag10 --scenario stag10 \
            --steps "$(steps 100000)" --seed 0 --param updates_per_collect=4
    done
fi
$A add-policy as_delivered --kind as_delivered
$A add-policy finetune --kind finetune --param steps="$(steps 20000)"
$A add-policy prune --kind prune --param fraction=0.3 --param steps="$(steps 20000)"
$A matrix --surface backdoor --scenario stag10 --episodes 32
