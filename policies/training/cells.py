"""The training game: a cell (learner recipe, training-time attacker) is teams trained, then
played.

Cell (r, a) on a scenario with seeds 0..N−1:
1. for every seed s, recipe r trains a team while attacker a (TRAM, policies.training.tram)
   poisons its sampling; `none` trains clean. Each trained team is stored at once as a
   defender `<r>_vs_<a>.s<s>` whose provenance names its cell (`training_cell`: recipe,
   attacker, seed), so a training is never run twice and an interrupted fill resumes where
   it stopped. Trainings are independent jobs: `jobs` worker processes (or the tasks of a
   Ray cluster, `policies.distributed`) train them and return records; only this (the
   driver) process writes the league;
2. every trained team plays `episodes` clean episodes (one batched fill);
3. the cell's payoff is the mean over seeds of each team's mean return, with a 95 % CI
   between seeds (Student's t): the spread that matters is the training's, not the episodes'.
The payoff table handed to the solvers holds those per-seed statistics (count = seeds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from policies.build import base_provenance
from policies.errors import PolicyError
from policies.evaluate import TRAINING_CELL, fill, table_players
from policies.kinds import KINDS
from store import NO_ATTACK
from store.payoff import PayoffTable


@dataclass
class TrainingTable:
    scenario: str
    recipes: list[str]
    attackers: list[str]  # NO_ATTACK first when present
    seeds: list[int]
    teams: list[list[list[str | None]]]  # [R][A][seed] the trained team's ref
    returns: np.ndarray  # [R, A, seeds] each team's mean return (NaN: not played)
    wins: np.ndarray  # [R, A, seeds] each team's win rate
    payoff: PayoffTable  # recipes × attackers, seed-level statistics
    trained: int = 0  # trainings run by this fill
    seconds: float = 0.0

    @property
    def ci95(self) -> np.ndarray:
        """[R, A] 95 % half-width of the mean over seeds (Student's t; NaN below 2 seeds)."""
        from scipy.stats import t

        import warnings

        k = np.sum(~np.isnan(self.returns), -1)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell of one seed has no spread
            sd = np.nanstd(np.where(k[..., None] > 1, self.returns, np.nan), -1, ddof=1)
            q = t.ppf(0.975, np.maximum(k - 1, 1))
            return np.where(k > 1, q * sd / np.sqrt(k), np.nan)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "recipes": self.recipes, "attackers": self.attackers,
                "seeds": self.seeds, "teams": self.teams,
                "returns": np.where(np.isnan(self.returns), None, self.returns).tolist(),
                "win_rates": np.where(np.isnan(self.wins), None, self.wins).tolist(),
                "seeds_filled": self.payoff.count.tolist(),
                "mean": _nan_list(self.payoff.mean), "ci95": _nan_list(self.ci95),
                "trained": self.trained}


def _nan_list(a) -> list:
    return np.where(np.isnan(a), None, np.round(a, 6)).tolist()


def cell_family(recipe: str, attacker: str) -> str:
    return f"{recipe.split('@')[0]}_vs_{attacker.split('@')[0]}"


def cell_name(recipe: str, attacker: str, seed: int) -> str:
    return f"{cell_family(recipe, attacker)}.s{seed}"


def find_cell_teams(lg, scenario: str) -> dict[tuple[str, str, int], str]:
    """(recipe ref, attacker ref, seed) → the stored team trained for that cell."""
    out = {}
    for info in lg.list(role="defender", all_versions=True):
        cell = info.provenance.get(TRAINING_CELL) if isinstance(info.provenance, dict) else None
        if cell and info.scenario == scenario:
            out[(cell["recipe"], cell["attacker"], int(cell["seed"]))] = info.ref
    return out


def check_players(lg, recipes: list[str], attackers: list[str]) -> None:
    for ref in recipes:
        info = lg.info(ref, usable=True)
        if info.kind != "recipe":
            raise PolicyError(f"{ref} is a {info.kind} {info.role}, not a learner recipe; add "
                              f"one with `arena add-policy NAME --kind recipe --param algo=dop`")
    for ref in attackers:
        if ref == NO_ATTACK:
            continue
        info = lg.info(ref, usable=True)
        if (info.role != "attacker" or KINDS.get(info.kind) is None
                or KINDS[info.kind].surface != "training"):
            raise PolicyError(f"{ref} is a {info.kind} {info.role}, not a training-time "
                              f"attacker (tram_var, tram_j, tram_random)")


