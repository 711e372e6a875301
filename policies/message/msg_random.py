"""ℜ-MACRL's random message attack.

Xue et al., "Mis-spoke or mis-lead: Achieving Robustness in Multi-Agent Communicative
Reinforcement Learning" (AAMAS 2022): a malicious agent keeps its action and message policies,
and what it sends is altered,

    m_adv = (1 − ω)·m_out + ω·δ     (combine=convex)
    m_adv = m_out + δ               (combine=add; ω is not used)

Their random baseline draws δ as Gaussian noise rescaled to the L2 norm of m_out, per agent
and step, so the noise is as loud as the message it replaces and no louder.
"""

from __future__ import annotations

import math

import torch

from policies.message.malicious import check_count, draw_malicious


def same_norm_noise(msgs: torch.Tensor, rand) -> torch.Tensor:
    """[R, n, d] Gaussian directions with each agent's ‖δ‖ = ‖m‖, from per-episode streams."""
    n, d = msgs.shape[1], msgs.shape[2]
    u1 = rand(n, d).clamp_min(1e-7).to(msgs)
    u2 = rand(n, d).to(msgs)
    gauss = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)  # Box-Muller
    direction = gauss / gauss.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return direction * msgs.norm(dim=-1, keepdim=True)


class MsgRandom:
    surface = "message"

    def __init__(self, config: dict, n_agents: int):
        self.targets = config.get("targets", 1)
        check_count(self.targets, n_agents)
        self.omega = float(config.get("omega", 1.0))
        self.combine = config.get("combine", "convex")

    def reset(self, rows, device):
        pass

    def malicious(self, n_agents: int, rand) -> torch.Tensor:
        return draw_malicious(self.targets, n_agents, rand)

    def message(self, msgs: torch.Tensor, ctx) -> torch.Tensor:
        delta = same_norm_noise(msgs, ctx.rand)
        if self.combine == "add":
            adv = msgs + delta
        else:
            adv = (1 - self.omega) * msgs + self.omega * delta
        # the rollout keeps honest agents' messages anyway; masking here keeps the attack's own
        # output honest about whom it touched
        return torch.where(ctx.malicious.unsqueeze(-1), adv, msgs)
