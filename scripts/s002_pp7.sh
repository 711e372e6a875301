#!/usr/bin/env bash
# First ℜ-MACRL measurements on pp7 (Xue et al. 2022): a CommNet team, random and learned
# message attackers, the message filter, an attacker retrained against the frozen filter, and
# the message table. About 15 minutes on one core (measured: 12 with other work beside it).
#
#   scripts/s002_pp7.sh [LEAGUE]          # default build/s002/pp7.h5
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:-build/s002/pp7.h5}
mkdir -p "$(dirname "$L")"
[ -x .venv/bin/arena ] || make install
A=".venv/bin/arena --quiet --device cpu --league $L"
export OMP_NUM_THREADS=1
[ -f "$L" ] || $A init
$A train defender talk.pp7 --algo commnet --scenario pp7 --steps 400000 --seed 1
$A add-policy noise --kind msg_random --param targets=1        # one malicious agent of three
$A add-policy noise_all --kind msg_random --param targets=3    # every message replaced
$A train attacker liar.pp7 --algo msg_ppo --scenario pp7 --against talk.pp7 --steps 100000 --seed 2
$A train defender guard.pp7 --algo msg_filter --init talk.pp7 --against liar.pp7,noise \
    --steps 100000 --seed 3
# (d) of the paper: a new attacker trained against the frozen filter
$A train attacker liar2.pp7 --algo msg_ppo --scenario pp7 --against guard.pp7 --steps 100000 --seed 4
$A matrix --scenario pp7 --surface message --episodes 64
