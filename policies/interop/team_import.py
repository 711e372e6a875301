"""Teams trained elsewhere: weights from files become a stored qmix/vdn team.

The file may hold the whole team (`agent.*` and `mixer.*`, as `arena export --format
safetensors` writes it) or only an agent: a PyMARL `agent.th` (Samvelyan et al. 2019) or an
EPyMARL one (Papoudakis et al. 2021), with any hidden width, with or without the last-action
and agent-id inputs, recurrent or feed-forward (`policies.interop.layout` reads which from
the shapes). `mixer_source` adds PyMARL's `mixer.th`: a QMixer (hypernet_layers 1 or 2, any
embedding width) or VDN's empty state dict. A qmix agent without its mixer can play but not
be trained further (`agent_only` in its config).

The network config is derived from the scenario, so every shape is checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from policies.interop.import_weights import (map_pymarl_agent, map_pymarl_mixer, read_metadata,
                                             read_weights)
from policies.interop.layout import agent_layout, mixer_layout, parse_flag
from policies.kinds import KindError

# Parameters a team import may state (`--param KEY=VALUE`); None or "auto" means infer.
IMPORT_PARAMS = ("obs_last_action", "obs_agent_id", "use_rnn", "hidden")


def _split(weights: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def _stated(params: dict | None, source: Path) -> dict:
    """What the user states, over what an exported file's metadata states."""
    stated: dict = {}
    meta = read_metadata(source).get("config")
    if meta:
        try:
            cfg = json.loads(meta)
        except ValueError:
            cfg = {}
        if isinstance(cfg, dict):
            stated.update({k: cfg[k] for k in IMPORT_PARAMS if k in cfg})
    for key, value in (params or {}).items():
        if key not in IMPORT_PARAMS:
            continue
        if key == "hidden":
            if value in (None, "", "auto"):
                continue
            try:
                width = int(value)
            except (TypeError, ValueError):
                raise KindError(f"hidden must be a whole number (0: read it from the weights); "
                                f"got {value!r}") from None
            if width:
                stated[key] = width
        elif parse_flag(key, value) is not None:
            stated[key] = parse_flag(key, value)
    return stated


def import_team(kind: str, scenario: str, source: Path, params: dict | None = None,
                mixer_source: Path | None = None) -> tuple[dict, dict]:
    """(config, weights) of a stored `kind` team for `scenario` from `source` (and
    `mixer_source`); `params` may state obs_last_action, obs_agent_id, use_rnn, hidden."""
    from arena.scenarios import spec as scenario_spec
    from policies.learners.train_defender import (DefenderTrainConfig, DefenderTrainError,
                                                  network_config)
    from policies.teams.networks import build_networks
    from policies.weights import load_named

    if kind not in ("qmix", "vdn"):
        raise KindError(f"kind {kind!r} cannot be imported from PyMARL/EPyMARL files; "
                        f"imported teams are qmix and vdn")
    if scenario == "any":
        raise KindError(f"a {kind} team is made for one scenario: give --scenario")
    spec = scenario_spec(scenario)
    where_scenario = f"scenario {scenario}"
    source = Path(source)
    weights = map_pymarl_agent(read_weights(source))
    agent_w, mixer_w = _split(weights, "agent."), _split(weights, "mixer.")
    if not agent_w:
        raise KindError(f"{source}: no agent weights")
    stated = _stated(params, source)
    layout = agent_layout(agent_w, spec.obs_dim, spec.n_actions, spec.n_agents, **stated,
                          where=str(source), scenario=where_scenario)
    has_mixer = bool(mixer_w) or kind == "vdn"
    if mixer_source is not None:
        if mixer_w:
            raise KindError(f"{source} already holds mixer weights; drop --mixer")
        mixer_w = _split(map_pymarl_mixer(read_weights(Path(mixer_source), allow_empty=True)),
                         "mixer.")
        if kind == "vdn" and mixer_w:
            raise KindError(f"{mixer_source} holds a mixer with parameters, not VDN's: "
                            f"use --kind qmix")
        if kind == "qmix" and not mixer_w:
            raise KindError(f"{mixer_source} holds no parameters (a VDN mixer): use --kind vdn")
        has_mixer = True
    elif kind == "vdn" and mixer_w:
        raise KindError(f"{source} holds mixer weights, which a vdn team has none of: "
                        f"use --kind qmix")
    if kind == "qmix" and mixer_w:
        where = str(mixer_source) if mixer_source is not None else str(source)
        layout.update(mixer_layout(mixer_w, spec.n_agents, spec.state_dim, where=where,
                                   scenario=where_scenario))
    config = network_config(DefenderTrainConfig(algo=kind, scenario=scenario, **layout), spec)
    agent, mixer = build_networks(config)
    try:
        load_named(agent, agent_w, "", f"agent network of {source}", KindError)
        if kind == "qmix" and mixer_w:
            load_named(mixer, mixer_w, "", f"mixer network of {mixer_source or source}",
                       KindError)
    except DefenderTrainError as exc:
        raise KindError(str(exc)) from None
    out = {f"agent.{k}": np.asarray(v, dtype=np.float32) for k, v in agent_w.items()}
    if kind == "qmix" and mixer_w:
        out.update({f"mixer.{k}": np.asarray(v, dtype=np.float32) for k, v in mixer_w.items()})
    if not has_mixer:
        config["agent_only"] = True
    return config, out
