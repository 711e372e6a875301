"""Stag hunt with walls (stag10): reference agreement, hand-built situations, triggers.
The contract tests shared with predator-prey live in test_predator_prey.py."""

from __future__ import annotations

import pytest
import torch

from arena import scenarios
from arena.core import ScenarioError
from arena.scenarios.grid import CATCH
from tests.reference.grid_reference import run_differential

RIGHT, DOWN, LEFT, UP, STAY = range(5)
W = 10


def cell(row: int, col: int) -> int:
    return row * W + col


def layout(walls, agents, stags, hares) -> list[int]:
    """Fill up to 25 walls, 8 agents, 8 stags and 8 hares with far cells (rows 5-9)."""
    used = set(walls + agents + stags + hares)
    spare = iter(c for c in range(cell(5, 0), cell(10, 0)) if c not in used)
    walls = walls + [next(spare) for _ in range(25 - len(walls))]
    agents = agents + [next(spare) for _ in range(8 - len(agents))]
    stags = stags + [next(spare) for _ in range(8 - len(stags))]
    hares = hares + [next(spare) for _ in range(8 - len(hares))]
    return walls + agents + stags + hares


def make(batch_size=1, cells=None, **options):
    env = scenarios.make("stag10", batch_size, **options)
    if cells is not None:
        fixed = torch.tensor(cells).expand(batch_size, len(cells)).clone()
        env._draw_layout = lambda: {"cells": fixed}
    return env


def random_actions(ts, gen):
    B, n, A = ts.avail.shape
    return torch.multinomial(ts.avail.float().view(-1, A), 1, generator=gen).view(B, n)


TRIGGERS = {"trigger_fraction": 0.4}


@pytest.mark.parametrize(
    "options",
    [{}, {"trigger_mode": "ood", **TRIGGERS}, {"trigger_mode": "in_dist", **TRIGGERS},
     {"freeze": False}, {"miscatch_penalty": -0.5, "stag_catchers": 3, "hare_catchers": 2}],
    ids=["clean", "ood", "in_dist", "no_freeze", "penalty_and_catchers"],
)
def test_matches_reference_on_every_row(options):
    env = scenarios.make("stag10", 8, auto_reset=True, debug=True, **options)
    counts = run_differential(env, steps=250, seed=7)
    assert counts["caught"] > 15 and counts["failed_catches"] > 100
    assert counts["collisions"] > 50 and counts["episodes"] >= 8
    assert (counts["trigger_seen"] > 0) == ("trigger_mode" in options)
    assert (counts["frozen"] > 0) == options.get("freeze", True)


@pytest.mark.parametrize(
    "options,obs_dim,state_dim",
    [({}, 4 * 25 + 2, 4 * 100),
     ({"trigger_fraction": 0.2, "trigger_mode": "ood"}, 5 * 25 + 2, 5 * 100),
     ({"trigger_fraction": 0.0, "trigger_mode": "ood"}, 5 * 25 + 2, 5 * 100),
     ({"trigger_fraction": 0.2, "trigger_mode": "in_dist"}, 4 * 25 + 2, 4 * 100)],
)
def test_spec_dimensions(options, obs_dim, state_dim):
    spec = scenarios.spec("stag10", **options)
    assert (spec.obs_dim, spec.state_dim, spec.n_agents, spec.episode_limit) == (
        obs_dim, state_dim, 8, 200)


def test_hare_needs_one_catcher_stag_two():
    # agent 0 next to a hare, agent 1 alone next to a stag; agents 2, 3 both next to a stag
    cells = layout([], [cell(0, 0), cell(0, 4), cell(3, 0), cell(3, 2)],
                   [cell(0, 5), cell(3, 1)], [cell(1, 0)])
    env = make(1, cells, miscatch_penalty=-2.0)
    ts = env.reset(seed=0)
    assert ts.avail[0, :4, CATCH].all()
    ts = env.step(torch.tensor([[CATCH] * 4 + [STAY] * 4]))
    assert ts.info["caught"].item() == 2 and ts.info["failed_catches"].item() == 1
    assert ts.reward.item() == pytest.approx(1.0 + 10.0 - 2.0)
    state = ts.state.view(4, 10, 10)
    assert state[1].sum() == 7 and state[2].sum() == 7  # one stag and one hare gone


