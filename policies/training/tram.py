"""TRAM: sampling-based training-time attacks on one agent of a cooperative team.

Seed paper: "TRAM: training-time attacks on cooperative MARL" (victim: DOP). A training-time
attacker never acts at play time: while the team trains, it replaces the distribution one
agent k draws its actions from, so the learner updates on samples it did not ask for. The
learner still stores its own log π(a) (policies.learners.pg_collect), so the poison reaches it
only through which actions were taken.

The paper's text was not available to us. Everything below is reconstructed from our issue's
description of it, and the equation numbers are the paper's as the issue cites them:

* Perturbed policy of the poisoned agent k: π'_k = softmax(l_k + β·δ̂), δ̂ a unit-norm
  direction over the available actions (zero on the others, which keep probability 0), and
  β ≥ 0 chosen per row so that KL(π'_k ‖ π_k) ≤ KL^U (`kl_max`). β comes from the paper's
  appendix algorithm as the issue describes it: double an upper bracket for `expand_iters`
  iterations, bisect for `bisect_iters`, return the largest β found that meets the bound.
* Directions, with Q_k(a) the agent's action values and μ = Σ_a π(a) Q_k(a):
  - "tram_j" (J-based, Eq. 11–13): lower the agent's expected action value under its sampling
    distribution, δ̂ ∝ −∇_l Σ_a π(a) Q_k(a) = −π ⊙ (Q_k − μ);
  - "tram_var" (variance-based, Eq. 7–10): raise the variance of the action value under the
    sampling distribution (noisier policy-gradient estimates),
    δ̂ ∝ ∇_l Var_π(Q_k) = π ⊙ ((Q_k − μ)² − Var_π(Q_k));
  - "tram_random": a Gaussian direction over the available actions (the paper's baseline).
* Frequency f_A (`freq`): each step, agent k is adversarial with probability f_A.
* Stealth (Eq. 3, the log-likelihood of being abnormal): for the actions agent k actually took
  at poisoned steps, log π'_k(a) − log π_k(a), the evidence that those samples came from the
  abnormal rather than the normal policy. `stats()` reports its mean per poisoned step.

Also reconstructed, not from the paper: where the learner gives no per-agent action values
(MAPPO), Q_k is the attacker's own critic Q̂_k(s, o_k) → [A], an MLP regressed on the
discounted Monte-Carlo return (γ = 0.99) of the taken action; with DOP the learner's critic is
read directly (white-box). The bracket starts at β = 1 and the computation is in float64.

The directions are first-order: J-based lowers Σ π' Q_k for every β > 0 (the weights e^{βδ̂}
shrink every action above μ and grow every action below it), but variance-based only raises
Var_π'(Q_k) for small enough KL^U; a large bound can move π' onto the single outlier action,
where the variance falls again.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from policies.learners.pg_collect import SampleStep
from policies.training import TRAM_KINDS

# Below this norm the direction carries no information (a flat Q, one available action, a
# deterministic π): the row is left as the learner's π rather than pushed along noise.
_FLAT = 1e-12


def unit_direction(g: torch.Tensor, avail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(δ̂ [M, A] unit-norm over the available actions, zero elsewhere; nonzero [M] bool)."""
    g = torch.where(avail, g, torch.zeros_like(g))
    norm = g.norm(dim=-1, keepdim=True)
    nonzero = norm.squeeze(-1) > _FLAT
    unit = torch.where(nonzero.unsqueeze(-1), g / norm.clamp_min(_FLAT), torch.zeros_like(g))
    return unit, nonzero


