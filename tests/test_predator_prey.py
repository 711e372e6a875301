"""Predator-prey (pp7, pp7_p05) against its plain-Python reference, hand-built situations,
and the environment contract, checked on every grid scenario (pp7, pp7_p05, stag10)."""

from __future__ import annotations

import pytest
import torch

from arena import scenarios
from arena.core import IllegalActionError, ScenarioError, ScenarioSpec
from arena.scenarios.grid import CATCH, GridConfig, GridHunt
from tests.reference.grid_reference import run_differential

GRID = ["pp7", "pp7_p05", "stag10"]
RIGHT, DOWN, LEFT, UP, STAY = range(5)


def cell(row: int, col: int, width: int = 7) -> int:
    return row * width + col


def with_layout(env, cells: list[int]):
    """Make every reset place walls, agents and prey on `cells` (same for each row)."""
    fixed = torch.tensor(cells).expand(env.B, len(cells)).clone()
    env._draw_layout = lambda: {"cells": fixed}
    return env


def random_actions(ts, gen):
    probs = ts.avail.float()
    B, n, A = probs.shape
    return torch.multinomial(probs.view(-1, A), 1, generator=gen).view(B, n)


class TinyHunt(GridHunt):
    """A 4×5 world with every feature (two prey types, walls, triggers) where wins happen."""

    def __init__(self, batch_size, device="cpu", auto_reset=False, debug=False):
        config = GridConfig(
            height=4, width=5, n_agents=3, prey_counts=(1, 2), prey_catchers=(2, 1),
            prey_rewards=(10.0, 1.0), episode_limit=25, view_radius=1, n_walls=2,
            miscatch_penalty=-0.5, collision_penalty=-0.1, n_triggers=1, trigger_mode="ood",
        )
        self.spec = ScenarioSpec("tiny", 3, config.obs_dim, config.state_dim, 6, 25)
        super().__init__(config, batch_size, device=device, auto_reset=auto_reset, debug=debug)


# -- differential tests against the reference --------------------------------------------------
@pytest.mark.parametrize("name", ["pp7", "pp7_p05"])
def test_matches_reference_on_every_row(name):
    env = scenarios.make(name, 8, auto_reset=True, debug=True)
    counts = run_differential(env, steps=400, seed=11)
    # the run went through catches, failed catches, collisions and many episode ends
    assert counts["caught"] > 10 and counts["failed_catches"] > 100
    assert counts["collisions"] > 0 and counts["episodes"] >= 8 * 6


def test_matches_reference_with_wins_walls_and_triggers():
    env = TinyHunt(8, auto_reset=True, debug=True)
    counts = run_differential(env, steps=300, seed=5)
    assert counts["wins"] > 10 and counts["episodes"] > counts["wins"]
    assert counts["trigger_seen"] > 0


# -- hand-built situations -------------------------------------------------------------------
def far_prey(k: int) -> list[int]:
    return [cell(6, c) for c in range(k)]


@pytest.mark.parametrize("name,penalty", [("pp7", 0.0), ("pp7_p05", -0.5)])
def test_two_adjacent_catchers_catch_and_one_alone_fails(name, penalty):
    # predators left and right of a prey at (3, 3); a third far away
    layout = [cell(3, 2), cell(3, 4), cell(0, 0), cell(3, 3)] + far_prey(5)
    env = with_layout(scenarios.make(name, 2), layout)
    ts = env.reset(seed=0)
    assert ts.avail[:, :2, CATCH].all() and not ts.avail[:, 2, CATCH].any()
    # row 0: both catch; row 1: only predator 0 catches
    ts = env.step(torch.tensor([[CATCH, CATCH, STAY], [CATCH, STAY, STAY]]))
    assert ts.reward.tolist() == [10.0, penalty]
    prey_left = ts.state.view(2, 2, 7, 7)[:, 1].sum((1, 2))
    assert prey_left.tolist() == [5.0, 6.0]
    assert ts.info["caught"].tolist() == [1, 0]
    assert ts.info["failed_catches"].tolist() == [0, 1]


def remove_prey(env, row: int, which) -> None:
    """Take prey `which` of episode `row` off the board by hand."""
    env.occ[row, env.prey_pos[row, which]] = 0
    env.prey_pos[row, which] = env.config.n_cells
    env.alive[row, which] = False


