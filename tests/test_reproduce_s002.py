"""`arena reproduce s002` (ℜ-MACRL on our scenarios) with tiny budgets, and its arithmetic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from policies.errors import PolicyError
from solvers.reproduce_s002 import (ATTACKER_ROLES, DEFENDER_ROLES, S002Config, ScenarioResult,
                                     SeedResult, _utility)
from solvers.reproduce_s002_report import per_seed, summary, t_interval
from store import NO_ATTACK, League
from tests.test_reproduce import app


def _seed(seed: int, ret: dict) -> SeedResult:
    table = [[ret.get((d, a), 1.0) for a in ATTACKER_ROLES] for d in DEFENDER_ROLES]
    return SeedResult(seed, {}, list(DEFENDER_ROLES), list(ATTACKER_ROLES), table,
                      [[0.0] * len(ATTACKER_ROLES)] * 3, table, [[8] * len(ATTACKER_ROLES)] * 3)


def test_figures_are_shares_of_the_right_cells():
    s = _seed(0, {("team", "none"): 40.0, ("team", "noise"): 36.0, ("team", "mp"): 24.0,
                  ("filter", "mp"): 38.0, ("filter", "none"): 40.0,
                  ("filter", "mp_vs_filter"): 30.0, ("team", "mp2"): 10.0,
                  ("filter2", "mp2"): 20.0, ("team", "noise_all"): 20.0})
    r = ScenarioResult("pp7", "commnet", "return", [s], None, 0.0)
    f = per_seed(r, s)
    assert f["random_drop"] == pytest.approx(0.10) and f["attack_drop"] == pytest.approx(0.40)
    assert f["restored"] == pytest.approx(0.95) and f["exploit_drop"] == pytest.approx(0.25)
    assert f["attack2_drop"] == pytest.approx(0.75) and f["restored2"] == pytest.approx(0.5)
    assert f["reliance"] == pytest.approx(0.5)
    # a share of a non-positive clean return means nothing: not a number, not a figure
    bad = _seed(1, {("team", "none"): -2.0})
    assert math.isnan(per_seed(r, bad)["attack_drop"])


def test_seed_interval_is_students_t():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-5)
    assert t_interval([5.0]) == (5.0, None)
    s = [_seed(k, {("team", "none"): v}) for k, v in enumerate((30.0, 40.0))]
    out = summary(ScenarioResult("pp7", "commnet", "return", s, None, 0.0))
    assert out["clean"]["seeds"] == [30.0, 40.0] and out["clean"]["mean"] == 35.0


def test_table3_utility_and_its_interval():
    M = np.array([[1.0, 3.0], [2.0, 0.0]])
    se = np.array([[0.1, 0.2], [0.3, 0.4]])
    p, q = np.array([0.25, 0.75]), np.array([0.5, 0.5])
    value, half = _utility(p, M, se, q)
    assert value == pytest.approx(sum(p[i] * q[j] * M[i, j] for i in range(2) for j in range(2)))
    var = sum((p[i] * q[j] * se[i, j]) ** 2 for i in range(2) for j in range(2))
    assert half == pytest.approx(1.96 * var ** 0.5)


def test_config_errors_are_one_line():
    with pytest.raises(PolicyError, match="unknown scenario '3m'"):
        S002Config(scenarios=["3m"]).validate()
    with pytest.raises(PolicyError, match="pp7 only"):
        S002Config(scenarios=["pp7_p05"], seeds=[0], quick=True).validate()
    with pytest.raises(PolicyError, match="seeds must differ"):
        S002Config(seeds=[1, 1]).validate()


def test_tiny_reproduction_measures_every_cell_and_resumes(tmp_path):
    league = tmp_path / "league.h5"
    League.create(league)
    out = tmp_path / "out"
    args = ["--league", str(league), "--json", "reproduce", "s002", "--scenarios", "pp7",
            "--seeds", "3", "--team-steps", "200", "--attacker-steps", "200", "--filter-steps",
            "200", "--psro-iterations", "1", "--psro-steps", "200", "--episodes", "2",
            "--out", str(out)]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)["scenarios"]["pp7"]
    assert data["algo"] == "commnet" and data["metric"] == "return"
    with League(league) as lg:
        names = sorted(i.name for i in lg.list())
        table = lg.payoff("pp7", [f"s002_{r}.pp7.s3@v1" for r in DEFENDER_ROLES],
                          [NO_ATTACK if a == "none" else
                           f"s002_{a}@v1" if a.startswith("noise") else f"s002_{a}.pp7.s3@v1"
                           for a in ATTACKER_ROLES])
        trained = {i.name: i.provenance for i in lg.list()}
    for role in ("team", "mp", "filter", "mp_vs_filter", "mp2", "filter2"):
        assert f"s002_{role}.pp7.s3" in names
    # every cell of the seed's message table was played, and the summary reads those cells
    assert (table.count == 2).all()
    assert data["summary"]["clean"]["seeds"] == [pytest.approx(table.mean[0, 0])]
    assert data["summary"]["attacked"]["seeds"] == [pytest.approx(table.mean[0, 2])]
    # the attacker of (d) was trained against the filter, the filter against mp and noise
    assert trained["s002_mp_vs_filter.pp7.s3"]["trained_against"] == "s002_filter.pp7.s3@v1"
    assert trained["s002_mp2.pp7.s3"]["trained_against"] == "s002_team.pp7.s3@v1"
    t3 = data["table3"]
    assert t3["run"] == "s002_rmacrl_pp7_s3" and len(t3["single"]["uniform"]) == 2
    text = (out / "report.md").read_text()
    assert "## pp7: commnet (team return)" in text and "Table 3 (e)" in text
    assert (out / "curves_pp7.png").stat().st_size > 0
    # a second run trains nothing and reads the same cells
    again = json.loads(CliRunner().invoke(app, args, catch_exceptions=False).output)
    with League(league) as lg:
        assert sorted(i.name for i in lg.list()) == names
    assert again["scenarios"]["pp7"]["summary"] == data["summary"]


def test_the_scout_map_trains_ndq_and_reports_the_no_message_bound(tmp_path):
    league = tmp_path / "league.h5"
    League.create(league)
    args = ["--league", str(league), "--json", "reproduce", "s002", "--scenarios",
            "1o_2m_scout", "--seeds", "0", "--team-steps", "200", "--attacker-steps", "200",
            "--filter-steps", "200", "--psro-iterations", "0", "--episodes", "2",
            "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)["scenarios"]["1o_2m_scout"]
    assert data["algo"] == "ndq" and data["metric"] == "win"
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Without messages a team wins at most about 51%" in text


def test_quick_needs_the_shipped_policies(tmp_path):
    league = tmp_path / "league.h5"
    League.create(league)
    res = CliRunner().invoke(app, ["--league", str(league), "reproduce", "s002", "--quick",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "--quick needs the shipped commnet on pp7" in str(res.exception or res.output)


def test_quick_reads_the_shipped_policies_and_trains_nothing(tmp_path):
    from store.starter import copy_starter_league

    league = tmp_path / "league.h5"
    copy_starter_league(league)
    with League(league) as lg:
        before = sorted(i.ref for i in lg.list(all_versions=True))
    res = CliRunner().invoke(app, ["--league", str(league), "--json", "reproduce", "s002",
                                   "--quick", "--episodes", "4", "--out", str(tmp_path / "o")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)["scenarios"]["pp7"]
    assert data["table3"]["run"] == "rmacrl_pp7"
    assert all(math.isfinite(data["summary"][k]["mean"]) for k in ("clean", "attacked", "filtered"))
    with League(league) as lg:
        assert sorted(i.ref for i in lg.list(all_versions=True)) == before
    assert "commnet.pp7@v1" in (tmp_path / "o" / "report.md").read_text()
