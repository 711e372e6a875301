"""Trainings whose figures go into the report: QMIX/VDN on pp7 and 3m, against random play.

Examples:
    python scripts/train_report.py --run qmix_3m --steps 2000000 --minutes 40
    python scripts/train_report.py --run vdn_pp7 --steps 300000
    python scripts/train_report.py --measure-envs pp7 --minutes 1

Weights and config go to <out>/<name>.npz and <out>/<name>.json (config + provenance).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from arena.scenarios import make
from policies.learners.collect import collect_episodes
from policies.teams.rnn_agent import QTeam, RNNAgent, agent_input_dim
from policies.learners.train_defender import DefenderTrainConfig, train_defender

RUNS = {
    "qmix_pp7": dict(algo="qmix", scenario="pp7"),
    "vdn_pp7": dict(algo="vdn", scenario="pp7"),
    "qmix_3m": dict(algo="qmix", scenario="3m"),
    "vdn_3m": dict(algo="vdn", scenario="3m"),
}


def random_baseline(scenario: str, episodes: int = 256, seed: int = 12345) -> tuple[float, float]:
    env = make(scenario, episodes)
    s = env.spec
    team = QTeam(RNNAgent(agent_input_dim(s.obs_dim, s.n_actions, s.n_agents), s.n_actions), s.n_agents, s.n_actions)
    _, st = collect_episodes(env, team, 1.0, torch.Generator().manual_seed(seed), seed=seed)
    return st.mean_return, st.win_rate


def printer(every_s: float = 20.0):
    last = [0.0]

    def on_progress(p: dict) -> None:
        now = time.perf_counter()
        if now - last[0] >= every_s:
            last[0] = now
            print(
                f"steps {p['steps']:>8d}  eps {p['epsilon']:.3f}  loss {p['loss']:.4f}  "
                f"test return {p['test_return']:.3f}  test win {p['test_win']:.3f}  "
                f"{p['steps_per_s']:.0f} steps/s",
                flush=True,
            )

    return on_progress


def deadline(minutes: float | None):
    if minutes is None:
        return None
    end = time.perf_counter() + 60 * minutes
    return lambda: time.perf_counter() > end


def run(name: str, steps: int, minutes: float | None, out: str, save_as: str | None = None, **overrides) -> dict:
    cfg = DefenderTrainConfig(**{**RUNS[name], "steps": steps, **overrides})
    save_as = save_as or name
    rnd_ret, rnd_win = random_baseline(cfg.scenario)
    print(f"{name}: random play return {rnd_ret:.3f}, win {rnd_win:.3f}", flush=True)
    res = train_defender(cfg, on_progress=printer(), should_stop=deadline(minutes))
    p = res.provenance
    for c in p["curve"]:
        print(f"  curve steps {c['steps']:>8d}  return {c['test_return']:.3f}  win {c['test_win']:.3f}  wall {c['wall_s']}s")
    print(
        f"{name}: {p['steps']} steps in {p['wall_time_s']:.0f} s, final greedy test return "
        f"{p['final_test_return']:.3f}, win {p['final_test_win']:.3f} (random {rnd_ret:.3f} / {rnd_win:.3f})"
        f"{' [stopped at the time limit]' if res.partial else ''}",
        flush=True,
    )
    os.makedirs(out, exist_ok=True)
    np.savez(os.path.join(out, f"{save_as}.npz"), **res.weights)
    p["random_play"] = {"test_return": rnd_ret, "test_win": rnd_win}
    with open(os.path.join(out, f"{save_as}.json"), "w") as f:
        json.dump({"config": res.config, "provenance": p}, f, indent=1)
    return p


def measure_envs(scenario: str, minutes: float, choices=(4, 8, 16, 32)) -> None:
    """Equal wall time per K; compare the greedy test return reached (learning per wall-second)."""
    for k in choices:
        cfg = DefenderTrainConfig(scenario=scenario, steps=10**9, envs=k, test_every=10**9, test_episodes=64)
        res = train_defender(cfg, should_stop=deadline(minutes))
        p = res.provenance
        print(
            f"{scenario} envs {k:>3d}: {p['steps']} steps, {p['updates']} updates in {p['wall_time_s']:.0f} s "
            f"-> greedy test return {p['final_test_return']:.3f}, win {p['final_test_win']:.3f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", choices=sorted(RUNS), action="append", default=[])
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--minutes", type=float, default=None, help="wall-time limit per training")
    ap.add_argument("--envs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-every", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/trained")
    ap.add_argument("--measure-envs", metavar="SCENARIO", default=None)
    ap.add_argument("--init", metavar="NAME", default=None, help="start from <out>/NAME.npz")
    ap.add_argument("--eps-start", type=float, default=None)
    ap.add_argument("--updates-per-collect", type=int, default=1)
    ap.add_argument("--save-as", default=None, help="file name of the result (default: the run name)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.measure_envs:
        measure_envs(args.measure_envs, args.minutes or 1.0)
    extra = {"seed": args.seed, "test_every": args.test_every}
    if args.envs:
        extra["envs"] = args.envs
    if args.eps_start is not None:
        extra["eps_start"] = args.eps_start
    extra["updates_per_collect"] = args.updates_per_collect
    if args.init:
        extra["init"] = dict(np.load(os.path.join(args.out, f"{args.init}.npz")))
    for name in args.run:
        run(name, args.steps, args.minutes, args.out, save_as=args.save_as, **extra)


if __name__ == "__main__":
    main()