def test_catchers_stay_and_blocked_moves_are_no_ops():
    # agent 0 in the corner moves up (off the grid); agent 1 moves into agent 2, which
    # catches (alone) the prey above it and so does not move, whatever the order
    layout = [cell(0, 0), cell(2, 2), cell(2, 3), cell(1, 3)] + far_prey(5)
    env = with_layout(scenarios.make("pp7_p05", 4), layout)
    env.reset(seed=0)
    ts = env.step(torch.tensor([[UP, RIGHT, CATCH]] * 4))
    assert env.agent_pos.tolist() == [[cell(0, 0), cell(2, 2), cell(2, 3)]] * 4
    assert ts.reward.tolist() == [-0.5] * 4  # a failed catch; pp7 charges no collision


def test_all_prey_caught_is_a_win():
    layout = [cell(3, 2), cell(3, 4), cell(0, 0), cell(3, 3)] + far_prey(5)
    env = with_layout(scenarios.make("pp7", 1), layout)
    env.reset(seed=0)
    remove_prey(env, 0, slice(1, None))
    ts = env.step(torch.tensor([[CATCH, CATCH, STAY]]))
    assert ts.done.item() and ts.won.item() and ts.reward.item() == 10.0


def test_observation_layout_of_a_predator():
    # predator 0 at (0, 0): another predator right of it, a prey below it
    layout = [cell(0, 0), cell(0, 1), cell(5, 5), cell(1, 0)] + far_prey(5)
    env = with_layout(scenarios.make("pp7", 1), layout)
    ts = env.reset(seed=0)
    view = ts.obs[0, 0, :27].view(3, 3, 3)  # [channel, row offset, col offset]
    assert view[0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]  # other agents, self left out
    assert view[1].tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 0]]  # prey
    assert view[2].tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]  # outside the grid
    assert ts.obs[0, 0, 27:].tolist() == [0.0, 0.0]
    assert ts.obs[0, 2, 27:].tolist() == pytest.approx([5 / 6, 5 / 6])


def test_scripted_pair_catches_more_than_random_play():
    B, gen = 64, torch.Generator().manual_seed(0)
    random_env = scenarios.make("pp7", B)
    ts, caught_random = random_env.reset(seed=1), 0
    while not ts.done.all():
        ts = random_env.step(random_actions(ts, gen))
        caught_random += int(ts.info["caught"].sum())

    env = scenarios.make("pp7", B)
    ts, caught_scripted = env.reset(seed=1), 0
    while not ts.done.all():
        ts = env.step(chase_together(env, ts))
        caught_scripted += int(ts.info["caught"].sum())
    assert caught_random / B < 1.0  # random catches are rare
    assert caught_scripted > 3 * max(caught_random, 1)


def chase_together(env, ts) -> torch.Tensor:
    """All predators walk to the live prey nearest predator 0 and catch when next to it."""
    W, D = env.config.width, env.config.n_cells
    rows, cols = env.agent_pos // W, env.agent_pos % W  # [B, n]
    p_rows, p_cols = env.prey_pos // W, env.prey_pos % W  # [B, m]
    dist0 = (rows[:, :1] - p_rows).abs() + (cols[:, :1] - p_cols).abs()
    dist0 = torch.where(env.alive, dist0, 10 * D)
    target = dist0.argmin(1, keepdim=True)  # [B, 1]
    t_row, t_col = p_rows.gather(1, target), p_cols.gather(1, target)
    d_row, d_col = t_row - rows, t_col - cols  # [B, n]
    move = torch.where(d_col > 0, RIGHT, torch.where(d_col < 0, LEFT, STAY))
    move = torch.where(d_row.abs() > d_col.abs(), torch.where(d_row > 0, DOWN, UP), move)
    adjacent = d_row.abs() + d_col.abs() == 1
    return torch.where(adjacent & ts.avail[..., CATCH], CATCH, move)


