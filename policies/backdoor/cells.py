"""The backdoor game: a cell (defence, backdoor attacker) is a defended team played twice.

A backdoor attacker delivers a team; a defence turns it into the team the defender deploys.
Cell (d, a):
1. the cell's team: defence d applied to a's delivered team (`as_delivered`: unchanged;
   `finetune`, `prune`: trained), stored once as a defender policy `<d>_vs_<a>` whose
   provenance names the cell (`backdoor_cell`), so the defence is never applied twice;
2. its triggered return: the team against attacker a, who places its trigger in every
   episode (an ordinary match record, defender = the cell's team, attacker = a);
3. its clean return: the same team on the same episodes without a trigger (a record
   against the clean column `none`). Clean score preservation is half of a backdoor's
   quality: a backdoor that costs clean return is noticed.
Every missing match of a table is one batched fill (`policies.evaluate.fill`). The game's
payoff, read by the solvers, is the triggered return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from policies.backdoor import BACKDOOR_ATTACKS, DEFENCES
from policies.backdoor.finetune import finetune
from policies.backdoor.prune import prune
from policies.backdoor.trigger import delivered_team
from policies.build import base_provenance
from policies.errors import PolicyError
from policies.evaluate import BACKDOOR_CELL, fill, table_players
from store import NO_ATTACK
from store.payoff import PayoffTable


@dataclass
class BackdoorTable:
    scenario: str
    defences: list[str]
    attackers: list[str]
    teams: list[list[str]]  # [D][A] the cell's team ref
    triggered: PayoffTable  # defences × attackers: the returns with the trigger placed
    clean: PayoffTable  # the same cells' returns without it
    episodes_run: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "defences": self.defences,
                "attackers": self.attackers, "teams": self.teams,
                "triggered": self.triggered.to_dict(), "clean": self.clean.to_dict(),
                "episodes_run": self.episodes_run}


def cell_name(defence: str, attacker: str) -> str:
    return f"{defence.split('@')[0]}_vs_{attacker.split('@')[0]}"


def find_cell_team(lg, defence: str, attacker: str) -> str | None:
    """The stored team of cell (defence ref, attacker ref), if the defence was applied."""
    name, want = cell_name(defence, attacker), {"defence": defence, "attacker": attacker}
    # every version: a newer one of the same name may hold another version pair's cell
    for info in lg.list(role="defender", all_versions=True):
        if info.name == name and info.provenance.get(BACKDOOR_CELL) == want:
            return info.ref
    return None


def apply_defence(defence, attacker_rec, scenario: str, device="cpu", on_progress=None,
                  should_stop=None) -> tuple[str, dict, dict, dict]:
    """(team kind, config, weights, provenance) of `defence` applied to the attacker's team."""
    kind, config, weights = delivered_team(attacker_rec)
    p = dict(defence.config)
    if defence.kind == "as_delivered":
        return kind, config, weights, {}
    if defence.kind == "finetune":
        config, weights, prov = finetune(kind, config, weights, scenario, p["steps"], p["lr"],
                                         p["eps"], p["seed"], device, on_progress, should_stop)
        return kind, config, weights, prov
    if defence.kind == "prune":
        config, weights, prov = prune(kind, config, weights, scenario, p["fraction"],
                                      p["episodes"], p["steps"], p["seed"], device, on_progress,
                                      should_stop)
        return kind, config, weights, prov
    raise PolicyError(f"{defence.ref} is of kind {defence.kind}, not a backdoor defence "
                      f"({', '.join(DEFENCES)})")


def check_players(lg, scenario: str, defences: list[str], attackers: list[str]) -> None:
    for ref in defences:
        info = lg.info(ref, usable=True)
        if info.kind not in DEFENCES:
            raise PolicyError(f"{ref} is a {info.kind} {info.role}, not a backdoor defence "
                              f"({', '.join(DEFENCES)}); add one with `arena add-policy NAME "
                              f"--kind finetune`")
    for ref in attackers:
        info = lg.info(ref, usable=True)
        if info.kind not in BACKDOOR_ATTACKS:
            raise PolicyError(f"{ref} is a {info.kind} {info.role}, not a backdoor attacker "
                              f"({', '.join(BACKDOOR_ATTACKS)})")
        if info.scenario != scenario:
            raise PolicyError(f"{ref} was made for {info.scenario}, not {scenario}")


