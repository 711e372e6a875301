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


def filled_lines(count: np.ndarray) -> tuple[list[int], list[int]]:
    """Rows and columns of a filled sub-table: every cell they share holds an episode.

    Greedy: while an empty cell is left, drop the row or column with the largest share of
    empty cells (ties: the one that loses fewer filled cells, then the later one, as later
    rows and columns are usually the newest and least played). The share, not the number,
    keeps a long, mostly filled row from being dropped before the short empty columns that
    cross it. Finding the largest filled sub-table
    exactly is NP-hard (maximum biclique); the greedy choice keeps everything on a table
    whose empty cells form whole rows or columns, as after a PSRO run or a new policy.
    Returns ([], []) when no cell is filled.
    """
    filled = np.asarray(count) > 0
    rows, cols = list(range(filled.shape[0])), list(range(filled.shape[1]))
    while rows and cols:
        sub = filled[np.ix_(rows, cols)]
        if sub.all():
            break
        candidates = [((~sub[k]).mean(), -sub[k].sum(), k, "row") for k in range(len(rows))]
        candidates += [((~sub[:, k]).mean(), -sub[:, k].sum(), k, "col") for k in range(len(cols))]
        _, _, k, which = max(candidates)
        (rows if which == "row" else cols).pop(k)
    if not rows or not cols:
        return [], []
    return rows, cols


def filled_subgame(table, metric: str = "return") -> tuple[Game, list[str], list[str], int]:
    """The game of the largest filled sub-table `filled_lines` finds, with the defenders and
    attackers it left out and the number of empty cells; SolverError if no cell is filled."""
    count = np.asarray(table.count)
    empty = int((count == 0).sum())
    rows, cols = filled_lines(count)
    if not rows:
        raise SolverError(f"the payoff table has {empty} empty cell(s) and none filled; "
                          f"fill them with `arena matrix`")
    sub = _SubTable(table, rows, cols)
    dropped_d = [d for i, d in enumerate(table.defenders) if i not in rows]
    dropped_a = [a for j, a in enumerate(table.attackers) if j not in cols]
    return game_from_table(sub, metric), dropped_d, dropped_a, empty


class _SubTable:
    """The rows × columns of a payoff table (the fields game_from_table reads)."""

    def __init__(self, table, rows, cols):
        ix = np.ix_(rows, cols)
        self.defenders = [table.defenders[i] for i in rows]
        self.attackers = [table.attackers[j] for j in cols]
        for name in ("count", "mean", "std", "win_rate"):
            setattr(self, name, np.asarray(getattr(table, name))[ix])


def worst_attack(game: Game, defender_mixture: np.ndarray) -> tuple[int, float]:
    """The attacker column that hurts the defender mixture most, and the value it leaves."""
    col = defender_mixture @ game.M
    j = int(np.argmin(col))
    return j, float(col[j])


def worst_attacks(game: Game, defender_mixture: np.ndarray) -> tuple[list[int], float]:
    """Every attacker column tied for hurting the defender mixture most (ties up to float
    round-off of the table's scale), and the value they leave."""
    col = defender_mixture @ game.M
    low = float(col.min())
    tol = 1e-9 * max(1.0, float(np.abs(game.M).max()))
    return [int(j) for j in np.flatnonzero(col <= low + tol)], low


# -- training-seed families --------------------------------------------------------------------
def family_key(provenance: dict, ref: str) -> str:
    """The family a policy belongs to: provenance["family"] for the siblings `arena train …
    --seeds` stores; a policy without one is its own family of one, keyed by its ref."""
    fam = provenance.get("family") if isinstance(provenance, dict) else None
    return str(fam) if fam else ref


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile, e.g. 12.706 for df = 1 at 95 %."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


@dataclass
class FamilyTable:
    """A payoff table whose rows and columns are training-seed families.

    A cell's `mean` is the mean over its sibling cells of their means (each seed weighs the
    same, however many episodes it played), `ci95` the half-width of the between-seed 95 %
    interval, t_{n-1} · sd(sibling means) / √n with n = `seeds`, as seed-variance studies
    report (Henderson et al., "Deep Reinforcement Learning that Matters", AAAI 2018;
    Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021).
    `std` is the per-episode standard deviation of all the family's episodes pooled, `count`
    their number and `win_rate` the mean of the siblings' win rates. A cell of families of one
    keeps its own figures (`ci95`: 1.96 · std / √episodes, as an unaggregated table).
    """

    scenario: str
    defenders: list[str]  # row labels: a family name, or the ref of a family of one
    attackers: list[str]
    count: np.ndarray  # [D, A] episodes
    mean: np.ndarray
    std: np.ndarray
    ci95: np.ndarray
    win_rate: np.ndarray
    seeds: np.ndarray  # [D, A] sibling cells with at least one episode
    row_members: dict  # label → refs of the rows it aggregates
    col_members: dict

    def to_dict(self) -> dict:
        def lists(a):
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]

        return {"scenario": self.scenario, "defenders": list(self.defenders),
                "attackers": list(self.attackers), "count": self.count.astype(int).tolist(),
                "mean": lists(self.mean), "std": lists(self.std), "ci95": lists(self.ci95),
                "win_rate": lists(self.win_rate), "seeds": self.seeds.astype(int).tolist(),
                "families": {"defenders": self.row_members, "attackers": self.col_members}}


