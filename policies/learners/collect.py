"""Runner: plays batches of whole episodes through a vectorised scenario with a QTeam.

As PyMARL's `ParallelRunner`, but the K parallel episodes are the rows of one batched
environment rather than K processes. Exploration is PyMARL's epsilon-greedy selector: with
probability ε a uniformly random available action, otherwise the greedy available action.

An optional `perturb(q_fn, obs, avail) -> obs` transforms what the agents see before they
act (FGSM adversarial training); the perturbed observations are the ones stored, so the
learner trains on what the agents actually saw.

An optional `poison` (a backdoor recipe's hook, policies.backdoor.poisoning) places triggers
before the reset, may replace the actions taken and the rewards stored: the replay buffer
then holds the poisoned experience, while the statistics keep the environment's own return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from arena.compiled import compile_function
from arena.core import VecEnv
from policies.learners.episode_buffer import empty_episodes
from policies.teams.rnn_agent import QTeam

Perturb = Callable[[Callable, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EpisodeStats:
    returns: torch.Tensor  # [K] float32
    won: torch.Tensor  # [K] bool
    lengths: torch.Tensor  # [K] long
    steps: int  # team steps taken in live episodes, summed over the K episodes

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    @property
    def win_rate(self) -> float:
        return float(self.won.float().mean())


def epsilon_greedy(
    q: torch.Tensor, avail: torch.Tensor, epsilon: float, generator: torch.Generator | None
) -> torch.Tensor:
    """q [B,n,A], avail [B,n,A] bool → actions [B,n] long."""
    greedy = q.masked_fill(~avail, -float("inf")).argmax(-1)  # [B, n]
    if epsilon <= 0.0:
        return greedy
    gen_dev = generator.device if generator is not None else q.device
    noise = torch.rand(q.shape, generator=generator, device=gen_dev).to(q.device)
    random = noise.masked_fill(~avail, -1.0).argmax(-1)  # uniform over available actions
    explore = torch.rand(q.shape[:2], generator=generator, device=gen_dev).to(q.device) < epsilon
    return torch.where(explore, random, greedy)


def collect_episodes(
    env: VecEnv,
    team: QTeam,
    epsilon: float,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    perturb: Perturb | None = None,
    poison=None,
) -> tuple[dict[str, torch.Tensor], EpisodeStats]:
    """Play env.B episodes to the end; return the padded episode batch and its statistics."""
    if env.auto_reset:
        raise ValueError("collect_episodes needs an environment built with auto_reset=False")
    spec = env.spec
    B, T = env.B, spec.episode_limit
    dev = env.device
    batch = empty_episodes(B, T, spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions, dev)
    if poison is not None:
        poison.before_reset(env)
    ts = env.reset(seed)
    if perturb is not None and hasattr(perturb, "reset"):
        perturb.reset(B)  # stateful perturbations (one attacker drawn per episode) start afresh
    hidden = team.initial_state(B)  # [B, n, H]
    last = torch.full((B, spec.n_agents), -1, dtype=torch.long, device=dev)  # [B, n]
    alive = ~ts.done  # [B]
    returns = torch.zeros(B, device=dev)
    end = 0  # index of the observation after the last action taken

    def seen(ts):
        if perturb is None:
            return ts.obs
        return perturb(team.q_fn(hidden, last), ts.obs, ts.avail)

    for t in range(T):
        if not bool(alive.any()):
            break
        obs = seen(ts)  # [B, n, obs]
        batch["obs"][:, t], batch["state"][:, t], batch["avail"][:, t] = obs, ts.state, ts.avail
        with torch.no_grad():
            q, hidden = team.q_values(obs, hidden, last)
        actions = epsilon_greedy(q, ts.avail, epsilon, generator)  # [B, n]
        if poison is not None:
            actions = poison.act(ts, actions)
        before, ts = ts, env.step(actions)
        truncated = ts.info.get("truncated", torch.zeros_like(ts.done))
        reward = torch.where(alive, ts.reward, torch.zeros_like(ts.reward))
        batch["actions"][:, t] = actions
        batch["reward"][:, t] = reward if poison is None else torch.where(
            alive, poison.reward(before, ts, actions), reward)
        batch["filled"][:, t] = alive
        batch["terminated"][:, t] = alive & ts.done & ~truncated
        returns += reward
        alive = alive & ~ts.done
        last = actions
        end = t + 1
    batch["obs"][:, end] = seen(ts)
    batch["state"][:, end], batch["avail"][:, end] = ts.state, ts.avail
    lengths = batch["filled"].sum(1)
    stats = EpisodeStats(returns=returns, won=ts.won.clone(), lengths=lengths, steps=int(lengths.sum()))
    return batch, stats


# Where compile="auto" compiles. On 2 shared CPU cores, QMIX on 3m with 8 parallel episodes
# saved about 0.14 ms per team step (1.1 ms per step of the batch); compiling took 38 s with
# an empty inductor cache and 4-6 s with the kernels cached on disk by an earlier run: it
# pays from about 40k steps once cached, 270k on a fresh machine (README, Benchmarks).
# Larger batches gain little, their step being arithmetic rather than dispatch.
COMPILE_AUTO_STEPS = 100_000
COMPILE_AUTO_ENVS = 64


def compile_pays(setting: bool | str, steps: int, envs: int) -> bool:
    """Whether a run of `steps` team steps over `envs` parallel episodes compiles."""
    if setting == "auto":
        return steps >= COMPILE_AUTO_STEPS and envs <= COMPILE_AUTO_ENVS
    return bool(setting)


class CompiledTeamStep(QTeam):
    """A QTeam whose `q_values` (inputs, agent forward) runs compiled, for collection at a
    fixed batch. Shares the agent, so the learner's updates are seen at once. Only for
    no-grad calls of a fixed shape: a perturbation that differentiates through Q needs
    the eager team."""

    def __init__(self, team: QTeam):
        super().__init__(team.agent, team.n_agents, team.n_actions)
        self._compiled_q = compile_function(self._no_grad_q)

    def _no_grad_q(self, obs, hidden, last_action):
        return QTeam.q_values(self, obs, hidden, last_action)

    def q_values(self, obs, hidden, last_action=None, avail=None):
        if avail is not None or torch.is_grad_enabled() or last_action is None:
            return QTeam.q_values(self, obs, hidden, last_action, avail)
        return self._compiled_q(obs, hidden, last_action)


def evaluate_greedy(
    env: VecEnv, team: QTeam, seed: int | None = None, perturb: Perturb | None = None
) -> EpisodeStats:
    """Greedy test episodes, env.B of them in one batch."""
    was_training = team.agent.training
    team.agent.eval()
    try:
        return collect_episodes(env, team, 0.0, None, seed=seed, perturb=perturb)[1]
    finally:
        team.agent.train(was_training)