def make_job(scenario: str, recipe_ref: str, recipe: dict, attacker_ref: str,
             attacker: tuple[str, dict] | None, seed: int, device: str) -> dict:
    """A training job: everything a worker needs, as plain data (it crosses processes)."""
    return {"key": (recipe_ref, attacker_ref, seed), "scenario": scenario, "recipe": recipe,
            "attacker": attacker, "seed": seed, "device": device}


def run_job(job: dict, on_progress: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None):
    """Train one team for one seed: (config, weights, provenance, partial). A job may also
    hold `init` (actor weights to start from) and `extra` (further learner config fields)."""
    from arena.scenarios import spec as scenario_spec
    from policies.learners.dop import DOPConfig, train_dop
    from policies.learners.mappo import MAPPOConfig, train_mappo
    from policies.training.tram import build_tram

    r = job["recipe"]
    common = dict(scenario=job["scenario"], steps=int(r["steps"]), envs=int(r["envs"]),
                  hidden=int(r["hidden"]), test_every=int(r["test_every"]), seed=job["seed"],
                  device=job["device"], init=job.get("init"), **job.get("extra", {}))
    sampler = None
    if job["attacker"] is not None:
        kind, config = job["attacker"]
        config = {**config, "seed": int(config.get("seed", 0)) + job["seed"]}
        sampler = build_tram(kind, config, scenario_spec(job["scenario"]), job["device"])
    if r["algo"] == "mappo":
        res = train_mappo(MAPPOConfig(agg=r["agg"], **common), sampler=sampler,
                          on_progress=on_progress, should_stop=should_stop)
    else:
        res = train_dop(DOPConfig(**common), sampler=sampler, on_progress=on_progress,
                        should_stop=should_stop)
    return res.config, res.weights, res.provenance, res.partial


def _worker(job: dict, queue) -> tuple:
    import torch

    torch.set_num_threads(1)  # jobs share the cores: one thread each

    def report(p):
        queue.put((job["key"], int(p["steps"]), int(p["total_steps"]), p.get("test_return")))

    return job["key"], run_job(job, report)


def _ray_job(job: dict) -> tuple:
    return job["key"], run_job(job)


def train_missing(league_open: Callable, jobs_todo: list[dict], workers: int,
                  on_event=None, on_progress=None, should_stop=None,
                  ray: bool | None = None) -> int:
    """Run the jobs (in `workers` processes when more than one, or as Ray tasks with `ray`;
    None: when `policies.distributed.connect` joined a cluster) and store each team as soon
    as it is trained; returns how many were stored. `on_progress(key, steps, total, ret)`
    (not reported from Ray tasks: only their completion is)."""
    from policies import distributed

    say = on_event or (lambda msg: None)
    ray = distributed.active() if ray is None else ray

    def store(key, out):
        config, weights, prov, partial = out
        if partial:
            return False
        recipe, attacker, seed = key
        prov = base_provenance(**{**prov, TRAINING_CELL: {"recipe": recipe, "attacker":
                                                          attacker, "seed": seed},
                                  "parent": recipe, "trained_against":
                                  None if attacker == NO_ATTACK else attacker,
                                  "family": cell_family(recipe, attacker)})
        with league_open("a") as lg:
            ref = lg.add_policy(cell_name(recipe, attacker, seed), "defender", config["algo"],
                                config["scenario"], config, weights, prov)
        say(f"stored {ref}")
        return True

    done = 0
    if ray and jobs_todo:
        say(f"training {len(jobs_todo)} team(s) as Ray tasks")
        refs = [distributed.submit(_ray_job, job, device=job["device"]) for job in jobs_todo]
        for _, (key, out) in distributed.as_completed(refs, should_stop):
            done += store(key, out)
        return done
    if workers <= 1 or len(jobs_todo) <= 1:
        for job in jobs_todo:
            if should_stop is not None and should_stop():
                break
            say(f"training {cell_name(*job['key'])}")
            out = run_job(job, None if on_progress is None else
                          (lambda p, k=job["key"]: on_progress(k, int(p["steps"]),
                                                               int(p["total_steps"]),
                                                               p.get("test_return"))),
                          should_stop)
            done += store(job["key"], out)
        return done
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # fork after torch started its threads can deadlock
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending = {pool.submit(_worker, job, q) for job in jobs_todo}
            say(f"training {len(jobs_todo)} team(s) in {workers} processes")
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    while True:
                        try:
                            msg = q.get_nowait()
                        except queue_mod.Empty:
                            break
                        if on_progress is not None:
                            on_progress(*msg)
                    for fut in finished:
                        key, out = fut.result()
                        done += store(key, out)
                    if should_stop is not None and should_stop():
                        for fut in pending:
                            fut.cancel()
                        break
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    return done


