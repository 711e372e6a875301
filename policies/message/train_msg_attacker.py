"""Training ℜ-MACRL's learned message attacker (msg_ppo) against a frozen communicating team.

Xue et al., "Mis-spoke or mis-lead: Achieving Robustness in Multi-Agent Communicative
Reinforcement Learning" (AAMAS 2022), Eq. 1: the team (a CommNet from the league, or a mixture
of them) is frozen and acts greedily; at every step after the first, each malicious agent's
in-transit message m_out is replaced by m_adv = mix(m_out, δ), δ ~ N(f_μ(τ, m_in, m_out), σ²I),
and ξ is trained with PPO (policies.learners.ppo) on

    r_adv_i(t) = −r_team(t) − α·‖m_out_i(t) − m_adv_i(t)‖²

for each malicious agent i: the team reward is shared, the penalty is the agent's own.

A sample is one malicious agent at one step of one episode. The rollout computes the attacker
for every agent of every episode in one call and masks: storage is [T, K, n] and a slot is a
sample when the episode is live, the step is not the first (nothing is in transit before it)
and the agent is malicious in that episode. Malicious agents are drawn per episode from the
episode's own stream exactly as in matches (a count is Byzantine: a fresh subset per episode),
so one network, which sees the agent's index, learns to speak for whichever agent it is given.

Step counting as the other trainers: team steps of live episodes summed over the K parallel
episodes. The final evaluation plays the greedy attacker (δ = f_μ), no attack and msg_random of
the same ω and targets on the same episode seeds through the match engine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from arena.core import VecEnv
from arena.payoff import draw_members
from arena.rollout import Streams, episode_seeds, greedy, play
from policies.kinds import check_train_config
from policies.learners.ppo import PPOConfig, gae, ppo_update
from policies.message.msg_ppo import MsgPPOAttacker, msg_ppo_config
from policies.message.msg_random import MsgRandom
from policies.observation.attacks import NoAttack
from policies.observation.train_attacker import (
    AttackerTrainError, AttackerTrainResult, load_victims, victim_members, weights_id,
)

_SALT_VICTIM, _SALT_MALICIOUS = 0x5EED_A77A, 0x3A11_CE57


@dataclass
class MsgAttackerTrainConfig:
    scenario: str = "pp7"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 100_000
    """Budget of environment team steps, summed over the parallel episodes."""
    envs: int = 32
    """Parallel episodes per PPO rollout."""
    seed: int = 0
    """Seed of network initialisation, δ sampling, minibatches and training episodes."""
    targets: str | int | list[int] = 1
    """Malicious agents: a count drawn per episode, a list of indices, or "all"."""
    omega: float = 1.0
    """Weight ω of δ in the convex combination."""
    combine: str = "convex"
    """"convex": (1 − ω)·m + ω·δ; "add": m + δ."""
    alpha: float = 0.1
    """Weight α of the penalty ‖m_out − m_adv‖² in the attacker's reward."""
    sigma: float = 0.5
    """Fixed standard deviation of δ (Λ = σ²·I)."""
    hidden: int = 64
    """Width of the mean and value networks."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyper-parameters."""
    eval_episodes: int = 64
    """Episodes of the final evaluation."""
    eval_seed: int | None = None
    """Seed of the evaluation episodes (default: seed + 1_000_000)."""
    trained_against: list | dict | str = field(default_factory=list)
    """What the victims are (league refs, weights), copied into the provenance."""
    device: str = "cpu"
    """Torch device of the networks and environments."""

    def validate(self) -> None:
        check_train_config(self, "msg_ppo", ("targets", "omega", "combine", "alpha", "sigma",
                                             "hidden"), AttackerTrainError)

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("trained_against")
        return d


def message_width(victim, n_members: int) -> int:
    """The one message width every victim sends; one line when some sends none or widths differ."""
    widths = victim.message_width(torch.arange(n_members)).tolist() if hasattr(
        victim, "message_width") else [0]
    if min(widths) == 0:
        raise AttackerTrainError("msg_ppo attacks messages, but a victim sends none: train it "
                                 "against a communicating team such as commnet")
    if len(set(widths)) != 1:
        raise AttackerTrainError(f"the victims send messages of different widths {widths}; "
                                 f"one msg_ppo attacker speaks one width")
    return int(widths[0])


