"""Training ℜ-MACRL's message filter (msg_filter) in front of a frozen communicating team.

Xue et al., "Mis-spoke or mis-lead: Achieving Robustness in Multi-Agent Communicative
Reinforcement Learning" (AAMAS 2022), Eq. 2 (policies.message.msg_filter): the team is frozen
and greedy; stored message attackers play against it, one drawn per episode (and a share of
episodes is played clean, so the detector also meets every agent's benign messages). Each
step, after the attack and before the team reads, the filter's sampled verdicts pick the
messages its reconstructor replaces.

  detector h_d: PPO (policies.learners.ppo) on the team reward of the step, shared by every
      sender's verdict, plus β1 · the cross-entropy of its verdict probability against the
      ground truth y_j (the sender is malicious in this episode and the step carries an
      attack), all in one loss: L = L^CLIP + c_v·L^V + β1·CE(σ(h_d(x_j)), y_j).
  reconstructor g_r: MSE to the clean message, the one in transit before the attack; a
      benign message is its own target (identity). The malicious and the benign terms are
      averaged apart, so the few attacked messages are not drowned by the many benign ones.

The rollout keeps what the engine (arena.rollout) hides from the players: which agents each
episode's attacker made malicious, and the messages before the attack. A sample is one sender
at one live step of one episode; everything is computed for all episodes and agents at once
and masked, storage [T, K, n]. With `detector=off` no verdicts are learned (one random agent's
message is reconstructed per step, as in play) and only g_r trains; with
`reconstructor=random` g_r is not used and only h_d trains.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from arena.core import VecEnv, uniform_from
from arena.payoff import draw_members
from arena.rollout import MessageContext, Streams, episode_seeds, greedy, play
from policies.errors import PolicyError
from policies.kinds import check_train_config
from policies.learners.ppo import PPOConfig, clipped_policy_loss, gae
from policies.message.msg_filter import (
    FilterAgent, MessageFilter, filter_config, message_keys, random_agent,
)
from policies.observation.attacks import NoAttack
from policies.teams.networks import MESSAGE_ALGOS, export_weights, load_defender
from policies.teams.stacked_team import StackedTeam

_SALT_CLEAN, _SALT_ATTACKER, _SALT_MALICIOUS = 0xC1EA7, 0xA77AC4, 0x3A11CE5


class FilterTrainError(PolicyError):
    """A bad filter training configuration, team or attacker; one line for the user."""


@dataclass
class MsgFilterTrainConfig:
    scenario: str = "pp7"
    """Registered scenario name (arena.scenarios)."""
    steps: int = 100_000
    """Budget of environment team steps, summed over the parallel episodes."""
    envs: int = 32
    """Parallel episodes per rollout."""
    seed: int = 0
    """Seed of network initialisation, verdict sampling, minibatches and training episodes."""
    hidden: int = 64
    """Width of the detector's and the reconstructor's networks."""
    detector: str = "on"
    """"on": learned verdicts; "off": one random agent's message reconstructed per step."""
    reconstructor: str = "learned"
    """"learned": g_r; "random": flagged messages become same-norm Gaussian noise."""
    beta1: float = 1.0
    """Weight β1 of the detector's cross-entropy against the ground-truth flags."""
    clean_fraction: float = 0.25
    """Share of training episodes played without attack."""
    recon_lr: float = 1e-3
    """Adam learning rate of the reconstructor."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyper-parameters of the detector."""
    eval_episodes: int = 64
    """Episodes of the final evaluation (per attacker, and clean)."""
    eval_seed: int | None = None
    """Seed of the evaluation episodes (default: seed + 1_000_000)."""
    trained_against: list = field(default_factory=list)
    """The attackers' league refs, copied into the config and the provenance."""
    device: str = "cpu"
    """Torch device of the networks and environments."""

    def validate(self) -> None:
        if not 0.0 <= self.clean_fraction < 1.0:
            raise FilterTrainError(f"clean_fraction must lie in [0, 1), got {self.clean_fraction}")
        check_train_config(self, "msg_filter", ("hidden", "detector", "reconstructor", "beta1"),
                           FilterTrainError)

    def hyperparameters(self) -> dict:
        d = asdict(self)
        d.pop("trained_against")
        return d


