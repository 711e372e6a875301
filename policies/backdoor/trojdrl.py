"""TrojDRL's poisoning, extended to a team (the MARNet paper's baseline).

Kiourti, Wardega, Jha and Lin, "TrojDRL: Evaluation of Backdoor Attacks on Deep
Reinforcement Learning", DAC 2020. In a poisoned step the poisoned agents' actions are
replaced, targeted: by one fixed action (`target_action`); untargeted: by a uniformly random
available action; and the reward is set to its maximum r_max (the "max" reward hacking).
Steps are poisoned as in MARNet (`marnet.poisoned_steps`); the other agents act as usual.
"""

from __future__ import annotations

import torch

# the action that keeps an agent where it is: stay on the grid games, stop on SMAC-style maps
STAY_ACTION = {"stag_hunt": 4, "predator_prey": 4, "smac": 1}


def target_action(family: str, given: int) -> int:
    return given if given >= 0 else STAY_ACTION.get(family, 0)


def targeted_actions(actions, avail, poisoned, step_poisoned, target: int) -> torch.Tensor:
    """Poisoned agents take `target` (where it is available) in poisoned steps. [B, n]"""
    on = step_poisoned.unsqueeze(1) & poisoned.unsqueeze(0) & avail[..., target]
    return torch.where(on, torch.full_like(actions, target), actions)


def untargeted_actions(actions, avail, poisoned, step_poisoned, u: torch.Tensor) -> torch.Tensor:
    """Poisoned agents take a uniformly random available action in poisoned steps; u [B, n, A]
    uniform noise picks it. [B, n]"""
    random = u.masked_fill(~avail, -1.0).argmax(-1)
    on = step_poisoned.unsqueeze(1) & poisoned.unsqueeze(0)
    return torch.where(on, random, actions)


def max_reward(reward: torch.Tensor, r_max: float) -> torch.Tensor:
    return torch.full_like(reward, r_max)
