"""Payoff table: a view over match records, one cell per (defender, attacker) pair.

Cells keep sufficient statistics (count n, sum S, sum of squares Q, wins W) so they can be
extended and carry confidence intervals: mean = S/n, sample variance = (Q - S^2/n)/(n-1),
ci95 half-width = 1.96 * std / sqrt(n), win rate = W/n. Cells with no episodes are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PayoffTable:
    scenario: str
    defenders: list[str]  # row refs
    attackers: list[str]  # column refs ("none" = no attack)
    count: np.ndarray  # [D, A] int, episodes
    sum: np.ndarray  # [D, A] float, sum of team returns
    sumsq: np.ndarray  # [D, A] float, sum of squared team returns
    wins: np.ndarray  # [D, A] int, episodes won by the defending team

    @classmethod
    def from_rows(cls, scenario: str, drefs: list[str], arefs: list[str], d_col, a_col, ep, s, sq, w) -> "PayoffTable":
        """Sum the match rows (columns: defender, attacker, episodes, sum, sumsq, wins) into cells."""
        D, A = len(drefs), len(arefs)
        count = np.zeros((D, A), np.int64)
        total, total_sq = np.zeros((D, A)), np.zeros((D, A))
        wins = np.zeros((D, A), np.int64)
        if d_col:
            # Group the rows by (defender, attacker) once, then scatter the groups into the cells.
            pairs = np.array([d + "\0" + a for d, a in zip(d_col, a_col)], dtype=object)
            keys, inv = np.unique(pairs, return_inverse=True)
            sums = [np.bincount(inv, weights=np.asarray(c, np.float64), minlength=len(keys))
                    for c in (ep, s, sq, w)]
            d_idx = {r: [i for i, x in enumerate(drefs) if x == r] for r in drefs}
            a_idx = {r: [j for j, x in enumerate(arefs) if x == r] for r in arefs}
            for g, key in enumerate(keys):
                d, a = key.split("\0")
                for i in d_idx.get(d, ()):
                    for j in a_idx.get(a, ()):
                        count[i, j] += int(sums[0][g])
                        total[i, j] += sums[1][g]
                        total_sq[i, j] += sums[2][g]
                        wins[i, j] += int(sums[3][g])
        return cls(scenario, drefs, arefs, count, total, total_sq, wins)

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / self.count, np.nan)

    @property
    def std(self) -> np.ndarray:
        n = self.count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            # Rounding can push Q - S^2/n slightly below 0 when all returns are equal.
            var = np.maximum(self.sumsq - self.sum**2 / n, 0.0) / (n - 1)
            return np.where(n > 1, np.sqrt(var), np.nan)

    @property
    def ci95(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, 1.96 * self.std / np.sqrt(self.count), np.nan)

    @property
    def win_rate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.wins / self.count, np.nan)

    def to_dict(self) -> dict:
        """JSON-ready dict: arrays as nested lists, NaN as None."""

        def lists(a: np.ndarray) -> list:
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]

        return {
            "scenario": self.scenario,
            "defenders": list(self.defenders),
            "attackers": list(self.attackers),
            "count": self.count.astype(int).tolist(),
            "sum": lists(self.sum),
            "sumsq": lists(self.sumsq),
            "wins": self.wins.astype(int).tolist(),
            "mean": lists(self.mean),
            "std": lists(self.std),
            "ci95": lists(self.ci95),
            "win_rate": lists(self.win_rate),
        }
