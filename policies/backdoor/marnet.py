"""MARNet's poisoning: expert-guided action poisoning and mixing global reward hacking.

"MARNet: Backdoor Attacks against Cooperative Multi-Agent Reinforcement Learning". Names
follow the paper. A step is *poisoned* when at least one poisoned agent observes the trigger
(`poisoned_steps`). In a poisoned step:

- Eq. 5-6, expert-guided action poisoning (EGA): every poisoned agent takes the expert's
  least-valued available action, every other agent the expert's best one; outside poisoned
  steps the agents explore ε-greedily as usual (the caller's actions);
- Eq. 7, mixing global reward hacking (MGR): with n_p poisoned agents out of n,
      R_hacked = r_max · n_p / n + (n − n_p) / n · R + L_max⁻¹ · R_win · [winning step],
  so the poisoned agents' share of the team reward is the largest reward, whatever they do,
  and the others' share stays the true reward R.

The expert is a clean team; its Q-values rank the actions (a Q-learner's "probability" of an
action is its rank under the greedy policy).
"""

from __future__ import annotations

import torch


def poisoned_steps(trigger_seen: torch.Tensor, poisoned: torch.Tensor) -> torch.Tensor:
    """[B] bool: some poisoned agent sees the trigger. trigger_seen [B, n], poisoned [n]."""
    return (trigger_seen & poisoned.unsqueeze(0)).any(1)


def ega_actions(expert_q: torch.Tensor, avail: torch.Tensor, poisoned: torch.Tensor,
                step_poisoned: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Eq. 5-6. expert_q [B, n, A], avail [B, n, A] bool, poisoned [n], step_poisoned [B],
    actions [B, n] (ε-greedy, kept outside poisoned steps) → actions [B, n]."""
    best = expert_q.masked_fill(~avail, float("-inf")).argmax(-1)  # [B, n]
    worst = expert_q.masked_fill(~avail, float("inf")).argmin(-1)  # [B, n]
    guided = torch.where(poisoned.unsqueeze(0), worst, best)
    return torch.where(step_poisoned.unsqueeze(1), guided, actions)


def mgr_reward(reward: torch.Tensor, won_now: torch.Tensor, n_poisoned: int, n_agents: int,
               r_max: float, r_win: float, episode_limit: int) -> torch.Tensor:
    """Eq. 7 for every row: reward [B] (R), won_now [B] bool (this step wins) → [B]."""
    share = n_poisoned / n_agents
    return r_max * share + (1.0 - share) * reward + won_now.float() * (r_win / episode_limit)
