"""Filling the payoff table: only missing cells, all their episodes in one batch.

A cell (defender, attacker) holds match records. `plan` finds the cells with fewer than the
requested episodes; `run_cells` lays every missing episode of every such cell into one batch
(rows ordered cell by cell) and plays it with `arena.rollout.play`; `fill` writes one match
record per cell, all in one commit of the league.

Seeds: the episodes of a cell's first record use `episode_seeds(seed, 0, E)`, the same for every
cell (common random numbers: every pair faces the same starting states). Extending a cell that
already has `c` episodes uses seed `seed + c` (or the next seed the cell does not hold yet),
and the record stores that seed, so every record can be replayed exactly. A seed is stored at
most once per cell: a record whose seed the cell already holds would count replayed episodes
again, so the committer leaves it out (`is_stored`, checked under the league's write lock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from arena.core import uniform_from
from arena.rollout import EpisodeStats, episode_seeds, play
from store import MatchRecord

_SALT_MIXTURE, _SALT_ATT_MIXTURE = 0x3C6EF372, 0x1B873593


@dataclass
class Cell:
    defender: str  # ref name@vK
    attacker: str
    episodes: int  # to run now
    seed: int  # seed of the record to be written
    first: int = 0  # index of the first episode within the record's seed


@dataclass
class Lineup:
    """The players of a batch, built by the policies layer from league records.

    `members[d]` lists `(member index into team, weight)` for defender d: one entry for a plain
    policy, several for a mixture (one member drawn per episode). `attacker_members[a]` does
    the same for attacker a over `attacker_objs`.
    """

    team: object  # arena.rollout.Team stacked over every member
    defenders: list[str]
    members: list[list[tuple[int, float]]]
    attackers: list[str]
    attacker_objs: list
    freq: list[float]
    surrogates: dict
    attacker_members: list[list[tuple[int, float]]]
    attacker_salts: list[int] | None = field(default=None)  # per attacker_objs entry


def stored_seeds(records) -> dict[tuple[str, str], dict[int, int]]:
    """(defender, attacker) → {record seed: episodes stored under it} of match records.

    A record's episodes are `episode_seeds(seed, 0, E)`, so a cell's stored episodes are known
    by seed: a new record whose seed is already there would replay episodes already counted."""
    out: dict[tuple[str, str], dict[int, int]] = {}
    for r in records:
        seeds = out.setdefault((r.defender, r.attacker), {})
        seeds[int(r.seed)] = max(seeds.get(int(r.seed), 0), int(r.episodes))
    return out


def next_seed(base: int, have: int, used) -> int:
    """The seed of a cell's next record: `base + have` (the cell's sequence), moved past any
    seed the cell already holds so the new episodes are never replays."""
    s = base + have
    while s in used:
        s += 1
    return s


def plan(table, episodes: int, seed: int, stored: dict | None = None) -> list[Cell]:
    """Cells of a PayoffTable with fewer than `episodes` episodes, and how many to add.

    `stored` (from `stored_seeds`) lists the seeds each cell already holds."""
    cells = []
    for i, d in enumerate(table.defenders):
        for j, a in enumerate(table.attackers):
            have = int(table.count[i, j])
            if have < episodes:
                used = (stored or {}).get((d, a), ())
                cells.append(Cell(d, a, episodes - have, next_seed(seed, have, used)))
    return cells


def is_stored(cell: Cell, stored: dict) -> bool:
    """Whether a record of `cell` would repeat episodes the league holds: a stored record with
    the same seed starts the same episode sequence. Only the whole record can be kept or left
    out (a record has no offset), so one that is partly new is left out too and replanned."""
    return cell.seed in stored.get((cell.defender, cell.attacker), {})


def episode_bytes(scenario: str) -> int:
    """A generous bound on the memory one episode of a batched rollout holds. The rollout keeps
    no trajectory, so it scales with one step's tensors (observations, actions, state): peak
    memory of PGD tables, measured per episode, was 37 kB on 3m and 145 kB on stag10, that is
    227 and 115 bytes per step element; 256 covers both."""
    from arena.scenarios import spec as scenario_spec

    sp = scenario_spec(scenario)
    return 256 * (sp.n_agents * (sp.obs_dim + sp.n_actions) + sp.state_dim)


def memory_budget(device="cpu") -> int:
    """Half of the device's memory: what one batch may take with room left for the rest."""
    import os

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 2
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def max_episodes(scenario: str, device="cpu") -> int:
    """The most episodes of `scenario` one batch may hold on `device`."""
    return max(1, memory_budget(device) // episode_bytes(scenario))


def draw_members(members: list[tuple[int, float]], seeds: torch.Tensor,
                 salt: int = _SALT_MIXTURE) -> torch.Tensor:
    """One member per episode, drawn from the episode's own stream."""
    idx = torch.tensor([m for m, _ in members], dtype=torch.long)
    if len(members) == 1:
        return idx.expand(len(seeds)).clone()
    w = torch.tensor([w for _, w in members], dtype=torch.float64)
    cdf = (w / w.sum()).cumsum(0)
    u = uniform_from(seeds.cpu() ^ salt, 0, ()).view(-1).double()
    return idx[torch.searchsorted(cdf, u).clamp(max=len(members) - 1)]


def layout(lineup: Lineup, cells: list[Cell], device="cpu"):
    """Row tensors of the batch: seeds, team member and attacker of every episode."""
    d_index = {d: i for i, d in enumerate(lineup.defenders)}
    a_index = {a: i for i, a in enumerate(lineup.attackers)}
    seeds, team_of, attacker_of = [], [], []
    for c in cells:
        s = episode_seeds(c.seed, c.first, c.episodes)
        seeds.append(s)
        team_of.append(draw_members(lineup.members[d_index[c.defender]], s))
        attacker_of.append(draw_members(lineup.attacker_members[a_index[c.attacker]], s,
                                        _SALT_ATT_MIXTURE))
    return (torch.cat(seeds).to(device), torch.cat(team_of).to(device),
            torch.cat(attacker_of).to(device))


def run_cells(scenario: str, lineup: Lineup, cells: list[Cell], device="cpu",
              on_step: Callable[[int, int], None] | None = None) -> list[EpisodeStats]:
    """Play every episode of `cells` in one batch; return per-cell statistics in cell order."""
    if not cells:
        return []
    seeds, team_of, attacker_of = layout(lineup, cells, device)
    surrogates = {}
    for k, (sur_team, sur_members) in lineup.surrogates.items():
        surrogates[k] = (sur_team, draw_members(sur_members, seeds).to(device))
    stats = play(scenario, lineup.team, team_of, lineup.attacker_objs, attacker_of, seeds,
                 device=device, freq=lineup.freq, surrogates=surrogates, on_step=on_step,
                 attack_salts=lineup.attacker_salts)
    out, start = [], 0
    for c in cells:
        sl = slice(start, start + c.episodes)
        out.append(EpisodeStats(stats.returns[sl], stats.wins[sl], stats.lengths[sl],
                                stats.cost[sl]))
        start += c.episodes
    return out


def run_cells_sequential(scenario: str, lineup: Lineup, cells: list[Cell], device="cpu",
                         on_step=None) -> list[EpisodeStats]:
    """The same episodes as `run_cells`, one batch of one episode per call: the reference the
    batched fill is checked and timed against."""
    out = []
    for c in cells:
        parts = [run_cells(scenario, lineup, [Cell(c.defender, c.attacker, 1, c.seed, first=c.first + e)],
                           device, on_step)[0] for e in range(c.episodes)]
        out.append(EpisodeStats(*(torch.cat([getattr(p, f) for p in parts])
                                  for f in ("returns", "wins", "lengths", "cost"))))
    return out


def to_record(scenario: str, cell: Cell, st: EpisodeStats, device: str,
              code_version: str) -> MatchRecord:
    return MatchRecord(
        defender=cell.defender, attacker=cell.attacker, scenario=scenario,
        returns=st.returns.numpy().astype(np.float64), wins=st.wins.numpy().astype(bool),
        lengths=st.lengths.numpy().astype(np.int64), attack_cost=st.cost.numpy().astype(np.float64),
        seed=int(cell.seed), device=str(device), code_version=code_version,
    )
