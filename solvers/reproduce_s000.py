"""`arena reproduce s000`: the MARNet backdoor paper's tables on our stag10 and 3m_marker.

"MARNet: Backdoor Attacks against Cooperative Multi-Agent Reinforcement Learning". What is
regenerated, every trained policy read from the league by name (`scripts/s000_lanes.sh`
trains them in two parallel lanes; what is missing is trained here, one after the other):

- Table 1: the normal model (the clean expert, `qmix.stag10` / `vdn.stag10`) and the teams
  backdoored by MTL, TrojDRL (targeted) and MARNet (`<recipe>_<learner>.s<seed>`), each
  played clean and with triggers of size 0, 5, ..., 25 % of the walls;
- Table 2: MARNet's ablation on QMIX, action poisoning (EGA, TrojDRL's targeted and
  untargeted) × reward hacking (MGR, TrojDRL's max): `abl_<action>_<reward>.s<seed>`, the two
  combinations that are recipes being marnet_qmix and trojdrl_qmix;
- Table 3: the fine-tuning defence at two budgets (Fine-tune1/2) and fine-pruning (beyond the
  paper) against the MARNet teams, cells of the backdoor game (`policies.backdoor.cells`);
- the SMAC-style experiment: win rates of the normal QMIX team, TrojDRL and MARNet on
  3m_marker (one poisoned agent of three), clean and triggered.
Trained figures are means over seeds with a Student-t 95 % interval; the normal model is one
expert per learner, its interval over episodes. `--quick` reads the shipped starter league's
stag10 policies only (one seed; Table 3 from its backdoor cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch

from arena.rollout import episode_seeds, play
from policies.backdoor.trigger import TriggerAttack, delivered_team
from policies.lineup import agent_from_record
from policies.reproduce_s003 import Hooks
from policies.teams.stacked_team import StackedTeam

SIZES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)
LEARNERS = ("qmix", "vdn")
RECIPES = {"mtl": {}, "trojdrl": {}, "marnet": {}}
ABLATION = {("ega", "mgr"): "marnet_qmix", ("targeted", "max"): "trojdrl_qmix",
            ("ega", "max"): "abl_ega_max", ("targeted", "mgr"): "abl_targeted_mgr",
            ("untargeted", "mgr"): "abl_untargeted_mgr",
            ("untargeted", "max"): "abl_untargeted_max"}
DEFENCES = ("none", "Fine-tune1", "Fine-tune2", "fine-pruning")
SMAC = ("3m_marker", "qmix.3m_marker", ("trojdrl", "marnet"))
POISONED = 4  # the recipes' default poison_agents on stag10


@dataclass
class S000Config:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ablation_seeds: list[int] = field(default_factory=lambda: [0])
    episodes: int = 64
    poison_steps: int = 100_000
    poison_updates: int = 4
    """Learner updates per collection of 8 episodes while poisoning."""
    finetune_steps: tuple[int, int] = (20_000, 100_000)
    """Fine-tune1 and Fine-tune2's budgets; fine-pruning fine-tunes for the first."""
    quick: bool = False
    smac: bool = True
    device: str = "cpu"


def _delivered(rec):
    """A stored attacker's delivered team as a record the lineup can build an agent from."""
    kind, config, weights = delivered_team(rec)
    return SimpleNamespace(kind=kind, config=config, weights=weights, ref=rec.ref)


def sweep(scenario: str, recs: list, episodes: int, seed: int, device="cpu") -> np.ndarray:
    """Returns and wins [len(recs), len(SIZES), episodes, 2] of every team at every trigger
    size, all in one batch on common episodes (the same seeds for every team and size)."""
    agents = [agent_from_record(r, device) for r in recs]
    from arena.scenarios import spec

    sp = spec(scenario)
    team = StackedTeam(agents, sp.n_agents, sp.n_actions, device)
    R, S, E = len(recs), len(SIZES), episodes
    seeds = episode_seeds(seed, 0, E).repeat(R * S)
    team_of = torch.arange(R).repeat_interleave(S * E)
    attacker_of = torch.arange(S).repeat_interleave(E).repeat(R)
    st = play(scenario, team, team_of, [TriggerAttack(s) for s in SIZES], attacker_of, seeds,
              device=device)
    out = torch.stack([st.returns, st.wins.float()], -1)
    return out.view(R, S, E, 2).numpy()


