"""Payoff filling: batched equals sequential, incremental filling, stacked teams, attack budgets."""

import numpy as np
import pytest
import torch

from arena.rollout import AttackContext, Streams
from policies.errors import PolicyError
from policies.evaluate import fill, play_match
from policies.observation.attacks import PGDAttack, RandomAttack, ball_noise
from policies.teams.rnn_agent import QTeam, RNNAgent
from policies.teams.stacked_team import StackedTeam
from store import League
from tests.helpers import make_league, opener, random_team


def test_batched_and_sequential_filling_give_the_same_cells(tmp_path):
    a = make_league(tmp_path / "a.h5")
    b = make_league(tmp_path / "b.h5")
    ra = fill(opener(a), "pp7", None, None, episodes=3, seed=5, device="cpu")
    rb = fill(opener(b), "pp7", None, None, episodes=3, seed=5, device="cpu", sequential=True)
    assert ra.table.count.sum() == rb.table.count.sum() == 2 * 4 * 3
    np.testing.assert_allclose(ra.table.sum, rb.table.sum, atol=1e-4)
    np.testing.assert_array_equal(ra.table.wins, rb.table.wins)
    with League(a) as la, League(b) as lb:
        for x, y in zip(la.matches("pp7"), lb.matches("pp7")):
            assert (x.defender, x.attacker, x.seed) == (y.defender, y.attacker, y.seed)
            np.testing.assert_allclose(x.returns, y.returns, atol=1e-5)
            np.testing.assert_array_equal(x.lengths, y.lengths)
            np.testing.assert_allclose(x.attack_cost, y.attack_cost, atol=1e-4)


def test_incremental_filling_runs_only_missing_cells(tmp_path):
    path = make_league(tmp_path / "l.h5")
    first = fill(opener(path), "pp7", None, ["none", "random"], episodes=2, seed=0)
    assert len(first.cells) == 4 and first.episodes_run == 8
    again = fill(opener(path), "pp7", None, ["none", "random"], episodes=2, seed=0)
    assert again.cells == [] and again.episodes_run == 0
    more = fill(opener(path), "pp7", None, ["none", "random", "fgsm"], episodes=3, seed=0)
    # two new fgsm cells of 3 episodes, four old cells topped up by one episode each
    assert sorted(c.episodes for c in more.cells) == [1, 1, 1, 1, 3, 3]
    assert (more.table.count == 3).all()
    topped = [c for c in more.cells if c.episodes == 1]
    assert all(c.seed == 0 + 2 for c in topped)  # extension seeds continue the sequence


def test_play_records_a_match_and_continues_the_episode_sequence(tmp_path):
    path = make_league(tmp_path / "l.h5")
    rec1, _ = play_match(opener(path), "qmix0", "fgsm", None, episodes=2, seed=None)
    rec2, _ = play_match(opener(path), "qmix0", "fgsm", None, episodes=2, seed=None)
    assert (rec1.seed, rec2.seed) == (0, 2) and rec1.scenario == "pp7"
    with League(path) as lg:
        assert lg.payoff("pp7", ["qmix0"], ["fgsm"]).count[0, 0] == 4


def test_roles_swapped_and_unknown_names_are_clear_errors(tmp_path):
    path = make_league(tmp_path / "l.h5")
    with pytest.raises(PolicyError, match="is an attacker, not a defender"):
        play_match(opener(path), "fgsm", "qmix0", None, 2, 0)
    with pytest.raises(Exception, match="nosuch"):
        play_match(opener(path), "nosuch", "fgsm", None, 2, 0)


def test_scenario_mismatch_is_a_clear_error(tmp_path):
    path = make_league(tmp_path / "l.h5")
    with pytest.raises(PolicyError, match="made for scenario pp7, not pp7_p05"):
        play_match(opener(path), "qmix0", "none", "pp7_p05", 2, 0)


def _agents(n, in_dim=12, actions=4, seed=0):
    torch.manual_seed(seed)
    return [RNNAgent(in_dim, actions) for _ in range(n)]


def test_stacked_team_matches_each_member_called_alone():
    n_agents, obs_dim, A = 2, 6, 4
    agents = _agents(3, obs_dim + A + n_agents, A)
    team = StackedTeam(agents, n_agents, A)
    R = 7
    member = torch.tensor([2, 0, 1, 2, 2, 0, 1])
    obs = torch.randn(R, n_agents, obs_dim)
    h = torch.randn(R, n_agents, 64)
    last = torch.nn.functional.one_hot(torch.randint(A, (R, n_agents)), A).float()
    q, h2 = team.q_values(obs, h, last, member)
    for r in range(R):
        ref = QTeam(agents[int(member[r])], n_agents, A)
        q_ref, h_ref = ref.q_values(obs[r : r + 1], h[r : r + 1], last[r : r + 1])
        torch.testing.assert_close(q[r : r + 1], q_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h2[r : r + 1], h_ref, atol=1e-5, rtol=1e-5)


