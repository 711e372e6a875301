"""Training loop of Q-learning defenders: QMIX or VDN, optionally robust.

Ties together the runner (policies.learners.collect), the episode buffer, and the learner
(policies.learners.q_learner), with PyMARL's defaults (Rashid et al. 2018; Samvelyan et al., "The
StarCraft Multi-Agent Challenge", 2019). Two robust variants follow Guo et al., "Enhancing the
Robustness of QMIX against State-adversarial Attacks" (2023):

- adversarial training (§IV-A): while collecting, the attacked agents' observations are
  replaced by FGSM perturbations against the current Q-network (policies.observation.fgsm) before the
  agents act, and these perturbed observations are what is stored and trained on;
- policy regularisation (§IV-B): the TD loss becomes L + κ·L_reg (policies.
  policy_regularisation), with κ = 0 during the first half of training and κ afterwards,
  usually starting from a trained clean model (`init`). As in the paper, the regularised team
  trains under FGSM interference: `reg="policy"` implies `adv="fgsm"` unless `adv="none"` or
  an external perturbation (a learned adversary) is given.

Test points play `test_episodes` greedy episodes clean and, on the same episode seeds, under
FGSM and PGD-10 with the run's ε, and under the current learned adversary when there is one
(`test_adversary`): the curve shows robustness lost or gained, not only the clean return.

Step counting: `steps` counts team steps of live episodes summed over the parallel
environments (one step of K parallel episodes counts K), as PyMARL's t_env with
batch_size_run = K. The exploration schedule and the test cadence use this count.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from arena.core import ScenarioSpec, VecEnv
from arena.compiled import compile_env
from policies.learners.collect import (CompiledTeamStep, collect_episodes, compile_pays,
                                       evaluate_greedy)
from policies.learners.episode_buffer import EpisodeBuffer
from policies.observation.fgsm import fgsm
from policies.learners.q_learner import LearnerConfig, QLearner
from policies.teams.networks import (
    ALGOS, TeamError, agent_inputs, architecture_fields, architecture_of, build_networks,
    export_weights, load_weights,
)
from policies.teams.rnn_agent import QTeam


# A bad training configuration or weight set is the same error as a config that makes no network.
DefenderTrainError = TeamError


@dataclass
class DefenderTrainConfig:
    algo: str = "qmix"
    """Value decomposition: "qmix" (hypernetwork mixer) or "vdn" (sum)."""
    scenario: str = "3m"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 200_000
    """Budget of environment team steps, summed over the parallel environments."""
    envs: int = 8
    """Parallel episodes per collection (K rows of one batched environment). One learner
    update follows each collection, as PyMARL's parallel runner with batch_size_run = K.
    Measured on pp7 with 90 s of wall time each on 2 shared CPU cores (one seed, QMIX):
    K = 4, 8, 16, 32 reached greedy test returns 27, 36, 34, 37. A collection costs about
    the same for any K (the episode loop is over steps, not rows), so beyond K = 8 more rows
    add steps but not learning: learner updates bound the wall time
    (scripts/train_report.py --measure-envs)."""
    seed: int = 0
    """Seed of network initialisation, exploration, replay sampling and the environments."""
    eps_start: float | None = None
    """Initial exploration rate ε; None: 1.0 from scratch, eps_finish when starting from
    `init` (a trained team re-exploring at ε = 1 fills the fresh replay buffer with
    near-random play and was measured to collapse within 10k steps on 3m)."""
    eps_finish: float = 0.05
    """Final exploration rate ε."""
    eps_anneal: int = 50_000
    """Steps over which ε decreases linearly from eps_start to eps_finish."""
    buffer: int = 5000
    """Replay capacity in episodes."""
    batch: int = 32
    """Episodes per learner update."""
    updates_per_collect: int = 1
    """Learner updates after each collection of `envs` episodes."""
    lr: float = 5e-4
    """RMSprop learning rate (alpha 0.99, eps 1e-5 as PyMARL)."""
    gamma: float = 0.99
    """Discount factor."""
    target_update: int = 200
    """Copy the online networks into the targets every this many collected episodes."""
    grad_clip: float = 10.0
    """Gradient L2-norm clip."""
    double_q: bool = True
    """Double Q-learning targets."""
    test_every: int = 10_000
    """Greedy test evaluation every this many steps (and at the start and the end)."""
    test_episodes: int = 32
    """Greedy test episodes, played as one batch."""
    test_attacks: bool = True
    """At each test point also play the test episodes under FGSM and PGD-10 (ε = adv_eps) and
    under `test_adversary`; the curve gains fgsm_*, pgd_*, adv_* returns and win rates (not
    at step 0 of a team trained from scratch). On one CPU thread a test point of 32 pp7 episodes
    cost 0.34 s clean, 0.6 s under FGSM and 2.3 s under PGD-10 (3m: 0.24, 0.42, 0.84 s)."""
    adv: str | None = None
    """None, or "fgsm" for FGSM adversarial training (Guo et al. 2023, §IV-A); "none" trains
    without perturbation even with `reg` (which otherwise implies "fgsm")."""
    adv_eps: float = 0.2
    """L∞ radius of the observation ball of adversarial training and of the regulariser."""
    adv_targets: str | list[int] = "all"
    """Agents attacked during adversarial training: "all" or a list of agent indices."""
    adv_fraction: float = 0.5
    """Share of each collection's `envs` parallel episodes played under the training
    perturbation (FGSM, or the learned adversary of alternating training); the others are
    played and stored clean. 0.5 is Goodfellow et al.'s (ICLR 2015) equal mix of clean and
    adversarial objectives (α = 0.5). 1.0, every episode perturbed, was measured on 3m to let
    teams come to rely on the perturbation: the regulariser (seed 4) and PA-AD training
    (seed 8) ended at 3 % and 16 % clean wins while winning under the attack; at 0.5 every
    measured seed kept 100 % clean (README, "Robust training")."""
    reg: str | None = None
    """None, or "policy" for the hinge policy regulariser (Guo et al. 2023, §IV-B)."""
    kappa: float = 0.1
    """Weight κ of the regulariser during the second half of training (0 in the first)."""
    hinge_c: float = 10.0
    """Hinge floor c of the regulariser."""
    reg_pgd_steps: int = 3
    """PGD steps of the regulariser's inner maximisation."""
    hidden: int = 64
    """GRU agent width."""
    use_rnn: bool = True
    """A GRU agent; False: EPyMARL's feed-forward agent (Linear + ReLU in place of the GRU)."""
    obs_last_action: bool = True
    """The agent also sees the one-hot of its last action (PyMARL's obs_last_action)."""
    obs_agent_id: bool = True
    """The agent also sees the one-hot of its id (PyMARL's obs_agent_id)."""
    embed: int = 32
    """QMIX mixing embedding width."""
    hypernet_hidden: int = 64
    """QMIX hypernetwork hidden width."""
    hypernet_layers: int = 2
    """QMIX hypernetwork depth, 1 or 2 (PyMARL's hypernet_layers)."""
    msg_dim: int = 16
    """Message width of a "commnet" team (policies.teams.commnet), value width d_v of a
    "tarmac" team; unused by the others."""
    key_dim: int = 8
    """Signature width d_k of a "tarmac" team (policies.teams.tarmac), whose value width d_v is
    `msg_dim`; unused by the others."""
    msg_beta: float = 1e-3
    """Weight β of the KL of an "ndq" team's message distribution from N(0, I)
    (policies.teams.ndq), whose message width is `msg_dim`; unused by the others."""
    init: dict | None = field(default=None, repr=False)
    """Initial weights (name → array, as TrainResult.weights), e.g. a trained clean model."""
    init_config: dict | None = field(default=None, repr=False)
    """The stored network config of `init`: its architecture (widths, input extensions,
    recurrent or not, mixer depth) replaces the fields above. Without it, `init`'s
    architecture is read from its weight shapes."""
    device: str = "cpu"
    """Torch device of the networks and environments."""
    compile: bool | str = False
    """Compile the collection's env step and team forward (collect.compile_pays): True,
    False or "auto". Costs up to a minute of CPU before the first step; float32 rounding
    differs from eager, so runs are reproducible per setting, not across settings."""

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise DefenderTrainError(f"unknown algo {self.algo!r}; known: {', '.join(ALGOS)}")
        if self.adv not in (None, "fgsm", "none"):
            raise DefenderTrainError(
                f"unknown adversarial training {self.adv!r}; known: fgsm, none")
        if self.reg not in (None, "policy"):
            raise DefenderTrainError(f"unknown regulariser {self.reg!r}; known: policy")
        for name in ("steps", "envs", "buffer", "batch", "test_episodes", "target_update"):
            if getattr(self, name) < 1:
                raise DefenderTrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch > self.buffer:
            raise DefenderTrainError(f"batch ({self.batch}) must not exceed buffer ({self.buffer})")
        if not 0.0 < self.adv_fraction <= 1.0:
            raise DefenderTrainError(f"adv_fraction must lie in (0, 1], got {self.adv_fraction}")
        if self.compile not in (True, False, "auto"):
            raise DefenderTrainError(f"compile must be true, false or auto, got {self.compile!r}")
        if self.hypernet_layers not in (1, 2):
            raise DefenderTrainError(f"hypernet_layers must be 1 or 2, got {self.hypernet_layers}")

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("init")
        d.pop("init_config")
        return d


