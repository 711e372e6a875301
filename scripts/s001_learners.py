"""Do the policy-gradient learners learn? MAPPO and DOP on spread, 3m, 2s3z, 8m and pp7 against
a team of uniformly random actions: each trained once (seed 0), then played greedily (as in
matches) and sampled (as in training) on the same 64 episodes.

    python scripts/s001_learners.py --out docs/s001/learners.md [--steps 100000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from arena.scenarios import make
from policies.learners.dop import DOPConfig, train_dop
from policies.learners.mappo import MAPPOConfig, train_mappo
from policies.learners.pg_collect import collect_pg, evaluate_pg, random_team_return
from policies.learners.pg_train import make_actor, PGTrainConfig
from arena.scenarios import spec as scenario_spec
from policies.weights import load_named

SCENARIOS = ("spread", "3m", "2s3z", "8m", "pp7")
EPISODES, SEED = 64, 4242


def sampled(scenario: str, weights: dict) -> tuple[float, float]:
    spec = scenario_spec(scenario)
    actor = make_actor(spec, PGTrainConfig(scenario=scenario))
    load_named(actor, weights, "agent.")
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        st = collect_pg(make(scenario, EPISODES), actor, gen, seed=SEED)[1]
    greedy = evaluate_pg(make(scenario, EPISODES), actor, SEED)
    return (st.mean_return, st.win_rate), (greedy.mean_return, greedy.win_rate)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = ap.parse_args()
    rows = []
    for sc in args.scenarios.split(","):
        rnd = random_team_return(make(sc, EPISODES), SEED)
        for algo, Config, train in (("mappo", MAPPOConfig, train_mappo),
                                    ("dop", DOPConfig, train_dop)):
            t0 = time.perf_counter()
            res = train(Config(scenario=sc, steps=args.steps, seed=0,
                               test_every=args.steps // 10))
            (s_ret, s_win), (g_ret, g_win) = sampled(sc, res.weights)
            rows.append({"scenario": sc, "algo": algo, "steps": res.provenance["steps"],
                         "wall_s": round(time.perf_counter() - t0, 1),
                         "random": [rnd.mean_return, rnd.win_rate], "greedy": [g_ret, g_win],
                         "sampled": [s_ret, s_win]})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| scenario | learner | steps | wall (s) | random team | greedy (matches) | "
             "sampled (training) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(x):
            return f"{x[0]:.2f} ({x[1]:.0%} won)"
        lines.append(f"| {r['scenario']} | {r['algo']} | {r['steps']:,} | {r['wall_s']} | "
                     f"{f(r['random'])} | {f(r['greedy'])} | {f(r['sampled'])} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
