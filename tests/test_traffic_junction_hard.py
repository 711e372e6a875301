"""tj_hard: IC3Net's hard traffic junction, checked against facts from IC3Net's own
environment (ic3net-envs traffic_helper.py) and step by step against a plain-Python reference.

Measured success rates at the defaults (add_rate 0.05, 20 cars, 80 steps), 2000 episodes each,
seed 0: uniformly random gas/brake per car 0.0%, always brake 0.0% (a waiting car is hit by
the next arrival at its entry), always gas 8.4%. At the curriculum's starting rate 0.02:
random 13.4%, always brake 0.75%, always gas 63.8%.
"""

import numpy as np
import pytest
import torch

from arena.core import ScenarioError
from arena.scenarios import make
from arena.scenarios.traffic_junction import BRAKE, GAS
from arena.scenarios.traffic_junction_hard import TrafficJunctionHard, hard_network
from tests.reference.tj_hard_reference import HardRoads, TrafficJunctionHardReference

# Per entry point (top-left, top-right, left-top, left-bottom, bottom-left, bottom-right,
# right-top, right-bottom), IC3Net's seven routes at dim 18 in its order: (length, last cell).
IC3NET_ROUTES_18 = [
    [(18, (17, 4)), (17, (12, 0)), (27, (13, 17)), (9, (4, 0)), (19, (5, 17)), (26, (17, 12)),
     (20, (0, 13))],
    [(18, (17, 12)), (25, (12, 0)), (19, (13, 17)), (17, (4, 0)), (16, (0, 5)), (26, (17, 4)),
     (11, (5, 17))],
    [(18, (5, 17)), (25, (17, 12)), (19, (0, 13)), (17, (17, 4)), (16, (12, 0)), (26, (13, 17)),
     (11, (0, 5))],
    [(18, (13, 17)), (17, (17, 12)), (27, (0, 13)), (9, (17, 4)), (19, (0, 5)), (26, (5, 17)),
     (20, (4, 0))],
    [(18, (0, 5)), (25, (5, 17)), (19, (4, 0)), (17, (13, 17)), (16, (17, 12)), (26, (0, 13)),
     (11, (12, 0))],
    [(18, (0, 13)), (17, (5, 17)), (27, (4, 0)), (9, (13, 17)), (19, (12, 0)), (26, (0, 5)),
     (20, (17, 4))],
    [(18, (4, 0)), (17, (0, 5)), (27, (17, 4)), (9, (0, 13)), (19, (17, 12)), (26, (12, 0)),
     (20, (13, 17))],
    [(18, (12, 0)), (25, (0, 5)), (19, (17, 4)), (17, (0, 13)), (16, (5, 17)), (26, (4, 0)),
     (11, (17, 12))],
]
IC3NET_ENTRIES_18 = [(0, 4), (0, 12), (5, 0), (13, 0), (17, 5), (17, 13), (4, 17), (12, 17)]


