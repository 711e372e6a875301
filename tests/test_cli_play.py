"""play, matrix, bench and train on bad input: one line on stderr, exit code 2, before any work;
the table's exports and the words the commands print."""

from __future__ import annotations

import csv
import io
import json
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from policies.errors import PolicyError
from store import League
from tests.helpers import make_league

BIG = str(10**12)


def run(args, league=None):
    full = (["--league", str(league)] if league else []) + list(args)
    return CliRunner().invoke(main, full, catch_exceptions=False)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()  # not even a blank line beside the error
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "unexpected" not in lines[0] and "Traceback" not in res.output, lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def league(tmp_path):
    return make_league(tmp_path / "l.h5")


def nothing_recorded(path):
    with League(path) as lg:
        return lg.matches("pp7") == []


# -- 4. bad values: one line before any work ----------------------------------------------------

@pytest.mark.parametrize("args,needles", [
    (["play", "qmix0", "vs", "fgsm", "--episodes", "0"], ["--episodes", "0"]),
    (["play", "qmix0", "vs", "fgsm", "--episodes", "-3"], ["--episodes"]),
    (["matrix", "--episodes", "0"], ["--episodes"]),
    (["bench", "matrix", "--episodes", "-1"], ["--episodes"]),
    (["play", "qmix0", "vs", "fgsm", "--seed", "-1"], ["--seed"]),
    (["play", "qmix0", "vs", "fgsm", "--seed", str(2**63)], ["--seed"]),
    (["matrix", "--seed", str(2**63)], ["--seed"]),
    (["matrix", "--seed", "-5"], ["--seed"]),
    (["train", "defender", "t", "--scenario", "pp7", "--seed", "-1"], ["--seed"]),
    (["train", "attacker", "t", "--against", "qmix0", "--seed", str(2**64)], ["--seed"]),
    (["bench", "env", "--batch", "x"], ["--batch", "'x'"]),
    (["bench", "env", "--batch", "1,0"], ["--batch", "at least 1"]),
    (["bench", "env", "--batch", ","], ["--batch"]),
    (["bench", "env", "--scenario", "", "--batch", "1"], ["--scenario", "empty"]),
    (["bench", "env", "--scenario", "nope", "--batch", "1"], ["--scenario", "nope"]),
    (["matrix", "--scenario", ""], ["--scenario", "empty"]),
    (["matrix", "--scenario", "  "], ["--scenario", "empty"]),
    (["play", "qmix0", "vs", "fgsm", "--scenario", ""], ["--scenario", "empty"]),
    (["bench", "matrix", "--scenario", ""], ["--scenario", "empty"]),
    (["train", "defender", "t", "--scenario", ""], ["--scenario", "empty"]),
    (["train", "attacker", "t", "--against", "qmix0", "--scenario", ""], ["--scenario", "empty"]),
    (["matrix", "--plot", "/nonexistent/dir/x.png"], ["--plot", "/nonexistent/dir", "does not exist"]),
    (["demo", "--plot", "/nonexistent/dir/x.png"], ["--plot", "does not exist"]),
])
def test_bad_values_are_one_line_and_nothing_runs(league, args, needles):
    one_line_error(run(args, league), *needles)
    assert nothing_recorded(league)


def test_plot_into_a_read_only_directory_is_refused_before_the_table_is_filled(league, tmp_path,
                                                                              monkeypatch):
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    # a read-only directory, also for a user (root) whom chmod would not stop
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(ro) else real(p, mode))
    one_line_error(run(["matrix", "--episodes", "1", "--plot", str(ro / "x.png")], league),
                   "--plot", "not writable")
    assert nothing_recorded(league)


@pytest.mark.parametrize("args", [
    ["play", "qmix0", "vs", "fgsm", "--episodes", BIG],
    ["play", "qmix0", "vs", "fgsm", "--scenario", "pp7", "--episodes", BIG],
    ["matrix", "--episodes", BIG],
    ["bench", "matrix", "--scenario", "pp7", "--episodes", BIG],
    ["bench", "env", "--scenario", "pp7", "--batch", f"1,{BIG}"],
])
def test_more_episodes_than_memory_allows_names_the_largest_feasible_value(league, args):
    from arena.payoff import max_episodes

    line = one_line_error(run(args, league), "largest feasible value")
    cap = max_episodes("pp7")
    feasible = int(line.split("largest feasible value is ")[1].split()[0].rstrip(".;)'").replace(",", ""))
    assert 1 <= feasible <= cap
    if args[0] == "matrix":  # 2 defenders × 4 columns share one batch
        assert feasible == cap // 8
    assert nothing_recorded(league)


