"""Shared engine of the grid hunting games (predator-prey `pp7`, stag hunt `stag10`).

The rules follow the `stag_hunt` environment of the DCG repository (Böhmer, Kurin and
Whiteson, "Deep Coordination Graphs", ICML 2020), bounded world, `capture_action=True`:

- Cells are (row, col) on an H×W grid; no two entities (agents, live prey, walls) share a
  cell. Actions: 0 right (col+1), 1 down (row+1), 2 left (col-1), 3 up (row-1), 4 stay,
  5 catch. Moves and stay are always available; catch only when a live prey is in the
  agent's 4-neighbourhood. A move off the grid or onto an occupied cell is a no-op.
- Each step, in this order:
  1. agents act one at a time in a random order drawn each step; a moving agent is blocked
     by any entity present at its turn; catchers do not move. A move blocked by another
     agent is a collision (`collision_penalty` each).
  2. catches are resolved at once: an agent choosing catch is catching every prey in its
     4-neighbourhood; a prey caught by at least `prey_catchers[type]` catching agents is
     caught (`prey_rewards[type]` each) and removed. A catch action whose agent is next to
     no caught prey is a failed catch (`miscatch_penalty` each). (DCG charges the
     miscapture penalty once per prey that had too few catchers; here it is charged per
     failed catch action, the reading of the ℜ-MACRL predator-prey task.)
  3. the remaining prey act one at a time in a random order drawn each step; each picks
     one of right, down, left, up, stay uniformly and is blocked like the agents. (DCG
     samples among unblocked moves and resolves captures inside the prey loop; caught prey
     are removed first here, so a prey may step into a cell freed by a catch.)
  4. the episode terminates, won, when no prey is left; it is truncated (lost) at
     `episode_limit` steps by the base class.
  With `freeze` (DCG's `capture_freezes` with `remove_frozen`), every agent that chose
  catch next to a prey caught in step 2 is removed for the rest of the episode: its cell is
  freed before the prey move, it is seen by nobody, its observation is all zeros and its
  only available action is stay. An episode whose agents are all removed plays on to the
  limit with nothing left to earn (DCG ends it early; the return is the same). Without
  `freeze` catchers only skip their move in the step they catch. There is no per-step time
  penalty (`reward_time`); the rewards are those of the task papers.
- Placement at reset: walls, then agents, then prey on distinct cells drawn uniformly.
  The first `n_triggers` walls carry a trigger (the backdoor pattern); `set_triggers`
  changes that count per episode (round(size · n_walls)) without changing any draw, so an
  episode with and without its trigger has the same layout and noise.

Observation of agent i, channel-major: for each channel c, the (2r+1)×(2r+1) window centred
on the agent, row-major (row offset -r..r outer, column offset -r..r inner), then the
agent's own position (row/(H-1), col/(W-1)). Channels:
  0: other agents (the agent itself is left out),
  1..k: live prey of each type,
  k+1: wall; 1.0 for a wall and for cells outside the grid, 0.5 for a triggered wall in
       trigger mode "in_dist",
  k+2 (trigger mode "ood" only): 1.0 on a triggered wall.
Every window value lies in {0, 1} (in {0, 0.5, 1} for the wall channel in "in_dist" mode)
and the position in [0, 1]; one cell is 1/(H-1) of a position feature. `obs_space` gives
these bounds and the feature groups of the scenario spec.
State: the whole grid, channel-major [C, H, W] flattened, with channels agents, prey types,
then the wall channel (only when there are walls) and the trigger channel ("ood" only).

Step info, per episode: `caught` and `failed_catches` (counts [B]), `collisions` ([B]),
`frozen` (agents removed so far, [B]);
every TimeStep also carries `trigger_seen` [B, n]: agents whose window holds a trigger.

All randomness of a reset comes from `_draw_layout` and all randomness of a step from
`_draw_step_noise`, so a reference implementation can be fed the very same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arena.core import ScenarioError, VecEnv

# (row, col) displacement of the actions right, down, left, up, stay, catch.
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0), (0, 0), (0, 0))
N_ACTIONS = 6
STAY, CATCH = 4, 5
EMPTY, AGENT, PREY, WALL = 0, 1, 2, 3
TRIGGER_MODES = (None, "ood", "in_dist")
IN_DIST_WALL_VALUE = 0.5


@dataclass(frozen=True)
class GridConfig:
    """Static description of one grid hunting game."""

    height: int
    width: int
    n_agents: int
    prey_counts: tuple[int, ...]  # prey of each type, e.g. (stags, hares)
    prey_catchers: tuple[int, ...]  # catching agents needed to catch a prey of each type
    prey_rewards: tuple[float, ...]  # team reward per caught prey of each type
    episode_limit: int
    view_radius: int = 1
    n_walls: int = 0
    miscatch_penalty: float = 0.0  # per catch action that catches nothing (<= 0)
    collision_penalty: float = 0.0  # per move blocked by another agent (<= 0)
    n_triggers: int = 0  # walls that carry a trigger (the first ones placed)
    trigger_mode: str | None = None  # None, "ood" (extra channel) or "in_dist" (wall variant)
    freeze: bool = False  # catchers of a caught prey are removed for the rest of the episode

    @property
    def n_prey(self) -> int:
        return sum(self.prey_counts)

    @property
    def prey_type(self) -> list[int]:
        return [k for k, count in enumerate(self.prey_counts) for _ in range(count)]

    @property
    def n_cells(self) -> int:
        return self.height * self.width

    @property
    def window(self) -> int:
        return 2 * self.view_radius + 1

    @property
    def n_obs_channels(self) -> int:
        return 1 + len(self.prey_counts) + 1 + (self.trigger_mode == "ood")

    @property
    def state_channels(self) -> list[int]:
        k = len(self.prey_counts)
        chans = list(range(1 + k))
        if self.n_walls > 0:
            chans.append(1 + k)
        if self.trigger_mode == "ood":
            chans.append(2 + k)
        return chans

    @property
    def obs_dim(self) -> int:
        return self.n_obs_channels * self.window**2 + 2

    @property
    def state_dim(self) -> int:
        return len(self.state_channels) * self.n_cells

    def validate(self) -> None:
        if self.trigger_mode not in TRIGGER_MODES:
            raise ScenarioError(
                f"trigger_mode must be one of ood, in_dist or None, got {self.trigger_mode!r}"
            )
        if self.n_triggers > 0 and self.trigger_mode is None:
            raise ScenarioError("a trigger_fraction above 0 needs trigger_mode ood or in_dist")
        if any(not 1 <= k <= 4 for k in self.prey_catchers):
            raise ScenarioError(
                f"catchers needed per prey must lie in 1..4 (a prey has 4 neighbours), "
                f"got {list(self.prey_catchers)}"
            )
        if not 0 <= self.n_triggers <= self.n_walls:
            raise ScenarioError(f"{self.n_triggers} triggers do not fit on {self.n_walls} walls")
        needed = self.n_walls + self.n_agents + self.n_prey
        if needed > self.n_cells:
            size = f"{self.height}x{self.width}"
            raise ScenarioError(f"{needed} entities do not fit on a {size} grid")


def obs_space(config: GridConfig, prey_names: tuple[str, ...]) -> dict:
    """ScenarioSpec keyword arguments `obs_low`, `obs_high`, `obs_groups` of a grid game.

    Groups: one per channel ("agents", each prey type's name, "wall", "trigger"), "binary"
    (every 0/1 channel), "scalar" (the wall channel in "in_dist" mode, whose triggered walls
    read 0.5) and "position" (the agent's own row and column).
    """
    K = config.window**2
    chans = ["agents", *prey_names, "wall"] + (["trigger"] if config.trigger_mode == "ood" else [])
    groups: dict[str, tuple[int, ...]] = {
        name: tuple(range(c * K, (c + 1) * K)) for c, name in enumerate(chans)
    }
    graded = ("wall",) if config.trigger_mode == "in_dist" else ()
    groups["binary"] = tuple(i for name in chans if name not in graded for i in groups[name])
    groups["scalar"] = tuple(i for name in graded for i in groups[name])
    groups["position"] = (config.obs_dim - 2, config.obs_dim - 1)
    return {
        "obs_low": (0.0,) * config.obs_dim,
        "obs_high": (1.0,) * config.obs_dim,
        "obs_groups": groups,
    }


class GridHunt(VecEnv):
    """Batched grid hunting game; see the module docstring for the rules and layouts.

    Per-episode tensors (the dump cell D = H*W holds removed prey and stands for "outside the
    grid" in the lookup tables; no live entity ever moves there):
      occ [B, D+1] int8 entity code per cell, agent_pos [B, n], prey_pos [B, m] flat cells,
      alive [B, m] bool, wall_val [B, D+1] float wall channel, trigger [B, D+1] bool,
      frozen [B, n] bool (removed agents sit on the dump cell).
    """

    _row_state = ("occ", "agent_pos", "prey_pos", "alive", "wall_val", "trigger",
                  "_trigger_seen", "n_triggers", "frozen")

    def __init__(self, config: GridConfig, batch_size: int, device="cpu", auto_reset=False,
                 debug=False):
        config.validate()
        self.config = config
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self._build_tables()
        B, D, dev = self.B, config.n_cells, self.device
        n, m = config.n_agents, config.n_prey
        self.occ = torch.zeros(B, D + 1, dtype=torch.int8, device=dev)  # [B, D+1]
        self.agent_pos = torch.zeros(B, n, dtype=torch.long, device=dev)  # [B, n]
        self.prey_pos = torch.full((B, m), D, dtype=torch.long, device=dev)  # [B, m]
        self.alive = torch.zeros(B, m, dtype=torch.bool, device=dev)  # [B, m]
        self.wall_val = torch.zeros(B, D + 1, device=dev)  # [B, D+1]
        self.trigger = torch.zeros(B, D + 1, dtype=torch.bool, device=dev)  # [B, D+1]
        self._trigger_seen = torch.zeros(B, n, dtype=torch.bool, device=dev)  # [B, n]
        self.n_triggers = torch.full((B,), config.n_triggers, dtype=torch.long, device=dev)  # [B]
        self.frozen = torch.zeros(B, n, dtype=torch.bool, device=dev)  # [B, n]

    # -- static lookup tables ------------------------------------------------------------------
    def _build_tables(self) -> None:
        c = self.config
        H, W, D, r = c.height, c.width, c.n_cells, c.view_radius
        move = [[D] * N_ACTIONS for _ in range(D + 1)]  # target cell, self when off the grid
        adj = [[D] * 4 for _ in range(D + 1)]  # 4-neighbours, dump when off the grid
        win = [[D] * c.window**2 for _ in range(D + 1)]  # window cells, dump when outside
        for cell in range(D):
            row, col = divmod(cell, W)
            for a, (dr, dc) in enumerate(MOVES):
                inside = 0 <= row + dr < H and 0 <= col + dc < W
                move[cell][a] = (row + dr) * W + col + dc if inside else cell
                if a < 4:
                    adj[cell][a] = (row + dr) * W + col + dc if inside else D
            k = 0
            for dr in range(-r, r + 1):
                for dc in range(-r, r + 1):
                    if 0 <= row + dr < H and 0 <= col + dc < W:
                        win[cell][k] = (row + dr) * W + col + dc
                    k += 1
        dev = self.device
        self._move_tab = torch.tensor(move, dtype=torch.long, device=dev)  # [D+1, 6]
        self._adj_tab = torch.tensor(adj, dtype=torch.long, device=dev)  # [D+1, 4]
        self._win_tab = torch.tensor(win, dtype=torch.long, device=dev)  # [D+1, K]
        rows = torch.arange(D + 1, device=dev) // W
        cols = torch.arange(D + 1, device=dev) % W
        self._row, self._col = rows, cols  # [D+1]
        pos_feat = torch.stack([rows / max(H - 1, 1), cols / max(W - 1, 1)], -1)
        self._pos_feat = pos_feat.float()  # [D+1, 2]
        self._prey_type = torch.tensor(c.prey_type, dtype=torch.long, device=dev)  # [m]
        self._need = torch.tensor(c.prey_catchers, device=dev)[self._prey_type]  # [m]
        self._reward = torch.tensor(c.prey_rewards, device=dev)[self._prey_type]  # [m]
        self._ar = torch.arange(self.B, device=dev)  # [B]
        self._state_chans = torch.tensor(c.state_channels, dtype=torch.long, device=dev)

    def _rows_kept(self) -> None:
        self._ar = torch.arange(self.B, device=self.device)

    # -- randomness: every draw of a reset or a step goes through these two -------------------
    def _draw_layout(self) -> dict[str, torch.Tensor]:
        """Distinct cells for walls, agents, prey (in that order), for every row: [B, N]."""
        c = self.config
        n_placed = c.n_walls + c.n_agents + c.n_prey
        cells = self.rand(self.B, c.n_cells).argsort(dim=-1, stable=True)[:, :n_placed]  # [B, N]
        return {"cells": cells}

    def _draw_step_noise(self) -> dict[str, torch.Tensor]:
        """Agent order [B, n], prey order [B, m] (permutations) and prey moves [B, m] in 0..4."""
        c = self.config
        return {
            "agent_order": self.randperm_rows(c.n_agents),
            "prey_order": self.randperm_rows(c.n_prey),
            "prey_move": self.randint(5, self.B, c.n_prey),
        }

    # -- VecEnv hooks ----------------------------------------------------------------------------
    def _reset_rows(self, rows: torch.Tensor) -> None:
        c = self.config
        D, nw, n = c.n_cells, c.n_walls, c.n_agents
        cells = self._draw_layout()["cells"].to(self.device).long()  # [B, N]
        walls, agents, prey = cells[:, :nw], cells[:, nw:nw + n], cells[:, nw + n:]
        occ = torch.zeros_like(self.occ)
        occ.scatter_(1, walls, WALL)
        occ.scatter_(1, agents, AGENT)
        occ.scatter_(1, prey, PREY)
        wall_val = torch.zeros_like(self.wall_val)
        wall_val.scatter_(1, walls, 1.0)
        trigger = torch.zeros_like(self.trigger)
        carries = torch.arange(nw, device=self.device) < self.n_triggers.unsqueeze(1)  # [B, nw]
        trigger.scatter_(1, walls, carries)
        if c.trigger_mode == "in_dist":
            wall_val = torch.where(trigger, IN_DIST_WALL_VALUE, wall_val)
        wall_val[:, D] = 1.0  # outside the grid reads as wall
        sel = rows.unsqueeze(-1)
        self.occ = torch.where(sel, occ, self.occ)
        self.agent_pos = torch.where(sel, agents, self.agent_pos)
        self.prey_pos = torch.where(sel, prey, self.prey_pos)
        self.alive = self.alive | sel
        self.wall_val = torch.where(sel, wall_val, self.wall_val)
        self.trigger = torch.where(sel, trigger, self.trigger)
        self.frozen = self.frozen & ~sel

    def set_triggers(self, size) -> None:
        size = self._trigger_sizes(size)
        if self.config.trigger_mode is None and bool((size > 0).any()):
            raise ScenarioError("triggers need trigger_mode ood or in_dist")
        self.n_triggers = torch.round(size * self.config.n_walls).long()

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):
        c = self.config
        noise = self._draw_step_noise()
        ar, D = self._ar, c.n_cells
        collisions = torch.zeros(self.B, dtype=torch.long, device=self.device)  # [B]

        # 1. agents, one at a time in a random order (columns of *_k are in acting order);
        # a removed agent stands on the dump cell, whose only move target is itself
        order = noise["agent_order"]  # [B, n]
        pos_k, act_k = self.agent_pos.gather(1, order), actions.gather(1, order)  # [B, n]
        new_k = torch.empty_like(pos_k)
        for k in range(c.n_agents):
            pos, act = pos_k[:, k], act_k[:, k]
            target = self._move_tab[pos, act]
            found = self.occ[ar, target]
            moving = active & (found == EMPTY)  # stay/catch target their own, occupied, cell
            bumped = active & (act < 4) & (target != pos) & (found == AGENT)
            collisions += bumped
            new = torch.where(moving, target, pos)
            self.occ[ar, pos] = EMPTY
            self.occ[ar, new] = AGENT
            new_k[:, k] = new
        self.agent_pos = self.agent_pos.scatter(1, order, new_k)

        # 2. catches, resolved at once
        catching = active.unsqueeze(-1) & (actions == CATCH) & ~self.frozen  # [B, n]
        a_row, a_col = self._row[self.agent_pos], self._col[self.agent_pos]  # [B, n]
        p_row, p_col = self._row[self.prey_pos], self._col[self.prey_pos]  # [B, m]
        dist = (a_row.unsqueeze(2) - p_row.unsqueeze(1)).abs() + (
            a_col.unsqueeze(2) - p_col.unsqueeze(1)
        ).abs()
        adjacent = (dist == 1) & self.alive.unsqueeze(1)  # [B, n, m]
        catchers = (adjacent & catching.unsqueeze(2)).sum(1)  # [B, m]
        caught = self.alive & (catchers >= self._need)  # [B, m]
        succeeded = (adjacent & caught.unsqueeze(1)).any(2)  # [B, n]
        failed = catching & ~succeeded  # [B, n]
        reward = (caught.float() * self._reward).sum(1)
        reward = reward + c.miscatch_penalty * failed.sum(1) + c.collision_penalty * collisions
        self.occ.scatter_(1, torch.where(caught, self.prey_pos, D), EMPTY)
        self.prey_pos = torch.where(caught, D, self.prey_pos)
        self.alive = self.alive & ~caught
        if c.freeze:
            gone = catching & succeeded  # [B, n]
            self.occ.scatter_(1, torch.where(gone, self.agent_pos, D), EMPTY)
            self.agent_pos = torch.where(gone, D, self.agent_pos)
            self.frozen = self.frozen | gone

        # 3. remaining prey, one at a time in a random order; a removed prey sits on the dump
        # cell, whose only move target is itself
        order = noise["prey_order"]  # [B, m]
        pos_k = self.prey_pos.gather(1, order)  # [B, m]
        target_k = self._move_tab[pos_k, noise["prey_move"].gather(1, order)]  # [B, m]
        new_k = torch.empty_like(pos_k)
        for k in range(c.n_prey):
            pos, target = pos_k[:, k], target_k[:, k]
            moving = active & (self.occ[ar, target] == EMPTY)
            new = torch.where(moving, target, pos)
            self.occ[ar, pos] = EMPTY
            self.occ[ar, new] = PREY
            new_k[:, k] = new
        self.prey_pos = self.prey_pos.scatter(1, order, new_k)

        terminated = active & ~self.alive.any(1)
        info = {"caught": caught.sum(1), "failed_catches": failed.sum(1),
                "collisions": collisions, "frozen": self.frozen.sum(1)}
        return reward, terminated, terminated, info

    def _observe(self):
        c = self.config
        B, D, n, K = self.B, c.n_cells, c.n_agents, c.window**2
        n_ent = 1 + len(c.prey_counts)
        # entity channels by one scatter: agents in channel 0, prey of type k in channel 1+k
        idx = torch.cat([self.agent_pos, self.prey_pos + (1 + self._prey_type) * (D + 1)], 1)
        ent = torch.zeros(B, n_ent * (D + 1), device=self.device)
        ent.scatter_(1, idx, 1.0)
        ent = ent.view(B, n_ent, D + 1)
        ent[:, :, D] = 0.0  # the dump cell (removed prey, outside the grid) is empty
        chans = [ent, self.wall_val.unsqueeze(1)]
        if c.trigger_mode == "ood":
            trig = self.trigger.float()
            trig[:, D] = 0.0
            chans.append(trig.unsqueeze(1))
        full = torch.cat(chans, 1)  # [B, C, D+1]
        C = full.shape[1]

        win = self._win_tab[self.agent_pos].view(B, 1, n * K)  # [B, 1, n*K]
        view = full.gather(2, win.expand(B, C, n * K)).view(B, C, n, K).transpose(1, 2)
        view = view.clone()  # [B, n, C, K]
        view[:, :, 0, K // 2] = 0.0  # the agent itself
        obs = torch.cat([view.reshape(B, n, C * K), self._pos_feat[self.agent_pos]], -1)
        here = ~self.frozen  # [B, n]
        obs = obs * here.unsqueeze(-1)  # a removed agent sees nothing

        state = full.index_select(1, self._state_chans)[:, :, :D].reshape(B, -1)  # [B, S]

        prey_here = ent[:, 1:].sum(1)  # [B, D+1]
        near = prey_here.gather(1, self._adj_tab[self.agent_pos].view(B, n * 4)).view(B, n, 4)
        avail = torch.ones(B, n, N_ACTIONS, dtype=torch.bool, device=self.device)
        avail[:, :, CATCH] = near.sum(-1) > 0  # [B, n, A]
        stay_only = torch.zeros(N_ACTIONS, dtype=torch.bool, device=self.device)
        stay_only[STAY] = True
        avail = torch.where(here.unsqueeze(-1), avail, stay_only)

        seen = self.trigger.gather(1, win.view(B, n * K)).view(B, n, K).any(-1)
        self._trigger_seen = seen & here
        return obs, state, avail