def j_direction(probs: torch.Tensor, q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """−∇_l Σ_a π(a) Q(a) = −π ⊙ (Q − μ) (unnormalised) of probs, q, avail [M, A]."""
    # A critic's value of an unavailable action is junk (often -1e9): keep it out of μ.
    q = torch.where(avail, q, torch.zeros_like(q))
    mu = (probs * q).sum(-1, keepdim=True)
    return -probs * (q - mu)


def var_direction(probs: torch.Tensor, q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """∇_l Var_π(Q) = π ⊙ ((Q − μ)² − Var) (unnormalised) of probs, q, avail [M, A]."""
    q = torch.where(avail, q, torch.zeros_like(q))
    mu = (probs * q).sum(-1, keepdim=True)
    dev2 = (q - mu) ** 2
    var = (probs * dev2).sum(-1, keepdim=True)
    return probs * (dev2 - var)


def kl_along(logits: torch.Tensor, direction: torch.Tensor, avail: torch.Tensor,
             beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(KL(π_β ‖ π) [M], log π_β [M, A]) with π_β = softmax(logits + β·direction)."""
    logp = torch.log_softmax(logits, -1)
    logq = torch.log_softmax(logits + beta.unsqueeze(-1) * direction, -1)
    terms = torch.where(avail, logq.exp() * (logq - logp), torch.zeros_like(logq))
    return terms.sum(-1).clamp_min(0.0), logq


def bisect_beta(logits: torch.Tensor, direction: torch.Tensor, avail: torch.Tensor,
                kl_max: float, expand_iters: int, bisect_iters: int, beta0: float = 1.0
                ) -> torch.Tensor:
    """The largest β [M] found with KL(softmax(l + β·δ̂) ‖ softmax(l)) ≤ kl_max, per row.

    The bracket grows by doubling from `beta0` for `expand_iters` iterations, so β is capped at
    beta0·2^expand_iters; a row whose bound is out of reach along δ̂ gets the cap.
    Bisection is valid because KL(π_β ‖ π) is non-decreasing in β along a fixed direction:
    d/dβ KL = β·Var_{π_β}(δ̂) ≥ 0, so {β : KL ≤ kl_max} is an interval [0, β*]."""
    M = logits.shape[0]
    lo = torch.zeros(M, dtype=logits.dtype, device=logits.device)
    hi = torch.full_like(lo, beta0)
    growing = torch.ones(M, dtype=torch.bool, device=logits.device)
    for _ in range(expand_iters):
        if not bool(growing.any()):  # every bracket closed: the rest would change nothing
            break
        ok = kl_along(logits, direction, avail, hi)[0] <= kl_max
        grow = growing & ok
        lo, hi = torch.where(grow, hi, lo), torch.where(grow, 2 * hi, hi)
        growing = grow
    for _ in range(bisect_iters):
        mid = 0.5 * (lo + hi)
        ok = kl_along(logits, direction, avail, mid)[0] <= kl_max
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    # hi is feasible only where the bracket never closed (the bound is out of reach): the cap.
    hi_ok = kl_along(logits, direction, avail, hi)[0] <= kl_max
    return torch.where(hi_ok, hi, lo)


class _Critic(nn.Module):
    """Q̂_k(s, o_k) → [A]: the attacker's own critic where the learner gives no action values."""

    def __init__(self, in_dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_actions))

    def forward(self, state: torch.Tensor, obs_k: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, obs_k], -1))