@dataclass
class FilterTrainResult:
    weights: dict[str, np.ndarray]
    """"team.*" (the frozen base team), "detector.*", "reconstructor.*" float32 arrays."""
    config: dict
    """filter_config: the base team's config, the filter's sizes, trained_against."""
    provenance: dict
    partial: bool


@dataclass
class Opponents:
    """The message attackers of training: objects (arena.rollout.MessageAttacker), per-episode
    weights, and stream salts (arena.rollout.stream_salt of their refs)."""

    attackers: list
    weights: list[float]
    salts: list[int]


def base_team(team_config: dict, team_weights: dict, spec, device) -> tuple:
    """(agent, StackedTeam of it) of the frozen base; one line unless it communicates."""
    if team_config.get("algo") not in MESSAGE_ALGOS:
        raise FilterTrainError(f"a message filter guards a communicating team (commnet, "
                               f"tarmac), not a {team_config.get('algo')} team")
    shape = tuple(int(team_config.get(f, -1)) for f in ("obs_dim", "n_agents", "n_actions"))
    if shape != (spec.obs_dim, spec.n_agents, spec.n_actions):
        raise FilterTrainError(f"the team does not fit scenario {spec.name}'s shapes")
    agent, _ = load_defender(team_config, team_weights, device)
    agent.eval().requires_grad_(False)
    return agent, StackedTeam([agent], spec.n_agents, spec.n_actions, device)


def draw_opponents(opp: Opponents, seeds: torch.Tensor, clean_fraction: float) -> torch.Tensor:
    """[K] attacker index per episode; −1: played clean."""
    who = draw_members([(k, w) for k, w in enumerate(opp.weights) if w > 0],
                       seeds ^ _SALT_ATTACKER).to(seeds.device)
    clean = uniform_from(seeds ^ _SALT_CLEAN, 0, ()).view(-1) < clean_fraction
    return torch.where(clean, torch.full_like(who, -1), who)


def collect(env: VecEnv, team: StackedTeam, flt: MessageFilter, opp: Opponents,
            seeds: torch.Tensor, clean_fraction: float, generator: torch.Generator) -> dict:
    """env.B episodes of the frozen team behind the sampling filter; storage [T, K, n]."""
    K, T = env.B, env.spec.episode_limit
    n, A = env.spec.n_agents, env.spec.n_actions
    dev = env.device
    ts = env.reset(seeds=seeds)
    member = torch.zeros(K, dtype=torch.long, device=dev)
    hidden = team.initial_state(K, dev)
    last = torch.zeros(K, n, A, device=dev)
    who = draw_opponents(opp, seeds, clean_fraction)
    mal = torch.zeros(K, n, dtype=torch.bool, device=dev)
    groups = [(k, (who == k).nonzero().flatten()) for k in range(len(opp.attackers))]
    groups = [(k, rows) for k, rows in groups if len(rows)]
    for k, rows in groups:
        opp.attackers[k].reset(len(rows), dev)
        rand = Streams(seeds[rows] ^ opp.salts[k] ^ _SALT_MALICIOUS, 0)
        mal[rows] = opp.attackers[k].malicious(n, rand).to(device=dev, dtype=torch.bool)
    data: dict[str, torch.Tensor] = {}
    returns = torch.zeros(K, device=dev)
    steps = 0
    for t in range(T):
        if bool(ts.done.all()):
            break
        alive = ~ts.done
        clean = team.messages(hidden, member)  # [K, n, d]
        sent = clean.clone()
        y = torch.zeros(K, n, dtype=torch.bool, device=dev)
        if t > 0:  # nothing is in transit before the second step, so nothing to attack
            for k, rows in groups:
                ctx = MessageContext(malicious=mal[rows], avail=ts.avail[rows],
                                     state=ts.state[rows], t=t, rows=rows, obs=ts.obs[rows],
                                     rand=Streams(seeds[rows] ^ opp.salts[k], t))
                with torch.no_grad():
                    out = opp.attackers[k].message(clean[rows].clone(), ctx).to(clean.dtype)
                sent[rows] = torch.where(mal[rows].unsqueeze(-1), out, clean[rows])
            y = mal & (who >= 0).unsqueeze(-1)
        with torch.no_grad():
            x = flt.features(sent)
            step = {"x": x, "sent": sent, "clean": clean, "y": y.float(),
                    "mask": alive.unsqueeze(-1).expand(-1, n).clone()}
            if flt.use_detector:
                dist = torch.distributions.Bernoulli(logits=flt.logits(x))
                u = torch.rand(x.shape[:2], generator=generator, device=generator.device)
                flags = u.to(dev) < dist.probs
                step.update(action=flags.float(), logp=dist.log_prob(flags.float()),
                            value=flt.detector["value"](x).squeeze(-1))
            else:
                flags = random_agent(sent, message_keys(sent))
            step["flag"] = flags
            read = flt.replace(sent, x, flags)
            hidden = team.with_messages(hidden, read, member)
            q, hidden = team.q_values(ts.obs, hidden, last, member)
        for key, v in step.items():
            if key not in data:
                data[key] = torch.zeros((T,) + tuple(v.shape), dtype=v.dtype, device=dev)
            data[key][t] = v
        actions = greedy(q, ts.avail)
        last = F.one_hot(actions, A).float()
        ts = env.step(actions)
        returns += ts.reward
        steps += int(alive.sum())
        data.setdefault("reward", torch.zeros(T, K, device=dev))[t] = ts.reward
    return {"data": data, "returns": returns.cpu(), "steps": steps}


