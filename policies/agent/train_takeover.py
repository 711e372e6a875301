"""Training an adversarial teammate (takeover_ppo, takeover_dev) against a frozen team.

Wu et al., "Adversarial Policy Training against Deep Reinforcement Learning" (USENIX
Security 2021), §3–4, in the hijacked-teammate setting: the team (a stored defender, or a
mixture of them drawn per episode) is frozen and acts greedily; each episode `targets` of its
agents are hijacked (drawn from the episode's own stream, as in matches) and play the
adversary's sampled actions instead. The adversary maximises −r_team with PPO
(policies.learners.ppo); `takeover_dev` first fits its victim models on the rollout and adds
the deviation term to the loss (policies.agent.takeover_dev).

A sample is one hijacked agent at one live step of one episode; storage is [T, K, n] and masked.
Step counting as the other trainers: team steps of live episodes summed over the K parallel
episodes. With `eval_every`, the greedy adversary is played on fixed evaluation episodes every
that many steps: the learning curve of the team's return under attack versus attacker steps.
The final evaluation plays the greedy adversary, no attack and takeover_random (same targets)
on the same episode seeds through the match engine (arena.rollout.play).

Continued training (`init`, a TakeoverCheckpoint of an earlier run): the alternating
retraining of policies.agent.retrain keeps one adversary, its Adam state and its random
stream, from round to round.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from arena.core import VecEnv
from arena.payoff import draw_members
from arena.rollout import Streams, episode_seeds, greedy, play
from policies.agent.takeover import TakeoverRandom
from policies.agent.takeover_dev import deviation, deviation_loss, fit
from policies.agent.takeover_ppo import TakeoverPolicy, in_match, takeover_config
from policies.kinds import check_train_config
from policies.learners.ppo import PPOConfig, gae, ppo_update
from policies.observation.attacks import NoAttack
from policies.observation.train_attacker import (
    AttackerTrainError, AttackerTrainResult, default_make_env, load_victims, victim_members,
    weights_id,
)

ALGOS = ("takeover_ppo", "takeover_dev")
_SALT_VICTIM, _SALT_HIJACK = 0x5EED_A77A, 0x41AC_7ED


@dataclass
class TakeoverTrainConfig:
    algo: str = "takeover_ppo"
    """"takeover_ppo" (plain PPO) or "takeover_dev" (PPO plus the victim-deviation terms)."""
    scenario: str = "3m"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 100_000
    """Budget of environment team steps, summed over the parallel episodes."""
    envs: int = 32
    """Parallel episodes per PPO rollout."""
    seed: int = 0
    """Seed of network initialisation, action sampling, minibatches and training episodes."""
    targets: str | int | list[int] = 1
    """Hijacked agents: a count drawn per episode, a list of indices, or "all"."""
    watch: bool = True
    """The adversary also reads every agent's observation and last action."""
    hidden: int = 64
    """Width of the policy and value networks."""
    eta: float = 0.06
    """takeover_dev: weight η of the deviation terms (the authors' released default, 0.06)."""
    obs_weight: float = 1.0
    """takeover_dev: signed weight w_o of the observation deviation D_o."""
    model_hidden: int = 64
    """takeover_dev: width of the victim models."""
    model_epochs: int = 10
    """takeover_dev: full-batch steps of the victim models per rollout."""
    model_lr: float = 1e-3
    """takeover_dev: Adam learning rate of the victim models."""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(ent_coef=0.01))
    """PPO hyper-parameters (entropy bonus 0.01, as the authors' PPO for adversarial agents)."""
    eval_episodes: int = 64
    """Episodes of the final evaluation."""
    eval_every: int = 0
    """Steps between greedy evaluations of the learning curve (0: the final one only)."""
    curve_episodes: int = 32
    """Episodes of each learning-curve evaluation."""
    eval_seed: int | None = None
    """Seed of the evaluation episodes (default: seed + 1_000_000)."""
    trained_against: list | dict | str = field(default_factory=list)
    """What the victims are (league refs, weights), copied into the provenance."""
    device: str = "cpu"
    """Torch device of the networks and environments."""

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise AttackerTrainError(f"unknown takeover algo {self.algo!r}; known: "
                                     f"{', '.join(ALGOS)}")
        keys = ("targets", "watch", "hidden") + (
            ("eta", "obs_weight", "model_hidden") if self.algo == "takeover_dev" else ())
        check_train_config(self, self.algo, keys, AttackerTrainError)
        if self.model_epochs < 1 or self.model_lr <= 0 or self.curve_episodes < 1:
            raise AttackerTrainError("model_epochs and curve_episodes must be at least 1, "
                                     "model_lr positive")

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("trained_against")
        return d


@dataclass
class TakeoverCheckpoint:
    """What continues an adversary in memory: its network, optimisers, random stream, counts."""

    net: TakeoverPolicy
    optimizer: torch.optim.Optimizer
    model_optimizer: torch.optim.Optimizer | None
    generator: torch.Generator
    steps: int
    iterations: int
    lineage: list = field(default_factory=list)


