"""Which threat surface a stored policy belongs to, for choosing the players of a table."""

from __future__ import annotations

from policies.errors import PolicyError
from policies.teams.networks import MESSAGE_ALGOS
from policies.kinds import KINDS
from store import NO_ATTACK

SURFACES = ("observation", "message", "backdoor", "agent", "training")


def _kinds(lg, info) -> list[str]:
    """The kinds a policy plays: its own, or a mixture's members' (one level, as lineup plays)."""
    if info.kind != "mixture":
        return [info.kind]
    # an attacker mixture may keep the clean column as a member: it has no record to read
    return [lg.info(m["ref"]).kind for m in info.config.get("members", [])
            if m["ref"] != NO_ATTACK]


# The backdoor game's players act on the environment hook (their kinds' surface): the
# attacker places triggers in the map, the defender treats the team it was delivered.
def attacker_surface(lg, info) -> str:
    """"message" when the attacker (or a member of its mixture) alters messages, "agent" when
    it hijacks teammates, "backdoor" when it delivers a backdoored team, "training" when it
    acts while a team trains, else "observation" (where the clean column and observation
    attacks belong)."""
    kinds = {KINDS[k].surface for k in _kinds(lg, info) if k in KINDS}
    if "training" in kinds:
        return "training"
    if "message" in kinds:
        return "message"
    if "agent" in kinds:
        return "agent"
    return "backdoor" if "environment" in kinds else "observation"


def is_defence(info) -> bool:
    """A backdoor defence (a procedure applied to a delivered team), not a team."""
    return info.kind in KINDS and KINDS[info.kind].surface == "environment"


def is_recipe(info) -> bool:
    """A learner recipe (the training surface's row), not a team."""
    return info.kind in KINDS and KINDS[info.kind].surface == "training"


def communicates(lg, info) -> bool:
    """Whether every team the defender plays sends messages."""
    kinds = _kinds(lg, info)
    return bool(kinds) and all(k in (*MESSAGE_ALGOS, "msg_filter") for k in kinds)


def check_surface(name: str) -> str:
    if name not in SURFACES:
        raise PolicyError(f"unknown surface {name!r}; tables exist for {', '.join(SURFACES)}")
    return name
