"""Traffic junction, hard mode (Singh et al. 2019, "Learning when to Communicate at Scale in
Multiagent Cooperative and Competitive Tasks" (IC3Net), its hard traffic junction; also the
hard setting of TarMAC, Das et al. 2019, and of Xue et al. 2022, ℜ-MACRL).

The grid is `size`×`size` (18) with two horizontal and two vertical two-way roads, each two
lanes wide: rows p, p + 1 and columns p, p + 1 for p in (size/3 − 2, 2·size/3), i.e. rows and
columns 4, 5 and 12, 13 at size 18. They cross in four 2×2 junctions. Traffic keeps to the
right: the upper row of a road runs west and the lower one east, the left column runs south
and the right one north.

Cars enter at eight points, one per lane that points into the grid, served in this order:
top-left, top-right (heading south), left-top, left-bottom (heading east), bottom-left,
bottom-right (heading north), right-top, right-bottom (heading west). A car's route is fixed
when it enters, chosen uniformly among the seven that start at its entry point. At the first
junction it meets it goes straight, turns right or turns left; if that leads to a second
junction it decides again (straight, right, left); any later junction it crosses straight.
One of the three first decisions always leads straight out of the grid, hence 1 + 3 + 3 = 7
routes per entry and 56 in all. A right turn leaves the junction from the first junction
cell, straight crosses two cells and a left turn three, as lanes dictate. Routes end at the
border; a car that advances past the last cell leaves.

Everything else — step order, reward (−0.01·τ per car and step, −10 per car in a shared
cell), the episode of fixed length, success = no collision, observation layout, state,
inactive slots, the lowest free slot for an arrival — is the easy mode's
(traffic_junction.py), played with up to `max_cars` = 20 cars for `episode_limit` = 80 steps.

Randomness per step: `_draw_arrivals` gives one uniform per entry (a car arrives when it is
below `add_rate` and a slot is free) and `_draw_routes` one more per entry (the route index
among the entry's seven is ⌊u·7⌋), both drawn for every row.

`add_rate`: IC3Net raises it during training from `add_rate_min` 0.02 to `add_rate_max` 0.05
(a curriculum over epochs); the default here is the final, hardest rate 0.05. Pass a smaller
one to reproduce the curriculum's earlier stages.

Route encoding (the "route" group, 14 bits): the entry point one-hot (8), the first decision
one-hot (3: straight, right, left) and the second decision one-hot (3; all zero for the routes
that leave after the first junction). Observation: the 3×3 window (other-car counts 0..19,
road flag), the route encoding, τ / 80 and (row, col) / 17: 35 features. State: the car count
of the 324 cells, then per slot the active flag, position, route encoding and τ / 80.
"""

from __future__ import annotations

from dataclasses import dataclass

from arena.core import ScenarioError
from arena.scenarios.traffic_junction import (
    RoadNetwork,
    TrafficJunction,
    TrafficJunctionConfig,
)

STRAIGHT, RIGHT, LEFT = 0, 1, 2
N_ENTRIES, N_TURNS = 8, 3


@dataclass(frozen=True)
class TrafficJunctionHardConfig(TrafficJunctionConfig):
    add_rate: float = 0.05
    """Probability per step and per entry point that a car arrives (if a slot is free);
    IC3Net's curriculum ends at 0.05, starting from 0.02."""
    max_cars: int = 20
    size: int = 18
    """Side of the square grid: a multiple of 3, at least 9 (IC3Net's constraint)."""
    episode_limit: int = 80

    route_features = N_ENTRIES + 2 * N_TURNS

    def validate(self) -> None:
        self._validate_common()
        if self.size < 9 or self.size % 3:
            raise ScenarioError(f"size must be a multiple of 3 and at least 9, got {self.size}")


def road_pairs(size: int) -> tuple[int, int]:
    """First row (and column) of each two-lane road."""
    return size // 3 - 2, 2 * size // 3


