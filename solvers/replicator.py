"""Projected replicator dynamics (PRD) meta-solver, by OpenSpiel.

Lanctot et al. (2017), "A Unified Game-Theoretic Approach to Multiagent Reinforcement
Learning" (NeurIPS), Sec. 3.1: each player k follows the replicator equation

    dx_k(a)/dt = x_k(a) [ u_k(a, x_-k) - u_k(x_k, x_-k) ]

integrated with Euler steps of size dt, each step followed by the Euclidean projection onto
the gamma-exploratory simplex {x : sum_a x(a) = 1, x(a) >= gamma}, so no strategy dies out.
Here u_0 = M q (defender) and u_1 = -(p^T M) (attacker).

What is returned: OpenSpiel's `projected_replicator_dynamics` returns the *average* of the
strategies along the trajectory (all `iterations + 1` points, the start included),
or of the last `average_last` points when that option is set; `average_last=1` gives the
last iterate. The average is what converges to equilibrium in zero-sum games; the last
iterate cycles (e.g. in rock-paper-scissors).

Payoff scale: the dynamics depend on payoff differences times dt, so returns of size 100
would need a dt 100 times smaller than returns of size 1. With `normalise=True` (default) M
is mapped affinely to [0, 1] first, (M - min M) / (max M - min M), which keeps the game
zero-sum (up to a constant for the attacker, which the dynamics ignore) and makes dt mean
the same on any table. A constant table is left at 0 (every mixture is an equilibrium).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.exploitability import SolverError, check_matrix, clean_mixture, config_from_kwargs
from solvers.lp import OPENSPIEL_MISSING


@dataclass(frozen=True)
class RDConfig:
    iterations: int = 10_000
    """Euler steps. OpenSpiel's defaults are 1e5 steps of 1e-3; 1e4 steps of 1e-2 reach the
    same time horizon (t = 100) ten times faster."""
    dt: float = 1e-2
    """Step size of the Euler integration."""
    gamma: float = 1e-6
    """Minimum probability of every strategy after each projection."""
    average_last: int | None = None
    """Average over the last N strategies only (None: the whole trajectory; 1: last iterate)."""
    normalise: bool = True
    """Map M affinely to [0, 1] before running the dynamics (see the module docstring)."""
    initial: tuple | None = None
    """Starting mixtures (p [D], q [A]); None: uniform for both, as in OpenSpiel."""
    use_approx: bool = False
    """OpenSpiel's approximate projection (clip at gamma and renormalise) instead of the exact one."""


def normalise_table(M: np.ndarray) -> np.ndarray:
    """(M - min M) / (max M - min M), or zeros for a constant table."""
    lo, hi = float(M.min()), float(M.max())
    if hi - lo <= 0.0:
        return np.zeros_like(M)
    return (M - lo) / (hi - lo)


def replicator(M: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Average PRD mixtures (p [D], q [A]) on M; see RDConfig for options."""
    cfg = config_from_kwargs(RDConfig, kwargs, "rd")
    if cfg.iterations < 1 or cfg.dt <= 0 or not 0 <= cfg.gamma < 1:
        raise SolverError("rd needs iterations >= 1, dt > 0 and 0 <= gamma < 1")
    if cfg.average_last is not None and cfg.average_last < 1:
        raise SolverError("rd needs average_last >= 1 or None")
    M = check_matrix(M)
    try:
        from open_spiel.python.algorithms import projected_replicator_dynamics as prd
    except ImportError:
        raise SolverError(OPENSPIEL_MISSING) from None
    T = normalise_table(M) if cfg.normalise else M
    initial = None
    if cfg.initial is not None:
        if len(cfg.initial) != 2:
            raise SolverError("rd option initial must be a pair (p [D], q [A])")
        initial = [
            clean_mixture(cfg.initial[0], M.shape[0], "initial defender"),
            clean_mixture(cfg.initial[1], M.shape[1], "initial attacker"),
        ]
    p, q = prd.projected_replicator_dynamics(
        [T, -T],
        prd_initial_strategies=initial,
        prd_iterations=int(cfg.iterations),
        prd_dt=float(cfg.dt),
        prd_gamma=float(cfg.gamma),
        average_over_last_n_strategies=cfg.average_last,
        use_approx=cfg.use_approx,
    )
    return clean_mixture(p, M.shape[0], "defender"), clean_mixture(q, M.shape[1], "attacker")