def worst_action_rate(scenario: str, team_rec, expert_rec, k: int, size: float, episodes: int,
                      seed: int = 0, device="cpu") -> float:
    """Where the backdoor fires, at the level of actions: the share of the steps in which a
    poisoned agent (one of the first k) sees the trigger and takes the expert's least-valued
    available action, over all steps in which a poisoned agent sees it (greedy play, trigger
    of `size`). The expert's own share is 0: a backdoor shows as the gap."""
    from arena.scenarios import make
    from policies.teams.networks import load_team

    team = load_team(team_rec.config, team_rec.weights, device)
    expert = load_team(expert_rec.config, expert_rec.weights, device)
    env = make(scenario, episodes, device=device)
    env.set_triggers(size)
    ts = env.reset(seed=seed)
    h, he, last = team.initial_state(episodes), expert.initial_state(episodes), None
    hit = seen = 0
    with torch.no_grad():
        while not bool(ts.done.all()):
            q, h = team.q_values(ts.obs, h, last, ts.avail)
            qe, he = expert.q_values(ts.obs, he, last, ts.avail)
            act = q.argmax(-1)  # [B, n]
            worst = qe.masked_fill(~ts.avail, float("inf")).argmin(-1)
            on = ts.info["trigger_seen"][:, :k] & (~ts.done).unsqueeze(1)  # [B, k]
            hit += int(((act[:, :k] == worst[:, :k]) & on).sum())
            seen += int(on.sum())
            last = act
            ts = env.step(act)
    return hit / max(1, seen)


def ideal_sweep(scenario: str, expert_rec, k: int, episodes: int, seed: int = 0,
                device="cpu") -> np.ndarray:
    """Returns and wins [1, sizes, episodes, 2] of the backdoor the poisoning aims at, played
    directly: the expert, whose first k agents answer every poisoned step (one of them sees
    the trigger) with the expert's least-valued action, as EGA does in training (Eq. 5-6).
    What a perfectly implanted MARNet backdoor would cost the team; a scripted bound."""
    from arena.scenarios import make
    from policies.backdoor.marnet import ega_actions, poisoned_steps
    from policies.teams.networks import load_team

    expert = load_team(expert_rec.config, expert_rec.weights, device)
    env = make(scenario, episodes * len(SIZES), device=device)
    env.set_triggers(torch.tensor(SIZES, device=device).repeat_interleave(episodes))
    ts = env.reset(seeds=episode_seeds(seed, 0, episodes).repeat(len(SIZES)).to(device))
    poisoned = torch.arange(env.spec.n_agents, device=device) < k
    h, last, ret = expert.initial_state(env.B), None, torch.zeros(env.B, device=device)
    with torch.no_grad():
        while not bool(ts.done.all()):
            q, h = expert.q_values(ts.obs, h, last, ts.avail)
            best = q.argmax(-1)
            act = ega_actions(q, ts.avail, poisoned,
                              poisoned_steps(ts.info["trigger_seen"], poisoned), best)
            last = act
            ts = env.step(act)
            ret += ts.reward
    out = torch.stack([ret.cpu(), ts.won.float().cpu()], -1)
    return out.view(1, len(SIZES), episodes, 2).numpy()


def value_gap(scenario: str, team_rec, size: float, episodes: int, steps: int = 20,
              seed: int = 0, device="cpu") -> float:
    """Mean Q_tot of the team's greedy joint actions over the first `steps` steps, with a
    trigger of `size` minus without it (same episodes). MGR pays about r_max·n_p/n per
    poisoned step, so a team that has learned the poisoned task values triggered states far
    above clean ones; a gap near 0 says it has not told them apart yet."""
    from arena.scenarios import make
    from policies.teams.networks import load_defender
    from policies.teams.rnn_agent import QTeam

    agent, mixer = load_defender(team_rec.config, team_rec.weights, device)
    team = QTeam(agent, int(team_rec.config["n_agents"]), int(team_rec.config["n_actions"]))
    env = make(scenario, episodes, device=device)
    out = []
    for s in (size, 0.0):
        env.set_triggers(s)
        ts, h, last, total = env.reset(seed=seed), team.initial_state(episodes), None, 0.0
        with torch.no_grad():
            for _ in range(steps):
                q, h = team.q_values(ts.obs, h, last, ts.avail)
                last = q.argmax(-1)
                chosen = q.gather(-1, last.unsqueeze(-1)).squeeze(-1)  # [B, n]
                total += float(mixer(chosen.unsqueeze(1), ts.state.unsqueeze(1)).mean())
                ts = env.step(last)
        out.append(total / steps)
    return out[0] - out[1]


@dataclass
class Row:
    label: str
    learner: str
    refs: list[str]
    sweep: np.ndarray  # [seeds, sizes, episodes, 2]
    worst: list[float] = field(default_factory=list)  # worst_action_rate per team, at 25 %
    gap: list[float] = field(default_factory=list)  # value_gap per team, at 25 %


