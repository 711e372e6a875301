"""The backdoor game on the command line: matrix, play, solve and psro with --surface backdoor,
on one tiny league (an untrained qmix expert, one marnet backdoor, two defences)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from policies.build import base_provenance
from policies.learners.train_defender import untrained_team
from store import League

EPISODES = "4"


def run(league, *args):
    return CliRunner().invoke(main, ["--league", str(league), "--quiet", *args],
                              catch_exceptions=False)


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    path = tmp_path_factory.mktemp("backdoor") / "l.h5"
    League.create(path)
    cfg, w = untrained_team("qmix", "stag10", 0)
    with League(path, "a") as lg:
        lg.add_policy("q", "defender", "qmix", "stag10", cfg, w, base_provenance(seed=0))
    # the smallest budgets the trainers take: these tests check the wiring, not the learning
    for args in (["train", "attacker", "mn", "--algo", "marnet", "--expert", "q", "--steps",
                  "800"],
                 ["add-policy", "ft", "--kind", "finetune", "--param", "steps=400"],
                 ["add-policy", "keep", "--kind", "as_delivered"]):
        res = run(path, *args)
        assert res.exit_code == 0, res.output
    return path


def matches(path) -> int:
    with League(path) as lg:
        return len(lg.matches("stag10"))


def test_matrix_shows_triggered_and_clean(league):
    res = run(league, "matrix", "--surface", "backdoor", "--scenario", "stag10", "--episodes",
              EPISODES)
    assert res.exit_code == 0, res.output
    assert "triggered / clean" in res.output
    rows = [line for line in res.output.splitlines() if line.startswith(("│ ft", "│ keep"))]
    assert len(rows) == 2 and all(" / " in r for r in rows), res.output
    res = run(league, "matrix", "--surface", "backdoor", "--scenario", "stag10", "--episodes",
              EPISODES, "--json")
    data = json.loads(res.output)
    assert {"triggered", "clean", "teams"} <= set(data)
    assert data["triggered"]["count"] == [[4], [4]] and data["clean"]["count"] == [[4], [4]]
    assert data["episodes_run"] == 0  # every cell was filled by the first run


def test_matrix_second_run_plays_nothing(league):
    args = ("matrix", "--surface", "backdoor", "--scenario", "stag10", "--episodes", EPISODES)
    run(league, *args)
    before = matches(league)
    res = run(league, *args, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["episodes_run"] == 0
    assert matches(league) == before


def test_matrix_backdoor_refuses_adaptive(league):
    res = run(league, "matrix", "--surface", "backdoor", "--adaptive", "atla")
    assert res.exit_code == 2 and len(res.output.splitlines()) == 1, res.output


def test_play_one_cell(league):
    res = run(league, "play", "keep", "vs", "mn", "--scenario", "stag10", "--episodes", "6",
              "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["team"].startswith("keep_vs_mn@")
    for side in ("triggered", "clean"):
        assert data[side]["episodes"] == 6 and 0.0 <= data[side]["win_rate"] <= 1.0
    res = run(league, "play", "keep", "vs", "mn", "--scenario", "stag10", "--episodes", "6")
    assert "already filled" in res.output and "triggered" in res.output


@pytest.mark.parametrize("defender,attacker", [("q", "keep"), ("keep", "none")])
def test_play_mixing_backdoor_and_plain_is_one_line(league, defender, attacker):
    res = run(league, "play", defender, "vs", attacker, "--scenario", "stag10")
    assert res.exit_code != 0
    lines = res.output.splitlines()
    assert len(lines) == 1 and "backdoor defence" in lines[0], res.output
    assert "Traceback" not in res.output and "unexpected" not in res.output


def test_plain_team_vs_backdoor_attacker_still_plays(league):
    res = run(league, "play", "q", "vs", "mn", "--episodes", "2", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["attacker"].startswith("mn@")


def test_solve_backdoor(league):
    run(league, "matrix", "--surface", "backdoor", "--scenario", "stag10", "--episodes", EPISODES)
    res = run(league, "solve", "--surface", "backdoor", "--scenario", "stag10")
    assert res.exit_code == 0, res.output
    assert "defender mixture" in res.output and "backdoor: triggered" in res.output
    data = json.loads(run(league, "solve", "--surface", "backdoor", "--scenario", "stag10",
                          "--json").output)
    assert sorted(d.split("@")[0] for d in data["defenders"]) == ["ft", "keep"]
    assert abs(sum(data["defender"]) - 1) < 1e-6


def test_psro_backdoor_adds_a_defence_and_an_attacker(league):
    with League(league) as lg:
        before = {i.ref for i in lg.list()}
    # keep only: every fine-tune applied costs seconds (its replay buffer), the rule of its
    # budget is checked on its own below
    res = run(league, "psro", "--surface", "backdoor", "--scenario", "stag10", "--defenders",
              "keep", "--attackers", "mn", "--iterations", "1", "--steps-per-oracle", "400",
              "--episodes", EPISODES, "--name", "bd")
    assert res.exit_code == 0, res.output
    with League(league) as lg:
        new = {i.ref: i for i in lg.list() if i.ref not in before}
    d, a = new["bd_def0@v1"], new["bd_att0@v1"]
    assert (d.kind, d.scenario, a.kind, a.scenario) == ("finetune", "any", "marnet", "stag10")
    assert a.provenance["repoisoned_from"].startswith("mn@")
    assert d.provenance["psro_run"] == "bd" and "trained_against" in a.provenance
    assert d.config["steps"] == 400  # no fine-tune in σ_D: the run's --steps-per-oracle
    # the run's mixtures are no players of the backdoor table: it still fills and solves
    res = run(league, "matrix", "--surface", "backdoor", "--scenario", "stag10", "--episodes",
              EPISODES, "--json")
    assert res.exit_code == 0, res.output
    assert [x.split("@")[0] for x in json.loads(res.output)["attackers"]] == ["mn"]


def test_defence_oracle_doubles_the_heaviest_finetune_budget(league):
    from types import SimpleNamespace

    from solvers.psro_backdoor import finetune_response
    from solvers.psro_league import LeaguePSROConfig

    def league_open(mode):
        return League(league, mode)

    with League(league) as lg:
        ft, keep = lg.resolve("ft"), lg.resolve("keep")
    game = SimpleNamespace(cfg=LeaguePSROConfig("stag10", [keep], ["mn"], seed=3,
                                                steps_per_oracle=50),
                           run_id="unit", open=league_open, say=lambda msg: None)
    ref = finetune_response(game, {ft: 0.5, keep: 0.5}, ["mn"], [1.0], 2)
    with League(league) as lg:
        info = lg.info(ref)
    assert ref.startswith("unit_def2@") and info.config["steps"] == 800
    assert info.config["seed"] == 5 and info.provenance["psro_iteration"] == 2
    ref = finetune_response(game, {ft: 0.0, keep: 1.0}, ["mn"], [1.0], 3)
    with League(league) as lg:
        assert lg.info(ref).config["steps"] == 50
