"""Plain-Python traffic junction (easy mode): one episode, written for clarity, not speed.

It follows the rules stated in `arena.scenarios.traffic_junction` line by line, with one car
per dict and no tensors, so that the vectorised environment can be checked against it row by
row. The random numbers (one uniform per route) are passed in by the caller.
"""

from __future__ import annotations

from arena.scenarios.traffic_junction import BRAKE, GAS, TrafficJunctionConfig, route_cells


class TrafficJunctionReference:
    def __init__(self, cfg: TrafficJunctionConfig | None = None):
        self.cfg = cfg or TrafficJunctionConfig()
        self.routes = route_cells(self.cfg.size)
        self.cars: list[dict | None] = []
        self.crashed = False
        self.t = 0

    # -- rules -------------------------------------------------------------------------------
    def reset(self, arrivals: list[float]):
        self.cars = [None] * self.cfg.max_cars
        self.crashed = False
        self.t = 0
        self._arrive(arrivals)
        return self.observe()

    def _arrive(self, arrivals: list[float]) -> None:
        for route in range(len(self.routes)):
            if arrivals[route] < self.cfg.add_rate and None in self.cars:
                slot = self.cars.index(None)
                self.cars[slot] = {"route": route, "prog": 0, "tau": 0}

    def cell(self, car: dict) -> tuple[int, int]:
        return self.routes[car["route"]][car["prog"]]

    def step(self, actions: list[int], arrivals: list[float]):
        """Returns (reward, terminated, won); read the new view with `observe()`."""
        for slot, car in enumerate(self.cars):
            if car is None:
                assert actions[slot] == BRAKE, "an empty slot can only brake"
                continue
            car["tau"] += 1
            if actions[slot] == GAS:
                car["prog"] += 1
                if car["prog"] == len(self.routes[car["route"]]):
                    self.cars[slot] = None
        self._arrive(arrivals)

        reward = 0.0
        for car in self.cars:
            if car is None:
                continue
            reward += self.cfg.time_penalty * car["tau"]
            others = sum(1 for o in self.cars if o is not None and self.cell(o) == self.cell(car))
            if others >= 2:
                reward += self.cfg.crash_penalty
                self.crashed = True
        self.t += 1
        terminated = self.t >= self.cfg.episode_limit
        return reward, terminated, terminated and not self.crashed

    # -- views -------------------------------------------------------------------------------
    def count(self, r: int, c: int) -> int:
        return sum(1 for car in self.cars if car is not None and self.cell(car) == (r, c))

    def observe(self):
        """(obs [n][obs_dim], state [state_dim], avail [n][2]) as nested lists."""
        cfg = self.cfg
        S, mid = cfg.size, cfg.size // 2
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
                    inside = 0 <= r < S and 0 <= c < S
                    n = self.count(r, c) if inside else 0
                    cars.append(float(n - 1 if (dr, dc) == (0, 0) else n))
                    road.append(1.0 if inside and (r == mid or c == mid) else 0.0)
            route = [1.0 if car["route"] == k else 0.0 for k in range(len(self.routes))]
            own = [car["tau"] / cfg.episode_limit, r0 / (S - 1), c0 / (S - 1)]
            obs.append(cars + road + route + own)
            avail.append([True, True])

        state = [float(self.count(r, c)) for r in range(S) for c in range(S)]
        for car in self.cars:
            if car is None:
                state += [0.0] * 6
                continue
            r0, c0 = self.cell(car)
            route = [1.0 if car["route"] == k else 0.0 for k in range(len(self.routes))]
            state += [1.0, r0 / (S - 1), c0 / (S - 1)] + route + [car["tau"] / cfg.episode_limit]
        return obs, state, avail
