"""Matches and payoff tables from the league: plan, load the players, play once, commit once.

The league is held only to read what is there and to write the results: the rollout itself
runs with the file closed, so other readers are never kept waiting for a whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from arena import payoff as pay
from arena.core import resolve_device
from policies.build import code_version
from policies.errors import PolicyError
from policies.lineup import build_lineup
from policies.names import default_scenario, resolve_for
from policies.surfaces import (attacker_surface, check_surface, communicates, is_defence,
                               is_recipe)

from store import NO_ATTACK

BACKDOOR_CELL = "backdoor_cell"  # provenance key of a team a backdoor defence made
TRAINING_CELL = "training_cell"  # provenance key of a team a recipe trained under an attack


@dataclass
class FillResult:
    table: object  # store.PayoffTable after filling
    cells: list  # the cells that were run (arena.payoff.Cell)
    episodes_run: int
    seconds: float


def default_players(lg, scenario: str, final_only: bool = True,
                    surface: str = "observation") -> tuple[list[str], list[str]]:
    """Every live defender made for `scenario` (mixtures included) and every attacker usable on
    it, the no-attack column first. `surface` picks the game: "observation" leaves message
    and agent attackers out; "agent" keeps the hijacking attackers beside the clean column;
    "training" pairs the learner recipes with the training-time attackers and the clean
    column (policies.training.cells; the teams trained for its cells are never default
    players);
    "message" keeps only communicating defenders and message attackers (they
    cannot play against a team that sends nothing). `final_only` (the default of every table
    command) leaves out PSRO's intermediate best responses; their run's mixture policies stay,
    and any policy can still be named explicitly. "backdoor" pairs the backdoor defences with
    the backdoor attackers (no clean column: each cell keeps its own clean return,
    policies.backdoor.cells); the teams those cells play are never default players. Adaptive
    attackers (trained against one defender each by `policies.observation.adaptive`) are
    never default columns: `arena matrix --adaptive` shows them as one diagonal column per
    algorithm."""
    def keep(info):
        if info.scenario not in (scenario, "any"):
            return False
        if "adaptive" in info.provenance:  # trained against one row: its cell is the diagonal
            return False
        return not (final_only and info.kind != "mixture" and "psro_iteration" in info.provenance)

    check_surface(surface)
    defenders = [i for i in lg.list(role="defender") if keep(i)]
    attackers = [i for i in lg.list(role="attacker") if keep(i)]
    attackers = [i for i in attackers if attacker_surface(lg, i) == surface]
    if surface == "backdoor":  # a mixture of backdoors (PSRO's) delivers no team of its own
        return ([i.ref for i in defenders if is_defence(i)],
                [i.ref for i in attackers if i.kind != "mixture"])
    attackers = [i.ref for i in attackers]
    if surface == "training":
        return [i.ref for i in defenders if is_recipe(i)], [NO_ATTACK] + attackers
    defenders = [i for i in defenders if not (is_defence(i) or is_recipe(i))
                 and BACKDOOR_CELL not in i.provenance and TRAINING_CELL not in i.provenance]
    if surface == "message":
        defenders = [i for i in defenders if communicates(lg, i)]
    return [i.ref for i in defenders], [NO_ATTACK] + attackers


# A fill some of whose cells another process committed meanwhile plans again (a rival's shorter
# record under the same seed leaves the cell short); every round that does not end the fill was
# preceded by someone else's commit, so more than two rounds take sustained contention.
_MAX_ROUNDS = 4


def commit(league_open: Callable, scenario: str, cells: list, stats: list, device) -> list:
    """Append one record per cell in one transaction, re-reading under the write lock what is
    stored: a cell whose episodes another fill or play committed since the plan is left out
    (its episodes would be replays). Returns the cells left out. `device` is one device, or
    one per cell where the cells were played on several."""
    version = code_version()
    devices = device if isinstance(device, list) else [device] * len(cells)
    left_out = []
    with league_open("a") as lg, lg.transaction():
        stored = pay.stored_seeds(lg.matches(scenario))
        for c, st, where in zip(cells, stats, devices):
            if pay.is_stored(c, stored):
                left_out.append(c)
                continue
            lg.add_match(pay.to_record(scenario, c, st, str(where), version))
    return left_out


def check_batch(scenario: str, episodes: int, cells: int, device) -> None:
    """One line before any work when `cells` × `episodes` cannot be one batch in memory."""
    cap = pay.max_episodes(scenario, device)
    if episodes * cells <= cap:
        return
    need = episodes * cells * pay.episode_bytes(scenario) / 2**30
    where = f"{cells} cells of {scenario}" if cells > 1 else scenario
    most = cap // cells
    raise PolicyError(
        f"--episodes {episodes} is more than fits in memory: {episodes * cells:,} episodes of "
        f"{where} need about {need:,.1f} GiB; the largest feasible value is {most:,}"
        if most else f"{where} do not fit in memory even with one episode each")


def table_players(lg, scenario: str, defenders: list[str] | None,
                  attackers: list[str] | None,
                  surface: str = "observation") -> tuple[list[str], list[str]]:
    """The named players resolved to stored refs, or the default ones (`default_players` of
    `surface`) where none are named; a table without a defender is an error."""
    d_all, a_all = default_players(lg, scenario, surface=surface)
    defenders = [resolve_for(lg, d, scenario) for d in defenders] if defenders else d_all
    attackers = [resolve_for(lg, a, scenario) for a in attackers] if attackers else a_all
    if not defenders and surface == "training":
        raise PolicyError("no learner recipe in the league; add one with `arena add-policy dop "
                          "--kind recipe --param algo=dop`")
    if not defenders and surface == "message":
        raise PolicyError(f"no communicating defender for scenario {scenario} in the league; "
                          f"train one with `arena train defender NAME --algo commnet`")
    if not defenders:
        raise PolicyError(f"no defender for scenario {scenario} in the league; "
                          f"train one with `arena train defender`")
    return defenders, attackers


def fill(league_open: Callable, scenario: str, defenders: list[str] | None,
         attackers: list[str] | None, episodes: int, seed: int = 0, device="auto",
         on_step=None, on_plan=None, sequential: bool = False,
         pairs: set[tuple[str, str]] | None = None,
         surface: str = "observation", ray: bool | None = None) -> FillResult:
    """Fill the cells of defenders × attackers on `scenario` up to `episodes` each.

    `league_open(mode)` opens the league. `sequential=True` plays cell by cell and episode by
    episode with the same code (the reference the batched fill is measured against). Cells that
    another process filled while this one played are not recorded twice: what is left short
    is planned and played again. `pairs` (defender ref, attacker ref), when given, are the
    only cells planned; the table returned still spans defenders × attackers. `surface`
    chooses the default players (`default_players`). `ray` splits the cells over the Ray
    cluster (`policies.distributed`; None: when `distributed.connect` joined one); the records
    are the same, only this process writes them.
    """
    import time

    from policies import distributed

    if episodes < 1:
        raise PolicyError("--episodes must be at least 1")
    device = resolve_device(device)
    ray = distributed.active() if ray is None else ray
    if ray and sequential:
        raise PolicyError("the sequential reference fill runs in one process: drop --ray")
    run = pay.run_cells_sequential if sequential else pay.run_cells
    ran, seconds = [], 0.0
    for _ in range(_MAX_ROUNDS):
        with league_open("r") as lg:
            if not ran:
                defenders, attackers = table_players(lg, scenario, defenders, attackers, surface)
            table = lg.payoff(scenario, defenders, attackers)
            if not ran:
                n = table.count.size if pairs is None else len(pairs)
                # on a cluster each worker holds its own chunk of the cells
                check_batch(scenario, episodes, -(-n // distributed.workers(device)) if ray
                            else n, device)
            cells = pay.plan(table, episodes, seed, pay.stored_seeds(lg.matches(scenario))
                             if (table.count < episodes).any() else None)
            if pairs is not None:
                cells = [c for c in cells if (c.defender, c.attacker) in pairs]
            path = lg.path
            lineup = (build_lineup(lg, scenario, defenders, attackers, device)
                      if cells and not ray else None)
        if on_plan is not None:
            on_plan(cells)
        if not cells:
            break
        start = time.perf_counter()
        if ray:
            stats, where = distributed.run_cells(path, scenario, cells, str(device))
        else:
            stats, where = run(scenario, lineup, cells, device, on_step), device
        seconds += time.perf_counter() - start
        ran += cells
        if not commit(league_open, scenario, cells, stats, where):
            break
    with league_open("r") as lg:
        table = lg.payoff(scenario, defenders, attackers)
    return FillResult(table, ran, sum(c.episodes for c in ran), seconds)


def infer_scenario(lg, refs: list[str]) -> str:
    """The scenario the named learned policies were made for (they must agree)."""
    found = {lg.info(r).scenario for r in refs} - {"any"}
    if len(found) > 1:
        raise PolicyError(f"the policies were made for different scenarios: {', '.join(sorted(found))}")
    if not found:
        raise PolicyError("no policy names a scenario: give --scenario")
    return found.pop()


@dataclass
class PlayResult:
    record: object  # store.MatchRecord of the episodes played
    seconds: float
    recorded: bool  # False when the league already held these episodes (a replayed seed)


def play_match(league_open: Callable, defender: str, attacker: str, scenario: str | None,
               episodes: int, seed: int | None, device="auto", on_step=None):
    """`play_and_record` returning (MatchRecord, seconds)."""
    res = play_and_record(league_open, defender, attacker, scenario, episodes, seed, device, on_step)
    return res.record, res.seconds


def play_and_record(league_open: Callable, defender: str, attacker: str, scenario: str | None,
                    episodes: int, seed: int | None, device="auto", on_step=None) -> PlayResult:
    """Play `episodes` new greedy episodes of defender vs attacker and record them.

    Without a seed the episodes continue the cell's sequence (seed = episodes already played),
    so repeated plays add fresh episodes instead of replaying the same ones; when another
    process took that seed meanwhile, the next one is played. With a seed whose episodes the
    league already holds, the match is a replay: played and returned, not recorded again.
    """
    import time

    if episodes < 1:
        raise PolicyError("--episodes must be at least 1")
    device = resolve_device(device)
    from policies.lineup import check_role

    continue_sequence = seed is None
    seconds = 0.0
    for _ in range(_MAX_ROUNDS):
        with league_open("r") as lg:
            d_info = lg.info(resolve_for(lg, defender, scenario, prefer=default_scenario(lg)))
            check_role(d_info, "defender")
            if scenario is None and d_info.scenario != "any":
                scenario = d_info.scenario
            a_ref = resolve_for(lg, attacker, scenario)
            refs = [d_info.ref]
            if a_ref != NO_ATTACK:
                check_role(lg.info(a_ref), "attacker")
                refs.append(a_ref)
            scenario = scenario or infer_scenario(lg, refs)
            check_batch(scenario, episodes, 1, device)
            if continue_sequence:
                have = int(lg.payoff(scenario, [d_info.ref], [a_ref]).count[0, 0])
                stored = pay.stored_seeds(lg.matches(scenario, d_info.ref, a_ref)) if have else {}
                seed = pay.next_seed(0, have, stored.get((d_info.ref, a_ref), ()))
            lineup = build_lineup(lg, scenario, [d_info.ref], [a_ref], device)
        cell = pay.Cell(d_info.ref, a_ref, episodes, seed)
        start = time.perf_counter()
        (stats,) = pay.run_cells(scenario, lineup, [cell], device, on_step)
        seconds += time.perf_counter() - start
        recorded = not commit(league_open, scenario, [cell], [stats], device)
        if recorded or not continue_sequence:
            break
    rec = pay.to_record(scenario, cell, stats, str(device), code_version())
    return PlayResult(rec, seconds, recorded)