def test_stacked_team_in_chunks_matches_one_block_per_member():
    """Members holding very different numbers of rows are played in chunks of one member each
    (little padding): the same Q-values and states as one padded block per member, which is
    what 3 rows against 300 would otherwise take."""
    from policies.teams import stacked_team

    n_agents, obs_dim, A = 2, 6, 4
    agents = _agents(3, obs_dim + A + n_agents, A, seed=1)
    team = StackedTeam(agents, n_agents, A)
    member = torch.cat([torch.zeros(300, dtype=torch.long), torch.tensor([1, 1, 2])])
    member = member[torch.randperm(len(member), generator=torch.Generator().manual_seed(0))]
    R = len(member)
    counts = torch.bincount(member, minlength=3)
    rank = torch.empty_like(member)
    order = torch.argsort(member, stable=True)
    rank[order] = torch.arange(R) - (torch.cumsum(counts, 0) - counts)[member[order]]
    blocks, slots, *_, per = stacked_team._blocks(counts, member, rank, R, 3)
    assert per is not None and blocks * slots < 3 * 300 / 2, "chunks are chosen"
    obs = torch.randn(R, n_agents, obs_dim)
    h = torch.randn(R, n_agents, 64)
    last = torch.nn.functional.one_hot(torch.randint(A, (R, n_agents)), A).float()
    q, h2 = team.q_values(obs, h, last, member)
    for m in range(3):  # each member's rows alone: one block, no chunks
        rows = (member == m).nonzero().flatten()
        q_m, h_m = team.q_values(obs[rows], h[rows], last[rows], member[rows])
        torch.testing.assert_close(q[rows], q_m, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(h2[rows], h_m, atol=1e-6, rtol=1e-6)


def _ctx(q_fn, R, seed=0):
    return AttackContext(q_fn=q_fn, avail=torch.ones(R, 2, 4, dtype=torch.bool),
                         state=torch.zeros(R, 1), t=0, rand=Streams(torch.arange(R) + seed, 0),
                         rows=torch.arange(R))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_and_pgd_attacks_stay_in_the_ball_and_touch_only_targets(norm):
    agents = _agents(1, 6 + 4 + 2, 4)
    team = StackedTeam(agents, 2, 4)
    R = 16
    obs = torch.randn(R, 2, 6)
    h = team.initial_state(R)
    last = torch.zeros(R, 2, 4)

    def q_fn(o):
        return team.q_values(o, h, last, torch.zeros(R, dtype=torch.long))[0]

    for attack in (RandomAttack({"eps": 0.3, "norm": norm, "targets": [1]}, 2),
                   PGDAttack({"eps": 0.3, "norm": norm, "targets": [1], "steps": 4}, 2)):
        attack.reset(R, "cpu")
        pert = attack.perturb(obs, _ctx(q_fn, R))
        delta = pert - obs
        assert torch.equal(delta[:, 0], torch.zeros_like(delta[:, 0]))  # agent 0 untouched
        size = delta[:, 1].abs().amax(-1) if norm == "linf" else delta[:, 1].norm(dim=-1)
        assert (size <= 0.3 + 1e-5).all() and (size > 0).all()


def test_ball_noise_is_uniform_enough_and_per_episode():
    rand = Streams(torch.arange(4000), 3)
    x = ball_noise(rand, 1, 1, 0.5, "linf")
    assert abs(x.mean().item()) < 0.02 and x.abs().max() <= 0.5
    alone = ball_noise(Streams(torch.arange(4000)[7:8], 3), 1, 1, 0.5, "linf")
    assert torch.equal(alone, x[7:8])


def test_untrained_teams_are_distinct_members(tmp_path):
    cfg0, w0 = random_team("qmix", "pp7", 0)
    cfg1, w1 = random_team("qmix", "pp7", 1)
    assert any(not np.array_equal(w0[k], w1[k]) for k in w0)


def test_black_box_attack_takes_gradients_of_the_surrogate(tmp_path, monkeypatch):
    from arena import rollout
    from policies.build import build_policy_record
    from policies.observation.fgsm import fgsm as real_fgsm
    from policies.observation.fgsm import fgsm_steps as real_steps
    from policies.lineup import build_lineup

    path = make_league(tmp_path / "l.h5", attackers=(("fgsm", ["eps=0.3"]),))
    with League(path, "a") as lg:
        lg.add_policy(**build_policy_record("fgsm_bb", "fgsm",
                                            params=["eps=0.3", "surrogate=vdn1"]))
        lineup = build_lineup(lg, "pp7", ["qmix0@v1"], ["fgsm@v1", "fgsm_bb@v1"])
    assert list(lineup.surrogates) == [1]  # only the black-box attacker has a surrogate
    victim, (surrogate, _) = lineup.team, lineup.surrogates[1]
    calls = []

    def spy(obs, eps, norm="linf", agent_mask=None, avail=None, **kw):
        out = yield from real_steps(obs, eps, norm, agent_mask, avail, **kw)
        calls.append((obs.clone(), out, avail))
        return out

    monkeypatch.setattr("policies.observation.attacks.fgsm_steps", spy)
    seeds = rollout.episode_seeds(0, 0, 2)
    rollout.play("pp7", victim, torch.zeros(2, dtype=torch.long), lineup.attacker_objs,
                 torch.tensor([0, 1]), seeds, surrogates={1: (surrogate, torch.zeros(2, dtype=torch.long))})
    zeros = torch.zeros(1, 3, 6)
    h = victim.initial_state(1)
    member = torch.zeros(1, dtype=torch.long)
    found = set()
    for obs, out, avail in calls[:2]:  # the first step: the white-box row and the black-box row
        by_victim = real_fgsm(lambda o: victim.q_values(o, h, zeros, member)[0], obs, 0.3,
                              avail=avail)
        by_surrogate = real_fgsm(lambda o: surrogate.q_values(o, h, zeros, member)[0], obs, 0.3,
                                 avail=avail)
        assert not torch.allclose(by_victim, by_surrogate)
        found.add("victim" if torch.allclose(out, by_victim) else
                  "surrogate" if torch.allclose(out, by_surrogate) else "neither")
    assert found == {"victim", "surrogate"}