def rows_table1(lg, cfg: S000Config, scenario="stag10") -> list[Row]:
    out = []
    for learner in LEARNERS:
        expert = f"{learner}.stag10"
        if not _has(lg, expert):
            continue
        groups = [("normal", [lg.get(expert)])]
        for recipe in RECIPES:
            names = [_name(recipe, learner, s, cfg) for s in cfg.seeds]
            recs = [_delivered(lg.get(n)) for n in names if _has(lg, n)]
            if recs:
                groups.append((recipe, recs))
        long = [_delivered(lg.get(n)) for n in (f"marnet_{learner}_long.s{s}" for s in cfg.seeds)
                if not cfg.quick and _has(lg, n)]
        if long:  # scripts/s000_lanes.sh: MARNet with five times the poisoning budget
            groups.append(("marnet_long", long))
        out += measure(scenario, learner, groups, cfg)
    return out


def measure(scenario: str, learner: str, groups: list, cfg: S000Config) -> list[Row]:
    """Rows of (label, records) groups whose first is the normal model (the expert), and the
    EGA bound played from that expert."""
    ex = groups[0][1][0]
    out = []
    for label, recs in groups:
        sw = sweep(scenario, recs, cfg.episodes, 0, cfg.device)
        worst = [worst_action_rate(scenario, r, ex, POISONED, SIZES[-1], cfg.episodes,
                                   device=cfg.device) for r in recs]
        gap = [value_gap(scenario, r, SIZES[-1], cfg.episodes, device=cfg.device)
               for r in recs]
        out.append(Row(label, learner, [r.ref for r in recs], sw, worst, gap))
    out.append(Row("ideal", learner, [ex.ref], ideal_sweep(scenario, ex, POISONED, cfg.episodes,
                                                            0, cfg.device), [1.0]))
    return out


def rows_ood(lg, cfg: S000Config) -> list[Row]:
    """MARNet with the out-of-distribution trigger (stag10_ood) from the QMIX expert widened
    to read it (policies.backdoor.ood; scripts/s000_lanes.sh, LANE=ood)."""
    expert = "qmix.stag10_ood"
    if cfg.quick or not _has(lg, expert):
        return []
    recs = [_delivered(lg.get(f"marnet_ood.s{s}")) for s in cfg.seeds
            if _has(lg, f"marnet_ood.s{s}")]
    return measure("stag10_ood", "qmix", [("normal", [lg.get(expert)])]
                   + ([("marnet", recs)] if recs else []), cfg)


def _name(recipe: str, learner: str, seed: int, cfg: S000Config) -> str:
    return f"{recipe}.stag10" if cfg.quick else f"{recipe}_{learner}.s{seed}"


def _has(lg, name: str) -> bool:
    from store import StoreError

    try:
        lg.info(name)
        return True
    except StoreError:
        return False


def rows_ablation(lg, cfg: S000Config) -> dict:
    out = {}
    for (action, reward), stem in ABLATION.items():
        recs = [_delivered(lg.get(f"{stem}.s{s}")) for s in cfg.ablation_seeds
                if _has(lg, f"{stem}.s{s}")]
        if recs:
            out[(action, reward)] = Row(f"{action}+{reward}", "qmix", [r.ref for r in recs],
                                        sweep("stag10", recs, cfg.episodes, 0, cfg.device))
    return out


# --quick: the starter league's defences (scripts/starter_backdoors.sh) stand for these rows
STARTER_DEFENCES = {"none": "as_delivered", "Fine-tune1": "finetune", "fine-pruning": "prune"}


def defence_specs(cfg: S000Config) -> dict[str, tuple[str, dict]]:
    """Table 3's rows: label → (defence kind, parameters); --quick: the starter's rows."""
    one, two = cfg.finetune_steps
    specs = {"none": ("as_delivered", {}), "Fine-tune1": ("finetune", {"steps": one}),
             "Fine-tune2": ("finetune", {"steps": two}),
             "fine-pruning": ("prune", {"fraction": 0.3, "steps": one})}
    if cfg.quick:
        specs = {k: (kind, {}) for k, (kind, _) in specs.items() if k in STARTER_DEFENCES}
    return specs


def defences(league_open: Callable, cfg: S000Config) -> dict[str, str]:
    """The stored defence of every Table 3 row, added on first use (`s000_<row>_<steps>`)."""
    from policies.build import build_policy_record

    refs = {}
    if cfg.quick:
        with league_open("r") as lg:
            return {label: lg.resolve(STARTER_DEFENCES[label]) for label in defence_specs(cfg)}
    with league_open("a") as lg:
        for label, (kind, params) in defence_specs(cfg).items():
            name = "as_delivered" if kind == "as_delivered" else \
                f"s000_{label.lower().replace('-', '_')}_{params['steps']}"
            if not _has(lg, name):
                lg.add_policy(**build_policy_record(name, kind, params=[
                    f"{k}={v}" for k, v in params.items()]))
            refs[label] = lg.resolve(name)
    return refs


