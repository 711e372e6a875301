"""What every communicating agent shares: the recurrent state [h | m] and RNNAgent's interface.

An agent of a communicating team (commnet, tarmac, ndq) carries the message it sent at the
previous step in its recurrent state, [h | m] per agent (H + d wide, zeros before the first
step), so the rest of the project (QTeam, the Q-learner's unroll, the runner, StackedTeam's
padding) holds messages without knowing about them. Rows are flat and batch-major, as for
RNNAgent: row b·n + i is agent i of episode b; `teams` recovers B.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from policies.teams.rnn_agent import RNNAgent


class MessageAgent(nn.Module):
    """Base of the communicating agents: `hidden` is the whole state's width, H + `msg_dim`;
    `rnn_hidden` is H. Subclasses add their layers after `fc1`, in their own order."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int,
                 msg_dim: int, obs_last_action: bool = True, obs_agent_id: bool = True):
        super().__init__()
        self.rnn_hidden, self.msg_dim, self.n_agents = hidden, msg_dim, n_agents
        self.hidden = hidden + msg_dim
        self.n_actions = n_actions
        self.use_rnn = True
        self.obs_last_action, self.obs_agent_id = bool(obs_last_action), bool(obs_agent_id)
        self.obs_dim = (input_dim - (n_actions if obs_last_action else 0)
                        - (n_agents if obs_agent_id else 0))
        self.fc1 = nn.Linear(input_dim, hidden)

    own_inputs = RNNAgent.own_inputs

    def layout_of(self, tag: str, *widths: int) -> tuple:
        """Equal layouts stack in StackedTeam; the leading tag keeps the kinds apart."""
        full = self.obs_last_action and self.obs_agent_id
        return (tag, self.fc1.in_features, self.rnn_hidden, *widths, self.n_actions,
                self.obs_last_action, self.obs_agent_id, None if full else self.obs_dim)

    def init_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.hidden, device=device or self.fc1.weight.device)

    def messages(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., n, H + d] → the messages in transit [..., n, d]."""
        return hidden[..., self.rnn_hidden:self.hidden]

    def with_messages(self, hidden: torch.Tensor, msgs: torch.Tensor) -> torch.Tensor:
        """hidden [..., n, H + d] with its in-transit messages replaced by msgs [..., n, d]."""
        return torch.cat([hidden[..., :self.rnn_hidden], msgs], dim=-1)

    def teams(self, h: torch.Tensor) -> int:
        """The number of episodes B in flat rows h [B·n, ...]."""
        M, n = h.shape[0], self.n_agents
        if M % n:
            raise ValueError(f"{M} rows are not whole teams of {n} agents")
        return M // n
