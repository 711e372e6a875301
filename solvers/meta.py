"""Meta-solvers of the arena: one entry point, `solve`, over a registry of methods.

A meta-solver reads a payoff table M [D, A] (rows = defenders, columns = attackers, entries
= the defender's utility; the attacker's utility is -M) and returns a defender mixture p [D]
and an attacker mixture q [A]. Every method has the signature `fn(M, **options) -> (p, q)`
and is listed by name in METHODS; `solve` accepts a name or any callable of that signature,
and adds the value p^T M q, the supports and the exploitability (NashConv) of the pair.

    lp         Nash equilibrium by linear programming (solvers.lp)
    rd         projected replicator dynamics, average strategies (solvers.replicator)
    alpharank  alpha-rank marginals over defenders and attackers (solvers.alpharank)
    uniform    the uniform baseline (solvers.uniform)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from solvers.alpharank import alpharank
from solvers.exploitability import SolverError, check_matrix, clean_mixture, nash_conv
from solvers.lp import lp_nash
from solvers.replicator import replicator
from solvers.uniform import uniform

__all__ = ["METHODS", "MetaSolution", "SolverError", "solve", "get_method", "SUPPORT_TOL"]

SUPPORT_TOL = 1e-6  # a strategy is in the support when its weight exceeds this

MetaSolver = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MetaSolution:
    method: str
    defender: np.ndarray  # [D] mixture over defenders (rows)
    attacker: np.ndarray  # [A] mixture over attackers (columns)
    value: float  # defender's expected utility p^T M q
    support_defender: list[int]
    support_attacker: list[int]
    exploitability: float  # NashConv of (defender, attacker) on M

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "defender": self.defender.tolist(),
            "attacker": self.attacker.tolist(),
            "value": self.value,
            "support_defender": list(self.support_defender),
            "support_attacker": list(self.support_attacker),
            "exploitability": self.exploitability,
        }


def get_method(method: str | MetaSolver) -> tuple[str, MetaSolver]:
    """(name, function) of a registered name or a callable."""
    if callable(method):
        return getattr(method, "__name__", "custom"), method
    if method not in METHODS:
        raise SolverError(f"unknown meta-solver {method!r}; valid: {', '.join(METHODS)}")
    return method, METHODS[method]


def solve(M: np.ndarray, method: str | MetaSolver = "lp", **kwargs) -> MetaSolution:
    """Solves the payoff table M [D, A] with `method` (a METHODS name or a callable)."""
    name, fn = get_method(method)
    M = check_matrix(M)
    D, A = M.shape
    p, q = fn(M, **kwargs)
    p = clean_mixture(p, D, "defender")
    q = clean_mixture(q, A, "attacker")
    return MetaSolution(
        method=name,
        defender=p,
        attacker=q,
        value=float(p @ M @ q),
        support_defender=np.flatnonzero(p > SUPPORT_TOL).tolist(),
        support_attacker=np.flatnonzero(q > SUPPORT_TOL).tolist(),
        exploitability=nash_conv(M, p, q),
    )


METHODS: dict[str, MetaSolver] = {
    "lp": lp_nash,
    "rd": replicator,
    "alpharank": alpharank,
    "uniform": uniform,
}
