"""Observation and state of the SMAC-style scenarios, built from lists of named features.

Layouts follow SMAC's `StarCraft2Env.get_obs_agent` and `get_state` with the default flags
(Samvelyan et al., "The StarCraft Multi-Agent Challenge", 2019): all health observed, own
health observed, no pathing grid, no terrain height, no last actions in the observation,
last actions in the state, no timestep number.

Observation of agent i (zeros when i is dead):
  move (4) | per enemy [attackable, distance, rel_x, rel_y, health, (shield), (type…)]
           | per other ally [visible, distance, rel_x, rel_y, health, (shield), (type…)]
           | own [health, (shield), (type…)]
Distances are divided by the sight range; units out of sight (or dead) give zeros. Type
bits of allies follow the map's ally types (stalker, zealot) and those of enemies SMAC's
enemy numbering (zealot, stalker), in the observation and in the state alike.
Feature ranges (`obs_space`): move, attackable, visible and type bits are 0/1, distance,
health and shield lie in [0, 1], rel_x and rel_y in [-1, 1].
State: per ally [health, cooldown, rel_x, rel_y, (shield), (type…)] | per enemy [health,
rel_x, rel_y, (shield), (type…)] | last actions of all agents, one-hot. Positions are
relative to the map centre and divided by the map size; dead units give zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from arena.scenarios.smac_units import (
    LOOPS_PER_SECOND,
    MAP_SIZE,
    SIGHT_RANGE,
    MapSpec,
    UnitTable,
)

N_NO_ATTACK = 6  # no-op, stop, move N/S/E/W; attack actions follow
MOVE_FEATURES = ("move_north", "move_south", "move_east", "move_west")


@dataclass(frozen=True)
class Layout:
    """An ordered list of named features; a block is packed by name, never by position."""

    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def pack(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([feats[name] for name in self.names], dim=-1)


@dataclass(frozen=True)
class SmacLayout:
    n_agents: int
    n_enemies: int
    type_names: tuple[str, ...]
    move: Layout
    enemy: Layout
    ally: Layout
    own: Layout
    ally_state: Layout
    enemy_state: Layout

    @classmethod
    def for_map(cls, spec: MapSpec) -> SmacLayout:
        types = tuple(f"type:{k}" for k in spec.type_names)
        enemy_types = tuple(f"type:{k}" for k in spec.enemy_type_names)
        ally_sh = ("shield",) if spec.ally_shields else ()
        enemy_sh = ("shield",) if spec.enemy_shields else ()
        seen = ("distance", "rel_x", "rel_y", "health")
        return cls(
            n_agents=len(spec.allies),
            n_enemies=len(spec.enemies),
            type_names=spec.type_names,
            move=Layout(MOVE_FEATURES),
            enemy=Layout(("attackable",) + seen + enemy_sh + enemy_types),
            ally=Layout(("visible",) + seen + ally_sh + types),
            own=Layout(("health",) + ally_sh + types),
            ally_state=Layout(("health", "cooldown", "rel_x", "rel_y") + ally_sh + types),
            enemy_state=Layout(("health", "rel_x", "rel_y") + enemy_sh + enemy_types),
        )

    @property
    def n_actions(self) -> int:
        return N_NO_ATTACK + self.n_enemies

    def obs_blocks(self) -> dict[str, slice]:
        sizes = {
            "move": len(self.move),
            "enemy": self.n_enemies * len(self.enemy),
            "ally": (self.n_agents - 1) * len(self.ally),
            "own": len(self.own),
        }
        return _slices(sizes)

    def state_blocks(self) -> dict[str, slice]:
        sizes = {
            "ally": self.n_agents * len(self.ally_state),
            "enemy": self.n_enemies * len(self.enemy_state),
            "last_action": self.n_agents * self.n_actions,
        }
        return _slices(sizes)

    @property
    def obs_dim(self) -> int:
        return self.obs_blocks()["own"].stop

    @property
    def state_dim(self) -> int:
        return self.state_blocks()["last_action"].stop


# Range and standard group of each observation feature, by name.
_BINARY = ("move_north", "move_south", "move_east", "move_west", "attackable", "visible")
_RANGE = {"distance": (0.0, 1.0), "rel_x": (-1.0, 1.0), "rel_y": (-1.0, 1.0),
          "health": (0.0, 1.0), "shield": (0.0, 1.0)}
_GROUP = {"distance": "position", "rel_x": "position", "rel_y": "position",
          "health": "scalar", "shield": "scalar"}


def obs_space(lay: SmacLayout) -> dict:
    """ScenarioSpec keyword arguments `obs_low`, `obs_high`, `obs_groups` of a map.

    Groups: "binary" (move, attackable, visible and type bits), "position" (distance,
    rel_x, rel_y), "scalar" (health, shield); the blocks "move", "enemy", "ally", "own"; and
    one group per feature name across blocks ("distance", "rel_x", "rel_y", "health",
    "shield", "type").
    """
    names = list(lay.move.names)
    block = ["move"] * len(lay.move)
    for layout, count, name in ((lay.enemy, lay.n_enemies, "enemy"),
                                (lay.ally, lay.n_agents - 1, "ally"), (lay.own, 1, "own")):
        names += list(layout.names) * count
        block += [name] * (len(layout) * count)
    low, high, groups = [], [], {}
    for i, (name, where) in enumerate(zip(names, block)):
        binary = name in _BINARY or name.startswith("type:")
        lo, hi = (0.0, 1.0) if binary else _RANGE[name]
        low.append(lo)
        high.append(hi)
        kind = "binary" if binary else _GROUP[name]
        feature = "type" if name.startswith("type:") else name
        for group in (kind, where, feature):
            groups.setdefault(group, []).append(i)
    groups = {k: tuple(v) for k, v in groups.items() if not k.startswith("move_")}
    for k in ("binary", "position", "scalar"):
        groups.setdefault(k, ())
    return {"obs_low": tuple(low), "obs_high": tuple(high), "obs_groups": groups}


def _slices(sizes: dict[str, int]) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = slice(start, start + size)
        start += size
    return out


def _unit_feats(
    table: UnitTable, cols: torch.Tensor, hp: torch.Tensor, shield: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Health, shield and type one-hot of units `cols` [..., k]; hp, shield [B, ..., k]."""
    feats = {
        "health": hp / table.hp_max[cols],
        "shield": shield / table.shield_max[cols].clamp(min=1.0),
    }
    onehot = table.type_onehot[cols]  # [..., k, T]
    for t, kind in enumerate(table.type_names):
        feats[f"type:{kind}"] = onehot[..., t].expand_as(hp)
    return feats


