"""Training a backdoored team: a recipe's poisoning inside the project's Q-learner.

The attacker controls training and holds a clean expert team from the league. The poisoned
team starts from the expert's weights (`init="expert"`, the default: an attacker who has an
expert has its training too, and it keeps the budget of one recipe to a fine-tuning run) or
from scratch (`init="scratch"`), and trains with `policies.learners.train_defender` while the
recipe's `Poisoning` hook poisons the collected experience. The result is one attacker
record: the delivered team (its config under `team`, its weights) and the trigger it places
at play, with the recipe, the expert, the trigger and the seeds in its provenance. `honest`
delivers the expert unchanged (the normal model of backdoor tables).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from arena.scenarios import make
from arena.scenarios import spec as scenario_spec
from policies.backdoor import RECIPES
from policies.backdoor.poisoning import Poisoning
from policies.errors import PolicyError
from policies.kinds import KindError, get_kind
from policies.learners.collect import collect_episodes
from policies.learners.train_defender import DefenderTrainConfig, TrainResult, train_defender
from policies.teams.networks import load_team


@dataclass
class BackdoorTrainConfig:
    recipe: str = "marnet"
    """marnet, trojdrl, mtl or honest."""
    scenario: str = "stag10"
    """A scenario with triggers (stag10, stag10_ood, 3m_marker)."""
    steps: int = 100_000
    """Poisoned training steps (team steps summed over the parallel episodes)."""
    seed: int = 0
    envs: int = 8
    """Parallel episodes per collection; round(poison_rate · envs) of them are triggered."""
    init: str = "expert"
    """Start from the expert's weights ("expert") or from scratch ("scratch")."""
    start: dict | None = None
    """Weights to start the poisoning from instead of the expert's (a defended team of the
    expert's network, re-poisoned by PSRO's backdoor oracle); the expert still guides it."""
    params: dict = field(default_factory=dict)
    """The recipe kind's parameters (policies.kinds: trigger_size, poison_agents, ...)."""
    test_every: int = 20_000
    test_episodes: int = 32
    device: str = "cpu"


def _check(cfg: BackdoorTrainConfig, expert) -> tuple[dict, object]:
    if cfg.recipe not in RECIPES:
        raise PolicyError(f"unknown backdoor recipe {cfg.recipe!r}; known: {', '.join(RECIPES)}")
    if cfg.init not in ("expert", "scratch"):
        raise PolicyError(f"init must be expert or scratch, got {cfg.init!r}")
    try:
        config = get_kind(cfg.recipe).make_config(cfg.params)
    except KindError as exc:
        raise PolicyError(str(exc)) from None
    spec = scenario_spec(cfg.scenario)
    if not spec.triggers:
        raise PolicyError(f"scenario {cfg.scenario} has no backdoor triggers; use stag10, "
                          f"stag10_ood or 3m_marker")
    if expert.role != "defender" or expert.kind not in ("qmix", "vdn"):
        raise PolicyError(f"the expert must be a qmix or vdn team, not {expert.ref} "
                          f"({expert.role}, {expert.kind})")
    if expert.scenario != cfg.scenario:
        raise PolicyError(f"{expert.ref} was trained on {expert.scenario}, not {cfg.scenario}")
    if "poison_agents" in config and config["poison_agents"] > spec.n_agents:
        raise PolicyError(f"poison_agents={config['poison_agents']}: {cfg.scenario} has "
                          f"{spec.n_agents} agents")
    if cfg.steps < 1 or cfg.envs < 1:
        raise PolicyError("steps and envs must be at least 1")
    return config, spec


def largest_step_reward(scenario: str, team, episodes: int, seed: int, device) -> float:
    """The largest team reward of one step in the expert's clean greedy episodes (r_max)."""
    env = make(scenario, episodes, device=device)
    batch, _ = collect_episodes(env, team, 0.0, seed=seed)
    return float(batch["reward"].max())


def triggered_test(scenario: str, team, size: float, episodes: int, seed: int, device) -> dict:
    """Greedy return and win rate of `team` on the same episodes, clean and triggered."""
    env = make(scenario, episodes, device=device)
    out = {}
    for key, s in (("clean", 0.0), ("triggered", size)):
        env.set_triggers(s)
        _, st = collect_episodes(env, team, 0.0, seed=seed)
        out[f"{key}_return"], out[f"{key}_win"] = st.mean_return, st.win_rate
    return out


def train_backdoor(cfg: BackdoorTrainConfig, expert, on_progress: Callable | None = None,
                   should_stop: Callable | None = None) -> TrainResult:
    """A backdoored team from `expert` (a stored qmix/vdn defender record)."""
    config, spec = _check(cfg, expert)
    t0 = time.perf_counter()
    device = torch.device(cfg.device)
    expert_team = load_team(expert.config, expert.weights, device)
    test_seed = cfg.seed + 1_000_000
    base = triggered_test(cfg.scenario, expert_team, config["trigger_size"], cfg.test_episodes,
                          test_seed, device)
    prov = {"recipe": cfg.recipe, "expert": expert.ref, "init": cfg.init, "seed": cfg.seed,
            "trigger": {"scenario": cfg.scenario, "play_size": config["trigger_size"]},
            "expert_test": base}
    if cfg.recipe == "honest":
        config["team"] = dict(expert.config)
        prov.update(steps=0, final_test_return=base["clean_return"],
                    final_triggered_return=base["triggered_return"])
        return TrainResult(dict(expert.weights), config, prov, False)
    if config["r_max"] <= 0:
        config["r_max"] = largest_step_reward(cfg.scenario, expert_team, cfg.test_episodes,
                                              cfg.seed + 7, device) or 1.0
    if config["r_win"] <= 0:
        config["r_win"] = config["r_max"]
    poison = Poisoning(cfg.recipe, config, spec, cfg.envs,
                       expert_team if config.get("action") == "ega" else None, cfg.seed, device)
    dcfg = DefenderTrainConfig(
        algo=expert.kind, scenario=cfg.scenario, steps=cfg.steps, seed=cfg.seed, envs=cfg.envs,
        updates_per_collect=config["updates_per_collect"],
        init=(dict(cfg.start) if cfg.start is not None else dict(expert.weights)
              if cfg.init == "expert" else None),
        init_config=dict(expert.config), test_every=cfg.test_every,
        test_episodes=cfg.test_episodes, test_attacks=False, device=cfg.device)
    res = train_defender(dcfg, on_progress=on_progress, should_stop=should_stop, poison=poison,
                         test_trigger=config["trigger_size"])
    config["team"] = res.config
    prov["trigger"].update(train_size=config["train_trigger_size"],
                           poison_rate=config["poison_rate"],
                           poisoned_agents=list(range(config["poison_agents"])))
    prov.update(steps=res.provenance["steps"], poisoned_step_share=round(poison.poisoned_share, 4),
                final_test_return=res.provenance["final_test_return"],
                final_triggered_return=res.provenance["final_triggered_return"],
                training=res.provenance, wall_time_s=round(time.perf_counter() - t0, 2))
    return TrainResult(res.weights, config, prov, res.partial)
