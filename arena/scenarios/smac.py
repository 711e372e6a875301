"""SMAC-style micro-combat as a batched torch game.

Follows the interface and rules of SMAC (Samvelyan et al., "The StarCraft Multi-Agent
Challenge", AAMAS 2019): actions, observation, state, reward and episode end as in its
`StarCraft2Env` with the default flags; unit values as SMAClite (Michalski et al., 2023);
the scripted enemy as the heuristic of JaxMARL's SMAX (Rutherford et al., 2023). It is a
re-implementation, not StarCraft II: see docs/smac_differences.md.

All units of all B episodes are simulated together: positions [B, U, 2], health [B, U],
pairwise distances [B, U, U], with the U = n allies + m enemies in one table (allies first).
Agents are numbered as SMAC numbers them at reset, by unit type, then x, then y (its
`init_units`); see `_smac_order`.

One step lasts Δt = 8 game loops / 22.4 loops per second ≈ 0.357 s and is resolved
simultaneously:
  1. orders: agents' actions; each enemy attacks the closest ally in its weapon range
     (keeping its last target while that one stays in range), else walks toward the closest
     visible ally, else toward the allies' start;
  2. attacks, all read from the state at the start of the step: a unit whose target is within
     its weapon range (edge to edge) and whose weapon is ready within the step fires; all
     hits are applied together, in attack order (attacker index, then hit), so shields
     absorb first and armor is taken off each hit on HP (at least 0.5 per hit);
  3. moves of the units still alive: a move action heads for a point 2 units away, an attack
     on a target out of weapon range walks toward it up to that range; every unit covers at
     most speed·Δt in the step;
  4. shields regenerate 2/s once a unit has taken no damage for 10 s.
Reward (SMAC, reward_only_positive): |Δ(health+shield) of enemies + 10 per enemy killed|,
+200 on a win, divided by max_reward/20 so that the best episode return is 20.

Restricted sight (`spotters`, the `3m_blind` scenario): only agents 0..spotters−1 observe
the enemies; the others' enemy block is all zeros at every distance, so they see only their
allies and themselves, as the blind units of NDQ's maps (Wang et al., ICLR 2020) see nothing
the overseer does. Everything else is SMAC's: the rules, the state the mixer reads, and the
availability of attack actions (an enemy within shooting range), which is the one thing a
blind agent learns of the enemies by itself: that one is in its range, not where the others
are, how hurt each is, nor which one the team is shooting. Focusing fire on the most hurt
enemy, or walking toward enemies out of sight, takes the spotter telling the others; a fixed
convention over the attacks available (the lowest-numbered enemy in range) needs no message,
so what the messages are worth here is to be measured, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from arena.core import ScenarioError, ScenarioSpec, TimeStep, VecEnv
from arena.scenarios.smac_obs import (
    N_NO_ATTACK,
    SmacLayout,
    agent_obs,
    global_state,
    obs_space,
    other_allies,
)
from arena.scenarios.smac_units import (
    ALLY_START,
    ENEMY_START,
    MAP_SIZE,
    MOVE_AMOUNT,
    SHIELD_REGEN_DELAY,
    SHIELD_REGEN_RATE,
    SHOOT_RANGE,
    SIGHT_RANGE,
    STEP_SECONDS,
    UnitTable,
    get_map,
)

REWARD_DEATH = 10.0
REWARD_WIN = 200.0
REWARD_SCALE_RATE = 20.0  # SMAC scales the best episode return to this
# SMAC spawns each team at fixed map positions; the episode-to-episode variation comes from
# the game engine and is small. Each unit starts within ± JITTER per axis of its slot.
JITTER = 0.1
SPACING = 1.5  # distance between formation slots
ROW = 4  # units per formation column
# A walk toward a target ends this far inside weapon range, so that rounding never leaves
# the unit a hair outside it.
REACH_MARGIN = 1e-3

# Direction of actions 0..5 (no-op, stop, north, south, east, west); north is +y.
_DIRECTIONS = ((0.0, 0.0), (0.0, 0.0), (0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0))


@dataclass
class CombatState:
    """Everything that changes during an episode; tests may edit it to build a position."""

    pos: torch.Tensor  # [B, U, 2] map units
    hp: torch.Tensor  # [B, U]; a unit is alive while hp > 0
    shield: torch.Tensor  # [B, U]
    cooldown: torch.Tensor  # [B, U] seconds until the weapon is ready
    since_hit: torch.Tensor  # [B, U] seconds since the unit last took damage
    target: torch.Tensor  # [B, U] long unit index an enemy keeps attacking, -1 none
    last_action: torch.Tensor  # [B, n] long, -1 before the first step


class SmacLite(VecEnv):
    """Batched SMAC-style battle on one of the maps of `smac_units.MAPS`."""

    _row_state = ("units",)

    def __init__(
        self,
        batch_size: int,
        device: str | torch.device = "cpu",
        auto_reset: bool = False,
        debug: bool = False,
        map_name: str = "3m",
        spotters: int | None = None,
    ):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self.map = get_map(map_name)
        self.table = UnitTable.from_map(self.map, self.device)
        self.layout = SmacLayout.for_map(self.map)
        n, m = len(self.map.allies), len(self.map.enemies)
        self.n_agents, self.n_enemies, self.n_units = n, m, n + m
        if spotters is not None and not 1 <= spotters < n:
            raise ScenarioError(f"spotters must lie in 1..{n - 1} on {map_name}, got {spotters}")
        self.spotters = spotters
        sight = "" if spotters is None else (
            "; only agent 0 sees the enemies" if spotters == 1
            else f"; only agents 0..{spotters - 1} see the enemies")
        self.spec = ScenarioSpec(
            name=map_name if spotters is None else
            f"{map_name}_blind{'' if spotters == 1 else spotters}",
            n_agents=n,
            obs_dim=self.layout.obs_dim,
            state_dim=self.layout.state_dim,
            n_actions=self.layout.n_actions,
            episode_limit=self.map.episode_limit,
            family="smac",
            description=f"SMAC-style battle: {_roster(self.map.allies)} vs "
            f"{_roster(self.map.enemies)}{sight}; eps {self.map.default_eps:g} on features in "
            "[0, 1] (distances /9, health, shield) and [-1, 1] (rel x, y /9)",
            default_eps=self.map.default_eps,
            **obs_space(self.layout),
        )
        enemy_pool = (self.table.hp_max + self.table.shield_max)[n:].sum().item()
        self.max_reward = REWARD_DEATH * m + REWARD_WIN + enemy_pool
        dev = self.device
        self._dirs = torch.tensor(_DIRECTIONS, device=dev)  # [6, 2]
        self._ally_start = torch.tensor(ALLY_START, device=dev)
        self._others = other_allies(n, dev)  # [n, n-1]
        ally_slots, self._jitter_group = _smac_order(
            self.map.allies, _formation(n, ALLY_START, -1.0, dev)
        )
        self._home = torch.cat([ally_slots, _formation(m, ENEMY_START, +1.0, dev)])  # [U, 2]
        B, U = self.B, self.n_units
        zeros = torch.zeros(B, U, device=dev)
        self.units = CombatState(
            pos=self._home.expand(B, U, 2).clone(),
            hp=self.table.hp_max.expand(B, U).clone(),
            shield=self.table.shield_max.expand(B, U).clone(),
            cooldown=zeros.clone(),
            since_hit=zeros.clone(),
            target=torch.full((B, U), -1, dtype=torch.long, device=dev),
            last_action=torch.full((B, n), -1, dtype=torch.long, device=dev),
        )

    def sync(self) -> TimeStep:
        """Recompute the current time step after `units` was edited by hand (a built start)."""
        if self._last is None:
            raise ScenarioError("call reset() before sync()")
        self._last = self._timestep(self._last.reward, self._last.info)
        return self._last

    # -- VecEnv hooks ------------------------------------------------------------------------
    def _reset_rows(self, rows: torch.Tensor) -> None:
        s, tb = self.units, self.table
        B, U = self.B, self.n_units
        jitter = (self.rand(B, U, 2) * 2 - 1) * JITTER  # [B, U, 2]
        # Slots sharing a column share their x, so jitter alone would decide SMAC's order
        # by x among them: the smaller x jitters go to the lower agent indices of each such
        # group (groups are contiguous and 4 apart in key, more than any jitter spread).
        n = self.n_agents
        jx = jitter[:, :n, 0]
        by_x = (self._jitter_group * 4.0 + jx).argsort(dim=1, stable=True)  # [B, n]
        jitter = torch.cat(
            [torch.stack([jx.gather(1, by_x), jitter[:, :n, 1]], -1), jitter[:, n:]], 1
        )
        r1, r2 = rows[:, None], rows[:, None, None]
        s.pos = torch.where(r2, self._home + jitter, s.pos)
        s.hp = torch.where(r1, tb.hp_max.expand(B, U), s.hp)
        s.shield = torch.where(r1, tb.shield_max.expand(B, U), s.shield)
        s.cooldown = torch.where(r1, 0.0, s.cooldown)
        s.since_hit = torch.where(r1, 0.0, s.since_hit)
        s.target = torch.where(r1, -1, s.target)
        s.last_action = torch.where(r1, -1, s.last_action)

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):
        s, tb = self.units, self.table
        n, U, dt = self.n_agents, self.n_units, STEP_SECONDS
        alive = s.hp > 0  # [B, U]
        delta = s.pos[:, None, :, :] - s.pos[:, :, None, :]  # [B, U, U, 2] from i to j
        dist = delta.norm(dim=-1)  # [B, U, U]
        gap = dist - tb.radius[:, None] - tb.radius[None, :]  # [B, U, U] edge to edge

        target, goal, limit, has_goal = self._orders(actions, alive, dist, gap)
        tgt = target.clamp(min=0)  # [B, U]
        tgt_gap = gap.gather(2, tgt[..., None]).squeeze(-1)  # [B, U]
        engaged = (target >= 0) & alive & alive.gather(1, tgt) & active[:, None]
        in_range = tgt_gap <= tb.range
        fire = engaged & in_range & (s.cooldown < dt)  # the weapon is ready within the step
        chase = engaged & ~in_range

        hp_loss, shield_loss, raw = self._damage(fire, tgt, s.shield)
        hp = (s.hp - hp_loss).clamp(min=0.0)
        alive_after = hp > 0
        shield = torch.where(alive_after, s.shield - shield_loss, 0.0)
        # The weapon fires at the moment it becomes ready; the rest of the step counts
        # toward the next cooldown, so the mean rate matches the unit's cooldown.
        cooldown = torch.where(
            fire, tb.cooldown - (dt - s.cooldown.clamp(min=0.0)), (s.cooldown - dt).clamp(min=0.0)
        )

        tgt_pos = s.pos.gather(1, tgt[..., None].expand(-1, -1, 2))  # [B, U, 2]
        goal = torch.where(chase[..., None], tgt_pos, goal)
        limit = torch.where(chase, tgt_gap - tb.range + REACH_MARGIN, limit)
        moving = (has_goal | chase) & alive_after & active[:, None]
        way = goal - s.pos  # [B, U, 2]
        length = way.norm(dim=-1)  # [B, U]
        stride = torch.minimum(torch.minimum(tb.speed * dt, limit), length) * moving
        pos = s.pos + way / length.clamp(min=1e-6)[..., None] * stride[..., None]
        pos = pos.clamp(0.0, MAP_SIZE)

        hit = raw.sum(1) > 0  # [B, U]
        since_hit = torch.where(hit, 0.0, s.since_hit + dt)
        regen = alive_after & (since_hit >= SHIELD_REGEN_DELAY)
        shield = torch.where(
            regen, torch.minimum(shield + SHIELD_REGEN_RATE * dt, tb.shield_max), shield
        )

        # Reward, as SMAC's reward_battle with reward_only_positive.
        e = slice(n, U)
        lost = (s.hp + s.shield - hp - shield)[:, e].sum(-1)  # [B]
        kills = (alive[:, e] & ~alive_after[:, e]).sum(-1)  # [B]
        allies_out = ~alive_after[:, :n].any(-1)
        enemies_out = ~alive_after[:, e].any(-1)
        won = enemies_out & ~allies_out
        reward = (lost + REWARD_DEATH * kills).abs() + REWARD_WIN * won
        reward = reward / (self.max_reward / REWARD_SCALE_RATE)

        a1, a2 = active[:, None], active[:, None, None]
        s.pos = torch.where(a2, pos, s.pos)
        s.hp = torch.where(a1, hp, s.hp)
        s.shield = torch.where(a1, shield, s.shield)
        s.cooldown = torch.where(a1, cooldown, s.cooldown)
        s.since_hit = torch.where(a1, since_hit, s.since_hit)
        s.target = torch.where(a1, target, s.target)
        s.last_action = torch.where(a1, actions, s.last_action)

        terminated = active & (allies_out | enemies_out)
        info = {
            "battle_won": won & terminated,
            "dead_allies": (s.hp[:, :n] <= 0).sum(-1),
            "dead_enemies": (s.hp[:, e] <= 0).sum(-1),
        }
        return reward, terminated, won, info

    def _observe(self):
        s = self.units
        avail = self._avail()
        obs = agent_obs(self.layout, self.table, s.pos, s.hp, s.shield, avail, self._others)
        if self.spotters is not None:
            obs[:, self.spotters:, self.layout.obs_blocks()["enemy"]] = 0.0
        state = global_state(
            self.layout, self.table, s.pos, s.hp, s.shield, s.cooldown, s.last_action
        )
        return obs, state, avail

    # -- rules -------------------------------------------------------------------------------
    def _avail(self) -> torch.Tensor:
        s = self.units
        n = self.n_agents
        alive = s.hp[:, :n] > 0  # [B, n]
        # SMAC checks the point half a move away against the map (pathing is not modelled).
        probe = s.pos[:, :n, None, :] + self._dirs[2:] * (MOVE_AMOUNT / 2)  # [B, n, 4, 2]
        can_move = ((probe >= 0) & (probe < MAP_SIZE)).all(-1) & alive[..., None]
        d = (s.pos[:, n:, None, :] - s.pos[:, None, :n, :]).norm(dim=-1)  # [B, m, n]
        attack = (d.transpose(1, 2) <= SHOOT_RANGE) & (s.hp[:, None, n:] > 0) & alive[..., None]
        return torch.cat(
            [~alive[..., None], alive[..., None], can_move, attack], dim=-1
        )  # [B, n, A] bool

    def _orders(self, actions, alive, dist, gap):
        """Targets [B, U] (unit index, -1 none) and move goals of allies and enemies.

        Returns target, goal [B, U, 2], limit [B, U] (the most a unit may walk toward its
        goal this step besides its speed) and has_goal [B, U].
        """
        s, tb = self.units, self.table
        n, _m = self.n_agents, self.n_enemies
        B = self.B
        attack = actions >= N_NO_ATTACK
        ally_target = torch.where(attack, n + actions - N_NO_ATTACK, -1)  # [B, n]
        step_dir = self._dirs[actions.clamp(max=N_NO_ATTACK - 1)]  # [B, n, 2]
        ally_goal = s.pos[:, :n] + step_dir * MOVE_AMOUNT
        ally_moves = (actions >= 2) & ~attack
        ally_limit = torch.full((B, n), float("inf"), device=self.device)

        g, d = gap[:, n:, :n], dist[:, n:, :n]  # [B, m, n] enemy → ally
        ally_alive = alive[:, None, :n]
        in_reach = (g <= tb.range[n:, None]) & ally_alive  # [B, m, n]
        prev = s.target[:, n:]  # [B, m]
        keep = (prev >= 0) & in_reach.gather(2, prev.clamp(min=0)[..., None]).squeeze(-1)
        far = torch.full_like(d, float("inf"))
        nearest_in_reach = torch.where(in_reach, d, far).argmin(-1)  # [B, m]
        enemy_target = torch.where(
            keep, prev, torch.where(in_reach.any(-1), nearest_in_reach, -1)
        )
        seen = (d < SIGHT_RANGE) & ally_alive
        nearest_seen = torch.where(seen, d, far).argmin(-1)  # [B, m]
        any_seen = seen.any(-1)
        seen_pos = s.pos.gather(1, nearest_seen[..., None].expand(-1, -1, 2))  # [B, m, 2]
        enemy_goal = torch.where(any_seen[..., None], seen_pos, self._ally_start)
        seen_gap = g.gather(2, nearest_seen[..., None]).squeeze(-1)  # [B, m]
        enemy_limit = torch.where(
            any_seen, seen_gap - tb.range[n:] + REACH_MARGIN, float("inf")
        )
        enemy_moves = enemy_target < 0

        return (
            torch.cat([ally_target, enemy_target], 1),
            torch.cat([ally_goal, enemy_goal], 1),
            torch.cat([ally_limit, enemy_limit], 1),
            torch.cat([ally_moves, enemy_moves], 1),
        )

    def _damage(self, fire: torch.Tensor, tgt: torch.Tensor, shield: torch.Tensor):
        """HP loss [B, U], shield loss [B, U] and raw hits [B, U·H, U] of this step's attacks.

        Hits land in attack order; the cumulative sum over that order tells how much of each
        hit the target's shield still absorbs, so per-hit armor is exact for any number of
        attackers without a loop over them.
        """
        tb = self.table
        B, U = fire.shape
        H = int(tb.hits.max())
        per_hit = (
            tb.damage
            + tb.bonus_armored * tb.armored[tgt]
            + tb.bonus_light * tb.light[tgt]
        )  # [B, U]
        slots = torch.arange(H, device=self.device)
        strikes = (slots < tb.hits[:, None]) & fire[..., None]  # [B, U, H]
        onto = F.one_hot(tgt, U).float()  # [B, U, U]
        raw = (per_hit[..., None] * strikes)[..., None] * onto[:, :, None, :]  # [B, U, H, U]
        raw = raw.reshape(B, U * H, U)
        to_hp = torch.minimum(raw, (raw.cumsum(1) - shield[:, None, :]).clamp(min=0.0))
        hp_hits = torch.where(to_hp > 0, (to_hp - tb.armor).clamp(min=0.5), 0.0)
        total = raw.sum(1)  # [B, U]
        return hp_hits.sum(1), torch.minimum(shield, total), raw


def _roster(units: tuple[str, ...]) -> str:
    counts = {u: units.count(u) for u in dict.fromkeys(units)}
    return " + ".join(f"{c} {u}{'s' if c > 1 else ''}" for u, c in counts.items())


def _smac_order(allies: tuple[str, ...], slots: torch.Tensor):
    """Ally slots [n, 2] in SMAC's agent order, and the jitter group [n] of each agent.

    SMAC numbers its agents by sorting the allied units on (unit type, x, y) (`init_units`).
    Each unit type keeps its formation slots, reordered by (x, y), so that agent i of a type
    stands at the smaller (x, y); agents of a type that share a column (same x) form one
    jitter group, inside which reset hands the smaller x jitters to the lower indices.
    """
    kinds = list(dict.fromkeys(allies))
    if allies != tuple(k for k in kinds for _ in range(allies.count(k))):
        raise ScenarioError("SMAC agents must be listed grouped by unit type")
    order, groups, last = [], [], None
    xy = slots.tolist()
    for kind in kinds:
        mine = [i for i, u in enumerate(allies) if u == kind]
        for i in sorted(mine, key=lambda i: (xy[i][0], xy[i][1])):
            key = (kind, xy[i][0])
            groups.append(groups[-1] + (key != last) if groups else 0)
            order.append(i)
            last = key
    index = torch.tensor(order, dtype=torch.long, device=slots.device)
    return slots[index], torch.tensor(groups, dtype=torch.float32, device=slots.device)


def _formation(count: int, centre: tuple[float, float], back: float, device) -> torch.Tensor:
    """Slots [count, 2]: columns of up to ROW units across y, further columns behind."""
    k = torch.arange(count, dtype=torch.float32, device=device)
    col, row = torch.div(k, ROW, rounding_mode="floor"), k % ROW
    in_col = torch.minimum(torch.full_like(k, ROW), count - col * ROW)  # units in this column
    y = centre[1] + (row - (in_col - 1) / 2) * SPACING
    x = centre[0] + back * col * SPACING
    return torch.stack([x, y], dim=-1)
