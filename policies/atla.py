"""ATLA: a learned perturbation policy on the attacked agents' observations.

Zhang et al., "Robust Reinforcement Learning on State Observations with Learned Optimal
Adversary" (ICLR 2021): for a fixed victim π, the state-adversary ν that minimises the
victim's return is the optimal policy of an MDP whose action is the perturbed state and whose
reward is the victim's negated reward (their Theorem 1), so ν can be learned with PPO. The
cooperative multi-agent version is Guo et al., "Enhancing the Robustness of QMIX against
State-adversarial Attacks" (2023), Alg. 1: the perturbation policy acts on every attacked
agent's observation, the defender acts greedily on what it sees, and the adversary's reward
is −r_team.

Parametrisation (one network shared by the attacked agents, input o_i ⊕ onehot(i)):

    u_i ~ N(μ_θ(o_i, i), diag σ_θ²),   δ_i = ε · tanh(u_i)              (L∞ ball)
                                       δ_i = Π_{‖·‖₂ ≤ ε}(ε · tanh(u_i))  (L2 ball)
    õ_i = o_i + δ_i  for attacked agents,  õ_j = o_j otherwise.

PPO's ratio is taken on u: the squashing and the projection do not depend on θ, so they
cancel in π_new(u)/π_old(u). For evaluation (matches, the payoff table) the attacker is
deterministic: u = μ_θ, which keeps a cell reproducible from its seed alone. The critic sees
the attacker's input and the global state (a centralised value, used in training only).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from policies.errors import PolicyError
from policies.weights import load_named
from policies.obs_attacks import target_mask
from policies.ppo import MLP


# -- helpers shared with PA-AD ---------------------------------------------------------------
def agent_inputs(obs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """o_i ⊕ onehot(i) of the attacked agents: obs [R, n, o], idx [m] → [R, m, o + n]."""
    R, n, _ = obs.shape
    ids = torch.eye(n, device=obs.device, dtype=obs.dtype)[idx].expand(R, -1, -1)  # [R, m, n]
    return torch.cat([obs[:, idx], ids], dim=-1)


def with_state(x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """Critic input: x [R, m, d] ⊕ state [R, s] → [R, m, d + s]."""
    return torch.cat([x, state.unsqueeze(1).expand(-1, x.shape[1], -1).to(x.dtype)], dim=-1)


def project_ball(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Per-agent projection onto the ε-ball (last dim)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / delta.norm(dim=-1, keepdim=True).clamp_min(eps))


def scatter_delta(obs: torch.Tensor, delta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """õ = o with δ [R, m, o] added to the attacked agents idx [m] only."""
    full = torch.zeros_like(obs)
    full[:, idx] = delta.to(obs.dtype)
    return obs + full


def check_fits(config: dict, spec, ref: str = "") -> None:
    """A stored learned attacker must match the scenario's shapes."""
    got = tuple(int(config.get(k, -1)) for k in ("obs_dim", "n_agents", "n_actions"))
    want = (spec.obs_dim, spec.n_agents, spec.n_actions)
    if got != want:
        who = f"{ref}: " if ref else ""
        raise PolicyError(f"{who}attacker made for (obs_dim, n_agents, n_actions) = {got}, "
                          f"scenario {spec.name} has {want}")


class LearnedAttacker(nn.Module):
    """Common part of the learned observation attackers: budget, attacked agents, weights.

    Subclasses implement `act(obs, q_fn, avail, state, generator)` → (õ [R, n, o], sample),
    where `sample` holds what PPO needs per attacked agent ("x", "xv", "action", "logp",
    "value", ...; leading dims [R, m]); with `generator=None` the action is deterministic.
    """

    algo = ""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.eps = float(config["eps"])
        self.norm = str(config.get("norm", "linf"))
        if self.norm not in ("linf", "l2"):
            raise PolicyError(f"unknown norm {self.norm!r}; known: linf, l2")
        self.n_agents = int(config["n_agents"])
        mask = target_mask(config.get("targets", "all"), self.n_agents)
        self.register_buffer("idx", mask.nonzero().flatten(), persistent=False)  # [m]

    # ObservationAttacker protocol (arena.rollout)
    def reset(self, rows: int, device) -> None:
        pass

    def perturb(self, obs: torch.Tensor, ctx) -> torch.Tensor:
        seen, _ = self.act(obs, ctx.q_fn, ctx.avail, ctx.state, generator=None)
        return seen.detach()

    # weights as named float32 arrays
    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict) -> "LearnedAttacker":
        return load_named(self, weights, "", f"{self.algo} network")


# -- ATLA --------------------------------------------------------------------------------------
class ATLAAttacker(LearnedAttacker):
    """Gaussian perturbation policy; parameters "policy.*" (with "policy.log_std"), "value.*"."""

    algo = "atla"

    def __init__(self, config: dict):
        super().__init__(config)
        o, n, s, h = (int(config[k]) for k in ("obs_dim", "n_agents", "state_dim", "hidden"))
        self.policy = MLP(o + n, h, o)
        log_std = torch.zeros(o)  # state-independent σ, 1 at the start
        self.policy.register_parameter("log_std", nn.Parameter(log_std))
        self.value = MLP(o + n + s, h, 1, out_gain=1.0)

    def _dist(self, x: torch.Tensor) -> torch.distributions.Normal:
        mu = self.policy(x)  # [..., o]
        return torch.distributions.Normal(mu, self.policy.log_std.exp().expand_as(mu))

    def act(self, obs, q_fn, avail, state, generator: torch.Generator | None = None):
        with torch.no_grad():
            x = agent_inputs(obs, self.idx)  # [R, m, o + n]
            dist = self._dist(x)
            if generator is None:
                u = dist.mean
            else:
                noise = torch.randn(dist.mean.shape, generator=generator, device=generator.device)
                u = dist.mean + dist.stddev * noise.to(dist.mean.device)  # [R, m, o]
            delta = project_ball(self.eps * torch.tanh(u), self.eps, self.norm)
            sample = {"x": x, "action": u, "logp": dist.log_prob(u).sum(-1)}
            if generator is not None:
                xv = with_state(x, state)
                sample["xv"] = xv
                sample["value"] = self.value(xv).squeeze(-1)  # [R, m]
        return scatter_delta(obs, delta, self.idx), sample

    def evaluate(self, batch):
        dist = self._dist(batch["x"])
        logp = dist.log_prob(batch["action"]).sum(-1)
        return logp, dist.entropy().sum(-1), self.value(batch["xv"]).squeeze(-1)


def atla_config(spec, eps: float, norm: str, targets, freq: float = 1.0, hidden: int = 64) -> dict:
    return {
        "algo": "atla", "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
        "n_actions": spec.n_actions, "state_dim": spec.state_dim, "eps": float(eps), "norm": norm,
        "targets": targets, "freq": float(freq), "hidden": int(hidden),
    }


def build_atla(rec, spec, device="cpu") -> ATLAAttacker:
    """LEARNED_ATTACKERS builder: a stored record (config, weights) → a deterministic attacker."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    return ATLAAttacker(rec.config).load_weights(rec.weights).to(device).eval()


def _register() -> None:
    from policies.lineup import LEARNED_ATTACKERS

    LEARNED_ATTACKERS["atla"] = build_atla


_register()
