"""Training, alternating robust training and PSRO through the command line, on tiny budgets."""

import json

import numpy as np
import torch
from click.testing import CliRunner

from cli import main
from policies.observation.mixture_perturb import MixturePerturb
from policies.observation.attacks import NoAttack, RandomAttack
from store import League


def run(league, *args):
    res = CliRunner().invoke(main, ["--league", str(league), "--quiet", *args],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_train_attack_robust_train_psro_and_runs(tmp_path):
    lg = tmp_path / "l.h5"
    run(lg, "init")
    run(lg, "train", "defender", "q.pp7", "--scenario", "pp7", "--steps", "600",
        "--test-every", "300")
    run(lg, "show", "q.pp7", "--plot", str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").stat().st_size > 0
    run(lg, "train", "attacker", "pa.pp7", "--algo", "pa_ad", "--against", "q",
        "--scenario", "pp7", "--steps", "400")
    out = json.loads(run(lg, "--json", "train", "defender", "qa.pp7", "--scenario", "pp7",
                         "--init", "q", "--adv", "atla", "--rounds", "1", "--attacker-steps",
                         "300", "--steps", "3000", "--test-every", "1500"))  # > 32 episodes: updates happen
    assert out["ref"] == "qa.pp7@v1"
    with League(lg) as league:
        prov = league.info("qa.pp7").provenance
        assert prov["robust"]["adv"] == "atla" and prov["parent"] == "q.pp7@v1"
        assert prov["curve"], "the learning curve is kept in the provenance"
        a, b = league.get("q.pp7").weights, league.get("qa.pp7").weights
        assert any(not np.array_equal(a[k], b[k]) for k in a)
    out = json.loads(run(lg, "--json", "psro", "--scenario", "pp7", "--defenders", "q",
                         "--attackers", "none,pa", "--iterations", "1", "--steps-per-oracle",
                         "300", "--episodes", "2"))
    assert out["run"] == "psro1" and len(out["iterations"]) == 2
    first = out["iterations"][0]
    assert first["new_attacker"] and first["new_defender"] and first["gain_attacker"] is not None
    runs = json.loads(run(lg, "runs", "--json"))
    assert runs[0]["run"] == "psro1" and runs[0]["iterations"] == 2
    played = json.loads(run(lg, "--json", "play", "psro1_def", "vs", "psro1_att",
                            "--episodes", "2"))
    assert played["episodes"] == 2
    run(lg, "runs", "show", "psro1", "--plot", str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 0
    degenerate = json.loads(run(lg, "--json", "psro", "--scenario", "pp7", "--defenders", "q",
                                "--attackers", "none", "--iterations", "0", "--episodes", "2"))
    assert len(degenerate["iterations"]) == 1 and degenerate["iterations"][0]["new_attacker"] is None


def test_mixture_perturb_draws_one_attacker_per_episode():
    obs = torch.zeros(400, 2, 3)
    mix = MixturePerturb([NoAttack(), RandomAttack({"eps": 0.5}, 2)], [0.25, 0.75], seed=0)
    mix.reset(400)

    def q_fn(o):
        return o.sum(-1, keepdim=True).expand(-1, -1, 4)

    avail = torch.ones(400, 2, 4, dtype=torch.bool)
    first = mix(q_fn, obs, avail)
    second = mix(q_fn, obs, avail)
    attacked = (first != 0).flatten(1).any(1)
    assert torch.equal(attacked, (second != 0).flatten(1).any(1))  # same attacker all episode
    assert 0.65 < attacked.float().mean() < 0.85
    assert first.abs().max() <= 0.5


def test_ctrl_c_stores_what_was_learned_as_partial(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    lg = tmp_path / "l.h5"
    run(lg, "init")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "--league", str(lg), "--quiet", "train", "defender",
         "q.pp7", "--scenario", "pp7", "--steps", "10000000", "--test-every", "2000",
         "--no-test-attacks"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # training under way: the start-up and the first greedy test take ~2 s
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "partial" in out
    with League(lg) as league:
        info = league.info("q.pp7")
    assert info.provenance["partial"] is True
    assert 0 < info.provenance["steps"] < 10_000_000


def test_param_sets_a_communicating_teams_message_widths(tmp_path):
    from click.testing import CliRunner

    from cli import main
    from store import League

    lg = tmp_path / "l.h5"
    runner = CliRunner()
    assert runner.invoke(main, ["--league", str(lg), "init"]).exit_code == 0
    base = ["--league", str(lg), "--quiet", "train", "defender"]
    res = runner.invoke(main, base + ["t", "--algo", "tarmac", "--scenario", "tj_easy", "--steps",
                                      "20", "--no-test-attacks", "--param", "key_dim=4",
                                      "--param", "msg_dim=6"])
    assert res.exit_code == 0, res.output
    with League(lg) as league:
        config = league.get("t").config
    assert (config["msg_dim"], config["key_dim"]) == (6, 4)
    for args, needle in ((["q", "--algo", "qmix", "--scenario", "3m", "--param", "msg_dim=4"],
                          "not --algo qmix"),
                         (["c", "--algo", "commnet", "--scenario", "pp7", "--param",
                           "msg_dim=0"], "outside its range")):
        res = runner.invoke(main, base + args + ["--steps", "20"])
        assert res.exit_code == 2 and needle in res.output, res.output
