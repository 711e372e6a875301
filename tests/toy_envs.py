"""Tiny vectorised games with known answers, for the learner tests.

`CueMatch`: two agents see a cue c ∈ {0, 1}, redrawn every step, and score 1 when both
choose action c. Action 2 exists but is never available (it checks availability masks). An
episode lasts 5 steps; it is won when all 5 steps scored. Uniformly random play scores 1/4
per step (return 1.25), the optimal team 1 per step (return 5).
"""

from __future__ import annotations

import torch

from arena.core import ScenarioSpec, VecEnv


class CueMatch(VecEnv):
    spec = ScenarioSpec(
        name="cue_match",
        n_agents=2,
        obs_dim=3,
        state_dim=3,
        n_actions=3,
        episode_limit=5,
        family="toy",
        description="two agents must both play the observed cue",
    )

    def __init__(self, batch_size: int, device="cpu", auto_reset: bool = False, debug: bool = False):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self.cue = torch.zeros(self.B, dtype=torch.long, device=self.device)
        self.score = torch.zeros(self.B, dtype=torch.long, device=self.device)

    def _reset_rows(self, rows):
        self.cue = torch.where(rows, self.randint(2, self.B), self.cue)
        self.score = torch.where(rows, torch.zeros_like(self.score), self.score)

    def _step_active(self, actions, active):
        hit = (actions == self.cue.unsqueeze(-1)).all(-1) & active  # [B]
        self.score = self.score + hit.long()
        terminated = active & (self.t + 1 >= self.spec.episode_limit)
        won = terminated & (self.score == self.spec.episode_limit)
        self.cue = torch.where(active, self.randint(2, self.B), self.cue)
        return hit.float(), terminated, won, {}

    def _observe(self):
        cue = torch.nn.functional.one_hot(self.cue, 2).float()  # [B, 2]
        time = (self.t.float() / self.spec.episode_limit).unsqueeze(-1)  # [B, 1]
        state = torch.cat([cue, time], -1)  # [B, 3]
        obs = state.unsqueeze(1).expand(self.B, 2, 3).clone()  # [B, 2, 3]
        avail = torch.ones(self.B, 2, 3, dtype=torch.bool, device=self.device)
        avail[..., 2] = False
        return obs, state, avail


class CueRelay(VecEnv):
    """Only agent 0 sees the cue c ∈ {0, 1}, drawn once per episode; the team scores 1 at each
    step where agent 1 plays c (agent 0's action does not count). Agent 1 sees only the time,
    so without a message it can do no better than chance: return 2.5 of 5. A team whose
    messages arrive one step late can be right from the second step on: return 4.5."""

    spec = ScenarioSpec(
        name="cue_relay",
        n_agents=2,
        obs_dim=3,
        state_dim=3,
        n_actions=2,
        episode_limit=5,
        family="toy",
        description="agent 1 must play the cue only agent 0 sees",
    )

    def __init__(self, batch_size: int, device="cpu", auto_reset: bool = False, debug: bool = False):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self.cue = torch.zeros(self.B, dtype=torch.long, device=self.device)

    def _reset_rows(self, rows):
        self.cue = torch.where(rows, self.randint(2, self.B), self.cue)

    def _step_active(self, actions, active):
        hit = (actions[:, 1] == self.cue) & active  # [B]
        terminated = active & (self.t + 1 >= self.spec.episode_limit)
        return hit.float(), terminated, torch.zeros_like(terminated), {}

    def _observe(self):
        cue = torch.nn.functional.one_hot(self.cue, 2).float()  # [B, 2]
        time = (self.t.float() / self.spec.episode_limit).unsqueeze(-1)  # [B, 1]
        state = torch.cat([cue, time], -1)  # [B, 3]
        obs = state.unsqueeze(1).repeat(1, 2, 1)  # [B, 2, 3]
        obs[:, 1, :2] = 0.0  # agent 1 is blind to the cue
        avail = torch.ones(self.B, 2, 2, dtype=torch.bool, device=self.device)
        return obs, state, avail