def entry_points(size: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(cell, heading) of each entry point in serving order; headings are (d_row, d_col)."""
    a, b = road_pairs(size)
    end = size - 1
    south, north, east, west = (1, 0), (-1, 0), (0, 1), (0, -1)
    return [((0, a), south), ((0, b), south), ((a + 1, 0), east), ((b + 1, 0), east),
            ((end, a + 1), north), ((end, b + 1), north), ((a, end), west), ((b, end), west)]


def _turn(heading: tuple[int, int], decision: int) -> tuple[int, int]:
    dr, dc = heading
    # Rows grow downwards, so a clockwise quarter turn (right) maps (dr, dc) to (dc, -dr).
    return {STRAIGHT: heading, RIGHT: (dc, -dr), LEFT: (-dc, dr)}[decision]


def _drive(size: int, start, heading, plan: tuple[int, ...]):
    """Cells from `start` to the border under the junction decisions `plan` (straight once
    it runs out), and the number of junctions entered."""
    pairs = road_pairs(size)
    lanes = {p: (p, p + 1) for p in pairs}

    def pair_of(x):
        return next((p for p in pairs if x in lanes[p]), None)

    def junction(r, c):
        return pair_of(r) is not None and pair_of(c) is not None

    (r, c), cells, entered, target = start, [start], 0, None
    while True:
        if target is not None:
            # Switch to the outgoing lane as soon as the car stands on it.
            new, line = target
            if (r if new[1] else c) == line:
                heading, target = new, None
        nr, nc = r + heading[0], c + heading[1]
        if not (0 <= nr < size and 0 <= nc < size):
            return cells, entered
        if junction(nr, nc) and not junction(r, c):
            decision = plan[entered] if entered < len(plan) else STRAIGHT
            entered += 1
            new = _turn(heading, decision)
            if new[1]:  # east/west: the road's upper row runs west, its lower row east
                line = lanes[pair_of(nr)][0 if new[1] < 0 else 1]
            else:  # south/north: the road's left column runs south, its right one north
                line = lanes[pair_of(nc)][0 if new[0] > 0 else 1]
            target = (new, line)
        r, c = nr, nc
        cells.append((r, c))


def hard_network(size: int) -> RoadNetwork:
    a, b = road_pairs(size)
    lanes = {a, a + 1, b, b + 1}
    road = tuple((r, c) for r in range(size) for c in range(size) if r in lanes or c in lanes)
    routes, entries, encoding = [], [], []
    for e, (start, heading) in enumerate(entry_points(size)):
        ids = []
        for first in (STRAIGHT, RIGHT, LEFT):
            for second in (STRAIGHT, RIGHT, LEFT):
                cells, entered = _drive(size, start, heading, (first, second))
                bits = [0.0] * (N_ENTRIES + 2 * N_TURNS)
                bits[e] = bits[N_ENTRIES + first] = 1.0
                if entered >= 2:
                    bits[N_ENTRIES + N_TURNS + second] = 1.0
                ids.append(len(routes))
                routes.append(tuple(cells))
                encoding.append(tuple(bits))
                if entered < 2:
                    break  # the first decision led out of the grid: nothing more to choose
        entries.append(tuple(ids))
    return RoadNetwork(size=size, road=road, routes=tuple(routes), entries=tuple(entries),
                       encoding=tuple(encoding))


class TrafficJunctionHard(TrafficJunction):
    name = "tj_hard"
    config_cls = TrafficJunctionHardConfig

    def _network(self, cfg) -> RoadNetwork:
        return hard_network(cfg.size)

    def _describe(self, cfg) -> str:
        return (
            f"traffic junction (hard, IC3Net): {cfg.size}x{cfg.size} grid, four junctions of "
            f"two-way roads, 8 entries x 7 routes, up to {cfg.max_cars} cars, add rate "
            f"{cfg.add_rate}, {cfg.episode_limit} steps; eps 0.2 = "
            f"{0.2 * (cfg.size - 1):g} cells of the position features"
        )
