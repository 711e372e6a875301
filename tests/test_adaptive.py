"""Adaptive learned attackers: one per defender, stored once, shown as a diagonal column."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from policies.evaluate import default_players
from policies.observation.adaptive import (
    adaptive_name, adaptive_seed, ensure_adaptive, fill_with_adaptive, parse_algos,
    prepare_adaptive,
)
from policies.errors import PolicyError
from store import League
from tests.helpers import make_league, opener

TINY = dict(steps=24, envs=2, eval_episodes=2, device="cpu")


@pytest.fixture
def league(tmp_path):
    return make_league(tmp_path / "l.h5", scenario="3m",
                       attackers=(("random", ["eps=0.2"]), ("fgsm", ["eps=0.2"])))


def test_seed_is_a_stable_hash_of_the_table_seed_and_the_defender():
    expect = int.from_bytes(hashlib.sha256(b"3:qmix0@v1").digest()[:4], "big") & 0x7FFFFFFF
    assert adaptive_seed(3, "qmix0@v1") == expect
    assert adaptive_seed(3, "qmix0@v1") != adaptive_seed(4, "qmix0@v1")
    assert adaptive_seed(3, "qmix0@v1") != adaptive_seed(3, "vdn1@v1")
    assert adaptive_name("atla", "qmix.3m") == "atla_vs_qmix.3m"
    assert parse_algos("atla, pa_ad,atla") == ["atla", "pa_ad"]
    with pytest.raises(PolicyError, match="unknown adaptive attacker"):
        parse_algos("fgsm")


def test_trained_once_per_defender_then_reused(league):
    trained = []
    first = ensure_adaptive(opener(league), "3m", ["qmix0@v1", "vdn1@v1"], ["atla"], seed=1,
                            on_train=lambda name, n: trained.append(name), **TINY)
    assert trained == ["atla_vs_qmix0", "atla_vs_vdn1"]
    assert first.columns == {"atla": {"qmix0@v1": "atla_vs_qmix0@v1", "vdn1@v1": "atla_vs_vdn1@v1"}}
    with League(league) as lg:
        prov = lg.info("atla_vs_vdn1@v1").provenance
        assert prov["trained_against"] == "vdn1@v1" and prov["adaptive"] == "atla"
        assert prov["adaptive_steps"] == TINY["steps"]
        assert prov["seed"] == adaptive_seed(1, "vdn1@v1")
        # adaptive attackers are no default column: they belong to one row each
        assert not any("_vs_" in a for a in default_players(lg, "3m")[1])
    again = ensure_adaptive(opener(league), "3m", ["qmix0@v1", "vdn1@v1"], ["atla"], seed=1,
                            on_train=lambda name, n: trained.append(name), **TINY)
    assert len(trained) == 2 and again.columns == first.columns
    assert sorted(again.reused) == sorted(first.trained) and not again.trained
    # another seed is another attacker (a new version of the same name)
    other = ensure_adaptive(opener(league), "3m", ["qmix0@v1"], ["atla"], seed=2, **TINY)
    assert other.trained == ["atla_vs_qmix0@v2"]


def test_same_seeds_same_attackers(tmp_path):
    shas = []
    for k in range(2):
        path = make_league(tmp_path / f"l{k}.h5", scenario="3m", attackers=())
        a = ensure_adaptive(opener(path), "3m", ["qmix0@v1"], ["pa_ad"], seed=5, **TINY)
        with League(path) as lg:
            shas.append(lg.info(a.columns["pa_ad"]["qmix0@v1"]).sha256)
    assert shas[0] == shas[1]


def test_the_starred_column_is_the_diagonal(league):
    drefs, arefs, adaptive = prepare_adaptive(opener(league), "3m", None, ["none", "fgsm"],
                                              ["atla"], seed=0, **TINY)
    res = fill_with_adaptive(opener(league), "3m", drefs, arefs, adaptive, 2, seed=0,
                             device="cpu")
    t = res.table
    assert t.attackers == ["none", "fgsm@v1", "atla*"] and t.defenders == drefs
    # only the diagonal of the adaptive attackers was played
    assert len(res.cells) == len(drefs) * 3
    with League(league) as lg:
        full = lg.payoff("3m", drefs, list(adaptive.columns["atla"].values()))
    for i, d in enumerate(drefs):
        j = list(adaptive.columns["atla"].values()).index(adaptive.columns["atla"][d])
        assert t.count[i, 2] == 2 == full.count[i, j]
        assert t.mean[i, 2] == pytest.approx(full.mean[i, j])
        assert (full.count[i] > 0).sum() == 1  # off-diagonal cells stay empty


def test_matrix_adaptive_option(league):
    from cli import main

    args = ["--league", str(league), "--json", "matrix", "--scenario", "3m", "--attackers",
            "none", "--episodes", "2", "--adaptive", "pa_ad", "--adaptive-steps", "24"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["attackers"] == ["none", "pa_ad*"]
    assert sorted(data["adaptive"]["trained"]) == ["pa_ad_vs_qmix0@v1", "pa_ad_vs_vdn1@v1"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    data2 = json.loads(res.output)
    assert data2["adaptive"]["trained"] == [] and data2["cells_run"] == 0
    assert np.allclose(data2["mean"], data["mean"])
