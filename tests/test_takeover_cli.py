"""The agent surface on the command line: train attacker --algo takeover_*, add-policy
takeover_random, play, matrix and psro with --surface agent, train defender --adv takeover,
on one tiny league (an untrained qmix team on 3m). These check the wiring, not the learning."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from policies.build import base_provenance
from policies.learners.train_defender import untrained_team
from store import League


def run(league, *args):
    return CliRunner().invoke(main, ["--league", str(league), "--quiet", *args],
                              catch_exceptions=False)


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    path = tmp_path_factory.mktemp("takeover") / "l.h5"
    League.create(path)
    cfg, w = untrained_team("qmix", "3m", 0)
    with League(path, "a") as lg:
        lg.add_policy("q", "defender", "qmix", "3m", cfg, w, base_provenance(seed=0))
    for args in (["train", "attacker", "tk", "--algo", "takeover_dev", "--against", "q",
                  "--steps", "500", "--envs", "8", "--param", "eta=0.1"],
                 ["add-policy", "rnd", "--kind", "takeover_random", "--param", "targets=1"]):
        res = run(path, *args)
        assert res.exit_code == 0, res.output
    return path


def test_the_trained_attacker_is_stored_with_its_evaluation(league):
    with League(league) as lg:
        rec = lg.get("tk")
    assert rec.kind == "takeover_dev" and rec.config["eta"] == 0.1
    p = rec.provenance
    assert {"final_attacked_return", "final_clean_return", "final_random_return"} <= set(p)
    assert p["trained_against"] == "q@v1"


def test_play_and_matrix(league):
    res = run(league, "play", "q", "vs", "tk", "--scenario", "3m", "--episodes", "4", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["attack_cost"] == 1.0  # one hijacked agent
    res = run(league, "matrix", "--scenario", "3m", "--surface", "agent", "--episodes", "4",
              "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["attackers"][0] == "none" and len(data["attackers"]) == 3
    # the observation table leaves the hijackers out
    res = run(league, "matrix", "--scenario", "3m", "--episodes", "4", "--json")
    assert json.loads(res.output)["attackers"] == ["none"]


def test_bad_input_is_one_line(league):
    res = run(league, "train", "attacker", "x", "--algo", "takeover_ppo", "--against", "q",
              "--param", "eta=1")
    assert res.exit_code != 0 and "takeover_ppo trains with" in res.output
    res = run(league, "train", "defender", "r", "--algo", "qmix", "--scenario", "3m",
              "--adv", "takeover")
    assert res.exit_code != 0 and "--init" in res.output


def test_retraining_against_a_hijacked_teammate(league):
    res = run(league, "train", "defender", "q_tk", "--algo", "qmix", "--scenario", "3m",
              "--init", "q", "--adv", "takeover", "--rounds", "1", "--attacker-steps", "300",
              "--steps", "400", "--envs", "4", "--test-every", "400", "--json")
    assert res.exit_code == 0, res.output
    with League(league) as lg:
        prov = lg.get("q_tk").provenance
    robust = prov["robust"]
    assert robust["adv"] == "takeover" and len(robust["per_round"]) == 1
    entry = robust["per_round"][0]
    assert {"clean_before", "attacked_before", "clean_after", "attacked_after"} <= set(entry)


def test_psro_on_the_agent_surface(league):
    res = run(league, "psro", "--surface", "agent", "--scenario", "3m", "--defenders", "q",
              "--attackers", "rnd", "--iterations", "1", "--steps-per-oracle", "300",
              "--episodes", "4", "--name", "ag", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    last = data["iterations"][-1]
    assert last["defenders"] == ["q@v1", "ag_def0@v1"]
    assert last["attackers"] == ["rnd@v1", "ag_att0@v1"]
    with League(league) as lg:
        assert lg.info("ag_att0").kind == "takeover_ppo"
        assert lg.info("ag_def0").provenance["trained_against"]
