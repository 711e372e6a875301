"""A backdoor attacker at play, and the team it delivered.

At play the attacker does one thing: it places its trigger (`trigger_size`, a fraction of the
scenario's trigger spots) in every episode, through arena's environment hook
(`arena.rollout`, `VecEnv.set_triggers`). Its record also holds the poisoned team it
delivered: `config["team"]` is that team's network config and the weights are the team's
(`agent.*`, `mixer.*`, as a defender record's), so a defence can start from them.
"""

from __future__ import annotations

from policies.errors import PolicyError


class TriggerAttack:
    surface = "environment"

    def __init__(self, trigger_size: float):
        self.trigger_size = float(trigger_size)

    def reset(self, rows: int, device) -> None:
        pass


def build_trigger(rec, spec) -> TriggerAttack:
    if not spec.triggers:
        raise PolicyError(f"{rec.ref} places a backdoor trigger, but scenario {spec.name} has "
                          f"none; use stag10, stag10_ood or 3m_marker")
    return TriggerAttack(rec.config.get("trigger_size", 0.0))


def delivered_team(rec) -> tuple[str, dict, dict]:
    """(team kind, network config, weights) of the team a backdoor attacker delivered."""
    team = rec.config.get("team") or {}
    if not team or "algo" not in team:
        raise PolicyError(f"{rec.ref} holds no delivered team")
    return team["algo"], dict(team), dict(rec.weights)
