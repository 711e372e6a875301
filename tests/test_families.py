"""Training-seed families in the payoff view, and PSRO's NashConv bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from solvers.exploitability import iteration_nash_conv, nash_conv_of_gains
from solvers.psro import MatrixGame, PSROConfig, run_psro
from solvers.tables import aggregate_families, by_family, game_from_table
from store import PayoffTable


def table_of(cells, defenders, attackers):
    """cells[i][j]: the list of episode returns of (defender i, attacker j); wins = return > 0."""
    D, A = len(defenders), len(attackers)
    count, s, sq, w = (np.zeros((D, A)) for _ in range(4))
    for i in range(D):
        for j in range(A):
            r = np.asarray(cells[i][j], float)
            count[i, j], s[i, j], sq[i, j], w[i, j] = len(r), r.sum(), (r**2).sum(), (r > 0).sum()
    return PayoffTable("3m", defenders, attackers, count.astype(np.int64), s, sq,
                       w.astype(np.int64))


def hand_table():
    # three seeds of family "q" (cell means 10, 12, 14 under no attack; 1, 2, 6 under fgsm),
    # seed 0 with twice the episodes of the others, and a lone "vdn"
    cells = [[[9, 11, 9, 11], [1, 1, 1, 1]],
             [[12, 12], [0, 4]],
             [[13, 15], [6, 6]],
             [[20, 18], [0, 0]]]
    return table_of(cells, ["q_s0@v1", "q_s1@v1", "q_s2@v1", "vdn@v1"], ["none", "fgsm@v1"])


FAMILY = {"q_s0@v1": "q", "q_s1@v1": "q", "q_s2@v1": "q"}


def test_family_row_is_the_mean_of_seed_means_with_a_between_seed_t_interval():
    agg = aggregate_families(hand_table(), FAMILY, {})
    assert agg.defenders == ["q", "vdn@v1"] and agg.attackers == ["none", "fgsm@v1"]
    assert agg.row_members["q"] == ["q_s0@v1", "q_s1@v1", "q_s2@v1"]
    # the mean of the seeds' means, not the episode-weighted mean (10·4+12·2+14·2)/8 = 11.5
    assert agg.mean[0, 0] == pytest.approx(12.0)
    assert agg.mean[0, 1] == pytest.approx(3.0)
    # t_{0.975, 2} = 4.3027; sd(10, 12, 14) = 2, sd(1, 2, 6) = sqrt(7)
    assert agg.ci95[0, 0] == pytest.approx(4.302653 * 2 / np.sqrt(3), rel=1e-5)
    assert agg.ci95[0, 1] == pytest.approx(4.302653 * np.sqrt(7) / np.sqrt(3), rel=1e-5)
    assert agg.seeds[0].tolist() == [3, 3] and agg.count[0].tolist() == [8, 8]
    # win rate: mean of the seeds' win rates (1, 1, 1) and (1, 0.5, 1)
    assert agg.win_rate[0, 1] == pytest.approx(2.5 / 3)
    # std: per-episode spread of all the family's episodes pooled
    pooled = np.array([9, 11, 9, 11, 12, 12, 13, 15], float)
    assert agg.std[0, 0] == pytest.approx(pooled.std(ddof=1))


def test_a_family_of_one_keeps_its_own_cell():
    t = hand_table()
    agg = aggregate_families(t, FAMILY, {})
    for k in ("mean", "std", "ci95", "win_rate"):
        np.testing.assert_allclose(getattr(agg, k)[1], getattr(t, k)[3])
    assert agg.count[1].tolist() == [2, 2] and agg.seeds[1].tolist() == [1, 1]


def test_without_families_the_table_is_unchanged():
    t = hand_table()
    assert by_family(t, {}, {}) is t
    assert by_family(t, {"vdn@v1": "vdn"}, {}) is t  # a family of one is no aggregation
    assert by_family(t, FAMILY, {}) is not t


def test_attacker_families_fold_columns_and_empty_siblings_are_skipped():
    cells = [[[5, 5], [1, 3], []]]
    t = table_of(cells, ["qmix@v1"], ["none", "atla_s0@v1", "atla_s1@v1"])
    agg = aggregate_families(t, {}, {"atla_s0@v1": "atla", "atla_s1@v1": "atla"})
    assert agg.attackers == ["none", "atla"]
    assert agg.seeds[0].tolist() == [1, 1] and agg.mean[0, 1] == pytest.approx(2.0)
    assert agg.ci95[0, 1] == pytest.approx(1.96 * np.sqrt(2) / np.sqrt(2))


def test_a_family_named_like_another_row_keeps_both():
    cells = [[[1]], [[2]], [[3]]]
    t = table_of(cells, ["q@v1", "q_s0@v1", "q_s1@v1"], ["none"])
    agg = aggregate_families(t, {"q_s0@v1": "q@v1", "q_s1@v1": "q@v1"}, {})
    assert agg.defenders == ["q@v1", "q@v1~family"]


def test_the_aggregated_table_is_a_game():
    game = game_from_table(aggregate_families(hand_table(), FAMILY, {}), "return")
    assert game.M.shape == (2, 2) and game.M[0, 0] == pytest.approx(12.0)
    d = aggregate_families(hand_table(), FAMILY, {}).to_dict()
    assert d["families"]["defenders"]["q"][0] == "q_s0@v1" and d["seeds"][0] == [3, 3]


# -- NashConv of a PSRO iteration -----------------------------------------------------------
@pytest.mark.parametrize("ga,gd", [(-2.099, 2.099), (2.099, -2.099), (1.0, 0.5), (-1.0, -0.5),
                                   (0.0, 0.0), (3.0, -0.0)])
def test_nash_conv_is_the_sum_of_positive_gains(ga, gd):
    nc = nash_conv_of_gains(ga, gd)
    assert nc >= 0
    assert nc == pytest.approx(max(ga, 0) + max(gd, 0))


def test_a_failed_oracle_no_longer_cancels_a_real_gain():
    old = {"gain_attacker": -2.099, "gain_defender": 2.099}  # a run recorded before the key
    assert iteration_nash_conv(old) == pytest.approx(2.099)
    assert iteration_nash_conv({"gain_attacker": None}) is None
    assert iteration_nash_conv({**old, "nash_conv": 1.5}) == 1.5


def test_psro_records_nash_conv_every_iteration():
    rng = np.random.default_rng(0)
    H = rng.normal(size=(6, 6))
    its = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=4))
    for it in its[:-1]:
        assert it.nash_conv >= 0
        assert it.nash_conv == pytest.approx(max(it.gain_attacker, 0) + max(it.gain_defender, 0))
    assert its[-1].nash_conv is None


def test_old_iterations_print_their_nash_conv():
    from commands.solve import _iteration_line

    line = _iteration_line({"iteration": 0, "defenders": ["a"], "attackers": ["b"], "value": 1.0,
                            "gain_attacker": -2.099, "gain_defender": 2.099,
                            "new_attacker": "x", "new_defender": "y"})
    assert "NashConv 2.099" in line and "gain att -2.099" in line
