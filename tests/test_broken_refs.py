"""A mixture whose member was purged with --force says so when it is played, in one line."""

from click.testing import CliRunner

from cli import main
from policies.build import base_provenance
from store import League
from tests.helpers import make_league


def test_a_broken_mixture_refuses_to_play(tmp_path):
    lg_path = make_league(tmp_path / "l.h5")
    with League(lg_path, "a") as lg:
        lg.add_policy("mix", "attacker", "mixture", "pp7",
                      {"members": [{"ref": "fgsm@v1", "weight": 0.5},
                                   {"ref": "random@v1", "weight": 0.5}]}, {}, base_provenance())
    runner = CliRunner()
    base = ["--league", str(lg_path)]
    refused = runner.invoke(main, base + ["retire", "fgsm@v1", "--purge"])
    assert refused.exit_code == 2 and "mix@v1" in refused.output
    assert runner.invoke(main, base + ["retire", "fgsm@v1", "--purge", "--force"]).exit_code == 0
    res = runner.invoke(main, base + ["play", "qmix0", "vs", "mix", "--episodes", "2"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "broken" in lines[0] and "fgsm@v1" in lines[0], res.output
    with League(lg_path) as lg:
        assert lg.matches() == []