def update(flt: MessageFilter, opt_d, opt_r, data: dict, cfg: MsgFilterTrainConfig,
           generator: torch.Generator) -> dict:
    """One pass of the detector's PPO + β1·CE and the reconstructor's MSE over a rollout."""
    mask = data["mask"]
    flat = {k: data[k][mask] for k in ("x", "sent", "clean", "y")}
    learn_d = flt.use_detector
    learn_r = flt.learned
    if learn_d:
        adv, ret = gae(cfg.ppo.reward_scale * data["reward"].unsqueeze(-1), data["value"], mask,
                       cfg.ppo.gamma, cfg.ppo.gae_lambda)
        flat.update(action=data["action"][mask], logp=data["logp"][mask], adv=adv[mask],
                    ret=ret[mask])
    N = len(flat["y"])
    mb = max(1, N // cfg.ppo.minibatches)
    stats = {"ce": 0.0, "policy_loss": 0.0, "recon_mse": 0.0}
    count = 0
    for _ in range(cfg.ppo.epochs):
        perm = torch.randperm(N, generator=generator).to(flat["y"].device)
        for start in range(0, N - mb + 1, mb):
            part = {k: v[perm[start:start + mb]] for k, v in flat.items()}
            if learn_d:
                logp, entropy, value = flt.evaluate(part)
                a = part["adv"]
                if cfg.ppo.norm_adv and len(a) > 1:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                pg = clipped_policy_loss(logp, part["logp"], a, cfg.ppo.clip)
                ce = F.binary_cross_entropy_with_logits(flt.logits(part["x"]), part["y"])
                loss = (pg + cfg.ppo.vf_coef * 0.5 * F.mse_loss(value, part["ret"])
                        - cfg.ppo.ent_coef * entropy.mean() + cfg.beta1 * ce)
                opt_d.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(flt.detector.parameters(), cfg.ppo.max_grad_norm)
                opt_d.step()
                stats["ce"] += ce.item()
                stats["policy_loss"] += pg.item()
            if learn_r:
                mse = recon_loss(flt, part)
                opt_r.zero_grad()
                mse.backward()
                opt_r.step()
                stats["recon_mse"] += mse.item()
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}


