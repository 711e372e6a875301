"""Plain-Python reference of one grid hunting episode (pp7, stag10), written from the rules.

Lists, tuples and ints only: no torch in the game logic. It is fed the same random numbers
as the batched environment (a layout at reset; agent order, prey order and prey moves each
step), so the two must agree exactly on observations, state, availability, reward and done.
The rules are stated in the docstring of `arena.scenarios.grid`.
"""

from __future__ import annotations

MOVES = [(0, 1), (1, 0), (0, -1), (-1, 0), (0, 0), (0, 0)]  # right, down, left, up, stay, catch
CATCH = 5


class GridReference:
    """One episode of a grid hunting game. `config` is an `arena.scenarios.grid.GridConfig`."""

    def __init__(self, config):
        self.c = config
        self.prey_type = [k for k, count in enumerate(config.prey_counts) for _ in range(count)]

    # -- episode -------------------------------------------------------------------------------
    def reset(self, cells: list[int]) -> None:
        """`cells`: distinct flat cells (row * W + col) for walls, then agents, then prey."""
        c = self.c
        where = [divmod(cell, c.width) for cell in cells]
        self.walls = where[: c.n_walls]
        self.triggered = set(self.walls[: c.n_triggers])
        self.agents = where[c.n_walls : c.n_walls + c.n_agents]
        self.prey = where[c.n_walls + c.n_agents :]
        self.alive = [True] * c.n_prey
        self.frozen = [False] * c.n_agents  # a removed agent's position is None
        self.t = 0
        self.done = False
        self.won = False

    def step(self, actions, agent_order, prey_order, prey_move) -> float:
        """Advance one step; returns the team reward. A finished episode is left unchanged."""
        if self.done:
            return 0.0
        c = self.c
        reward = 0.0
        for i in agent_order:
            if self.frozen[i] or actions[i] >= 4:  # stay and catch keep the agent in place
                continue
            target = self._shift(self.agents[i], actions[i])
            if target is None:
                continue
            blocker = self._entity_at(target)
            if blocker is None:
                self.agents[i] = target
            elif blocker == "agent":
                reward += c.collision_penalty

        catching = [actions[i] == CATCH and not self.frozen[i] for i in range(c.n_agents)]
        caught = []
        for j, (pos, alive) in enumerate(zip(self.prey, self.alive)):
            if not alive:
                continue
            n_catchers = sum(
                1 for i in range(c.n_agents) if catching[i] and _touching(self.agents[i], pos)
            )
            if n_catchers >= c.prey_catchers[self.prey_type[j]]:
                caught.append(j)
        for i in range(c.n_agents):
            if catching[i] and not any(_touching(self.agents[i], self.prey[j]) for j in caught):
                reward += c.miscatch_penalty
        if c.freeze:
            for i in range(c.n_agents):
                if catching[i] and any(_touching(self.agents[i], self.prey[j]) for j in caught):
                    self.frozen[i] = True
            for i in range(c.n_agents):
                if self.frozen[i]:
                    self.agents[i] = None
        for j in caught:
            reward += c.prey_rewards[self.prey_type[j]]
            self.alive[j] = False

        for j in prey_order:
            if not self.alive[j]:
                continue
            target = self._shift(self.prey[j], prey_move[j])
            if target is not None and self._entity_at(target) is None:
                self.prey[j] = target

        self.t += 1
        if not any(self.alive):
            self.done, self.won = True, True
        elif self.t >= c.episode_limit:
            self.done = True
        return reward

    # -- views ---------------------------------------------------------------------------------
    def observe(self):
        """(obs [n][obs_dim], state [state_dim], avail [n][6], trigger_seen [n])."""
        c = self.c
        r = c.view_radius
        self._content = self._snapshot()
        obs, avail, seen = [], [], []
        for i, where in enumerate(self.agents):
            if self.frozen[i]:  # removed: sees nothing, may only stay
                obs.append([0.0] * c.obs_dim)
                seen.append(False)
                avail.append([False] * 4 + [True, False])
                continue
            row, col = where
            feats, saw = [], False
            for channel in range(c.n_obs_channels):
                for dr in range(-r, r + 1):
                    for dc in range(-r, r + 1):
                        cell = (row + dr, col + dc)
                        if channel == 0 and (dr, dc) == (0, 0):
                            feats.append(0.0)
                        else:
                            feats.append(self._value(channel, cell))
                        saw = saw or cell in self.triggered
            feats += [row / (c.height - 1), col / (c.width - 1)]
            obs.append(feats)
            seen.append(saw)
            near_prey = any(
                alive and _touching((row, col), pos) for pos, alive in zip(self.prey, self.alive)
            )
            avail.append([True] * 5 + [near_prey])
        state = [
            self._value(channel, (row, col))
            for channel in c.state_channels
            for row in range(c.height)
            for col in range(c.width)
        ]
        return obs, state, avail, seen

    # -- helpers -------------------------------------------------------------------------------
    def _inside(self, cell) -> bool:
        return 0 <= cell[0] < self.c.height and 0 <= cell[1] < self.c.width

    def _shift(self, pos, action):
        """The cell `action` leads to, or None when it leaves the grid or stays put."""
        dr, dc = MOVES[action]
        target = (pos[0] + dr, pos[1] + dc)
        if target == pos or not self._inside(target):
            return None
        return target

    def _snapshot(self) -> dict:
        """cell -> ("agent",) | ("prey", type) | ("wall",) for every occupied cell."""
        content = {cell: ("wall",) for cell in self.walls}
        for j, (pos, alive) in enumerate(zip(self.prey, self.alive)):
            if alive:
                content[pos] = ("prey", self.prey_type[j])
        for pos in self.agents:
            if pos is not None:
                content[pos] = ("agent",)
        return content

    def _entity_at(self, cell):
        if cell in self.agents:
            return "agent"
        if any(alive and pos == cell for pos, alive in zip(self.prey, self.alive)):
            return "prey"
        if cell in self.walls:
            return "wall"
        return None

    def _value(self, channel: int, cell) -> float:
        c = self.c
        n_types = len(c.prey_counts)
        what = self._content.get(cell, ("empty",))
        if channel == 0:
            return 1.0 if what[0] == "agent" else 0.0
        if channel <= n_types:
            return 1.0 if what == ("prey", channel - 1) else 0.0
        if channel == n_types + 1:  # walls; outside the grid reads as wall
            if not self._inside(cell):
                return 1.0
            if cell in self.triggered and c.trigger_mode == "in_dist":
                return 0.5
            return 1.0 if what[0] == "wall" else 0.0
        return 1.0 if cell in self.triggered else 0.0  # "ood" trigger channel


