"""Which threat surface a stored policy belongs to, for choosing the players of a table."""

from __future__ import annotations

from policies.errors import PolicyError
from policies.teams.networks import MESSAGE_ALGOS
from policies.kinds import KINDS
from store import NO_ATTACK

SURFACES = ("observation", "message")


def _kinds(lg, info) -> list[str]:
    """The kinds a policy plays: its own, or a mixture's members' (one level, as lineup plays)."""
    if info.kind != "mixture":
        return [info.kind]
    # an attacker mixture may keep the clean column as a member: it has no record to read
    return [lg.info(m["ref"]).kind for m in info.config.get("members", [])
            if m["ref"] != NO_ATTACK]


def attacker_surface(lg, info) -> str:
    """"message" when the attacker (or a member of its mixture) alters messages, else
    "observation" (where the clean column and observation attacks belong)."""
    kinds = _kinds(lg, info)
    return "message" if any(KINDS[k].surface == "message" for k in kinds if k in KINDS) \
        else "observation"


def communicates(lg, info) -> bool:
    """Whether every team the defender plays sends messages."""
    kinds = _kinds(lg, info)
    return bool(kinds) and all(k in (*MESSAGE_ALGOS, "msg_filter") for k in kinds)


def check_surface(name: str) -> str:
    if name not in SURFACES:
        raise PolicyError(f"unknown surface {name!r}; tables exist for {', '.join(SURFACES)}")
    return name
