"""MAPPO: a shared recurrent actor and a centralised state value, trained by PPO-clip.

Yu, Velu, Vinitsky, Gao, Wang, Bayen, Wu, "The Surprising Effectiveness of PPO in Cooperative
Multi-Agent Games" (NeurIPS 2022 Datasets & Benchmarks), and their code
`marlbenchmark/on-policy` (R-MAPPO, `onpolicy/algorithms/r_mappo/r_mappo.py`). The n agents
share one actor π_θ(a_i | τ_i) (PyMARL's GRU `RNNAgent`, logits masked to the available
actions) and one critic V_φ(s) on the global state. The reward is the team's, so the value is
one per episode step and every agent's action at step t is credited with the same advantage.

Actor (PPO-clip, Schulman et al. 2017, eq. 7; MAPPO eq. of §3 / Alg. 1), per agent-step:

    ρ_i,t = π_θ(a_i,t | τ_i,t) / π_old(a_i,t | τ_i,t)
    L(θ)  = E_{t,i}[ min(ρ_i,t Â_t, clip(ρ_i,t, 1−ε, 1+ε) Â_t) ] + c_H E_{t,i}[ H(π_θ(·|τ_i,t)) ]

where π_old is the batch's `logp`: the learner's own log π of each action when it was taken.
A training-time attacker (policies.training) may have drawn the actions from another
distribution; the learner is not told, exactly as in TRAM's threat model.

Advantages (GAE, Schulman et al. 2016, eq. 16), on the denormalised values:

    δ_t = r_t + γ V(s_{t+1}) − V(s_t),   Â_t = Σ_l (γλ)^l δ_{t+l},   R̂_t = Â_t + V(s_t),

normalised to zero mean and unit deviation over the batch's live steps (as `r_mappo.train`).

Critic: Huber loss (δ = 10) between the normalised return and V, with the value clipped
around its pre-update prediction (`use_clipped_value_loss`), the max of the two losses taken;
targets normalised by a running mean and variance (`ValueNorm`, β = 0.99999). Separate Adam
optimisers (eps 1e-5) for actor and critic, both clipped to gradient norm 10.

As in the reference: the defaults below, PPO's clipped surrogate with the active-mask average,
GAE with the time limit treated as an end (`use_proper_time_limits` False), Huber value loss
with value clipping and ValueNorm, orthogonal initialisation with gain 0.01 on the action
layer, the critic's LayerNorm'd ReLU MLP of width 64.
Not as in the reference: (i) the actor is PyMARL's RNNAgent (observation, last action and
agent id in; no input LayerNorm), so a trained team plays like any PyMARL team; (ii) the
critic is a feed-forward V(s) rather than R-MAPPO's recurrent critic over an agent-specific
state; (iii) whole episodes are unrolled from a zero hidden state instead of chunks of
`data_chunk_length` = 10 steps started from stored hidden states, so the log-probabilities
are recomputed exactly as they were sampled; (iv) a collection is `envs` whole episodes,
not `episode_length` steps per rollout thread; (v) ValueNorm is updated once per collection
on the live returns (the reference updates it on every minibatch, padding included).

`agg` — a defence beyond the TRAM paper. With agg="mean" the actor loss is averaged over
agents, standard MAPPO. With agg="median" each agent's own actor loss (its clipped surrogate
and entropy bonus, over its own samples) is differentiated separately with respect to the
shared parameters, and the n gradients are combined by their coordinate-wise median (Yin,
Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018): one agent whose actions were poisoned cannot move the shared
actor alone, since the median of n ≥ 3 coordinates is bounded by the honest agents' values.
The n gradients cost n backward passes through one shared unroll (a loop over agents, n ≤ 8,
with `torch.autograd.grad`); everything else is batched over episodes and agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from arena.core import VecEnv
from policies.learners.pg_collect import Sampler, policy, unroll
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
from policies.learners.ppo import gae
from policies.learners.train_defender import TrainResult
from policies.teams.rnn_agent import RNNAgent

AGGREGATIONS = ("mean", "median")


@dataclass
class MAPPOConfig(PGTrainConfig):
    lr: float = 5e-4
    """Actor Adam learning rate: on-policy `config.py` --lr 5e-4 (Yu et al. Table 13, SMAC);
    EPyMARL mappo.yaml lr 0.0005."""
    critic_lr: float = 5e-4
    """Critic Adam learning rate: on-policy `config.py` --critic_lr 5e-4."""
    adam_eps: float = 1e-5
    """Adam epsilon: on-policy `config.py` --opti_eps 1e-5."""
    epochs: int = 15
    """PPO epochs per collection: on-policy --ppo_epoch 15 (config default and every
    `train_smac_*.sh`; Yu et al. §4 recommend 15 for easy maps, 5–10 for hard ones)."""
    minibatches: int = 1
    """Minibatches (of whole episodes) per epoch: on-policy --num_mini_batch 1 (config
    default and the SMAC and MPE scripts; Yu et al. §4 advise against splitting)."""
    clip: float = 0.2
    """PPO ratio clip ε: on-policy --clip_param 0.2, EPyMARL eps_clip 0.2."""
    gamma: float = 0.99
    """Discount: on-policy --gamma 0.99, EPyMARL default gamma 0.99."""
    gae_lambda: float = 0.95
    """GAE λ: on-policy --gae_lambda 0.95."""
    ent_coef: float = 0.01
    """Entropy bonus: on-policy --entropy_coef 0.01, EPyMARL mappo.yaml entropy_coef 0.01."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip of actor and critic: on-policy --max_grad_norm 10, EPyMARL
    grad_norm_clip 10."""
    value_loss: str = "huber"
    """"huber" or "mse". Huber (δ = `huber_delta`), on-policy's default --use_huber_loss:
    with normalised targets it is MSE for ordinary errors and only caps the gradient of the
    rare large ones (a new return scale before ValueNorm has caught up)."""
    huber_delta: float = 10.0
    """Huber threshold: on-policy --huber_delta 10."""
    value_coef: float = 1.0
    """Weight of the value loss: on-policy --value_loss_coef 1 (own optimiser, so it only
    rescales the critic's gradient before clipping)."""
    clip_value: bool = True
    """Clip the new value to ±clip around the pre-update one, loss = max of both:
    on-policy --use_clipped_value_loss (default on)."""
    value_norm: bool = True
    """Normalise value targets by a running mean/variance: on-policy --use_valuenorm
    (default on; ValueNorm with β = 0.99999)."""
    critic_hidden: int = 64
    """Critic MLP width: on-policy --hidden_size 64."""
    agg: str = "mean"
    """Aggregation of the agents' policy gradients: "mean" (MAPPO) or "median" (the
    coordinate-wise median of Yin et al. 2018; a defence beyond TRAM, see the module)."""

    def check(self) -> None:
        self.check_counts()
        for name in ("epochs", "minibatches", "critic_hidden"):
            if getattr(self, name) < 1:
                raise PGTrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.minibatches > self.envs:
            raise PGTrainError(f"minibatches ({self.minibatches}) cannot exceed envs "
                               f"({self.envs}): a minibatch holds whole episodes")
        for name in ("lr", "critic_lr", "adam_eps", "clip", "max_grad_norm", "huber_delta"):
            if not getattr(self, name) > 0:
                raise PGTrainError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise PGTrainError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("ent_coef", "value_coef"):
            if not getattr(self, name) >= 0:
                raise PGTrainError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.value_loss not in ("huber", "mse"):
            raise PGTrainError(f"value_loss must be huber or mse, got {self.value_loss!r}")
        if self.agg not in AGGREGATIONS:
            raise PGTrainError(f"agg must be one of {', '.join(AGGREGATIONS)}, got {self.agg!r}")
        from arena.scenarios import names

        if self.scenario not in names():
            raise PGTrainError(f"unknown scenario {self.scenario!r}; known: "
                               f"{', '.join(names())}")


class ValueNorm(nn.Module):
    """Running mean and variance of the value targets, debiased (on-policy's ValueNorm)."""

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5):
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("mean_sq", torch.zeros(()))
        self.register_buffer("debias", torch.zeros(()))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.debias.clamp(min=self.eps)
        mean = self.mean / d
        # the floor keeps a near-constant return (e.g. 0 before the first win) from
        # blowing the normalised targets up
        return mean, (self.mean_sq / d - mean ** 2).clamp(min=1e-2)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        self.mean.mul_(self.beta).add_((1 - self.beta) * x.mean())
        self.mean_sq.mul_(self.beta).add_((1 - self.beta) * (x ** 2).mean())
        self.debias.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return (x - mean) / var.sqrt()

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return x * var.sqrt() + mean


