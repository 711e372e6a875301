"""Nash equilibrium of a two-player zero-sum matrix game by linear programming.

The minimax theorem (von Neumann, 1928) makes the maximin mixture of the row player and the
minimax mixture of the column player a Nash equilibrium, and both are the solutions of a
primal/dual pair of linear programs (Shoham & Leyton-Brown, 2009, "Multiagent Systems",
Sec. 4.1). With M [D, A] the defender's utility:

    defender (primal):  max_{p, v}  v   s.t.  (p^T M)_j >= v  for every attacker j,
                                             sum_i p_i = 1,  p >= 0
    attacker (dual):    min_{q, w}  w   s.t.  (M q)_i  <= w  for every defender i,
                                             sum_j q_j = 1,  q >= 0

and v* = w* is the value of the game. The attacker's LP is the dual of the defender's, so
one HiGHS solve gives both mixtures: q is the vector of dual prices of the constraints
(p^T M)_j >= v.

Backends: "highs" (SciPy's `linprog(method="highs")`, the default) and "openspiel"
(OpenSpiel's `lp_solver.solve_zero_sum_matrix_game`, which solves the two LPs separately with
cvxpy/ECOS; kept as a cross-check, and imported only when asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from solvers.exploitability import SolverError, check_matrix, clean_mixture, config_from_kwargs

OPENSPIEL_MISSING = "open_spiel is not installed; pip install open_spiel cvxpy-base[ecos]"


@dataclass(frozen=True)
class LPConfig:
    backend: str = "highs"
    """"highs" (SciPy HiGHS, one primal solve with duals) or "openspiel" (OpenSpiel + cvxpy)."""


def _highs(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    D, A = M.shape
    # linprog minimises c^T x subject to A_ub x <= b_ub, A_eq x = b_eq, bounds, so the
    # defender's LP above is written with x = [p_1 .. p_D, v]:
    #
    #   min   -v
    #   s.t.  -(M^T p)_j + v <= 0        j = 1..A     (A_ub = [-M^T | 1], b_ub = 0)
    #          sum_i p_i      = 1                      (A_eq = [1 .. 1 | 0], b_eq = 1)
    #          p_i >= 0,  v free
    #
    # The dual price y_j <= 0 of the j-th inequality is d(-v*)/d(b_ub_j); the dual
    # constraint for the free variable v reads sum_j y_j = -1, so q = -y is a mixture, and
    # complementary slackness gives (M q)_i <= v* for all i: q is the attacker's minimax
    # strategy, the solution of the attacker's LP.
    c = np.zeros(D + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-M.T, np.ones((A, 1))])  # [A, D+1]
    b_ub = np.zeros(A)
    a_eq = np.hstack([np.ones((1, D)), np.zeros((1, 1))])  # [1, D+1]
    b_eq = np.ones(1)
    bounds = [(0.0, None)] * D + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise SolverError(f"HiGHS failed on the {D}x{A} table: {res.message}")
    p = res.x[:D]
    q = -np.asarray(res.ineqlin.marginals)
    return p, q, float(res.x[-1])


def _openspiel(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        import pyspiel
        from open_spiel.python.algorithms import lp_solver
    except ImportError:
        raise SolverError(OPENSPIEL_MISSING) from None
    game = pyspiel.create_matrix_game(M.tolist(), (-M).tolist())
    try:
        p, q, v0, _v1 = lp_solver.solve_zero_sum_matrix_game(game)
    except Exception as exc:  # cvxpy raises its own SolverError / ValueError types
        raise SolverError(f"OpenSpiel LP failed on the {M.shape[0]}x{M.shape[1]} table: {exc}") from None
    return np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64), float(v0)


def lp_solve(M: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray, float]:
    """Returns (p [D], q [A], value) of the zero-sum game M; see LPConfig for options."""
    cfg = config_from_kwargs(LPConfig, kwargs, "lp")
    M = check_matrix(M)
    if cfg.backend == "highs":
        p, q, v = _highs(M)
    elif cfg.backend == "openspiel":
        p, q, v = _openspiel(M)
    else:
        raise SolverError(f"unknown lp backend {cfg.backend!r}; valid: highs, openspiel")
    # Interior-point (ECOS) and simplex round-off leave weights like -1e-11; those are cleaned,
    # anything larger is an error.
    return clean_mixture(p, M.shape[0], "defender"), clean_mixture(q, M.shape[1], "attacker"), v


def lp_nash(M: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Nash mixtures (p [D], q [A]) of the zero-sum game M by linear programming."""
    p, q, _ = lp_solve(M, **kwargs)
    return p, q