def message_victims(victims: list[tuple[dict, dict]], spec, device):
    """The victims as one StackedTeam; a message filter (msg_filter) plays as its base team
    behind the filter, so an attacker can be trained against the defended team."""
    filters = {k for k, (c, _) in enumerate(victims) if c.get("algo") == "msg_filter"}
    if not filters:
        return load_victims(victims, spec, device)
    from policies.errors import PolicyError
    from policies.message.msg_filter import build_filter_agent
    from policies.teams.networks import load_defender
    from policies.teams.stacked_team import StackedTeam

    agents = []
    for k, (config, weights) in enumerate(victims):
        shape = tuple(int(config.get(f, -1)) for f in ("obs_dim", "n_agents", "n_actions"))
        if shape != (spec.obs_dim, spec.n_agents, spec.n_actions):
            raise AttackerTrainError(f"victim {k} does not fit scenario {spec.name}'s shapes")
        try:
            agent = (build_filter_agent(config, weights, device) if k in filters
                     else load_defender(config, weights, device)[0])
        except PolicyError as exc:
            raise AttackerTrainError(f"victim {k}: {exc}") from None
        agents.append(agent.eval().requires_grad_(False))
    return StackedTeam(agents, spec.n_agents, spec.n_actions, device)


def collect(env: VecEnv, victim, member: torch.Tensor, seeds: torch.Tensor,
            attacker: MsgPPOAttacker, generator: torch.Generator) -> dict:
    """env.B episodes of the frozen team under the sampling attacker; PPO storage [T, K, n]."""
    K, T = env.B, env.spec.episode_limit
    n, A = env.spec.n_agents, env.spec.n_actions
    dev = env.device
    ts = env.reset(seeds=seeds)
    hidden = victim.initial_state(K, dev)
    last = torch.zeros(K, n, A, device=dev)
    mal = attacker.malicious(n, Streams(seeds ^ _SALT_MALICIOUS, 0)).to(dev)  # [K, n]
    returns = torch.zeros(K, device=dev)
    data: dict[str, torch.Tensor] = {
        "reward": torch.zeros(T, K, device=dev),
        "penalty": torch.zeros(T, K, n, device=dev),
        "mask": torch.zeros(T, K, n, dtype=torch.bool, device=dev),
    }
    steps = 0
    for t in range(T):
        if bool(ts.done.all()):
            break
        alive = ~ts.done
        if t > 0:
            msgs = victim.messages(hidden, member)  # [K, n, d]
            adv, sample = attacker.act(ts.obs, msgs, generator)
            for k, v in sample.items():
                if k not in data:
                    data[k] = torch.zeros((T,) + tuple(v.shape), dtype=v.dtype, device=dev)
                data[k][t] = v
            sent = torch.where(mal.unsqueeze(-1), adv.to(msgs.dtype), msgs)
            hidden = victim.with_messages(hidden, sent, member)
            data["penalty"][t] = (adv - msgs).pow(2).sum(-1)
            data["mask"][t] = alive.unsqueeze(-1) & mal
        with torch.no_grad():
            q, hidden = victim.q_values(ts.obs, hidden, last, member)
        actions = greedy(q, ts.avail)
        last = torch.nn.functional.one_hot(actions, A).float()
        ts = env.step(actions)
        returns += ts.reward
        steps += int(alive.sum())
        data["reward"][t] = ts.reward
    return {"data": data, "returns": returns.cpu(), "won": ts.won.cpu(), "steps": steps}


def samples(data: dict, cfg: MsgAttackerTrainConfig, alpha: float) -> dict:
    """Flat PPO samples of the malicious agents' live steps, with GAE on r_adv."""
    mask = data["mask"]
    if "value" not in data or not bool(mask.any()):
        return {}
    r_adv = -data["reward"].unsqueeze(-1) - alpha * data["penalty"]  # [T, K, n]
    adv, ret = gae(cfg.ppo.reward_scale * r_adv, data["value"], mask, cfg.ppo.gamma,
                   cfg.ppo.gae_lambda)
    out = {k: data[k][mask] for k in ("x", "action", "logp")}
    out["adv"], out["ret"] = adv[mask], ret[mask]
    return out


def default_make_env(cfg: MsgAttackerTrainConfig) -> Callable[[int], VecEnv]:
    from arena.scenarios import make

    return lambda batch_size: make(cfg.scenario, batch_size, device=cfg.device)


