"""Recurrent agent network and its greedy controller, as PyMARL's `RNNAgent` and `BasicMAC`.

Rashid et al., "QMIX: Monotonic Value Function Factorisation for Deep Multi-Agent
Reinforcement Learning" (ICML 2018), and PyMARL's `modules/agents/rnn_agent.py`: one GRU
network shared by all agents, whose input is the agent's observation, the one-hot of its
last action and the one-hot of its id. Parameter names (fc1, rnn, fc2) follow PyMARL, so a
PyMARL `agent.th` state dict loads as is.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


def agent_input_dim(obs_dim: int, n_actions: int, n_agents: int) -> int:
    return obs_dim + n_actions + n_agents


def build_inputs(obs: torch.Tensor, last_action_onehot: torch.Tensor) -> torch.Tensor:
    """Concatenate obs [B,n,obs], last action one-hot [B,n,A] and agent id one-hot [n,n]."""
    B, n, _ = obs.shape
    ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(B, n, n)  # [B, n, n]
    return torch.cat([obs, last_action_onehot.to(obs.dtype), ids], dim=-1)  # [B, n, in]


def onehot_actions(actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Long actions [..., n] (-1 for "none yet") to a float one-hot [..., n, A]."""
    valid = actions >= 0
    oh = F.one_hot(actions.clamp(min=0), n_actions).float()
    return oh * valid.unsqueeze(-1).float()


class RNNAgent(nn.Module):
    """obs + last action + id → Linear(hidden) → ReLU → GRUCell(hidden) → Linear(n_actions)."""

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(input_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    def init_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden, device=device or self.fc1.weight.device)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [M, in], h [M, hidden] → (q [M, A], h' [M, hidden]); M is any flat batch."""
        x = F.relu(self.fc1(inputs))
        h = self.rnn(x, h)
        return self.fc2(h), h


def mask_unavailable(q: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
    # A finite fill keeps gradients and softmaxes well defined where it matters.
    if avail is None:
        return q
    return q.masked_fill(~avail.bool(), -1e9)


class QTeam:
    """Greedy controller over a shared RNNAgent: hidden state, inputs and action choice.

    This is what a match or an attack holds of a Q-learning defender. Hidden states are
    [B, n, hidden]; last actions are either long indices [B, n] (-1 = none yet) or a float
    one-hot [B, n, A].
    """

    def __init__(self, agent: RNNAgent, n_agents: int, n_actions: int):
        self.agent = agent
        self.n_agents = n_agents
        self.n_actions = n_actions

    @property
    def device(self) -> torch.device:
        return self.agent.fc1.weight.device

    def initial_state(self, B: int) -> torch.Tensor:
        return torch.zeros(B, self.n_agents, self.agent.hidden, device=self.device)  # [B, n, H]

    def _last_onehot(self, last_action: torch.Tensor | None, B: int) -> torch.Tensor:
        if last_action is None:
            return torch.zeros(B, self.n_agents, self.n_actions, device=self.device)
        if last_action.dtype in (torch.long, torch.int32, torch.int64):
            return onehot_actions(last_action.long(), self.n_actions)
        return last_action

    def q_values(
        self,
        obs: torch.Tensor,
        hidden: torch.Tensor,
        last_action: torch.Tensor | None = None,
        avail: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [B,n,obs] → (q [B,n,A], hidden' [B,n,H]). With `avail`, unavailable Q = -1e9."""
        B, n, _ = obs.shape
        inputs = build_inputs(obs, self._last_onehot(last_action, B))  # [B, n, in]
        q, h = self.agent(inputs.reshape(B * n, -1), hidden.reshape(B * n, -1))
        q = q.view(B, n, -1)
        return mask_unavailable(q, avail), h.view(B, n, -1)

    def q_fn(
        self, hidden: torch.Tensor, last_action: torch.Tensor | None = None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Q as a function of the observation alone, recurrent state fixed (for attacks)."""
        hidden = hidden.detach()

        def fn(obs: torch.Tensor) -> torch.Tensor:
            return self.q_values(obs, hidden, last_action)[0]

        return fn

    @staticmethod
    def act_greedy(q: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy action over available actions: q [B,n,A] → [B,n] long."""
        return mask_unavailable(q, avail).argmax(-1)
