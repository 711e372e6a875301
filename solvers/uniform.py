"""The uniform meta-solver: every defender and every attacker equally likely.

The baseline against which the other meta-solvers are judged (it is the meta-strategy of
fictitious self-play's first step and of "uniform PSRO" in Lanctot et al., 2017).
"""

from __future__ import annotations

import numpy as np

from solvers.exploitability import SolverError, check_matrix


def uniform(M: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Returns (p [D], q [A]), both uniform. Takes no options."""
    if kwargs:
        raise SolverError(f"uniform takes no options; got {', '.join(sorted(kwargs))}")
    D, A = check_matrix(M).shape
    return np.full(D, 1.0 / D), np.full(A, 1.0 / A)
