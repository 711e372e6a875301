"""Plain-Python traffic junction, hard mode (IC3Net): one episode, written for clarity, not speed.

It builds the road network on its own, from IC3Net's rules rather than from the scenario's
route builder: a route is a chain of straight lane segments, and each turn happens in the
cell where the incoming lane crosses the outgoing one. The dynamics follow the rules stated
in `arena.scenarios.traffic_junction` (shared with the easy mode), one car per dict and no
tensors. The random numbers (per entry: one uniform for the arrival, one for the route) are
passed in by the caller.
"""

from __future__ import annotations

from arena.scenarios.traffic_junction import BRAKE, GAS
from arena.scenarios.traffic_junction_hard import TrafficJunctionHardConfig

SOUTH, NORTH, EAST, WEST = (1, 0), (-1, 0), (0, 1), (0, -1)
RIGHT_OF = {SOUTH: WEST, WEST: NORTH, NORTH: EAST, EAST: SOUTH}
LEFT_OF = {v: k for k, v in RIGHT_OF.items()}


class HardRoads:
    """Lanes, entries and the 56 routes of the hard grid."""

    def __init__(self, size: int):
        self.size = size
        third = size // 3
        self.pairs = [third - 2, 2 * third]  # first row/column of each two-lane road
        lanes = [p + k for p in self.pairs for k in (0, 1)]
        self.road = {(r, c) for r in range(size) for c in range(size) if r in lanes or c in lanes}
        end = size - 1
        a, b = self.pairs
        self.entries = [((0, a), SOUTH), ((0, b), SOUTH), ((a + 1, 0), EAST), ((b + 1, 0), EAST),
                        ((end, a + 1), NORTH), ((end, b + 1), NORTH), ((a, end), WEST),
                        ((b, end), WEST)]
        self.routes: list[list[tuple[int, int]]] = []  # every route, entry by entry
        self.plans: list[tuple[int, tuple[int, ...]]] = []  # (entry, decisions) of each
        self.by_entry: list[list[int]] = []
        for e, (start, heading) in enumerate(self.entries):
            ids = []
            for first in range(3):  # straight, right, left
                for second in range(3):
                    cells, met = self.route(start, heading, [first, second])
                    ids.append(len(self.routes))
                    self.routes.append(cells)
                    self.plans.append((e, (first, second) if met >= 2 else (first,)))
                    if met < 2:
                        break
            self.by_entry.append(ids)

    def lane(self, pair: int, heading) -> tuple[str, int]:
        """The row or column of road `pair` that carries traffic heading `heading`."""
        if heading == WEST:
            return "row", pair
        if heading == EAST:
            return "row", pair + 1
        if heading == SOUTH:
            return "col", pair
        return "col", pair + 1

    def next_junction(self, cell, heading):
        """First road crossing strictly ahead of `cell` along `heading` (its pair), or None."""
        r, c = cell
        along = r if heading in (SOUTH, NORTH) else c
        step = heading[0] + heading[1]
        ahead = [p for p in self.pairs if (p > along if step > 0 else p + 1 < along)]
        if not ahead:
            return None
        return min(ahead) if step > 0 else max(ahead)

    def route(self, start, heading, decisions: list[int]):
        """(cells, junctions met) of the route from `start` taking `decisions` in order."""
        cells, cell, met = [start], start, 0
        while True:
            pair = self.next_junction(cell, heading)
            if pair is None:
                stop = self._border(cell, heading)
                cells += self._walk(cell, heading, stop)
                return cells, met
            decision = decisions[met] if met < len(decisions) else 0
            met += 1
            new = {0: heading, 1: RIGHT_OF[heading], 2: LEFT_OF[heading]}[decision]
            kind, index = self.lane(pair, new)
            turn = (index, cell[1]) if kind == "row" else (cell[0], index)
            if new == heading:
                # straight: walk to the far side of the crossing, then look further ahead
                far = pair + 1 if heading[0] + heading[1] > 0 else pair
                turn = (far, cell[1]) if heading in (SOUTH, NORTH) else (cell[0], far)
            cells += self._walk(cell, heading, turn)
            cell, heading = turn, new

    def _border(self, cell, heading):
        r, c = cell
        end = self.size - 1
        return {SOUTH: (end, c), NORTH: (0, c), EAST: (r, end), WEST: (r, 0)}[heading]

    @staticmethod
    def _walk(cell, heading, stop):
        """The cells after `cell` up to and including `stop`, moving along `heading`."""
        out = []
        while cell != stop:
            cell = (cell[0] + heading[0], cell[1] + heading[1])
            out.append(cell)
        return out

    def encoding(self, route: int) -> list[float]:
        entry, decisions = self.plans[route]
        bits = [0.0] * 14
        bits[entry] = 1.0
        bits[8 + decisions[0]] = 1.0
        if len(decisions) > 1:
            bits[11 + decisions[1]] = 1.0
        return bits


