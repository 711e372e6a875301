"""Robust defenders trained against a learned adversary, alternating the two.

Guo et al. 2023, "Enhancing the Robustness of QMIX against State-adversarial Attacks",
§IV-C/D (ATLA-style and PA-AD-style alternating training, after Zhang et al., "Robust
Reinforcement Learning on State Observations with Learned Optimal Adversary", ICLR 2021, and
Sun et al., ICLR 2022): the team and the adversary are trained in turn,

    θ_0 ← a clean team (the --init model, or `warmup` steps of clean training)
    φ_0 ← a fresh adversary (ATLA or PA-AD)
    for r = 1..R:
        φ_r ← φ_{r-1} trained on against the fixed team θ_{r-1}        (adversary phase)
        θ_r ← θ_{r-1} trained while φ_r perturbs its observations       (team phase)

As in ATLA (Alg. 2), there is ONE adversary, continued from round to round with its PPO state
(weights, Adam's moments, episode stream): a fresh adversary per round starts from nothing,
and with a short budget it is weaker than its predecessor, so the team's last phase would
train against an easier opponent and lose what the earlier rounds gained. The last team phase
faces the mixture of the snapshots φ_1 … φ_R (one drawn per episode), so that the final team
does not forget the earlier adversaries either.

A weak adversary teaches the team nothing. After each adversary phase the team's return under
it (deterministic, on fixed evaluation episodes) is compared with its clean return on the same
episodes: at or above `weak_fraction` of the clean return (e.g. 90 %), the phase is extended
in halves of its budget up to `attacker_cap` steps; still weak, the round is flagged in the
progress events and the provenance.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

from policies.observation.mixture_perturb import MixturePerturb
from policies.observation.train_attacker import (
    AttackerTrainConfig,
    evaluate_attack,
    load_victims,
    make_attacker,
    train_attacker,
)
from policies.learners.train_defender import (
    DefenderTrainConfig,
    TrainResult,
    network_config,
    train_defender,
)

WEAK_FRACTION = 0.9
EVAL_SEED_OFFSET = 2_000_000


def is_weak(attacked: float, clean: float, fraction: float = WEAK_FRACTION) -> bool:
    """The adversary removes less than (1 − fraction) of the clean return (of |clean|, so that
    the rule also reads right for scenarios whose returns are negative)."""
    return attacked >= clean - (1.0 - fraction) * abs(clean)


def weak_note(r: int, attacked: float, clean: float, steps: int) -> str:
    return (f"round {r}: adversary weak (return {attacked:.1f} of clean {clean:.1f}) "
            f"after {_k(steps)} steps")


def _k(steps: int) -> str:
    return f"{steps / 1000:.0f}k" if steps >= 1000 else str(steps)


def train_robust_defender(cfg: DefenderTrainConfig, adversary: str, rounds: int = 2,
                          attacker_steps: int = 30_000,
                          on_progress: Callable[[dict], None] | None = None,
                          should_stop: Callable[[], bool] | None = None,
                          weak_fraction: float = WEAK_FRACTION,
                          attacker_cap: int | None = None,
                          make_env=None) -> TrainResult:
    """`cfg.steps` team steps in all (a clean warm-up first when `cfg.init` is None).

    `attacker_steps` per adversary phase, extended up to `attacker_cap` (default twice that)
    while the adversary is weak (`is_weak` with `weak_fraction`). Progress events of the
    adversary phases carry "phase": "adversary"; a weak round sends one with a "note".
    """
    start = time.perf_counter()
    if rounds < 1:
        raise ValueError("alternating training needs at least one round")
    if attacker_steps < 1:
        raise ValueError("an adversary phase needs at least one step")
    cap = 2 * attacker_steps if attacker_cap is None else max(attacker_cap, attacker_steps)
    chunk = max(1, math.ceil(attacker_steps / 2))

    def emit(p: dict) -> None:
        if on_progress is not None:
            on_progress(p)

    weights, done, warm = cfg.init, 0, 0
    curve: list[dict] = []
    per_round = cfg.steps // (rounds + (1 if weights is None else 0))
    result: TrainResult | None = None
    if weights is None:
        # a clean warm-up: "none", or the regulariser would imply FGSM here
        result = train_defender(replace(cfg, steps=per_round, adv="none"), on_progress,
                                should_stop, make_env)
        weights, warm = result.weights, per_round
        done += result.provenance.get("steps", per_round)
        curve += result.provenance.get("curve", [])
    spec = make_env(1).spec if make_env is not None else _scenario_spec(cfg.scenario)
    team_cfg = result.config if result is not None else network_config(cfg, spec)
    eval_seed = cfg.seed + EVAL_SEED_OFFSET  # one set of episodes: rounds compare directly
    checkpoint = None
    snapshots: list = []
    log: list[dict] = []
    notes: list[str] = []
    for r in range(rounds):
        if should_stop is not None and should_stop() and result is not None:
            break
        last = r == rounds - 1

        # adversary phase: the one adversary, trained on against the current team
        round_steps, att, first_id, k = 0, None, None, 0
        while True:
            budget = attacker_steps if att is None else min(chunk, cap - round_steps)
            att_cfg = AttackerTrainConfig(
                algo=adversary, scenario=cfg.scenario, steps=budget,
                seed=cfg.seed + 1000 + 100 * r + k,
                eps=cfg.adv_eps, device=cfg.device, eval_seed=eval_seed,
                trained_against=f"alternation round {r + 1}")

            def adv_progress(p, _r=r, _base=round_steps, _done=done):
                emit({"phase": "adversary", "round": _r + 1, "steps": _done,
                      "adversary_steps": _base + p.get("steps", 0),
                      "victim_return": p.get("victim_return")})

            att = train_attacker(att_cfg, [(team_cfg, weights)], None, adv_progress, should_stop,
                                 make_env, init=checkpoint)
            k += 1
            checkpoint = att.checkpoint
            first_id = first_id or att.provenance["start_weights_id"]
            round_steps += att.provenance["steps"]
            prov = att.provenance
            weak = is_weak(prov["final_attacked_return"], prov["final_clean_return"], weak_fraction)
            if not weak or att.partial or round_steps >= cap:
                break
        # the scenario's spec: the snapshot keeps to the feature bounds it was trained within
        attacker = make_attacker(att.config, spec).load_weights(att.weights).to(cfg.device).eval()
        snapshots.append(attacker)
        entry = {
            "round": r + 1,
            "adversary_steps": round_steps,
            "adversary_steps_total": checkpoint.steps,
            "adversary_extended": k > 1,
            "adversary_lineage": checkpoint.lineage,
            "adversary_start_id": first_id,
            "adversary_id": prov["weights_id"],
            "clean_before": prov["final_clean_return"],
            "attacked_before": prov["final_attacked_return"],
            "clean_win_before": prov["final_clean_win"],
            "attacked_win_before": prov["final_attacked_win"],
            "weak": weak,
        }
        if weak:
            note = weak_note(r + 1, prov["final_attacked_return"], prov["final_clean_return"],
                             round_steps)
            entry["note"] = note
            notes.append(note)
            emit({"phase": "adversary", "round": r + 1, "steps": done, "note": note})

        # team phase: against this round's adversary, the last one against all of them
        members = snapshots if last else [attacker]
        perturb = MixturePerturb(members, [1.0] * len(members), seed=cfg.seed + r,
                                 device=cfg.device)
        steps = cfg.steps - done if last else per_round
        offset = done

        def progress(p, _offset=offset):
            emit({**p, "steps": p.get("steps", 0) + _offset})

        result = train_defender(replace(cfg, steps=max(1, steps), init=weights, adv=None,
                                        seed=cfg.seed + r),
                                progress, should_stop, make_env, perturb=perturb,
                                test_adversary=attacker)
        weights, team_cfg = result.weights, result.config
        team_steps = result.provenance.get("steps", steps)
        done += team_steps
        curve += [{**c, "steps": c["steps"] + offset} for c in result.provenance.get("curve", [])]
        after = _evaluate(attacker, team_cfg, weights, att_cfg, make_env)
        entry.update(round_after(after, team_steps, len(members)))
        log.append(entry)
        emit({"phase": "round", "round": r + 1, "steps": done,
              **{k: v for k, v in entry.items() if k != "note"}})
        if result.partial:
            break
    prov = dict(result.provenance)
    # the run's own seed and budget, not those of its last phase
    prov.update(steps=done, curve=curve, wall_time_s=round(time.perf_counter() - start, 2),
                seed=cfg.seed, hyperparameters=cfg.hyperparameters(),
                robust={"adv": adversary, "rounds": rounds, "attacker_steps": attacker_steps,
                        "attacker_cap": cap, "weak_fraction": weak_fraction,
                        "warmup_steps": warm, "eval_seed": eval_seed,
                        "adversary_returns": [e["attacked_before"] for e in log],
                        "per_round": log, "notes": notes,
                        "final_phase": (f"mixture of {len(snapshots)} round adversaries"
                                        if log and len(log) == rounds else None)})
    return TrainResult(result.weights, result.config, prov, result.partial)


def round_after(after: dict, team_steps: int, n_adversaries: int) -> dict:
    """A round's log entry after its team phase: what the team faced and its returns then
    (`after`: an evaluation's final_* figures)."""
    return {"team_steps": team_steps,
            "team_faced": (f"mixture of {n_adversaries} adversaries" if n_adversaries > 1
                           else "adversary"),
            "clean_after": after["final_clean_return"],
            "attacked_after": after["final_attacked_return"],
            "clean_win_after": after["final_clean_win"],
            "attacked_win_after": after["final_attacked_win"]}


def _evaluate(attacker, team_cfg: dict, weights: dict, att_cfg: AttackerTrainConfig,
              make_env) -> dict:
    """The team's clean and attacked returns on the evaluation episodes of the adversary phase."""
    import torch

    from policies.observation.train_attacker import default_make_env

    make_env = make_env or default_make_env(att_cfg)
    victim = load_victims([(team_cfg, weights)], make_env(1).spec, torch.device(att_cfg.device))
    return evaluate_attack(attacker, victim, [(0, 1.0)], make_env, att_cfg)


def _scenario_spec(name: str):
    from arena.scenarios import spec

    return spec(name)
