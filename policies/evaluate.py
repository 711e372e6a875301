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

from store import NO_ATTACK


@dataclass
class FillResult:
    table: object  # store.PayoffTable after filling
    cells: list  # the cells that were run (arena.payoff.Cell)
    episodes_run: int
    seconds: float


def default_players(lg, scenario: str, final_only: bool = True) -> tuple[list[str], list[str]]:
    """Every live defender made for `scenario` (mixtures included) and every attacker usable on
    it, the no-attack column first. `final_only` (the default of every table command) leaves
    out PSRO's intermediate best responses; their run's mixture policies stay, and any policy
    can still be named explicitly."""
    def keep(info):
        if info.scenario not in (scenario, "any"):
            return False
        return not (final_only and info.kind != "mixture" and "psro_iteration" in info.provenance)

    defenders = [i.ref for i in lg.list(role="defender") if keep(i)]
    attackers = [i.ref for i in lg.list(role="attacker") if keep(i)]
    return defenders, [NO_ATTACK] + attackers


def fill(league_open: Callable, scenario: str, defenders: list[str] | None,
         attackers: list[str] | None, episodes: int, seed: int = 0, device="auto",
         on_step=None, on_plan=None, sequential: bool = False) -> FillResult:
    """Fill the cells of defenders × attackers on `scenario` up to `episodes` each.

    `league_open(mode)` opens the league. `sequential=True` plays cell by cell and episode by
    episode with the same code (the reference the batched fill is measured against).
    """
    import time

    if episodes < 1:
        raise PolicyError("--episodes must be at least 1")
    device = resolve_device(device)
    with league_open("r") as lg:
        d_all, a_all = default_players(lg, scenario)
        defenders = [resolve_for(lg, d, scenario) for d in defenders] if defenders else d_all
        attackers = [resolve_for(lg, a, scenario) for a in attackers] if attackers else a_all
        if not defenders:
            raise PolicyError(f"no defender for scenario {scenario} in the league; "
                              f"train one with `arena train defender`")
        table = lg.payoff(scenario, defenders, attackers)
        cells = pay.plan(table, episodes, seed)
        lineup = build_lineup(lg, scenario, defenders, attackers, device) if cells else None
    if on_plan is not None:
        on_plan(cells)
    start = time.perf_counter()
    run = pay.run_cells_sequential if sequential else pay.run_cells
    stats = run(scenario, lineup, cells, device, on_step)
    seconds = time.perf_counter() - start
    if cells:
        version = code_version()
        with league_open("a") as lg, lg.transaction():
            for c, st in zip(cells, stats):
                lg.add_match(pay.to_record(scenario, c, st, str(device), version))
    with league_open("r") as lg:
        table = lg.payoff(scenario, defenders, attackers)
    return FillResult(table, cells, sum(c.episodes for c in cells), seconds)


def infer_scenario(lg, refs: list[str]) -> str:
    """The scenario the named learned policies were made for (they must agree)."""
    found = {lg.info(r).scenario for r in refs} - {"any"}
    if len(found) > 1:
        raise PolicyError(f"the policies were made for different scenarios: {', '.join(sorted(found))}")
    if not found:
        raise PolicyError("no policy names a scenario: give --scenario")
    return found.pop()


def play_match(league_open: Callable, defender: str, attacker: str, scenario: str | None,
               episodes: int, seed: int | None, device="auto", on_step=None):
    """Play `episodes` new greedy episodes of defender vs attacker and record them.

    Without a seed the episodes continue the cell's sequence (seed = episodes already played),
    so repeated plays add fresh episodes instead of replaying the same ones.
    Returns (MatchRecord, seconds).
    """
    import time

    if episodes < 1:
        raise PolicyError("--episodes must be at least 1")
    device = resolve_device(device)
    from policies.lineup import check_role

    with league_open("r") as lg:
        d_info = lg.info(resolve_for(lg, defender, scenario or default_scenario(lg)))
        check_role(d_info, "defender")
        if scenario is None and d_info.scenario != "any":
            scenario = d_info.scenario
        a_ref = resolve_for(lg, attacker, scenario)
        refs = [d_info.ref]
        if a_ref != NO_ATTACK:
            check_role(lg.info(a_ref), "attacker")
            refs.append(a_ref)
        scenario = scenario or infer_scenario(lg, refs)
        if seed is None:
            seed = int(lg.payoff(scenario, [d_info.ref], [a_ref]).count[0, 0])
        lineup = build_lineup(lg, scenario, [d_info.ref], [a_ref], device)
    cell = pay.Cell(d_info.ref, a_ref, episodes, seed)
    start = time.perf_counter()
    (stats,) = pay.run_cells(scenario, lineup, [cell], device, on_step)
    seconds = time.perf_counter() - start
    rec = pay.to_record(scenario, cell, stats, str(device), code_version())
    with league_open("a") as lg, lg.transaction():
        lg.add_match(rec)
    return rec, seconds
