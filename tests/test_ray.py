"""`--ray`: the same records, runs and tables as one process, through a local Ray instance."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from click.testing import CliRunner  # noqa: E402

from cli import main  # noqa: E402
from policies import distributed  # noqa: E402
from policies.bench_matrix import synthetic_league  # noqa: E402
from store import League  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    info = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                    logging_level="ERROR")
    yield info.address_info["gcs_address"]
    distributed.disconnect()
    ray.shutdown()


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    return synthetic_league(tmp_path_factory.mktemp("ray") / "base.h5", "3m")


def _copy(src, tmp_path, name):
    dest = tmp_path / name
    shutil.copy(src, dest)
    return dest


def _opener(path):
    return lambda mode: League(path, mode=mode)


def _records(path):
    with League(path) as lg:
        recs = sorted(lg.matches("3m"), key=lambda r: (r.defender, r.attacker, r.seed))
    return [(r.defender, r.attacker, int(r.seed), r.returns, r.wins, r.lengths, r.attack_cost)
            for r in recs]


def _same_records(a, b):
    assert len(a) == len(b) and a
    for x, y in zip(a, b):
        assert x[:3] == y[:3]
        for u, v in zip(x[3:], y[3:]):
            np.testing.assert_array_equal(u, v)


DEFENDERS = ["untrained0", "untrained1"]
ATTACKERS = ["random", "fgsm", "pgd"]


def test_a_table_filled_through_ray_holds_the_records_of_one_process(cluster, league, tmp_path):
    from policies.evaluate import fill

    one, many = _copy(league, tmp_path, "one.h5"), _copy(league, tmp_path, "many.h5")
    fill(_opener(one), "3m", DEFENDERS, ATTACKERS, 4, seed=5, device="cpu", ray=False)
    res = fill(_opener(many), "3m", DEFENDERS, ATTACKERS, 4, seed=5, device="cpu", ray=True)
    assert len(res.cells) == 6 and res.episodes_run == 24
    _same_records(_records(one), _records(many))
    # a second pass finds every cell full and plays nothing
    assert not fill(_opener(many), "3m", DEFENDERS, ATTACKERS, 4, seed=5, device="cpu",
                    ray=True).cells


def _psro(path, monkeypatch, ray_on: bool):
    from solvers.psro_league import LeaguePSROConfig, run_league_psro

    monkeypatch.setitem(distributed._state, "connected", ray_on)
    cfg = LeaguePSROConfig(scenario="3m", defenders=["untrained0"], attackers=["none", "random"],
                           iterations=1, episodes=2, steps_per_oracle=300, seed=3, device="cpu")
    run_id, its, refs = run_league_psro(_opener(path), cfg, "r1")
    with League(path) as lg:
        weights = {n: lg.get(n).weights for n in ("r1_att0", "r1_def0")}
    return [(it.defenders, it.attackers, it.sigma_defender, it.sigma_attacker, it.value,
             it.gain_attacker, it.gain_defender) for it in its], refs, weights


def test_psro_through_ray_trains_and_solves_as_one_process(cluster, league, tmp_path,
                                                          monkeypatch):
    distributed.connect(cluster)
    one = _psro(_copy(league, tmp_path, "one.h5"), monkeypatch, False)
    events = []
    from solvers import psro_league

    original = psro_league.LeagueGame.responses

    def spy(self, *a):
        events.append(distributed.active())
        return original(self, *a)

    monkeypatch.setattr(psro_league.LeagueGame, "responses", spy)
    many = _psro(_copy(league, tmp_path, "many.h5"), monkeypatch, True)
    assert events == [True]  # the one iteration's responses went to Ray
    assert one[0] == many[0] and one[1] == many[1]
    for name in ("r1_att0", "r1_def0"):
        a, b = one[2][name], many[2][name]
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_cli_fills_through_the_cluster_it_is_given(cluster, league, tmp_path):
    from policies.evaluate import fill

    one, many = _copy(league, tmp_path, "one.h5"), _copy(league, tmp_path, "many.h5")
    fill(_opener(one), "3m", DEFENDERS, ATTACKERS, 4, seed=5, device="cpu", ray=False)
    res = _cli("--league", many, "--json", "--device", "cpu", "matrix", "--scenario", "3m",
               "--defenders", ",".join(DEFENDERS), "--attackers", ",".join(ATTACKERS),
               "--episodes", 4, "--seed", 5, "--by-seed", "--ray", cluster)
    assert res.exit_code == 0, res.output
    assert distributed.active()
    _same_records(_records(one), _records(many))


@pytest.mark.parametrize("address, needle", [("127.0.0.1:1", "cannot reach a Ray cluster"),
                                             ("nohost", "give auto, HOST:PORT"),
                                             ("ray://head", "give auto, HOST:PORT")])
def test_a_bad_address_is_one_line(cluster, league, address, needle):
    res = _cli("--league", league, "matrix", "--scenario", "3m", "--ray", address)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.output


def test_without_ray_installed_ray_is_one_line(league, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    res = _cli("--league", league, "matrix", "--scenario", "3m", "--ray", "auto")
    assert res.exit_code == 2
    assert res.output.strip() == ("error: --ray needs Ray, which is not installed: "
                                  "pip install -e .[ray]"), res.output


def test_training_cells_trained_as_ray_tasks_are_those_of_one_process(cluster, tmp_path,
                                                                       monkeypatch):
    from tests.test_training_surface import make_league, matrix, weights_of

    one = make_league(tmp_path / "one.h5")
    many = make_league(tmp_path / "many.h5")
    monkeypatch.setitem(distributed._state, "connected", False)
    a = matrix(one, "--seeds", "1")
    submitted = []
    submit = distributed.submit
    monkeypatch.setattr(distributed, "submit",
                        lambda *x, **k: submitted.append(x[1]["key"]) or submit(*x, **k))
    b = matrix(many, "--seeds", "1", "--ray", cluster)
    assert a["trained"] == b["trained"] == 2 and len(submitted) == 2
    assert weights_of(one) == weights_of(many)
    assert a["returns"] == b["returns"]