class StateValue(nn.Module):
    """V(s): LayerNorm(state) → [Linear → ReLU → LayerNorm] × 2 → Linear(1), on-policy's
    MLPBase (use_feature_normalization, layer_N = 1, use_ReLU) with its value head."""

    def __init__(self, state_dim: int, hidden: int):
        super().__init__()
        relu = nn.init.calculate_gain("relu")
        self.net = nn.Sequential(
            nn.LayerNorm(state_dim),
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden),
            nn.Linear(hidden, 1))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, 1.0 if m.out_features == 1 else relu)
                nn.init.zeros_(m.bias)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state).squeeze(-1)


def init_actor(actor: RNNAgent) -> None:
    """on-policy's initialisation (use_orthogonal, --gain 0.01 on the action layer): a
    near-uniform first policy, so early PPO steps are not spent undoing random preferences."""
    nn.init.orthogonal_(actor.fc1.weight, nn.init.calculate_gain("relu"))
    nn.init.zeros_(actor.fc1.bias)
    for name, p in actor.rnn.named_parameters():
        if "weight" in name:
            nn.init.orthogonal_(p)
        else:
            nn.init.zeros_(p)
    nn.init.orthogonal_(actor.fc2.weight, 0.01)
    nn.init.zeros_(actor.fc2.bias)