class TramSampler:
    """A `policies.learners.pg_collect.Sampler` that poisons agent `agent`'s action sampling.

    Defaults: `expand_iters`=16 doubles β from 1 to a cap of 65536, far past any logit gap
    that matters for a unit-norm δ̂; `bisect_iters`=30 then pins β to 2^-30 of its bracket,
    below what float32 sampling can tell apart, at ~47 softmaxes of [B, A] per step.
    `critic_lr`=5e-4 is EPyMARL's critic learning rate; `critic_epochs` full-batch Adam steps
    are taken per collected batch."""

    def __init__(self, method: str, kl_max: float = 6.0, freq: float = 1.0, agent: int = 0,
                 expand_iters: int = 16, bisect_iters: int = 30, seed: int = 0,
                 device: str | torch.device = "cpu", critic_hidden: int = 64,
                 critic_lr: float = 5e-4, critic_epochs: int = 4, gamma: float = 0.99):
        if method not in TRAM_KINDS:
            raise ValueError(f"unknown TRAM method {method!r}; one of {', '.join(TRAM_KINDS)}")
        if not (kl_max >= 0 and math.isfinite(kl_max)):
            raise ValueError(f"kl_max must be a finite number >= 0, got {kl_max}")
        if not 0.0 <= freq <= 1.0:
            raise ValueError(f"freq must be in [0, 1], got {freq}")
        if agent < 0:
            raise ValueError(f"agent must be >= 0, got {agent}")
        if expand_iters < 0 or bisect_iters < 0:
            raise ValueError("expand_iters and bisect_iters must be >= 0")
        self.method, self.kl_max = method, float(kl_max)
        self.freq, self.agent = float(freq), int(agent)
        self.expand_iters, self.bisect_iters = int(expand_iters), int(bisect_iters)
        self.seed, self.device = int(seed), torch.device(device)
        self.critic_hidden, self.critic_lr = int(critic_hidden), float(critic_lr)
        self.critic_epochs, self.gamma = int(critic_epochs), float(gamma)
        # The sampler's own stream, on the CPU so a run draws the same on any device; the
        # learner's generator and torch's global stream are never touched.
        self.gen = torch.Generator(device="cpu").manual_seed(self.seed)
        self.critic: _Critic | None = None
        self.opt: torch.optim.Optimizer | None = None
        # "learner" (white-box) or "own", decided by what the first step provides
        self.critic_source: str | None = None
        self.critic_loss: float | None = None
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.n_poisoned = 0
        self.n_scored = 0
        self.sum_llr = self.sum_kl = self.sum_beta = 0.0

    # --- own critic -------------------------------------------------------------------------

    def _ensure_critic(self, in_dim: int, n_actions: int) -> _Critic:
        if self.critic is None:
            # The learner's initialisation must not change when an attacker is present: build
            # from a forked, locally seeded global stream that is restored on exit.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 7919)
                critic = _Critic(in_dim, n_actions, self.critic_hidden)
            self.critic = critic.to(self.device)
            self.opt = torch.optim.Adam(self.critic.parameters(), lr=self.critic_lr)
        return self.critic

    def _q(self, step: SampleStep) -> torch.Tensor:
        k = self.agent
        if step.q is not None:
            self.critic_source = self.critic_source or "learner"
            return step.q[:, k]
        self.critic_source = self.critic_source or "own"
        critic = self._ensure_critic(step.state.shape[-1] + step.obs.shape[-1],
                                     step.probs.shape[-1])
        with torch.no_grad():
            return critic(step.state.to(self.device).float(),
                          step.obs[:, k].to(self.device).float()).to(step.probs.device)

    def _train_critic(self, batch: dict[str, torch.Tensor]) -> None:
        k = self.agent
        filled = batch["filled"].bool()
        if not bool(filled.any()):
            return
        reward = batch["reward"] * filled
        T = reward.shape[1]
        ret = torch.zeros_like(reward)
        g = torch.zeros_like(reward[:, 0])
        for t in reversed(range(T)):  # discounted Monte-Carlo return from each step
            g = reward[:, t] + self.gamma * g * filled[:, t]
            ret[:, t] = g
        critic = self._ensure_critic(batch["state"].shape[-1] + batch["obs"].shape[-1],
                                     batch["avail"].shape[-1])
        dev = self.device
        state = batch["state"][:, :T][filled].to(dev).float()
        obs_k = batch["obs"][:, :T, k][filled].to(dev).float()
        act = batch["actions"][:, :, k][filled].to(dev).long()
        target = ret[filled].to(dev).float()
        for _ in range(self.critic_epochs):
            pred = critic(state, obs_k).gather(-1, act.unsqueeze(-1)).squeeze(-1)
            loss = ((pred - target) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        self.critic_loss = float(loss.detach())

    # --- Sampler protocol -------------------------------------------------------------------

    def reset(self, batch_size: int) -> None:
        self._pending = []

    def distribution(self, step: SampleStep) -> torch.Tensor:
        k = self.agent
        if k >= step.probs.shape[1]:
            raise ValueError(f"TRAM agent {k} is out of range for {step.probs.shape[1]} agents")
        if self.freq <= 0.0:
            return step.probs
        B = step.probs.shape[0]
        alive = step.alive.bool()
        if self.freq >= 1.0:
            poisoned = alive
        else:
            u = torch.rand(B, generator=self.gen).to(alive.device)
            poisoned = alive & (u < self.freq)
        rows = poisoned.nonzero().squeeze(-1)
        if rows.numel() == 0:
            return step.probs
        avail = step.avail[rows, k].bool()
        logits = step.logits[rows, k].double().masked_fill(~avail, -1e9)
        probs = torch.softmax(logits, -1)
        if self.method == "tram_random":
            g = torch.randn(tuple(logits.shape), generator=self.gen, dtype=torch.float64)
            g = g.to(logits.device)
        else:
            q = self._q(step)[rows].double()
            g = (j_direction if self.method == "tram_j" else var_direction)(probs, q, avail)
        direction, nonzero = unit_direction(g, avail)
        beta = bisect_beta(logits, direction, avail, self.kl_max, self.expand_iters,
                           self.bisect_iters)
        beta = torch.where(nonzero, beta, torch.zeros_like(beta))
        kl, logq = kl_along(logits, direction, avail, beta)
        new = logq.exp().masked_fill(~avail, 0.0).to(step.probs.dtype)
        # A flat direction leaves the learner's own π, bit for bit.
        new = torch.where(nonzero.unsqueeze(-1), new, step.probs[rows, k])
        out = step.probs.clone()
        out[rows, k] = new
        logp = torch.log_softmax(logits, -1)
        logq = torch.where(nonzero.unsqueeze(-1), logq, logp)
        self._pending.append((int(step.t), rows.cpu(), logq.cpu(), logp.cpu()))
        self.n_poisoned += int(rows.numel())
        self.sum_kl += float(kl.sum())
        self.sum_beta += float(beta.sum())
        return out

    def observe(self, batch: dict[str, torch.Tensor]) -> None:
        k = self.agent
        actions = batch["actions"][:, :, k].cpu()
        for t, rows, logq, logp in self._pending:
            a = actions[rows, t].unsqueeze(-1)
            llr = logq.gather(-1, a) - logp.gather(-1, a)
            self.sum_llr += float(llr.sum())
            self.n_scored += int(rows.numel())
        self._pending = []
        if self.critic_source == "own":
            self._train_critic(batch)

    # --- reporting --------------------------------------------------------------------------

    def stats(self) -> dict:
        """Running figures; means are 0.0 until a poisoned step has been seen."""
        n, m = max(self.n_poisoned, 1), max(self.n_scored, 1)
        out = {"tram_llr": self.sum_llr / m, "tram_llr_total": self.sum_llr,
               "tram_kl": self.sum_kl / n, "tram_beta": self.sum_beta / n,
               "tram_poisoned": self.n_poisoned}
        if self.critic_loss is not None:
            out["tram_critic_loss"] = self.critic_loss
        return out

    def describe(self) -> dict:
        return {"method": self.method, "kl_max": self.kl_max, "freq": self.freq,
                "agent": self.agent, "seed": self.seed,
                "iterations": {"expand": self.expand_iters, "bisect": self.bisect_iters},
                "critic": self.critic_source, "critic_lr": self.critic_lr,
                "stats": self.stats()}


_CONFIG_KEYS = ("kl_max", "freq", "agent", "expand_iters", "bisect_iters", "seed",
                "critic_hidden", "critic_lr", "critic_epochs", "gamma")


def build_tram(kind: str, config: dict, spec, device: str | torch.device = "cpu") -> TramSampler:
    """A TRAM sampler of `kind` (policies.training.TRAM_KINDS) for a scenario of `spec`."""
    if kind not in TRAM_KINDS:
        raise ValueError(f"unknown training attack {kind!r}; one of {', '.join(TRAM_KINDS)}")
    unknown = sorted(set(config) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown {kind} parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(_CONFIG_KEYS)}")
    agent = int(config.get("agent", 0))
    if not 0 <= agent < spec.n_agents:
        raise ValueError(f"{kind}: agent {agent} is out of range, {spec.name} has "
                         f"{spec.n_agents} agents (0..{spec.n_agents - 1})")
    return TramSampler(kind, device=device, **{**config, "agent": agent})