def test_the_largest_feasible_value_is_accepted(league, monkeypatch):
    """The cap is a bound on one batch, not a guess that rejects what fits."""
    import arena.payoff as pay

    monkeypatch.setattr(pay, "memory_budget", lambda device="cpu": 8 * 3 * pay.episode_bytes("pp7"))
    one_line_error(run(["--quiet", "matrix", "--episodes", "4"], league), "largest feasible value is 3")
    res = run(["--quiet", "matrix", "--episodes", "3", "--attackers", "none,random,fgsm,pgd"], league)
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("cmd", ["defender", "attacker"])
@pytest.mark.parametrize("name", ["x/y", "", "..", "a b"])
def test_invalid_policy_names_are_refused_before_training(league, monkeypatch, cmd, name):
    def never(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr("policies.learners.train_defender.train_defender", never)
    monkeypatch.setattr("policies.observation.train_attacker.train_attacker", never)
    args = ["train", cmd, name] + (["--scenario", "pp7", "--steps", "10"] if cmd == "defender"
                                   else ["--against", "qmix0", "--steps", "10"])
    one_line_error(run(args, league), "invalid policy name")


# -- 5. the error line stands alone ---------------------------------------------------------------

def test_a_training_error_clears_the_progress_bar(league, monkeypatch):
    """On a terminal the training bar stays drawn when training ends; when it fails, it goes."""
    import re

    from rich.console import Console
    from rich.progress import Progress

    def failing(cfg, on_progress=None, should_stop=None):
        on_progress({"steps": 5, "epsilon": 0.5, "loss": 1.0})
        raise PolicyError("the learner diverged")

    kept = []
    real_stop = Progress.stop

    def stop(self):
        kept.append(not self.live.transient)
        real_stop(self)

    monkeypatch.setattr("policies.learners.train_defender.train_defender", failing)
    monkeypatch.setattr("commands.common.stderr_console",
                        lambda: Console(stderr=True, force_terminal=True, width=100))
    monkeypatch.setattr(Progress, "stop", stop)
    res = run(["train", "defender", "t", "--scenario", "pp7", "--steps", "10"], league)
    assert res.exit_code == 2 and kept == [False]
    visible = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", res.output).replace("\r", "\n")
    assert [ln for ln in visible.splitlines() if ln.strip()][-1] == "error: the learner diverged"


def test_no_blank_line_before_an_error_raised_while_a_bar_could_run(league):
    """Off a terminal rich would leave a blank line where a bar was: no bar there at all."""
    res = run(["play", "qmix0", "vs", "fgsm", "--episodes", BIG], league)
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, repr(res.output)


def to_stderr(message, category, filename, lineno, file=None, line=None):
    """What a terminal shows: the warning written to stderr, not collected by pytest."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def test_warnings_before_an_error_are_not_printed(league, monkeypatch):
    def noisy(*a, **k):
        warnings.warn("Detected pickle protocol 4 in the checkpoint file", UserWarning)
        raise PolicyError("qmix0@v1: something is wrong")

    monkeypatch.setattr("policies.evaluate.build_lineup", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", to_stderr)
        one_line_error(run(["play", "qmix0", "vs", "fgsm"], league), "something is wrong")


def test_warnings_of_a_command_that_succeeds_are_still_shown(league, monkeypatch):
    import policies.evaluate as ev

    real = ev.play_and_record

    def noisy(*a, **k):
        warnings.warn("a harmless warning", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr("policies.evaluate.play_and_record", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", to_stderr)
        res = run(["--quiet", "play", "qmix0", "vs", "fgsm", "--episodes", "1"], league)
    assert res.exit_code == 0 and "a harmless warning" in res.output


# -- 6. metric, exports, progress and words -------------------------------------------------------

def test_matrix_shows_the_team_return_by_default_and_win_rate_on_request(league):
    table = json.loads(run(["--quiet", "matrix", "--episodes", "2", "--json"], league).output)
    assert table["metric"] == "return"
    means = run(["--quiet", "matrix", "--episodes", "2", "--csv"], league).output
    wins = run(["--quiet", "matrix", "--episodes", "2", "--csv", "--metric", "win"], league).output
    with League(league) as lg:
        t = lg.payoff("pp7", table["defenders"], table["attackers"])
    got = np.array([[float(x) for x in row[1:]] for row in list(csv.reader(io.StringIO(means)))[1:]])
    np.testing.assert_allclose(got, t.mean, atol=1e-4)
    got = np.array([[float(x) for x in row[1:]] for row in list(csv.reader(io.StringIO(wins)))[1:]])
    np.testing.assert_allclose(got, t.win_rate, atol=1e-4)
    human = run(["matrix", "--episodes", "2"], league).output
    assert "%" in human and "±" in human  # the table keeps both win rate and return


def test_matrix_exports_every_cell(league):
    out = run(["--quiet", "matrix", "--episodes", "3", "--format", "csv"], league).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8 and list(rows[0]) == ["defender", "attacker", "mean", "std", "ci95",
                                                "episodes", "win_rate"]
    with League(league) as lg:
        t = lg.payoff("pp7", [r["defender"] for r in rows[::4]], [r["attacker"] for r in rows[:4]])
    for k, r in enumerate(rows):
        i, j = divmod(k, 4)
        assert (r["defender"], r["attacker"]) == (t.defenders[i], t.attackers[j])
        assert int(r["episodes"]) == 3
        for col, arr in (("mean", t.mean), ("std", t.std), ("ci95", t.ci95), ("win_rate", t.win_rate)):
            assert float(r[col]) == pytest.approx(arr[i, j], abs=1e-4)
    md = run(["--quiet", "matrix", "--episodes", "3", "--format", "markdown"], league).output
    lines = md.strip().splitlines()
    assert lines[0].startswith("| defender | attacker | mean") and len(lines) == 2 + 8
    tex = run(["--quiet", "matrix", "--episodes", "3", "--format", "latex"], league).output
    assert tex.startswith(r"\begin{tabular}") and tex.count(r" \\") == 1 + 8
    assert r"qmix0@v1 & none" in tex and r"95\% CI" in tex


def test_bench_commands_draw_a_progress_bar(league, monkeypatch):
    import arena.bench
    import policies.bench_matrix

    phases = []
    real_env, real_matrix = arena.bench.bench_env, policies.bench_matrix.bench_matrix_anywhere

    def env(*a, on_size=None, **k):
        phases.append(("env", on_size is not None))
        return real_env(*a, on_size=on_size, **k)

    def matrix(*a, on_phase=None, **k):
        phases.append(("matrix", on_phase is not None))
        return real_matrix(*a, on_phase=on_phase, **k)

    monkeypatch.setattr(arena.bench, "bench_env", env)
    monkeypatch.setattr(policies.bench_matrix, "bench_matrix_anywhere", matrix)
    res = run(["bench", "env", "--scenario", "pp7", "--batch", "1,4", "--steps", "3"], league)
    assert res.exit_code == 0, res.output
    res = run(["bench", "matrix", "--scenario", "pp7", "--episodes", "1"], league)
    assert res.exit_code == 0, res.output
    assert phases == [("env", True), ("matrix", True)]


def test_train_attacker_summary_is_in_words(league, monkeypatch):
    from types import SimpleNamespace

    def fake(cfg, victims, weights, on_progress=None, should_stop=None):
        on_progress({"steps": 10})
        return SimpleNamespace(
            partial=False, config={"algo": "pa_ad"}, weights={"w": np.zeros(2, np.float32)},
            provenance={"steps": 64, "final_attacked_return": 3.214, "final_attacked_win": 0.0,
                        "final_clean_return": 12.5, "final_clean_win": 0.75,
                        "victim_weights": [1.0]})

    monkeypatch.setattr("policies.observation.train_attacker.train_attacker", fake)
    res = run(["--quiet", "train", "attacker", "pa", "--against", "qmix0", "--steps", "64"], league)
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert "victim return under attack 3.21" in line and "victim win rate under attack 0%" in line
    assert "without attack 12.50" in line and "final_" not in line and "victim_weights" not in line
