"""The training surface end to end: recipes × training-time attackers filled by training
(tiny budgets on spread), stored teams with their cell in the provenance, resumption after a
kill, parallel processes equal to one, `solve --surface training`, the clean errors, and
f_A = 0 training bit for bit as clean training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from store import League

RECIPE = ["--param", "steps=300", "--param", "envs=4", "--param", "test_every=300",
          "--param", "hidden=16"]


def run(league, *args):
    return CliRunner().invoke(main, ["--league", str(league), "--quiet", *args],
                              catch_exceptions=False)


def make_league(path: Path, algo: str = "dop") -> Path:
    League.create(path)
    for args in (["add-policy", algo, "--kind", "recipe", "--param", f"algo={algo}", *RECIPE],
                 ["add-policy", "tj", "--kind", "tram_j", "--param", "agent=1"]):
        res = run(path, *args)
        assert res.exit_code == 0, res.output
    return path


def matrix(path, *extra):
    res = run(path, "--json", "matrix", "--surface", "training", "--scenario", "spread",
              "--episodes", "4", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def weights_of(path) -> dict:
    with League(path) as lg:
        return {i.name: lg.info(i.ref).sha256 for i in lg.list(role="defender")
                if "training_cell" in i.provenance}


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    path = make_league(tmp_path_factory.mktemp("training") / "l.h5")
    return path, matrix(path, "--seeds", "2")


def test_every_cell_trains_its_seeds_and_stores_them(filled):
    path, data = filled
    assert data["recipes"] == ["dop@v1"] and data["attackers"] == ["none", "tj@v1"]
    assert data["trained"] == 4
    assert data["seeds_filled"] == [[2, 2]]
    with League(path) as lg:
        teams = {i.name: i for i in lg.list(role="defender") if i.kind == "dop"}
    assert sorted(teams) == ["dop_vs_none.s0", "dop_vs_none.s1", "dop_vs_tj.s0", "dop_vs_tj.s1"]
    cell = teams["dop_vs_tj.s1"].provenance
    assert cell["training_cell"] == {"recipe": "dop@v1", "attacker": "tj@v1", "seed": 1}
    assert cell["training_attack"]["method"] in ("j", "tram_j")
    assert cell["curve"][-1]["steps"] >= 300
    # the cell is the mean of its seeds' clean returns
    r = np.array(data["returns"], dtype=float)
    assert np.allclose(np.array(data["mean"], dtype=float), r.mean(-1))


def test_a_second_fill_trains_nothing_and_gives_the_same_table(filled):
    path, data = filled
    again = matrix(path, "--seeds", "2")
    assert again["trained"] == 0 and again["returns"] == data["returns"]


def test_solve_reads_the_training_table(filled):
    path, data = filled
    res = run(path, "--json", "solve", "--surface", "training", "--scenario", "spread")
    assert res.exit_code == 0, res.output
    sol = json.loads(res.output)
    # one recipe: the attacker's best column is the lowest mean
    assert sol["value"] == pytest.approx(min(data["mean"][0]), abs=1e-6)


def test_training_players_stay_out_of_the_other_tables(filled):
    path, _ = filled
    res = run(path, "play", "dop_vs_none.s0", "vs", "tj", "--scenario", "spread",
              "--episodes", "2")
    assert res.exit_code != 0 and "training-time attacker" in res.output
    res = run(path, "play", "dop", "vs", "none", "--scenario", "spread", "--episodes", "2")
    assert res.exit_code != 0 and "learner recipe" in res.output
    from policies.evaluate import default_players

    with League(path) as lg:
        d, a = default_players(lg, "spread")
    assert d == [] and a == ["none"]


def test_an_attacker_for_a_missing_agent_is_one_line(tmp_path):
    path = make_league(tmp_path / "l.h5")
    assert run(path, "add-policy", "far", "--kind", "tram_var", "--param",
               "agent=7").exit_code == 0
    res = run(path, "matrix", "--surface", "training", "--scenario", "spread",
              "--attackers", "far", "--seeds", "1")
    assert res.exit_code != 0 and "agent 7" in res.output and "Traceback" not in res.output


def test_parallel_processes_train_what_one_process_trains(filled, tmp_path):
    path, _ = filled
    other = make_league(tmp_path / "l.h5")
    matrix(other, "--seeds", "2", "--jobs", "2")
    assert weights_of(other) == weights_of(path)


def test_a_killed_fill_resumes_where_it_stopped(filled, tmp_path):
    path, _ = filled
    league = make_league(tmp_path / "l.h5")
    cmd = [sys.executable, "-c", "from cli import main; main()", "--league", str(league),
           "--quiet", "matrix", "--surface", "training", "--scenario", "spread", "--episodes",
           "4", "--seeds", "2"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                if len(weights_of(league)) >= 1:
                    break
            except Exception:  # the writer holds the file this instant
                pass
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    stored = weights_of(league)
    assert 1 <= len(stored) < 4, stored
    data = matrix(league, "--seeds", "2")
    assert data["trained"] == 4 - len(stored)
    assert weights_of(league) == weights_of(path)


def test_no_poisoning_trains_bit_for_bit_as_clean_training():
    from arena.scenarios import spec
    from policies.learners.dop import DOPConfig, train_dop
    from policies.learners.mappo import MAPPOConfig, train_mappo
    from policies.training.tram import build_tram

    # DOP's replay must hold a batch before it updates: a small one, so updates happen
    for Config, train, extra in ((DOPConfig, train_dop, {"off_batch_size": 4}),
                                 (MAPPOConfig, train_mappo, {})):
        cfg = dict(scenario="spread", steps=200, envs=4, test_every=200, hidden=16, seed=3,
                   **extra)
        clean = train(Config(**cfg))
        none = train(Config(**cfg), sampler=build_tram(
            "tram_var", {"kl_max": 6.0, "freq": 0.0, "agent": 0, "seed": 0}, spec("spread")))
        hit = train(Config(**cfg), sampler=build_tram(
            "tram_var", {"kl_max": 6.0, "freq": 1.0, "agent": 0, "seed": 0}, spec("spread")))
        for k in clean.weights:
            assert np.array_equal(clean.weights[k], none.weights[k]), (Config.__name__, k)
        assert any(not np.array_equal(clean.weights[k], hit.weights[k]) for k in clean.weights)


def test_train_defender_trains_a_policy_gradient_team_under_an_attacker(tmp_path):
    path = make_league(tmp_path / "l.h5", "mappo")
    res = run(path, "--json", "train", "defender", "m", "--algo", "mappo", "--scenario",
              "spread", "--steps", "200", "--envs", "4", "--test-every", "200", "--param",
              "agg=median", "--param", "hidden=16", "--against", "tj")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["training_attack"]["agent"] == 1 and data["steps"] >= 200
    with League(path) as lg:
        rec = lg.get("m")
    assert rec.kind == "mappo" and rec.provenance["trained_against"] == "tj@v1"
    assert rec.provenance["hyperparameters"]["agg"] == "median"
    res = run(path, "play", "m", "vs", "none", "--scenario", "spread", "--episodes", "2")
    assert res.exit_code == 0, res.output
    for bad, line in ((["--param", "nope=1"], "--param nope"),
                      (["--against", "mappo"], "not a training-time attacker")):
        res = run(path, "train", "defender", "x", "--algo", "mappo", "--scenario", "spread",
                  "--steps", "100", *bad)
        assert res.exit_code != 0 and line in res.output, res.output


def test_every_seed_of_a_family_keeps_the_given_params(tmp_path):
    path = make_league(tmp_path / "l.h5", "mappo")
    res = run(path, "train", "defender", "fam", "--algo", "mappo", "--scenario", "spread",
              "--steps", "100", "--envs", "4", "--test-every", "100", "--seeds", "0,1",
              "--param", "agg=median", "--param", "hidden=16")
    assert res.exit_code == 0, res.output
    with League(path) as lg:
        for name in ("fam.s0", "fam.s1"):
            prov = lg.get(name).provenance
            assert prov["hyperparameters"]["agg"] == "median", name
            assert prov["hyperparameters"]["hidden"] == 16 and prov["family"] == "fam"
