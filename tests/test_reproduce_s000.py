"""`arena reproduce s000` (MARNet) end to end on tiny budgets: the backdoored teams it lacks
are trained and stored once, the report holds Tables 1-3, and a rerun trains nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import main
from policies.build import base_provenance
from policies.learners.train_defender import untrained_team
from store import League

ARGS = ["reproduce", "s000", "--seeds", "0", "--episodes", "2", "--poison-steps", "1600",
        "--finetune-steps", "1600,1600", "--no-smac"]


def test_reproduce_s000_on_tiny_budgets(tmp_path):
    path = tmp_path / "l.h5"
    League.create(path)
    config, weights = untrained_team("qmix", "stag10", 0)
    with League(path, "a") as lg:
        lg.add_policy("qmix.stag10", "defender", "qmix", "stag10", config, weights,
                      base_provenance())
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["--league", str(path), "--json", *ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [r["label"] for r in data["table1"]] == ["normal", "mtl", "trojdrl", "marnet", "ideal"]
    normal = data["table1"][0]
    assert normal["worst_action_rate"] == [0.0]  # the expert never answers with its worst
    assert len(normal["mean_return"]) == 6 and len(data["ablation"]) == 6
    assert {k.split("/")[0] for k in data["table3"]} == {"none", "Fine-tune1", "Fine-tune2",
                                                          "fine-pruning"}
    text = (out / "report.md").read_text()
    assert "## Table 1" in text and "## Table 3" in text and "## The paper's trends" in text
    with League(path) as lg:
        stored = len(lg.list())
        assert lg.info("marnet_qmix.s0").provenance["expert"] == "qmix.stag10@v1"
    again = CliRunner().invoke(main, ["--league", str(path), "--json", *ARGS, "--out",
                                      str(out)])
    assert again.exit_code == 0, again.output
    with League(path) as lg:
        assert len(lg.list()) == stored


def test_reproduce_s000_quick_reads_the_starter_and_trains_nothing(tmp_path):
    from store.starter import copy_starter_league

    path = copy_starter_league(tmp_path / "l.h5")
    with League(path) as lg:
        before = len(lg.list(all_versions=True))
    res = CliRunner().invoke(main, ["--league", str(path), "--json", "reproduce", "s000",
                                    "--quick", "--episodes", "4", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {r["label"] for r in data["table1"]} >= {"normal", "trojdrl", "marnet"}
    assert set(data["table3"]) == {"none/qmix", "Fine-tune1/qmix", "fine-pruning/qmix"}
    with League(path) as lg:
        assert len(lg.list(all_versions=True)) == before
