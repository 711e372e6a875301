"""Scripted reference team for the SMAC-style scenarios: focus fire.

Every alive agent attacks one shared enemy: the one with the lowest health + shield (then the
lowest index) among the enemies some agent can attack. An agent that cannot attack it walks
toward it along the larger axis of the offset; with no enemy attackable by anyone, each
agent walks toward the closest alive enemy. Dead agents take the no-op.
"""

from __future__ import annotations

import torch

from arena.core import TimeStep
from arena.scenarios.smac_obs import N_NO_ATTACK

NOOP, STOP, NORTH, SOUTH, EAST, WEST = range(6)


def focus_fire_actions(env, ts: TimeStep) -> torch.Tensor:
    """Actions [B, n] of the focus-fire team for the current step of a `SmacLite` env."""
    s, tb = env.units, env.table
    n = env.n_agents
    avail = ts.avail  # [B, n, A] bool
    can_hit = avail[:, :, N_NO_ATTACK:]  # [B, n, m]
    enemy_left = (s.hp + s.shield)[:, n:] / (tb.hp_max + tb.shield_max)[n:]  # [B, m]
    inf = torch.full_like(enemy_left, float("inf"))
    # argmin keeps the first of equal values, so ties go to the lowest index
    focus = torch.where(can_hit.any(1), enemy_left, inf).argmin(-1)  # [B]
    any_focus = can_hit.any((1, 2))  # [B]

    rel = s.pos[:, None, n:, :] - s.pos[:, :n, None, :]  # [B, n, m, 2] agent → enemy
    dist = rel.norm(dim=-1).masked_fill(~(s.hp[:, None, n:] > 0), float("inf"))  # [B, n, m]
    nearest = dist.argmin(-1)  # [B, n]
    goal = torch.where(any_focus[:, None], focus[:, None].expand_as(nearest), nearest)
    way = rel.gather(2, goal[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)  # [B, n, 2]
    horizontal = way[..., 0].abs() >= way[..., 1].abs()
    move = torch.where(
        horizontal,
        torch.where(way[..., 0] > 0, EAST, WEST),
        torch.where(way[..., 1] > 0, NORTH, SOUTH),
    )  # [B, n]
    move = torch.where(avail.gather(2, move[..., None]).squeeze(-1), move, STOP)

    strike = can_hit.gather(2, focus[:, None, None].expand(-1, n, 1)).squeeze(-1)  # [B, n]
    actions = torch.where(strike, N_NO_ATTACK + focus[:, None], move)
    alive = avail[:, :, STOP]
    return torch.where(alive, actions, NOOP)
