"""Meta-solvers: known games, an independent LP, OpenSpiel called directly, CSV and bootstrap."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
from scipy.optimize import linprog

from solvers.bootstrap import bootstrap, resample_tables
from solvers.exploitability import nash_conv
from solvers.matrix_io import format_csv, parse_csv, read_csv, write_csv
from solvers.meta import METHODS, MetaSolution, SolverError, solve

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])


def random_games(n: int = 30, seed: int = 7):
    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (1, 4), (5, 1), (2, 2), (3, 7), (8, 3), (6, 6), (12, 5), (4, 15), (10, 10)]
    for k in range(n):
        D, A = shapes[k % len(shapes)]
        scale = [1.0, 30.0, 0.01][k % 3]  # returns of very different magnitudes
        yield scale * rng.normal(size=(D, A)) + rng.normal()


def attacker_lp_value(M: np.ndarray) -> float:
    """The attacker's LP written on its own: min w s.t. (M q)_i <= w, sum q = 1, q >= 0."""
    D, A = M.shape
    c = np.r_[np.zeros(A), 1.0]
    res = linprog(
        c,
        A_ub=np.hstack([M, -np.ones((D, 1))]),
        b_ub=np.zeros(D),
        A_eq=np.r_[np.ones(A), 0.0][None],
        b_eq=[1.0],
        bounds=[(0, None)] * A + [(None, None)],
        method="highs-ipm",  # a different algorithm from the dual simplex used by solvers.lp
    )
    assert res.status == 0
    return float(res.x[-1])


# ----------------------------------------------------------------------------------------- LP


@pytest.mark.parametrize("backend", ["highs", "openspiel"])
def test_lp_rock_paper_scissors_is_uniform_with_value_zero(backend):
    sol = solve(RPS, "lp", backend=backend)
    np.testing.assert_allclose(sol.defender, np.full(3, 1 / 3), atol=1e-6)
    np.testing.assert_allclose(sol.attacker, np.full(3, 1 / 3), atol=1e-6)
    assert abs(sol.value) < 1e-8
    assert sol.support_defender == [0, 1, 2] and sol.support_attacker == [0, 1, 2]


def test_lp_matching_pennies():
    sol = solve(3.0 * PENNIES + 2.0, "lp")  # shifted and scaled: same mixtures, value 2
    np.testing.assert_allclose(sol.defender, [0.5, 0.5], atol=1e-8)
    np.testing.assert_allclose(sol.attacker, [0.5, 0.5], atol=1e-8)
    assert sol.value == pytest.approx(2.0, abs=1e-9)


def test_lp_puts_no_weight_on_a_dominated_strategy():
    # Row 2 is strictly dominated by row 0; column 2 is strictly dominated (for the attacker,
    # who minimises) by column 0.
    M = np.array([[1.0, -1.0, 3.0], [-1.0, 1.0, 2.0], [0.5, -1.5, 2.5]])
    sol = solve(M, "lp")
    assert sol.defender[2] < 1e-9 and sol.attacker[2] < 1e-9
    assert 2 not in sol.support_defender and 2 not in sol.support_attacker
    np.testing.assert_allclose(sol.defender, [0.5, 0.5, 0.0], atol=1e-8)
    np.testing.assert_allclose(sol.attacker, [0.5, 0.5, 0.0], atol=1e-8)


