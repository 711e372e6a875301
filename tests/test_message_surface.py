"""The message surface: the rollout's message hook, msg_random (ℜ-MACRL's random baseline), the
per-episode Byzantine draw, the cost, and the one-line errors of tables that cannot be played."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from arena.rollout import Streams, episode_seeds, play, stream_salt
from arena.scenarios import spec as scenario_spec
from cli import main
from policies.lineup import agent_from_record
from policies.message.malicious import draw_malicious
from policies.message.msg_random import MsgRandom
from policies.observation.attacks import NoAttack, RandomAttack
from policies.teams.commnet import make_commnet
from policies.teams.stacked_team import StackedTeam
from store import League
from tests.helpers import make_league

SP = scenario_spec("pp7")
N = SP.n_agents



@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """Agent networks of untrained teams on pp7, in member order: commnet, commnet, qmix."""
    path = make_league(tmp_path_factory.mktemp("msg") / "l.h5",
                       defenders=(("commnet", 0), ("qmix", 1), ("commnet", 2)), attackers=())
    with League(path) as lg:
        return [agent_from_record(lg.get(i.ref)) for i in lg.list(role="defender")]


def stacked(agents):
    return StackedTeam(agents, N, SP.n_actions)


class SpyTeam:
    """A StackedTeam that records what the message hook reads and writes, and every Q."""

    def __init__(self, team):
        self.team, self.n_members, self.hidden = team, team.n_members, team.hidden
        self.swaps, self.qs = [], []

    def initial_state(self, rows, device=None):
        return self.team.initial_state(rows, device)

    def q_values(self, obs, hidden, last, member):
        q, h = self.team.q_values(obs, hidden, last, member)
        self.qs.append(q.clone())
        return q, h

    def message_width(self, member):
        return self.team.message_width(member)

    def messages(self, hidden, member):
        return self.team.messages(hidden, member)

    def with_messages(self, hidden, msgs, member):
        self.swaps.append((self.team.messages(hidden, member).clone(), msgs.clone()))
        return self.team.with_messages(hidden, msgs, member)


class Loud(MsgRandom):
    """Rewrites every agent's message, honest ones included: the engine must keep those."""

    def message(self, msgs, ctx):
        return msgs + 1.0


class Recording(MsgRandom):
    """msg_random that keeps what it was given and what it returned, with the rows."""

    def __init__(self, config, n_agents):
        super().__init__(config, n_agents)
        self.calls = []

    def message(self, msgs, ctx):
        out = super().message(msgs, ctx)
        self.calls.append((ctx.rows.clone(), ctx.malicious.clone(), msgs.clone(), out.clone()))
        return out


def run(team, attackers, attacker_of, team_of, seeds):
    salts = [stream_salt(f"a{k}") for k in range(len(attackers))]
    return play("pp7", team, team_of, attackers, attacker_of, seeds, attack_salts=salts)


def test_only_malicious_agents_messages_change(agents):
    team = SpyTeam(stacked([agents[0]]))
    B = 4
    zeros = torch.zeros(B, dtype=torch.long)
    run(team, [Loud({"targets": [1]}, N)], zeros, zeros, episode_seeds(0, 0, B))
    assert team.swaps
    for before, after in team.swaps:
        assert torch.equal(after[:, [0, 2]], before[:, [0, 2]])  # bit-identical
        assert torch.equal(after[:, 1], before[:, 1] + 1.0)
    team = SpyTeam(stacked([agents[0]]))
    run(team, [MsgRandom({"targets": 1, "omega": 1.0}, N)], zeros, zeros, episode_seeds(0, 0, B))
    changed = torch.stack([(a != b).any(-1) for b, a in team.swaps[1:]])  # [T, R, n]
    assert changed.any() and int(changed.sum(-1).max()) == 1  # one agent per row and step


