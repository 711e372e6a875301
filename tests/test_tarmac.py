"""TarMAC defenders: the one-step message delay, attention over the other agents only, records,
batched play beside other kinds, training, the message surface, and that the messages carry
what a task needs."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from click.testing import CliRunner

from arena.rollout import episode_seeds, play, stream_salt
from arena.scenarios import spec as scenario_spec
from cli import main
from policies.build import build_policy_record
from policies.evaluate import fill
from policies.learners.train_defender import (
    DefenderTrainConfig, network_config, train_defender,
)
from policies.lineup import agent_from_record, build_lineup
from policies.message.msg_random import MsgRandom
from policies.teams.networks import (
    architecture_fields, architecture_of, build_networks, export_weights, load_team,
)
from policies.teams.rnn_agent import QTeam, agent_input_dim
from policies.teams.stacked_team import StackedTeam
from policies.teams.tarmac import TarMACAgent
from store import League
from tests.helpers import make_league, opener
from tests.messaging import assert_messages_carry_the_cue, assert_stacked_equals_alone

N, OBS, A, H, DK, DV = 3, 5, 4, 8, 3, 2



def small_agent(seed=0) -> TarMACAgent:
    torch.manual_seed(seed)
    return TarMACAgent(agent_input_dim(OBS, A, N), A, N, hidden=H, msg_dim=DV, key_dim=DK)


def spy(agent: TarMACAgent) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """What the agents read at each call (the message columns of the GRU cell's input) and the
    queries they read it with."""
    seen, queries = [], []
    agent.rnn.register_forward_pre_hook(lambda _, args: seen.append(args[0][:, H:].detach()))
    agent.query.register_forward_hook(lambda _, __, out: queries.append(out.detach()))
    return seen, queries


def test_messages_arrive_one_step_late_weighted_by_attention_over_the_others():
    agent = small_agent()
    seen, queries = spy(agent)
    team = QTeam(agent, N, A)
    B, T = 4, 4
    h = team.initial_state(B)
    sent = []
    for _ in range(T):
        _, h = team.q_values(torch.randn(B, N, OBS), h, torch.randint(A, (B, N)))
        sent.append(agent.messages(h))  # [B, n, d_k + d_v]
    assert agent.msg_dim == DK + DV and agent.hidden == H + DK + DV
    assert h.shape == (B, N, H + DK + DV)
    assert torch.equal(seen[0], torch.zeros(B * N, DV))  # nothing has been sent before step 0
    for t in range(1, T):
        read, q = seen[t].view(B, N, DV), queries[t]  # queries: [B, n, d_k]
        k, v = sent[t - 1][..., :DK], sent[t - 1][..., DK:]
        for i in range(N):
            others = [j for j in range(N) if j != i]
            logits = torch.stack([(q[:, i] * k[:, j]).sum(-1) for j in others], -1)
            alpha = torch.softmax(logits / math.sqrt(DK), -1)  # [B, n − 1]
            expect = (alpha.unsqueeze(-1) * v[:, others]).sum(1)
            torch.testing.assert_close(read[:, i], expect)
        # each receiver weighs the others by its own query: not CommNet's plain mean
        mean = torch.stack([v[:, [j for j in range(N) if j != i]].mean(1) for i in range(N)], 1)
        assert not torch.allclose(read, mean, atol=1e-4)
    assert sent[-1].abs().max() > 0  # messages are sent at all


def test_a_receiver_does_not_attend_to_its_own_message():
    agent = small_agent(2)
    seen, _ = spy(agent)
    team = QTeam(agent, N, A)
    B = 3
    obs, last = torch.randn(B, N, OBS), torch.randint(A, (B, N))
    _, h = team.q_values(torch.randn(B, N, OBS), team.initial_state(B), last)
    msgs = agent.messages(h).clone()
    # agent 2 of episode 0 sends a signature and a value however large; a matching query
    # would put all its weight there, were it allowed to read itself
    msgs[0, 2] = 1e6 * torch.randn(DK + DV)
    h2 = agent.with_messages(h, msgs)
    seen.clear()
    q, _ = team.q_values(obs, h, last)
    q2, _ = team.q_values(obs, h2, last)
    before, after = seen[0].view(B, N, DV), seen[1].view(B, N, DV)
    assert torch.equal(after[0, 2], before[0, 2]) and torch.equal(q2[0, 2], q[0, 2])
    assert (after[0, :2] - before[0, :2]).abs().amax(-1).min() > 1e-3  # the others hear it
    assert torch.equal(after[1:], before[1:])


def test_replacing_one_in_transit_message_changes_only_what_the_others_read():
    agent = small_agent(1)
    team = QTeam(agent, N, A)
    B = 3
    obs, last = torch.randn(B, N, OBS), torch.randint(A, (B, N))
    _, h = team.q_values(torch.randn(B, N, OBS), team.initial_state(B), last)
    msgs = agent.messages(h).clone()
    msgs[1, 0] += 5.0  # agent 0 of episode 1 says something else, signature and value
    h2 = agent.with_messages(h, msgs)
    assert torch.equal(agent.messages(h2), msgs) and torch.equal(h2[..., :H], h[..., :H])
    q, h_next = team.q_values(obs, h, last)
    q2, h2_next = team.q_values(obs, h2, last)
    changed = (q2 - q).abs().amax(-1) > 1e-6  # [B, n]
    expect = torch.zeros(B, N, dtype=torch.bool)
    expect[1, 1:] = True  # the others of episode 1, not the sender, no other episode
    assert torch.equal(changed, expect), changed
    assert torch.equal(h2_next[0], h_next[0]) and torch.equal(h2_next[2], h_next[2])
    assert torch.equal(h2_next[1, 0], h_next[1, 0])


def rollout_q(team, obs_seq, last_seq):
    h, out = team.initial_state(obs_seq.shape[1]), []
    for o, la in zip(obs_seq, last_seq):
        q, h = team.q_values(o, h, la)
        out.append(q)
    return torch.stack(out)


def test_record_round_trip_rebuilds_the_same_network():
    sp = scenario_spec("pp7")
    torch.manual_seed(0)
    config = network_config(DefenderTrainConfig(algo="tarmac", scenario="pp7", hidden=16,
                                                msg_dim=6, key_dim=3), sp)
    agent, mixer = build_networks(config)
    weights = export_weights(agent, mixer)
    assert not any(k.startswith("mixer.") for k in weights)  # the VDN sum
    stored = json.loads(json.dumps(config))
    assert (stored["msg_dim"], stored["key_dim"]) == (6, 3)
    shapes = architecture_of(weights, stored)
    assert (shapes["msg_dim"], shapes["key_dim"], shapes["hidden"]) == (6, 3, 16)
    team, again = QTeam(agent, sp.n_agents, sp.n_actions), load_team(stored, weights)
    assert isinstance(again.agent, TarMACAgent) and again.agent.hidden == 16 + 3 + 6
    obs = torch.randn(5, 2, sp.n_agents, sp.obs_dim)
    last = torch.randint(sp.n_actions, (5, 2, sp.n_agents))
    assert torch.equal(rollout_q(team, obs, last), rollout_q(again, obs, last))
    # a config written without the signature width: the default
    old = {k: v for k, v in stored.items() if k != "key_dim"}
    assert build_networks(old)[0].key_dim == 8
    # only a tarmac team keeps the signature width
    assert "key_dim" not in architecture_fields("commnet") and "msg_dim" in architecture_fields(
        "commnet")
    assert not {"key_dim", "msg_dim"} & set(architecture_fields("qmix"))
    for algo in ("commnet", "vdn"):
        assert "key_dim" not in network_config(DefenderTrainConfig(algo=algo, scenario="pp7"), sp)


def test_stacked_tarmac_beside_commnet_and_qmix_equals_each_member_alone(tmp_path):
    defenders = (("tarmac", 0), ("commnet", 1), ("qmix", 2), ("tarmac", 3))
    path = make_league(tmp_path / "l.h5", defenders=defenders,
                       attackers=(("fgsm", ["eps=0.2"]),))
    with League(path) as lg:
        refs = [i.ref for i in lg.list(role="defender")]
        lineup = build_lineup(lg, "pp7", refs, ["fgsm@v1"])
        sp = scenario_spec("pp7")
        alone = [QTeam(agent_from_record(lg.get(r)), sp.n_agents, sp.n_actions) for r in refs]
        kinds = [lg.info(r).kind for r in refs]
    team = lineup.team
    assert len(team.groups) == 3 and team.hidden == 64 + 8 + 16
    width = {"tarmac": 8 + 16, "commnet": 16, "qmix": 0}  # the hook reads [k | v] whole
    assert team.message_width(torch.arange(4)).tolist() == [width[k] for k in kinds]
    member = torch.tensor([0, 1, 2, 3, 3, 0, 1, 0])
    assert_stacked_equals_alone(team, alone, member, steps=5)
    # the payoff engine: batched equals sequential, under a gradient attack too
    ra = fill(opener(path), "pp7", None, None, episodes=2, seed=5)
    path_b = make_league(tmp_path / "b.h5", defenders=defenders,
                         attackers=(("fgsm", ["eps=0.2"]),))
    rb = fill(opener(path_b), "pp7", None, None, episodes=2, seed=5, sequential=True)
    np.testing.assert_allclose(ra.table.sum, rb.table.sum, atol=1e-4)


def test_tiny_training_on_tj_easy_stores_and_meets_msg_random(tmp_path):
    res = train_defender(DefenderTrainConfig(
        algo="tarmac", scenario="tj_easy", steps=120, envs=2, batch=2, buffer=8, hidden=16,
        msg_dim=4, key_dim=3, test_every=10**6, test_episodes=2, test_attacks=False))
    assert res.config["algo"] == "tarmac" and (res.config["msg_dim"], res.config["key_dim"]) == (
        4, 3)
    assert all(np.isfinite(v).all() for v in res.weights.values())
    assert {"agent.query.weight", "agent.key.weight", "agent.value.weight"} <= set(res.weights)
    path = make_league(tmp_path / "l.h5", scenario="tj_easy", defenders=(("qmix", 0),),
                       attackers=())
    with League(path, "a") as lg:
        lg.add_policy("talk", "defender", "tarmac", "tj_easy", res.config, res.weights, {})
        lg.add_policy(**build_policy_record("msgr", "msg_random",
                                            params=["targets=2", "omega=1.0"]))
    out = fill(opener(path), "tj_easy", None, None, episodes=2, seed=0, surface="message")
    table = out.table
    # the message table keeps the communicating team and the message attacker
    assert table.defenders == ["talk@v1"] and table.attackers == ["none", "msgr@v1"]
    assert (table.count == 2).all() and out.episodes_run == 4
    # the hook replaces whole [signature | value] messages of the targeted agents
    with League(path) as lg:
        team = StackedTeam([agent_from_record(lg.get("talk@v1"))], 5, 2)
    seeds, zeros = episode_seeds(1, 0, 3), torch.zeros(3, dtype=torch.long)
    attacked = [MsgRandom({"targets": 2, "omega": 1.0}, 5)]
    st = play("tj_easy", team, zeros, attacked, zeros, seeds, attack_salts=[stream_salt("m")])
    assert int(team.message_width(zeros[:1])) == 3 + 4 and float(st.cost.min()) > 0
    help_text = CliRunner().invoke(main, ["train", "defender", "--help"]).output
    assert "tarmac" in help_text


def test_messages_carry_the_cue_the_listener_needs():
    # Measured: tarmac 4.45-4.53 on seeds 0-7 at this budget (at 3000 steps, as for commnet,
    # one seed of eight stopped at 4.0); the VDN team stays at chance. With two agents each
    # receiver has one sender, so all its attention is on it: this checks that the values
    # carry the cue, not whom the queries pick.
    assert_messages_carry_the_cue("tarmac", "vdn", steps=4000)
