"""The parameter-only observation attackers: none, random, FGSM and PGD.

Each meets arena.rollout's ObservationAttacker protocol for the rows it attacks. The gradient
methods are in `policies/observation/fgsm.py` and `policies/observation/pgd.py`; this module adds the budget of the
kind registry (ε, norm, which agents, frequency) and draws every random number from the
episode streams that `arena.rollout` hands over, so an episode plays the same alone or in a
batch.
"""

from __future__ import annotations

import math

import torch

from policies.observation.fgsm import fgsm
from policies.observation.pgd import pgd


def target_mask(targets, n_agents: int, device=None) -> torch.Tensor:
    """`targets` ("all", a count, or indices) → bool [n] of attacked agents."""
    mask = torch.zeros(n_agents, dtype=torch.bool, device=device)
    if targets == "all":
        mask[:] = True
    elif isinstance(targets, int):
        mask[: min(targets, n_agents)] = True
    else:
        bad = [i for i in targets if i >= n_agents]
        if bad:
            from policies.errors import PolicyError

            raise PolicyError(f"target agent(s) {bad} do not exist: the scenario has {n_agents} agents")
        mask[list(targets)] = True
    return mask


def ball_noise(rand, n: int, d: int, eps: float, norm: str) -> torch.Tensor:
    """[R, n, d] uniform in each agent's L∞ or L2 ball, from `rand(*shape) -> [R, *shape]`."""
    if norm == "linf":
        return (rand(n, d) * 2 - 1) * eps
    u1 = rand(n, d).clamp_min(1e-7)
    u2 = rand(n, d)
    gauss = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)  # Box-Muller
    direction = gauss / gauss.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    radius = rand(n, 1) ** (1.0 / d)  # uniform in volume
    return direction * radius * eps


class NoAttack:
    norm = "linf"

    def reset(self, rows, device):
        pass

    def perturb(self, obs, ctx):
        return obs


class _Budgeted:
    def __init__(self, config: dict, n_agents: int):
        self.eps = float(config.get("eps", 0.2))
        self.norm = config.get("norm", "linf")
        self.mask = target_mask(config.get("targets", "all"), n_agents)

    def reset(self, rows, device):
        self.mask = self.mask.to(device)

    def _masked(self, obs, delta):
        return obs + delta * self.mask.view(1, -1, 1).to(obs.dtype)


class RandomAttack(_Budgeted):
    """Uniform noise in the ε-ball: the baseline every learned attack should beat."""

    def perturb(self, obs, ctx):
        return self._masked(obs, ball_noise(ctx.rand, obs.shape[1], obs.shape[2], self.eps, self.norm))


class FGSMAttack(_Budgeted):
    def perturb(self, obs, ctx):
        return fgsm(ctx.q_fn, obs, self.eps, self.norm, agent_mask=self.mask, avail=ctx.avail)


class PGDAttack(_Budgeted):
    def __init__(self, config: dict, n_agents: int):
        super().__init__(config, n_agents)
        self.steps = int(config.get("steps", 10))
        size = float(config.get("step_size", 0.0))
        self.step_size = size if size > 0 else 2.5 * self.eps / self.steps
        self.random_start = bool(config.get("random_start", True))

    def perturb(self, obs, ctx):
        init = None
        if self.random_start:
            init = ball_noise(ctx.rand, obs.shape[1], obs.shape[2], self.eps, self.norm)
        return pgd(ctx.q_fn, obs, self.eps, self.steps, self.step_size, self.norm,
                   agent_mask=self.mask, avail=ctx.avail, init_delta=init)


ATTACKS = {"none": NoAttack, "random": RandomAttack, "fgsm": FGSMAttack, "pgd": PGDAttack}


def build_attack(kind: str, config: dict, n_agents: int):
    cls = ATTACKS[kind]
    return cls() if cls is NoAttack else cls(config, n_agents)
