"""PSRO's loop on synthetic games whose best responses are exact look-ups (no RL)."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from solvers.meta import solve
from solvers.psro import MatrixGame, PSROConfig, run_psro
from store import League


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psro_with_exact_oracles_reaches_the_hidden_nash_value(seed):
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(40, 30))
    its = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=100, tol=1e-9))
    last = its[-1]
    assert abs(last.value_after - solve(H).value) < 1e-6
    assert last.gain_attacker < 1e-9 and last.gain_defender < 1e-9
    # far fewer strategies than the full game were needed
    assert len(last.defenders) < 40 and len(its) < 70


def test_gains_are_the_exploitability_of_the_restricted_solution():
    H = np.random.default_rng(3).normal(size=(12, 12))
    its = run_psro(MatrixGame(H), ["d0", "d1"], ["a0"], PSROConfig(iterations=4))
    for it in its[:-1]:
        rows = [int(d[1:]) for d in it.defenders]
        cols = [int(a[1:]) for a in it.attackers]
        p, q = np.array(it.sigma_defender), np.array(it.sigma_attacker)
        br_a = (p @ H[rows]).min()  # exact best responses in the whole game
        br_d = (H[:, cols] @ q).max()
        assert it.gain_attacker == pytest.approx(it.value - br_a, abs=1e-9)
        assert it.gain_defender == pytest.approx(br_d - it.value, abs=1e-9)
        assert it.gain_attacker >= -1e-9 and it.gain_defender >= -1e-9


def test_zero_iterations_is_a_single_solve_of_the_degenerate_league():
    H = np.array([[3.0, 1.0], [0.0, 2.0]])
    its = run_psro(MatrixGame(H), ["d0"], ["a1"], PSROConfig(iterations=0))
    assert len(its) == 1 and its[0].value == 1.0 and its[0].new_attacker is None


def test_resume_continues_where_the_history_ends():
    H = np.random.default_rng(5).normal(size=(25, 25))
    full = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=8))
    part = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=3))[:3]
    resumed = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=8),
                       history=[vars(p) for p in part])
    assert [r.value for r in resumed] == pytest.approx([r.value for r in full])
    assert resumed[-1].defenders == full[-1].defenders


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from solvers.psro import MatrixGame, PSROConfig, as_record, run_psro
    from store import League

    path, run_id, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    H = np.random.default_rng(7).normal(size=(30, 30))
    with League(path, "r") as lg:
        history = lg.get_run(run_id).iterations

    def record(it):
        with League(path, "a") as lg:
            lg.append_iteration(run_id, as_record(it))
        if it.iteration == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=10), history, record)
""")


def test_a_killed_run_resumes_from_its_last_recorded_iteration(tmp_path):
    path = tmp_path / "l.h5"
    League.create(path)
    with League(path, "a") as lg:
        run_id = lg.create_run({"synthetic": True}, "r1")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    first = subprocess.run([sys.executable, "-c", SCRIPT, str(path), run_id, "4"], env=env)
    assert first.returncode == -signal.SIGKILL
    with League(path) as lg:
        assert len(lg.get_run(run_id).iterations) == 5
    second = subprocess.run([sys.executable, "-c", SCRIPT, str(path), run_id, "-1"], env=env)
    assert second.returncode == 0
    with League(path) as lg:
        its = lg.get_run(run_id).iterations
    H = np.random.default_rng(7).normal(size=(30, 30))
    straight = run_psro(MatrixGame(H), ["d0"], ["a0"], PSROConfig(iterations=10))
    assert [i["iteration"] for i in its] == list(range(11))
    assert [i["value"] for i in its] == pytest.approx([s.value for s in straight])
