"""Projected gradient descent attack on a Q-network's observations.

Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018):
repeat õ ← Π_{B_ε(o)}(õ + α · step(∇_õ ℓ(õ))) for `steps` iterations, where step is the
sign (L∞) or the per-agent unit-L2 gradient and Π projects back onto the ε-ball.

Objectives ℓ (summed over the batch; one backward pass per iteration for the whole batch):
- "ce": CE(softmax Q(õ), u) with u the greedy action of the clean observation, as FGSM;
- "gap": max_{a≠u} Q(õ, a) − Q(õ, u), the Q-gap that the policy regulariser of Guo et al.
  (2023, §IV-B) maximises in its inner problem.

With a feature mask the step follows m ⊙ ∇ℓ; with bounds every iterate is clipped to the
feature bounds after the projection onto the ball (`fgsm.clip_to_box`), so the gradient is
always taken at an observation the environment could produce.
"""

from __future__ import annotations

import torch

from arena.gradients import GradRequest, Steps, drive
from policies.observation.fgsm import (
    QFn,
    agent_mask_like,
    check_norm,
    clip_to_box,
    cross_entropy_per_agent,
    greedy_actions,
    normalised_step,
)


def q_gap(q: torch.Tensor, u: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
    """max_{a≠u} Q(a) − Q(u) per agent: q [B,n,A], u [B,n] → [B,n]."""
    q_u = q.gather(-1, u.unsqueeze(-1)).squeeze(-1)  # [B, n]
    others = q.masked_fill(torch.nn.functional.one_hot(u, q.shape[-1]).bool(), -1e9)
    if avail is not None:
        others = others.masked_fill(~avail.bool(), -1e9)
    return others.max(-1).values - q_u


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = delta.norm(dim=-1, keepdim=True)
    return delta * (eps / n.clamp_min(eps))


def random_in_ball(
    shape: torch.Size, eps: float, norm: str, device, generator: torch.Generator | None
) -> torch.Tensor:
    if norm == "linf":
        return (torch.rand(shape, generator=generator, device=device) * 2 - 1) * eps
    d = torch.randn(shape, generator=generator, device=device)
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    r = torch.rand(*shape[:-1], 1, generator=generator, device=device) ** (1.0 / shape[-1])
    return d * r * eps


def pgd(
    q_fn: QFn,
    obs: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    norm: str = "linf",
    random_start: bool = False,
    agent_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    avail: torch.Tensor | None = None,
    objective: str = "ce",
    init_delta: torch.Tensor | None = None,
    feature_mask: torch.Tensor | None = None,
    low: torch.Tensor | None = None,
    high: torch.Tensor | None = None,
) -> torch.Tensor:
    """Perturbed observations [B, n, obs] within the ε-ball around `obs` (no gradient).

    `agent_mask` ([B, n] or [n] bool) selects the attacked agents; `generator` seeds the
    random start; `avail` restricts the greedy action and the objective to available actions.
    `init_delta` [B, n, obs] is a given starting point inside the ball (it replaces the random
    start: the match engine draws it from per-episode streams). `feature_mask` [obs] (bool)
    restricts the perturbation to those features; `low`, `high` [obs] are the feature bounds.
    """
    return drive(pgd_steps(obs, eps, steps, step_size, norm, random_start, agent_mask, generator,
                           avail, objective, init_delta, feature_mask, low, high), q_fn)


def pgd_steps(obs, eps, steps, step_size, norm="linf", random_start=False, agent_mask=None,
              generator=None, avail=None, objective="ce", init_delta=None, feature_mask=None,
              low=None, high=None) -> Steps:
    """`pgd` as a generator of gradient requests (arena.gradients): Q at o, then one
    gradient per iteration."""
    check_norm(norm)
    if objective not in ("ce", "gap"):
        raise ValueError(f"unknown PGD objective {objective!r}; known: ce, gap")
    obs = obs.detach()
    mask = agent_mask_like(agent_mask, obs)  # [B, n, 1]
    fmask = None if feature_mask is None else feature_mask.to(obs)  # [obs]
    if fmask is not None:
        mask = mask * fmask  # [B, n, obs]
    q_clean, _ = yield GradRequest(obs)
    u = greedy_actions(q_clean, avail)  # [B, n]

    def feasible(delta):
        # the clip only shrinks coordinates towards o, so the iterate stays in the ball
        return clip_to_box(obs, obs + delta, low, high) - obs if low is not None else delta

    def loss(q):
        return cross_entropy_per_agent(q, u, avail) if objective == "ce" else q_gap(q, u, avail)

    delta = torch.zeros_like(obs)
    if init_delta is not None:
        delta = feasible(project(init_delta.to(obs), eps, norm) * mask)
    elif random_start:
        delta = feasible(random_in_ball(obs.shape, eps, norm, obs.device, generator) * mask)
    for _ in range(steps):
        _, grad = yield GradRequest(obs + delta, loss)
        if fmask is not None:
            grad = grad * fmask  # before normalising: the group gets the full step
        delta = feasible(project(delta + step_size * normalised_step(grad, norm), eps, norm) * mask)
    # clip the observation itself once more: o + (õ − o) can round past a bound by one ulp
    return clip_to_box(obs, obs + delta, low, high).detach()