def materialise(league_open: Callable, scenario: str, defences: list[str],
                attackers: list[str], device="cpu", on_event=None, on_progress=None,
                should_stop=None) -> list[list[str]]:
    """The team of every cell, applying (and storing) the defences not applied yet: the
    league is read once, and each new team is stored as soon as it is made (a defence is a
    training: an interrupted fill keeps what it finished)."""
    say = on_event or (lambda msg: None)
    with league_open("r") as lg:
        teams = [[find_cell_team(lg, d, a) for a in attackers] for d in defences]
        missing = {(d, a) for d, row in zip(defences, teams) for a, t in zip(attackers, row)
                   if t is None}
        records = {r: lg.get(r, usable=True) for r in {x for pair in missing for x in pair}}
    for i, d in enumerate(defences):
        for j, a in enumerate(attackers):
            if teams[i][j] is not None:
                continue
            defence = records[d]
            say(f"applying {d} to {a}'s team")
            kind, config, weights, prov = apply_defence(defence, records[a], scenario, device,
                                                        on_progress, should_stop)
            prov = base_provenance(**{BACKDOOR_CELL: {"defence": d, "attacker": a},
                                      "parent": a, "defence": {"kind": defence.kind,
                                                               **defence.config},
                                      "steps": prov.get("steps", 0), **prov})
            with league_open("a") as lg:
                teams[i][j] = lg.add_policy(cell_name(d, a), "defender", kind, scenario,
                                            config, weights, prov)
    return teams


def fill_backdoor(league_open: Callable, scenario: str, defences: list[str] | None,
                  attackers: list[str] | None, episodes: int, seed: int = 0, device="cpu",
                  on_step=None, on_plan=None, on_event=None, on_progress=None,
                  should_stop=None) -> BackdoorTable:
    """Fill every cell of defences × backdoor attackers, triggered and clean."""
    with league_open("r") as lg:
        defences, attackers = table_players(lg, scenario, defences, attackers, "backdoor")
        if not attackers:
            raise PolicyError(f"no backdoor attacker for {scenario} in the league; train one "
                              f"with `arena train attacker NAME --algo marnet --expert TEAM`")
        check_players(lg, scenario, defences, attackers)
    teams = materialise(league_open, scenario, defences, attackers, device, on_event,
                        on_progress, should_stop)
    team_refs = sorted({t for row in teams for t in row})
    columns = [NO_ATTACK] + attackers
    pairs = {(t, c) for row in teams for t, a in zip(row, attackers) for c in (a, NO_ATTACK)}
    res = fill(league_open, scenario, team_refs, columns, episodes, seed, device,
               on_step=on_step, on_plan=on_plan, pairs=pairs)
    return _views(scenario, defences, attackers, teams, res)


def _views(scenario, defences, attackers, teams, res) -> BackdoorTable:
    t = res.table
    row = {r: i for i, r in enumerate(t.defenders)}
    col = {a: j for j, a in enumerate(t.attackers)}
    D, A = len(defences), len(attackers)

    def view(clean: bool) -> PayoffTable:
        idx = [[(row[teams[i][j]], col[NO_ATTACK if clean else attackers[j]])
                for j in range(A)] for i in range(D)]

        def pick(a):
            return np.array([[a[r, c] for r, c in line] for line in idx]).reshape(D, A)

        return PayoffTable(scenario, list(defences), list(attackers), pick(t.count),
                           pick(t.sum), pick(t.sumsq), pick(t.wins))

    return BackdoorTable(scenario, list(defences), list(attackers), teams, view(False),
                         view(True), res.episodes_run, res.seconds)