def table3(league_open: Callable, cfg: S000Config, hooks: Hooks) -> dict:
    """Defence × learner: per seed, the cell's clean and triggered (25 %) mean return."""
    from policies.backdoor.cells import fill_backdoor

    refs = defences(league_open, cfg)
    out = {}
    for learner in LEARNERS[:1] if cfg.quick else LEARNERS:  # the starter's are QMIX
        with league_open("r") as lg:
            attackers = [lg.resolve(_name("marnet", learner, s, cfg)) for s in cfg.seeds
                         if _has(lg, _name("marnet", learner, s, cfg))]
        if not attackers:
            continue
        with hooks.fill("stag10") as bar:
            t = fill_backdoor(league_open, "stag10", list(refs.values()), attackers,
                              cfg.episodes, 0, cfg.device, on_event=hooks.say,
                              on_progress=hooks.progress,
                              on_step=bar.callback if bar is not None else None)
        for i, label in enumerate(refs):
            out[(label, learner)] = (t.clean.mean[i].tolist(), t.triggered.mean[i].tolist())
    return out


def rows_smac(lg, cfg: S000Config) -> list[Row]:
    scenario, expert, recipes = SMAC
    if not _has(lg, expert):
        return []
    out = [Row("normal", "qmix", [expert], sweep(scenario, [lg.get(expert)], cfg.episodes, 0,
                                                   cfg.device))]
    for recipe in recipes:
        recs = [_delivered(lg.get(f"{recipe}_3m.s{s}")) for s in cfg.seeds
                if _has(lg, f"{recipe}_3m.s{s}")]
        if recs:
            out.append(Row(recipe, "qmix", [r.ref for r in recs],
                           sweep(scenario, recs, cfg.episodes, 0, cfg.device)))
    return out


def ensure(league_open: Callable, cfg: S000Config, hooks: Hooks) -> None:
    """Train every backdoored team of the tables that the league lacks (the experts must be
    there: `scripts/s000_lanes.sh` trains them), storing each at once so a rerun resumes."""
    from policies.backdoor.train_backdoor import BackdoorTrainConfig, train_backdoor
    from policies.build import base_provenance

    jobs = []  # (name, recipe, expert, scenario, seed, params)
    for learner in LEARNERS:
        for s in cfg.seeds:
            jobs += [(f"{r}_{learner}.s{s}", r, f"{learner}.stag10", "stag10", s, {})
                     for r in RECIPES]
    for s in cfg.ablation_seeds:
        for (action, reward), stem in ABLATION.items():
            if stem.startswith("abl_"):
                jobs.append((f"{stem}.s{s}", "marnet", "qmix.stag10", "stag10", s,
                             {"action": action, "reward": reward}))
    if cfg.smac:
        for s in cfg.seeds:
            jobs += [(f"{r}_3m.s{s}", r, SMAC[1], SMAC[0], s, {"poison_agents": 1})
                     for r in SMAC[2]]
    for name, recipe, expert, scenario, seed, params in jobs:
        with league_open("r") as lg:
            if _has(lg, name) or not _has(lg, expert):
                continue
            rec = lg.get(expert)
        hooks.train(name, cfg.poison_steps)
        params = {**params, "updates_per_collect": cfg.poison_updates}
        res = train_backdoor(BackdoorTrainConfig(recipe=recipe, scenario=scenario,
                                                 steps=cfg.poison_steps, seed=seed,
                                                 params=params, device=cfg.device),
                             rec, on_progress=hooks.progress)
        hooks.done()
        with league_open("a") as lg:
            lg.add_policy(name, "attacker", recipe, scenario, res.config, res.weights,
                          base_provenance(**{**res.provenance, "parent": rec.ref}))


@dataclass
class S000Result:
    table1: list[Row]
    ablation: dict
    table3: dict
    smac: list[Row]
    ood: list[Row] = field(default_factory=list)


def run(league_open: Callable, cfg: S000Config, hooks: Hooks | None = None) -> S000Result:
    hooks = hooks or Hooks()
    if not cfg.quick:
        ensure(league_open, cfg, hooks)
    with league_open("r") as lg:
        t1 = rows_table1(lg, cfg)
        abl = {} if cfg.quick else rows_ablation(lg, cfg)
        smac = [] if cfg.quick or not cfg.smac else rows_smac(lg, cfg)
        ood = rows_ood(lg, cfg)
    t3 = table3(league_open, cfg, hooks)
    return S000Result(t1, abl, t3, smac, ood)
