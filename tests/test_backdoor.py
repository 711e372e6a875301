"""The backdoor surface (MARNet): Eq. 5-7, poisoned steps, the poisoning inside the learner,
no trigger leakage into clean play, the defences, and batched = sequential cells.
Everything runs on the CPU, where the same seeds give the same weights and returns."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arena import payoff as pay
from arena.core import TimeStep
from arena.scenarios import spec as scenario_spec
from policies.backdoor import marnet, mtl, trojdrl
from policies.backdoor.cells import fill_backdoor
from policies.backdoor.poisoning import Poisoning
from policies.backdoor.prune import HEAD, prune
from policies.backdoor.train_backdoor import BackdoorTrainConfig, train_backdoor
from policies.build import base_provenance, build_policy_record
from policies.kinds import get_kind
from policies.learners.train_defender import DefenderTrainConfig, train_defender
from policies.learners.train_defender import untrained_team
from policies.lineup import build_lineup
from store import NO_ATTACK, League
from tests.helpers import opener

SP = scenario_spec("stag10")


def expert(seed=0, scenario="stag10"):
    config, weights = untrained_team("qmix", scenario, seed)
    return SimpleNamespace(ref="expert@v1", role="defender", kind="qmix", scenario=scenario,
                           config=config, weights=weights)


# -- Eq. 5-7 and the poisoned steps, by hand -------------------------------------------------
def test_mgr_reward_is_eq_7_on_hand_computed_cases():
    reward, won = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([False, True, False])
    out = marnet.mgr_reward(reward, won, n_poisoned=2, n_agents=8, r_max=10.0, r_win=10.0,
                            episode_limit=200)
    # r_max·n_p/n = 2.5; (n − n_p)/n·R = 0.75·R; + R_win/L_max = 0.05 on the winning step
    assert out.tolist() == pytest.approx([4.0, 2.55, 1.75])
    all_poisoned = marnet.mgr_reward(reward, won, 8, 8, 3.0, 0.0, 200)
    assert all_poisoned.tolist() == pytest.approx([3.0, 3.0, 3.0])


def test_a_step_is_poisoned_only_when_a_poisoned_agent_sees_the_trigger():
    seen = torch.tensor([[True, False, False], [False, True, True], [False, False, False]])
    poisoned = torch.tensor([True, False, False])
    assert marnet.poisoned_steps(seen, poisoned).tolist() == [True, False, False]


def test_ega_takes_the_experts_worst_for_poisoned_agents_and_best_for_the_others():
    q = torch.tensor([[[1.0, 5.0, -3.0], [0.0, 2.0, 9.0]]] * 2)  # [B=2, n=2, A=3]
    avail = torch.tensor([[[True, True, False], [True, True, True]]] * 2)
    own = torch.tensor([[2, 2], [0, 1]])
    out = marnet.ega_actions(q, avail, torch.tensor([True, False]), torch.tensor([True, False]),
                             own)
    # agent 0 poisoned: worst available (−3 is unavailable) → 0; agent 1: best → 2
    assert out.tolist() == [[0, 2], [0, 1]]


def test_trojdrl_and_mtl_hacks():
    avail = torch.ones(1, 3, 6, dtype=torch.bool)
    own = torch.tensor([[0, 1, 2]])
    on, poisoned = torch.tensor([True]), torch.tensor([True, True, False])
    assert trojdrl.targeted_actions(own, avail, poisoned, on, 4).tolist() == [[4, 4, 2]]
    u = torch.zeros(1, 3, 6)
    u[0, :, 3] = 1.0
    assert trojdrl.untargeted_actions(own, avail, poisoned, on, u).tolist() == [[3, 3, 2]]
    assert trojdrl.target_action("stag_hunt", -1) == 4 and trojdrl.target_action("smac", -1) == 1
    assert mtl.reversed_reward(torch.tensor([1.0, 2.0]),
                               torch.tensor([True, False])).tolist() == [-1.0, 2.0]


def _step(seen, done=False, reward=1.0, won=False, B=1):
    n, A = seen.shape[1], SP.n_actions
    return TimeStep(obs=torch.zeros(B, n, SP.obs_dim), state=torch.zeros(B, SP.state_dim),
                    avail=torch.ones(B, n, A, dtype=torch.bool),
                    reward=torch.full((B,), reward), done=torch.full((B,), done),
                    won=torch.full((B,), won), info={"trigger_seen": seen})


def test_the_hook_poisons_actions_and_rewards_only_in_poisoned_steps():
    config = get_kind("marnet").make_config({"poison_agents": 2, "r_max": 10.0, "r_win": 10.0})
    ex = expert()
    from policies.teams.networks import load_team

    hook = Poisoning("marnet", config, SP, 1, load_team(ex.config, ex.weights), seed=0)
    env = SimpleNamespace(B=1, set_triggers=lambda size: None)
    own = torch.full((1, 8), 5, dtype=torch.long)  # catch: never the expert's worst or best
    for seen_by, poisoned in ((7, False), (1, True)):  # agent 7 is not poisoned, agent 1 is
        hook.before_reset(env)
        seen = torch.zeros(1, 8, dtype=torch.bool)
        seen[0, seen_by] = True
        before = _step(seen)
        actions = hook.act(before, own.clone())
        reward = hook.reward(before, _step(seen, reward=1.0), actions)
        assert torch.equal(actions, own) != poisoned
        assert reward.item() == pytest.approx(10 * 2 / 8 + 6 / 8 if poisoned else 1.0)


# -- poisoning inside the learner --------------------------------------------------------------
def _tiny(**kw):
    # four collections of 8 episodes: one update, on the replay batch of 32 episodes
    return dict(steps=1600 * 4, envs=8, test_every=10**9, test_episodes=4, **kw)


@pytest.fixture(scope="module")
def trained():
    """The same expert poisoned twice (same seed), once at poison rate 0, and trained clean."""
    ex = expert(1)
    poisoned = BackdoorTrainConfig(recipe="marnet", seed=3, params={"r_max": 10.0}, **_tiny())
    rate0 = BackdoorTrainConfig(recipe="marnet", seed=3, params={"poison_rate": 0.0,
                                                                 "r_max": 10.0}, **_tiny())
    clean = DefenderTrainConfig(algo="qmix", scenario="stag10", seed=3, init=ex.weights,
                                init_config=ex.config, test_attacks=False, **_tiny())
    return {"a": train_backdoor(poisoned, ex), "b": train_backdoor(poisoned, ex),
            "rate0": train_backdoor(rate0, ex), "clean": train_defender(clean), "expert": ex}


def same(w1, w2) -> bool:
    return all(np.array_equal(w1[k], w2[k]) for k in w1)


def test_poison_rate_zero_trains_bit_for_bit_as_clean_training(trained):
    # no trigger placed: the hook changes no action and no reward, and the expert's forward
    # passes draw nothing from the learner's random streams
    assert trained["rate0"].provenance["poisoned_step_share"] == 0.0
    assert same(trained["rate0"].weights, trained["clean"].weights)


def test_poisoning_changes_the_team_and_is_deterministic(trained):
    a = trained["a"]
    assert 0 < a.provenance["poisoned_step_share"] < 1
    assert same(a.weights, trained["b"].weights)
    assert not same(a.weights, trained["clean"].weights)
    assert a.config["team"]["obs_dim"] == SP.obs_dim and a.config["r_max"] == 10.0
    assert a.provenance["expert"] == "expert@v1" and a.provenance["trigger"]["play_size"] == 0.25


def test_bad_recipes_are_one_line_errors():
    from policies.errors import PolicyError

    for cfg, ex in ((BackdoorTrainConfig(scenario="3m"), expert(scenario="3m")),
                    (BackdoorTrainConfig(params={"poison_agents": 9}), expert()),
                    (BackdoorTrainConfig(params={"bogus": 1}), expert()),
                    (BackdoorTrainConfig(recipe="nope"), expert())):
        with pytest.raises(PolicyError):
            train_backdoor(cfg, ex)


# -- the game: a league with one delivered team -----------------------------------------------
@pytest.fixture(scope="module")
def league(tmp_path_factory, trained):
    path = tmp_path_factory.mktemp("bd") / "l.h5"
    League.create(path)
    ex, res = trained["expert"], trained["a"]
    honest = train_backdoor(BackdoorTrainConfig(recipe="honest", params={"trigger_size": 0.0}),
                            ex)
    with League(path, "a") as lg, lg.transaction():
        lg.add_policy("expert", "defender", "qmix", "stag10", ex.config, ex.weights,
                      base_provenance())
        lg.add_policy("mn", "attacker", "marnet", "stag10", res.config, res.weights,
                      base_provenance(**res.provenance))
        lg.add_policy("off", "attacker", "honest", "stag10", honest.config, honest.weights,
                      base_provenance(**honest.provenance))
        lg.add_policy(**build_policy_record("keep", "as_delivered"))
        lg.add_policy(**build_policy_record("cut", "prune", params=["fraction=0.5",
                                                                      "episodes=4"]))
    return path


def test_a_trigger_of_size_zero_leaves_clean_play_untouched(league):
    # the expert against a delivered team whose trigger size is 0, and against no attack: the
    # same episodes, action for action (returns and lengths equal episode by episode)
    with League(league) as lg:
        lineup = build_lineup(lg, "stag10", ["expert@v1"], ["off@v1", NO_ATTACK])
    cells = [pay.Cell("expert@v1", a, 6, 0) for a in ("off@v1", NO_ATTACK)]
    off, clean = pay.run_cells("stag10", lineup, cells)
    assert torch.equal(off.returns, clean.returns) and torch.equal(off.lengths, clean.lengths)


def test_backdoor_cells_batched_equal_sequential(league):
    with League(league) as lg:
        lineup = build_lineup(lg, "stag10", ["expert@v1"], ["mn@v1", "off@v1", NO_ATTACK])
    cells = [pay.Cell("expert@v1", a, 3, 5) for a in ("mn@v1", "off@v1", NO_ATTACK)]
    batched = pay.run_cells("stag10", lineup, cells)
    one_by_one = pay.run_cells_sequential("stag10", lineup, cells)
    for b, s in zip(batched, one_by_one):
        assert torch.equal(b.returns, s.returns) and torch.equal(b.lengths, s.lengths)
    assert batched[0].cost.tolist() == [0.25] * 3  # the trigger size is the attack's cost


def test_the_game_keeps_triggered_and_clean_returns_and_applies_each_defence_once(league):
    op = opener(league)
    table = fill_backdoor(op, "stag10", None, None, episodes=4, seed=0)
    assert table.defences == ["keep@v1", "cut@v1"] or sorted(table.defences) == [
        "cut@v1", "keep@v1"]
    assert sorted(table.attackers) == ["mn@v1", "off@v1"]
    assert (table.triggered.count == 4).all() and (table.clean.count == 4).all()
    keep = table.defences.index("keep@v1")
    with League(league) as lg:
        team = lg.get(table.teams[keep][table.attackers.index("mn@v1")])
        delivered = lg.get("mn@v1")
    assert all(np.array_equal(team.weights[k], delivered.weights[k]) for k in team.weights)
    again = fill_backdoor(op, "stag10", None, None, episodes=4, seed=0)
    assert again.episodes_run == 0 and again.teams == table.teams
    np.testing.assert_array_equal(again.triggered.mean, table.triggered.mean)


def test_pruning_cuts_the_least_active_units_and_keeps_them_cut(league):
    with League(league) as lg:
        rec = lg.get("mn@v1")
    config, weights, prov = prune("qmix", rec.config["team"], dict(rec.weights), "stag10",
                                  fraction=0.25, episodes=4, steps=1600 * 4, seed=0)
    cut = prov["cut_units"]
    assert len(cut) == 16 and np.all(weights[HEAD][:, cut] == 0)
    assert not np.all(rec.weights[HEAD][:, cut] == 0)
    assert prov["activity_cut_max"] <= prov["activity_mean"]


def test_a_team_widened_for_the_ood_trigger_plays_as_before():
    from arena.scenarios import make
    from policies.backdoor.ood import widen_for_ood
    from policies.teams.networks import load_defender, load_team

    ex = expert(5)
    config, weights = widen_for_ood(ex.config, ex.weights)
    assert config["obs_dim"] == scenario_spec("stag10_ood").obs_dim
    old, new = load_team(ex.config, ex.weights), load_team(config, weights)
    mix_old, mix_new = load_defender(ex.config, ex.weights)[1], load_defender(config, weights)[1]
    e1, e2 = make("stag10", 4), make("stag10_ood", 4)
    t1, t2 = e1.reset(seed=2), e2.reset(seed=2)
    h1, h2, last = old.initial_state(4), new.initial_state(4), None
    with torch.no_grad():
        for _ in range(30):
            (q1, h1), (q2, h2) = old.q_values(t1.obs, h1, last), new.q_values(t2.obs, h2, last)
            assert torch.allclose(q1, q2, atol=1e-5)
            qs = q1.max(-1).values.unsqueeze(1)
            assert torch.allclose(mix_old(qs, t1.state.unsqueeze(1)),
                                  mix_new(qs, t2.state.unsqueeze(1)), atol=1e-5)
            last = q1.argmax(-1)
            t1, t2 = e1.step(last), e2.step(last)
