"""`arena reproduce s004` end to end on a tiny league (an untrained qmix.3m, budgets of a few
hundred steps): every part of the report is produced, and a rerun trains nothing."""

from __future__ import annotations

import json

from policies.build import base_provenance
from policies.learners.train_defender import untrained_team
from solvers.reproduce_s004 import S004Config
from solvers.reproduce_s004_report import mean_curve, reproduce, steps_to
from store import League
from tests.helpers import opener


def _league(path):
    League.create(path)
    with League(path, "a") as lg:
        for name, algo, seed in (("qmix.3m", "qmix", 0), ("vdn.3m", "vdn", 1)):
            cfg, w = untrained_team(algo, "3m", seed)
            lg.add_policy(name, "defender", algo, "3m", cfg, w, base_provenance(seed=seed))
    return path


def test_reproduce_s004_tiny(tmp_path):
    path = _league(tmp_path / "l.h5")
    cfg = S004Config(scenarios=("3m",), seeds=[0, 1], steps={"3m": 300},
                     eval_every={"3m": 150}, team_steps=300, rounds=1, episodes=4)
    report, data = reproduce(opener(path), cfg, tmp_path / "out")
    text = report.read_text()
    for part in ("takeover_ppo", "takeover_dev", "Adversarial retraining", "Transfer", "Trends"):
        assert part in text, part
    res = data["scenarios"]["3m"]
    assert set(res["curves"]) == {"takeover_ppo", "takeover_dev"}
    assert all(len(c) >= 2 for by_seed in res["curves"].values() for c in by_seed.values())
    assert res["retrain"]["defenders"][1].startswith("s004_retrained.3m")
    assert res["transfer"]["defenders"] == ["qmix.3m@v1", "vdn.3m@v1"]
    assert res["trends"] and json.loads((tmp_path / "out" / "results.json").read_text())
    with League(path) as lg:
        before = len(lg.list())
    reproduce(opener(path), cfg, tmp_path / "out2")
    with League(path) as lg:
        assert len(lg.list()) == before  # every policy was found again: nothing trained


def test_curve_helpers():
    by_seed = {0: [(0, 4.0), (100, 3.0), (200, 2.0)], 1: [(0, 4.0), (110, 2.0), (190, 2.0)]}
    c = mean_curve(by_seed)
    assert [round(s) for s, _, _ in c] == [0, 105, 195]
    assert [m for _, m, _ in c] == [4.0, 2.5, 2.0]
    assert steps_to(by_seed[1], 2.5) == 110 and steps_to(by_seed[0], 1.0) == float("inf")


def test_quick_reads_the_starter_plays_and_trains_nothing(tmp_path):
    from click.testing import CliRunner

    from cli import main
    from store.starter import copy_starter_league

    path = copy_starter_league(tmp_path / "l.h5")
    with League(path) as lg:
        before = len(lg.list(all_versions=True))
        assert lg.info("takeover_dev.3m").kind == "takeover_dev"
    res = CliRunner().invoke(main, ["--league", str(path), "--json", "play", "qmix", "vs",
                                    "takeover_dev", "--scenario", "3m", "--episodes", "8"])
    assert res.exit_code == 0, res.output
    played = json.loads(res.output)
    res = CliRunner().invoke(main, ["--league", str(path), "--json", "reproduce", "s004",
                                    "--quick", "--episodes", "8", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)["scenarios"]["3m"]
    assert len(list(data["curves"]["takeover_dev"].values())[0]) > 2  # the shipped curve
    assert data["retrain"]["defenders"] == ["qmix.3m@v1", "qmix_tk.3m@v1"]
    # the shipped adversary hurts the shipped team: below its clean return
    assert played["return_mean"] < data["retrain"]["mean"][0][0]
    with League(path) as lg:
        # takeover_random is the one policy quick may add (a parameter-free attacker)
        assert len(lg.list(all_versions=True)) <= before + 1
