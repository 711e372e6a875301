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
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

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
) -> torch.Tensor:
    """Perturbed observations [B, n, obs] within the ε-ball of `norm` around `obs`.

    `agent_mask` ([B, n] or [n] bool) selects the attacked agents; the others keep their
    observation. With `avail` [B, n, A], the greedy action and the softmax range over
    available actions only. The result carries no gradient.
    """
    check_norm(norm)
    x = obs.detach().clone().requires_grad_(True)  # [B, n, obs]
    q = q_fn(x)  # [B, n, A]
    u = greedy_actions(q.detach(), avail)  # [B, n]
    loss = cross_entropy_per_agent(q, u, avail).sum()
    (grad,) = torch.autograd.grad(loss, x)
    delta = eps * normalised_step(grad, norm) * agent_mask_like(agent_mask, obs)
    return (obs.detach() + delta).detach()
