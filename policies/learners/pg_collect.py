"""Runner of stochastic-policy teams (MAPPO, DOP): whole episodes sampled from the actors.

The actor is PyMARL's recurrent agent (policies.teams.rnn_agent.RNNAgent) read as logits:
π_i(·|τ_i) = softmax over the available actions. Each step every agent's action is drawn by
inverse CDF from one uniform u [B, n] of the learner's generator, so an agent's draw depends
only on its own distribution and its own u: a training-time attacker that changes agent k's
distribution leaves every other agent's action as it would have been.

The training surface (TRAM, policies.training) hooks in here and nowhere else: a `Sampler`
may replace the distribution the actions are *drawn* from. What is stored — observations,
the learner's own log π(a) (`logp`), rewards — is untouched, so the learner never sees the
attack except through which actions were taken. A sampler keeps its own random stream, so a
sampler that never poisons (f_A = 0) trains bit for bit as no sampler.

Evaluation is greedy (the most likely available action), as EPyMARL's `test_greedy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from arena.core import VecEnv
from policies.learners.collect import EpisodeStats
from policies.learners.episode_buffer import empty_episodes
from policies.teams.rnn_agent import RNNAgent, build_inputs, mask_unavailable, onehot_actions


@dataclass
class SampleStep:
    """What a training-time attacker sees at one step of collection (batch first)."""

    logits: torch.Tensor  # [B, n, A], unavailable actions at -1e9
    probs: torch.Tensor  # [B, n, A] the learner's π
    avail: torch.Tensor  # [B, n, A] bool
    obs: torch.Tensor  # [B, n, obs]
    state: torch.Tensor  # [B, S]
    alive: torch.Tensor  # [B] bool
    t: int
    q: torch.Tensor | None = None  # [B, n, A] per-agent action values of the learner's critic


class Sampler(Protocol):
    """A training-time attacker (surface "training")."""

    def reset(self, batch_size: int) -> None: ...

    def distribution(self, step: SampleStep) -> torch.Tensor:
        """[B, n, A]: the distribution each agent's action is drawn from this step."""
        ...

    def observe(self, batch: dict[str, torch.Tensor]) -> None:
        """The collected episodes (an attacker with its own critic learns from them)."""
        ...


def draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: probs [..., A], u [...] in [0, 1) → action [...] long."""
    cdf = probs.cumsum(-1)
    a = (cdf < u.unsqueeze(-1) * cdf[..., -1:]).sum(-1)
    return a.clamp(max=probs.shape[-1] - 1)


def policy(logits: torch.Tensor, avail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked logits, π) of raw logits [..., A] and avail [..., A] bool."""
    masked = mask_unavailable(logits, avail)
    return masked, torch.softmax(masked, -1)


def unroll(agent: RNNAgent, obs: torch.Tensor, actions: torch.Tensor, n_actions: int
           ) -> torch.Tensor:
    """The actor's raw outputs over whole episodes: obs [B,T+1,n,o], actions [B,T,n] →
    [B, T+1, n, A] (inputs: observation, last action, id, as at collection)."""
    B, T1, n, _ = obs.shape
    first = torch.zeros(B, 1, n, n_actions, device=obs.device)
    last_oh = torch.cat([first, onehot_actions(actions, n_actions)], dim=1)
    h = agent.init_hidden(B * n)
    out = []
    for t in range(T1):  # a loop over steps, batched over episodes and agents
        x, h = agent(build_inputs(obs[:, t], last_oh[:, t]).reshape(B * n, -1), h)
        out.append(x.view(B, n, -1))
    return torch.stack(out, 1)


QFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def collect_pg(env: VecEnv, agent: RNNAgent, generator: torch.Generator, seed: int | None = None,
               sampler: Sampler | None = None, q_fn: QFn | None = None,
               greedy: bool = False) -> tuple[dict[str, torch.Tensor], EpisodeStats]:
    """Play env.B whole episodes; the padded batch (episode_buffer layout plus `logp` [B,T,n],
    the learner's log π of the actions taken) and the statistics.

    `q_fn(state, obs, last_onehot) -> [B,n,A]` gives a sampler the learner's per-agent action
    values (DOP's critic); it is called only when there is a sampler."""
    if env.auto_reset:
        raise ValueError("collect_pg needs an environment built with auto_reset=False")
    spec = env.spec
    B, T, n, A = env.B, spec.episode_limit, spec.n_agents, spec.n_actions
    dev = env.device
    batch = empty_episodes(B, T, n, spec.obs_dim, spec.state_dim, A, dev)
    batch["logp"] = torch.zeros(B, T, n, device=dev)
    ts = env.reset(seed)
    if sampler is not None:
        sampler.reset(B)
    h = agent.init_hidden(B * n).view(B, n, -1)
    last = torch.zeros(B, n, A, device=dev)
    alive = ~ts.done
    returns = torch.zeros(B, device=dev)
    end = 0
    for t in range(T):
        if not bool(alive.any()):
            break
        batch["obs"][:, t], batch["state"][:, t], batch["avail"][:, t] = ts.obs, ts.state, ts.avail
        with torch.no_grad():
            x, h2 = agent(build_inputs(ts.obs, last).reshape(B * n, -1), h.reshape(B * n, -1))
            logits, probs = policy(x.view(B, n, A), ts.avail)
            if greedy:
                actions = logits.argmax(-1)
            else:
                u = torch.rand(B, n, generator=generator, device=generator.device).to(dev)
                drawn_from = probs
                if sampler is not None:
                    q = q_fn(ts.state, ts.obs, last) if q_fn is not None else None
                    drawn_from = sampler.distribution(SampleStep(
                        logits, probs, ts.avail, ts.obs, ts.state, alive, t, q))
                actions = draw(drawn_from, u)
            logp = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        h = h2.view(B, n, -1)
        ts = env.step(actions)
        truncated = ts.info.get("truncated", torch.zeros_like(ts.done))
        reward = torch.where(alive, ts.reward, torch.zeros_like(ts.reward))
        batch["actions"][:, t], batch["reward"][:, t], batch["logp"][:, t] = actions, reward, logp
        batch["filled"][:, t] = alive
        batch["terminated"][:, t] = alive & ts.done & ~truncated
        returns += reward
        alive = alive & ~ts.done
        last = onehot_actions(actions, A)
        end = t + 1
    batch["obs"][:, end], batch["state"][:, end] = ts.obs, ts.state
    batch["avail"][:, end] = ts.avail
    lengths = batch["filled"].sum(1)
    if sampler is not None:
        sampler.observe(batch)
    return batch, EpisodeStats(returns=returns, won=ts.won.clone(), lengths=lengths,
                               steps=int(lengths.sum()))


def evaluate_pg(env: VecEnv, agent: RNNAgent, seed: int) -> EpisodeStats:
    """Greedy test episodes, env.B of them in one batch."""
    was = agent.training
    agent.eval()
    try:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        return collect_pg(env, agent, gen, seed=seed, greedy=True)[1]
    finally:
        agent.train(was)


def random_team_return(env: VecEnv, seed: int) -> EpisodeStats:
    """Uniformly random available actions, env.B episodes: the floor a learner must beat."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ts = env.reset(seed)
    alive, returns = ~ts.done, torch.zeros(env.B, device=env.device)
    while bool(alive.any()):
        u = torch.rand(ts.avail.shape, generator=gen).to(env.device)
        actions = u.masked_fill(~ts.avail, -1.0).argmax(-1)
        ts = env.step(actions)
        returns += torch.where(alive, ts.reward, torch.zeros_like(ts.reward))
        alive = alive & ~ts.done
    return EpisodeStats(returns=returns, won=ts.won.clone(), lengths=torch.zeros(env.B),
                        steps=0)
