"""Fast gradient sign attack on a Q-network's observations.

Goodfellow et al., "Explaining and Harnessing Adversarial Examples" (ICLR 2015), applied to
value-based agents as in Huang et al., "Adversarial Attacks on Neural Network Policies"
(2017) and Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks"
(2023), §IV-A:

    δ = ε · sign(∇_õ CE(softmax Q(õ), u)) at õ = o,   u = argmax_a Q(o, a),

so the perturbed observation o + δ lowers the probability of the clean greedy action. The L2
variant replaces sign(g) by g / ‖g‖₂, normalised per agent. Perturbations act on the
(already normalised) observation vector; every row and agent of the batch is attacked with
a single forward and a single backward pass.

Valid perturbations. A feature mask m ∈ {0,1}^d restricts the attack to some features (e.g.
the positions): the step is taken along m ⊙ g, so the whole budget goes to those features.
Bounds [l, h] per feature (the scenario's range of each observation feature) make the result
an observation the environment could produce: õ = clip(o + δ, l, h). A bound box and an L∞
ball intersect in a box, so clipping after the projection onto the ball is the exact
projection onto the feasible set for L∞ (and a feasible point for L2).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from arena.gradients import GradRequest, Steps, drive

QFn = Callable[[torch.Tensor], torch.Tensor]  # obs [B, n, obs] → Q [B, n, A]

NORMS = ("linf", "l2")


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")


def agent_mask_like(agent_mask: torch.Tensor | None, obs: torch.Tensor) -> torch.Tensor:
    """The mask as a float [B, n, 1] broadcastable over the observation (1 = attacked)."""
    B, n, _ = obs.shape
    if agent_mask is None:
        return torch.ones(B, n, 1, device=obs.device, dtype=obs.dtype)
    m = torch.as_tensor(agent_mask, device=obs.device).bool()
    return m.expand(B, n).unsqueeze(-1).to(obs.dtype)


def clip_to_box(
    obs: torch.Tensor, adv: torch.Tensor, low: torch.Tensor | None, high: torch.Tensor | None
) -> torch.Tensor:
    """adv [B, n, d] clipped per feature to [low, high] [d], widened to contain obs.

    Widening by the clean value means an entry that already lies outside the declared bounds
    is never moved by the clip (untouched agents and features stay exactly as they were), and
    each clipped coordinate only moves towards obs, so the result stays in the ε-ball.
    """
    if low is None:
        return adv
    lo = torch.minimum(low.to(obs), obs)
    hi = torch.maximum(high.to(obs), obs)
    return torch.minimum(torch.maximum(adv, lo), hi)


def greedy_actions(q: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
    if avail is not None:
        q = q.masked_fill(~avail.bool(), -1e9)
    return q.argmax(-1)  # [B, n]


def cross_entropy_per_agent(
    q: torch.Tensor, target: torch.Tensor, avail: torch.Tensor | None = None
) -> torch.Tensor:
    """CE(softmax Q, target) per agent: q [B,n,A], target [B,n] → [B,n]."""
    if avail is not None:
        q = q.masked_fill(~avail.bool(), -1e9)
    B, n, A = q.shape
    return F.cross_entropy(q.reshape(B * n, A), target.reshape(B * n), reduction="none").view(B, n)


def normalised_step(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent direction of unit norm per agent: sign(g) (L∞) or g/‖g‖₂ (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def fgsm(
    q_fn: QFn,
    obs: torch.Tensor,
    eps: float,
    norm: str = "linf",
    agent_mask: torch.Tensor | None = None,
    avail: torch.Tensor | None = None,
    feature_mask: torch.Tensor | None = None,
    low: torch.Tensor | None = None,
    high: torch.Tensor | None = None,
) -> torch.Tensor:
    """Perturbed observations [B, n, obs] within the ε-ball of `norm` around `obs`.

    `agent_mask` ([B, n] or [n] bool) selects the attacked agents; the others keep their
    observation. With `avail` [B, n, A], the greedy action and the softmax range over
    available actions only. `feature_mask` [obs] (bool) restricts the step to those features;
    `low`, `high` [obs] clip the result to the feature bounds (see `clip_to_box`). The result
    carries no gradient.
    """
    return drive(fgsm_steps(obs, eps, norm, agent_mask, avail, feature_mask, low, high), q_fn)


def fgsm_steps(obs, eps, norm="linf", agent_mask=None, avail=None, feature_mask=None,
               low=None, high=None) -> Steps:
    """`fgsm` as a generator of gradient requests (arena.gradients): one request, at o."""
    check_norm(norm)
    obs = obs.detach()
    u = None

    def loss(q):
        nonlocal u
        u = greedy_actions(q.detach(), avail)  # [B, n], from the same forward pass
        return cross_entropy_per_agent(q, u, avail)

    _, grad = yield GradRequest(obs, loss)
    if feature_mask is not None:
        grad = grad * feature_mask.to(grad)  # before normalising: the group gets the full budget
    delta = eps * normalised_step(grad, norm) * agent_mask_like(agent_mask, obs)
    return clip_to_box(obs, obs + delta, low, high).detach()
