"""From the league's payoff table to a matrix a meta-solver reads, and what a solution means."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.exploitability import SolverError

METRICS = ("return", "win")


@dataclass
class Game:
    defenders: list[str]
    attackers: list[str]
    M: np.ndarray  # [D, A] defender utility
    std: np.ndarray | None = None  # [D, A] per-episode std of the metric (for the bootstrap)
    count: np.ndarray | None = None  # [D, A] episodes per cell


def game_from_table(table, metric: str = "return") -> Game:
    """Mean return or win rate per cell; every cell must hold at least one episode."""
    if metric not in METRICS:
        raise SolverError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    empty = int((table.count == 0).sum())
    if empty:
        raise SolverError(f"the payoff table has {empty} empty cell(s); fill them with `arena matrix`")
    if metric == "return":
        M, std = table.mean, np.nan_to_num(table.std, nan=0.0)
    else:
        M = table.win_rate
        std = np.sqrt(M * (1 - M))
    return Game(list(table.defenders), list(table.attackers), np.asarray(M, float),
                np.asarray(std, float), np.asarray(table.count, float))


def worst_attack(game: Game, defender_mixture: np.ndarray) -> tuple[int, float]:
    """The attacker column that hurts the defender mixture most, and the value it leaves."""
    col = defender_mixture @ game.M
    j = int(np.argmin(col))
    return j, float(col[j])
