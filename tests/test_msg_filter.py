"""msg_filter, ℜ-MACRL's message filter: the identity on benign messages, it restores a misled
listener (and its detector matters), league round trip, batched = sequential, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from arena.rollout import episode_seeds, play, stream_salt
from arena.scenarios import spec as scenario_spec
from cli import main
from policies.evaluate import fill
from policies.learners.ppo import PPOConfig
from policies.learners.train_defender import DefenderTrainConfig, train_defender
from policies.lineup import agent_from_record, build_lineup
from policies.message.msg_filter import FilterAgent, MessageFilter
from policies.message.msg_ppo import MsgPPOAttacker
from policies.message.train_msg_attacker import MsgAttackerTrainConfig, train_msg_attacker
from policies.message.train_msg_filter import (
    MsgFilterTrainConfig, Opponents, base_team, train_msg_filter,
)
from policies.observation.attacks import NoAttack
from policies.teams.stacked_team import StackedTeam
from store import League
from tests.helpers import make_league, opener
from tests.toy_envs import CueRelay

SP = scenario_spec("pp7")
CUE_SALT = stream_salt("mp@v1")



@pytest.fixture(scope="module")
def cue():
    """CueRelay: a commnet team, a msg_ppo speaking for agent 0 (ω = 0.5), and two filters
    trained against it: the full one and the detector=off ablation."""
    talk = train_defender(DefenderTrainConfig(
        algo="commnet", scenario="cue_relay", steps=3000, envs=8, eps_anneal=1200, lr=2e-3,
        batch=16, target_update=40, test_every=10**6, test_episodes=64, seed=0,
        test_attacks=False, hidden=32, msg_dim=8), make_env=CueRelay)
    att = train_msg_attacker(MsgAttackerTrainConfig(
        scenario="cue_relay", steps=12000, envs=32, targets=[0], omega=0.5, alpha=0.0,
        sigma=0.5, hidden=32, ppo=PPOConfig(lr=3e-3), eval_episodes=64),
        [(talk.config, talk.weights)], make_env=CueRelay)
    attacker = MsgPPOAttacker(att.config).load_weights(att.weights).eval()
    opp = Opponents([attacker], [1.0], [CUE_SALT])

    def guard(detector):
        return train_msg_filter(MsgFilterTrainConfig(
            scenario="cue_relay", steps=3000, envs=32, hidden=32, detector=detector,
            ppo=PPOConfig(lr=3e-3), recon_lr=3e-3, eval_episodes=64),
            (talk.config, talk.weights), opp, make_env=CueRelay)

    return talk, attacker, guard("on"), guard("off")


def filter_agent(team, res) -> FilterAgent:
    agent, _ = base_team(team.config, team.weights, CueRelay.spec, "cpu")
    return FilterAgent(agent, MessageFilter(res.config).load_weights(res.weights).eval())


def cue_returns(agents, attacker, E=256, seed=77):
    """[len(agents)] mean returns of each agent's team on the same episodes, all in one batch."""
    team = StackedTeam(agents, 2, 2)
    k = len(agents)
    seeds = episode_seeds(seed, 0, E).repeat(k)
    member = torch.arange(k).repeat_interleave(E)
    st = play("cue_relay", team, member, [attacker], torch.zeros(k * E, dtype=torch.long),
              seeds, env=CueRelay(k * E), attack_salts=[CUE_SALT])
    return st.returns.view(k, E).mean(1).tolist()


def test_the_filter_is_the_identity_on_benign_messages(cue):
    talk, _, full, _ = cue
    guarded = filter_agent(talk, full)
    base = guarded.base
    # every message the team sends in clean play, the zeros before the first step included
    env, E = CueRelay(256), 256
    team = StackedTeam([base], 2, 2)
    ts, h = env.reset(seeds=episode_seeds(5, 0, E)), team.initial_state(E)
    member, last, sent = torch.zeros(E, dtype=torch.long), torch.zeros(E, 2, 2), []
    while not bool(ts.done.all()):
        sent.append(team.messages(h, member))
        q, h = team.q_values(ts.obs, h, last, member)
        a = q.argmax(-1)
        last = torch.nn.functional.one_hot(a, 2).float()
        ts = env.step(a)
    msgs = torch.cat(sent)
    flt = guarded.filter
    x = flt.features(msgs)
    flagged = flt.flags(msgs, x)
    assert not bool(flagged.any()), float(flagged.float().mean())
    # unflagged messages pass through bitwise (torch.where), so clean play is exactly the
    # team's own; the reconstructor is close to the identity on them as well
    assert torch.equal(flt(msgs), msgs)
    with torch.no_grad():
        err = (flt.reconstruct(msgs, x) - msgs).norm(dim=-1)
    print(f"benign reconstruction error: mean {float(err.mean()):.3f}, max "
          f"{float(err.max()):.3f}; message norm mean {float(msgs.norm(dim=-1).mean()):.3f}")
    assert float(err.mean()) < 0.1 * float(msgs.norm(dim=-1).mean())
    clean_base, clean_filtered = cue_returns([base, guarded], NoAttack())
    assert clean_base == clean_filtered and clean_base > 4.2
    seeds = episode_seeds(6, 0, 64)
    zeros = torch.zeros(64, dtype=torch.long)
    a = play("cue_relay", StackedTeam([base], 2, 2), zeros, [NoAttack()], zeros, seeds,
             env=CueRelay(64))
    b = play("cue_relay", StackedTeam([guarded], 2, 2), zeros, [NoAttack()], zeros, seeds,
             env=CueRelay(64))
    assert torch.equal(a.returns, b.returns)


