"""Teams trained elsewhere: weights from a file become a stored qmix/vdn team.

The network config is derived from the scenario (so shapes are checked against it); the
file may hold the whole team (`agent.*` and `mixer.*`, as `arena` exports) or only a PyMARL
RNNAgent (`agent.th`), in which case the team can play but not be trained further.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policies.interop.import_weights import map_pymarl_agent, read_weights
from policies.kinds import KindError


def import_team(kind: str, scenario: str, source: Path) -> tuple[dict, dict]:
    from arena.scenarios import spec as scenario_spec
    from policies.learners.train_defender import (DefenderTrainConfig, build_networks, export_weights,
                                         network_config)

    if scenario == "any":
        raise KindError(f"a {kind} team is made for one scenario: give --scenario")
    spec = scenario_spec(scenario)
    config = network_config(DefenderTrainConfig(algo=kind, scenario=scenario), spec)
    weights = map_pymarl_agent(read_weights(source))
    agent, mixer = build_networks(config)
    expected = export_weights(agent, mixer)
    has_mixer = any(k.startswith("mixer.") for k in weights)
    for name, value in weights.items():
        if name not in expected:
            raise KindError(f"{source}: unexpected weight {name} for a {kind} team")
        if tuple(np.shape(value)) != expected[name].shape:
            raise KindError(
                f"{source}: {name} has shape {list(np.shape(value))} but scenario {scenario} "
                f"needs {list(expected[name].shape)}"
            )
    needed = [k for k in expected if k.startswith("agent.") or has_mixer]
    missing = [k for k in needed if k not in weights]
    if missing:
        raise KindError(f"{source}: missing weights {', '.join(missing[:4])}")
    if not has_mixer:
        config["agent_only"] = True
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