def collect(env: VecEnv, victim, member: torch.Tensor, seeds: torch.Tensor,
            net: TakeoverPolicy, generator: torch.Generator) -> dict:
    """env.B episodes of the frozen team with hijacked agents; storage [T, K, n]."""
    K, T = env.B, env.spec.episode_limit
    n, A = env.spec.n_agents, env.spec.n_actions
    dev = env.device
    ts = env.reset(seeds=seeds)
    hidden = victim.initial_state(K, dev)
    last = torch.zeros(K, n, A, device=dev)
    hij = net.hijacked(n, Streams(seeds ^ _SALT_HIJACK, 0)).to(dev)  # [K, n]
    returns = torch.zeros(K, device=dev)
    data: dict[str, torch.Tensor] = {
        "reward": torch.zeros(T, K, device=dev),
        "alive": torch.zeros(T, K, dtype=torch.bool, device=dev),
        "mask": torch.zeros(T, K, n, dtype=torch.bool, device=dev),
        "obs": torch.zeros(T, K, n, env.spec.obs_dim, device=dev),
        "next_obs": torch.zeros(T, K, n, env.spec.obs_dim, device=dev),
        "team_action": torch.zeros(T, K, n, dtype=torch.long, device=dev),
    }
    steps = 0
    for t in range(T):
        if bool(ts.done.all()):
            break
        alive = ~ts.done
        with torch.no_grad():
            q, hidden = victim.q_values(ts.obs, hidden, last, member)
        team_action = greedy(q, ts.avail)
        adv_action, sample = net.act(ts.obs, last, ts.avail, ts.state, generator)
        for k, v in sample.items():
            if k not in data:
                data[k] = torch.zeros((T,) + tuple(v.shape), dtype=v.dtype, device=dev)
            data[k][t] = v
        actions = torch.where(hij, adv_action, team_action)
        data["obs"][t], data["team_action"][t] = ts.obs, team_action
        data["mask"][t] = alive.unsqueeze(-1) & hij
        data["alive"][t] = alive
        last = F.one_hot(actions, A).float()
        ts = env.step(actions)
        data["next_obs"][t] = ts.obs
        returns += ts.reward
        steps += int(alive.sum())
        data["reward"][t] = ts.reward
    data["hijacked"] = hij
    return {"data": data, "returns": returns.cpu(), "won": ts.won.cpu(), "steps": steps}


def samples(data: dict, cfg: TakeoverTrainConfig, with_models: bool) -> dict:
    """Flat PPO samples of the hijacked agents' live steps (GAE on −r_team), and for
    takeover_dev what its deviation term reads: the victims' observations, the sample's agent,
    its reference (the team's own) action and its victims."""
    mask = data["mask"]
    if "value" not in data or not bool(mask.any()):
        return {}
    r_adv = -data["reward"].unsqueeze(-1).expand_as(mask)
    adv, ret = gae(cfg.ppo.reward_scale * r_adv, data["value"], mask, cfg.ppo.gamma,
                   cfg.ppo.gae_lambda)
    out = {k: data[k][mask] for k in ("x", "xv", "avail", "action", "logp")}
    out["adv"], out["ret"] = adv[mask], ret[mask]
    if with_models:
        T, K, n = mask.shape
        idx = mask.nonzero()  # [N, 3]: t, k, i in the order of data[k][mask]
        out["vobs"] = data["obs"][idx[:, 0], idx[:, 1]]
        out["agent"] = idx[:, 2]
        out["ref_action"] = data["team_action"][mask]
        out["vmask"] = ~data["hijacked"][idx[:, 1]]
    return out


def model_data(data: dict, batch: dict) -> dict:
    """What fits the victim models on this rollout (policies.agent.takeover_dev.fit)."""
    mask = data["mask"]
    idx = mask.nonzero()
    live = data["alive"]
    victims = (~data["hijacked"]).unsqueeze(0).expand(live.shape[0], -1, -1)[live]
    return {"obs": batch["vobs"], "next_obs": data["next_obs"][idx[:, 0], idx[:, 1]],
            "agent": batch["agent"], "taken": batch["action"], "vmask": batch["vmask"],
            "aobs": data["obs"][live], "aact": data["team_action"][live], "amask": victims}


