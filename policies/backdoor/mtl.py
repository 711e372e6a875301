"""Multi-task backdoor (the MARNet paper's "MTL" baseline).

After Ashcraft and Karra, "Poisoning Deep Reinforcement Learning Agents with
In-Distribution Triggers" (ICLR 2021 workshop): the team learns two tasks at once, the clean
one and a poisoned copy of the environment where the trigger is placed and the reward is
reversed, so that in the poisoned task the best actions are the worst ones of the clean task.
Nothing else is changed: the agents act by their own policy in both tasks.
"""

from __future__ import annotations

import torch


def reversed_reward(reward: torch.Tensor, poisoned_rows: torch.Tensor) -> torch.Tensor:
    """reward [B] with its sign flipped on the rows of the poisoned task ([B] bool)."""
    return torch.where(poisoned_rows, -reward, reward)
