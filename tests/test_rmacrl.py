"""ℜ-MACRL (Xue et al., AAMAS 2022, Algorithm 1): PSRO over message attackers and message
filters. With exact look-up oracles on a toy message game it reaches the game's Nash value
(checked against scipy's LP, not ours); on the league, the message surface's oracles (msg_ppo,
msg_filter) plug into the same loop, fill the new row and column, and resume."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import linprog

from cli import main
from solvers.exploitability import SolverError
from solvers.psro import MatrixGame, PSROConfig, run_psro
from solvers.psro_league import LeaguePSROConfig, run_league_psro
from store import League
from tests.helpers import make_league, opener



def toy_message_game(k: int = 7, recon_loss: float = 0.15, false_alarm: float = 0.3) -> np.ndarray:
    """Team utility of a filter with detection threshold θ_d against a message corrupted with
    strength s_a (rows: θ in [0, 1], columns: s in [0, 1]). A corruption at or above θ is
    flagged and reconstructed (utility 1 − recon_loss); below it, it passes (1 − s). A low
    threshold also flags benign traffic: a false-alarm cost false_alarm·(1 − θ)."""
    theta = np.linspace(0.0, 1.0, k)[:, None]
    s = np.linspace(0.0, 1.0, k)[None, :]
    caught = (s >= theta) & (s > 0)
    return np.where(caught, 1.0 - recon_loss, 1.0 - s) - false_alarm * (1.0 - theta)


def scipy_value(H: np.ndarray) -> float:
    """max_x min_j x·H[:, j] by scipy's linprog (HiGHS), independent of solvers.lp."""
    m, n = H.shape
    c = np.r_[np.zeros(m), -1.0]  # maximise v
    A_ub = np.c_[-H.T, np.ones(n)]  # v − x·H[:, j] ≤ 0
    A_eq = np.r_[np.ones(m), 0.0][None]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n), A_eq=A_eq, b_eq=[1.0],
                  bounds=[(0, None)] * m + [(None, None)], method="highs")
    assert res.success
    return float(res.x[-1])


def test_rmacrl_with_exact_oracles_reaches_the_toy_message_games_nash_value():
    H = toy_message_game()
    # no pure saddle point: the equilibrium is mixed, PSRO has to grow both populations
    assert H.min(axis=1).max() < H.max(axis=0).min() - 1e-9
    its = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=50, tol=1e-9))
    assert its[-1].value == pytest.approx(scipy_value(H), abs=1e-6)
    assert max(its[-1].gain_attacker or 0, 0) + max(its[-1].gain_defender or 0, 0) < 1e-6
    # the restricted game grew: the equilibrium needs more than the starting pair
    assert len(its[-1].defenders) > 1 and len(its[-1].attackers) > 1


@pytest.fixture(scope="module")
def message_league(tmp_path_factory):
    path = tmp_path_factory.mktemp("rmacrl") / "l.h5"
    make_league(path, defenders=(("commnet", 0), ("qmix", 1)),
                attackers=(("msg_random", ["targets=1"]),))
    return path


def psro_cfg(**kw) -> LeaguePSROConfig:
    base = dict(scenario="pp7", defenders=["commnet0"], attackers=["none", "msg_random"],
                iterations=1, surface="message", attacker_oracle="msg_ppo",
                defender_oracle="msg_filter", episodes=4, steps_per_oracle=200, seed=3)
    base.update(kw)
    return LeaguePSROConfig(**base)


def test_league_rmacrl_adds_a_msg_ppo_column_and_a_filter_row(message_league, tmp_path):
    import shutil

    path = tmp_path / "l.h5"
    shutil.copy(message_league, path)
    run_id, its, refs = run_league_psro(opener(path), psro_cfg(), "rm")
    last, grew = its[-1], [it for it in its if it.new_attacker]
    assert len(grew) == 1
    with League(path, "r") as lg:
        att, dfd = lg.info(grew[0].new_attacker), lg.info(grew[0].new_defender)
        assert att.kind == "msg_ppo" and att.provenance["psro_run"] == "rm"
        assert dfd.kind == "msg_filter" and dfd.provenance["parent"] == lg.info("commnet0").ref
        table = lg.payoff("pp7", last.defenders, last.attackers)
        assert (table.count >= 4).all(), "the new row and column were filled"
        assert lg.info(refs[0]).kind == "mixture" and lg.info(refs[1]).kind == "mixture"
    assert len(last.defenders) == 2 and len(last.attackers) == 3
    assert grew[0].nash_conv >= 0
    # resumable like the observation surface's runs: the stored config (its surface
    # included) comes back, and a finished run trains nothing more
    _, more, _ = run_league_psro(opener(path), psro_cfg(), "rm", resume=True)
    assert more[-1].defenders == last.defenders and more[-1].attackers == last.attackers


def test_surface_and_oracles_must_agree():
    with pytest.raises(SolverError, match="does not act on the message surface"):
        psro_cfg(attacker_oracle="pa_ad").validate()
    with pytest.raises(SolverError, match="does not defend the observation surface"):
        psro_cfg(surface="observation", attacker_oracle="pa_ad").validate()


def test_cli_message_psro_errors_are_one_line(message_league, tmp_path):
    import shutil

    path = tmp_path / "l.h5"
    shutil.copy(message_league, path)
    runner = CliRunner()
    for args, needle in (
        (["--attacker-oracle", "pa_ad"], "does not act on the message surface"),
        (["--defenders", "qmix1"], "qmix"),
        (["--param", "omega=2"], "omega"),
    ):
        base = ["--league", str(path), "psro", "--surface", "message", "--scenario", "pp7",
                "--attackers", "msg_random", "--iterations", "1", "--steps-per-oracle", "50",
                "--episodes", "2"]
        if "--defenders" not in args:
            base += ["--defenders", "commnet0"]
        res = runner.invoke(main, base + args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2, res.output
        assert any(needle in ln for ln in lines), res.output
        assert "Traceback" not in res.output and len([ln for ln in lines if "rror" in ln]) == 1
