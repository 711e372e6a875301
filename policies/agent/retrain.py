"""Adversarial retraining of a team against a hijacked teammate.

Wu et al., "Adversarial Policy Training against Deep Reinforcement Learning" (USENIX
Security 2021), §6 (adversarial retraining): the victim is trained on against the adversary,
which robustifies it against that adversary but costs it on other opponents. Here the victim is
a cooperative team and the adversary hijacks one of its members; the team and the adversary
alternate, as the observation surface's ATLA-style training (policies.observation.
adversarial_training) does:

    θ_0 ← the --init team;  φ_0 ← a fresh adversary (takeover_ppo or takeover_dev)
    for r = 1..R:
        φ_r ← φ_{r-1} trained on against the fixed team θ_{r-1}      (one adversary, continued
                                                                      with its Adam state)
        θ_r ← θ_{r-1} trained (the project's Q-learner) while φ_r hijacks members of a share
              `fraction` of the episodes; the last round faces the mixture of φ_1 … φ_R,
              one drawn per episode

The hijacked agents' transitions are stored with the adversary's actions, as the team lived
them: the others learn to play around the hijacked member, who never knows it was hijacked.
The clean episodes (1 − fraction) keep the team's clean play in training: the mixture option
of the generalisability trade-off. Each round logs the team's clean return and its return
under that round's adversary, before and after (provenance "robust").
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from policies.agent.takeover_ppo import TakeoverPolicy
from policies.agent.train_takeover import (
    TakeoverTrainConfig, evaluate_takeover, train_takeover,
)
from arena.scenarios import spec as scenario_spec
from policies.learners.train_defender import DefenderTrainConfig, TrainResult, train_defender
from policies.observation.adversarial_training import round_after
from policies.message.malicious import draw_malicious
from policies.observation.train_attacker import default_make_env, load_victims

EVAL_SEED_OFFSET = 2_000_000


class Hijack:
    """A collection hook (policies.learners.collect `poison`): in the first round(fraction·B)
    episodes of each collection, `targets` agents play an adversary drawn from `adversaries`
    with `weights`, its actions sampled from the hook's stream; rewards are the
    environment's."""

    def __init__(self, adversaries: list[TakeoverPolicy], weights: list[float], fraction: float,
                 spec, seed: int = 0, device="cpu"):
        self.nets, self.spec, self.device = adversaries, spec, torch.device(device)
        w = torch.tensor(weights, dtype=torch.float)
        self.p = w / w.sum()
        self.fraction = float(fraction)
        self.gen = torch.Generator().manual_seed(int(seed) ^ 0x41AC)

    def before_reset(self, env) -> None:
        B, n = env.B, self.spec.n_agents
        rows = torch.arange(B) < max(1, round(self.fraction * B)) if self.fraction > 0 else \
            torch.zeros(B, dtype=torch.bool)
        self.who = torch.multinomial(self.p, B, replacement=True, generator=self.gen)
        u = torch.rand(B, n, generator=self.gen)
        hij = torch.stack([draw_malicious(net.targets, n, lambda *s, u=u: u)
                           for net in self.nets])  # [M, B, n]
        self.hij = (hij[self.who, torch.arange(B)] & rows.unsqueeze(1)).to(self.device)
        self.who = self.who.to(self.device)
        self.last = torch.zeros(B, n, self.spec.n_actions, device=self.device)

    def act(self, ts, actions: torch.Tensor) -> torch.Tensor:
        out = actions
        for m, net in enumerate(self.nets):
            rows = ((self.who == m) & self.hij.any(1)).nonzero().flatten()
            if len(rows):
                adv, _ = net.act(ts.obs[rows], self.last[rows], ts.avail[rows], ts.state[rows],
                                 u=torch.rand(ts.avail[rows].shape, generator=self.gen)
                                 .to(self.device))
                out = out.clone() if out is actions else out
                out[rows] = torch.where(self.hij[rows], adv, actions[rows])
        self.last = F.one_hot(out, self.spec.n_actions).float()
        return out

    def reward(self, before, ts, actions) -> torch.Tensor:
        return ts.reward


