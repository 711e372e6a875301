"""Policy-Space Response Oracles over defender and attacker populations.

Lanctot et al., "A Unified Game-Theoretic Approach to Multiagent Reinforcement Learning"
(NeurIPS 2017), as used for robust cooperative MARL by ℜ-MACRL (Xue et al., "Mis-spoke or
mis-lead: Achieving Robustness in Multi-Agent Communicative Reinforcement Learning", AAMAS
2022), Algorithm 1. With populations Π_D (defenders) and Π_A (attackers):

    repeat
        M      ← payoff of Π_D × Π_A                 (update the empirical game: new cells only)
        (σ_D, σ_A) ← meta-solver(M)                  (update the meta-strategies)
        π_A'   ← best response to σ_D  (attacker oracle: minimises the team return)
        π_D'   ← best response to σ_A  (defender oracle: maximises it)
        Π_D ← Π_D ∪ {π_D'},  Π_A ← Π_A ∪ {π_A'}       (update the agents)
    until T iterations or both best responses gain less than tol

The gains are measured on the filled table once the responses are in it:
gain_A = v − σ_D·M[:, π_A'] and gain_D = M[π_D', :]·σ_A − v, where v = σ_D·M·σ_A. An RL oracle
is not an exact best response: a failed one gains less than nothing. NashConv (Lanctot et al.
2017, Sec. 3) sums what each player's best response gains, and the best response of a player
is never worse than the mixture it already has, so each gain enters as max(0, gain):
NashConv = max(0, gain_A) + max(0, gain_D) ≥ 0. The signed sum is kept as `br_exploitability`
for older readers; a failed oracle's negative gain cancels a real one there.

The loop talks to the game through `PSROGame` (fill, two oracles), so the same code runs the
league with RL oracles and a synthetic game whose best responses are exact look-ups.
Every iteration is recorded (populations, meta-strategies, value, gains); a killed run
resumes from its last recorded iteration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import numpy as np

from solvers.exploitability import nash_conv_of_gains
from solvers.meta import solve


class PSROGame(Protocol):
    """A game may also have `responses(defenders, σ_D, attackers, σ_A, iteration) -> (new
    attacker, new defender)`: both oracles of an iteration at once (e.g. in parallel). The
    loop uses it where present."""

    def payoff(self, defenders: list[str], attackers: list[str]) -> np.ndarray:
        """[D, A] defender utility, filling whatever cells are missing."""

    def attacker_response(self, defenders: list[str], sigma: np.ndarray, iteration: int) -> str:
        """A new attacker trained against the defender mixture; returns its name."""

    def defender_response(self, attackers: list[str], sigma: np.ndarray, iteration: int) -> str:
        """A new defender trained against the attacker mixture; returns its name."""


@dataclass
class PSROConfig:
    iterations: int = 3
    """Iterations T (0: only solve the starting populations)."""
    meta: str = "lp"
    """Meta-solver name (solvers.meta.METHODS)."""
    tol: float = 0.0
    """Stop early when both best-response gains are below this."""


@dataclass
class Iteration:
    iteration: int
    defenders: list[str]
    attackers: list[str]
    sigma_defender: list[float]
    sigma_attacker: list[float]
    value: float
    exploitability: float  # NashConv on the restricted table
    new_defender: str | None = None
    new_attacker: str | None = None
    gain_defender: float | None = None
    gain_attacker: float | None = None
    value_after: float | None = None
    br_exploitability: float | None = None  # gain_A + gain_D, signed (a failed oracle cancels)
    nash_conv: float | None = None  # max(0, gain_A) + max(0, gain_D) against the new responses
    extra: dict = field(default_factory=dict)


def step_meta(game: PSROGame, defenders, attackers, meta: str):
    M = game.payoff(defenders, attackers)
    sol = solve(M, meta)
    return M, sol


def run_psro(game: PSROGame, defenders: list[str], attackers: list[str], cfg: PSROConfig,
             history: list[dict] | None = None,
             on_iteration: Callable[[Iteration], None] | None = None) -> list[Iteration]:
    """Run (or resume, from `history`) PSRO; `on_iteration` records each finished iteration."""
    done = [Iteration(**h) for h in (history or [])]
    if done:
        last = done[-1]
        defenders, attackers = list(last.defenders), list(last.attackers)
        for name, pop in ((last.new_defender, defenders), (last.new_attacker, attackers)):
            if name is not None and name not in pop:
                pop.append(name)
        if _converged(last, cfg):
            return done
    start = len(done)
    for it in range(start, max(cfg.iterations, 0) + 1):
        M, sol = step_meta(game, defenders, attackers, cfg.meta)
        rec = Iteration(it, list(defenders), list(attackers), sol.defender.tolist(),
                        sol.attacker.tolist(), float(sol.value), float(sol.exploitability))
        if it < cfg.iterations:
            if hasattr(game, "responses"):  # a game that can train both at once
                new_a, new_d = game.responses(defenders, sol.defender, attackers,
                                              sol.attacker, it)
            else:
                new_a = game.attacker_response(defenders, sol.defender, it)
                new_d = game.defender_response(attackers, sol.attacker, it)
            d_next = defenders + ([new_d] if new_d not in defenders else [])
            a_next = attackers + ([new_a] if new_a not in attackers else [])
            M2 = game.payoff(d_next, a_next)
            p = np.zeros(len(d_next))
            p[: len(defenders)] = sol.defender
            q = np.zeros(len(a_next))
            q[: len(attackers)] = sol.attacker
            rec.new_defender, rec.new_attacker = new_d, new_a
            rec.gain_attacker = float(sol.value - p @ M2[:, a_next.index(new_a)])
            rec.gain_defender = float(M2[d_next.index(new_d)] @ q - sol.value)
            rec.value_after = float(solve(M2, cfg.meta).value)
            rec.br_exploitability = rec.gain_attacker + rec.gain_defender
            rec.nash_conv = nash_conv_of_gains(rec.gain_attacker, rec.gain_defender)
            defenders, attackers = d_next, a_next
        done.append(rec)
        if on_iteration is not None:
            on_iteration(rec)
        if _converged(rec, cfg):
            break
    return done


def _converged(rec: Iteration, cfg: PSROConfig) -> bool:
    if rec.gain_attacker is None:
        return True  # the final solve of the budget
    return cfg.tol > 0 and rec.gain_attacker < cfg.tol and rec.gain_defender < cfg.tol


def as_record(it: Iteration) -> dict:
    return asdict(it)


class MatrixGame:
    """A synthetic game: a hidden matrix whose best responses are exact look-ups.

    Strategies are named "d<i>" and "a<j>"; the oracles return the exact best response of the
    whole hidden matrix to the restricted mixture, so PSRO must converge to its Nash value.
    """

    def __init__(self, H: np.ndarray):
        self.H = np.asarray(H, float)
        self.calls = 0

    def payoff(self, defenders, attackers):
        self.calls += 1
        rows = [int(d[1:]) for d in defenders]
        cols = [int(a[1:]) for a in attackers]
        return self.H[np.ix_(rows, cols)]

    def attacker_response(self, defenders, sigma, iteration):
        rows = [int(d[1:]) for d in defenders]
        return f"a{int(np.argmin(sigma @ self.H[rows]))}"

    def defender_response(self, attackers, sigma, iteration):
        cols = [int(a[1:]) for a in attackers]
        return f"d{int(np.argmax(self.H[:, cols] @ sigma))}"
