"""Recurrent agent network and its greedy controller, as PyMARL's `RNNAgent` and `BasicMAC`.

Rashid et al., "QMIX: Monotonic Value Function Factorisation for Deep Multi-Agent
Reinforcement Learning" (ICML 2018), and PyMARL's `modules/agents/rnn_agent.py`
(Samvelyan et al., "The StarCraft Multi-Agent Challenge", 2019): one GRU network shared by
all agents, whose input is the agent's observation, then the one-hot of its last action
(`obs_last_action`), then the one-hot of its id (`obs_agent_id`), as PyMARL's
`BasicMAC._build_inputs`. Parameter names (fc1, rnn, fc2) follow PyMARL, so a PyMARL
`agent.th` state dict loads as is. EPyMARL (Papoudakis et al., "Benchmarking Multi-Agent
Deep Reinforcement Learning Algorithms in Cooperative Tasks", NeurIPS 2021) adds
`use_rnn: False`, where `rnn` is a Linear layer followed by a ReLU and the agent is
feed-forward.

Every caller builds the full input (observation, last action, id: `build_inputs`); an agent
that was trained without one of the extensions drops those columns itself, so learners,
runners and attacks need not know which extensions a team uses.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


def agent_input_dim(obs_dim: int, n_actions: int, n_agents: int, obs_last_action: bool = True,
                    obs_agent_id: bool = True) -> int:
    """Width of fc1's input, as PyMARL's `BasicMAC._get_input_shape`."""
    return obs_dim + (n_actions if obs_last_action else 0) + (n_agents if obs_agent_id else 0)


def select_inputs(inputs: torch.Tensor, obs_dim: int, n_actions: int, obs_last_action: bool,
                  obs_agent_id: bool) -> torch.Tensor:
    """Full inputs [..., obs + A + n] → the columns an agent with these flags reads."""
    if obs_last_action and obs_agent_id:
        return inputs
    parts = [inputs[..., :obs_dim]]
    if obs_last_action:
        parts.append(inputs[..., obs_dim:obs_dim + n_actions])
    if obs_agent_id:
        parts.append(inputs[..., obs_dim + n_actions:])
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


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
    """obs [+ last action] [+ id] → Linear(hidden) → ReLU → GRUCell(hidden) → Linear(actions).

    `input_dim` is fc1's input width. With `use_rnn=False` the GRU cell is EPyMARL's
    Linear(hidden) + ReLU and the returned hidden state is that layer's output (never read).
    `n_agents` is needed only when an extension is off, to find the columns of the full input.
    """

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64, *, use_rnn: bool = True,
                 obs_last_action: bool = True, obs_agent_id: bool = True,
                 n_agents: int | None = None):
        super().__init__()
        if not (obs_last_action and obs_agent_id) and n_agents is None:
            raise ValueError("an agent without the last-action or id input needs n_agents")
        self.hidden = hidden
        self.n_actions = n_actions
        self.use_rnn = bool(use_rnn)
        self.obs_last_action, self.obs_agent_id = bool(obs_last_action), bool(obs_agent_id)
        self.obs_dim = None if n_agents is None else (
            input_dim - (n_actions if obs_last_action else 0) - (n_agents if obs_agent_id else 0))
        self.fc1 = nn.Linear(input_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden) if use_rnn else nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    @property
    def layout(self) -> tuple:
        """What decides the computation besides the parameters: equal layouts stack."""
        full = self.obs_last_action and self.obs_agent_id
        return (self.fc1.in_features, self.hidden, self.n_actions, self.use_rnn,
                self.obs_last_action, self.obs_agent_id, None if full else self.obs_dim)

    def own_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Full inputs (`build_inputs`) or already fc1-wide inputs → fc1-wide inputs."""
        if inputs.shape[-1] == self.fc1.in_features:
            return inputs
        return select_inputs(inputs, self.obs_dim, self.n_actions, self.obs_last_action,
                             self.obs_agent_id)

    def init_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden, device=device or self.fc1.weight.device)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [M, in], h [M, hidden] → (q [M, A], h' [M, hidden]); M is any flat batch."""
        x = F.relu(self.fc1(self.own_inputs(inputs)))
        h = self.rnn(x, h) if self.use_rnn else F.relu(self.rnn(x))
        return self.fc2(h), h


def make_agent(obs_dim: int, n_actions: int, n_agents: int, hidden: int = 64, *,
               use_rnn: bool = True, obs_last_action: bool = True,
               obs_agent_id: bool = True) -> RNNAgent:
    """The agent of a scenario's shapes with PyMARL's input options."""
    return RNNAgent(agent_input_dim(obs_dim, n_actions, n_agents, obs_last_action, obs_agent_id),
                    n_actions, hidden, use_rnn=use_rnn, obs_last_action=obs_last_action,
                    obs_agent_id=obs_agent_id, n_agents=n_agents)


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