@dataclass
class TrainResult:
    weights: dict[str, np.ndarray]
    """Parameters as float32 arrays, prefixed "agent." and "mixer."."""
    config: dict
    """JSON-able network description; load_defender(config, weights) rebuilds the networks."""
    provenance: dict
    """JSON-able record: algo, scenario, steps, seed, hyper-parameters, final test figures,
    wall time, learning curve."""
    partial: bool
    """True when should_stop() ended training before the step budget."""


# -- networks <-> records (the rest lives in policies.teams.networks) ----------------------
def network_config(cfg: DefenderTrainConfig, spec: ScenarioSpec) -> dict:
    config = {
        "algo": cfg.algo,
        "scenario": spec.name,
        "obs_dim": spec.obs_dim,
        "state_dim": spec.state_dim,
        "n_agents": spec.n_agents,
        "n_actions": spec.n_actions,
        "episode_limit": spec.episode_limit,
        **{k: getattr(cfg, k) for k in architecture_fields(cfg.algo)},
    }
    if cfg.init_config is not None:
        config.update({k: cfg.init_config[k] for k in architecture_fields(cfg.algo)
                       if k in cfg.init_config})
    elif cfg.init is not None:
        config.update(architecture_of(cfg.init, config))
    config["agent_inputs"] = agent_inputs(config)
    return config




