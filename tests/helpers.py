"""Shared fixtures: small leagues with untrained (random-initialised) teams.

An untrained team is a perfectly valid defender for testing the engine: its play is
deterministic given its weights, so batched and sequential filling must agree exactly.
"""

from __future__ import annotations

from policies.build import base_provenance, build_policy_record
from policies.learners.train_defender import untrained_team as random_team
from store import League


def make_league(path, scenario="pp7", defenders=(("qmix", 0), ("vdn", 1)),
                attackers=(("random", ["eps=0.2"]), ("fgsm", ["eps=0.2"]),
                           ("pgd", ["eps=0.2", "steps=2"]))):
    League.create(path)
    with League(path, "a") as lg, lg.transaction():
        for i, (algo, seed) in enumerate(defenders):
            cfg, w = random_team(algo, scenario, seed)
            lg.add_policy(f"{algo}{i}", "defender", algo, scenario, cfg, w, base_provenance(seed=seed))
        for kind, params in attackers:
            lg.add_policy(**build_policy_record(kind, kind, params=params))
    return path


def opener(path):
    def open_(mode):
        return League(path, mode=mode)

    return open_


def rollout(env, seed: int, steps: int, action_seed: int = 0) -> list:
    """The TimeSteps of `steps` random legal steps from `env.reset(seed=seed)`."""
    import torch

    from arena.bench import random_legal_actions

    gen = torch.Generator().manual_seed(action_seed)
    ts = env.reset(seed=seed)
    out = [ts]
    for _ in range(steps):
        ts = env.step(random_legal_actions(ts.avail, gen))
        out.append(ts)
    return out
