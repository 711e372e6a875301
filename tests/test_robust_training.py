"""Robust defender training on tiny budgets: one adversary continued across the rounds of
the alternation, weak rounds, the final mixture, returns under attack on the training curve,
the regulariser under FGSM, and seed families from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import policies.learners.train_defender as td
import policies.observation.adversarial_training as at
from cli import main
from policies.learners.train_defender import DefenderTrainConfig, train_defender
from policies.observation.adversarial_training import is_weak, train_robust_defender
from policies.observation.train_attacker import (
    AttackerTrainConfig,
    AttackerTrainError,
    train_attacker,
    weights_id,
)
from policies.plots import plot_training_curve
from store import League
from tests.toy_envs import CueMatch


def toy_cfg(**kw):
    base = dict(scenario="cue_match", steps=600, envs=8, eps_anneal=400, batch=16,
                target_update=40, test_every=300, test_episodes=16, seed=3, adv_eps=0.5)
    base.update(kw)
    return DefenderTrainConfig(**base)


@pytest.fixture(scope="module")
def clean_team():
    return train_defender(toy_cfg(steps=800, test_every=10_000, test_attacks=False),
                          make_env=CueMatch)


def robust(clean_team, **kw):
    args = dict(rounds=2, attacker_steps=160)
    args.update(kw)
    cfg_kw = args.pop("cfg", {})
    return train_robust_defender(toy_cfg(init=clean_team.weights, **cfg_kw), "atla",
                                 make_env=CueMatch, **args)


def test_attacker_training_continues_from_a_checkpoint(clean_team):
    victims = [(clean_team.config, clean_team.weights)]
    cfg = AttackerTrainConfig(algo="atla", scenario="cue_match", steps=160, envs=8, seed=1,
                              eps=0.5, eval_episodes=8)
    first = train_attacker(cfg, victims, make_env=CueMatch)
    more = train_attacker(cfg, victims, make_env=CueMatch, init=first.checkpoint)
    assert more.provenance["start_weights_id"] == first.provenance["weights_id"]
    assert more.provenance["lineage"] == first.provenance["lineage"]
    assert more.provenance["steps_total"] == first.checkpoint.steps + more.provenance["steps"]
    assert more.provenance["continued_from"]["steps"] == first.checkpoint.steps
    # Adam's moments and step counts carry on rather than restart
    steps = [float(c.optimizer["state"][0]["step"]) for c in (first.checkpoint, more.checkpoint)]
    assert steps[1] > steps[0] > 0
    assert more.checkpoint.iterations > first.checkpoint.iterations
    # a fresh run from the same seed starts elsewhere
    fresh = train_attacker(cfg, victims, make_env=CueMatch)
    assert fresh.provenance["start_weights_id"] != first.provenance["weights_id"]
    with pytest.raises(AttackerTrainError, match="eps"):
        train_attacker(AttackerTrainConfig(**{**cfg.__dict__, "eps": 0.1}), victims,
                       make_env=CueMatch, init=first.checkpoint)


def test_one_adversary_continues_across_rounds(clean_team, monkeypatch):
    starts = []
    real = at.train_attacker

    def spy(cfg, victims, *a, init=None, **kw):
        starts.append(None if init is None else dict(init.weights))
        return real(cfg, victims, *a, init=init, **kw)

    monkeypatch.setattr(at, "train_attacker", spy)
    events = []
    res = robust(clean_team, attacker_cap=160, on_progress=events.append)
    log = res.provenance["robust"]["per_round"]
    assert [e["round"] for e in log] == [1, 2]
    assert starts[0] is None and starts[1] is not None
    # round 2's adversary starts from round 1's weights: same parameters, same id
    assert log[1]["adversary_start_id"] == log[0]["adversary_id"] == weights_id(starts[1])
    assert log[0]["adversary_lineage"] == log[1]["adversary_lineage"]
    assert log[1]["adversary_steps_total"] == log[0]["adversary_steps"] + log[1]["adversary_steps"]
    for e in log:
        assert e["adversary_steps"] >= 160 and not e["adversary_extended"]
        for k in ("clean_before", "attacked_before", "clean_after", "attacked_after"):
            assert isinstance(e[k], float)
    # the evaluation episodes are fixed: the team after round 1 is the team before round 2
    assert log[1]["clean_before"] == log[0]["clean_after"]
    assert res.provenance["robust"]["adversary_returns"] == [e["attacked_before"] for e in log]
    assert any(e.get("phase") == "adversary" for e in events)
    assert any(e.get("phase") == "round" and e["round"] == 2 for e in events)


def test_weak_adversary_is_extended_then_flagged(clean_team):
    # ε = 0: the adversary cannot change a thing, so it stays weak however long it trains
    events = []
    res = robust(clean_team, rounds=1, on_progress=events.append, cfg={"adv_eps": 0.0})
    e = res.provenance["robust"]["per_round"][0]
    assert e["weak"] and e["adversary_extended"]
    assert e["adversary_steps"] >= 2 * 160 == res.provenance["robust"]["attacker_cap"]
    assert e["attacked_before"] == e["clean_before"]
    assert e["note"].startswith("round 1: adversary weak (return ")
    assert e["note"].endswith(f"after {e['adversary_steps']} steps")
    assert res.provenance["robust"]["notes"] == [e["note"]]
    assert [p["note"] for p in events if p.get("note")] == [e["note"]]
    assert all("steps" in p for p in events)  # the bar never jumps back to zero


def test_weak_rule():
    assert is_weak(18.9, 20.0) and not is_weak(17.0, 20.0)
    assert is_weak(-10.5, -10.0) and not is_weak(-12.0, -10.0)


def test_final_team_phase_faces_all_round_adversaries(clean_team, monkeypatch):
    built = []

    class Spy(at.MixturePerturb):
        def __init__(self, attackers, weights, *a, **kw):
            built.append([weights_id(m.export_weights()) for m in attackers])
            super().__init__(attackers, weights, *a, **kw)

    monkeypatch.setattr(at, "MixturePerturb", Spy)
    res = robust(clean_team, rounds=3, attacker_cap=160, cfg={"steps": 450})
    log = res.provenance["robust"]["per_round"]
    ids = [e["adversary_id"] for e in log]
    assert len(set(ids)) == 3, "the adversary changes from round to round"
    assert built == [ids[:1], ids[1:2], ids]
    assert [e["team_faced"] for e in log] == ["adversary", "adversary",
                                            "mixture of 3 adversaries"]
    assert res.provenance["robust"]["final_phase"] == "mixture of 3 round adversaries"


def test_curve_records_returns_under_attack_and_plots(clean_team, tmp_path):
    res = robust(clean_team, rounds=1, attacker_cap=160)
    curve = res.provenance["curve"]
    assert curve and all({"fgsm_return", "pgd_return", "adv_return", "fgsm_win", "pgd_win",
                          "adv_win"} <= c.keys() for c in curve)
    assert res.provenance["test_attacks"]["pgd"] == {"steps": 10}
    # from scratch: the untrained start is tested clean only, later points under attack too
    scratch = train_defender(toy_cfg(steps=300, test_every=150), make_env=CueMatch)
    c = scratch.provenance["curve"]
    assert "fgsm_return" not in c[0] and all("pgd_return" in p for p in c[1:])
    assert scratch.provenance["final_fgsm_return"] == c[-1]["fgsm_return"]
    again = train_defender(toy_cfg(steps=300, test_every=150), make_env=CueMatch)
    def timeless(points):
        return [{k: v for k, v in p.items() if k != "wall_s"} for p in points]

    assert timeless(again.provenance["curve"]) == timeless(c)  # same seed, same curve
    off = train_defender(toy_cfg(steps=300, test_every=150, test_attacks=False),
                         make_env=CueMatch)
    assert all(set(p) == {"steps", "test_return", "test_win", "wall_s"}
               for p in off.provenance["curve"])
    assert all(np.array_equal(off.weights[k], scratch.weights[k]) for k in off.weights), \
        "testing under attack leaves training alone"
    for name, prov in (("new", res.provenance), ("old", off.provenance)):
        path = plot_training_curve(prov, tmp_path / f"{name}.png", name)
        assert path.stat().st_size > 0


def test_policy_regulariser_trains_under_fgsm(clean_team, monkeypatch):
    calls = []
    real = td.fgsm

    def spy(*a, **kw):
        calls.append(a[2])  # ε
        return real(*a, **kw)

    monkeypatch.setattr(td, "fgsm", spy)
    cfg = dict(steps=200, test_attacks=False, init=clean_team.weights)
    res = train_defender(toy_cfg(reg="policy", **cfg), make_env=CueMatch)
    assert calls and set(calls) == {0.5}
    assert res.provenance["robust"] == {"adv": None, "reg": "policy", "perturbation": "fgsm",
                                        "perturbed_fraction": 0.5, "eps": 0.5}
    calls.clear()
    res = train_defender(toy_cfg(reg="policy", adv="none", **cfg), make_env=CueMatch)
    assert not calls and res.provenance["robust"]["perturbation"] is None
    # a learned adversary's perturbation replaces FGSM
    train_defender(toy_cfg(reg="policy", **cfg), make_env=CueMatch,
                   perturb=lambda q_fn, obs, avail: obs)
    assert not calls


def test_adv_fraction_leaves_the_other_rows_clean(clean_team, monkeypatch):
    """adv_fraction = 0.5 of 8 parallel episodes: rows 0–3 store what the perturbation made of
    their observations, rows 4–7 the clean ones (CueMatch's features are 0/1, never 7)."""
    stored = []
    real = td.collect_episodes

    def spy(*a, **kw):
        batch, stats = real(*a, **kw)
        stored.append((batch["obs"], batch["filled"]))
        return batch, stats

    monkeypatch.setattr(td, "collect_episodes", spy)
    sentinel = lambda q_fn, obs, avail: torch.full_like(obs, 7.0)  # noqa: E731
    res = train_defender(toy_cfg(steps=100, test_attacks=False, init=clean_team.weights,
                                 adv_fraction=0.5), make_env=CueMatch, perturb=sentinel)
    assert res.provenance["robust"]["perturbed_fraction"] == 0.5
    for obs, filled in stored:
        live = obs[:, :-1][filled]  # [live steps, n, obs] of rows in play
        rows = filled.nonzero()[:, 0]
        assert bool((live[rows < 4] == 7.0).all()), "perturbed rows store the perturbation"
        assert not bool((live[rows >= 4] == 7.0).any()), "clean rows store clean observations"
    with pytest.raises(td.DefenderTrainError, match="adv_fraction"):
        toy_cfg(adv_fraction=0.0).validate()


def run(league, *args):
    res = CliRunner().invoke(main, ["--league", str(league), "--quiet", *args],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_cli_reg_policy_implies_fgsm(tmp_path, monkeypatch):
    calls = []
    real = td.fgsm
    monkeypatch.setattr(td, "fgsm", lambda *a, **kw: calls.append(a[2]) or real(*a, **kw))
    lg = tmp_path / "l.h5"
    run(lg, "init")
    run(lg, "train", "defender", "r.3m", "--scenario", "3m", "--steps", "1", "--reg", "policy",
        "--eps", "0.1", "--test-every", "100000", "--no-test-attacks")
    assert calls and set(calls) == {0.1}
    with League(lg) as league:
        prov = league.info("r.3m").provenance
    assert prov["trained_against"] == "fgsm eps=0.1" and prov["robust"]["perturbation"] == "fgsm"
    assert "FGSM" in run(lg, "train", "defender", "--help")


def test_cli_seeds_store_a_family(tmp_path):
    lg = tmp_path / "l.h5"
    run(lg, "init")
    out = json.loads(run(lg, "--json", "train", "defender", "fam", "--scenario", "3m",
                         "--steps", "1", "--seeds", "0,1", "--test-every", "100000",
                         "--no-test-attacks"))
    assert out["family"] == "fam" and out["refs"] == ["fam.s0@v1", "fam.s1@v1"]
    with League(lg) as league:
        provs = [league.info(f"fam.s{s}").provenance for s in (0, 1)]
        w0, w1 = (league.get(f"fam.s{s}").weights for s in (0, 1))
    assert [(p["family"], p["seed"]) for p in provs] == [("fam", 0), ("fam", 1)]
    assert any(not np.array_equal(w0[k], w1[k]) for k in w0)
    out = json.loads(run(lg, "--json", "train", "attacker", "att", "--algo", "atla",
                         "--against", "fam.s0", "--steps", "1", "--envs", "2",
                         "--seeds", "3,4"))
    assert out["refs"] == ["att.s3@v1", "att.s4@v1"]
    with League(lg) as league:
        assert league.info("att.s4").provenance["family"] == "att"
        assert league.info("att.s4").provenance["seed"] == 4
    single = json.loads(run(lg, "--json", "train", "defender", "one", "--scenario", "3m",
                            "--steps", "1", "--seed", "5", "--test-every", "100000",
                            "--no-test-attacks"))
    assert single["ref"] == "one@v1"
    with League(lg) as league:
        prov = league.info("one").provenance
    assert prov["seed"] == 5 and prov["family"] is None
    for bad in (["--seeds", "0,0"], ["--seeds", "a"], ["--seed", "1", "--seeds", "0,1"]):
        res = CliRunner().invoke(main, ["--league", str(lg), "--quiet", "train", "defender",
                                        "x", "--scenario", "3m", "--steps", "1", *bad])
        assert res.exit_code == 2, res.output
