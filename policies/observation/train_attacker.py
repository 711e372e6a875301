"""Training the learned observation attackers (ATLA, PA-AD) against fixed defenders with PPO.

Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks" (2023),
Alg. 1 (ATLA-style perturbation policy) and Alg. 2 (PA-AD director): the defender is frozen
and acts greedily on the perturbed observations; the attacker collects episodes with its
stochastic policy and maximises −(team return) with PPO (policies.learners.ppo).

Several victims (a defender mixture, as PSRO's best-response oracle needs) share one batch:
each episode draws one member from its own random stream (arena.payoff.draw_members) and the
victims are stacked (policies.teams.stacked_team), so a rollout is one batched call per step.

Step counting as the defender learner: `steps` counts team steps of live episodes summed over
the K parallel episodes. The attacker acts at every step during training (`freq` is stored in
the config and applied by matches only).

Continued training (`init`, an AttackerCheckpoint): ATLA (Zhang et al., "Robust Reinforcement
Learning on State Observations with Learned Optimal Adversary", ICLR 2021, Alg. 2) keeps one
adversary for the whole alternation and trains it on against each new victim, rather than a
fresh one per round: a fresh adversary with a short budget is weaker than the one it replaces.
A checkpoint carries the weights, Adam's moments and step counts, and how far training got, so
a continued run is one PPO run split in pieces, up to the victim and the episode seeds.
"""

from __future__ import annotations

import time
import copy
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from arena.core import VecEnv
from arena.payoff import draw_members
from arena.rollout import episode_seeds, greedy, play
from policies.errors import PolicyError
from policies.observation.atla import ATLAAttacker, atla_config
from policies.observation.learned import LearnedAttacker
from policies.kinds import KindError, parse_targets
from policies.observation.attacks import NoAttack
from policies.observation.pa_ad import PAADAttacker, pa_ad_config
from policies.learners.ppo import PPOConfig, gae, ppo_update
from policies.teams.stacked_team import StackedTeam
from policies.teams.networks import TeamError as DefenderTrainError, load_defender

ALGOS = ("atla", "pa_ad")
_SALT_VICTIM = 0x5EED_A77A


class AttackerTrainError(PolicyError):
    """A bad attacker training configuration or victim; one line for the user."""


@dataclass
class AttackerTrainConfig:
    algo: str = "atla"
    """Attacker: "atla" (Gaussian perturbation policy) or "pa_ad" (director + FGSM actor)."""
    scenario: str = "3m"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 100_000
    """Budget of environment team steps, summed over the parallel episodes."""
    envs: int = 32
    """Parallel episodes per PPO rollout (K rows of one batched environment)."""
    seed: int = 0
    """Seed of network initialisation, action sampling, minibatches and training episodes."""
    eps: float = 0.2
    """Radius of the perturbation ball on the normalised observation."""
    norm: str = "linf"
    """Norm of the ball: "linf" or "l2"."""
    targets: str | int | list[int] = "all"
    """Attacked agents: "all", a count (the first k) or a list of indices."""
    freq: float = 1.0
    """Fraction of steps attacked in matches (stored in the config; training attacks every step)."""
    hidden: int = 64
    """Width of the policy and value networks."""
    actor_steps: int = 1
    """PA-AD only: gradient steps of the actor (1: targeted FGSM, Eq. 7; more: PGD)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyper-parameters."""
    eval_episodes: int = 64
    """Episodes of the final evaluation (greedy attacker, and clean on the same seeds)."""
    eval_seed: int | None = None
    """Seed of the evaluation episodes (default: seed + 1_000_000)."""
    trained_against: list | dict | str = field(default_factory=list)
    """What the victims are (league refs, weights), copied into the provenance."""
    device: str = "cpu"
    """Torch device of the networks and environments."""

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise AttackerTrainError(f"unknown attacker algo {self.algo!r}; known: {', '.join(ALGOS)}")
        if self.norm not in ("linf", "l2"):
            raise AttackerTrainError(f"unknown norm {self.norm!r}; known: linf, l2")
        if not 0.0 <= self.eps <= 1.0:
            raise AttackerTrainError(f"eps must lie in [0, 1], got {self.eps}")
        for name in ("steps", "envs", "eval_episodes", "hidden", "actor_steps"):
            if getattr(self, name) < 1:
                raise AttackerTrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        try:
            self.targets = parse_targets(self.targets)
        except KindError as exc:
            raise AttackerTrainError(str(exc)) from None

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("trained_against")
        return d


