"""QMIX mixer: Rashid et al., "QMIX: Monotonic Value Function Factorisation for Deep
Multi-Agent Reinforcement Learning" (ICML 2018), as PyMARL's `modules/mixers/qmix.py` with
`hypernet_layers=2`.

Q_tot = w_2ᵀ ELU(W_1ᵀ Q + b_1) + V(s), where W_1 = |hyper_w_1(s)|, w_2 = |hyper_w_final(s)|
(absolute values give ∂Q_tot/∂Q_i ≥ 0, the monotonicity constraint of their eq. 5),
b_1 = hyper_b_1(s) and V(s) a two-layer state-value head. Parameter names follow PyMARL.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class QMixer(nn.Module):
    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hypernet_hidden: int = 64):
        super().__init__()
        self.n_agents, self.state_dim, self.embed = n_agents, state_dim, embed
        self.hyper_w_1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_hidden), nn.ReLU(), nn.Linear(hypernet_hidden, embed * n_agents)
        )
        self.hyper_w_final = nn.Sequential(
            nn.Linear(state_dim, hypernet_hidden), nn.ReLU(), nn.Linear(hypernet_hidden, embed)
        )
        self.hyper_b_1 = nn.Linear(state_dim, embed)
        self.V = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, agent_qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """agent_qs [..., n], states [..., S] → Q_tot [..., 1]."""
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)  # [M, 1, n]
        s = states.reshape(-1, self.state_dim)  # [M, S]
        w1 = self.hyper_w_1(s).abs().view(-1, self.n_agents, self.embed)  # [M, n, E]
        b1 = self.hyper_b_1(s).view(-1, 1, self.embed)  # [M, 1, E]
        hidden = F.elu(torch.bmm(qs, w1) + b1)  # [M, 1, E]
        w_final = self.hyper_w_final(s).abs().view(-1, self.embed, 1)  # [M, E, 1]
        v = self.V(s).view(-1, 1, 1)  # [M, 1, 1]
        y = torch.bmm(hidden, w_final) + v  # [M, 1, 1]
        return y.view(*lead, 1)
