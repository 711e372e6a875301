"""A team with targeted communication: TarMAC agents with a one-step message delay.

Das et al., "TarMAC: Targeted Multi-Agent Communication" (ICML 2019): agent j's message is a
signature k_j ∈ R^{d_k} and a value v_j ∈ R^{d_v}; a receiver i forms a query q_i ∈ R^{d_k}
and reads the attention-weighted sum of the values,

    α_ij = softmax_j(q_i · k_j / √d_k),   c_i = Σ_j α_ij v_j,

so a sender is heard by those whose queries match its signature. Here the softmax runs over
the OTHER agents only (j ≠ i): a receiver does not attend to itself, as CommNet's mean leaves
out the agent's own message, so that what an agent reads is what the team told it (the
paper's softmax runs over all N messages, the receiver's own included; with the one-step delay
below that would only echo the receiver's own last state, which its GRU already holds). As in our CommNet team
(policies.teams.commnet), a message is read one step after it is sent: at step t

    x = relu(fc1(inputs_i)),  q_i = query(cat(x, h_i)),  c_i = Σ_{j≠i} α_ij v_j(t−1),
    h' = GRUCell(cat(x, c_i), h_i),  Q = fc2(h'),  k' = key(h'),  v' = tanh(value(h')).

The query reads the receiver's current observation as well as its recurrent state, so whom
it listens to can depend on what it sees now. Signatures are linear, as in the paper; values
are squashed like CommNet's messages.

The messages in transit are carried in the recurrent state, [h | k | v] per agent
(H + d_k + d_v wide; zeros before the first step), so everything that holds a Q-learning team
carries them without knowing about them, and the learner backpropagates through them across
time. The message is the whole [k | v] (`msg_dim` = d_k + d_v): `messages` and
`with_messages` read and replace both, so an attacker on the message surface can forge a
signature as well as a value.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from policies.teams.message_agent import MessageAgent
from policies.teams.rnn_agent import agent_input_dim


def _others(n: int, device) -> torch.Tensor:
    """[n, n − 1]: row i lists the agents other than i."""
    j = torch.arange(n - 1, device=device).unsqueeze(0)
    return j + (j >= torch.arange(n, device=device).unsqueeze(1)).long()


def attend_to_others(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q [..., n, d_k], k [..., n, d_k], v [..., n, d_v] → c [..., n, d_v] with
    c_i = Σ_{j≠i} softmax_j(q_i·k_j / √d_k) v_j."""
    n = q.shape[-2]
    if n < 2:  # a lone agent hears nothing
        return v.new_zeros(v.shape)
    # The others' rows are gathered rather than the own logit masked: an agent's own message
    # then enters no arithmetic of what it reads, so no value of it (even inf) can leak in.
    idx = _others(n, q.device)
    k_o, v_o = k[..., idx, :], v[..., idx, :]  # [..., n, n − 1, d]
    logits = (q.unsqueeze(-2) * k_o).sum(-1) / math.sqrt(q.shape[-1])
    return (torch.softmax(logits, -1).unsqueeze(-1) * v_o).sum(-2)


class TarMACAgent(MessageAgent):
    """`RNNAgent`'s interface with a d_k-wide signature and a d_v-wide value per message
    (policies.teams.message_agent): `msg_dim` is the width of a message, d_k + d_v."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 msg_dim: int = 16, key_dim: int = 8, *, obs_last_action: bool = True,
                 obs_agent_id: bool = True):
        super().__init__(input_dim, n_actions, n_agents, hidden, key_dim + msg_dim,
                         obs_last_action, obs_agent_id)
        self.key_dim, self.value_dim = key_dim, msg_dim
        self.query = nn.Linear(2 * hidden, key_dim)
        self.rnn = nn.GRUCell(hidden + msg_dim, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)
        self.key = nn.Linear(hidden, key_dim)
        self.value = nn.Linear(hidden, msg_dim)

    @property
    def layout(self) -> tuple:
        return self.layout_of("tarmac", self.key_dim, self.value_dim)

    def read(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x = relu(fc1(inputs)) [B, n, H], h [B, n, H + d_k + d_v] → c [B, n, d_v]."""
        q = self.query(torch.cat([x, h[..., :self.rnn_hidden]], -1))
        m = self.messages(h)
        return attend_to_others(q, m[..., :self.key_dim], m[..., self.key_dim:])

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [M, in], h [M, H + d_k + d_v] → (q [M, A], h' [M, H + d_k + d_v]); M = B·n,
        batch-major."""
        B, n = self.teams(h), self.n_agents
        x = F.relu(self.fc1(self.own_inputs(inputs)))
        c = self.read(x.view(B, n, -1), h.view(B, n, -1)).reshape(B * n, self.value_dim)
        h_new = self.rnn(torch.cat([x, c], dim=-1), h[:, :self.rnn_hidden])
        out = torch.cat([h_new, self.key(h_new), torch.tanh(self.value(h_new))], dim=-1)
        return self.fc2(h_new), out


def make_tarmac(obs_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                msg_dim: int = 16, key_dim: int = 8, *, obs_last_action: bool = True,
                obs_agent_id: bool = True) -> TarMACAgent:
    """The TarMAC agent of a scenario's shapes with PyMARL's input options; `msg_dim` is the
    value width d_v, `key_dim` the signature width d_k."""
    return TarMACAgent(agent_input_dim(obs_dim, n_actions, n_agents, obs_last_action,
                                       obs_agent_id),
                       n_actions, n_agents, hidden, msg_dim, key_dim,
                       obs_last_action=obs_last_action, obs_agent_id=obs_agent_id)