def weights_id(weights: dict) -> str:
    """A short content id of a weight set (names, shapes and values), to tell in a provenance
    which weights a run started from and which it ended with."""
    h = hashlib.sha256()
    for k in sorted(weights):
        v = np.ascontiguousarray(np.asarray(weights[k], dtype=np.float32))
        h.update(k.encode())
        h.update(str(v.shape).encode())
        h.update(v.tobytes())
    return h.hexdigest()[:16]


@dataclass
class AttackerCheckpoint:
    """Where an attacker's PPO training stands: enough to continue it (`train_attacker(init=)`)."""

    config: dict
    """The attacker's network and budget description (as AttackerTrainResult.config)."""
    weights: dict[str, np.ndarray]
    """Its parameters (policy, value and the policy's log σ)."""
    optimizer: dict | None = None
    """Adam's state_dict (moments and step counts); None starts Adam afresh on the weights."""
    steps: int = 0
    """Environment steps trained so far, over all earlier runs."""
    iterations: int = 0
    """PPO iterations so far: a continued run with the same seed plays new episode seeds."""
    lineage: str = ""
    """weights_id of the weights the first run started from: one id for one adversary."""


@dataclass
class AttackerTrainResult:
    weights: dict[str, np.ndarray]
    """Parameters as float32 arrays ("policy.*", "value.*")."""
    config: dict
    """JSON-able network and budget description; the LEARNED_ATTACKERS builder rebuilds it."""
    provenance: dict
    """JSON-able record: algo, scenario, trained_against, steps, seed, final attacked and clean
    returns on the same seeds, wall time, learning curve."""
    partial: bool
    """True when should_stop() ended training before the step budget."""
    checkpoint: AttackerCheckpoint | None = field(default=None, repr=False)
    """The state to continue this training from (not stored in the league)."""


def make_attacker(config: dict, spec=None) -> LearnedAttacker:
    """The attacker of `config`; with the scenario `spec`, within its feature groups and bounds
    (without it: every feature, unclipped)."""
    cls = {"atla": ATLAAttacker, "pa_ad": PAADAttacker}[config["algo"]]
    return cls(config, spec)


def load_victims(victims: list[tuple[dict, dict]], spec, device) -> StackedTeam:
    if not victims:
        raise AttackerTrainError("at least one victim (config, weights) is needed")
    agents = []
    for k, (config, weights) in enumerate(victims):
        shape = tuple(int(config.get(f, -1)) for f in ("obs_dim", "n_agents", "n_actions"))
        if shape != (spec.obs_dim, spec.n_agents, spec.n_actions):
            raise AttackerTrainError(f"victim {k} does not fit scenario {spec.name}'s shapes")
        try:
            agent, _ = load_defender(config, weights, device)
        except DefenderTrainError as exc:
            raise AttackerTrainError(f"victim {k}: {exc}") from None
        agents.append(agent.eval())
    for agent in agents:
        agent.requires_grad_(False)
    return StackedTeam(agents, spec.n_agents, spec.n_actions, device)


# -- rollouts ----------------------------------------------------------------------------------
@dataclass
class Rollout:
    returns: torch.Tensor  # [K] team return
    won: torch.Tensor  # [K] bool
    steps: int  # live team steps
    data: dict[str, torch.Tensor]  # [T, K, m, ...] PPO samples; "reward", "alive" [T, K]


def play_episodes(
    env: VecEnv,
    victim: StackedTeam,
    member: torch.Tensor,
    seeds: torch.Tensor,
    attacker: LearnedAttacker,
    generator: torch.Generator,
) -> Rollout:
    """Collect env.B episodes for PPO: the attacker's stochastic policy, the victim greedy on
    what it lets it see; the samples go to `data`. (Evaluation, with the deterministic
    attacker, clean or with a baseline, is the match engine's: `arena.rollout.play`.)
    """
    K, T = env.B, env.spec.episode_limit
    n, A = env.spec.n_agents, env.spec.n_actions
    dev = env.device
    ts = env.reset(seeds=seeds)
    hidden = victim.initial_state(K, dev)  # [K, n, H]
    last = torch.zeros(K, n, A, device=dev)  # [K, n, A] one-hot of the last actions
    returns = torch.zeros(K, device=dev)
    data: dict[str, torch.Tensor] = {
        "reward": torch.zeros(T, K, device=dev),  # [T, K]
        "alive": torch.zeros(T, K, dtype=torch.bool, device=dev),
    }
    steps = 0
    for t in range(T):
        if bool(ts.done.all()):
            break
        alive = ~ts.done

        def q_fn(o, h_t=hidden, last_t=last):
            return victim.q_values(o, h_t, last_t, member)[0]

        seen, sample = attacker.act(ts.obs, q_fn, ts.avail, ts.state, generator)
        for k, v in sample.items():
            if k not in data:
                data[k] = torch.zeros((T,) + tuple(v.shape), dtype=v.dtype, device=dev)
            data[k][t] = v
        data["alive"][t] = alive
        with torch.no_grad():
            q, hidden = victim.q_values(seen, hidden, last, member)
        actions = greedy(q, ts.avail)
        last = torch.nn.functional.one_hot(actions, A).float()
        ts = env.step(actions)
        returns += ts.reward
        steps += int(alive.sum())
        data["reward"][t] = ts.reward
    return Rollout(returns.cpu(), ts.won.cpu(), steps, data)