def test_the_filter_restores_a_misled_listener_and_its_detector_matters(cue):
    # The attacker speaks for agent 0 and makes agent 1 play the wrong cue (return ≈ 0.5 of
    # 4.5). Its messages are off the team's own and still tell the two cues apart, so the
    # detector flags them and the reconstructor maps them back. Measured with seeds 0-3 for
    # team, attacker and filters alike: clean 4.49-4.51, attacked 0.49-0.51, filtered equal to
    # clean in every seed; detector=off reconstructs agent 0's message on about half the
    # steps only: 1.49-3.02.
    talk, attacker, full, ablation = cue
    base = filter_agent(talk, full).base
    clean, attacked, filtered, ablated = (
        cue_returns([base], NoAttack())[0],
        *cue_returns([base, filter_agent(talk, full), filter_agent(talk, ablation)], attacker))
    print(f"cue_relay: clean {clean:.3f}, attacked {attacked:.3f}, filtered {filtered:.3f}, "
          f"detector=off {ablated:.3f}")
    assert clean > 4.2 and attacked < 1.5, (clean, attacked)
    assert filtered > attacked + 2.5 and filtered > clean - 0.5, (attacked, filtered)
    assert ablated < filtered - 1.0, (filtered, ablated)
    p = full.provenance
    assert p["final_filtered_return"] > p["final_attacked_return"] + 2.5, p
    assert p["curve"][-1]["recall"] > 0.9 and p["curve"][-1]["false_alarms"] < 0.05


@pytest.fixture(scope="module")
def league(tmp_path_factory):
    """pp7: an untrained commnet and qmix, msg_random, fgsm, and a filter "guard" trained
    briefly around the commnet against msg_random."""
    path = make_league(tmp_path_factory.mktemp("mf") / "l.h5",
                       defenders=(("commnet", 0), ("qmix", 1)),
                       attackers=(("msg_random", ["targets=1"]), ("fgsm", ["eps=0.2"])))
    with League(path) as lg:
        rec = lg.get("commnet0@v1")
        noise = build_lineup(lg, "pp7", [rec.ref], ["msg_random@v1"]).attacker_objs[0]
    res = train_msg_filter(MsgFilterTrainConfig(
        scenario="pp7", steps=400, envs=4, hidden=16, eval_episodes=2,
        trained_against=["msg_random@v1"]), (rec.config, rec.weights),
        Opponents([noise], [1.0], [stream_salt("msg_random@v1")]))
    with League(path, "a") as lg:
        lg.add_policy("guard", "defender", "msg_filter", "pp7", res.config, res.weights,
                      res.provenance)
    return path, res


def test_league_round_trip_plays_the_same(league):
    path, res = league
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in res.weights.values())
    assert {k.split(".")[0] for k in res.weights} == {"team", "detector", "reconstructor"}
    with League(path) as lg:
        rec = lg.get("guard@v1")
        assert rec.kind == "msg_filter" and json.loads(json.dumps(rec.config)) == rec.config
        assert rec.config["team"]["algo"] == "commnet"
        assert rec.config["trained_against"] == ["msg_random@v1"]
        lineup = build_lineup(lg, "pp7", ["guard@v1"], ["msg_random@v1"])
        base = agent_from_record(lg.get("commnet0@v1"))
    fresh = FilterAgent(base, MessageFilter(res.config).load_weights(res.weights).eval())
    loaded = lineup.team
    # the loaded filter is active: it flags part of the attacked messages
    msgs = torch.rand(64, SP.n_agents, fresh.msg_dim) * 2 - 1
    flags = fresh.filter.flags(msgs, fresh.filter.features(msgs))
    assert bool(flags.any()) and not bool(flags.all())
    B = 6
    seeds, zeros = episode_seeds(11, 0, B), torch.zeros(B, dtype=torch.long)
    noise = lineup.attacker_objs[0]
    salt = [stream_salt("msg_random@v1")]
    a = play("pp7", StackedTeam([fresh], SP.n_agents, SP.n_actions), zeros, [noise], zeros,
             seeds, attack_salts=salt)
    b = play("pp7", loaded, zeros, [noise], zeros, seeds, attack_salts=salt)
    assert torch.equal(a.returns, b.returns) and torch.equal(a.cost, b.cost)


