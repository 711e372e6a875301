"""Traffic junction, easy mode (Sukhbaatar et al. 2016, "Learning Multiagent Communication
with Backpropagation" (CommNet), traffic junction task; Das et al. 2019, "TarMAC: Targeted
Multi-Agent Communication", its easy setting).

Two one-way roads cross in the middle of a `size`×`size` grid: route 0 runs left→right
along the middle row, route 1 top→bottom along the middle column. There are `max_cars`
agent slots; a slot is inactive until a car enters through it and again once its car has
driven off the end of its road.

One step, in this order (the order of the CommNet / IC3Net implementation):

1. every car in the system ages, τ ← τ + 1, and applies its action: gas (0) advances one
   cell along its route, brake (1) stays; a car that advances past the road end leaves and
   frees its slot;
2. arrivals: for route 0 then route 1, with probability `add_rate` a new car (τ = 0) enters
   at the road's first cell through the lowest free slot, if one is free;
3. collisions: a car collides when two or more cars share its cell;
4. team reward r = Σ_cars (−0.01·τ) + Σ_colliding cars (−10): every car involved in a
   collision pays the penalty, so two cars in one cell cost −20.

The episode always lasts `episode_limit` steps (20) and then terminates (it is not a
truncation: surviving the horizon is the task); it is won when no collision happened in it.

Observation of car i (zero for an inactive slot): a 3×3 window around the car with two
channels, the number of other cars in each cell and whether the cell is road (cells outside
the grid are 0 on both), then its route one-hot, τ / episode_limit and its (row, col)
divided by size − 1. An inactive slot's only available action is brake (index 1).

Feature ranges and groups (`obs_space`): the other-car counts lie in [0, max_cars − 1]
("scalar", "cars"), road and route bits are 0/1 ("binary", "road", "route"), τ / limit lies
in [0, 1] ("scalar", "time") and the position in [0, 1] ("position"): one cell is 1/(size −
1) of a position feature (1/6 at size 7).

State: the car count of every grid cell, then per slot the active flag, (row, col) / (size −
1), route one-hot and τ / episode_limit (zeros for an inactive slot).

The random numbers of a step (one uniform per route and episode) come from
`_draw_arrivals`, so that a reference implementation can be fed the very same draws.

The dynamics are written for any `RoadNetwork` (road cells, entry points, the routes that
leave each entry and a 0/1 encoding per route); the easy mode is the network of two routes
with one entry each, encoded by the route one-hot. `tj_hard` (traffic_junction_hard.py)
reuses the class with IC3Net's four-junction network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arena.core import ScenarioError, ScenarioSpec, VecEnv, config_from_options

GAS, BRAKE = 0, 1
N_ROUTES = 2


@dataclass(frozen=True)
class TrafficJunctionConfig:
    add_rate: float = 0.3
    """Probability per step and per route that a car arrives (if a slot is free)."""
    max_cars: int = 5
    """Agent slots: the most cars in the system at once."""
    size: int = 7
    """Side of the square grid; odd, so that the roads meet in the middle cell."""
    episode_limit: int = 20
    time_penalty: float = -0.01
    """Reward per car and step, multiplied by the car's age τ."""
    crash_penalty: float = -10.0
    """Reward per car involved in a collision."""

    def validate(self) -> None:
        self._validate_common()
        if self.size < 3 or self.size % 2 == 0:
            raise ScenarioError(f"size must be odd and at least 3, got {self.size}")

    def _validate_common(self) -> None:
        if not 0.0 <= self.add_rate <= 1.0:
            raise ScenarioError(f"add_rate must lie in [0, 1], got {self.add_rate}")
        if self.max_cars < 1:
            raise ScenarioError(f"max_cars must be at least 1, got {self.max_cars}")
        if self.episode_limit < 1:
            raise ScenarioError(f"episode_limit must be at least 1, got {self.episode_limit}")

    route_features = N_ROUTES
    """Width of the route encoding in observation and state."""

    @property
    def window_cells(self) -> int:
        return 9

    @property
    def obs_dim(self) -> int:
        return 2 * self.window_cells + self.route_features + 1 + 2

    @property
    def state_dim(self) -> int:
        return self.size * self.size + self.max_cars * (1 + 2 + self.route_features + 1)


