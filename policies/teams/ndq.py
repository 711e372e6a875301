"""A team with learned Gaussian messages under a QMIX mixer: NDQ agents with a one-step delay.

Wang et al., "Learning Nearly Decomposable Value Functions via Communication Minimization"
(NDQ, ICLR 2020): each agent i sends a message drawn from a Gaussian N(μ_i, σ_i) computed
from its own history, receivers read the other agents' messages beside their observation,
and the team is trained with the QMIX TD loss plus information regularisers. As in our
CommNet and TarMAC teams (policies.teams.commnet, policies.teams.tarmac), a message is read
one step after it is sent: at step t agent i reads the others' messages in agent order,
c_i = [m_j(t−1)]_{j≠i} ((n − 1)·d wide), then

    x = relu(fc1(inputs_i) + listen(c_i)),  h' = GRUCell(x, h),  Q = fc2(h'),
    μ = mu(h'),  σ = exp(clamp(log_sigma(h'))),  m' = μ + σ·ε (training) or μ (play).

`listen` is the message columns of one input layer over [inputs | c] (no bias of its own), so
`fc1` keeps the shape of a QMIX agent's first layer and the input layout of a stored team is
read from its shapes as for the others. Messages are concatenated, not averaged: a receiver
knows who said what, as in NDQ, where agent i sends a message to each j.

Sampling: in train mode (the learner's unroll and the collection of training episodes) the
message is μ + σ·ε with ε from torch's global generator, which the trainer seeds, so that CPU
runs repeat exactly (the learner's target network, a copy of the agent, samples as well); in
eval mode (matches, test points, StackedTeam) it is μ, so greedy play is deterministic and
batched play equals sequential play.

Regulariser: NDQ minimises the messages' entropy through a variational upper bound, the KL
divergence of N(μ, σ) from the prior N(0, I), with weight β (`msg_beta`). Here that term is
added to the gradient of whatever loss the messages of the unroll feed (the QMIX TD loss),
without a loss term in the shared learner: each sent message passes through an identity
whose backward also returns β · ∂KL/∂θ, KL summed over the message width and averaged over
the rows of the call. Over an unroll this is β · Σ_t mean_rows KL_t; a message no term of the
loss reads (those of an episode's last steps) adds nothing. NDQ's other regulariser, the mutual
information between a message and the receiver's action given its history, is left out: its
variational bound is a cross-entropy of the receiver's action distribution that needs the
batch's actions inside the loss, a change to the shared learner. NDQ's cutting, at test time,
of the messages whose μ/σ is small is not done: every message is sent.

The messages in transit are carried in the recurrent state, [h | m] per agent (H + d wide;
zeros before the first step), as for CommNet: `messages` / `with_messages` read and replace
them for the message surface, `msg_dim` = d is the whole message.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from policies.teams.message_agent import MessageAgent
from policies.teams.rnn_agent import agent_input_dim
from policies.teams.tarmac import _others

# σ stays within [e^-5, e^2]: a collapse to σ → 0 would make the KL term's log σ explode and
# a σ far above the prior's only buries the mean in noise.
LOG_SIGMA_MIN, LOG_SIGMA_MAX = -5.0, 2.0


def others_in_order(m: torch.Tensor) -> torch.Tensor:
    """m [..., n, d] → [..., n, (n − 1)·d]: for each agent the other agents' rows, in index
    order, side by side (a lone agent reads nothing)."""
    n, d = m.shape[-2], m.shape[-1]
    return m[..., _others(n, m.device), :].reshape(*m.shape[:-2], n, (n - 1) * d)


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per element."""
    return 0.5 * (mu.square() + (2 * log_sigma).exp() - 1.0) - log_sigma


class _PriorPull(torch.autograd.Function):
    """Identity on the message; its backward adds β to the gradient of the KL scalar, so that
    β·KL joins the loss the messages feed without the learner knowing of it."""

    @staticmethod
    def forward(ctx, m, kl, beta):
        ctx.beta = beta
        return m.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.new_full((), ctx.beta), None


class NDQAgent(MessageAgent):
    """`RNNAgent`'s interface with d-wide Gaussian messages (policies.teams.message_agent)."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 msg_dim: int = 16, *, msg_beta: float = 1e-3, obs_last_action: bool = True,
                 obs_agent_id: bool = True):
        super().__init__(input_dim, n_actions, n_agents, hidden, msg_dim, obs_last_action,
                         obs_agent_id)
        self.msg_beta = float(msg_beta)
        self.listen = nn.Linear((n_agents - 1) * msg_dim, hidden, bias=False)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)
        self.mu = nn.Linear(hidden, msg_dim)
        self.log_sigma = nn.Linear(hidden, msg_dim)

    @property
    def layout(self) -> tuple:
        return self.layout_of("ndq", self.msg_dim)

    def distribution(self, h_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h' [..., H] → (μ, log σ) [..., d] of the message sent after this step."""
        return (self.mu(h_new),
                self.log_sigma(h_new).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))

    def send(self, h_new: torch.Tensor) -> torch.Tensor:
        """The message sent after this step: a reparameterised sample in train mode, μ in
        eval mode."""
        mu, log_sigma = self.distribution(h_new)
        if not self.training:
            return mu
        m = mu + log_sigma.exp() * torch.randn_like(mu)
        if self.msg_beta > 0 and torch.is_grad_enabled():
            kl = gaussian_kl(mu, log_sigma).sum(-1).mean()
            m = _PriorPull.apply(m, kl, self.msg_beta)
        return m

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [M, in], h [M, H + d] → (q [M, A], h' [M, H + d]); M = B·n, batch-major."""
        B, n = self.teams(h), self.n_agents
        c = others_in_order(self.messages(h.view(B, n, -1))).reshape(B * n, -1)
        x = F.relu(self.fc1(self.own_inputs(inputs)) + self.listen(c))
        h_new = self.rnn(x, h[:, :self.rnn_hidden])
        return self.fc2(h_new), torch.cat([h_new, self.send(h_new)], dim=-1)


def make_ndq(obs_dim: int, n_actions: int, n_agents: int, hidden: int = 64, msg_dim: int = 16,
             *, msg_beta: float = 1e-3, obs_last_action: bool = True,
             obs_agent_id: bool = True) -> NDQAgent:
    """The NDQ agent of a scenario's shapes with PyMARL's input options."""
    return NDQAgent(agent_input_dim(obs_dim, n_actions, n_agents, obs_last_action, obs_agent_id),
                    n_actions, n_agents, hidden, msg_dim, msg_beta=msg_beta,
                    obs_last_action=obs_last_action, obs_agent_id=obs_agent_id)