def test_move_blocked_by_an_agent_is_a_collision_and_walls_block_silently():
    # agent 0 walks into agent 1 (which stays); agent 2 walks into a wall
    cells = layout([cell(2, 6)], [cell(2, 2), cell(2, 3), cell(2, 5)], [], [])
    env = make(1, cells)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[RIGHT, STAY, RIGHT] + [STAY] * 5]))
    assert ts.reward.item() == pytest.approx(-0.1)
    assert env.agent_pos[0, :3].tolist() == [cell(2, 2), cell(2, 3), cell(2, 5)]


@pytest.mark.parametrize("mode", ["ood", "in_dist"])
def test_only_agents_whose_window_holds_a_trigger_see_it(mode):
    # 1 of 25 walls carries the trigger: the first one, at (0, 0); agent 0 at (2, 2) has it
    # in the corner of its 5x5 window, agent 1 at (3, 3) is just out of reach
    cells = layout([cell(0, 0)], [cell(2, 2), cell(3, 3)], [], [])
    env = make(1, cells, trigger_fraction=1 / 25, trigger_mode=mode)
    ts = env.reset(seed=0)
    assert ts.info["trigger_seen"][0].tolist() == [True] + [False] * 7
    wall = ts.obs[0, 0, 3 * 25:4 * 25].view(5, 5)
    if mode == "ood":
        trigger = ts.obs[0, 0, 4 * 25:5 * 25].view(5, 5)
        assert wall[0, 0] == 1.0 and trigger[0, 0] == 1.0 and trigger.sum() == 1.0
        assert ts.obs[0, 1, 4 * 25:5 * 25].sum() == 0.0
    else:
        assert wall[0, 0] == 0.5
        assert not (ts.obs[:, 1:, 3 * 25:4 * 25] == 0.5).any()


@pytest.mark.parametrize("mode", [None, "ood", "in_dist"])
def test_no_trigger_is_ever_seen_at_fraction_zero(mode):
    env, gen = make(16, trigger_fraction=0.0, trigger_mode=mode), torch.Generator()
    ts = env.reset(seed=0)
    for _ in range(30):
        assert not ts.info["trigger_seen"].any()
        ts = env.step(random_actions(ts, gen))
    assert not ts.info["trigger_seen"].any()


def test_triggered_wall_count_and_static_non_overlapping_walls():
    env, gen = make(8, trigger_fraction=0.2, trigger_mode="ood"), torch.Generator()
    ts = env.reset(seed=3)
    grid = ts.state.view(8, 5, 100)  # agents, stags, hares, walls, triggers
    assert grid[:, 3].sum(1).tolist() == [25.0] * 8
    assert grid[:, 4].sum(1).tolist() == [5.0] * 8  # round(0.2 * 25)
    assert (grid[:, 4] <= grid[:, 3]).all()  # triggers sit on walls
    walls = grid[:, 3:].clone()
    for _ in range(40):
        ts = env.step(random_actions(ts, gen))
        grid = ts.state.view(8, 5, 100)
        assert torch.equal(grid[:, 3:], walls)
        assert grid[:, :4].sum(1).max() <= 1.0  # one entity per cell at most


@pytest.mark.parametrize(
    "options",
    [{"trigger_fraction": 1.5, "trigger_mode": "ood"}, {"trigger_mode": "pattern"},
     {"trigger_fraction": 0.2, "trigger_mode": None}],
)
def test_bad_trigger_options_are_one_line_errors(options):
    with pytest.raises(ScenarioError):
        scenarios.make("stag10", 1, **options)