def obs_space(cfg: TrafficJunctionConfig) -> dict:
    """ScenarioSpec keyword arguments `obs_low`, `obs_high`, `obs_groups` of the task."""
    K, F = cfg.window_cells, cfg.route_features
    spans = {"cars": (0, K), "road": (K, 2 * K), "route": (2 * K, 2 * K + F),
             "time": (2 * K + F, 2 * K + F + 1),
             "position": (2 * K + F + 1, cfg.obs_dim)}
    groups = {k: tuple(range(*v)) for k, v in spans.items()}
    groups["binary"] = groups["road"] + groups["route"]
    groups["scalar"] = groups["cars"] + groups["time"]
    high = [1.0] * cfg.obs_dim
    high[:K] = [float(cfg.max_cars - 1)] * K
    return {"obs_low": (0.0,) * cfg.obs_dim, "obs_high": tuple(high), "obs_groups": groups}


def route_cells(size: int) -> list[list[tuple[int, int]]]:
    """The cells (row, col) of each route, in driving order."""
    mid = size // 2
    return [[(mid, c) for c in range(size)], [(r, mid) for r in range(size)]]


@dataclass(frozen=True)
class RoadNetwork:
    """The static layout a traffic junction is played on."""

    size: int
    road: tuple[tuple[int, int], ...]
    """Road cells (row, col): the road channel of the observation window."""
    routes: tuple[tuple[tuple[int, int], ...], ...]
    """Cells of each route in driving order; a car leaves after its route's last cell."""
    entries: tuple[tuple[int, ...], ...]
    """Per entry point, in serving order, the routes that start there (an arrival picks one
    of them uniformly); all of an entry's routes share their first cell."""
    encoding: tuple[tuple[float, ...], ...]
    """The 0/1 route features of each route."""


def easy_network(size: int) -> RoadNetwork:
    cells = route_cells(size)
    mid = size // 2
    road = tuple((r, c) for r in range(size) for c in range(size) if r == mid or c == mid)
    return RoadNetwork(
        size=size,
        road=road,
        routes=tuple(tuple(rc) for rc in cells),
        entries=((0,), (1,)),
        encoding=((1.0, 0.0), (0.0, 1.0)),
    )