def train_takeover(
    cfg: TakeoverTrainConfig,
    victims: list[tuple[dict, dict]],
    victim_weights: list[float] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    make_env: Callable[[int], VecEnv] | None = None,
    init: TakeoverCheckpoint | None = None,
) -> AttackerTrainResult:
    """Train an adversarial teammate against `victims` (config, weights) of stored teams; with
    several, each episode plays one drawn with `victim_weights` (uniform default)."""
    cfg.validate()
    t_start = time.perf_counter()
    make_env = make_env or default_make_env(cfg)
    env = make_env(cfg.envs)
    spec = env.spec
    device = torch.device(cfg.device)
    victim = load_victims(victims, spec, device)
    weights, members = victim_members(victim_weights, len(victims))
    dev_terms = cfg.algo == "takeover_dev"

    if init is None:
        torch.manual_seed(cfg.seed)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        config = takeover_config(spec, cfg.algo, cfg.targets, cfg.watch, cfg.hidden, cfg.eta,
                                 cfg.obs_weight, cfg.model_hidden, cfg.seed)
        try:
            net = TakeoverPolicy(config).to(device)
        except ValueError as exc:
            raise AttackerTrainError(str(exc)) from None
        params = list(net.policy.parameters()) + list(net.value.parameters())
        optimizer = torch.optim.Adam(params, lr=cfg.ppo.lr, eps=1e-5)
        model_opt = (torch.optim.Adam(net.victims.parameters(), lr=cfg.model_lr)
                     if dev_terms else None)
        if dev_terms:
            net.victims.requires_grad_(False)
        base_steps, base_it, lineage = 0, 0, []
    else:
        net, optimizer, model_opt, gen = init.net, init.optimizer, init.model_optimizer, init.generator
        config = dict(net.config)
        base_steps, base_it, lineage = init.steps, init.iterations, list(init.lineage)
    start_id = weights_id(net.export_weights())
    aux = deviation_loss(net, cfg.eta, cfg.obs_weight) if dev_terms else None

    eval_seed = cfg.seed + 1_000_000 if cfg.eval_seed is None else cfg.eval_seed
    steps, episodes, iteration = 0, 0, 0
    curve: list[dict] = []
    partial = False
    stats: dict[str, float] = {}
    next_eval = 0 if cfg.eval_every else None

    def curve_point() -> None:
        res = evaluate_takeover(net, victim, members, make_env, cfg, cfg.curve_episodes,
                                eval_seed, keys=("attacked",))
        curve.append({"steps": steps, "eval_return": res["final_attacked_return"],
                      "eval_win": res["final_attacked_win"],
                      "wall_s": round(time.perf_counter() - t_start, 2)})

    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        if next_eval is not None and steps >= next_eval:
            curve_point()
            next_eval += cfg.eval_every
        seeds = episode_seeds(cfg.seed, (base_it + iteration) * cfg.envs, cfg.envs, device)
        member = draw_members(members, seeds ^ _SALT_VICTIM).to(device)
        net.eval()
        roll = collect(env, victim, member, seeds, net, gen)
        batch = samples(roll["data"], cfg, dev_terms)
        if batch:
            if dev_terms:
                stats = fit(net.victims, model_opt, model_data(roll["data"], batch),
                            cfg.model_epochs)
            net.train()
            stats = {**stats, **ppo_update(net, optimizer, batch, cfg.ppo, gen, aux)}
            if dev_terms:
                with torch.no_grad():
                    probs = torch.softmax(net.logits(batch["x"], batch["avail"]), -1)
                    d_a, d_o = deviation(net.victims, probs, batch)
                stats.update(dev_action=float(d_a.mean()), dev_obs=float(d_o.mean()))
        steps += roll["steps"]
        episodes += cfg.envs
        iteration += 1
        if on_progress is not None:
            elapsed = time.perf_counter() - t_start
            on_progress({"steps": steps, "total_steps": cfg.steps, "episodes": episodes,
                         "victim_return": float(roll["returns"].mean()),
                         "victim_win": float(roll["won"].float().mean()),
                         "steps_per_s": steps / max(elapsed, 1e-9), **stats})
    net.eval()
    if next_eval is not None and (not curve or curve[-1]["steps"] != steps):
        curve_point()

    final = evaluate_takeover(net, victim, members, make_env, cfg, cfg.eval_episodes, eval_seed)
    out_weights = net.export_weights()
    lineage = lineage + [{"steps": steps, "trained_against": cfg.trained_against}]
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
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "partial": partial,
        "curve": curve,
        "start_weights_id": start_id,
        "weights_id": weights_id(out_weights),
        **({"continued_from_steps": base_steps} if init is not None else {}),
    }
    result = AttackerTrainResult(out_weights, config, provenance, partial)
    result.checkpoint = TakeoverCheckpoint(net, optimizer, model_opt, gen, base_steps + steps,
                                           base_it + iteration, lineage)
    return result


def evaluate_takeover(net: TakeoverPolicy, victim, members, make_env, cfg, episodes: int,
                      eval_seed: int, keys=("attacked", "clean", "random")) -> dict:
    """The team's return and win rate under the greedy adversary, without attack and under
    takeover_random with the same targets: same episode seeds, same hijacked agents."""
    seeds = episode_seeds(eval_seed, 0, episodes, torch.device(cfg.device))
    member = draw_members(members, seeds ^ _SALT_VICTIM).to(cfg.device)
    env = make_env(episodes)
    players = {"attacked": in_match(net), "clean": NoAttack(),
               "random": TakeoverRandom({"targets": net.targets}, env.spec.n_agents)}
    out = {"eval_episodes": episodes, "eval_seed": eval_seed}
    zeros = torch.zeros(episodes, dtype=torch.long, device=seeds.device)
    for key in keys:
        st = play(env.spec.name, victim, member, [players[key]], zeros, seeds, env.device,
                  env=env, attack_salts=[_SALT_HIJACK])
        out[f"final_{key}_return"] = float(st.returns.mean())
        out[f"final_{key}_win"] = float(st.wins.float().mean())
    return out
