"""The parameter-only observation attackers: none, random, FGSM and PGD.

Each meets arena.rollout's ObservationAttacker protocol for the rows it attacks. The gradient
methods are in `policies/observation/fgsm.py` and `policies/observation/pgd.py`; this module adds the budget of the
kind registry (ε, norm, which agents, frequency) and draws every random number from the
episode streams that `arena.rollout` hands over, so an episode plays the same alone or in a
batch.

Every attacker, learned ones included, perturbs within the same feasible set: the ε-ball
around the clean observation, restricted to the feature groups named by `groups` (δ = 0 on
the other features), and, with `clip` (the default), the scenario's per-feature bounds, so a
perturbed observation is one the environment could have produced: in the state-adversarial
MDP of Zhang et al., "Robust Deep Reinforcement Learning against Adversarial Perturbations on
State Observations" (NeurIPS 2020), which Guo et al. (2023) extend to Dec-POMDPs, the
adversary picks ν(s) from a set B(s) of states, and a value no observation can take is not
one.
"""

from __future__ import annotations

import math

import torch

from policies.errors import PolicyError
from arena.gradients import drive
from policies.observation.fgsm import clip_to_box, fgsm_steps
from policies.observation.pgd import pgd_steps


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
            raise PolicyError(f"target agent(s) {bad} do not exist: the scenario has {n_agents} agents")
        mask[list(targets)] = True
    return mask


def group_names(groups) -> tuple[str, ...]:
    """`groups` ("all", "position" or "position,scalar") → the named groups; () for all."""
    names = tuple(g.strip() for g in str(groups).split(",") if g.strip())
    return () if names in ((), ("all",)) else names


def feature_mask(groups, spec) -> torch.Tensor | None:
    """bool [obs_dim] of the features in `groups` on scenario `spec`; None for all features.

    An unknown group is a one-line PolicyError that names the scenario's groups.
    """
    names = group_names(groups)
    if not names:
        return None
    if spec is None:
        raise PolicyError(f"groups={groups}: feature groups need a scenario")
    known = tuple(spec.obs_groups)
    bad = [g for g in names if g not in known]
    if bad:
        raise PolicyError(f"unknown feature group(s) {', '.join(bad)} for scenario {spec.name}; "
                          f"its groups: all, {', '.join(known)}")
    mask = spec.group_mask(list(names)).bool().cpu()
    if not bool(mask.any()):
        raise PolicyError(f"groups={groups} selects no feature of scenario {spec.name}")
    return mask


def feature_bounds(clip: bool, spec) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The scenario's (low, high) [obs_dim] when `clip` and the scenario declares bounds."""
    if not clip or spec is None or not spec.obs_low:
        return None, None
    low, high = spec.bounds("cpu")
    if not (torch.isfinite(low).any() or torch.isfinite(high).any()):
        return None, None  # nothing to clip: keep the unclipped fast path
    return low.float(), high.float()


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
    """ε, norm, attacked agents, feature groups and bounds; `spec` (a ScenarioSpec) supplies
    the groups and bounds, without it the attack is unclipped on all features."""

    def __init__(self, config: dict, n_agents: int, spec=None):
        self.eps = float(config.get("eps", 0.2))
        self.norm = config.get("norm", "linf")
        self.mask = target_mask(config.get("targets", "all"), n_agents)
        self.features = feature_mask(config.get("groups", "all"), spec)  # bool [d] or None
        self.low, self.high = feature_bounds(bool(config.get("clip", True)), spec)

    def reset(self, rows, device):
        self.mask = self.mask.to(device)
        if self.features is not None:
            self.features = self.features.to(device)
        if self.low is not None:
            self.low, self.high = self.low.to(device), self.high.to(device)

    def _noise(self, obs, rand):
        """[R, n, d] uniform in the ball of the attacked features (zero on the others)."""
        n, d = obs.shape[1], obs.shape[2]
        if self.features is None:
            return ball_noise(rand, n, d, self.eps, self.norm)
        idx = self.features.nonzero().flatten()
        # drawn in the group's own subspace: an L2 sample of the full ball, masked, would not
        # be uniform in the group's ball
        noise = torch.zeros_like(obs)
        noise[..., idx] = ball_noise(rand, n, len(idx), self.eps, self.norm).to(obs)
        return noise

    def _valid(self, obs, adv):
        return clip_to_box(obs, adv, self.low, self.high)

    def _masked(self, obs, delta):
        return obs + delta * self.mask.view(1, -1, 1).to(obs.dtype)


class RandomAttack(_Budgeted):
    """Uniform noise in the ε-ball: the baseline every learned attack should beat."""

    def perturb(self, obs, ctx):
        return self._valid(obs, self._masked(obs, self._noise(obs, ctx.rand)))


class _Gradient(_Budgeted):
    """An attack written as gradient requests (`perturb_steps`): the rollout drives those of
    one victim together (arena.gradients); `perturb` drives it alone."""

    def perturb(self, obs, ctx):
        return drive(self.perturb_steps(obs, ctx), ctx.q_fn)


class FGSMAttack(_Gradient):
    def perturb_steps(self, obs, ctx):
        # one step, so clipping after the call equals clipping inside it
        adv = yield from fgsm_steps(obs, self.eps, self.norm, agent_mask=self.mask,
                                    avail=ctx.avail, feature_mask=self.features)
        return self._valid(obs, adv)


class PGDAttack(_Gradient):
    def __init__(self, config: dict, n_agents: int, spec=None):
        super().__init__(config, n_agents, spec)
        self.steps = int(config.get("steps", 10))
        size = float(config.get("step_size", 0.0))
        self.step_size = size if size > 0 else 2.5 * self.eps / self.steps
        self.random_start = bool(config.get("random_start", True))

    def perturb_steps(self, obs, ctx):
        init = self._noise(obs, ctx.rand) if self.random_start else None
        return (yield from pgd_steps(obs, self.eps, self.steps, self.step_size, self.norm,
                                     agent_mask=self.mask, avail=ctx.avail, init_delta=init,
                                     feature_mask=self.features, low=self.low, high=self.high))


ATTACKS = {"none": NoAttack, "random": RandomAttack, "fgsm": FGSMAttack, "pgd": PGDAttack}


def build_attack(kind: str, config: dict, n_agents: int, spec=None):
    """The attacker of a parameter-only kind; `spec` (the scenario) gives groups and bounds."""
    cls = ATTACKS[kind]
    return cls() if cls is NoAttack else cls(config, n_agents, spec)