def _touching(a, b) -> bool:
    if a is None or b is None:
        return False
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1


# -- differential driver (torch only here, to talk to the batched environment) ---------------
def run_differential(env, steps: int, seed: int, catch_bias: float = 4.0) -> dict:
    """Step `env` (auto-reset) and one reference per row on the same random numbers.

    The env's own draws are recorded as it makes them and handed to the references; actions
    are random legal ones (catch weighted by `catch_bias` so catches happen). Every step the
    whole TimeStep of every row must equal its reference. Returns event counts, so a caller
    can check that the run went through catches, failed catches, wins and truncations.
    """
    import torch

    assert env.auto_reset, "the driver follows episodes across resets"
    drawn = {}
    draw_layout, draw_noise = env._draw_layout, env._draw_step_noise

    def layout():
        drawn["layout"] = draw_layout()
        return drawn["layout"]

    def noise():
        drawn["noise"] = draw_noise()
        return drawn["noise"]

    env._draw_layout, env._draw_step_noise = layout, noise
    refs = [GridReference(env.config) for _ in range(env.B)]
    ts = env.reset(seed)
    for b, ref in enumerate(refs):
        ref.reset(drawn["layout"]["cells"][b].tolist())
    _compare(ts, refs, "reset")

    gen = torch.Generator().manual_seed(seed + 1)
    counts = {"episodes": 0, "wins": 0, "caught": 0, "failed_catches": 0, "collisions": 0,
              "frozen": 0,
              "trigger_seen": int(ts.info["trigger_seen"].sum())}
    for t in range(steps):
        weight = ts.avail.float().cpu()
        weight[..., CATCH] *= catch_bias
        actions = torch.multinomial(weight.view(-1, weight.shape[-1]), 1, generator=gen)
        actions = actions.view(env.B, -1)  # [B, n]
        drawn.pop("layout", None)
        ts = env.step(actions.to(env.device))
        n = {key: value.tolist() for key, value in drawn["noise"].items()}
        rewards, dones, wons = [], [], []
        for b, ref in enumerate(refs):
            rewards.append(ref.step(actions[b].tolist(), n["agent_order"][b],
                                    n["prey_order"][b], n["prey_move"][b]))
            dones.append(ref.done)
            wons.append(ref.won)
            if ref.done:
                ref.reset(drawn["layout"]["cells"][b].tolist())
        where = f"step {t}"
        torch.testing.assert_close(ts.reward.cpu(), torch.tensor(rewards), msg=f"reward at {where}")
        assert ts.done.tolist() == dones, f"done at {where}"
        assert ts.won.tolist() == wons, f"won at {where}"
        _compare(ts, refs, where)
        counts["episodes"] += sum(dones)
        counts["wins"] += sum(wons)
        for key in ("caught", "failed_catches", "collisions"):
            counts[key] += int(ts.info[key].sum())
        counts["trigger_seen"] += int(ts.info["trigger_seen"].sum())
        counts["frozen"] += sum(sum(ref.frozen) for ref in refs)
    return counts


def _compare(ts, refs, where: str) -> None:
    import torch

    for b, ref in enumerate(refs):
        obs, state, avail, seen = ref.observe()
        expected = torch.tensor(obs)
        torch.testing.assert_close(ts.obs[b].cpu(), expected, msg=f"obs row {b} at {where}")
        assert ts.state[b].tolist() == state, f"state row {b} at {where}"
        assert ts.avail[b].tolist() == avail, f"avail row {b} at {where}"
        assert ts.info["trigger_seen"][b].tolist() == seen, f"trigger_seen row {b} at {where}"
