"""DOP: off-policy multi-agent decomposed policy gradients, a team learner.

Wang, Dong, Lesser and Zhang, "DOP: Off-Policy Multi-Agent Decomposed Policy Gradients"
(ICLR 2021); reference code github.com/TonghanWang/DOP (`src/learners/offpg_learner.py`,
`src/modules/critics/offpg.py`, `src/modules/mixers/qmix.py` `k()`/`b()`,
`src/utils/offpg_utils.py`, `src/config/algs/offpg_smac.yaml`).

Critic (the paper's linearly decomposed critic):

    Q_tot(s, a) = Σ_i k_i(s) Q_i(s, o_i, a_i) + b(s),      k_i(s) ≥ 0.

k(s) is the reference mixer's `k()`: |W_1(s)| |w_2(s)|, the product of the absolute values
of two linear hypernetwork outputs (embedding 32), normalised to sum to one over the agents.
b(s) is a two-layer state-value head (the QMIX mixer's V(s)). Each Q_i is one shared MLP on
(state, o_i, one-hot id) → [A] with a dueling output Q = V + A, as `OffPGCritic` (256 wide).

Critic targets (stochastic DOP's off-policy critic learning, §4.1). Because Q_tot is linear
in the Q_i, the expectation under the joint policy is tractable agent by agent:

    E_π[Q_tot(s, ·)] = Σ_i k_i(s) Σ_a π_i(a|τ_i) Q_i(s, o_i, a) + b(s).

* Off-policy, on whole episodes drawn uniformly from a replay buffer: n-step tree backup
  (Precup, Sutton and Singh, "Eligibility Traces for Off-Policy Policy Evaluation", ICML
  2000), as the reference's `build_target_q`:

      δ_t = r_t + γ (1 − term_t) E_π[Q̄_tot(s_{t+1}, ·)] − Q̄_tot(s_t, a_t)
      y_t = Q̄_tot(s_t, a_t) + Σ_{l=0}^{n−1} (γλ)^l (Π_{j=1}^{l} c_{t+j}) δ_{t+l},
      c_j = Π_i π_i(a_{j,i}|τ_{j,i}),

  Q̄ the target networks, π the *current* actor, recomputed by unrolling it over the stored
  episodes (`pg_collect.unroll`). No importance ratios: the tree backup needs none.
* On-policy, on the episodes just collected: TD(λ) on Q̄_tot(s, a) of the actions taken,
  as PyMARL's `build_td_lambda_targets`.

Both batches are concatenated and the critic is regressed on them one time step at a time
(`critic_train_mode: seq`), one optimiser step per step of the episodes, as the reference.

Actor (the paper's stochastic DOP policy gradient theorem):

    ∇J = E_π[ Σ_i k_i(s) ∇ log π_i(a_i|τ_i) (Q_i(s, o_i, a_i) − Σ_a π_i(a|τ_i) Q_i(s, o_i, a)) ]

on the episodes just collected, with the critic just updated, masked by `filled` and with the
unavailable actions at probability zero.

As in the reference: the hyper-parameters (DOPConfig), RMSprop (α 0.99, ε 1e-5), target
networks copied every 600 critic steps, the 5-step tree backup, the per-time-step critic
updates, the normalised k, the critic's inputs (no last actions), no entropy term.
Not as in the reference:
* b(s) is part of Q_tot, as the paper writes it; the reference's mixer computes b() but its
  forward returns Σ k_i Q_i alone.
* No ε-floor on the policy: the reference's "multinomial" selector mixes π with ε-uniform
  (0.5 → 0.05 over 500k steps) during training; our collection (pg_collect) draws from π
  itself, so that a training-time attacker perturbs exactly the learner's distribution.
* The on-policy batch is the `envs` episodes just collected, both for the critic's TD(λ)
  and the actor; the reference trains the critic on 16 of its last 32 episodes and the actor
  on its last 16 (4 collections of 4 episodes).
* Bootstrapping at an episode's end follows `terminated` (truncation at the step limit
  bootstraps from E_π Q̄_tot at the final state); the reference bootstraps only episodes
  that run to the batch's last step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from arena.core import ScenarioSpec, VecEnv
from policies.learners.episode_buffer import EpisodeBuffer
from policies.learners.pg_collect import QFn, Sampler, policy, unroll
from policies.learners.pg_train import (
    Curve,
    PGTrainConfig,
    PGTrainError,
    actor_weights,
    default_make_env,
    make_actor,
    seeded,
    team_config,
    train_loop,
)
from policies.learners.train_defender import TrainResult
from policies.teams.rnn_agent import RNNAgent


@dataclass
class DOPConfig(PGTrainConfig):
    lr: float = 5e-4
    """Actor learning rate (offpg_smac.yaml `lr`)."""
    critic_lr: float = 1e-4
    """Critic and mixer learning rate (offpg_smac.yaml `critic_lr`)."""
    gamma: float = 0.99
    """Discount factor (PyMARL default.yaml `gamma`)."""
    td_lambda: float = 0.8
    """λ of the on-policy TD(λ) targets (offpg_smac.yaml `td_lambda`)."""
    tb_lambda: float = 0.93
    """λ of the off-policy tree-backup targets (offpg_smac.yaml `tb_lambda`)."""
    tb_steps: int = 5
    """Steps of the tree backup (offpg_smac.yaml `step`)."""
    off_buffer_size: int = 5000
    """Episodes kept for the off-policy critic (offpg_smac.yaml `off_buffer_size`)."""
    off_batch_size: int = 32
    """Replayed episodes per critic update (offpg_smac.yaml `off_batch_size`); training starts
    once the buffer holds this many."""
    target_update_interval: int = 600
    """Critic optimiser steps between target-network copies (offpg_smac.yaml
    `target_update_interval`; the reference counts its per-time-step critic steps, as here)."""
    entropy_coef: float = 0.0
    """Entropy bonus of the actor loss; the reference has none (its exploration is the
    ε-floor we do not use, see the module docstring), so none by default."""
    grad_clip: float = 20.0
    """Gradient L2-norm clip of actor and critic (PyMARL default.yaml `grad_norm_clip`)."""
    critic_hidden: int = 256
    """Width of the individual critics' two hidden layers (OffPGCritic's 256)."""
    mixing_embed: int = 32
    """Embedding of the k(s) hypernetworks (offpg_smac.yaml `mixing_embed_dim`)."""
    optim_alpha: float = 0.99
    """RMSprop α (PyMARL default.yaml `optim_alpha`)."""
    optim_eps: float = 1e-5
    """RMSprop ε (PyMARL default.yaml `optim_eps`)."""

    def validate(self) -> None:
        self.check_counts()
        for name in ("tb_steps", "off_buffer_size", "off_batch_size", "target_update_interval",
                     "critic_hidden", "mixing_embed"):
            if getattr(self, name) < 1:
                raise PGTrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "critic_lr", "grad_clip", "optim_eps"):
            if not getattr(self, name) > 0:
                raise PGTrainError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("td_lambda", "tb_lambda", "optim_alpha"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise PGTrainError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise PGTrainError(f"gamma must lie in (0, 1], got {self.gamma}")
        if not self.entropy_coef >= 0.0:
            raise PGTrainError(f"entropy_coef must be non-negative, got {self.entropy_coef}")
        if self.off_batch_size > self.off_buffer_size:
            raise PGTrainError(f"off_batch_size ({self.off_batch_size}) must not exceed "
                               f"off_buffer_size ({self.off_buffer_size})")


class DOPCritic(nn.Module):
    """Individual critics Q_i(s, o_i, ·) and the linear mixer's k(s), b(s)."""

    def __init__(self, spec: ScenarioSpec, hidden: int = 256, embed: int = 32):
        super().__init__()
        S, n = spec.state_dim, spec.n_agents
        self.n_agents, self.embed = n, embed
        self.fc1 = nn.Linear(S + spec.obs_dim + n, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc_v = nn.Linear(hidden, 1)
        self.fc3 = nn.Linear(hidden, spec.n_actions)
        self.hyper_w_1 = nn.Linear(S, embed * n)
        self.hyper_w_final = nn.Linear(S, embed)
        self.V = nn.Sequential(nn.Linear(S, embed), nn.ReLU(), nn.Linear(embed, 1))

    def q_i(self, state: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """state [..., S], obs [..., n, o] → Q_i [..., n, A]."""
        n = self.n_agents
        lead = obs.shape[:-2]
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(*lead, n, n)
        x = torch.cat([state.unsqueeze(-2).expand(*lead, n, state.shape[-1]), obs, ids], -1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return self.fc3(x) + self.fc_v(x)

    def k(self, state: torch.Tensor) -> torch.Tensor:
        """state [..., S] → k [..., n], non-negative and summing to one (the reference's k())."""
        w1 = self.hyper_w_1(state).abs().unflatten(-1, (self.n_agents, self.embed))
        w2 = self.hyper_w_final(state).abs()
        k = (w1 * w2.unsqueeze(-2)).sum(-1)
        # The floor only matters when every hypernetwork output is zero (k would be 0/0).
        return k / k.sum(-1, keepdim=True).clamp(min=1e-10)

    def b(self, state: torch.Tensor) -> torch.Tensor:
        """state [..., S] → b [...]."""
        return self.V(state).squeeze(-1)

    def mix(self, per_agent: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Σ_i k_i(s) x_i + b(s): per_agent [..., n] → [...]."""
        return (self.k(state) * per_agent).sum(-1) + self.b(state)


def make_q_fn(critic: DOPCritic) -> QFn:
    """q_fn(state [B,S], obs [B,n,o], last_onehot [B,n,A]) → k_i(s) Q_i(s, o_i, ·) [B,n,A]:
    each agent's per-action contribution to Q_tot, what a training-time attacker reads.
    The critic takes no last action (as the reference's), so `last_onehot` is unused."""

    def q_fn(state: torch.Tensor, obs: torch.Tensor, last_onehot: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return critic.k(state).unsqueeze(-1) * critic.q_i(state, obs)

    return q_fn


# -- targets ---------------------------------------------------------------------------------
def tree_backup_targets(q_taken: torch.Tensor, exp_next: torch.Tensor, reward: torch.Tensor,
                        terminated: torch.Tensor, filled: torch.Tensor, c: torch.Tensor,
                        gamma: float, lam: float, n_steps: int) -> torch.Tensor:
    """n-step tree-backup targets, all [B, T]:

        y_t = q_t + Σ_{l<n} (γλ)^l Π_{j=1..l} c_{t+j} δ_{t+l}.

    q_taken: Q̄_tot(s_t, a_t); exp_next: E_π Q̄_tot(s_{t+1}, ·); c: Π_i π_i(a_{t,i}) at t."""
    live = filled.to(q_taken.dtype)
    cont = 1.0 - terminated.to(q_taken.dtype)
    td = (reward + gamma * cont * exp_next - q_taken) * live
    out = torch.zeros_like(td)
    term, coeff = td, 1.0
    pad = torch.zeros_like(td[:, :1])
    for _ in range(n_steps):  # shifts along time, batched over episodes
        out = out + coeff * term
        term = torch.cat([(term * c)[:, 1:], pad], 1)
        coeff *= gamma * lam
    return (q_taken + out) * live


def td_lambda_targets(q_taken: torch.Tensor, exp_next: torch.Tensor, reward: torch.Tensor,
                      terminated: torch.Tensor, filled: torch.Tensor, gamma: float,
                      lam: float) -> torch.Tensor:
    """TD(λ) targets, all [B, T]:

        G_t = r_t + γ(1−term_t)[(1−λ) q_{t+1} + λ G_{t+1}],

    where the episode's last step bootstraps from E_π Q̄_tot at the final state (zero if
    terminated)."""
    live = filled.to(q_taken.dtype)
    cont = 1.0 - terminated.to(q_taken.dtype)
    T = q_taken.shape[1]
    out = torch.zeros_like(q_taken)
    nxt_g = torch.zeros_like(q_taken[:, 0])
    for t in reversed(range(T)):  # backward recursion over steps, batched over episodes
        nxt_live = live[:, t + 1] if t + 1 < T else torch.zeros_like(live[:, 0])
        nxt_q = q_taken[:, t + 1] if t + 1 < T else torch.zeros_like(nxt_g)
        boot = nxt_live * ((1 - lam) * nxt_q + lam * nxt_g) + (1 - nxt_live) * exp_next[:, t]
        nxt_g = live[:, t] * (reward[:, t] + gamma * cont[:, t] * boot)
        out[:, t] = nxt_g
    return out


# -- learner ---------------------------------------------------------------------------------
def _cut(batch: dict[str, torch.Tensor], T: int) -> dict[str, torch.Tensor]:
    """Cut or zero-pad a padded episode batch to T steps (T+1 observations)."""
    out = {}
    for k in ("obs", "state", "avail", "actions", "reward", "terminated", "filled"):
        v, want = batch[k], T + 1 if k in ("obs", "state", "avail") else T
        if v.shape[1] >= want:
            out[k] = v[:, :want]
        else:
            pad = torch.zeros(v.shape[0], want - v.shape[1], *v.shape[2:], dtype=v.dtype,
                              device=v.device)
            out[k] = torch.cat([v, pad], 1)
    return out


def _longest(batch: dict[str, torch.Tensor]) -> int:
    f = batch["filled"].any(0)
    return int(f.nonzero().max()) + 1 if bool(f.any()) else 1


class DOPLearner:
    """The critic, its target and the optimisers; `train(on_batch, off_batch)` is one update."""

    def __init__(self, actor: RNNAgent, spec: ScenarioSpec, cfg: DOPConfig, device):
        self.actor, self.cfg, self.n_actions = actor, cfg, spec.n_actions
        self.critic = DOPCritic(spec, cfg.critic_hidden, cfg.mixing_embed).to(device)
        self.target = copy.deepcopy(self.critic)
        self.target.requires_grad_(False)
        opt = dict(alpha=cfg.optim_alpha, eps=cfg.optim_eps)
        self.actor_opt = torch.optim.RMSprop(actor.parameters(), lr=cfg.lr, **opt)
        self.critic_opt = torch.optim.RMSprop(self.critic.parameters(), lr=cfg.critic_lr, **opt)
        self.critic_steps, self.last_target = 0, 0
        self.stats: dict[str, float] = {}

    def _pi(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The current actor's π [B, T+1, n, A] over the episodes (no gradient)."""
        with torch.no_grad():
            return policy(unroll(self.actor, batch["obs"], batch["actions"], self.n_actions),
                          batch["avail"])[1]

    def _targets(self, batch: dict[str, torch.Tensor], tree_backup: bool) -> torch.Tensor:
        cfg = self.cfg
        pi = self._pi(batch)  # [B, T+1, n, A]
        with torch.no_grad():
            q = self.target.q_i(batch["state"], batch["obs"])  # [B, T+1, n, A]
            k = self.target.k(batch["state"])  # [B, T+1, n]
            b = self.target.b(batch["state"])  # [B, T+1]
            a = batch["actions"].unsqueeze(-1)
            q_taken = (k[:, :-1] * q[:, :-1].gather(-1, a).squeeze(-1)).sum(-1) + b[:, :-1]
            exp_next = (k[:, 1:] * (pi[:, 1:] * q[:, 1:]).sum(-1)).sum(-1) + b[:, 1:]
            args = (q_taken, exp_next, batch["reward"], batch["terminated"], batch["filled"])
            if tree_backup:
                c = pi[:, :-1].gather(-1, a).squeeze(-1).prod(-1)
                return tree_backup_targets(*args, c, cfg.gamma, cfg.tb_lambda, cfg.tb_steps)
            return td_lambda_targets(*args, cfg.gamma, cfg.td_lambda)

    def train_critic(self, on: dict[str, torch.Tensor], off: dict[str, torch.Tensor]) -> float:
        T = max(_longest(on), _longest(off))
        on, off = _cut(on, T), _cut(off, T)
        y = torch.cat([self._targets(on, False), self._targets(off, True)], 0)  # [B, T]
        state = torch.cat([on["state"], off["state"]], 0)[:, :-1]
        obs = torch.cat([on["obs"], off["obs"]], 0)[:, :-1]
        actions = torch.cat([on["actions"], off["actions"]], 0)
        mask = torch.cat([on["filled"], off["filled"]], 0).float()
        losses = []
        for t in range(T):  # the reference's per-time-step critic updates ("seq")
            m = mask[:, t]
            if float(m.sum()) < 0.5:
                continue
            q = self.critic.q_i(state[:, t], obs[:, t]).gather(-1, actions[:, t, :, None])
            q_tot = self.critic.mix(q.squeeze(-1), state[:, t])
            loss = (((q_tot - y[:, t]) * m) ** 2).sum() / m.sum()
            self.critic_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.grad_clip)
            self.critic_opt.step()
            self.critic_steps += 1
            losses.append(loss.detach())
        if self.critic_steps - self.last_target >= self.cfg.target_update_interval:
            self.target.load_state_dict(self.critic.state_dict())
            self.last_target = self.critic_steps
        return float(torch.stack(losses).mean()) if losses else float("nan")

    def train_actor(self, on: dict[str, torch.Tensor]) -> float:
        on = _cut(on, _longest(on))
        logits = unroll(self.actor, on["obs"], on["actions"], self.n_actions)[:, :-1]
        masked, pi = policy(logits, on["avail"][:, :-1])
        logp_all = torch.log_softmax(masked, -1)
        a = on["actions"].unsqueeze(-1)
        logp = logp_all.gather(-1, a).squeeze(-1)  # [B, T, n]
        with torch.no_grad():
            state = on["state"][:, :-1]
            q = self.critic.q_i(state, on["obs"][:, :-1])  # [B, T, n, A]
            adv = q.gather(-1, a).squeeze(-1) - (pi * q).sum(-1)
            k = self.critic.k(state)
        mask = on["filled"].float().unsqueeze(-1).expand_as(logp)
        loss = -(k * adv * logp * mask).sum() / mask.sum()
        if self.cfg.entropy_coef > 0:
            # Unavailable actions have π = 0 (to float precision): 0·log π adds nothing.
            entropy = -(pi * logp_all).sum(-1)
            loss = loss - self.cfg.entropy_coef * (entropy * mask).sum() / mask.sum()
        self.actor_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_clip)
        self.actor_opt.step()
        return float(loss.detach())


def train_dop(cfg: DOPConfig, sampler: Sampler | None = None,
              on_progress: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              make_env: Callable[[int], VecEnv] | None = None) -> TrainResult:
    """Train a DOP team on cfg.scenario for cfg.steps live team steps.

    `sampler` (a training-time attacker) may replace the distributions actions are drawn
    from during collection and reads the critic through `make_q_fn`; `make_env(batch_size)`
    overrides the registry; `should_stop()` ends training early (partial result)."""
    cfg.validate()
    make_env = make_env or default_make_env(cfg)
    env, test_env = make_env(cfg.envs), make_env(cfg.test_episodes)
    spec = env.spec
    device = torch.device(cfg.device)
    gen = seeded(cfg)
    actor = make_actor(spec, cfg)
    learner = DOPLearner(actor, spec, cfg, device)
    buffer = EpisodeBuffer(cfg.off_buffer_size, spec.episode_limit, spec.n_agents, spec.obs_dim,
                           spec.state_dim, spec.n_actions, device)
    curve = Curve(cfg, actor, test_env, sampler)
    figures = {"critic_loss": float("nan"), "actor_loss": float("nan")}
    updates = 0

    def update(batch, _stats) -> dict:
        nonlocal updates
        buffer.insert(batch)
        if buffer.can_sample(cfg.off_batch_size):
            # Critic first, then the actor against the updated critic, as the reference.
            figures["critic_loss"] = learner.train_critic(batch,
                                                          buffer.sample(cfg.off_batch_size, gen))
            figures["actor_loss"] = learner.train_actor(batch)
            updates += 1
        return dict(figures)

    run = train_loop(cfg, env, actor, gen, curve, update, sampler, make_q_fn(learner.critic),
                     on_progress, should_stop)
    steps, episodes, partial = run.steps, run.episodes, run.partial
    provenance = curve.provenance("dop", spec, steps, episodes, partial, {
        "hyperparameters": cfg.hyperparameters(), "updates": updates,
        "critic_steps": learner.critic_steps,
        "time_s": {"collect": round(run.collect_s, 2), "train": round(run.update_s, 2)}})
    return TrainResult(actor_weights(actor), team_config("dop", spec, cfg.hidden), provenance,
                       partial)