def train_msg_attacker(
    cfg: MsgAttackerTrainConfig,
    victims: list[tuple[dict, dict]],
    victim_weights: list[float] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    make_env: Callable[[int], VecEnv] | None = None,
) -> AttackerTrainResult:
    """Train a msg_ppo attacker against `victims` (config, weights) of stored communicating
    teams; with several, each episode plays one drawn with `victim_weights` (uniform default).
    `make_env(batch_size)` overrides the scenario registry."""
    cfg.validate()
    t_start = time.perf_counter()
    make_env = make_env or default_make_env(cfg)
    env = make_env(cfg.envs)
    spec = env.spec
    device = torch.device(cfg.device)
    victim = message_victims(victims, spec, device)
    weights, members = victim_members(victim_weights, len(victims))
    msg_dim = message_width(victim, len(victims))

    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    config = msg_ppo_config(spec, msg_dim, cfg.targets, cfg.omega, cfg.combine, cfg.alpha,
                            cfg.sigma, cfg.hidden)
    try:
        attacker = MsgPPOAttacker(config).to(device)
    except ValueError as exc:
        raise AttackerTrainError(str(exc)) from None
    optimizer = torch.optim.Adam(attacker.parameters(), lr=cfg.ppo.lr, eps=1e-5)
    start_id = weights_id(attacker.export_weights())

    steps, episodes, iteration = 0, 0, 0
    curve: list[dict] = []
    partial = False
    stats: dict[str, float] = {}
    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        seeds = episode_seeds(cfg.seed, iteration * cfg.envs, cfg.envs, device)
        member = draw_members(members, seeds ^ _SALT_VICTIM).to(device)
        attacker.eval()
        roll = collect(env, victim, member, seeds, attacker, gen)
        batch = samples(roll["data"], cfg, attacker.alpha)
        if batch:
            attacker.train()
            stats = ppo_update(attacker, optimizer, batch, cfg.ppo, gen)
        mask = roll["data"]["mask"]
        penalty = float(roll["data"]["penalty"][mask].mean()) if bool(mask.any()) else 0.0
        steps += roll["steps"]
        episodes += cfg.envs
        iteration += 1
        elapsed = time.perf_counter() - t_start
        curve.append({"steps": steps, "victim_return": float(roll["returns"].mean()),
                      "victim_win": float(roll["won"].float().mean()),
                      "penalty": round(penalty, 5), "wall_s": round(elapsed, 2)})
        if on_progress is not None:
            on_progress({**curve[-1], "total_steps": cfg.steps, "episodes": episodes,
                         "steps_per_s": steps / max(elapsed, 1e-9), **stats})
    attacker.eval()

    final = evaluate_msg_attack(attacker, victim, members, make_env, cfg)
    out_weights = attacker.export_weights()
    provenance = {
        "algo": "msg_ppo",
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
    }
    return AttackerTrainResult(out_weights, config, provenance, partial)


def evaluate_msg_attack(attacker: MsgPPOAttacker, victim, members, make_env,
                        cfg: MsgAttackerTrainConfig) -> dict:
    """The victim's return and win rate under the greedy attacker, without attack, and under
    msg_random of the same ω, combine and targets: same episode seeds, same malicious agents."""
    E = cfg.eval_episodes
    eval_seed = cfg.seed + 1_000_000 if cfg.eval_seed is None else cfg.eval_seed
    seeds = episode_seeds(eval_seed, 0, E, torch.device(cfg.device))
    member = draw_members(members, seeds ^ _SALT_VICTIM).to(cfg.device)
    env = make_env(E)
    n = env.spec.n_agents
    baseline = MsgRandom({"targets": attacker.targets, "omega": attacker.omega,
                          "combine": attacker.combine}, n)
    out = {"eval_episodes": E, "eval_seed": eval_seed}
    zeros = torch.zeros(E, dtype=torch.long, device=seeds.device)
    for key, att in (("attacked", attacker), ("clean", NoAttack()), ("random", baseline)):
        st = play(env.spec.name, victim, member, [att], zeros, seeds, env.device, env=env)
        out[f"final_{key}_return"] = float(st.returns.mean())
        out[f"final_{key}_win"] = float(st.wins.float().mean())
    return out