def _groups(refs: list[str], families: dict[str, str]) -> dict[str, list[int]]:
    """Label → indices, in the order each label first appears; a family whose name is also
    the ref of another row keeps the name with a `~family` suffix."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(refs):
        groups.setdefault(("family", families[r]) if r in families else ("ref", r), []).append(i)
    out = {}
    for (what, key), idx in groups.items():
        out[f"{key}~family" if what == "family" and key in refs else key] = idx
    return out


def aggregate_families(table, row_family: dict[str, str] | None = None,
                       col_family: dict[str, str] | None = None) -> FamilyTable:
    """Fold the rows (defenders) and columns (attackers) of a payoff table that share a
    training-seed family into one row or column each (see `FamilyTable`).

    `row_family` / `col_family` map a ref to its family name (`family_key`); refs not in them
    are families of one. Only the fields every table has are read (count, sum, sumsq, wins),
    so the table may be a `store.PayoffTable` or one assembled from it.
    """
    row_family, col_family = row_family or {}, col_family or {}
    count = np.asarray(table.count, np.float64)
    total, total_sq = np.asarray(table.sum, np.float64), np.asarray(table.sumsq, np.float64)
    wins = np.asarray(table.wins, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell_mean = np.where(count > 0, total / count, np.nan)
        cell_win = np.where(count > 0, wins / count, np.nan)
    rows = _groups(list(table.defenders), row_family)
    cols = _groups(list(table.attackers), col_family)
    D, A = len(rows), len(cols)
    out = {k: np.full((D, A), np.nan) for k in ("mean", "std", "ci95", "win_rate")}
    n_eps, n_seeds = np.zeros((D, A)), np.zeros((D, A))
    for r, ridx in enumerate(rows.values()):
        for c, cidx in enumerate(cols.values()):
            ix = np.ix_(ridx, cidx)
            n = count[ix].ravel()
            filled = n > 0
            k = int(filled.sum())
            n_seeds[r, c] = k
            N = float(n.sum())
            n_eps[r, c] = N
            if k == 0:
                continue
            S, Q = float(total[ix].sum()), float(total_sq[ix].sum())
            if N > 1:
                out["std"][r, c] = np.sqrt(max(Q - S * S / N, 0.0) / (N - 1))
            means = cell_mean[ix].ravel()[filled]
            out["mean"][r, c] = float(means.mean())
            out["win_rate"][r, c] = float(cell_win[ix].ravel()[filled].mean())
            if k > 1:
                out["ci95"][r, c] = t_quantile(k - 1) * float(means.std(ddof=1)) / np.sqrt(k)
            elif N > 1:
                out["ci95"][r, c] = 1.96 * out["std"][r, c] / np.sqrt(N)
    row_members = {label: [table.defenders[i] for i in idx] for label, idx in rows.items()}
    col_members = {label: [table.attackers[j] for j in idx] for label, idx in cols.items()}
    return FamilyTable(table.scenario, list(rows), list(cols), n_eps.astype(np.int64),
                       out["mean"], out["std"], out["ci95"], out["win_rate"],
                       n_seeds.astype(np.int64), row_members, col_members)


def family_map(lg, refs) -> dict[str, str]:
    """ref → family name for the refs whose provenance names a family (others are left out:
    families of one). Labels that are not league refs (`none`, `atla*`) are skipped."""
    out = {}
    for r in refs:
        if r == "none" or "*" in r:
            continue
        prov = lg.info(r).provenance
        if isinstance(prov, dict) and prov.get("family"):
            out[r] = str(prov["family"])
    return out


def by_family(table, row_family: dict[str, str], col_family: dict[str, str]):
    """`aggregate_families` when some family has two members or more; otherwise the table
    itself, so a league without families shows exactly what it always showed."""
    def real(fam, refs):
        keys = [fam[r] for r in refs if r in fam]
        return len(keys) != len(set(keys))

    if not (real(row_family, table.defenders) or real(col_family, table.attackers)):
        return table
    return aggregate_families(table, row_family, col_family)