class TrafficJunctionHardReference:
    def __init__(self, cfg: TrafficJunctionHardConfig | None = None):
        self.cfg = cfg or TrafficJunctionHardConfig()
        self.roads = HardRoads(self.cfg.size)
        self.cars: list[dict | None] = []
        self.crashed = False
        self.t = 0
        self.collisions = 0

    # -- rules -------------------------------------------------------------------------------
    def reset(self, arrivals: list[float], choices: list[float]):
        self.cars = [None] * self.cfg.max_cars
        self.crashed = False
        self.t = 0
        self._arrive(arrivals, choices)
        return self.observe()

    def _arrive(self, arrivals: list[float], choices: list[float]) -> None:
        for entry, routes in enumerate(self.roads.by_entry):
            if arrivals[entry] < self.cfg.add_rate and None in self.cars:
                slot = self.cars.index(None)
                k = min(int(choices[entry] * len(routes)), len(routes) - 1)
                self.cars[slot] = {"route": routes[k], "prog": 0, "tau": 0}

    def cell(self, car: dict) -> tuple[int, int]:
        return self.roads.routes[car["route"]][car["prog"]]

    def step(self, actions: list[int], arrivals: list[float], choices: list[float]):
        """Returns (reward, terminated, won); read the new view with `observe()`."""
        for slot, car in enumerate(self.cars):
            if car is None:
                assert actions[slot] == BRAKE, "an empty slot can only brake"
                continue
            car["tau"] += 1
            if actions[slot] == GAS:
                car["prog"] += 1
                if car["prog"] == len(self.roads.routes[car["route"]]):
                    self.cars[slot] = None
        self._arrive(arrivals, choices)

        reward = 0.0
        self.collisions = 0
        counts = self.counts()
        for car in self.cars:
            if car is None:
                continue
            reward += self.cfg.time_penalty * car["tau"]
            if counts[self.cell(car)] >= 2:
                reward += self.cfg.crash_penalty
                self.collisions += 1
                self.crashed = True
        self.t += 1
        terminated = self.t >= self.cfg.episode_limit
        return reward, terminated, terminated and not self.crashed

    # -- views -------------------------------------------------------------------------------
    def counts(self) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for car in self.cars:
            if car is not None:
                out[self.cell(car)] = out.get(self.cell(car), 0) + 1
        return out

    def observe(self):
        """(obs [n][obs_dim], state [state_dim], avail [n][2]) as nested lists."""
        cfg = self.cfg
        S = cfg.size
        counts = self.counts()
        obs, avail = [], []
        for car in self.cars:
            if car is None:
                obs.append([0.0] * cfg.obs_dim)
                avail.append([False, True])
                continue
            r0, c0 = self.cell(car)
            cars, road = [], []
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    r, c = r0 + dr, c0 + dc
                    n = counts.get((r, c), 0)
                    cars.append(float(n - 1 if (dr, dc) == (0, 0) else n))
                    road.append(1.0 if (r, c) in self.roads.road else 0.0)
            own = [car["tau"] / cfg.episode_limit, r0 / (S - 1), c0 / (S - 1)]
            obs.append(cars + road + self.roads.encoding(car["route"]) + own)
            avail.append([True, True])

        state = [float(counts.get((r, c), 0)) for r in range(S) for c in range(S)]
        for car in self.cars:
            if car is None:
                state += [0.0] * (4 + 14)
                continue
            r0, c0 = self.cell(car)
            state += [1.0, r0 / (S - 1), c0 / (S - 1)] + self.roads.encoding(car["route"])
            state += [car["tau"] / cfg.episode_limit]
        return obs, state, avail