def test_bad_trigger_sizes_are_one_line_errors():
    env = scenarios.make("stag10", 2)
    for size in (torch.tensor([0.1, 1.5]), torch.tensor([0.1, 0.2, 0.3]), -0.1):
        with pytest.raises(ScenarioError):
            env.set_triggers(size)
    with pytest.raises(ScenarioError):
        scenarios.make("stag10", 2, trigger_mode=None).set_triggers(0.2)
    with pytest.raises(ScenarioError):
        scenarios.make("3m", 2).set_triggers(0.2)


@pytest.mark.parametrize("name", ["stag10", "stag10_ood"])
def test_set_triggers_switches_each_episode_and_changes_nothing_else(name):
    # rows 0-3 without a trigger, rows 4-7 with 0, 1, 5 and 25 triggered walls: the same seeds
    # give the same layout and moves, and a row without its trigger is the plain game
    plain = scenarios.make("stag10", 8, trigger_mode=None)
    env = scenarios.make(name, 8)
    assert env.spec.triggers and env.spec.name == name
    env.set_triggers(torch.tensor([0.0] * 4 + [0.0, 0.04, 0.2, 1.0]))
    gen, ts0 = torch.Generator().manual_seed(0), plain.reset(seed=5)
    ts = env.reset(seed=5)
    triggered_walls = ts.state.view(8, -1, 100)[:, 3].eq(0.5).sum(1) if name == "stag10" \
        else ts.state.view(8, -1, 100)[:, 4].sum(1)
    assert triggered_walls.tolist() == [0, 0, 0, 0, 0, 1, 5, 25]
    for _ in range(60):
        walls = 3 * 25 + torch.arange(25)
        clean_view = ts.obs[..., :4 * 25].clone()
        clean_view[..., walls] = clean_view[..., walls].ceil()  # 0.5 (triggered) reads 1.0
        assert torch.equal(clean_view, ts0.obs[..., :4 * 25])
        assert torch.equal(ts.obs[:4, :, :102], ts0.obs[:4]) if name == "stag10" else True
        assert not ts.info["trigger_seen"][:5].any()
        assert torch.equal(ts.reward, ts0.reward)
        a = random_actions(ts0, gen)
        ts, ts0 = env.step(a), plain.step(a)
    assert ts.info["trigger_seen"][7].any()


# -- capture freezing, miscatch penalty, catchers needed ---------------------------------------
def test_catchers_of_a_caught_prey_are_removed_for_the_rest_of_the_episode():
    # agents 0, 1 catch the stag at (0, 5); agent 2 the hare at (3, 1); agent 3 stands next to
    # the stag without catching; agent 4 sees agent 0's cell in its window
    cells = layout([], [cell(0, 4), cell(0, 6), cell(3, 0), cell(1, 5), cell(2, 4)],
                   [cell(0, 5)], [cell(3, 1)])
    env = make(1, cells)
    ts = env.reset(seed=0)
    assert ts.obs[0, 4, :25].view(5, 5)[0, 2] == 1.0  # agent 0, two rows up
    ts = env.step(torch.tensor([[CATCH, CATCH, CATCH, STAY, STAY, STAY, STAY, STAY]]))
    assert ts.reward.item() == pytest.approx(11.0)
    assert env.frozen[0].tolist() == [True] * 3 + [False] * 5
    assert ts.info["frozen"].item() == 3
    assert ts.obs[0, :3].abs().sum() == 0  # removed agents see nothing
    assert ts.avail[0, :3].tolist() == [[False] * 4 + [True, False]] * 3
    assert ts.obs[0, 3:].abs().sum(-1).gt(0).all()
    assert ts.obs[0, 4, :25].view(5, 5)[0, 2] == 0.0  # nobody sees a removed agent
    assert ts.state.view(4, 10, 10)[0, 0].sum() == 0  # row 0 of the agent channel is empty
    assert ts.state.view(4, 100)[0].sum() == 5
    assert not ts.info["trigger_seen"][0, :3].any()
    # the freed cell is free: agent 4 walks up into agent 0's old cell; episode goes on
    ts = env.step(torch.tensor([[STAY, STAY, STAY, STAY, UP, STAY, STAY, STAY]]))
    assert env.agent_pos[0, 4].item() == cell(1, 4) and not ts.done.item()
    ts = env.step(torch.tensor([[STAY, STAY, STAY, STAY, UP, STAY, STAY, STAY]]))
    assert env.agent_pos[0, 4].item() == cell(0, 4)
    assert env.frozen[0].sum() == 3 and ts.reward.item() == 0.0