def untrained_team(algo: str, scenario: str, seed: int, device="cpu") -> tuple[dict, dict]:
    """(config, weights) of a freshly initialised team: a deterministic, valid defender for
    engine tests and benchmarks."""
    from arena.scenarios import spec

    torch.manual_seed(seed)
    config = network_config(DefenderTrainConfig(algo=algo, scenario=scenario), spec(scenario))
    agent, mixer = build_networks(config, device)
    return config, export_weights(agent, mixer)




# -- training ----------------------------------------------------------------------------------
def epsilon_at(cfg: DefenderTrainConfig, steps: int) -> float:
    start = cfg.eps_start
    if start is None:
        start = cfg.eps_finish if cfg.init is not None else 1.0
    frac = min(1.0, steps / max(1, cfg.eps_anneal))
    return start + frac * (cfg.eps_finish - start)


def attacked_agents(cfg: DefenderTrainConfig, n_agents: int, device) -> torch.Tensor:
    mask = torch.zeros(n_agents, dtype=torch.bool, device=device)  # [n]
    if cfg.adv_targets == "all":
        mask[:] = True
        return mask
    for i in cfg.adv_targets:
        if not 0 <= int(i) < n_agents:
            raise DefenderTrainError(f"attacked agent {i} out of range 0..{n_agents - 1}")
        mask[int(i)] = True
    return mask


def default_make_env(cfg: DefenderTrainConfig) -> Callable[[int], VecEnv]:
    from arena.scenarios import make

    return lambda batch_size: make(cfg.scenario, batch_size, device=cfg.device)


def training_perturbation(cfg: DefenderTrainConfig, external: bool) -> str | None:
    """What perturbs the observations during collection: "external" (a given hook), "fgsm"
    (asked for, or implied by the policy regulariser, Guo et al. 2023 §IV-B), or None."""
    if external:
        return "external"
    if cfg.adv == "fgsm" or (cfg.adv is None and cfg.reg == "policy"):
        return "fgsm"
    return None


def perturbed_rows(envs: int, fraction: float, device) -> torch.Tensor:
    """[envs] bool: the first round(fraction·envs) rows (at least one) are perturbed."""
    rows = torch.zeros(envs, dtype=torch.bool, device=device)
    rows[: max(1, round(fraction * envs))] = True
    return rows


