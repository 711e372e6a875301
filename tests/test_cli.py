"""The command line: happy paths and error paths (exit code 2, one line, no traceback)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import main
from tests.helpers import make_league


def run(args, league=None):
    runner = CliRunner()
    full = (["--league", str(league)] if league else []) + list(args)
    return runner.invoke(main, full, catch_exceptions=False)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_has_examples():
    res = run(["--help"])
    assert res.exit_code == 0 and "Examples:" in res.output
    for cmd in ("init", "ls", "show", "add-policy", "play", "matrix", "solve", "scenarios"):
        sub = run([cmd, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output, cmd


def test_init_ls_add_show_retire(tmp_path):
    lg = tmp_path / "l.h5"
    assert run(["init"], lg).exit_code == 0
    one_line_error(run(["init"], lg), "exists")
    res = run(["add-policy", "fgsm", "--kind", "fgsm", "--param", "eps=0.1"], lg)
    assert res.exit_code == 0 and "fgsm@v1" in res.output
    assert "fgsm@v2" in run(["add-policy", "fgsm", "--kind", "fgsm"], lg).output
    rows = json.loads(run(["ls", "--json"], lg).output)
    assert [r["ref"] for r in rows] == ["fgsm@v2"] and rows[0]["versions"] == 2
    shown = json.loads(run(["show", "fgsm@v1", "--json"], lg).output)
    assert shown["config"]["eps"] == 0.1 and shown["role"] == "attacker"
    assert run(["retire", "fgsm@v2"], lg).exit_code == 0
    assert json.loads(run(["ls", "--json"], lg).output)[0]["ref"] == "fgsm@v1"
    assert len(json.loads(run(["ls", "--all", "--json"], lg).output)) == 2


@pytest.mark.parametrize("args,needles", [
    (["add-policy", "x", "--kind", "nope"], ["unknown kind", "fgsm"]),
    (["add-policy", "x", "--kind", "fgsm", "--param", "bogus=1"], ["no parameter 'bogus'", "eps"]),
    (["add-policy", "x", "--kind", "fgsm", "--param", "eps=3"], ["outside its range"]),
    (["add-policy", "x", "--kind", "fgsm", "--param", "eps"], ["key=value"]),
    (["add-policy", "x", "--kind", "pgd", "--param", "norm=l7"], ["linf, l2"]),
    (["add-policy", "x", "--kind", "fgsm", "--role", "defender"], ["is an attacker"]),
    (["add-policy", "x", "--kind", "qmix", "--scenario", "3m"], ["--from"]),
    (["show", "ghost"], ["ghost"]),
    (["add-policy", "m", "--kind", "mixture"], ["arena psro"]),
])
def test_add_policy_and_show_errors(tmp_path, args, needles):
    lg = tmp_path / "l.h5"
    run(["init"], lg)
    one_line_error(run(args, lg), *needles)


def test_missing_and_corrupt_leagues_are_one_line(tmp_path):
    one_line_error(run(["ls"], tmp_path / "missing.h5"), "arena init")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    one_line_error(run(["ls"], bad))


def test_scenarios_json_lists_shapes():
    rows = {r["name"]: r for r in json.loads(run(["scenarios", "--json"]).output)}
    assert rows["3m"]["obs_dim"] == 30 and rows["3m"]["state_dim"] == 48 and rows["3m"]["n_actions"] == 9
    assert rows["tj_easy"]["messages"] is True


def test_play_matrix_and_solve_on_a_small_league(tmp_path):
    lg = make_league(tmp_path / "l.h5")
    res = run(["--quiet", "play", "qmix0", "vs", "fgsm", "--episodes", "2", "--json"], lg)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["episodes"] == 2 and out["scenario"] == "pp7" and out["attack_cost"] > 0
    res = run(["--quiet", "matrix", "--episodes", "2", "--json", "--attackers", "none,random,fgsm"], lg)
    table = json.loads(res.output)
    assert res.exit_code == 0 and np.array(table["count"]).min() == 2
    assert table["attackers"][0] == "none"
    res = run(["--quiet", "matrix", "--episodes", "2", "--attackers", "none,random,fgsm", "--csv"], lg)
    csv_file = tmp_path / "t.csv"
    csv_file.write_text(res.output)
    sol = json.loads(run(["solve", "--matrix", str(csv_file), "--json"]).output)
    assert abs(sum(sol["defender"]) - 1) < 1e-6 and sol["exploitability"] < 1e-6
    one_line_error(run(["play", "fgsm", "vs", "qmix0"], lg), "attacker, not a defender")
    one_line_error(run(["play", "qmix0", "vs", "ghost"], lg), "ghost")
    one_line_error(run(["play", "qmix0", "vs", "fgsm", "--scenario", "3m"], lg), "pp7", "3m")


def test_solve_needs_a_filled_table(tmp_path):
    lg = make_league(tmp_path / "l.h5")
    one_line_error(run(["solve", "--scenario", "pp7"], lg), "empty cell")


def test_add_policy_from_safetensors_and_pymarl(tmp_path):
    from safetensors.torch import save_file

    from tests.helpers import random_team

    lg = tmp_path / "l.h5"
    run(["init"], lg)
    _, weights = random_team("qmix", "3m", 0)
    agent = {k[len("agent."):]: torch.tensor(v) for k, v in weights.items() if k.startswith("agent.")}
    torch.save(agent, tmp_path / "agent.th")
    res = run(["add-policy", "pym", "--kind", "qmix", "--scenario", "3m", "--from",
               str(tmp_path / "agent.th")], lg)
    assert res.exit_code == 0, res.output
    save_file({k: torch.tensor(v) for k, v in weights.items()}, str(tmp_path / "w.safetensors"))
    res = run(["add-policy", "st", "--kind", "qmix", "--scenario", "3m", "--from",
               str(tmp_path / "w.safetensors")], lg)
    assert res.exit_code == 0, res.output
    one_line_error(run(["add-policy", "bad", "--kind", "qmix", "--scenario", "pp7", "--from",
                        str(tmp_path / "agent.th")], lg), "pp7")
    import pickle

    evil = tmp_path / "evil.th"  # a pickle that is not a plain state dict is refused unread
    evil.write_bytes(pickle.dumps({"fc1.weight": "not a tensor"}))
    one_line_error(run(["add-policy", "evil", "--kind", "qmix", "--scenario", "3m", "--from",
                        str(evil)], lg))


def test_demo_fills_solves_and_draws(tmp_path):
    lg = make_league(tmp_path / "l.h5")
    png = tmp_path / "heat.png"
    res = run(["demo", "--scenario", "pp7", "--episodes", "2", "--bootstrap", "20",
               "--plot", str(png)], lg)
    assert res.exit_code == 0, res.output
    for text in ("lp solution", "value:", "most dangerous attack", "next, try",
                 "arena play qmix_fgsm vs pa_ad"):
        assert text in res.output
    assert png.stat().st_size > 10_000
    again = run(["demo", "--scenario", "pp7", "--episodes", "2", "--bootstrap", "0",
                 "--plot", str(png)], lg)
    assert "ran 0 cells" in again.output  # the table is already full
