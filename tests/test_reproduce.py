"""`arena reproduce s003 --quick` on a copy of the starter league, with tiny budgets."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from commands.reproduce import COMMANDS
from commands.common import Ctx
from policies.errors import PolicyError
from policies.reproduce_s003 import EPS, PAPER_TABLE_I, ReproduceConfig
from store import League
from store.starter import copy_starter_league


@click.group()
@click.option("--league", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def app(cctx, league, as_json):
    cctx.obj = Ctx(league=league, json=as_json, quiet=True, device="cpu", lock_timeout=30.0,
                   debug=True)


for command in COMMANDS:
    app.add_command(command)


def test_paper_settings():
    assert EPS == {"2m_vs_1z": 0.2, "3m": 0.2, "3s_vs_3z": 0.2, "2s3z": 0.05}
    # figures of the paper that are not available here stay None, never a made-up number
    assert all(v is None or isinstance(v, (int, float)) for m in PAPER_TABLE_I.values()
               for row in m.values() for v in row.values())
    with pytest.raises(PolicyError, match="3m only"):
        ReproduceConfig(maps=["2s3z"], quick=True).validate()
    with pytest.raises(PolicyError, match="unknown map"):
        ReproduceConfig(maps=["8m"]).validate()


def test_quick_reproduce_writes_a_report_and_resumes(tmp_path):
    league = tmp_path / "league.h5"
    copy_starter_league(league)
    out = tmp_path / "out"
    args = ["--league", str(league), "--json", "reproduce", "s003", "--quick", "--maps", "3m",
            "--models", "qmix,qmix_fgsm", "--attacker-steps", "48", "--episodes", "2",
            "--out", str(out)]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    m = data["maps"]["3m"]
    assert m["columns"] == ["none", "random", "fgsm", "pgd", "atla*", "pa_ad*"]
    assert len(m["win"]) == 2 and all(v is not None for row in m["win"] for v in row)
    # the starter's own adaptive attackers were trained with another budget: new versions
    assert sorted(r.split("@")[0] for r in m["trained"]) == [
        "atla_vs_qmix.3m", "atla_vs_qmix_fgsm.3m", "pa_ad_vs_qmix.3m", "pa_ad_vs_qmix_fgsm.3m"]
    text = (out / "report.md").read_text()
    assert "## 3m (ε = 0.2)" in text and "48 environment steps" in text
    assert "not filled in rather than guessed" in text and "(paper " not in text
    assert (out / "table1_3m.png").stat().st_size > 0
    with League(league) as lg:
        prov = lg.info(next(r for r in m["trained"] if r.startswith("atla_vs_qmix_fgsm"))).provenance
        assert prov["trained_against"] == "qmix_fgsm.3m@v1" and prov["adaptive"] == "atla"
    again = json.loads(CliRunner().invoke(app, args, catch_exceptions=False).output)
    assert again["maps"]["3m"]["trained"] == [] and again["maps"]["3m"]["win"] == m["win"]