def flatten_samples(data: dict[str, torch.Tensor], adv: torch.Tensor, ret: torch.Tensor) -> dict:
    """[T, K, m, ...] storage → flat [N, ...] samples of the live steps."""
    keep = data["alive"].unsqueeze(-1).expand_as(adv)  # [T, K, m]
    out = {k: v[keep] for k, v in data.items() if k not in ("alive", "reward", "value")}
    out["adv"], out["ret"] = adv[keep], ret[keep]
    return out


# -- training ----------------------------------------------------------------------------------
def victim_members(victim_weights: list[float] | None, n: int):
    """(weights, [(member, weight) of positive weight]) of n victims drawn per episode with
    `victim_weights` (uniform by default); one line when they are not a distribution."""
    weights = list(victim_weights) if victim_weights is not None else [1.0] * n
    if len(weights) != n or min(weights) < 0 or sum(weights) <= 0:
        raise AttackerTrainError(
            "victim_weights must be one non-negative weight per victim, not all zero")
    return weights, [(i, w) for i, w in enumerate(weights) if w > 0]


def default_make_env(cfg: AttackerTrainConfig) -> Callable[[int], VecEnv]:
    from arena.scenarios import make

    return lambda batch_size: make(cfg.scenario, batch_size, device=cfg.device)


def train_attacker(
    cfg: AttackerTrainConfig,
    victims: list[tuple[dict, dict]],
    victim_weights: list[float] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    make_env: Callable[[int], VecEnv] | None = None,
    init: AttackerCheckpoint | None = None,
) -> AttackerTrainResult:
    """Train an ATLA or PA-AD attacker against `victims` (config, weights) of stored teams.

    With several victims, each episode plays one of them, drawn with `victim_weights`
    (uniform by default). `make_env(batch_size)` overrides the scenario registry. `init`
    continues an earlier training for `cfg.steps` more steps: its weights, Adam state and
    iteration count (the attacker's budget and shapes must be the ones `cfg` describes).
    """
    cfg.validate()
    t_start = time.perf_counter()
    make_env = make_env or default_make_env(cfg)
    env = make_env(cfg.envs)
    spec = env.spec
    device = torch.device(cfg.device)
    victim = load_victims(victims, spec, device)
    weights, members = victim_members(victim_weights, len(victims))

    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # actions and minibatches
    if cfg.algo == "atla":
        config = atla_config(spec, cfg.eps, cfg.norm, cfg.targets, cfg.freq, cfg.hidden)
    else:
        config = pa_ad_config(spec, cfg.eps, cfg.norm, cfg.targets, cfg.freq, cfg.hidden,
                              cfg.actor_steps)
    try:
        attacker = make_attacker(config, spec).to(device)
    except ValueError as exc:
        raise AttackerTrainError(str(exc)) from None
    optimizer = torch.optim.Adam(attacker.parameters(), lr=cfg.ppo.lr, eps=1e-5)
    start_id = weights_id(attacker.export_weights())
    lineage, done_before, iter_before = start_id, 0, 0
    if init is not None:
        continue_from(init, config, attacker, optimizer, cfg.ppo.lr)
        start_id = weights_id(init.weights)
        lineage = init.lineage or start_id
        done_before, iter_before = int(init.steps), int(init.iterations)

    steps, episodes, iteration = 0, 0, 0
    curve: list[dict] = []
    partial = False
    stats: dict[str, float] = {}
    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        seeds = episode_seeds(cfg.seed, (iter_before + iteration) * cfg.envs, cfg.envs, device)
        member = draw_members(members, seeds ^ _SALT_VICTIM).to(device)
        attacker.eval()
        roll = play_episodes(env, victim, member, seeds, attacker, gen)
        data = roll.data
        reward = -cfg.ppo.reward_scale * data["reward"].unsqueeze(-1)  # [T, K, 1] attacker's reward
        alive = data["alive"].unsqueeze(-1)  # [T, K, 1]
        adv, ret = gae(reward, data["value"], alive, cfg.ppo.gamma, cfg.ppo.gae_lambda)
        attacker.train()
        stats = ppo_update(attacker, optimizer, flatten_samples(data, adv, ret), cfg.ppo, gen)
        steps += roll.steps
        episodes += cfg.envs
        iteration += 1
        elapsed = time.perf_counter() - t_start
        curve.append({"steps": steps, "victim_return": float(roll.returns.mean()),
                      "victim_win": float(roll.won.float().mean()), "wall_s": round(elapsed, 2)})
        if on_progress is not None:
            on_progress({**curve[-1], "total_steps": cfg.steps, "episodes": episodes,
                         "steps_per_s": steps / max(elapsed, 1e-9), **stats})
    attacker.eval()

    final = evaluate_attack(attacker, victim, members, make_env, cfg)
    wall = time.perf_counter() - t_start
    out_weights = attacker.export_weights()
    checkpoint = AttackerCheckpoint(
        config=config, weights=out_weights, optimizer=copy.deepcopy(optimizer.state_dict()),
        steps=done_before + steps, iterations=iter_before + iteration, lineage=lineage)
    provenance = {
        "algo": cfg.algo,
        "scenario": spec.name,
        "trained_against": cfg.trained_against,
        "victim_weights": weights,
        "steps": steps,
        "episodes": episodes,
        "iterations": iteration,
        "seed": cfg.seed,
        "hyperparameters": cfg.hyperparameters(),
        **final,
        "last_losses": stats,
        "wall_time_s": round(wall, 2),
        "partial": partial,
        "curve": curve,
        "start_weights_id": start_id,
        "weights_id": weights_id(out_weights),
        "lineage": lineage,
        "continued_from": ({"weights_id": start_id, "steps": done_before,
                            "iterations": iter_before} if init is not None else None),
        "steps_total": done_before + steps,
    }
    return AttackerTrainResult(out_weights, config, provenance, partial, checkpoint)


