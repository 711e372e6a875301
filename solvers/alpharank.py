"""Alpha-rank meta-solver, by OpenSpiel.

Omidshafiei et al. (2019), "α-Rank: Multi-Agent Evaluation by Evolution", Scientific
Reports 9:9937 (Methods, multi-population model). The defenders and the attackers are two
populations of size m. A state of the Markov chain is a pure profile s = (i, j). A mutant
of population k switches from s to a profile t that differs only in k's strategy, and
fixates with probability

    rho_{s,t} = (1 - exp(-alpha (f_k(t) - f_k(s)))) / (1 - exp(-m alpha (f_k(t) - f_k(s))))
    rho_{s,t} = 1 / m                                   when f_k(t) = f_k(s)

with f_0 = M (defender) and f_1 = -M (attacker). The transition matrix is
C[s, t] = eta rho_{s,t} with eta = 1 / sum_k (|S_k| - 1), C[s, s] = 1 - sum_{t != s} C[s, t],
and alpha-rank's scores are its stationary distribution pi (pi^T C = pi^T), a distribution
over the D * A joint profiles.

Marginals. OpenSpiel enumerates profiles with the last population varying fastest
(`egt.utils.get_strat_profile_from_id`: id = i * A + j for defender i and attacker j; the
docstring of `get_id_from_strat_profile` states the other order, its code computes this
one). So pi.reshape(D, A) in C order is the joint table, and the per-player mixtures are its
row sums (defender) and column sums (attacker): the mass the stationary distribution puts on
profiles where the player uses that strategy.

Payoff scale and overflow. alpha multiplies raw payoff differences, so the same alpha is a
mild preference on a table of returns in [0, 1] and a hard max on returns in [0, 100]. With
`normalise=True` (default) M is mapped affinely to [0, 1] first (see replicator.normalise_table),
so alpha means the same on every table. OpenSpiel evaluates exp(-m u) with u = alpha * (payoff
difference); for a strongly unfavourable mutant this overflows to inf and rho correctly
becomes 0, so that overflow is silenced. When alpha * |difference| itself exceeds ~709,
exp(-u) overflows too and rho becomes inf/inf = NaN: that case is refused up front (one line
naming the fixes: normalise, smaller alpha, or `use_inf_alpha`).

Cost. The chain has D * A states and OpenSpiel builds it as a dense matrix with a Python loop
over profiles and neighbours, then takes a dense eigendecomposition (O((D A)^3)); beyond
`max_profiles` the solver refuses rather than hang.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.exploitability import SolverError, check_matrix, clean_mixture, config_from_kwargs
from solvers.lp import OPENSPIEL_MISSING
from solvers.replicator import normalise_table

_EXP_LIMIT = 709.0  # np.exp overflows float64 above ~709.78


@dataclass(frozen=True)
class AlphaRankConfig:
    alpha: float = 100.0
    """Selection intensity (inverse temperature of the Fermi rule); OpenSpiel's default."""
    m: int = 50
    """Population size; OpenSpiel's default."""
    normalise: bool = True
    """Map M affinely to [0, 1] first, so that alpha is independent of the return scale."""
    use_inf_alpha: bool = False
    """OpenSpiel's infinite-alpha limit: a mutant fixates w.p. 1 - eps if better, eps if worse."""
    inf_alpha_eps: float = 0.01
    """Noise of the infinite-alpha model, which keeps the chain irreducible."""
    max_profiles: int = 2500
    """Refuse tables with more than this many D * A profiles (50 x 50 takes ~10 s)."""


def alpharank_profiles(M: np.ndarray, **kwargs) -> np.ndarray:
    """The stationary distribution over joint profiles, as a table pi [D, A]."""
    cfg = config_from_kwargs(AlphaRankConfig, kwargs, "alpharank")
    if cfg.alpha <= 0 or cfg.m < 2 or not 0 < cfg.inf_alpha_eps < 1:
        raise SolverError("alpharank needs alpha > 0, m >= 2 and 0 < inf_alpha_eps < 1")
    M = check_matrix(M)
    D, A = M.shape
    if D * A > cfg.max_profiles:
        raise SolverError(
            f"alpharank on a {D}x{A} table has {D * A} joint profiles, above max_profiles="
            f"{cfg.max_profiles} (dense {D * A}x{D * A} Markov chain); raise max_profiles to force it"
        )
    T = normalise_table(M) if cfg.normalise else M
    spread = float(T.max() - T.min())
    if not cfg.use_inf_alpha and cfg.alpha * spread > _EXP_LIMIT:
        raise SolverError(
            f"alpharank: alpha * payoff range = {cfg.alpha * spread:.4g} overflows exp(); "
            "use normalise=True, a smaller alpha, or use_inf_alpha=True"
        )
    try:
        from open_spiel.python.egt import alpharank as os_alpharank
    except ImportError:
        raise SolverError(OPENSPIEL_MISSING) from None
    try:
        with np.errstate(over="ignore"):
            _rhos, _rho_m, pi, _n_profiles, _n_strats = os_alpharank.compute(
                [T, -T],
                m=int(cfg.m),
                alpha=float(cfg.alpha),
                use_inf_alpha=cfg.use_inf_alpha,
                inf_alpha_eps=float(cfg.inf_alpha_eps),
            )
    except ValueError as exc:  # e.g. "Expected 1 stationary distribution, but found 2"
        raise SolverError(f"alpharank failed on the {D}x{A} table: {exc}") from None
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (D * A,) or not np.all(np.isfinite(pi)):
        raise SolverError(f"alpharank returned a non-finite stationary distribution on the {D}x{A} table")
    # The eigenvector is normalised to sum 1 but may carry -1e-17 round-off.
    return clean_mixture(pi, D * A, "alpharank profile").reshape(D, A)  # [D, A], attacker fastest


def alpharank(M: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-rank marginals (p [D], q [A]) on M; see AlphaRankConfig for options."""
    pi = alpharank_profiles(M, **kwargs)  # [D, A]
    D, A = pi.shape
    return clean_mixture(pi.sum(axis=1), D, "defender"), clean_mixture(pi.sum(axis=0), A, "attacker")
