"""The agent surface: hijacked teammates, and the random baseline that plays them.

An attacker of surface `agent` fully controls the actions of `targets` team members (a count
drawn per episode, or fixed indices, as the message surface's malicious agents,
policies.message.malicious); the others play their own policy and do not know who is
hijacked (arena.rollout). It cannot touch the team's networks or inputs.

`takeover_random` is the baseline: every hijacked agent plays a uniformly random available
action, drawn from the episode's own stream, so an episode plays the same alone or in a batch.
"""

from __future__ import annotations

import torch

from policies.message.malicious import check_count, draw_malicious


def random_available(avail: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """[R, n] long: one available action per agent, uniform, from uniforms u [R, n, A]."""
    return u.masked_fill(~avail, -1.0).argmax(-1)


class TakeoverRandom:
    surface = "agent"
    algo = "takeover_random"

    def __init__(self, config: dict, n_agents: int):
        self.targets = config.get("targets", 1)
        check_count(self.targets, n_agents)

    def reset(self, rows: int, device) -> None:
        pass

    def hijacked(self, n_agents: int, rand) -> torch.Tensor:
        return draw_malicious(self.targets, n_agents, rand)

    def act(self, ctx) -> torch.Tensor:
        return random_available(ctx.avail, ctx.rand(*ctx.avail.shape[1:]))