def random_legal(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # Mostly gas: cars cross junctions and sometimes crash, and some episodes stay clean
    # (a car that waits long at its entry is soon hit by the next arrival).
    w = avail.float() * torch.tensor([9.0, 1.0])
    return torch.multinomial(w.view(-1, 2), 1, generator=gen).view(avail.shape[:2])


class Feed:
    """Replaces both draws of an arrival with recorded ones, to hand them to the reference."""

    def __init__(self, env: TrafficJunctionHard, seed: int):
        self.rng = np.random.default_rng(seed)
        self.env = env
        self.arrivals: list[np.ndarray] = []
        self.choices: list[np.ndarray] = []
        env._draw_arrivals = lambda: self._draw(self.arrivals)
        env._draw_routes = lambda: self._draw(self.choices)

    def _draw(self, into: list) -> torch.Tensor:
        u = self.rng.random((self.env.B, 8))
        into.append(u)
        return torch.tensor(u, dtype=torch.float32, device=self.env.device)


def assert_row(ts, b: int, ref: TrafficJunctionHardReference) -> None:
    obs, state, avail = ref.observe()
    torch.testing.assert_close(ts.obs[b].cpu(), torch.tensor(obs), rtol=0, atol=1e-6)
    torch.testing.assert_close(ts.state[b].cpu(), torch.tensor(state), rtol=0, atol=1e-6)
    assert ts.avail[b].cpu().tolist() == avail


def test_routes_are_ic3nets():
    net, ref = hard_network(18), HardRoads(18)
    assert [list(net.routes[i]) for i in range(56)] == ref.routes
    assert [list(e) for e in net.entries] == ref.by_entry
    assert [tuple(e) for e in net.encoding] == [tuple(ref.encoding(i)) for i in range(56)]
    assert set(net.road) == ref.road
    for e, ids in enumerate(net.entries):
        assert [(len(net.routes[i]), net.routes[i][-1]) for i in ids] == IC3NET_ROUTES_18[e]
        assert {net.routes[i][0] for i in ids} == {IC3NET_ENTRIES_18[e]}
    road = set(net.road)
    for cells in net.routes:
        assert set(cells) <= road and len(set(cells)) == len(cells)
        steps = {(r1 - r0, c1 - c0) for (r0, c0), (r1, c1) in zip(cells, cells[1:])}
        assert steps <= {(1, 0), (-1, 0), (0, 1), (0, -1)}
    # four two-lane roads on 18 cells each, the 16 junction cells counted once
    assert len(road) == 8 * 18 - 16


def test_routes_turn_at_junctions():
    net = hard_network(18)
    junction = {(r, c) for r in (4, 5, 12, 13) for c in (4, 5, 12, 13)}

    def headings(cells):
        return [(r1 - r0, c1 - c0) for (r0, c0), (r1, c1) in zip(cells, cells[1:])]

    turning = [cells for cells in net.routes if len(set(headings(cells))) > 1]
    assert len(turning) == 56 - 8  # only the all-straight route of each entry keeps its heading
    for cells in turning:  # every change of heading happens inside a junction
        h = headings(cells)
        for k in range(1, len(h)):
            if h[k] != h[k - 1]:
                assert cells[k] in junction

    # A car on the top-left entry's left-then-left route, driven by gas alone.
    env = make("tj_hard", 1, add_rate=0.0)
    env.reset(seed=0)
    route = net.entries[0][6]
    env.alive[0, 0], env.route[0, 0] = True, route
    env._last = env._timestep(torch.zeros(1), {})
    seen = []
    while env.alive[0, 0]:
        ts = env._last
        seen.append((round(float(ts.obs[0, 0, -2]) * 17), round(float(ts.obs[0, 0, -1]) * 17)))
        env.step(torch.tensor([[GAS] + [BRAKE] * 19]))
    assert seen == list(net.routes[route])
    assert seen[0] == (0, 4) and seen[-1] == (0, 13)  # south, east, then north again


@pytest.mark.parametrize("add_rate", [0.02, 0.3])
def test_matches_reference_row_by_row(add_rate):
    B, steps = 3, 170  # two episodes per row and the start of a third
    env = make("tj_hard", B, auto_reset=True, debug=True, add_rate=add_rate)
    feed = Feed(env, seed=1)
    gen = torch.Generator().manual_seed(2)
    ts = env.reset(seed=0)
    refs = [TrafficJunctionHardReference(env.cfg) for _ in range(B)]
    for b, ref in enumerate(refs):
        ref.reset(feed.arrivals[0][b], feed.choices[0][b])
        assert_row(ts, b, ref)
    crashes = wins = full = 0
    for _ in range(steps):
        actions = random_legal(ts.avail, gen)
        k = len(feed.arrivals)
        ts = env.step(actions)
        new_u, new_v = feed.arrivals[k:], feed.choices[k:]
        for b, ref in enumerate(refs):
            reward, done, won = ref.step(actions[b].tolist(), new_u[0][b], new_v[0][b])
            assert float(ts.reward[b]) == pytest.approx(reward, abs=1e-4)
            assert float(ts.info["collisions"][b]) == ref.collisions
            assert bool(ts.done[b]) == done and bool(ts.won[b]) == won
            full += None not in ref.cars
            if done:
                crashes += not won
                wins += won
                ref.reset(new_u[1][b], new_v[1][b])
            assert_row(ts, b, ref)
    assert crashes + wins == 2 * B
    if add_rate == 0.02:
        assert wins > 0 and crashes > 0
    else:
        assert full > 0  # every slot taken: arrivals were refused


def test_spec_and_defaults():
    env = make("tj_hard", 2)
    s, cfg = env.spec, env.cfg
    assert (cfg.size, cfg.max_cars, cfg.episode_limit, cfg.add_rate) == (18, 20, 80, 0.05)
    assert (s.n_agents, s.n_actions, s.episode_limit, s.messages) == (20, 2, 80, True)
    assert (s.obs_dim, s.state_dim) == (35, 18 * 18 + 20 * 18)
    assert s.group_sizes() == {"cars": 9, "road": 9, "route": 14, "time": 1, "position": 2,
                               "binary": 23, "scalar": 10}
    assert max(s.obs_high) == 19.0
    ts = env.reset(seed=0)
    assert ts.obs.shape == (2, 20, 35) and ts.state.shape == (2, s.state_dim)


def test_collisions_cost_ten_per_car_as_in_ic3net():
    net = hard_network(18)
    env = make("tj_hard", 1, add_rate=0.0)
    env.reset(seed=0)
    south, west, north = net.entries[0][0], net.entries[6][0], net.entries[4][0]
    # Two cars about to meet in the junction cell (4, 4), from the north and from the east,
    # and two about to pass each other on the two lanes of one road.
    routes, prog = [south, west, south, north], [3, 12, 7, 9]
    assert [net.routes[r][p] for r, p in zip(routes, prog)] == [(3, 4), (4, 5), (7, 4), (8, 5)]
    env.alive[0, :4] = True
    env.route[0, :4] = torch.tensor(routes)
    env.prog[0, :4] = torch.tensor(prog)
    env.tau[0, :4] = 1
    env._last = env._timestep(torch.zeros(1), {})
    ts = env.step(torch.tensor([[GAS] * 4 + [BRAKE] * 16]))
    cells = [net.routes[r][p] for r, p in zip(env.route[0, :4].tolist(), env.prog[0, :4].tolist())]
    assert cells == [(4, 4), (4, 4), (8, 4), (7, 5)]
    # Only a shared cell is a collision (IC3Net compares locations): −10 for each car in it.
    assert ts.info["collisions"].item() == 2.0
    assert ts.reward.item() == pytest.approx(-20.0 - 4 * 0.02)
    assert ts.state[0, 4 * 18 + 4] == 2.0
    assert ts.obs[0, 0, 4] == 1.0 and ts.obs[0, 2, 4] == 0.0
    ts = env.step(torch.full((1, 20), BRAKE))
    assert ts.info["collisions"].item() == 2.0  # still sharing the cell: counted again
    while not ts.done.all():
        ts = env.step(torch.full((1, 20), BRAKE))
    assert not ts.won.item()


def test_braking_at_an_entry_is_hit_by_the_next_arrival():
    env = make("tj_hard", 2, add_rate=1.0)
    ts = env.reset(seed=0)
    assert (env.alive.sum(-1) == 8).all() and ts.reward.eq(0).all()  # one car per entry
    ts = env.step(torch.full((2, 20), BRAKE))
    # eight waiting cars (τ = 1) and eight newcomers share the eight entry cells
    assert ts.info["collisions"].tolist() == [16.0, 16.0]
    assert ts.reward.tolist() == pytest.approx([-160.08, -160.08])


def test_policies_success_ordering():
    """Cheap version of the measured rates in the module docstring."""
    B = 128
    rates = {}
    for policy in ("random", "brake", "gas"):
        env = make("tj_hard", B)
        gen = torch.Generator().manual_seed(0)
        ts = env.reset(seed=0)
        while not ts.done.all():
            rnd = torch.randint(0, 2, env.alive.shape, generator=gen)
            act = {"random": rnd, "brake": torch.full_like(rnd, BRAKE),
                   "gas": torch.full_like(rnd, GAS)}[policy]
            ts = env.step(torch.where(env.alive, act, BRAKE))
        rates[policy] = ts.won.float().mean().item()
    assert rates["brake"] == 0.0 and rates["random"] < rates["gas"]


def test_bad_options_are_clear_errors():
    with pytest.raises(ScenarioError, match="unknown tj_hard option"):
        make("tj_hard", 1, dim=18)
    with pytest.raises(ScenarioError, match="multiple of 3"):
        make("tj_hard", 1, size=20)
    env = make("tj_hard", 1, size=9, max_cars=4)  # IC3Net's smallest hard grid
    assert env.spec.state_dim == 81 + 4 * 18 and len(env.network.routes) == 56
