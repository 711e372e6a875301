"""A small batched PPO: clipped surrogate, GAE, value head, minibatch epochs.

Schulman et al., "Proximal Policy Optimization Algorithms" (2017), eq. 7 (clipped surrogate)

    L^CLIP = E[ min(ρ Â, clip(ρ, 1−c, 1+c) Â) ],   ρ = π(a|x) / π_old(a|x),

and Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage
Estimation" (ICLR 2016), eq. 16 (GAE):

    δ_t = r_t + γ V(x_{t+1}) − V(x_t),   Â_t = Σ_l (γλ)^l δ_{t+l}.

Laid out as CleanRL's `ppo.py`: storage shaped (steps, envs, ...), advantages computed once
per rollout, then `epochs` passes over shuffled minibatches. The learned attackers (ATLA's
perturbation policy, PA-AD's director) are the users: a sample is one attacked agent at one
step of one episode, so storage is [T, K, m] and every sample shares the team's reward.
Episodes never auto-reset inside a rollout; `alive` [T, K] marks the steps taken, and an
episode's last step bootstraps from zero (truncation at the episode limit counts as an end,
as the scenarios count it as a loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class PPOConfig:
    lr: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip: float = 0.2
    """Clipping range c of the probability ratio."""
    epochs: int = 4
    """Passes over each rollout."""
    minibatches: int = 4
    """Minibatches per pass (samples are shuffled first)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Gradient L2-norm clip."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before GAE (keeps value targets of order one)."""


class ActorCritic(Protocol):
    def evaluate(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat batch of N samples → (log π(action) [N], entropy [N], value [N])."""
        ...


class MLP(nn.Module):
    """in → Linear → tanh → Linear → tanh → Linear → out (CleanRL's actor/critic body)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, out_gain: float = 0.01):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, d_out)
        for layer, gain in ((self.fc1, 2**0.5), (self.fc2, 2**0.5), (self.out, out_gain)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def gae(
    rewards: torch.Tensor, values: torch.Tensor, alive: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns of whole episodes, eq. 16 of Schulman et al. (2016).

    rewards [T, K, ...], values [T, K, ...], alive [T, K, ...] (broadcastable; True where the
    step was taken). An episode that is alive at t and not at t+1 ended at t: its bootstrap
    value is zero. Returns (advantages, returns), both shaped as `values`, zero where not alive.
    """
    T = values.shape[0]
    alive = alive.to(values.dtype).expand_as(values)
    rewards = rewards.expand_as(values)
    adv = torch.zeros_like(values)
    last = torch.zeros_like(values[0])
    for t in reversed(range(T)):  # a loop over steps, vectorised over episodes and agents
        nxt = alive[t + 1] if t + 1 < T else torch.zeros_like(alive[0])
        v_next = values[t + 1] * nxt if t + 1 < T else torch.zeros_like(values[0])
        delta = rewards[t] + gamma * v_next - values[t]
        last = (delta + gamma * lam * nxt * last) * alive[t]
        adv[t] = last
    return adv, (adv + values) * alive


def clipped_policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float
) -> torch.Tensor:
    """−L^CLIP (to minimise): mean of max(−ρÂ, −clip(ρ, 1−c, 1+c)Â)."""
    ratio = (logp - old_logp).exp()
    return torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()


def ppo_update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    cfg: PPOConfig,
    generator: torch.Generator,
    aux=None,
) -> dict[str, float]:
    """`epochs` passes of minibatch updates over a flat batch.

    `aux(minibatch) -> scalar`, when given, is added to each minibatch's loss (a method's own
    term, e.g. takeover_dev's victim deviation).

    `batch` holds N samples: the model's inputs (whatever `model.evaluate` reads) plus
    "logp" (old log-probabilities), "adv" and "ret" (from `gae`), each with leading dim N.
    """
    N = batch["adv"].shape[0]
    mb = max(1, N // cfg.minibatches)
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
    n_updates = 0
    for _ in range(cfg.epochs):
        perm = torch.randperm(N, generator=generator).to(batch["adv"].device)
        for start in range(0, N - mb + 1, mb):
            idx = perm[start:start + mb]
            part = {k: v[idx] for k, v in batch.items()}
            logp, entropy, value = model.evaluate(part)
            adv = part["adv"]
            if cfg.norm_adv and len(adv) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg_loss = clipped_policy_loss(logp, part["logp"], adv, cfg.clip)
            v_loss = 0.5 * F.mse_loss(value, part["ret"])
            ent = entropy.mean()
            loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
            if aux is not None:
                loss = loss + aux(part)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                log_ratio = logp - part["logp"]
                stats["approx_kl"] += float(((log_ratio.exp() - 1) - log_ratio).mean())
                stats["clipfrac"] += float(((log_ratio.exp() - 1).abs() > cfg.clip).float().mean())
            stats["policy_loss"] += pg_loss.item()
            stats["value_loss"] += v_loss.item()
            stats["entropy"] += ent.item()
            n_updates += 1
    return {k: v / max(1, n_updates) for k, v in stats.items()}