def fill_training(league_open: Callable, scenario: str, recipes: list[str] | None,
                  attackers: list[str] | None, seeds: int, episodes: int, seed: int = 0,
                  device: str = "cpu", workers: int = 1, on_event=None, on_progress=None,
                  on_step=None, on_plan=None, should_stop=None,
                  ray: bool | None = None) -> TrainingTable:
    """Train what is missing of recipes × attackers × seeds, play every team, and return the
    table (the cells' payoffs between seeds). `ray`: trainings and plays on the Ray cluster
    (None: when `policies.distributed.connect` joined one)."""
    if seeds < 1:
        raise PolicyError("--seeds must be at least 1")
    t0 = time.perf_counter()
    with league_open("r") as lg:
        recipes, attackers = table_players(lg, scenario, recipes, attackers, "training")
        check_players(lg, recipes, attackers)
        have = find_cell_teams(lg, scenario)
        recs = {r: lg.get(r, usable=True) for r in set(recipes) | set(attackers) - {NO_ATTACK}}
    n_agents = _n_agents(scenario)
    todo = []
    for r in recipes:
        for a in attackers:
            att = None if a == NO_ATTACK else (recs[a].kind, dict(recs[a].config))
            if att is not None and int(att[1].get("agent", 0)) >= n_agents:
                raise PolicyError(f"{a} poisons agent {att[1]['agent']}: scenario {scenario} "
                                  f"has {n_agents} agents (0..{n_agents - 1})")
            for s in range(seeds):
                if (r, a, s) not in have:
                    todo.append(make_job(scenario, r, dict(recs[r].config), a, att, s,
                                         str(device)))
    trained = train_missing(league_open, todo, workers, on_event, on_progress, should_stop, ray)
    with league_open("r") as lg:
        have = find_cell_teams(lg, scenario)
    teams = [[[have.get((r, a, s)) for s in range(seeds)] for a in attackers] for r in recipes]
    refs = sorted({t for row in teams for col in row for t in col if t})
    returns = np.full((len(recipes), len(attackers), seeds), np.nan)
    wins = np.full_like(returns, np.nan)
    if refs:
        res = fill(league_open, scenario, refs, [NO_ATTACK], episodes, seed, device,
                   on_step=on_step, on_plan=on_plan, ray=ray)
        t = res.table
        idx = {d: i for i, d in enumerate(t.defenders)}
        for (i, j, k), ref in np.ndenumerate(np.array(teams, dtype=object)):
            if ref is not None:
                returns[i, j, k], wins[i, j, k] = t.mean[idx[ref], 0], t.win_rate[idx[ref], 0]
    return TrainingTable(scenario, list(recipes), list(attackers), list(range(seeds)), teams,
                         returns, wins, seed_payoff(scenario, recipes, attackers, returns, wins),
                         trained, time.perf_counter() - t0)


def seed_payoff(scenario: str, recipes, attackers, returns: np.ndarray,
                wins: np.ndarray) -> PayoffTable:
    """recipes × attackers with one observation per seed: what the solvers read."""
    filled = ~np.isnan(returns)
    r = np.where(filled, returns, 0.0)
    return PayoffTable(scenario, list(recipes), list(attackers), filled.sum(-1),
                       r.sum(-1), (r * r).sum(-1), np.where(filled, wins, 0.0).sum(-1))


def stored_training(lg, scenario: str, recipes: list[str], attackers: list[str]) -> PayoffTable:
    """The training table from what the league holds, nothing trained or played: every
    stored seed of a cell whose team has clean episodes recorded."""
    have = find_cell_teams(lg, scenario)
    seeds = sorted({k[2] for k in have}) or [0]
    refs = sorted(set(have.values()))
    table = lg.payoff(scenario, refs, [NO_ATTACK]) if refs else None
    idx = {d: i for i, d in enumerate(table.defenders)} if table else {}
    S = max(seeds) + 1
    returns = np.full((len(recipes), len(attackers), S), np.nan)
    wins = np.full_like(returns, np.nan)
    for i, r in enumerate(recipes):
        for j, a in enumerate(attackers):
            for s in range(S):
                ref = have.get((r, a, s))
                if ref is not None and table.count[idx[ref], 0] > 0:
                    returns[i, j, s] = table.mean[idx[ref], 0]
                    wins[i, j, s] = table.win_rate[idx[ref], 0]
    return seed_payoff(scenario, recipes, attackers, returns, wins)


def _n_agents(scenario: str) -> int:
    from arena.scenarios import spec

    return spec(scenario).n_agents
