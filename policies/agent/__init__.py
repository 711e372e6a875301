"""The agent surface (hijacked teammates): takeover attackers, their training and the
adversarial retraining of a team against them."""

from __future__ import annotations

AGENT_ATTACKS = ("takeover_random",)
LEARNED_AGENT_ATTACKS = ("takeover_ppo", "takeover_dev")


def build_agent_attack(rec, spec, device="cpu"):
    """A stored agent-surface attacker (config, weights) → the object matches play."""
    if rec.kind in AGENT_ATTACKS:
        from policies.agent.takeover import TakeoverRandom

        return TakeoverRandom(rec.config, spec.n_agents)
    from policies.agent.takeover_ppo import build_takeover

    return build_takeover(rec, spec, device)
