"""Unit and map tables of the SMAC-style scenarios.

Unit values are StarCraft II: Legacy of the Void figures as SMAClite uses them (Michalski et
al., "SMAClite: A Lightweight Environment for Multi-Agent Reinforcement Learning", 2023),
with times in real ("faster") seconds. Maps follow SMAC (Samvelyan et al., "The StarCraft
Multi-Agent Challenge", 2019): the same unit line-ups and step limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arena.core import ScenarioError

# One SMAC step is 8 game loops; the game runs 22.4 loops per real second at "faster".
LOOPS_PER_STEP = 8
LOOPS_PER_SECOND = 22.4
STEP_SECONDS = LOOPS_PER_STEP / LOOPS_PER_SECOND  # ≈ 0.357 s

MAP_SIZE = 32.0
SIGHT_RANGE = 9.0  # a unit sees another when the centre distance is strictly below this
SHOOT_RANGE = 6.0  # an attack action is available when the centre distance is at most this
MOVE_AMOUNT = 2.0  # a move action's target point lies this far away (SMAC's _move_amount)
SHIELD_REGEN_DELAY = 10.0  # seconds without damage before shields regenerate
SHIELD_REGEN_RATE = 2.0  # shield points per second

# StarCraft II's own unit ids of the units that appear as enemies with unit-type bits.
SC2_UNIT_ID = {"zealot": 73, "stalker": 74}

ALLY_START = (9.0, 16.0)
ENEMY_START = (23.0, 16.0)


@dataclass(frozen=True)
class UnitType:
    """One StarCraft II unit type; times in seconds, lengths in map units."""

    name: str
    hp: float
    shield: float
    armor: float
    damage: float  # per hit
    hits: int  # hits per attack (zealot and colossus strike twice)
    cooldown: float  # seconds between attacks
    range: float  # weapon range, edge to edge (SC2 convention)
    speed: float  # map units per second
    radius: float
    armored: bool
    light: bool
    bonus_armored: float = 0.0  # extra damage per hit against armored targets
    bonus_light: float = 0.0  # extra damage per hit against light targets
    max_cd: float = 1.0  # SMAC's normaliser of the weapon cooldown (game loops) in the state


UNITS: dict[str, UnitType] = {
    u.name: u
    for u in (
        UnitType("marine", 45, 0, 0, 6, 1, 0.61, 5, 3.15, 0.375, False, True, max_cd=15),
        UnitType(
            "marauder", 125, 0, 1, 10, 1, 1.07, 6, 3.15, 0.5625, True, False,
            bonus_armored=10, max_cd=25,
        ),
        UnitType(
            "stalker", 80, 80, 1, 13, 1, 1.34, 6, 4.13, 0.625, True, False,
            bonus_armored=5, max_cd=35,
        ),
        UnitType("zealot", 100, 50, 1, 8, 2, 0.86, 0.1, 3.15, 0.5, False, True, max_cd=22),
        UnitType(
            "colossus", 200, 150, 1, 10, 2, 1.07, 7, 3.15, 1.0, True, False,
            bonus_light=5, max_cd=24,
        ),
    )
}


@dataclass(frozen=True)
class MapSpec:
    """A SMAC map: unit line-ups in agent order (SMAC sorts agents by unit type)."""

    name: str
    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    episode_limit: int
    default_eps: float = 0.2  # observation-attack budget (Guo et al., robust QMIX)

    @property
    def type_names(self) -> tuple[str, ...]:
        """Unit types of the type one-hot; empty where SMAC uses none.

        SMAC sets its unit-type bits by map family: none for single-type teams (marines,
        stalkers, and 2m_vs_1z, whose agents are all marines), one per type otherwise.
        """
        kinds = tuple(dict.fromkeys(self.allies))
        return kinds if len(kinds) > 1 else ()

    @property
    def enemy_type_names(self) -> tuple[str, ...]:
        """The unit types of the enemies' type one-hot, in SMAC's order.

        SMAC's `get_unit_type_id` numbers allies from the map's own unit types (stalker
        first, then zealot) but enemies by StarCraft II's ids less 73 on the stalkers-and-
        zealots maps (zealot 73, stalker 74), so enemy bits read [zealot, stalker] while ally
        bits read [stalker, zealot].
        """
        kinds = self.type_names
        if set(kinds) == {"stalker", "zealot"}:
            return tuple(sorted(kinds, key=SC2_UNIT_ID.__getitem__))
        return kinds

    @property
    def ally_shields(self) -> bool:
        return any(UNITS[u].shield > 0 for u in self.allies)

    @property
    def enemy_shields(self) -> bool:
        return any(UNITS[u].shield > 0 for u in self.enemies)


def _line_up(*groups: tuple[int, str]) -> tuple[str, ...]:
    return tuple(name for count, name in groups for _ in range(count))


MAPS: dict[str, MapSpec] = {
    m.name: m
    for m in (
        MapSpec("3m", _line_up((3, "marine")), _line_up((3, "marine")), 60),
        MapSpec("8m", _line_up((8, "marine")), _line_up((8, "marine")), 120),
        MapSpec("10m_vs_11m", _line_up((10, "marine")), _line_up((11, "marine")), 150),
        # not a SMAC map: the line-up of the scouting scenario (smac_scout), where the three
        # marines together beat one marauder and two of them lose to it
        MapSpec("3m_vs_1md", _line_up((3, "marine")), _line_up((1, "marauder")), 30),
        MapSpec("2m_vs_1z", _line_up((2, "marine")), _line_up((1, "zealot")), 150),
        MapSpec("3s_vs_3z", _line_up((3, "stalker")), _line_up((3, "zealot")), 150),
        MapSpec(
            "2s3z",
            _line_up((2, "stalker"), (3, "zealot")),
            _line_up((2, "stalker"), (3, "zealot")),
            120,
            default_eps=0.05,
        ),
        MapSpec(
            "3s5z",
            _line_up((3, "stalker"), (5, "zealot")),
            _line_up((3, "stalker"), (5, "zealot")),
            150,
            default_eps=0.05,
        ),
    )
}


def get_map(name: str) -> MapSpec:
    if name not in MAPS:
        raise ScenarioError(f"unknown SMAC map {name!r}; known: {', '.join(MAPS)}")
    return MAPS[name]


@dataclass
class UnitTable:
    """Per-unit constants of one map as tensors [U] (allies first, then enemies)."""

    n_allies: int
    n_enemies: int
    hp_max: torch.Tensor  # [U]
    shield_max: torch.Tensor  # [U]
    armor: torch.Tensor  # [U]
    damage: torch.Tensor  # [U]
    hits: torch.Tensor  # [U] long
    cooldown: torch.Tensor  # [U] seconds
    range: torch.Tensor  # [U]
    speed: torch.Tensor  # [U]
    radius: torch.Tensor  # [U]
    bonus_armored: torch.Tensor  # [U]
    bonus_light: torch.Tensor  # [U]
    armored: torch.Tensor  # [U] bool
    light: torch.Tensor  # [U] bool
    max_cd: torch.Tensor  # [U] game loops
    type_onehot: torch.Tensor  # [U, T], T = len(type_names) (may be 0)
    type_names: tuple[str, ...]

    @classmethod
    def from_map(cls, spec: MapSpec, device: torch.device) -> UnitTable:
        units = [UNITS[name] for name in spec.allies + spec.enemies]

        def col(attr: str, dtype=torch.float32) -> torch.Tensor:
            return torch.tensor([getattr(u, attr) for u in units], dtype=dtype, device=device)

        kinds = spec.type_names
        onehot = torch.tensor(
            [[float(u.name == k) for k in kinds] for u in units], device=device
        ).reshape(len(units), len(kinds))  # [U, T]
        return cls(
            n_allies=len(spec.allies),
            n_enemies=len(spec.enemies),
            hp_max=col("hp"),
            shield_max=col("shield"),
            armor=col("armor"),
            damage=col("damage"),
            hits=col("hits", torch.long),
            cooldown=col("cooldown"),
            range=col("range"),
            speed=col("speed"),
            radius=col("radius"),
            bonus_armored=col("bonus_armored"),
            bonus_light=col("bonus_light"),
            armored=col("armored", torch.bool),
            light=col("light", torch.bool),
            max_cd=col("max_cd"),
            type_onehot=onehot,
            type_names=kinds,
        )
