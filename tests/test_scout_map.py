"""The scouting map `1o_2m_scout` (arena/scenarios/smac_scout.py), after NDQ's 1o_2r_vs_4r
(Wang et al., ICLR 2020): who sees what, where the enemy stands, that it holds, seeds, shapes,
and scripted play showing that the side is worth half the games."""

from __future__ import annotations

import pytest
import torch

from arena.scenarios import make
from arena.scenarios.smac_obs import N_NO_ATTACK
from arena.scenarios.smac_scout import PLACES, SCOUT_LIMIT, SPOTTER_SIGHT, ScoutSmac
from arena.scenarios.smac_scripted import focus_fire_actions

STOP, EAST, WEST = 1, 4, 5


def random_legal(ts, gen: torch.Generator) -> torch.Tensor:
    B, n, A = ts.avail.shape
    probs = ts.avail.float().reshape(B * n, A)
    return torch.multinomial(probs, 1, generator=gen).reshape(B, n)


def test_spec_is_3m_shapes_with_the_scout_limit():
    env = make("1o_2m_scout", 2)
    sp = env.spec
    assert isinstance(env, ScoutSmac)
    # 3 marines vs 1 marauder: obs 4 + 1·5 + 2·5 + 1, state 3·4 + 1·3 + 3·7, actions 6 + 1
    assert (sp.name, sp.n_agents, sp.obs_dim, sp.state_dim, sp.n_actions) == (
        "1o_2m_scout", 3, 20, 36, 7)
    assert sp.episode_limit == SCOUT_LIMIT == 24 and sp.family == "smac"
    assert env.table.hp_max.tolist() == [45.0, 45.0, 45.0, 125.0]


def test_blind_agents_see_no_unit_and_the_spotter_sees_every_enemy():
    env = make("1o_2m_scout", 16)
    blocks = env.layout.obs_blocks()
    ts = env.reset(3)
    enemy = ts.obs[:, 0, blocks["enemy"]].reshape(16, env.n_enemies, -1)
    dist = enemy[..., env.layout.enemy.index("distance")]  # [B, m]
    true = (env.units.pos[:, 3:] - env.units.pos[:, :1]).norm(dim=-1)
    torch.testing.assert_close(dist, true / SPOTTER_SIGHT)  # far sight, its own normaliser
    assert bool((dist > 0.5).all())  # 10 units away, out of SMAC's sight of 9
    gen = torch.Generator().manual_seed(0)
    for _ in range(SCOUT_LIMIT):
        for part in ("enemy", "ally"):
            assert bool((ts.obs[:, 1:, blocks[part]] == 0).all())
        ts = env.step(random_legal(ts, gen))
        if bool(ts.done.all()):
            break


def test_enemy_spawns_at_the_drawn_place_and_holds():
    env = make("1o_2m_scout", 64)
    env.reset(11)
    places = torch.tensor(PLACES)
    centre = env.units.pos[:, 3:].mean(1)  # [B, 2]
    assert torch.allclose(centre, places[env.place], atol=0.2)
    assert set(env.place.tolist()) == {0, 1}
    start = env.units.pos[:, 3:].clone()
    ts = env.sync()
    for _ in range(5):  # the team walks toward the west place, in the enemy's sight at times
        ts = env.step(torch.where(ts.avail[..., WEST], WEST, STOP))
    assert torch.equal(env.units.pos[:, 3:], start)


def test_enemy_fires_from_its_place_but_never_walks():
    env = ScoutSmac(1, debug=True)
    env.reset(0)
    e0 = env.units.pos[0, 3].clone()
    env.units.pos[0, 0] = e0 + torch.tensor([5.5, 0.0])  # in the enemy's weapon range
    env.units.pos[0, 1] = e0 + torch.tensor([8.0, 0.0])  # seen, out of range
    env.units.pos[0, 2] = e0 + torch.tensor([8.0, 2.0])
    start = env.units.pos[0, 3:].clone()
    ts = env.sync()
    for _ in range(4):
        ts = env.step(torch.where(ts.avail[..., STOP], STOP, 0))
    assert torch.equal(env.units.pos[0, 3:], start)
    assert float(env.units.hp[0, 0]) < 45.0 and float(env.units.hp[0, 1]) == 45.0
    assert int(env.units.target[0, 3]) == 0


def test_the_step_limit_ends_the_battle_lost_not_truncated():
    env = make("1o_2m_scout", 8)
    ts = env.reset(2)
    for t in range(SCOUT_LIMIT):
        assert not bool(ts.done.any())
        ts = env.step(torch.where(ts.avail[..., STOP], STOP, 0))  # nobody walks, nobody wins
    assert bool(ts.done.all()) and not bool(ts.won.any())
    assert not bool(ts.info["truncated"].any())


def test_seeds_reproduce():
    def roll(seed):
        env = make("1o_2m_scout", 8)
        ts, gen, out = env.reset(seed), torch.Generator().manual_seed(1), []
        for _ in range(10):
            out.append((ts.obs.clone(), ts.state.clone(), ts.reward.clone()))
            ts = env.step(random_legal(ts, gen))
        return env.place.clone(), out

    (pa, a), (pb, b), (pc, _) = roll(5), roll(5), roll(6)
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            assert torch.equal(u, v)


@pytest.mark.parametrize("told", [True, False])
def test_knowing_the_side_is_worth_half_the_games(told):
    """Focus fire with the side known wins every game; the blind pair walking west (a best
    play without a message) wins the west half only, no east game."""
    B = 64
    env = make("1o_2m_scout", B)
    ts = env.reset(7)
    while not bool(ts.done.all()):
        a = focus_fire_actions(env, ts)  # reads true positions: everyone knows the side
        if not told:
            can = ts.avail[:, 1:, N_NO_ATTACK:]
            walk = torch.where(ts.avail[:, 1:, WEST], WEST, STOP)
            blind = torch.where(can.any(-1), N_NO_ATTACK + can.float().argmax(-1), walk)
            a[:, 1:] = torch.where(ts.avail[:, 1:, STOP], blind, 0)
        ts = env.step(a)
    east = env.place == 1
    if told:
        assert bool(ts.won.all())
    else:
        assert not bool(ts.won[east].any())
        assert bool(ts.won[~east].all()) and bool(east.any())


@pytest.mark.parametrize("turn", [2, 5, 8, 11])
def test_a_blind_pair_turning_back_arrives_too_late(turn):
    """Walking west and turning east when no attack came up by `turn` (the spotter waiting
    for them) wins the games of one side at most: within the limit one place only can be
    reached and cleared."""
    B = 64
    env = make("1o_2m_scout", B)
    ts, t = env.reset(7), 0
    while not bool(ts.done.all()):
        a = focus_fire_actions(env, ts)
        can = ts.avail[:, 1:, N_NO_ATTACK:]
        way = WEST if t < turn else EAST
        walk = torch.where(ts.avail[:, 1:, way], way, STOP)
        blind = torch.where(can.any(-1), N_NO_ATTACK + can.float().argmax(-1), walk)
        a[:, 1:] = torch.where(ts.avail[:, 1:, STOP], blind, 0)
        gap = (env.units.pos[:, 1:3, None, 0] - env.units.pos[:, None, 3:, 0]).abs().amin((1, 2))
        a[:, 0] = torch.where((gap > 8) & ts.avail[:, 0, STOP], STOP, a[:, 0])
        ts, t = env.step(a), t + 1
    east = env.place == 1
    assert not (bool(ts.won[east].any()) and bool(ts.won[~east].any()))
