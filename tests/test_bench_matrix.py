"""`arena bench matrix --surface message`: the message table timed batched vs episode by
episode, from the league's communicating teams or from untrained ones."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import main
from store import League
from tests.helpers import make_league

FIELDS = ("episodes", "batched_s", "sequential_s", "speedup", "same_returns")


def bench(league, *args):
    res = CliRunner().invoke(main, ["--league", str(league), "--quiet", "bench", "matrix",
                                    "--surface", "message", "--json", *args],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in FIELDS:
        assert key in out, key
    assert out["same_returns"] is True
    assert out["speedup"] == out["sequential_s"] / out["batched_s"]
    assert out["surface"] == "message" and out["scenario"] == "pp7"
    return out


def test_message_bench_uses_only_the_communicating_rows_and_message_columns(tmp_path):
    path = make_league(tmp_path / "l.h5", defenders=(("qmix", 0), ("commnet", 1), ("tarmac", 2)),
                       attackers=(("msg_random", ["targets=1"]), ("fgsm", ["eps=0.2"])))
    with League(path) as lg:
        talkers = [i.ref for i in lg.list(role="defender") if i.kind in ("commnet", "tarmac")]
        noise = [i.ref for i in lg.list(role="attacker") if i.kind == "msg_random"]
    out = bench(path, "--episodes", "1")
    assert out["league"] == str(path)
    assert sorted(out["rows"]) == sorted(talkers) and len(talkers) == 2
    assert out["columns"] == ["none"] + noise
    assert out["episodes"] == 2 * 2 * 1 and out["episodes_per_cell"] == 1


def test_message_bench_without_a_communicating_team_builds_untrained_ones(tmp_path):
    path = make_league(tmp_path / "l.h5")  # qmix and vdn, observation attacks only
    out = bench(path, "--episodes", "1")
    assert out["league"].startswith("synthetic")
    assert len(out["rows"]) == 2 and all("commnet" in r or "tarmac" in r for r in out["rows"])
    assert out["columns"][0] == "none" and len(out["columns"]) == 4
    assert all("msg_random" in a for a in out["columns"][1:])
    assert out["episodes"] == 2 * 4 * 1
    with League(path) as lg:
        assert lg.matches("pp7") == []