def test_omega_zero_is_the_clean_column(agents):
    B = 6
    seeds, zeros = episode_seeds(3, 0, B), torch.zeros(B, dtype=torch.long)
    clean, quiet = SpyTeam(stacked(agents)), SpyTeam(stacked(agents))
    member = torch.tensor([0, 1, 0, 1, 0, 1])
    a = run(clean, [NoAttack()], zeros, member, seeds)
    b = run(quiet, [MsgRandom({"targets": "all", "omega": 0.0}, N)], zeros, member, seeds)
    assert torch.equal(a.returns, b.returns) and torch.equal(a.lengths, b.lengths)
    assert len(clean.qs) == len(quiet.qs) and quiet.swaps
    assert all(torch.equal(x, y) for x, y in zip(clean.qs, quiet.qs))
    assert float(b.cost.abs().max()) == 0.0


def test_a_message_cell_plays_the_same_alone_and_in_a_mixed_batch(agents):
    team = stacked(agents)  # commnet, commnet, qmix: two groups in one call
    attackers = [NoAttack(), RandomAttack({"eps": 0.2}, N, SP),
                 MsgRandom({"targets": 1, "omega": 0.7}, N)]
    E = 4
    seeds = episode_seeds(9, 0, E)
    # the msg_random rows sit between observation-attacked rows of the qmix and commnet members
    all_seeds = torch.cat([episode_seeds(1, 0, 3), seeds, episode_seeds(2, 0, 3)])
    att_of = torch.tensor([1, 0, 1] + [2] * E + [0, 1, 0])
    team_of = torch.tensor([2, 0, 1] + [0, 1, 1, 0] + [0, 2, 1])
    big = run(team, attackers, att_of, team_of, all_seeds)
    alone = run(team, attackers, torch.full((E,), 2), team_of[3:3 + E], seeds)
    one_by_one = [run(team, attackers, torch.tensor([2]), team_of[3 + e:4 + e], seeds[e:e + 1])
                  for e in range(E)]
    np.testing.assert_allclose(big.returns[3:3 + E], alone.returns, atol=1e-4)
    np.testing.assert_allclose(big.cost[3:3 + E], alone.cost, atol=1e-5)
    np.testing.assert_allclose(alone.returns, torch.cat([o.returns for o in one_by_one]), atol=1e-4)
    np.testing.assert_allclose(alone.cost, torch.cat([o.cost for o in one_by_one]), atol=1e-5)
    assert float(alone.cost.min()) > 0


def test_messages_of_different_widths_in_one_table():
    torch.manual_seed(0)
    narrow = make_commnet(SP.obs_dim, SP.n_actions, N, hidden=8, msg_dim=3).eval()
    wide = make_commnet(SP.obs_dim, SP.n_actions, N, hidden=12, msg_dim=5).eval()
    team = stacked([narrow, wide])
    att = [MsgRandom({"targets": 2}, N)]
    seeds, member = episode_seeds(4, 0, 4), torch.tensor([0, 1, 1, 0])
    both = run(team, att, torch.zeros(4, dtype=torch.long), member, seeds)
    for r in range(4):
        one = run(team, att, torch.zeros(1, dtype=torch.long), member[r:r + 1], seeds[r:r + 1])
        np.testing.assert_allclose(both.returns[r:r + 1], one.returns, atol=1e-4)
        np.testing.assert_allclose(both.cost[r:r + 1], one.cost, atol=1e-5)


def test_byzantine_agents_are_drawn_per_episode_and_repeat_for_a_seed(agents):
    seeds = episode_seeds(0, 0, 64)
    mask = draw_malicious(2, N, Streams(seeds, 0))
    assert mask.shape == (64, N) and bool((mask.sum(1) == 2).all())
    assert len({tuple(row.tolist()) for row in mask}) == 3  # every pair of 3 agents turns up
    assert torch.equal(mask, draw_malicious(2, N, Streams(seeds, 0)))
    assert torch.equal(mask[10:20], draw_malicious(2, N, Streams(seeds[10:20], 0)))
    assert torch.equal(draw_malicious([0, 2], N, Streams(seeds, 0))[:, 1], torch.zeros(64).bool())
    # in play: the malicious agent of an episode keeps its identity over the episode's steps
    B = 8
    zeros = torch.zeros(B, dtype=torch.long)
    outs = []
    for _ in range(2):
        att = Recording({"targets": 1}, N)
        st = run(stacked([agents[0]]), [att], zeros, zeros, episode_seeds(5, 0, B))
        outs.append((st, att))
    (a, rec_a), (b, rec_b) = outs
    assert torch.equal(a.returns, b.returns) and torch.equal(a.cost, b.cost)
    first = {}
    for rows, mal, _, _ in rec_a.calls:
        for r, m in zip(rows.tolist(), mal):
            assert torch.equal(first.setdefault(r, m), m)
    assert len({tuple(m.tolist()) for m in first.values()}) > 1