class TrafficJunction(VecEnv):
    name = "tj_easy"
    config_cls = TrafficJunctionConfig

    _row_state = ("alive", "route", "prog", "tau", "crashed")

    def __init__(
        self,
        batch_size: int,
        device: str | torch.device = "cpu",
        auto_reset: bool = False,
        debug: bool = False,
        **options,
    ):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self.cfg = cfg = config_from_options(self.config_cls, options, self.name)
        self.spec = ScenarioSpec(
            name=self.name,
            n_agents=cfg.max_cars,
            obs_dim=cfg.obs_dim,
            state_dim=cfg.state_dim,
            n_actions=2,
            episode_limit=cfg.episode_limit,
            messages=True,
            family="traffic_junction",
            description=self._describe(cfg),
            default_eps=0.2,
            **obs_space(cfg),
        )
        self.network = net = self._network(cfg)
        S, dev = cfg.size, self.device
        lengths = [len(rc) for rc in net.routes]
        longest = max(lengths)
        # Routes padded to one length with their last cell; a car never reaches the padding
        # because it leaves as soon as it advances past its route's end.
        padded = [list(rc) + [rc[-1]] * (longest - len(rc)) for rc in net.routes]
        self._path_len = torch.tensor(lengths, device=dev)  # [R]
        self._path = torch.tensor([[r * S + c for r, c in rc] for rc in padded], device=dev)
        self._path_rc = torch.tensor(padded, device=dev)  # [R, L, 2]
        self._encoding = torch.tensor(net.encoding, dtype=torch.float32, device=dev)  # [R, F]
        self._choices = any(len(e) > 1 for e in net.entries)
        # Each entry's routes, padded with its first one; a route index never reaches the
        # padding because it is clamped below the entry's own count.
        most = max(len(e) for e in net.entries)
        self._options = torch.tensor(
            [list(e) + [e[0]] * (most - len(e)) for e in net.entries], device=dev
        )  # [E, most]
        self._n_options = torch.tensor([len(e) for e in net.entries], device=dev)  # [E]
        # Window lookups happen on the grid padded by one cell on each side.
        P = S + 2
        road = torch.zeros(P, P, device=dev)
        for r, c in net.road:
            road[r + 1, c + 1] = 1.0
        self._road_pad = road.flatten()  # [P*P]
        d = torch.tensor([-1, 0, 1], device=dev)
        self._win_off = (d.view(3, 1) * P + d.view(1, 3)).flatten()  # [9]

        B, N = self.B, cfg.max_cars
        self.alive = torch.zeros(B, N, dtype=torch.bool, device=dev)
        self.route = torch.zeros(B, N, dtype=torch.long, device=dev)
        self.prog = torch.zeros(B, N, dtype=torch.long, device=dev)  # cells travelled
        self.tau = torch.zeros(B, N, dtype=torch.long, device=dev)
        self.crashed = torch.zeros(B, dtype=torch.bool, device=dev)  # any collision so far

    # -- layout (overridden by other modes) ----------------------------------------------------
    def _network(self, cfg) -> RoadNetwork:
        return easy_network(cfg.size)

    def _describe(self, cfg) -> str:
        return (
            f"traffic junction (easy): {cfg.size}x{cfg.size} grid, two one-way roads, "
            f"up to {cfg.max_cars} cars, add rate {cfg.add_rate}, {cfg.episode_limit} steps; "
            f"eps 0.2 = {0.2 * (cfg.size - 1):g} cells of the position features"
        )

    # -- randomness ----------------------------------------------------------------------------
    def _draw_arrivals(self) -> torch.Tensor:
        """One uniform per episode and entry, drawn for every row so draws stay in lockstep."""
        return self.rand(self.B, len(self.network.entries))  # [B, E]

    def _draw_routes(self) -> torch.Tensor:
        """One uniform per episode and entry picking the route of an arriving car; drawn only
        by networks where some entry has a choice, so the easy mode's stream is unchanged."""
        return self.rand(self.B, len(self.network.entries))  # [B, E]

    # -- dynamics ------------------------------------------------------------------------------
    def _arrive(self, rows: torch.Tensor) -> None:
        u = self._draw_arrivals()  # [B, E]
        v = self._draw_routes() if self._choices else None
        free = ~self.alive  # [B, N]
        wants = rows.unsqueeze(-1) & (u < self.cfg.add_rate)  # [B, E]
        # Entries are served in order, each taking the lowest slot still free: the k-th
        # wanting entry gets the k-th lowest free slot, if there are more than k free slots.
        rank = wants.cumsum(-1) - wants.long()  # [B, E] wanting entries before e
        add = wants & (rank < free.sum(-1, keepdim=True))
        free_rank = free.cumsum(-1) - 1  # [B, N] how many free slots lie below a free slot
        takes = (add.unsqueeze(-1) & free.unsqueeze(1)
                 & (free_rank.unsqueeze(1) == rank.unsqueeze(-1)))  # [B, E, N]
        if v is None:
            route = self._options[:, 0]  # [E]
        else:
            k = (v * self._n_options).long().clamp(max=self._n_options - 1)  # [B, E]
            route = self._options.T.gather(0, k)  # [B, E]: route k[b, e] of entry e
        new = takes.any(1)  # [B, N]
        self.alive |= new
        # A slot is taken by at most one entry, so the sum over entries picks its route.
        self.route = torch.where(new, (takes * route.unsqueeze(-1)).sum(1), self.route)
        self.prog = torch.where(new, 0, self.prog)
        self.tau = torch.where(new, 0, self.tau)

    def _cells(self) -> torch.Tensor:
        return self._path[self.route, self.prog]  # [B, N] flat cell of each slot

    def _occupancy(self, cells: torch.Tensor) -> torch.Tensor:
        S = self.cfg.size
        occ = torch.zeros(self.B, S * S, device=self.device)
        return occ.scatter_add_(1, cells, self.alive.float())  # [B, S*S] car counts

    def _reset_rows(self, rows: torch.Tensor) -> None:
        keep = ~rows.unsqueeze(-1)
        self.alive &= keep
        self.route = torch.where(keep, self.route, 0)
        self.prog = torch.where(keep, self.prog, 0)
        self.tau = torch.where(keep, self.tau, 0)
        self._arrive(rows)
        # Entry points are distinct cells and each admits at most one car per step, so the
        # cars placed at reset never collide.
        self.crashed &= ~rows

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):
        cfg = self.cfg
        moving = self.alive & active.unsqueeze(-1)  # [B, N]
        gas = moving & (actions == GAS)
        self.tau = torch.where(moving, self.tau + 1, self.tau)
        self.prog = torch.where(gas, self.prog + 1, self.prog)
        left = gas & (self.prog >= self._path_len[self.route])
        self.alive &= ~left
        self.route = torch.where(left, 0, self.route)
        self.prog = torch.where(left, 0, self.prog)
        self.tau = torch.where(left, 0, self.tau)
        self._arrive(active)

        cells = self._cells()
        here = self._occupancy(cells).gather(1, cells)  # [B, N] cars in each car's cell
        collided = self.alive & (here >= 2) & active.unsqueeze(-1)
        per_car = cfg.time_penalty * self.tau.float() + cfg.crash_penalty * collided.float()
        reward = (per_car * self.alive.float()).sum(-1)  # [B]
        self.crashed |= collided.any(-1)
        terminated = active & (self.t + 1 >= cfg.episode_limit)
        won = ~self.crashed
        info = {
            "collisions": collided.sum(-1).float(),
            "cars": self.alive.sum(-1).float(),
        }
        return reward, terminated, won, info

    # -- views ---------------------------------------------------------------------------------
    def _observe(self):
        cfg = self.cfg
        B, N, S, P = self.B, cfg.max_cars, cfg.size, cfg.size + 2
        alive = self.alive.float().unsqueeze(-1)  # [B, N, 1]
        cells = self._cells()
        occ = self._occupancy(cells)  # [B, S*S]
        occ_pad = torch.zeros(B, P, P, device=self.device)
        occ_pad[:, 1 : S + 1, 1 : S + 1] = occ.view(B, S, S)
        rc = self._path_rc[self.route, self.prog]  # [B, N, 2]
        centre = (rc[..., 0] + 1) * P + (rc[..., 1] + 1)  # [B, N] flat padded cell
        win = centre.unsqueeze(-1) + self._win_off  # [B, N, 9]
        cars = occ_pad.view(B, P * P).gather(1, win.view(B, N * 9)).view(B, N, 9)
        cars[..., 4] -= 1.0  # the car itself is not an "other car"
        road = self._road_pad[win]  # [B, N, 9]
        route = self._encoding[self.route]  # [B, N, F]
        tau = self.tau.float().unsqueeze(-1) / cfg.episode_limit  # [B, N, 1]
        pos = rc.float() / (S - 1)  # [B, N, 2]
        obs = torch.cat([cars, road, route, tau, pos], -1) * alive  # [B, N, obs_dim]

        per_slot = torch.cat([alive, pos, route, tau], -1) * alive  # [B, N, 4 + F]
        state = torch.cat([occ, per_slot.flatten(1)], -1)  # [B, state_dim]

        avail = torch.ones(B, N, 2, dtype=torch.bool, device=self.device)
        avail[..., GAS] = self.alive
        return obs, state, avail
