"""`arena reproduce s001` on a tiny budget: every planned run is a stored training cell, the
report holds the headline table, the sweeps and the claims, and a rerun trains nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from solvers.reproduce_s001 import S001Config, attacker_name, plan, recipe_name
from solvers.reproduce_s001_report import reproduce
from store import League

TINY = dict(scenarios=("3m",), seeds=[0, 1], other_seeds=[0], steps={"3m": 240},
            test_every={"3m": 120}, freqs=(0.5,), kls=(), learners=("dop",), workers=1)


def test_the_plan_covers_the_paper_s_runs():
    cfg = S001Config()
    cells = plan(cfg)
    head = [c for c in cells if c[0] == "3m" and c[1] == recipe_name("dop", "3m")
            and c[2] in ("none",) + tuple(attacker_name(m, "3m") for m in
                                          ("tram_random", "tram_j", "tram_var"))]
    assert len(head) == 4 and all(c[4] == [0, 1, 2, 3, 4] for c in head)
    assert {c[3]["kl_max"] for c in head if c[3]} == {6.0}
    freqs = {c[3]["freq"] for c in cells if c[3] and c[3]["kl_max"] == 6.0 and c[0] == "3m"}
    assert freqs == {0.4, 0.6, 0.8, 1.0}
    zealot = {c[3]["agent"] for c in cells if c[0] == "2s3z" and c[3]}
    assert zealot == {2}  # 2s3z's agents 2-4 are zealots
    assert any(c[1] == recipe_name("mappo", "3m") for c in cells)


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    path = tmp_path_factory.mktemp("s001") / "l.h5"
    League.create(path)
    return path


def test_a_tiny_reproduction_writes_its_report_and_resumes(league, tmp_path):
    def opener(mode):
        return League(league, mode)

    cfg = S001Config(**TINY)
    report, data = reproduce(opener, cfg, tmp_path / "out")
    # 4 headline cells × 2 seeds, the f_A point for J and var × 1 seed
    assert data["trained"] == 4 * 2 + 2
    text = report.read_text()
    for needle in ("s001_dop.3m", "J-based", "variance-based", "f_A sweep", "log-likelihood",
                   "The paper's claims, checked"):
        assert needle in text, needle
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["trained"] == 10 and (tmp_path / "out" / "curves_dop_3m.png").exists()
    again, data = reproduce(opener, cfg, tmp_path / "again")
    assert data["trained"] == 0


def test_the_command_checks_its_scenarios(league):
    res = CliRunner().invoke(main, ["--league", str(league), "--quiet", "reproduce", "s001",
                                    "--scenarios", "nowhere"])
    assert res.exit_code != 0 and "unknown scenario nowhere" in res.output
