"""ℜ-MACRL's learned message attacker.

Xue et al., "Mis-spoke or mis-lead: Achieving Robustness in Multi-Agent Communicative
Reinforcement Learning" (AAMAS 2022), Eq. 1: a malicious agent i keeps its action and message
policies; an adversarial Gaussian policy with a fixed covariance Λ = σ²·I alters what it sends,

    δ_i ~ ξ(· | τ_i, m_in_i, m_out_i) = N(f_μ(τ_i, m_in_i, m_out_i), Λ)
    m_adv_i = (1 − ω)·m_out_i + ω·δ_i        (combine=convex)
    m_adv_i = m_out_i + δ_i                  (combine=add; ω is not used)

and ξ is trained with PPO on the negated team reward less a penalty on the change,

    r_adv_i = −r_team − α·‖m_out_i − m_adv_i‖²,

one sample per malicious agent and step (policies.message.train_msg_attacker).

Inputs, the same for f_μ and for the value function V:
  τ_i      = o_i ⊕ onehot(i): the malicious agent's clean observation of the step and its
             index. No recurrent summary of its history: the attacker stays stateless, so an
             episode plays the same alone or inside any batch, and the in-transit messages
             already summarise the team's past;
  m_in_i   = the mean of the other agents' in-transit messages (what a CommNet agent reads;
             against a team that reads by attention, the plain mean of what reaches i);
  m_out_i  = agent i's own in-transit message.

Σ is fixed, so PPO's ratio moves only the mean and the entropy is a constant. In matches (the
payoff table) the attacker plays δ_i = f_μ, which keeps a cell reproducible from its seed.
Malicious agents are drawn per episode from `targets` as for msg_random (policies.message).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from policies.errors import PolicyError
from policies.learners.ppo import MLP
from policies.message.malicious import check_count, draw_malicious
from policies.observation.learned import check_fits
from policies.teams.commnet import mean_of_others
from policies.weights import load_named


class MsgPPOAttacker(nn.Module):
    """Mean network "policy.*" and value network "value.*", shared by the malicious agents."""

    surface = "message"
    algo = "msg_ppo"

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        o, n, d, h = (int(config[k]) for k in ("obs_dim", "n_agents", "msg_dim", "hidden"))
        self.obs_dim, self.n_agents, self.msg_dim = o, n, d
        self.targets = config.get("targets", 1)
        check_count(self.targets, n)
        self.omega = float(config.get("omega", 1.0))
        self.combine = str(config.get("combine", "convex"))
        if self.combine not in ("convex", "add"):
            raise PolicyError(f"unknown combine {self.combine!r}; known: convex, add")
        self.alpha = float(config.get("alpha", 0.0))
        self.sigma = float(config.get("sigma", 0.5))
        self.policy = MLP(o + n + 2 * d, h, d)
        self.value = MLP(o + n + 2 * d, h, 1, out_gain=1.0)

    # -- the network ---------------------------------------------------------------------------
    def inputs(self, obs: torch.Tensor, msgs: torch.Tensor) -> torch.Tensor:
        """[R, n, o + n + 2d]: τ_i ⊕ m_in_i ⊕ m_out_i for every agent (the malicious ones are
        picked afterwards, so one call serves any set of them)."""
        R, n, _ = obs.shape
        if msgs.shape[-1] != self.msg_dim or n != self.n_agents:
            raise PolicyError(f"msg_ppo attacker made for {self.n_agents} agents sending "
                              f"{self.msg_dim}-wide messages meets {n} agents sending "
                              f"{msgs.shape[-1]}-wide ones")
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(R, -1, -1)
        msgs = msgs.to(obs.dtype)
        return torch.cat([obs, ids, mean_of_others(msgs), msgs], dim=-1)

    def mix(self, msgs: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """m_adv from m_out and δ (Eq. 1)."""
        if self.combine == "add":
            return msgs + delta
        return (1 - self.omega) * msgs + self.omega * delta

    def _log_prob(self, mu: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        z = (delta - mu) / self.sigma
        return (-0.5 * z * z - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def act(self, obs: torch.Tensor, msgs: torch.Tensor,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """(m_adv [R, n, d] for every agent, samples for PPO with leading dims [R, n]);
        deterministic (δ = f_μ) when `generator` is None."""
        with torch.no_grad():
            x = self.inputs(obs, msgs)
            mu = self.policy(x)
            if generator is None:
                delta = mu
            else:
                noise = torch.randn(mu.shape, generator=generator, device=generator.device)
                delta = mu + self.sigma * noise.to(mu)
            sample = {"x": x, "action": delta, "logp": self._log_prob(mu, delta)}
            if generator is not None:
                sample["value"] = self.value(x).squeeze(-1)
        return self.mix(msgs.to(delta.dtype), delta), sample

    def evaluate(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """policies.learners.ppo.ActorCritic: (log ξ(δ), entropy, V) of flat samples."""
        mu = self.policy(batch["x"])
        logp = self._log_prob(mu, batch["action"])
        entropy = torch.full_like(logp, self.msg_dim * (0.5 + 0.5 * math.log(2 * math.pi)
                                                        + math.log(self.sigma)))
        return logp, entropy, self.value(batch["x"]).squeeze(-1)

    # -- arena.rollout.MessageAttacker ---------------------------------------------------------
    def reset(self, rows: int, device) -> None:
        pass

    def malicious(self, n_agents: int, rand) -> torch.Tensor:
        return draw_malicious(self.targets, n_agents, rand)

    def message(self, msgs: torch.Tensor, ctx) -> torch.Tensor:
        if ctx.obs is None:
            raise PolicyError("the msg_ppo attacker needs the agents' observations (ctx.obs)")
        adv, _ = self.act(ctx.obs, msgs)
        return torch.where(ctx.malicious.unsqueeze(-1), adv.to(msgs.dtype), msgs)

    # -- weights as named float32 arrays -------------------------------------------------------
    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32)
                for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict) -> "MsgPPOAttacker":
        return load_named(self, weights, "", "msg_ppo network")


def msg_ppo_config(spec, msg_dim: int, targets=1, omega: float = 1.0, combine: str = "convex",
                   alpha: float = 0.1, sigma: float = 0.5, hidden: int = 64) -> dict:
    """The stored config: every key a parameter of the `msg_ppo` kind (policies.kinds)."""
    return {
        "algo": "msg_ppo", "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
        "n_actions": spec.n_actions, "msg_dim": int(msg_dim), "targets": targets,
        "omega": float(omega), "combine": str(combine), "alpha": float(alpha),
        "sigma": float(sigma), "hidden": int(hidden),
    }


def build_msg_ppo(rec, spec, device="cpu") -> MsgPPOAttacker:
    """A stored record (config, weights) → the deterministic attacker of matches."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    return MsgPPOAttacker(rec.config).load_weights(rec.weights).to(device).eval()