# -- the environment contract, on every grid scenario -----------------------------------------
@pytest.mark.parametrize("name", GRID)
def test_shapes_and_dtypes_match_the_spec(name):
    env = scenarios.make(name, 5)
    s = env.spec
    ts = env.reset(seed=0)
    for ts in (ts, env.step(torch.zeros(5, s.n_agents, dtype=torch.long))):
        assert ts.obs.shape == (5, s.n_agents, s.obs_dim) and ts.obs.dtype == torch.float32
        assert ts.state.shape == (5, s.state_dim) and ts.state.dtype == torch.float32
        assert ts.avail.shape == (5, s.n_agents, s.n_actions) and ts.avail.dtype == torch.bool
        assert ts.reward.shape == (5,) and ts.reward.dtype == torch.float32
        assert ts.done.dtype == torch.bool and ts.won.dtype == torch.bool
        assert ts.info["trigger_seen"].shape == (5, s.n_agents)
    assert s.n_actions == 6


@pytest.mark.parametrize("name", GRID)
def test_same_seed_same_trajectory(name):
    def play(seed):
        env, gen = scenarios.make(name, 4), torch.Generator().manual_seed(0)
        ts, trace = env.reset(seed=seed), []
        for _ in range(30):
            ts = env.step(random_actions(ts, gen))
            trace.append(torch.cat([ts.obs.flatten(), ts.state.flatten(), ts.reward]))
        return torch.stack(trace)

    assert torch.equal(play(3), play(3))
    assert not torch.equal(play(3), play(4))


@pytest.mark.parametrize("name", GRID)
def test_finished_rows_stay_frozen(name):
    env, gen = scenarios.make(name, 3), torch.Generator().manual_seed(0)
    ts = env.reset(seed=0)
    for _ in range(env.spec.episode_limit - 1):
        ts = env.step(random_actions(ts, gen))
    assert not ts.done.any()  # random play never catches every prey this fast
    # end row 1 early by hand: its prey are removed, then one more step ends it as a win
    remove_prey(env, 1, slice(None))
    ts = env.step(random_actions(ts, gen))
    assert ts.done.all()
    assert ts.won.tolist() == [False, True, False]
    frozen = ts
    for _ in range(3):
        ts = env.step(random_actions(ts, gen))
        assert ts.reward.eq(0).all() and ts.done.all()
        assert torch.equal(ts.obs, frozen.obs) and torch.equal(ts.state, frozen.state)
        assert torch.equal(ts.won, frozen.won)


@pytest.mark.parametrize("name", GRID)
def test_auto_reset_starts_a_fresh_episode(name):
    env, gen = scenarios.make(name, 2, auto_reset=True), torch.Generator().manual_seed(0)
    ts = env.reset(seed=0)
    n_prey_cells = env.config.n_prey
    n_types = len(env.config.prey_counts)
    for t in range(env.spec.episode_limit):
        ts = env.step(random_actions(ts, gen))
    assert ts.done.all() and ts.info["truncated"].all() and not ts.won.any()
    assert ts.info["episode_step"].tolist() == [env.spec.episode_limit] * 2
    # the returned observation is already the new episode's: every prey is back
    prey = ts.state.view(2, -1, env.config.n_cells)[:, 1:1 + n_types].sum((1, 2))
    assert prey.tolist() == [n_prey_cells] * 2
    ts = env.step(random_actions(ts, gen))
    assert not ts.done.any() and ts.info["episode_step"].tolist() == [1, 1]


@pytest.mark.parametrize("name", GRID)
def test_illegal_action_raises_in_debug_and_is_masked_otherwise(name):
    n = scenarios.make(name, 1).spec.n_agents
    for debug in (True, False):
        env = scenarios.make(name, 4, debug=debug)
        ts = env.reset(seed=0)
        actions = torch.full((4, n), STAY)
        b, i = (~ts.avail[..., CATCH]).nonzero()[0].tolist()
        actions[b, i] = CATCH
        if debug:
            with pytest.raises(IllegalActionError):
                env.step(actions)
        else:
            twin = scenarios.make(name, 4)
            twin.reset(seed=0)
            masked = actions.clone()
            masked[b, i] = RIGHT  # the lowest-index available action
            assert torch.equal(env.step(actions).obs, twin.step(masked).obs)


def test_bad_options_are_one_line_errors():
    with pytest.raises(ScenarioError):
        scenarios.make("pp7", 1, penalty=1.0)
    with pytest.raises(ScenarioError):
        scenarios.make("pp7", 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", GRID)
def test_matches_reference_on_cuda(name):
    env = scenarios.make(name, 8, device="cuda", auto_reset=True, debug=True)
    counts = run_differential(env, steps=100, seed=2)
    assert counts["failed_catches"] > 0
