"""`arena reproduce s001`: TRAM, training-time attacks on one agent's sampling, regenerated.

The seed paper attacks DOP while it trains: one agent k samples its actions from
π'_k = softmax(l_k + β·δ̂) with KL(π'_k ‖ π_k) ≤ KL^U, at a fraction f_A of the steps, where δ̂
is variance-based, J-based or random (policies.training.tram). Its claims, checked here as
trends: both TRAM variants lower the final return far more than random at the same budget
(the win rate goes to 0 where random still learns), and the variance-based attack is the
least abnormal (lowest log-likelihood of being abnormal, the paper's Table 1).

Per scenario (3m; spread; the SMAC-style 2s3z, attacking a zealot), every run is a training-time
cell of the league (policies.training.cells): the recipe `s001_<learner>.<scenario>` trained
under the attacker `s001_<method>[_f<f_A>|_kl<KL^U>]` with seed s, stored at once as
`<recipe>_vs_<attacker>.s<s>` (its provenance holds the learning curve and the stealth log), so
an interrupted run resumes and a rerun trains nothing:
1. curves: DOP clean / random / J / var at f_A = 1, KL^U = 6 (5 seeds on the first scenario,
   3 on the others);
2. the f_A sweep (0.4, 0.6, 0.8, 1.0 at KL^U = 6) and the KL^U sweep (at f_A = 1), J and var,
   on the sweep scenarios (3 seeds);
3. MAPPO attacked the same way (clean / random / J / var, 3 seeds), and MAPPO with the
   median of the agents' policy gradients (a defence beyond the paper);
4. Table 1: the mean log-likelihood ratio of the poisoned samples per method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from store import NO_ATTACK

METHODS = ("tram_random", "tram_j", "tram_var")


@dataclass
class S001Config:
    scenarios: tuple = ("3m", "spread", "2s3z")
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Seeds of the headline curves on the first scenario."""
    other_seeds: list = field(default_factory=lambda: [0, 1, 2])
    """Seeds of the other scenarios' curves, of the sweeps and of MAPPO."""
    steps: dict = field(default_factory=lambda: {"3m": 40_000, "spread": 100_000,
                                                 "2s3z": 60_000})
    test_every: dict = field(default_factory=lambda: {"3m": 2_000, "spread": 5_000,
                                                      "2s3z": 5_000})
    agent: dict = field(default_factory=lambda: {"3m": 0, "spread": 0, "2s3z": 2})
    """The poisoned agent: on 2s3z agents 0-1 are stalkers and 2-4 zealots (a zealot, as the
    paper)."""
    kl_max: float = 6.0
    freqs: tuple = (0.4, 0.6, 0.8)
    """The f_A sweep's points besides 1.0."""
    kls: tuple = (0.5, 2.0)
    """The KL^U sweep's points besides kl_max."""
    sweep_scenarios: tuple = ("3m",)
    learners: tuple = ("dop", "mappo", "mappo_median")
    """mappo_median: MAPPO whose agents' policy gradients are aggregated by their median, a
    defence beyond the paper (policies.learners.mappo)."""
    mappo_scenarios: tuple = ("3m",)
    workers: int = 2
    quick: bool = False
    device: str = "cpu"

    def seeds_of(self, scenario: str, learner: str = "dop", sweep: bool = False) -> list:
        headline = scenario == self.scenarios[0] and learner == "dop" and not sweep
        return list(self.seeds if headline else self.other_seeds)


def quick_config(device: str = "cpu") -> S001Config:
    """Minutes on 2 cores: 3m, 2 seeds, short trainings, one point of each sweep."""
    return S001Config(scenarios=("3m",), seeds=[0, 1], other_seeds=[0, 1],
                      steps={"3m": 6_000}, test_every={"3m": 2_000}, freqs=(0.4,), kls=(0.5,),
                      learners=("dop",), quick=True, device=device)


def attacker_name(method: str, scenario: str, freq: float = 1.0, kl: float | None = None) -> str:
    """Per scenario: the poisoned agent is the scenario's (a zealot on 2s3z)."""
    tag = "" if freq == 1.0 else f"_f{freq:g}"
    tag += "" if kl is None else f"_kl{kl:g}"
    return f"s001_{method}{tag}.{scenario}"


def recipe_name(learner: str, scenario: str) -> str:
    return f"s001_{learner}.{scenario}"


