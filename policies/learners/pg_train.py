"""What the policy-gradient team learners (MAPPO, DOP) share: the base of their configs, the
team record they produce, and the test points of their learning curves.

A trained team is stored as a `mappo` or `dop` defender: the shared GRU actor under the
"agent." prefix (PyMARL's layout, so every match, attack and stacked batch plays it as it
plays a QMIX agent, greedily); the critics serve training only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from arena.core import ScenarioError, ScenarioSpec, VecEnv
from policies.learners.pg_collect import QFn, Sampler, collect_pg, evaluate_pg
from policies.teams.networks import TeamError, agent_inputs
from policies.teams.rnn_agent import RNNAgent, make_agent

PGTrainError = TeamError


@dataclass
class PGTrainConfig:
    scenario: str = "spread"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 200_000
    """Budget of environment team steps, summed over the parallel episodes."""
    envs: int = 8
    """Parallel episodes per collection (rows of one batched environment)."""
    seed: int = 0
    """Seed of initialisation, sampling, minibatches and the environments."""
    hidden: int = 64
    """GRU actor width (PyMARL's rnn_hidden_dim)."""
    test_every: int = 10_000
    """Greedy test evaluation every this many steps (and at the start and the end)."""
    test_episodes: int = 32
    """Greedy test episodes, played as one batch."""
    device: str = "cpu"
    """Torch device of the networks and environments."""
    init: dict | None = field(default=None, repr=False)
    """Initial actor weights (name → array, "agent." prefix), e.g. to continue a team."""

    def check_counts(self) -> None:
        for name in ("steps", "envs", "test_every", "test_episodes", "hidden"):
            if getattr(self, name) < 1:
                raise PGTrainError(f"{name} must be at least 1, got {getattr(self, name)}")

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("init")
        return d


def team_config(algo: str, spec: ScenarioSpec, hidden: int) -> dict:
    """The stored network config of a policy-gradient team (load_team rebuilds its actor)."""
    config = {"algo": algo, "scenario": spec.name, "obs_dim": spec.obs_dim,
              "state_dim": spec.state_dim, "n_agents": spec.n_agents,
              "n_actions": spec.n_actions, "episode_limit": spec.episode_limit,
              "hidden": hidden, "use_rnn": True, "obs_last_action": True,
              "obs_agent_id": True}
    config["agent_inputs"] = agent_inputs(config)
    return config


def make_actor(spec: ScenarioSpec, cfg: PGTrainConfig) -> RNNAgent:
    from policies.weights import load_named

    actor = make_agent(spec.obs_dim, spec.n_actions, spec.n_agents, cfg.hidden).to(cfg.device)
    if cfg.init is not None:
        load_named(actor, cfg.init, "agent.", "agent network", PGTrainError)
    return actor


def actor_weights(actor: RNNAgent) -> dict:
    return {"agent." + k: v.detach().cpu().numpy().astype("float32")
            for k, v in actor.state_dict().items()}


class Curve:
    """Test points: greedy returns on fixed episode seeds, and the sampler's own figures
    (a training-time attacker's stealth log) at the same steps."""

    def __init__(self, cfg: PGTrainConfig, actor: RNNAgent, test_env: VecEnv,
                 sampler: Sampler | None = None):
        self.cfg, self.actor, self.env, self.sampler = cfg, actor, test_env, sampler
        self.points: list[dict] = []
        self.t0 = time.perf_counter()
        self.next_at = 0

    def due(self, steps: int) -> bool:
        return steps >= self.next_at

    def test(self, steps: int) -> dict:
        st = evaluate_pg(self.env, self.actor, seed=self.cfg.seed + 1_000_000 + len(self.points))
        point = {"steps": steps, "test_return": st.mean_return, "test_win": st.win_rate}
        if self.sampler is not None and hasattr(self.sampler, "stats"):
            point.update(self.sampler.stats())
        point["wall_s"] = round(time.perf_counter() - self.t0, 2)
        self.points.append(point)
        self.next_at += self.cfg.test_every
        return point

    def finish(self, steps: int) -> None:
        if not self.points or self.points[-1]["steps"] != steps:
            self.test(steps)

    def provenance(self, algo: str, spec: ScenarioSpec, steps: int, episodes: int,
                   partial: bool, extra: dict) -> dict:
        last = self.points[-1]
        attack = getattr(self.sampler, "describe", lambda: None)() if self.sampler else None
        return {"algo": algo, "scenario": spec.name, "steps": steps, "episodes": episodes,
                "seed": self.cfg.seed, "initialised_from_weights": self.cfg.init is not None,
                "final_test_return": last["test_return"], "final_test_win": last["test_win"],
                "test_episodes": self.cfg.test_episodes, "training_attack": attack,
                "wall_time_s": round(time.perf_counter() - self.t0, 2), "partial": partial,
                **extra, "curve": self.points}


def progress_line(on_progress: Callable[[dict], None] | None, curve: Curve, steps: int,
                  total: int, **extra) -> None:
    if on_progress is None:
        return
    elapsed = max(1e-9, time.perf_counter() - curve.t0)
    last = curve.points[-1] if curve.points else {}
    on_progress({"steps": steps, "total_steps": total,
                 "test_return": last.get("test_return", float("nan")),
                 "test_win": last.get("test_win", float("nan")),
                 "steps_per_s": steps / elapsed, **extra})


def seeded(cfg: PGTrainConfig) -> torch.Generator:
    """Seed torch's global stream (initialisation) and return the run's own generator."""
    torch.manual_seed(cfg.seed)
    return torch.Generator(device="cpu").manual_seed(cfg.seed)


def default_make_env(cfg: PGTrainConfig) -> Callable[[int], VecEnv]:
    """`make_env(batch_size)` from the registry; an unknown scenario is one line."""
    from arena.scenarios import make

    def make_env(batch_size: int) -> VecEnv:
        try:
            return make(cfg.scenario, batch_size, device=cfg.device)
        except ScenarioError as exc:
            raise PGTrainError(str(exc).splitlines()[0]) from exc

    return make_env


@dataclass
class LoopResult:
    steps: int
    episodes: int
    partial: bool
    last: dict  # the last update's figures
    collect_s: float  # wall time spent collecting
    update_s: float  # wall time spent in `update`


def train_loop(cfg: PGTrainConfig, env: VecEnv, actor: RNNAgent, gen: torch.Generator,
               curve: Curve, update: Callable[[dict, object], dict],
               sampler: Sampler | None = None, q_fn: QFn | None = None,
               on_progress: Callable[[dict], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> LoopResult:
    """What MAPPO and DOP share: test when due, collect `envs` episodes (the environments
    seeded once, at the first reset), `update(batch, stats) -> figures`, report; until the
    step budget or `should_stop()` (partial). Steps count live team steps."""
    steps = episodes = 0
    partial, first, last = False, True, {}
    t_collect = t_update = 0.0
    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        if curve.due(steps):
            curve.test(steps)
        t0 = time.perf_counter()
        batch, stats = collect_pg(env, actor, gen, seed=cfg.seed if first else None,
                                  sampler=sampler, q_fn=q_fn)
        first = False
        steps += stats.steps
        episodes += env.B
        t1 = time.perf_counter()
        last = update(batch, stats)
        t_collect, t_update = t_collect + t1 - t0, t_update + time.perf_counter() - t1
        progress_line(on_progress, curve, steps, cfg.steps, episodes=episodes,
                      train_return=stats.mean_return, **last)
    curve.finish(steps)
    progress_line(on_progress, curve, steps, cfg.steps, episodes=episodes, **last)
    return LoopResult(steps, episodes, partial, last, t_collect, t_update)
