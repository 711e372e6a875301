"""The parameter-only message attackers by kind name."""

from __future__ import annotations

from policies.message.msg_random import MsgRandom

MESSAGE_ATTACKS = {"msg_random": MsgRandom}


def build_message_attack(kind: str, config: dict, n_agents: int):
    return MESSAGE_ATTACKS[kind](config, n_agents)