class OnRows:
    """A collection perturbation applied to some episode rows only; the others stay clean.

    Why: a team that only ever trains on perturbed observations can come to rely on them.
    FGSM's perturbation is a deterministic function of the team's own Q-values, so the
    team can co-adapt with it; on 3m the regularised and the PA-AD-trained teams won under
    the attack and lost clean (README, the starter's findings). Clean rows keep the clean
    behaviour in the replay buffer."""

    def __init__(self, perturb, rows: torch.Tensor):
        self.perturb, self.rows = perturb, rows  # rows [B] bool

    def reset(self, batch_size: int) -> None:
        if hasattr(self.perturb, "reset"):
            self.perturb.reset(batch_size)

    def __call__(self, q_fn, obs, avail):
        out = self.perturb(q_fn, obs, avail)
        return torch.where(self.rows[:, None, None], out, obs)


PGD_TEST_STEPS = 10


def probe_attacks(cfg: DefenderTrainConfig, n_agents: int, adversary=None) -> dict:
    """key → attacker (arena's ObservationAttacker) played at each test point."""
    from policies.observation.attacks import build_attack

    if not cfg.test_attacks:
        return {}
    out = {"fgsm": build_attack("fgsm", {"eps": cfg.adv_eps}, n_agents),
           "pgd": build_attack("pgd", {"eps": cfg.adv_eps, "steps": PGD_TEST_STEPS}, n_agents)}
    if adversary is not None:
        out["adv"] = adversary
    return out