def plan(cfg: S001Config) -> list[tuple[str, str, str, dict | None, list]]:
    """(scenario, recipe name, attacker name or none, attacker config, seeds) of every cell."""
    out = []
    for sc in cfg.scenarios:
        base = {"kl_max": cfg.kl_max, "freq": 1.0, "agent": cfg.agent[sc]}
        for learner in cfg.learners:
            if learner != "dop" and sc not in cfg.mappo_scenarios:
                continue
            r, seeds = recipe_name(learner, sc), cfg.seeds_of(sc, learner)
            out.append((sc, r, NO_ATTACK, None, seeds))
            out += [(sc, r, attacker_name(m, sc), dict(base), seeds) for m in METHODS]
            if learner != "dop" or sc not in cfg.sweep_scenarios:
                continue
            sw = cfg.seeds_of(sc, learner, sweep=True)
            for m in ("tram_j", "tram_var"):
                out += [(sc, r, attacker_name(m, sc, f), {**base, "freq": f}, sw)
                        for f in cfg.freqs]
                out += [(sc, r, attacker_name(m, sc, kl=k), {**base, "kl_max": k}, sw)
                        for k in cfg.kls]
    return out


def _method(attacker: str) -> str:
    return next(m for m in sorted(METHODS, key=len, reverse=True)
                if attacker.startswith(f"s001_{m}"))


def ensure(league_open: Callable, cfg: S001Config, on_event=None, on_progress=None,
           should_stop=None) -> int:
    """Store the recipes and attackers, then train every missing (cell, seed): returns the
    number of teams trained."""
    from policies.build import base_provenance
    from policies.kinds import get_kind
    from policies.training.cells import find_cell_teams, make_job, train_missing

    cells = plan(cfg)
    jobs = []
    for sc in cfg.scenarios:
        with league_open("a") as lg:
            names = {i.name for i in lg.list(all_versions=True)}
            for _, r, a, acfg, _ in (c for c in cells if c[0] == sc):
                if r not in names:
                    algo, _, agg = r.split("_", 1)[1].split(".")[0].partition("_")
                    lg.add_policy(r, "defender", "recipe", "any", get_kind("recipe").make_config(
                        {"algo": algo, "agg": agg or "mean", "steps": cfg.steps[sc],
                         "test_every": cfg.test_every[sc]}), {},
                        base_provenance(reproduce="s001"))
                    names.add(r)
                if a != NO_ATTACK and a not in names:
                    kind = _method(a)
                    lg.add_policy(a, "attacker", kind, sc, get_kind(kind).make_config(acfg),
                                  {}, base_provenance(reproduce="s001"))
                    names.add(a)
            have = find_cell_teams(lg, sc)
            refs = {n: lg.resolve(n) for n in names if n.startswith("s001_")}
            recs = {n: lg.get(ref) for n, ref in refs.items()}
        for _, r, a, _, seeds in (c for c in cells if c[0] == sc):
            ar = NO_ATTACK if a == NO_ATTACK else refs[a]
            att = None if a == NO_ATTACK else (recs[a].kind, dict(recs[a].config))
            for s in seeds:
                if (refs[r], ar, s) not in have:
                    jobs.append(make_job(sc, refs[r], dict(recs[r].config), ar, att, s,
                                         cfg.device))
    return train_missing(league_open, jobs, cfg.workers, on_event, on_progress, should_stop)


@dataclass
class Run:
    scenario: str
    recipe: str
    attacker: str
    seed: int
    curve: list  # provenance curve points
    final_return: float
    final_win: float
    llr: float | None  # mean log-likelihood ratio of the poisoned samples
    kl: float | None


def collect(league_open: Callable, cfg: S001Config) -> list[Run]:
    """Every stored run of the plan, read from the teams' provenance."""
    from policies.training.cells import find_cell_teams

    out = []
    for sc in cfg.scenarios:
        with league_open("r") as lg:
            have = find_cell_teams(lg, sc)
            for (r, a, s), ref in sorted(have.items()):
                rname, aname = r.split("@")[0], a.split("@")[0]
                if not rname.startswith("s001_") or s not in set(cfg.seeds) | set(cfg.other_seeds):
                    continue
                prov = lg.info(ref).provenance
                last = prov["curve"][-1]
                out.append(Run(sc, rname, aname, s, prov["curve"], float(last["test_return"]),
                               float(last["test_win"]), _num(last.get("tram_llr")),
                               _num(last.get("tram_kl"))))
    return out


def _num(x):
    return None if x is None or x != x else float(x)


def summarise(values: list[float]) -> tuple[float, float, int]:
    """(mean, 95 % half-width between seeds (Student's t), n)."""
    from scipy.stats import t

    v = np.asarray([x for x in values if x is not None], float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    if len(v) == 1:
        return float(v[0]), float("nan"), 1
    half = t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half), len(v)