def train_takeover_retrained(cfg: DefenderTrainConfig, adversary: str = "takeover_ppo",
                             rounds: int = 2, attacker_steps: int = 50_000, targets=1,
                             fraction: float = 0.5,
                             on_progress: Callable[[dict], None] | None = None,
                             should_stop: Callable[[], bool] | None = None,
                             make_env=None):
    """`cfg.steps` team steps split over the rounds, from the team `cfg.init` (required).
    Returns (the team's TrainResult, the last round's adversary as an AttackerTrainResult)."""
    start = time.perf_counter()
    if cfg.init is None or cfg.init_config is None:
        raise ValueError("adversarial retraining starts from a trained team (--init)")
    if rounds < 1 or attacker_steps < 1:
        raise ValueError("retraining needs at least one round and one adversary step")

    def emit(p: dict) -> None:
        if on_progress is not None:
            on_progress(p)

    weights, team_cfg = cfg.init, cfg.init_config
    per_round = max(1, cfg.steps // rounds)
    eval_seed = cfg.seed + EVAL_SEED_OFFSET
    spec = make_env(1).spec if make_env is not None else scenario_spec(cfg.scenario)
    checkpoint, snapshots, log, curve = None, [], [], []
    done, result = 0, None
    for r in range(rounds):
        if should_stop is not None and should_stop() and result is not None:
            break
        att_cfg = TakeoverTrainConfig(algo=adversary, scenario=cfg.scenario,
                                      steps=attacker_steps, seed=cfg.seed + 1000 + r,
                                      targets=targets, device=cfg.device, eval_seed=eval_seed,
                                      trained_against=f"retraining round {r + 1}")

        def adv_progress(p, _r=r, _done=done):
            emit({"phase": "adversary", "round": _r + 1, "steps": _done,
                  "adversary_steps": p.get("steps", 0), "victim_return": p.get("victim_return")})

        att = train_takeover(att_cfg, [(team_cfg, weights)], None, adv_progress, should_stop,
                             make_env, init=checkpoint)
        checkpoint = att.checkpoint
        net = TakeoverPolicy(att.config).load_weights(att.weights).to(cfg.device).eval()
        snapshots.append(net)
        prov = att.provenance
        entry = {"round": r + 1, "adversary_steps": prov["steps"],
                 "adversary_id": prov["weights_id"],
                 "clean_before": prov["final_clean_return"],
                 "attacked_before": prov["final_attacked_return"],
                 "clean_win_before": prov["final_clean_win"],
                 "attacked_win_before": prov["final_attacked_win"]}
        last = r == rounds - 1
        members = snapshots if last else [net]
        hook = Hijack(members, [1.0] * len(members), fraction, spec, cfg.seed + r, cfg.device)
        steps = cfg.steps - done if last else per_round
        offset = done

        def progress(p, _offset=offset):
            emit({**p, "steps": p.get("steps", 0) + _offset})

        # observation probes (FGSM, PGD) say nothing about this threat: test clean only
        result = train_defender(replace(cfg, steps=max(1, steps), init=weights, adv=None,
                                        seed=cfg.seed + r, test_attacks=False),
                                progress, should_stop, make_env, poison=hook)
        weights, team_cfg = result.weights, result.config
        done += result.provenance.get("steps", steps)
        curve += [{**c, "steps": c["steps"] + offset} for c in result.provenance.get("curve", [])]
        after = evaluate_team(net, team_cfg, weights, att_cfg, make_env)
        entry.update(round_after(after, result.provenance.get("steps", steps), len(members)))
        log.append(entry)
        emit({"phase": "round", "steps": done, **entry})
        if result.partial:
            break
    prov = dict(result.provenance)
    prov.update(steps=done, curve=curve, wall_time_s=round(time.perf_counter() - start, 2),
                seed=cfg.seed, hyperparameters=cfg.hyperparameters(),
                robust={"adv": "takeover", "algo": adversary, "rounds": rounds,
                        "attacker_steps": attacker_steps, "targets": targets,
                        "hijacked_fraction": fraction, "eval_seed": eval_seed,
                        "per_round": log,
                        "adversary_weights_id": log[-1]["adversary_id"] if log else None})
    return TrainResult(result.weights, result.config, prov, result.partial), att


def evaluate_team(net: TakeoverPolicy, team_cfg: dict, weights: dict,
                  att_cfg: TakeoverTrainConfig, make_env) -> dict:
    """A team's clean return and its return under `net` on the adversary's evaluation episodes."""
    make_env = make_env or default_make_env(att_cfg)
    victim = load_victims([(team_cfg, weights)], make_env(1).spec, torch.device(att_cfg.device))
    return evaluate_takeover(net, victim, [(0, 1.0)], make_env, att_cfg, att_cfg.eval_episodes,
                             att_cfg.eval_seed, keys=("attacked", "clean"))


class RandomTeammate:
    """takeover_random as a Hijack member: uniform available actions from the hook's stream."""

    def __init__(self, targets):
        self.targets = targets

    def act(self, obs, last, avail, state, u=None):
        from policies.agent.takeover import random_available

        return random_available(avail, u), {}


def hijackers_from_league(lg, refs: list[str], weights: list[float], spec,
                          device="cpu") -> tuple[list, list[float], float]:
    """σ_A of the agent surface as Hijack members: (players, their weights, the clean share
    σ_A puts on `none`)."""
    from policies.agent.takeover_ppo import build_takeover
    from store import NO_ATTACK

    players, ws, clean = [], [], 0.0
    for ref, w in zip(refs, weights):
        if w <= 1e-6:
            continue
        if ref == NO_ATTACK:
            clean += float(w)
            continue
        rec = lg.get(ref)
        if rec.kind == "takeover_random":
            players.append(RandomTeammate(rec.config.get("targets", 1)))
        else:
            players.append(build_takeover(rec, spec, device).net)
        ws.append(float(w))
    return players, ws, clean