def test_cost_is_the_largest_change_and_noise_keeps_the_norm(agents):
    B = 6
    zeros = torch.zeros(B, dtype=torch.long)
    att = Recording({"targets": 2, "omega": 1.0, "combine": "convex"}, N)
    st = run(stacked([agents[0]]), [att], zeros, zeros, episode_seeds(7, 0, B))
    total, steps = torch.zeros(B), torch.zeros(B)
    for rows, mal, before, after in att.calls:
        norm_b, norm_a = before.norm(dim=-1), after.norm(dim=-1)
        torch.testing.assert_close(norm_a[mal], norm_b[mal], rtol=1e-4, atol=1e-6)  # ‖δ‖ = ‖m‖
        assert torch.equal(after[~mal], before[~mal])
        change = (after - before).norm(dim=-1)
        assert bool((change <= 2 * norm_b + 1e-5).all())  # ‖δ − m‖ ≤ ‖δ‖ + ‖m‖ = 2‖m‖
        total[rows] += change.amax(1)
        steps[rows] += 1
    assert bool((steps == st.lengths - 1).all())  # every step but the first, while active
    torch.testing.assert_close(st.cost, total / steps, rtol=1e-5, atol=1e-6)
    assert float(st.cost.min()) > 0


def cli(args, league):
    return CliRunner().invoke(main, ["--league", str(league)] + list(args),
                              catch_exceptions=False)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_matrix_by_surface_and_its_one_line_errors(tmp_path):
    lg = make_league(tmp_path / "l.h5", defenders=(("commnet", 0), ("qmix", 1)),
                     attackers=(("random", ["eps=0.2"]),))
    assert cli(["add-policy", "msgr", "--kind", "msg_random", "--param", "targets=1"],
               lg).exit_code == 0
    res = cli(["matrix", "--scenario", "pp7", "--surface", "message", "--episodes", "2",
               "--json"], lg)
    assert res.exit_code == 0, res.output
    table = json.loads(res.output)
    assert table["defenders"] == ["commnet0@v1"] and table["attackers"] == ["none", "msgr@v1"]
    res = cli(["matrix", "--scenario", "pp7", "--episodes", "1", "--json"], lg)
    assert res.exit_code == 0, res.output
    assert "msgr@v1" not in json.loads(res.output)["attackers"]
    one_line_error(cli(["matrix", "--scenario", "pp7", "--defenders", "qmix1,commnet0",
                        "--attackers", "none,msgr", "--episodes", "1"], lg),
                   "msgr@v1 attacks messages", "qmix")
    one_line_error(cli(["play", "qmix1", "vs", "msgr", "--episodes", "1"], lg), "sends none")
    one_line_error(cli(["add-policy", "x", "--kind", "msg_random", "--param", "omega=1.5"], lg),
                   "outside its range")
    one_line_error(cli(["add-policy", "x", "--kind", "msg_random", "--param", "combine=mul"],
                       lg), "convex, add")
    one_line_error(cli(["add-policy", "x", "--kind", "msg_random", "--scenario", "pp7",
                        "--param", "targets=4"], lg), "only 3 agents")
    assert cli(["add-policy", "many", "--kind", "msg_random", "--param", "targets=4"],
               lg).exit_code == 0
    one_line_error(cli(["matrix", "--scenario", "pp7", "--defenders", "commnet0",
                        "--attackers", "many", "--episodes", "1"], lg), "many@v1", "only 3")