def coordinate_median(grads: torch.Tensor) -> torch.Tensor:
    """[n, P] → [P]: the median of each column (mean of the two middle values for even n)."""
    s = grads.sort(0).values
    n = s.shape[0]
    return 0.5 * (s[(n - 1) // 2] + s[n // 2])


def cut(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch cut to its longest live episode (the unroll costs what is played)."""
    live = batch["filled"].any(0)
    T = int(live.nonzero().max()) + 1 if bool(live.any()) else 1
    out = dict(batch)
    for k in ("actions", "reward", "terminated", "filled", "logp"):
        out[k] = batch[k][:, :T]
    for k in ("obs", "state", "avail"):
        out[k] = batch[k][:, :T + 1]
    return out


class MAPPOLearner:
    """The update: GAE on V(s), then `epochs` × `minibatches` PPO-clip steps on whole
    episodes (actor re-unrolled from the start of each episode)."""

    def __init__(self, actor: RNNAgent, critic: StateValue, cfg: MAPPOConfig, n_actions: int):
        self.actor, self.critic, self.cfg, self.A = actor, critic, cfg, n_actions
        self.params = [p for p in actor.parameters() if p.requires_grad]
        self.actor_opt = torch.optim.Adam(self.params, lr=cfg.lr, eps=cfg.adam_eps)
        self.critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr,
                                           eps=cfg.adam_eps)
        self.norm = ValueNorm().to(next(critic.parameters()).device)
        self.updates = 0

    def advantages(self, batch: dict[str, torch.Tensor]):
        """(normalised advantages [B,T], value targets [B,T], old values [B,T]) — targets
        and old values in the critic's (normalised) space."""
        cfg, filled = self.cfg, batch["filled"]
        T = filled.shape[1]
        with torch.no_grad():
            v_old = self.critic(batch["state"][:, :T])  # [B, T]
            values = self.norm.denormalize(v_old) if cfg.value_norm else v_old
            adv, ret = gae(batch["reward"].T, values.T, filled.T, cfg.gamma, cfg.gae_lambda)
            adv, ret = adv.T, ret.T
            if cfg.value_norm:
                self.norm.update(ret[filled])
                v_old = self.norm.normalize(values)  # the old values under the new statistics
                ret = self.norm.normalize(ret)
            live = adv[filled]
            adv = (adv - live.mean()) / (live.std(unbiased=False) + 1e-5) * filled
        return adv, ret, v_old

    def agent_losses(self, part: dict[str, torch.Tensor], adv: torch.Tensor
                     ) -> tuple[torch.Tensor, dict]:
        """Each agent's actor loss [n] over its live steps (−surrogate − c_H·entropy), and
        statistics."""
        cfg = self.cfg
        T = part["filled"].shape[1]
        raw = unroll(self.actor, part["obs"][:, :T], part["actions"], self.A)  # [B, T, n, A]
        logits, probs = policy(raw, part["avail"][:, :T])
        logpi = torch.log_softmax(logits, -1)
        logp = logpi.gather(-1, part["actions"].unsqueeze(-1)).squeeze(-1)  # [B, T, n]
        # entropy over the available actions only (masked logits give probs exactly 0)
        entropy = -(probs * logpi.masked_fill(probs == 0, 0.0)).sum(-1)  # [B, T, n]
        log_ratio = logp - part["logp"]
        ratio = log_ratio.exp()
        a = adv.unsqueeze(-1)
        surrogate = torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a)
        w = part["filled"].unsqueeze(-1).to(surrogate.dtype)
        count = w.sum().clamp(min=1.0)
        per_agent = -((surrogate + cfg.ent_coef * entropy) * w).sum((0, 1)) / count  # [n]
        with torch.no_grad():
            stats = {"entropy": float((entropy * w).sum() / (count * entropy.shape[-1])),
                     "approx_kl": float((((ratio - 1) - log_ratio) * w).sum()
                                        / (count * ratio.shape[-1])),
                     "clipfrac": float((((ratio - 1).abs() > cfg.clip) * w).sum()
                                       / (count * ratio.shape[-1]))}
        return per_agent, stats

    def actor_step(self, part: dict[str, torch.Tensor], adv: torch.Tensor) -> dict:
        cfg = self.cfg
        per_agent, stats = self.agent_losses(part, adv)
        self.actor_opt.zero_grad()
        if cfg.agg == "mean":
            per_agent.mean().backward()
        else:
            n = per_agent.shape[0]
            rows = []
            for i in range(n):  # one backward per agent through the shared unroll (n ≤ 8)
                g = torch.autograd.grad(per_agent[i], self.params, retain_graph=i < n - 1,
                                        allow_unused=True)
                rows.append(torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1)
                                       for gi, p in zip(g, self.params)]))
            med = coordinate_median(torch.stack(rows))
            at = 0
            for p in self.params:
                p.grad = med[at:at + p.numel()].view_as(p).clone()
                at += p.numel()
        nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.actor_opt.step()
        stats["policy_loss"] = float(per_agent.detach().mean())
        return stats

    def critic_step(self, part: dict[str, torch.Tensor], ret: torch.Tensor,
                    v_old: torch.Tensor) -> float:
        cfg = self.cfg
        filled = part["filled"]
        v = self.critic(part["state"][:, :filled.shape[1]])

        def loss_of(err):
            if cfg.value_loss == "huber":
                return F.huber_loss(err, torch.zeros_like(err), reduction="none",
                                    delta=cfg.huber_delta)
            return 0.5 * err ** 2

        loss = loss_of(ret - v)
        if cfg.clip_value:
            v_clipped = v_old + (v - v_old).clamp(-cfg.clip, cfg.clip)
            loss = torch.max(loss, loss_of(ret - v_clipped))
        w = filled.to(loss.dtype)
        loss = (loss * w).sum() / w.sum().clamp(min=1.0)
        self.critic_opt.zero_grad()
        (cfg.value_coef * loss).backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        return float(loss.detach())

    def update(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict:
        cfg = self.cfg
        batch = cut(batch)
        adv, ret, v_old = self.advantages(batch)
        B = adv.shape[0]
        per = B // cfg.minibatches
        totals: dict[str, float] = {}
        steps = 0
        for _ in range(cfg.epochs):
            order = (torch.randperm(B, generator=generator).to(adv.device)
                     if cfg.minibatches > 1 else None)
            for m in range(cfg.minibatches):
                if order is None:
                    part, a, r, vo = batch, adv, ret, v_old
                else:
                    idx = order[m * per:(m + 1) * per]
                    part = {k: v[idx] for k, v in batch.items()}
                    a, r, vo = adv[idx], ret[idx], v_old[idx]
                stats = self.actor_step(part, a)
                stats["value_loss"] = self.critic_step(part, r, vo)
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v
                steps += 1
                self.updates += 1
        return {k: v / max(1, steps) for k, v in totals.items()}


def train_mappo(cfg: MAPPOConfig, sampler: Sampler | None = None,
                on_progress: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                make_env: Callable[[int], VecEnv] | None = None) -> TrainResult:
    """Train a MAPPO team on cfg.scenario. `sampler`: a training-time attacker that draws the
    actions at collection; `make_env(batch_size)` overrides the scenario registry."""
    cfg.check()
    make_env = make_env or default_make_env(cfg)
    env, test_env = make_env(cfg.envs), make_env(cfg.test_episodes)
    spec = env.spec
    gen = seeded(cfg)
    actor = make_actor(spec, cfg)
    if cfg.init is None:
        init_actor(actor)
    critic = StateValue(spec.state_dim, cfg.critic_hidden).to(cfg.device)
    learner = MAPPOLearner(actor, critic, cfg, spec.n_actions)
    curve = Curve(cfg, actor, test_env, sampler)
    run = train_loop(cfg, env, actor, gen, curve, lambda batch, _: learner.update(batch, gen),
                     sampler, None, on_progress, should_stop)
    steps, episodes, partial = run.steps, run.episodes, run.partial
    provenance = curve.provenance("mappo", spec, steps, episodes, partial, {
        "hyperparameters": cfg.hyperparameters(), "updates": learner.updates, "agg": cfg.agg})
    return TrainResult(actor_weights(actor), team_config("mappo", spec, cfg.hidden),
                       provenance, partial)