def test_removed_agents_stay_removed_until_the_episode_resets():
    cells = layout([], [cell(3, 0)], [], [cell(3, 1)])
    env = make(2, cells, auto_reset=True)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[CATCH] + [STAY] * 7] * 2))
    assert env.frozen[:, 0].all() and ts.reward.tolist() == [1.0, 1.0]
    for _ in range(198):
        ts = env.step(torch.full((2, 8), STAY))
        assert env.frozen[:, 0].all() and not ts.done.any()
    ts = env.step(torch.full((2, 8), STAY))
    assert ts.done.all() and ts.info["truncated"].all()
    assert not env.frozen.any()  # the new episode has everyone back


def test_without_freeze_catchers_stay_on_the_board():
    cells = layout([], [cell(0, 4), cell(0, 6)], [cell(0, 5)], [])
    env = make(1, cells, freeze=False)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[CATCH, CATCH] + [STAY] * 6]))
    assert ts.reward.item() == pytest.approx(10.0) and not env.frozen.any()
    assert env.agent_pos[0, :2].tolist() == [cell(0, 4), cell(0, 6)]
    assert ts.avail[0, :2, :5].all()


@pytest.mark.parametrize("penalty", [0.0, -0.5])
def test_a_lone_catcher_of_a_stag_pays_the_miscatch_penalty_and_stays(penalty):
    cells = layout([], [cell(0, 4)], [cell(0, 5)], [])
    env = make(1, cells, miscatch_penalty=penalty)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[CATCH] + [STAY] * 7]))
    assert ts.reward.item() == pytest.approx(penalty)
    assert ts.info["failed_catches"].item() == 1 and ts.info["caught"].item() == 0
    assert not env.frozen.any() and env.agent_pos[0, 0].item() == cell(0, 4)


def test_catchers_needed_per_prey_type_are_options():
    # one agent next to a stag, one next to a hare
    cells = layout([], [cell(0, 4), cell(3, 0)], [cell(0, 5)], [cell(3, 1)])
    env = make(1, cells, stag_catchers=1, hare_catchers=2, miscatch_penalty=-1.0)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[CATCH, CATCH] + [STAY] * 6]))
    assert ts.info["caught"].item() == 1 and ts.reward.item() == pytest.approx(10.0 - 1.0)
    assert env.frozen[0].tolist() == [True, False] + [False] * 6
    assert "1 catchers" not in env.spec.description


@pytest.mark.parametrize(
    "options", [{"stag_catchers": 0}, {"hare_catchers": 5}, {"miscatch_penalty": 1.0}]
)
def test_bad_capture_options_are_one_line_errors(options):
    with pytest.raises(ScenarioError):
        scenarios.make("stag10", 1, **options)


@pytest.mark.parametrize("mode", [None, "ood", "in_dist"])
def test_observations_stay_within_the_declared_bounds_in_every_trigger_mode(mode):
    options = {"trigger_mode": mode, "trigger_fraction": 0.4} if mode else {"trigger_mode": None}
    env, gen = make(8, **options), torch.Generator().manual_seed(0)
    low, high = env.spec.bounds()
    binary = env.spec.group_mask("binary")
    wall = env.spec.group_mask("wall")
    assert bool((binary & wall).any()) == (mode != "in_dist")
    assert bool(env.spec.group_mask("scalar").any()) == (mode == "in_dist")
    assert env.spec.group_sizes()["position"] == 2 and env.spec.default_eps == 0.2
    ts = env.reset(seed=2)
    for _ in range(100):
        assert ((ts.obs >= low) & (ts.obs <= high)).all()
        bits = ts.obs[..., binary]
        assert ((bits == 0) | (bits == 1)).all()
        ts = env.step(random_actions(ts, gen))
