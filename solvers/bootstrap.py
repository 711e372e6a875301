"""Confidence intervals for a meta-solution by a parametric bootstrap over the payoff table.

Each cell of the league's payoff table is a sample mean of `count` episode returns with
sample standard deviation `std`. By the central limit theorem the cell mean is approximately
normal with standard error std / sqrt(count), so one bootstrap table is

    M*[i, j] ~ Normal(mean[i, j], std[i, j] / sqrt(count[i, j]))      independently per cell,

and the meta-solver is re-run on n such tables. The intervals are percentile intervals
(Efron & Tibshirani, 1993, "An Introduction to the Bootstrap", Ch. 13): the 2.5th and 97.5th
percentiles of the n game values and of each strategy's n weights.

A cell with count 0 has no estimate at all, so the table is refused (fill the cell or drop its
row or column first). A cell with count 1 has no spread estimate (the league's tables give
std NaN there): such a cell is held at its mean, so intervals from tables with single-episode
cells understate the uncertainty of those cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from solvers.exploitability import SolverError, check_matrix
from solvers.meta import MetaSolution, MetaSolver, solve


@dataclass(frozen=True)
class BootstrapResult:
    value_lo: float
    value_hi: float
    defender_lo: np.ndarray  # [D]
    defender_hi: np.ndarray  # [D]
    attacker_lo: np.ndarray  # [A]
    attacker_hi: np.ndarray  # [A]
    samples: int  # number of resampled tables solved
    point: MetaSolution  # the solution of the mean table itself
    values: np.ndarray  # [samples] game value of each resampled table

    def to_dict(self) -> dict:
        return {
            "value_lo": self.value_lo,
            "value_hi": self.value_hi,
            "defender_lo": self.defender_lo.tolist(),
            "defender_hi": self.defender_hi.tolist(),
            "attacker_lo": self.attacker_lo.tolist(),
            "attacker_hi": self.attacker_hi.tolist(),
            "samples": self.samples,
            "point": self.point.to_dict(),
        }


def resample_tables(
    mean: np.ndarray, std: np.ndarray, count: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n resampled tables [n, D, A], each cell Normal(mean, std / sqrt(count))."""
    se = std / np.sqrt(count)  # [D, A]
    return mean[None] + se[None] * rng.standard_normal((n, *mean.shape))  # [n, D, A]


def bootstrap(
    mean: np.ndarray,
    std: np.ndarray,
    count: np.ndarray,
    method: str | MetaSolver = "lp",
    n: int = 200,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    **kwargs,
) -> BootstrapResult:
    """95% percentile intervals of the value and of every weight of `method`'s solution.

    `on_progress(done, n)` is called after each resampled table is solved."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    count = np.asarray(count)
    if mean.ndim != 2 or std.shape != mean.shape or count.shape != mean.shape:
        raise SolverError(
            "bootstrap needs 2-D mean, std and count of one shape; "
            f"got {mean.shape}, {std.shape}, {count.shape}"
        )
    if np.any(count <= 0):
        i, j = np.argwhere(count <= 0)[0]
        raise SolverError(
            f"cell (row {i}, column {j}) has count {count[i, j]}; fill it or drop that row/column"
        )
    mean = check_matrix(mean)
    # A single episode has no sample std (the league's tables give NaN): hold that cell fixed.
    std = np.where((count == 1) & np.isnan(std), 0.0, std)
    if not np.all(np.isfinite(std)) or np.any(std < 0):
        raise SolverError("bootstrap needs a finite, non-negative std in every cell with count > 1")
    if n < 2:
        raise SolverError(f"bootstrap needs n >= 2 samples; got {n}")
    point = solve(mean, method, **kwargs)  # also rejects an unknown method before any resampling
    tables = resample_tables(mean, std, count.astype(np.float64), n, np.random.default_rng(seed))
    D, A = mean.shape
    values = np.empty(n)  # [n]
    defenders = np.empty((n, D))  # [n, D]
    attackers = np.empty((n, A))  # [n, A]
    for k in range(n):
        sol = solve(tables[k], method, **kwargs)
        values[k], defenders[k], attackers[k] = sol.value, sol.defender, sol.attacker
        if on_progress is not None:
            on_progress(k + 1, n)
    v_lo, v_hi = np.percentile(values, [2.5, 97.5])
    d_lo, d_hi = np.percentile(defenders, [2.5, 97.5], axis=0)
    a_lo, a_hi = np.percentile(attackers, [2.5, 97.5], axis=0)
    return BootstrapResult(
        value_lo=float(v_lo),
        value_hi=float(v_hi),
        defender_lo=d_lo,
        defender_hi=d_hi,
        attacker_lo=a_lo,
        attacker_hi=a_hi,
        samples=n,
        point=point,
        values=values,
    )
