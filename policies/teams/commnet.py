"""A communicating team: CommNet agents with a one-step message delay.

Sukhbaatar et al., "Learning Multiagent Communication with Backpropagation" (NeurIPS 2016):
each agent's next state reads the mean of the other agents' communication vectors, and the
whole team is trained end to end through these means. As in Xue et al., "Mis-spoke or
mis-lead: Achieving Robustness in Multi-Agent Communicative Reinforcement Learning"
(ℜ-MACRL, AAMAS 2022), who attack CommNet on predator-prey, a message is read one step after
it is sent: at step t agent i reads c_i = mean over j ≠ i of m_j(t−1), then

    x = relu(fc1(inputs_i)),  h' = GRUCell(cat(x, c_i), h),  q = fc2(h'),  m' = tanh(msg(h')).

The messages in transit are carried in the recurrent state, [h | m] per agent (H + d wide;
zeros before the first step), so everything that holds a Q-learning team (QTeam, the
Q-learner's unroll, the runner, StackedTeam's padding) carries them without knowing about
them, and the learner backpropagates through them across time. `messages` and
`with_messages` read and replace the in-transit messages, for hooks on the message surface.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from policies.teams.message_agent import MessageAgent
from policies.teams.rnn_agent import agent_input_dim


def mean_of_others(m: torch.Tensor) -> torch.Tensor:
    """m [..., n, d] → [..., n, d]: for each agent the mean of the other agents' rows."""
    n = m.shape[-2]
    # Weights rather than (sum − own) / (n − 1): an agent's own message then has no part in
    # what it reads, not even rounding, however large an injected message is. A lone agent
    # hears nothing.
    w = (1.0 - torch.eye(n, dtype=m.dtype, device=m.device)) / max(n - 1, 1)
    return torch.einsum("ij,...jd->...id", w, m)


class CommNetAgent(MessageAgent):
    """`RNNAgent`'s interface with a d-wide message (policies.teams.message_agent)."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 msg_dim: int = 16, *, obs_last_action: bool = True, obs_agent_id: bool = True):
        super().__init__(input_dim, n_actions, n_agents, hidden, msg_dim, obs_last_action,
                         obs_agent_id)
        self.rnn = nn.GRUCell(hidden + msg_dim, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)
        self.msg = nn.Linear(hidden, msg_dim)

    @property
    def layout(self) -> tuple:
        return self.layout_of("commnet", self.msg_dim)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [M, in], h [M, H + d] → (q [M, A], h' [M, H + d]); M = B·n, batch-major."""
        B, n = self.teams(h), self.n_agents
        c = mean_of_others(self.messages(h.view(B, n, -1))).reshape(B * n, self.msg_dim)
        x = F.relu(self.fc1(self.own_inputs(inputs)))
        h_new = self.rnn(torch.cat([x, c], dim=-1), h[:, :self.rnn_hidden])
        return self.fc2(h_new), torch.cat([h_new, torch.tanh(self.msg(h_new))], dim=-1)


def make_commnet(obs_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 msg_dim: int = 16, *, obs_last_action: bool = True,
                 obs_agent_id: bool = True) -> CommNetAgent:
    """The CommNet agent of a scenario's shapes with PyMARL's input options."""
    return CommNetAgent(agent_input_dim(obs_dim, n_actions, n_agents, obs_last_action,
                                        obs_agent_id),
                        n_actions, n_agents, hidden, msg_dim, obs_last_action=obs_last_action,
                        obs_agent_id=obs_agent_id)