def train_defender(
    cfg: DefenderTrainConfig,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    make_env: Callable[[int], VecEnv] | None = None,
    perturb: Callable | None = None,
    test_adversary=None,
    poison=None,
    test_trigger: float | None = None,
) -> TrainResult:
    """Train a QMIX or VDN team on cfg.scenario; `make_env(batch_size)` overrides the registry.

    `perturb(q_fn, obs, avail) -> obs'` (optionally with `reset(B)`) replaces what the agents
    see during collection: a learned adversary or a mixture of attackers (alternating and
    PSRO training). It excludes `cfg.adv`. `test_adversary` (an observation attacker, e.g.
    the learned adversary of the round) is also played at every test point. `poison` (a
    backdoor recipe's collection hook, policies.backdoor.poisoning) poisons the collected
    experience; `test_trigger` adds, at every test point, the test episodes replayed with a
    trigger of that size (`triggered_return`, `triggered_win`)."""
    cfg.validate()
    t_start = time.perf_counter()
    make_env = make_env or default_make_env(cfg)
    env, test_env = make_env(cfg.envs), make_env(cfg.test_episodes)
    spec = env.spec
    device = torch.device(cfg.device)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # exploration and replay sampling
    net_cfg = network_config(cfg, spec)
    agent, mixer = build_networks(net_cfg, device)
    if cfg.init is not None:
        load_weights(agent, mixer, cfg.init)
    team = QTeam(agent, spec.n_agents, spec.n_actions)
    learner = QLearner(
        agent,
        mixer,
        spec.n_agents,
        spec.n_actions,
        LearnerConfig(
            gamma=cfg.gamma,
            lr=cfg.lr,
            grad_clip=cfg.grad_clip,
            double_q=cfg.double_q,
            reg_eps=cfg.adv_eps,
            hinge_c=cfg.hinge_c,
            reg_pgd_steps=cfg.reg_pgd_steps,
        ),
    )
    buffer = EpisodeBuffer(
        cfg.buffer, spec.episode_limit, spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions, device
    )
    if perturb is not None and cfg.adv is not None:
        raise DefenderTrainError("give either an external perturbation or cfg.adv, not both")
    training_attack = training_perturbation(cfg, perturb is not None)
    if training_attack == "fgsm":
        mask = attacked_agents(cfg, spec.n_agents, device)

        def perturb(q_fn, obs, avail):
            return fgsm(q_fn, obs, cfg.adv_eps, agent_mask=mask, avail=avail)
    if perturb is not None and cfg.adv_fraction < 1.0:
        perturb = OnRows(perturb, perturbed_rows(cfg.envs, cfg.adv_fraction, device))

    collect_team = team
    if compile_pays(cfg.compile, cfg.steps, cfg.envs):
        env = compile_env(env)
        if perturb is None:  # a perturbation differentiates through the eager team
            collect_team = CompiledTeamStep(team)

    steps, episodes, updates, last_target, n_tests = 0, 0, 0, 0, 0
    next_test = 0
    curve: list[dict] = []
    last_loss = float("nan")
    partial = False

    attacks = probe_attacks(cfg, spec.n_agents, test_adversary)

    def run_test() -> None:
        nonlocal n_tests
        from policies.observation.mixture_perturb import MixturePerturb

        seed = cfg.seed + 1_000_000 + n_tests
        st = evaluate_greedy(test_env, team, seed=seed)
        n_tests += 1
        point = {"steps": steps, "test_return": st.mean_return, "test_win": st.win_rate}
        if test_trigger is not None:
            test_env.set_triggers(test_trigger)
            under = evaluate_greedy(test_env, team, seed=seed)
            test_env.set_triggers(0.0)
            point["triggered_return"], point["triggered_win"] = under.mean_return, under.win_rate
        # An untrained team's return under attack says nothing and PGD-10 costs about ten
        # clean tests: from scratch, the first point is clean only (a gap in the plot).
        probes = attacks if (steps > 0 or cfg.init is not None) else {}
        for key, attack in probes.items():
            # the clean episodes' seeds: each attack's loss is measured on the same episodes
            hook = MixturePerturb([attack], [1.0], seed=seed, device=device)
            under = evaluate_greedy(test_env, team, seed=seed, perturb=hook)
            point[f"{key}_return"], point[f"{key}_win"] = under.mean_return, under.win_rate
        point["wall_s"] = round(time.perf_counter() - t_start, 2)
        curve.append(point)

    def progress() -> None:
        if on_progress is None:
            return
        elapsed = max(1e-9, time.perf_counter() - t_start)
        on_progress(
            {
                "steps": steps,
                "total_steps": cfg.steps,
                "episodes": episodes,
                "epsilon": epsilon_at(cfg, steps),
                "loss": last_loss,
                "test_return": curve[-1]["test_return"] if curve else float("nan"),
                "test_win": curve[-1]["test_win"] if curve else float("nan"),
                **{f"{k}_return": curve[-1].get(f"{k}_return") for k in attacks if curve},
                "steps_per_s": steps / elapsed,
            }
        )

    first_reset = True
    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        if steps >= next_test:
            run_test()
            next_test += cfg.test_every
        batch, stats = collect_episodes(
            env, collect_team, epsilon_at(cfg, steps), gen, seed=cfg.seed if first_reset else None,
            perturb=perturb, poison=poison,
        )
        first_reset = False
        buffer.insert(batch)
        steps += stats.steps
        episodes += env.B
        if buffer.can_sample(cfg.batch):
            kappa = cfg.kappa if (cfg.reg == "policy" and steps >= cfg.steps // 2) else 0.0
            for _ in range(cfg.updates_per_collect):
                out = learner.train(buffer.sample(cfg.batch, gen), kappa=kappa)
                last_loss = out["loss"]
                updates += 1
            if episodes - last_target >= cfg.target_update:
                learner.update_targets()
                last_target = episodes
        progress()
    if not curve or curve[-1]["steps"] != steps:
        run_test()
    progress()

    wall = time.perf_counter() - t_start
    provenance = {
        "algo": cfg.algo,
        "scenario": spec.name,
        "steps": steps,
        "episodes": episodes,
        "updates": updates,
        "seed": cfg.seed,
        "hyperparameters": cfg.hyperparameters(),
        "robust": {"adv": cfg.adv, "reg": cfg.reg, "perturbation": training_attack,
                   "perturbed_fraction": cfg.adv_fraction if training_attack else None,
                   "eps": cfg.adv_eps if training_attack == "fgsm" or cfg.reg else None},
        "initialised_from_weights": cfg.init is not None,
        "final_test_return": curve[-1]["test_return"],
        "final_test_win": curve[-1]["test_win"],
        **({"final_triggered_return": curve[-1]["triggered_return"],
            "final_triggered_win": curve[-1]["triggered_win"]} if test_trigger is not None else {}),
        "test_episodes": cfg.test_episodes,
        **{f"final_{k}_return": curve[-1].get(f"{k}_return") for k in attacks},
        **{f"final_{k}_win": curve[-1].get(f"{k}_win") for k in attacks},
        "test_attacks": ({"eps": cfg.adv_eps, "fgsm": {}, "pgd": {"steps": PGD_TEST_STEPS},
                          **({"adv": getattr(test_adversary, "algo", None) or "learned"}
                             if test_adversary is not None else {})}
                         if attacks else None),
        "wall_time_s": round(wall, 2),
        "partial": partial,
        "curve": curve,
    }
    return TrainResult(export_weights(agent, mixer), net_cfg, provenance, partial)