def other_allies(n: int, device) -> torch.Tensor:
    """[n, n-1]: for agent i, the other agents in index order (SMAC's ally block order)."""
    every = torch.arange(n, device=device).expand(n, n)
    return every[~torch.eye(n, dtype=torch.bool, device=device)].reshape(n, n - 1)


def agent_obs(
    lay: SmacLayout,
    table: UnitTable,
    pos: torch.Tensor,  # [B, U, 2]
    hp: torch.Tensor,  # [B, U]
    shield: torch.Tensor,  # [B, U]
    avail: torch.Tensor,  # [B, n, A] bool
    others: torch.Tensor,  # [n, n-1] from other_allies()
    sight: torch.Tensor | None = None,  # [n] per-agent sight range; None: SMAC's for all
) -> torch.Tensor:
    n, m = lay.n_agents, lay.n_enemies
    dev = pos.device
    alive = hp > 0  # [B, U]
    # SMAC divides by the sight range, so a far-sighted agent's features stay within [-1, 1]
    reach = SIGHT_RANGE if sight is None else sight[:, None, None]
    rel = (pos[:, None, :, :] - pos[:, :n, None, :]) / reach  # [B, n, U, 2]
    dist = rel.norm(dim=-1)  # [B, n, U]
    seen = (dist < 1.0) & alive[:, None, :]  # strict: centre distance < sight range

    def block(layout: Layout, cols: torch.Tensor, first: dict) -> torch.Tensor:
        # cols [n, k]: for agent i, the units its block describes
        rows = torch.arange(n, device=dev)[:, None]
        d, r = dist[:, rows, cols], rel[:, rows, cols]  # [B, n, k], [B, n, k, 2]
        feats = {"distance": d, "rel_x": r[..., 0], "rel_y": r[..., 1], **first}
        feats.update(_unit_feats(table, cols, hp[:, cols], shield[:, cols]))
        return layout.pack(feats) * seen[:, rows, cols].unsqueeze(-1)  # [B, n, k, F]

    enemy_cols = torch.arange(n, n + m, device=dev).expand(n, m)  # [n, m]
    enemy = block(lay.enemy, enemy_cols, {"attackable": avail[:, :, N_NO_ATTACK:].float()})
    ally = block(lay.ally, others, {"visible": torch.ones_like(dist[:, :, : n - 1])})

    own_cols = torch.arange(n, device=dev)
    own = lay.own.pack(_unit_feats(table, own_cols, hp[:, :n], shield[:, :n]))  # [B, n, F]
    move = avail[:, :, 2:N_NO_ATTACK].float()  # [B, n, 4]
    B = pos.shape[0]
    obs = torch.cat(
        [move, enemy.reshape(B, n, -1), ally.reshape(B, n, -1), own], dim=-1
    )  # [B, n, obs_dim]
    return obs * alive[:, :n, None]


def global_state(
    lay: SmacLayout,
    table: UnitTable,
    pos: torch.Tensor,  # [B, U, 2]
    hp: torch.Tensor,  # [B, U]
    shield: torch.Tensor,  # [B, U]
    cooldown: torch.Tensor,  # [B, U] seconds until the weapon is ready
    last_action: torch.Tensor,  # [B, n] long, -1 before the first step
) -> torch.Tensor:
    n, m = lay.n_agents, lay.n_enemies
    dev = pos.device
    B = pos.shape[0]
    alive = (hp > 0).float()  # [B, U]
    rel = (pos - MAP_SIZE / 2) / MAP_SIZE  # [B, U, 2]
    allies, enemies = torch.arange(n, device=dev), torch.arange(n, n + m, device=dev)

    def block(layout: Layout, cols: torch.Tensor, extra: dict) -> torch.Tensor:
        feats = {"rel_x": rel[:, cols, 0], "rel_y": rel[:, cols, 1], **extra}
        feats.update(_unit_feats(table, cols, hp[:, cols], shield[:, cols]))
        return (layout.pack(feats) * alive[:, cols, None]).reshape(B, -1)

    cd_frac = cooldown[:, allies] * LOOPS_PER_SECOND / table.max_cd[allies]  # [B, n]
    ally = block(lay.ally_state, allies, {"cooldown": cd_frac})
    enemy = block(lay.enemy_state, enemies, {})
    last = F.one_hot(last_action.clamp(min=0), lay.n_actions).float()
    last = last * (last_action >= 0).unsqueeze(-1)  # [B, n, A]
    return torch.cat([ally, enemy, last.reshape(B, -1)], dim=-1)  # [B, state_dim]
