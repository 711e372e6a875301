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

    u_i ~ N(μ_θ(o_i, i), diag σ_θ²),   δ_i = ε · tanh(u_i) ⊙ m              (L∞ ball)
                                       δ_i = Π_{‖·‖₂ ≤ ε}(ε · tanh(u_i) ⊙ m)  (L2 ball)
    õ_i = clip(o_i + δ_i, l, h)  for attacked agents,  õ_j = o_j otherwise,

with m the mask of the attacked feature groups (all ones by default) and [l, h] the
scenario's feature bounds (`clip`, on by default). PPO's ratio is taken on u: the squashing,
the projection and the clip do not depend on θ, so they cancel in π_new(u)/π_old(u). The
coordinates of u outside the groups have no effect on õ, so they are left out of log π(u)
and of the entropy: they would only add noise to the ratio. For evaluation (matches, the
payoff table) the attacker is deterministic: u = μ_θ, which keeps a cell reproducible from
its seed alone. The critic sees the attacker's input and the global state (a centralised
value, used in training only).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from policies.learners.ppo import MLP
from policies.observation.learned import (
    LEARNED_ATTACKERS, LearnedAttacker, agent_inputs, check_fits, project_ball, scatter_delta,
    with_state,
)


# -- ATLA --------------------------------------------------------------------------------------
class ATLAAttacker(LearnedAttacker):
    """Gaussian perturbation policy; parameters "policy.*" (with "policy.log_std"), "value.*"."""

    algo = "atla"

    def __init__(self, config: dict, spec=None):
        super().__init__(config, spec)
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
            delta = project_ball(self.restrict(self.eps * torch.tanh(u)), self.eps, self.norm)
            sample = {"x": x, "action": u, "logp": self.restrict(dist.log_prob(u)).sum(-1)}
            if generator is not None:
                xv = with_state(x, state)
                sample["xv"] = xv
                sample["value"] = self.value(xv).squeeze(-1)  # [R, m]
        return self.valid(obs, scatter_delta(obs, delta, self.idx)), sample

    def evaluate(self, batch):
        dist = self._dist(batch["x"])
        logp = self.restrict(dist.log_prob(batch["action"])).sum(-1)
        entropy = self.restrict(dist.entropy()).sum(-1)
        return logp, entropy, self.value(batch["xv"]).squeeze(-1)


def atla_config(spec, eps: float, norm: str, targets, freq: float = 1.0, hidden: int = 64,
                clip: bool = True, groups: str = "all") -> dict:
    return {
        "algo": "atla", "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
        "n_actions": spec.n_actions, "state_dim": spec.state_dim, "eps": float(eps), "norm": norm,
        "targets": targets, "freq": float(freq), "hidden": int(hidden), "clip": bool(clip),
        "groups": str(groups),
    }


def build_atla(rec, spec, device="cpu") -> ATLAAttacker:
    """LEARNED_ATTACKERS builder: a stored record (config, weights) → a deterministic attacker
    within the scenario's feature groups and bounds."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    return ATLAAttacker(rec.config, spec).load_weights(rec.weights).to(device).eval()


LEARNED_ATTACKERS["atla"] = build_atla
