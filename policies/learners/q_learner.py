"""Value-decomposition Q-learner (VDN / QMIX) as PyMARL's `learners/q_learner.py`.

Targets, loss and optimiser only; it never touches an environment. For a batch of padded
episodes (policies.learners.episode_buffer) it unrolls the recurrent agent over whole episodes and
minimises the masked TD loss of the mixed value (Rashid et al. 2018, eq. 6)

    L = Σ_{b,t} filled·(Q_tot(τ_t, u_t, s_t) − y_t)² / Σ filled,
    y_t = r_t + γ (1 − terminated_t) Q_tot⁻(τ_{t+1}, ū_{t+1}, s_{t+1}),

with double Q-learning: ū_{t+1} = argmax over available actions of the online agent's Q,
evaluated by the target networks (⁻). Optionally adds κ·L_reg, the policy regulariser of
Guo et al. (2023, §IV-B; policies.observation.policy_regularisation), on the observations of the batch
with the recurrent state of the clean unroll. RMSprop and gradient-norm clipping as PyMARL.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from policies.observation.policy_regularisation import policy_regulariser
from policies.teams.rnn_agent import RNNAgent, build_inputs, onehot_actions


@dataclass
class LearnerConfig:
    gamma: float = 0.99
    """Discount factor."""
    lr: float = 5e-4
    """RMSprop learning rate."""
    rms_alpha: float = 0.99
    """RMSprop smoothing constant (PyMARL's optim_alpha)."""
    rms_eps: float = 1e-5
    """RMSprop epsilon (PyMARL's optim_eps)."""
    grad_clip: float = 10.0
    """Clip of the global gradient L2 norm."""
    double_q: bool = True
    """Choose next actions with the online network, evaluate them with the target."""
    reg_eps: float = 0.2
    """Radius (L∞) of the ball of the regulariser's inner maximisation."""
    hinge_c: float = 10.0
    """Hinge floor c of the regulariser."""
    reg_pgd_steps: int = 3
    """PGD steps of the regulariser's inner maximisation."""


class QLearner:
    def __init__(self, agent: RNNAgent, mixer: nn.Module, n_agents: int, n_actions: int, cfg: LearnerConfig):
        self.agent, self.mixer, self.cfg = agent, mixer, cfg
        self.n_agents, self.n_actions = n_agents, n_actions
        self.target_agent = copy.deepcopy(agent)
        self.target_mixer = copy.deepcopy(mixer)
        self.params = list(agent.parameters()) + list(mixer.parameters())
        self.optimiser = torch.optim.RMSprop(
            self.params, lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps
        )

    def update_targets(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    def unroll(self, agent: RNNAgent, batch: dict[str, torch.Tensor]):
        """Q [B,T+1,n,A], hidden state before each step [B,T+1,n,H], last-action one-hot [B,T+1,n,A]."""
        obs, actions = batch["obs"], batch["actions"]
        B, T1, n, _ = obs.shape
        first = torch.zeros(B, 1, n, self.n_actions, device=obs.device)
        last_oh = torch.cat([first, onehot_actions(actions, self.n_actions)], dim=1)  # [B, T+1, n, A]
        if _one_gru_call(agent):
            q, hs = _sequence_unroll(agent, obs, last_oh)
            return q, hs, last_oh
        h = agent.init_hidden(B * n)
        qs, hs = [], []
        for t in range(T1):
            hs.append(h.view(B, n, -1))
            inputs = build_inputs(obs[:, t], last_oh[:, t]).reshape(B * n, -1)
            q, h = agent(inputs, h)
            qs.append(q.view(B, n, -1))
        return torch.stack(qs, 1), torch.stack(hs, 1), last_oh

    def train(self, batch: dict[str, torch.Tensor], kappa: float = 0.0) -> dict[str, float]:
        cfg = self.cfg
        actions, avail = batch["actions"], batch["avail"]  # [B,T,n], [B,T+1,n,A]
        reward, mask = batch["reward"], batch["filled"].float()  # [B, T]
        terminated = batch["terminated"].float()  # [B, T]
        state = batch["state"]  # [B, T+1, S]

        q, hidden, last_oh = self.unroll(self.agent, batch)  # [B, T+1, n, A]
        chosen = q[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [B, T, n]
        with torch.no_grad():
            target_q, _, _ = self.unroll(self.target_agent, batch)
            target_next = target_q[:, 1:].masked_fill(~avail[:, 1:], -1e9)  # [B, T, n, A]
            if cfg.double_q:
                online_next = q[:, 1:].detach().masked_fill(~avail[:, 1:], -1e9)
                best = online_next.argmax(-1, keepdim=True)  # [B, T, n, 1]
                target_max = target_next.gather(-1, best).squeeze(-1)  # [B, T, n]
            else:
                target_max = target_next.max(-1).values
            target_tot = self.target_mixer(target_max, state[:, 1:]).squeeze(-1)  # [B, T]
            y = reward + cfg.gamma * (1.0 - terminated) * target_tot  # [B, T]
        q_tot = self.mixer(chosen, state[:, :-1]).squeeze(-1)  # [B, T]
        td = (q_tot - y) * mask
        n_valid = mask.sum().clamp_min(1.0)
        td_loss = (td**2).sum() / n_valid
        loss = td_loss

        reg_value = 0.0
        if kappa > 0.0:
            reg = self.regulariser(batch, hidden[:, :-1], last_oh[:, :-1])  # [B, T]
            reg_loss = (reg * mask).sum() / n_valid
            loss = loss + kappa * reg_loss
            reg_value = float(reg_loss.detach())

        self.optimiser.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optimiser.step()
        return {
            "loss": float(loss.detach()),
            "td_loss": float(td_loss.detach()),
            "reg_loss": reg_value,
            "grad_norm": float(grad_norm),
            "q_taken_mean": float((chosen.detach().mean(-1) * mask).sum() / n_valid),
        }

    def regulariser(self, batch, hidden: torch.Tensor, last_oh: torch.Tensor) -> torch.Tensor:
        """L_reg for every (episode, step): [B, T]. hidden/last_oh are [B, T, n, ·]."""
        B, T, n, H = hidden.shape
        obs = batch["obs"][:, :T].reshape(B * T, n, -1)  # [B*T, n, obs]
        avail = batch["avail"][:, :T].reshape(B * T, n, -1)  # [B*T, n, A]
        h = hidden.reshape(B * T * n, H)
        last = last_oh.reshape(B * T, n, -1)

        def q_fn_with(h_flat):
            def q_fn(o):
                inputs = build_inputs(o, last).reshape(B * T * n, -1)
                return self.agent(inputs, h_flat)[0].view(B * T, n, -1)

            return q_fn

        reg = policy_regulariser(
            q_fn_with(h),
            obs,
            eps=self.cfg.reg_eps,
            c=self.cfg.hinge_c,
            pgd_steps=self.cfg.reg_pgd_steps,
            avail=avail,
            attack_q_fn=q_fn_with(h.detach()),
        )
        return reg.view(B, T)


def _one_gru_call(agent) -> bool:
    """Whether the unroll may run as one GRU call: a plain recurrent RNNAgent (its subclasses
    and the communicating agents compute more than fc1 → GRU cell → fc2) on the CPU (cuDNN
    would want the cell's weights copied into one flat buffer at every call)."""
    return (type(agent) is RNNAgent and agent.use_rnn and SEQUENCE_UNROLL
            and agent.fc1.weight.device.type == "cpu")


# One GRU call over the sequence instead of a GRUCell per time step: the same weights and
# gate formulas, with the input projections of all steps in one matrix product, so Q-values
# and gradients agree with the step-by-step unroll to float32 rounding. Much faster on
# small batches, where the per-step Python and dispatch cost dominates; False restores the
# step-by-step unroll (the benchmark's old way).
SEQUENCE_UNROLL = True


def _sequence_unroll(agent: RNNAgent, obs: torch.Tensor, last_oh: torch.Tensor):
    """Q [B,T+1,n,A] and the hidden state before each step [B,T+1,n,H] of a whole batch."""
    B, T1, n, _ = obs.shape
    inputs = build_inputs(obs.reshape(B * T1, n, -1), last_oh.reshape(B * T1, n, -1))
    inputs = inputs.view(B, T1, n, -1).transpose(1, 2).reshape(B * n, T1, -1)  # [Bn, T+1, in]
    x = torch.relu(agent.fc1(agent.own_inputs(inputs)))
    rnn = agent.rnn
    h0 = agent.init_hidden(B * n).unsqueeze(0)  # [1, Bn, H]
    out, _ = torch.gru(x, h0, [rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh],
                           True, 1, 0.0, agent.training, False, True)  # [Bn, T+1, H]
    q = agent.fc2(out)  # [Bn, T+1, A]
    before = torch.cat([h0.transpose(0, 1), out[:, :-1]], dim=1)  # [Bn, T+1, H]
    H = before.shape[-1]
    return (q.view(B, n, T1, -1).transpose(1, 2),
            before.view(B, n, T1, H).transpose(1, 2))