def test_lp_pure_saddle_point():
    # Entry (1, 2) = 4 is the minimum of its row and the maximum of its column.
    M = np.array([[3.0, 1.0, 2.0, 7.0], [6.0, 5.0, 4.0, 8.0], [2.0, 9.0, 0.0, 1.0]])
    sol = solve(M, "lp")
    np.testing.assert_allclose(sol.defender, [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(sol.attacker, [0, 0, 1, 0], atol=1e-9)
    assert sol.value == pytest.approx(4.0)
    assert sol.support_defender == [1] and sol.support_attacker == [2]


def test_lp_random_games_against_independent_lp_and_openspiel():
    import pyspiel
    from open_spiel.python.algorithms import lp_solver

    for M in random_games(30):
        scale = max(1.0, float(np.abs(M).max()))
        sol = solve(M, "lp")
        # The attacker's side solved as its own LP (not the dual of ours) gives the same value.
        assert sol.value == pytest.approx(attacker_lp_value(M), abs=1e-7 * scale)
        # The row LP's value is the worst case of p, the column LP's the best case of q.
        assert float(np.min(sol.defender @ M)) == pytest.approx(sol.value, abs=1e-7 * scale)
        assert float(np.max(M @ sol.attacker)) == pytest.approx(sol.value, abs=1e-7 * scale)
        assert sol.exploitability < 1e-6 * scale
        # OpenSpiel's LP solver, called directly, finds the same value from both sides.
        _p0, _p1, v0, v1 = lp_solver.solve_zero_sum_matrix_game(pyspiel.create_matrix_game(M, -M))
        assert v0 == pytest.approx(sol.value, abs=1e-5 * scale)
        assert v1 == pytest.approx(-sol.value, abs=1e-5 * scale)
        # And through our backend option, whose mixtures are also an equilibrium.
        os_sol = solve(M, "lp", backend="openspiel")
        assert os_sol.value == pytest.approx(sol.value, abs=1e-5 * scale)
        assert os_sol.exploitability < 1e-5 * scale


def test_lp_unknown_backend_and_missing_open_spiel(monkeypatch):
    with pytest.raises(SolverError, match="valid: highs, openspiel"):
        solve(RPS, "lp", backend="glpk")
    monkeypatch.setitem(sys.modules, "pyspiel", None)  # import pyspiel -> ImportError
    with pytest.raises(SolverError, match=r"open_spiel is not installed; pip install open_spiel"):
        solve(RPS, "lp", backend="openspiel")
    assert solve(RPS, "lp").value == pytest.approx(0.0, abs=1e-9)  # HiGHS needs no open_spiel


# ------------------------------------------------------------------------------ exploitability


def test_exploitability_of_nash_is_zero_and_of_other_pairs_positive():
    for M in random_games(10, seed=3):
        sol = solve(M, "lp")
        scale = max(1.0, float(np.abs(M).max()))
        assert nash_conv(M, sol.defender, sol.attacker) < 1e-6 * scale
    # Pure rock against uniform: the defender gains nothing by deviating (every row earns 0
    # against uniform), the attacker gains 1 by playing paper: NashConv = 0 + 1.
    assert nash_conv(RPS, [1, 0, 0], [1 / 3] * 3) == pytest.approx(1.0)
    # Pure rock against pure scissors: the attacker switches to paper (gain 1 - (-1) = 2).
    assert nash_conv(RPS, [1, 0, 0], [0, 0, 1]) == pytest.approx(2.0)
    M = np.array([[1.0, -1.0, 3.0], [-1.0, 1.0, 2.0], [0.5, -1.5, 2.5]])
    assert nash_conv(M, [0, 0, 1], [0, 0, 1]) > 0.1


def test_exploitability_rejects_a_non_mixture():
    with pytest.raises(SolverError, match="sums to"):
        nash_conv(RPS, [0.5, 0.5, 0.5], [1 / 3] * 3)
    with pytest.raises(SolverError, match="has 2 weights"):
        nash_conv(RPS, [0.5, 0.5], [1 / 3] * 3)


# -------------------------------------------------------------------------- replicator dynamics


def test_rd_matches_openspiel_called_directly():
    from open_spiel.python.algorithms import projected_replicator_dynamics as prd

    rng = np.random.default_rng(11)
    for D, A in [(3, 3), (4, 6), (5, 2)]:
        M = 10.0 * rng.normal(size=(D, A))
        kw = dict(prd_iterations=1500, prd_dt=5e-3, prd_gamma=1e-4)
        p_os, q_os = prd.projected_replicator_dynamics([M, -M], **kw)
        p, q = METHODS["rd"](M, iterations=1500, dt=5e-3, gamma=1e-4, normalise=False)
        np.testing.assert_allclose(p, p_os, atol=1e-12)
        np.testing.assert_allclose(q, q_os, atol=1e-12)
        # normalise=True is OpenSpiel's dynamics on (M - min) / (max - min).
        Mn = (M - M.min()) / (M.max() - M.min())
        p_os, q_os = prd.projected_replicator_dynamics(
            [Mn, -Mn], average_over_last_n_strategies=1, **kw
        )
        p, q = METHODS["rd"](M, iterations=1500, dt=5e-3, gamma=1e-4, average_last=1)
        np.testing.assert_allclose(p, p_os, atol=1e-12)
        np.testing.assert_allclose(q, q_os, atol=1e-12)


def test_rd_average_converges_near_equilibrium_from_a_skewed_start():
    start = ([0.7, 0.2, 0.1], [0.1, 0.1, 0.8])
    sol = solve(RPS, "rd", initial=start)
    np.testing.assert_allclose(sol.defender, np.full(3, 1 / 3), atol=0.04)
    np.testing.assert_allclose(sol.attacker, np.full(3, 1 / 3), atol=0.04)
    last = solve(RPS, "rd", initial=start, average_last=1)  # the last iterate keeps cycling
    assert last.exploitability > 5 * sol.exploitability
    # A biased RPS whose equilibrium is not uniform: the average approaches the LP solution.
    M = np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    rd, lp = solve(M, "rd", initial=start, iterations=30_000), solve(M, "lp")
    np.testing.assert_allclose(rd.defender, lp.defender, atol=0.02)
    np.testing.assert_allclose(rd.attacker, lp.attacker, atol=0.03)
    assert rd.exploitability < 0.1 * solve(M, "uniform").exploitability


def test_rd_rejects_bad_options():
    with pytest.raises(SolverError, match="unknown option.*prd_dt.*valid: iterations, dt, gamma"):
        solve(RPS, "rd", prd_dt=0.1)
    with pytest.raises(SolverError, match="dt > 0"):
        solve(RPS, "rd", dt=0.0)


# ------------------------------------------------------------------------------------ alpha-rank


def openspiel_marginals(pi: np.ndarray, D: int, A: int) -> tuple[np.ndarray, np.ndarray]:
    """Marginals of a joint-profile distribution, enumerated by OpenSpiel's own utility."""
    from open_spiel.python.egt import utils

    p, q = np.zeros(D), np.zeros(A)
    for profile_id, mass in enumerate(pi):
        i, j = utils.get_strat_profile_from_id(np.array([D, A]), profile_id)
        p[i] += mass
        q[j] += mass
    return p, q


def test_alpharank_matches_openspiel_called_directly():
    from open_spiel.python.egt import alpharank as os_alpharank

    rng = np.random.default_rng(5)
    for D, A in [(2, 2), (3, 4), (5, 3), (1, 4)]:
        M = rng.uniform(size=(D, A))
        for alpha, m in [(5.0, 20), (50.0, 50)]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                _, _, pi, _, _ = os_alpharank.compute([M, -M], m=m, alpha=alpha)
            p_os, q_os = openspiel_marginals(pi, D, A)
            p, q = METHODS["alpharank"](M, alpha=alpha, m=m, normalise=False)
            np.testing.assert_allclose(p, p_os, atol=1e-10)
            np.testing.assert_allclose(q, q_os, atol=1e-10)


def test_alpharank_ranks_a_strictly_dominant_strategy_first_without_warnings():
    rng = np.random.default_rng(2)
    M = 100.0 * rng.uniform(size=(4, 5))  # returns on a scale where raw alpha would overflow
    M[2] = M.max(axis=0) + 5.0  # defender 2 strictly dominates every other row
    M[:, 3] = M.min(axis=1) - 5.0  # attacker 3 strictly dominates (lowest return in each row)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow in OpenSpiel's exp() must not leak out
        sol = solve(M, "alpharank")
    assert int(np.argmax(sol.defender)) == 2 and sol.defender[2] > 0.5
    assert int(np.argmax(sol.attacker)) == 3 and sol.attacker[3] > 0.5


def test_alpharank_normalisation_makes_it_scale_free_and_guards_overflow():
    M = np.random.default_rng(4).normal(size=(3, 4))
    a = solve(M, "alpharank", alpha=30.0)
    b = solve(250.0 * M - 7.0, "alpharank", alpha=30.0)
    np.testing.assert_allclose(a.defender, b.defender, atol=1e-10)
    np.testing.assert_allclose(a.attacker, b.attacker, atol=1e-10)
    with pytest.raises(SolverError, match="overflows exp.*use_inf_alpha"):
        solve(250.0 * M, "alpharank", alpha=100.0, normalise=False)
    inf = solve(250.0 * M, "alpharank", use_inf_alpha=True, normalise=False)
    assert np.all(np.isfinite(inf.defender)) and inf.defender.sum() == pytest.approx(1.0)
    with pytest.raises(SolverError, match="12 joint profiles, above max_profiles=10"):
        solve(M, "alpharank", max_profiles=10)


# ------------------------------------------------------------------------- uniform and registry


def test_uniform():
    M = np.arange(12.0).reshape(3, 4)
    sol = solve(M, "uniform")
    np.testing.assert_allclose(sol.defender, np.full(3, 1 / 3))
    np.testing.assert_allclose(sol.attacker, np.full(4, 1 / 4))
    assert sol.value == pytest.approx(M.mean())
    # Against uniform columns the best row is row 2 (mean 9.5 vs 5.5); against uniform rows
    # the best column for the attacker is column 0 (mean 4 vs 5.5): 4 + 1.5.
    assert sol.exploitability == pytest.approx((9.5 - 5.5) + (5.5 - 4.0))


def test_registry_names_and_unknown_method_lists_the_valid_ones():
    assert list(METHODS) == ["lp", "rd", "alpharank", "uniform"]
    with pytest.raises(SolverError, match=r"unknown meta-solver 'nash'; valid: lp, rd, alpharank, uniform"):
        solve(RPS, "nash")


def test_solve_accepts_a_callable_and_result_is_json_ready():
    def pure_first(M):
        p, q = np.zeros(M.shape[0]), np.zeros(M.shape[1])
        p[0] = q[0] = 1.0
        return p, q

    sol = solve(RPS, pure_first)
    assert isinstance(sol, MetaSolution) and sol.method == "pure_first"
    assert sol.value == 0.0 and sol.support_defender == [0] and sol.support_attacker == [0]
    assert sol.exploitability == pytest.approx(2.0)  # each side gains 1 by a best response
    d = json.loads(json.dumps(sol.to_dict()))
    assert set(d) == {
        "method", "defender", "attacker", "value", "support_defender", "support_attacker", "exploitability"
    }


@pytest.mark.parametrize(
    "bad, msg",
    [(np.zeros(3), "2-D"), (np.zeros((0, 2)), "empty"), (np.array([[1.0, np.nan]]), "non-finite"),
     ([["a", "b"]], "not numeric")],
)
def test_solve_rejects_bad_tables(bad, msg):
    with pytest.raises(SolverError, match=msg):
        solve(bad, "lp")


# ------------------------------------------------------------------------------------------ CSV


def test_csv_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    M = rng.normal(size=(3, 4)) * 1e3
    M[0, 0] = 1 / 3
    defenders = ["qmix@v1", "qmix@v2", "vdn, robust@v1"]  # a comma survives quoting
    attackers = ["none", "fgsm@v1", "pgd@v2", "takeover@v3"]
    path = tmp_path / "table.csv"
    write_csv(path, defenders, attackers, M)
    d, a, M2 = read_csv(path)
    assert d == defenders and a == attackers
    assert np.array_equal(M, M2)


@pytest.mark.parametrize(
    "text, msg",
    [
        ("", "empty CSV"),
        ("\n\n", "empty CSV"),
        ("corner\nqmix@v1\n", "names no attacker"),
        ("corner,none,fgsm\n", "no defender rows"),
        ("corner,none,fgsm\nd1,1.0\n", "row 2 has 2 fields; the header has 3"),
        ("corner,none,fgsm\nd1,1.0,2.0\nd2,1.0,2.0,3.0\n", "row 3 has 4 fields"),
        ("corner,none,fgsm\nd1,1.0,abc\n", "row 2, column 'fgsm': 'abc' is not a number"),
        ("corner,none,fgsm\nd1,1.0,\n", "row 2, column 'fgsm': '' is not a number"),
        ("corner,none,fgsm\nd1,nan,2\n", "row 2, column 'none' is nan"),
        ("corner,none,fgsm\nd1,1,inf\n", "NaN/inf"),
        ("corner,none,none\nd1,1,2\n", "duplicate attacker name 'none'"),
        ("corner,none\nd1,1\nd1,2\n", "duplicate defender name 'd1'"),
    ],
)
def test_csv_errors_are_one_clear_line(text, msg):
    with pytest.raises(SolverError, match=msg) as info:
        parse_csv(text, "t.csv")
    assert "\n" not in str(info.value) and str(info.value).startswith("t.csv: ")


def test_csv_missing_file_and_bad_write(tmp_path):
    with pytest.raises(SolverError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(SolverError, match="2 defender and 1 attacker names"):
        format_csv(["a", "b"], ["x"], np.zeros((3, 1)))


# ------------------------------------------------------------------------------------ bootstrap


def test_resampling_has_the_requested_mean_and_standard_error():
    mean = np.array([[1.0, -2.0], [0.5, 3.0]])
    std = np.array([[2.0, 1.0], [0.0, 4.0]])
    count = np.array([[4, 100], [10, 16]])
    tables = resample_tables(mean, std, count.astype(float), 20000, np.random.default_rng(0))
    assert tables.shape == (20000, 2, 2)
    se = std / np.sqrt(count)
    np.testing.assert_allclose(tables.mean(axis=0), mean, atol=4 * se.max() / np.sqrt(20000) + 1e-12)
    np.testing.assert_allclose(tables.std(axis=0), se, rtol=0.03)


def test_bootstrap_intervals_contain_the_point_and_shrink_with_more_episodes():
    mean = np.array([[3.0, -1.0, 0.5], [-2.0, 2.0, 0.0], [0.0, 0.5, 1.0]])
    std = np.full_like(mean, 2.0)
    few = bootstrap(mean, std, np.full(mean.shape, 10), "lp", n=150, seed=1)
    many = bootstrap(mean, std, np.full(mean.shape, 1000), "lp", n=150, seed=1)
    for res in (few, many):
        assert res.samples == 150 and res.values.shape == (150,)
        assert res.value_lo <= res.point.value <= res.value_hi
        assert np.all(res.defender_lo <= res.point.defender + 1e-9)
        assert np.all(res.point.defender <= res.defender_hi + 1e-9)
        assert np.all(res.attacker_lo <= res.point.attacker + 1e-9)
        assert np.all(res.point.attacker <= res.attacker_hi + 1e-9)
    assert (many.value_hi - many.value_lo) < 0.3 * (few.value_hi - few.value_lo)
    assert np.all(many.defender_hi - many.defender_lo <= few.defender_hi - few.defender_lo + 1e-9)
    assert np.sum(many.defender_hi - many.defender_lo) < 0.3 * np.sum(few.defender_hi - few.defender_lo)
    json.dumps(few.to_dict())


def test_bootstrap_refuses_empty_cells_and_unknown_methods():
    mean, std = np.zeros((2, 2)), np.ones((2, 2))
    with pytest.raises(SolverError, match=r"cell \(row 1, column 0\) has count 0"):
        bootstrap(mean, std, np.array([[3, 3], [0, 3]]), "lp")
    with pytest.raises(SolverError, match="valid: lp, rd, alpharank, uniform"):
        bootstrap(mean, std, np.full((2, 2), 3), "nash")
    with pytest.raises(SolverError, match="finite, non-negative std"):
        bootstrap(mean, np.array([[1.0, np.nan], [1.0, 1.0]]), np.full((2, 2), 3), "lp")
    # Single-episode cells (std NaN in the league's tables) are held at their mean.
    res = bootstrap(
        np.array([[1.0, 2.0], [3.0, 4.0]]), np.full((2, 2), np.nan), np.ones((2, 2), int), "uniform", n=5
    )
    assert res.value_lo == res.value_hi == pytest.approx(2.5)
    np.testing.assert_allclose(res.defender_lo, [0.5, 0.5])
