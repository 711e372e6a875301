"""QMIX training wall time, the eager way vs the compiled way, measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/train_qmix.py --steps 20000
    OMP_NUM_THREADS=1 python benchmarks/train_qmix.py --steps 300000 --test-every 5000 --rounds 1

Old way: eager environment step and team forward, the learner unrolling its GRU cell step by
step. New way: `compile=True` (the compiled env step and team forward of arena.compiled) and
the learner's one-GRU-call unroll. Both run with the same config and seed, alternating
(old, new, old, new, ...) so that the machine's load affects both alike. The first new run
of the process pays the compile (the time to the first step is printed); later ones in the
same process reuse the compiled kernels, as a second training run would.

With `--target` (default 0.9) it prints, for each run, the first test point whose greedy
win rate reaches the target: the steps and the wall time to get there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

if "--cold-cache" in sys.argv:  # before torch reads its config: compile from nothing
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")

import torch
import torch._dynamo  # noqa: F401 - imported by either way's optimiser anyway; not timed

import policies.learners.q_learner as q_learner
from policies.learners.train_defender import DefenderTrainConfig, train_defender


def one_run(way: str, args) -> dict:
    q_learner.SEQUENCE_UNROLL = way == "new"
    cfg = DefenderTrainConfig(scenario=args.scenario, steps=args.steps, envs=args.envs,
                              seed=args.seed, test_every=args.test_every,
                              test_attacks=False, compile=way == "new")
    first = {}

    def on_progress(p):
        first.setdefault("s", time.perf_counter() - start)

    start = time.perf_counter()
    result = train_defender(cfg, on_progress=on_progress)
    wall = time.perf_counter() - start
    curve = result.provenance["curve"]
    reached = next((p for p in curve if p["test_win"] >= args.target), None)
    return {"curve": curve, "way": way, "wall_s": wall, "first_collect_s": first.get("s", float("nan")),
            "final_win": result.provenance["final_test_win"],
            "reached_steps": None if reached is None else reached["steps"],
            "reached_wall_s": None if reached is None else reached["wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="3m")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="old/new pairs, alternating")
    ap.add_argument("--test-every", type=int, default=10_000)
    ap.add_argument("--target", type=float, default=0.9, help="greedy test win rate to reach")
    ap.add_argument("--cold-cache", action="store_true",
                    help="an empty inductor cache: the first new run compiles from nothing "
                         "(otherwise kernels cached on disk by earlier runs are reused)")
    args = ap.parse_args()
    print(f"{args.scenario}, {args.steps} steps, {args.envs} envs, seed {args.seed}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{'empty' if args.cold_cache else 'existing'} inductor cache")
    rows = []
    for r in range(args.rounds):
        for way in ("old", "new"):
            row = one_run(way, args)
            rows.append(row)
            reach = ("not reached" if row["reached_steps"] is None else
                     f"at {row['reached_steps']} steps, {row['reached_wall_s']:.1f} s")
            print(f"round {r} {way}: {row['wall_s']:7.1f} s (first collection done at "
                  f"{row['first_collect_s']:.1f} s)  final win {row['final_win']:.2f}  "
                  f"win >= {args.target:g} {reach}", flush=True)
    old = [x["wall_s"] for x in rows if x["way"] == "old"]
    new = [x["wall_s"] for x in rows if x["way"] == "new"]
    print(f"wall time old/new: first pair {old[0] / new[0]:.2f}x"
          + (f", median over {len(old)} pairs {statistics.median(o / n for o, n in zip(old, new)):.2f}x"
             if len(old) > 1 else ""))
    for o, n in zip(rows[::2], rows[1::2]):
        if o["reached_steps"] is None:
            continue
        # equal steps: the new run's wall time at the test point where the old one got there
        at = next((p for p in n["curve"] if p["steps"] >= o["reached_steps"]), n["curve"][-1])
        print(f"wall time to the old run's {o['reached_steps']} steps (win >= {args.target:g} "
              f"there): old {o['reached_wall_s']:.1f} s, new {at['wall_s']:.1f} s at "
              f"{at['steps']} steps, ratio {o['reached_wall_s'] / at['wall_s']:.2f}x")
    pairs = [(o, n) for o, n in zip(rows[::2], rows[1::2])
             if o["reached_wall_s"] is not None and n["reached_wall_s"] is not None]
    for o, n in pairs:
        print(f"time to win >= {args.target:g}: old {o['reached_wall_s']:.1f} s "
              f"({o['reached_steps']} steps), new {n['reached_wall_s']:.1f} s "
              f"({n['reached_steps']} steps), ratio {o['reached_wall_s'] / n['reached_wall_s']:.2f}x")


if __name__ == "__main__":
    main()
