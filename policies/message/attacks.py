"""The message attackers by kind name: parameter-only ones, and learned ones built from a stored
record."""

from __future__ import annotations

from policies.message.msg_ppo import build_msg_ppo
from policies.message.msg_random import MsgRandom

MESSAGE_ATTACKS = {"msg_random": MsgRandom}

# kind name → builder(record, scenario spec, device) → a deterministic attacker module
LEARNED_MESSAGE_ATTACKS = {"msg_ppo": build_msg_ppo}


def build_message_attack(kind: str, config: dict, n_agents: int):
    return MESSAGE_ATTACKS[kind](config, n_agents)
