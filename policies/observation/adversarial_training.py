"""Robust defenders trained against a learned adversary, alternating the two.

Guo et al. 2023, "Enhancing the Robustness of QMIX against State-adversarial Attacks",
§IV-C/D (ATLA-style and PA-AD-style alternating training, after Zhang et al., ICLR 2021,
and Sun et al., ICLR 2022): the team and the adversary are trained in turn,

    θ_0 ← a clean team (the --init model, or `warmup` steps of clean training)
    for r = 1..R:
        φ_r ← learned adversary (ATLA or PA-AD) trained against the fixed team θ_{r-1}
        θ_r ← team trained from θ_{r-1} while φ_r perturbs its observations

so each team update faces the strongest adversary found so far against it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from policies.observation.mixture_perturb import MixturePerturb
from policies.observation.train_attacker import AttackerTrainConfig, make_attacker, train_attacker
from policies.learners.train_defender import DefenderTrainConfig, TrainResult, train_defender


def train_robust_defender(cfg: DefenderTrainConfig, adversary: str, rounds: int = 2,
                          attacker_steps: int = 30_000,
                          on_progress: Callable[[dict], None] | None = None,
                          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """`cfg.steps` team steps in all (a clean warm-up first when `cfg.init` is None)."""
    start = time.perf_counter()
    if rounds < 1:
        raise ValueError("alternating training needs at least one round")
    weights, done, warm = cfg.init, 0, 0
    curve: list[dict] = []
    per_round = cfg.steps // (rounds + (1 if weights is None else 0))
    if weights is None:
        res = train_defender(replace(cfg, steps=per_round, adv=None), on_progress, should_stop)
        weights, warm = res.weights, per_round
        done += per_round
        curve += res.provenance.get("curve", [])
    adversaries, result = [], None
    for r in range(rounds):
        if should_stop is not None and should_stop():
            break
        att_cfg = AttackerTrainConfig(algo=adversary, scenario=cfg.scenario, steps=attacker_steps,
                                      seed=cfg.seed + 1000 + r, eps=cfg.adv_eps, device=cfg.device,
                                      trained_against=f"alternation round {r}")
        net_cfg = result.config if result is not None else None
        team_cfg = net_cfg or _network_config(cfg)
        att = train_attacker(att_cfg, [(team_cfg, weights)], None, should_stop=should_stop)
        attacker = make_attacker(att.config).load_weights(att.weights).to(cfg.device).eval()
        adversaries.append(att.provenance.get("final_attacked_return"))
        perturb = MixturePerturb([attacker], [1.0], seed=cfg.seed + r, device=cfg.device)
        steps = cfg.steps - done if r == rounds - 1 else per_round
        offset = done

        def progress(p, _offset=offset):
            if on_progress is not None:
                on_progress({**p, "steps": p.get("steps", 0) + _offset})

        result = train_defender(replace(cfg, steps=steps, init=weights, adv=None, seed=cfg.seed + r),
                                progress, should_stop, perturb=perturb)
        weights = result.weights
        done += result.provenance.get("steps", steps)
        curve += [{**c, "steps": c["steps"] + offset} for c in result.provenance.get("curve", [])]
        if result.partial:
            break
    prov = dict(result.provenance)
    prov.update(steps=done, curve=curve, wall_time_s=round(time.perf_counter() - start, 2),
                robust={"adv": adversary, "rounds": rounds, "attacker_steps": attacker_steps,
                        "warmup_steps": warm, "adversary_returns": adversaries})
    return TrainResult(result.weights, result.config, prov, result.partial)


def _network_config(cfg: DefenderTrainConfig) -> dict:
    from arena.scenarios import spec
    from policies.learners.train_defender import network_config

    return network_config(cfg, spec(cfg.scenario))