def recon_loss(flt: MessageFilter, part: dict) -> torch.Tensor:
    """Mean squared error to the clean message, malicious and benign senders averaged apart."""
    err = (flt.reconstruct(part["sent"], part["x"]) - part["clean"]).pow(2).sum(-1)
    bad = part["y"] > 0.5
    terms = [err[m].mean() for m in (bad, ~bad) if bool(m.any())]
    return sum(terms) / len(terms)


def default_make_env(cfg: MsgFilterTrainConfig) -> Callable[[int], VecEnv]:
    from arena.scenarios import make

    return lambda batch_size: make(cfg.scenario, batch_size, device=cfg.device)


def train_msg_filter(
    cfg: MsgFilterTrainConfig,
    team: tuple[dict, dict],
    opponents: Opponents,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    make_env: Callable[[int], VecEnv] | None = None,
) -> FilterTrainResult:
    """Train a msg_filter in front of the stored communicating `team` (config, weights)
    against `opponents`. `make_env(batch_size)` overrides the scenario registry."""
    cfg.validate()
    if not opponents.attackers:
        raise FilterTrainError("a message filter trains against at least one message attacker")
    bad = [a for a in opponents.attackers if getattr(a, "surface", "") != "message"]
    if bad:
        raise FilterTrainError("a message filter trains against message attackers only")
    t_start = time.perf_counter()
    make_env = make_env or default_make_env(cfg)
    env = make_env(cfg.envs)
    spec, device = env.spec, torch.device(cfg.device)
    team_config, team_w = team
    agent, victim = base_team(team_config, team_w, spec, device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    config = filter_config(team_config, agent.msg_dim, cfg.hidden, cfg.detector,
                           cfg.reconstructor, cfg.beta1, cfg.trained_against)
    flt = MessageFilter(config).to(device)
    opt_d = torch.optim.Adam(flt.detector.parameters(), lr=cfg.ppo.lr, eps=1e-5)
    opt_r = torch.optim.Adam(flt.reconstructor.parameters(), lr=cfg.recon_lr)

    steps, episodes, iteration, partial = 0, 0, 0, False
    curve: list[dict] = []
    stats: dict = {}
    while steps < cfg.steps:
        if should_stop is not None and should_stop():
            partial = True
            break
        seeds = episode_seeds(cfg.seed, iteration * cfg.envs, cfg.envs, device)
        flt.eval()
        roll = collect(env, victim, flt, opponents, seeds, cfg.clean_fraction, gen)
        flt.train()
        stats = update(flt, opt_d, opt_r, roll["data"], cfg, gen)
        steps += roll["steps"]
        episodes += cfg.envs
        iteration += 1
        elapsed = time.perf_counter() - t_start
        curve.append({"steps": steps, "team_return": float(roll["returns"].mean()),
                      **verdicts(roll["data"]), "wall_s": round(elapsed, 2)})
        if on_progress is not None:
            on_progress({**curve[-1], "total_steps": cfg.steps, "episodes": episodes,
                         "steps_per_s": steps / max(elapsed, 1e-9), **stats})
    flt.eval()
    weights = {**{"team." + k: v for k, v in export_weights(*load_defender(
        team_config, team_w)).items()}, **flt.export_weights()}
    final = evaluate_filter(FilterAgent(agent, flt), agent, opponents, make_env, cfg)
    provenance = {
        "algo": "msg_filter", "scenario": spec.name, "trained_against": cfg.trained_against,
        "attacker_weights": list(opponents.weights), "steps": steps, "episodes": episodes,
        "iterations": iteration, "seed": cfg.seed, "hyperparameters": cfg.hyperparameters(),
        **final, "last_losses": stats, "wall_time_s": round(time.perf_counter() - t_start, 2),
        "partial": partial, "curve": curve,
    }
    return FilterTrainResult(weights, config, provenance, partial)


def verdicts(data: dict) -> dict:
    """How the rollout's verdicts met the ground truth: recall on malicious messages, false
    alarms on benign ones."""
    mask = data["mask"]
    flag, y = data["flag"][mask], data["y"][mask] > 0.5
    out = {"false_alarms": round(float(flag[~y].float().mean()), 4) if bool((~y).any()) else 0.0}
    if bool(y.any()):
        out["recall"] = round(float(flag[y].float().mean()), 4)
    return out


def evaluate_filter(filtered: FilterAgent, agent, opponents: Opponents, make_env,
                    cfg: MsgFilterTrainConfig) -> dict:
    """Greedy returns through the match engine, the team alone and behind the filter, clean
    and under each attacker, on the same episode seeds."""
    E = cfg.eval_episodes
    eval_seed = cfg.seed + 1_000_000 if cfg.eval_seed is None else cfg.eval_seed
    env = make_env(2 * E)
    spec = env.spec
    team = StackedTeam([agent, filtered], spec.n_agents, spec.n_actions, cfg.device)
    seeds = episode_seeds(eval_seed, 0, E, torch.device(cfg.device)).repeat(2)
    member = torch.arange(2, device=seeds.device).repeat_interleave(E)
    zeros = torch.zeros(2 * E, dtype=torch.long, device=seeds.device)
    out: dict = {"eval_episodes": E, "eval_seed": eval_seed}

    def returns(attacker, salt):
        st = play(spec.name, team, member, [attacker], zeros, seeds, env.device, env=env,
                  attack_salts=[salt])
        return float(st.returns[:E].mean()), float(st.returns[E:].mean())

    out["final_clean_return"], out["final_filtered_clean_return"] = returns(NoAttack(), 0)
    per = [returns(a, s) for a, s in zip(opponents.attackers, opponents.salts)]
    out["final_attacked_returns"] = [p[0] for p in per]
    out["final_filtered_returns"] = [p[1] for p in per]
    out["final_attacked_return"] = float(np.mean(out["final_attacked_returns"]))
    out["final_filtered_return"] = float(np.mean(out["final_filtered_returns"]))
    return out


def from_league(lg, team_ref: str, attacker_refs: list[str], scenario: str | None = None,
                device="cpu") -> tuple:
    """(team record, Opponents, attacker refs) of `arena train defender --algo msg_filter`: the stored
    communicating team to guard and the stored message attackers (mixtures: their members) to
    train against; one line for anything else."""
    from policies.lineup import build_lineup, check_role, check_scenario
    from policies.names import resolve_for
    from policies.surfaces import attacker_surface

    rec = lg.get(resolve_for(lg, team_ref, scenario))
    check_role(rec, "defender")
    if rec.kind not in MESSAGE_ALGOS:
        raise FilterTrainError(f"--init {rec.ref} is a {rec.kind} team, not a communicating "
                               f"one: a message filter guards a {', '.join(MESSAGE_ALGOS)} team")
    if scenario is not None and rec.scenario != scenario:
        raise FilterTrainError(f"--init {rec.ref} is a team for {rec.scenario}, not for "
                               f"{scenario}: a filter guards a team of its own scenario")
    refs = []
    for ref in attacker_refs:
        info = lg.info(resolve_for(lg, ref, rec.scenario))
        if info.role != "attacker" or attacker_surface(lg, info) != "message":
            what = f"a {info.kind} attacker" if info.role == "attacker" else "a defender"
            raise FilterTrainError(f"--against {info.ref} is {what}, not a message attacker "
                                   f"(msg_random, msg_ppo)")
        check_scenario(info, rec.scenario)
        refs.append(info.ref)
    lineup = build_lineup(lg, rec.scenario, [rec.ref], refs, device)
    attackers, weights, salts = [], [], []
    for entry in lineup.attacker_members:
        total = sum(w for _, w in entry)
        for i, w in entry:
            if getattr(lineup.attacker_objs[i], "surface", "") == "message":
                attackers.append(lineup.attacker_objs[i])
                weights.append(w / total / len(refs))
                salts.append(lineup.attacker_salts[i])
    return rec, Opponents(attackers, weights, salts), refs