def continue_from(init: AttackerCheckpoint, config: dict, attacker: LearnedAttacker,
                  optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Load a checkpoint into a freshly built attacker and its optimizer, in place."""
    if init.config.get("algo") != config.get("algo"):
        raise AttackerTrainError(f"the initial attacker is {init.config.get('algo')!r}, "
                                 f"not {config.get('algo')!r}")
    differ = sorted(k for k in config if k in init.config and not _same(init.config[k], config[k]))
    if differ:
        raise AttackerTrainError("the initial attacker differs from the one to train in "
                                 + ", ".join(f"{k} ({init.config[k]!r} vs {config[k]!r})"
                                             for k in differ))
    attacker.load_weights(init.weights)
    if init.optimizer is not None:
        optimizer.load_state_dict(copy.deepcopy(init.optimizer))
        for group in optimizer.param_groups:
            group["lr"] = lr  # the learning rate is this run's; the moments are the checkpoint's


def _same(a, b) -> bool:
    """Config values compare as arrays (bounds may be lists or arrays), the rest as values."""
    if isinstance(a, (str, dict)) or isinstance(b, (str, dict)):
        return a == b
    return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))


def evaluate_attack(attacker, victim, members, make_env, cfg: AttackerTrainConfig) -> dict:
    """Victim's return and win rate with the deterministic attacker and clean, same seeds."""
    E = cfg.eval_episodes
    eval_seed = cfg.seed + 1_000_000 if cfg.eval_seed is None else cfg.eval_seed
    seeds = episode_seeds(eval_seed, 0, E, torch.device(cfg.device))
    member = draw_members(members, seeds ^ _SALT_VICTIM).to(cfg.device)
    env = make_env(E)
    attack_all = torch.zeros(E, dtype=torch.long, device=seeds.device)
    attacked = play(env.spec.name, victim, member, [attacker], attack_all, seeds, env.device,
                    env=env)
    clean = play(env.spec.name, victim, member, [NoAttack()], attack_all, seeds, env.device,
                 env=env)
    return {
        "eval_episodes": E,
        "eval_seed": eval_seed,
        "final_attacked_return": float(attacked.returns.mean()),
        "final_attacked_win": float(attacked.wins.float().mean()),
        "final_clean_return": float(clean.returns.mean()),
        "final_clean_win": float(clean.wins.float().mean()),
    }
