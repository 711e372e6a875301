"""Scenario registry: name → (module, class, default options).

Modules are imported on first use so that listing scenarios stays cheap and an optional
dependency (vmas for `spread`) is only needed by the scenario that uses it.
"""

from __future__ import annotations

import importlib

from arena.core import ScenarioError, ScenarioSpec, VecEnv

DEFAULT_SCENARIO = "3m"  # the demo's, and the one bare names resolve to when a league has it

_SMAC = "arena.scenarios.smac"
REGISTRY: dict[str, tuple[str, str, dict]] = {
    "pp7": ("arena.scenarios.predator_prey", "PredatorPrey", {"penalty": 0.0}),
    "pp7_p05": ("arena.scenarios.predator_prey", "PredatorPrey", {"penalty": -0.5}),
    "stag10": ("arena.scenarios.stag_hunt", "StagHunt", {"trigger_mode": "in_dist"}),
    "stag10_ood": ("arena.scenarios.stag_hunt", "StagHunt", {"trigger_mode": "ood"}),
    "3m": (_SMAC, "SmacLite", {"map_name": "3m"}),
    "3m_blind": (_SMAC, "SmacLite", {"map_name": "3m", "spotters": 1}),
    "1o_2m_scout": ("arena.scenarios.smac_scout", "ScoutSmac", {}),
    "3m_marker": ("arena.scenarios.smac_marker", "MarkerSmac", {}),
    "8m": (_SMAC, "SmacLite", {"map_name": "8m"}),
    "2m_vs_1z": (_SMAC, "SmacLite", {"map_name": "2m_vs_1z"}),
    "3s_vs_3z": (_SMAC, "SmacLite", {"map_name": "3s_vs_3z"}),
    "2s3z": (_SMAC, "SmacLite", {"map_name": "2s3z"}),
    "3s5z": (_SMAC, "SmacLite", {"map_name": "3s5z"}),
    "tj_easy": ("arena.scenarios.traffic_junction", "TrafficJunction", {}),
    "tj_hard": ("arena.scenarios.traffic_junction_hard", "TrafficJunctionHard", {}),
    "spread": ("arena.scenarios.spread", "Spread", {}),
}


def names() -> list[str]:
    return list(REGISTRY)


def _entry(name: str):
    if name not in REGISTRY:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(REGISTRY)}")
    module, cls, defaults = REGISTRY[name]
    try:
        klass = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ScenarioError(f"scenario {name!r} is unavailable here: {exc}") from exc
    return klass, defaults


def make(
    name: str,
    batch_size: int,
    device="cpu",
    auto_reset: bool = False,
    debug: bool = False,
    **options,
) -> VecEnv:
    """Build scenario `name` stepping `batch_size` episodes on `device`."""
    klass, defaults = _entry(name)
    opts = {**defaults, **options}
    env = klass(batch_size, device=device, auto_reset=auto_reset, debug=debug, **opts)
    return env


def spec(name: str, **options) -> ScenarioSpec:
    return make(name, 1, **options).spec