def test_a_filter_row_beside_its_team_and_a_qmix_row_is_the_same_batched(league, tmp_path):
    path, _ = league
    other = shutil.copy(path, tmp_path / "copy.h5")
    defenders = ["guard@v1", "commnet0@v1", "qmix1@v1"]
    ra = fill(opener(path), "pp7", defenders, None, episodes=2, seed=5)
    rb = fill(opener(other), "pp7", defenders, None, episodes=2, seed=5, sequential=True)
    assert ra.table.defenders == defenders and "fgsm@v1" in ra.table.attackers
    np.testing.assert_allclose(ra.table.sum, rb.table.sum, atol=1e-4)
    # the message table: the filter is a communicating defender, the qmix team is not
    ma = fill(opener(path), "pp7", None, None, episodes=2, seed=5, surface="message")
    mb = fill(opener(other), "pp7", None, None, episodes=2, seed=5, surface="message",
              sequential=True)
    assert set(ma.table.defenders) == {"guard@v1", "commnet0@v1"}
    assert "msg_random@v1" in ma.table.attackers
    np.testing.assert_allclose(ma.table.sum, mb.table.sum, atol=1e-4)
    # row by row: one stacked call equals each member alone
    with League(path) as lg:
        lineup = build_lineup(lg, "pp7", defenders, ["fgsm@v1"])
        alone = [agent_from_record(lg.get(r)) for r in defenders]
    member = torch.tensor([0, 1, 2, 0, 2, 1, 0])
    R = len(member)
    seeds = episode_seeds(3, 0, R)
    big = play("pp7", lineup.team, member, [NoAttack()], torch.zeros(R, dtype=torch.long), seeds)
    for r in range(R):
        one = play("pp7", StackedTeam([alone[int(member[r])]], SP.n_agents, SP.n_actions),
                   torch.zeros(1, dtype=torch.long), [NoAttack()],
                   torch.zeros(1, dtype=torch.long), seeds[r:r + 1])
        assert abs(float(big.returns[r]) - float(one.returns[0])) < 1e-4


def cli(args, league):
    return CliRunner().invoke(main, ["--league", str(league)] + list(args),
                              catch_exceptions=False)


def one_line_error(res, *words):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0], lines[0]


def test_cli_trains_a_filter_and_refuses_what_it_cannot_guard(tmp_path):
    lg = make_league(tmp_path / "l.h5", defenders=(("commnet", 0), ("qmix", 1)),
                     attackers=(("msg_random", ["targets=1"]), ("fgsm", ["eps=0.2"])))
    base = ["train", "defender", "g", "--algo", "msg_filter", "--steps", "40", "--envs", "2"]
    one_line_error(cli(base + ["--init", "qmix1", "--against", "msg_random"], lg),
                   "qmix", "communicating")
    one_line_error(cli(base + ["--init", "commnet0", "--against", "msg_random", "--scenario",
                               "3m"], lg), "pp7", "3m")
    one_line_error(cli(base + ["--init", "commnet0", "--against", "fgsm"], lg),
                   "fgsm", "message attacker")
    res = cli(base + ["--init", "commnet0", "--against", "msg_random", "--param",
                      "detector=off", "--json"], lg)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ref"] == "g@v1" and out["final_filtered_return"] is not None
    with League(lg) as league:
        rec = league.get("g@v1")
    assert rec.kind == "msg_filter" and rec.config["detector"] == "off"
    res = cli(["play", "g", "vs", "msg_random", "--episodes", "2"], lg)
    assert res.exit_code == 0, res.output
    # the defended team is a victim like any other: a message attacker trains against it
    res = cli(["train", "attacker", "mp", "--algo", "msg_ppo", "--against", "g", "--steps",
               "30", "--envs", "2"], lg)
    assert res.exit_code == 0, res.output
