"""From command-line input to a league record: kind, role, scenario, config, weights."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from policies.kinds import KindError, check_targets, get_kind, parse_param_pairs


def code_version() -> str:
    try:
        from importlib.metadata import version

        return version("marl-arena")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+unknown"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def base_provenance(**fields) -> dict:
    prov = {"parent": None, "trained_against": None, "steps": 0, "seed": None,
            "code_version": code_version(), "created": now_iso()}
    prov.update(fields)
    return prov


def build_policy_record(name: str, kind_name: str, role: str | None = None,
                        scenario: str | None = None, params=(), source: Path | None = None,
                        mixer: Path | None = None) -> dict:
    """Check everything and return the keyword arguments of `League.add_policy`."""
    kind = get_kind(kind_name)
    if kind.name == "mixture":
        raise KindError("mixture policies are made by `arena psro` (RUN_def, RUN_att)")
    if role is not None and role != kind.role:
        article = {"defender": "a", "attacker": "an"}
        raise KindError(f"kind {kind.name!r} is {article[kind.role]} {kind.role}, "
                        f"not {article[role]} {role}")
    given = parse_param_pairs(params)
    config = kind.make_config(given)
    weights: dict = {}
    scenario = scenario or "any"
    if scenario != "any":
        from arena.scenarios import REGISTRY

        if scenario not in REGISTRY:
            raise KindError(f"unknown scenario {scenario!r}; known: {', '.join(REGISTRY)}")
        if "targets" in config:
            from arena.scenarios import spec

            check_targets(config, spec(scenario).n_agents, scenario)
    if kind.learned:
        if source is None:
            raise KindError(
                f"kind {kind.name!r} is learned: give weights with --from FILE, "
                f"or train one with `arena train`"
            )
        from policies.interop.team_import import import_team

        parsed = config
        # only what the user stated: defaults must not count as stated input-layout flags
        config, weights = import_team(kind.name, scenario, source,
                                      params={k: parsed[k] for k in given}, mixer_source=mixer)
        # the network's sizes come from the file; a --param that says otherwise is a mistake
        for key in given:
            if key in config and config[key] != parsed[key]:
                raise KindError(f"{source} holds a network with {key}={config[key]}, not "
                                f"{parsed[key]}")
    elif source is not None:
        raise KindError(f"kind {kind.name!r} takes no weights; drop --from")
    if mixer is not None and (not kind.learned or source is None):
        raise KindError("--mixer goes with --from agent.th of a qmix or vdn team")
    prov = base_provenance(source=str(source) if source else None,
                           mixer_source=str(mixer) if mixer else None)
    return {"name": name, "role": kind.role, "kind": kind.name, "scenario": scenario,
            "config": config, "weights": weights, "provenance": prov}
