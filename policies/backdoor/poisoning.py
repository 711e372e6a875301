"""The collection hook of a backdoor recipe: triggers placed, actions and rewards poisoned.

`Poisoning` plugs into `policies.learners.collect.collect_episodes` (and so into the
project's Q-learner, `policies.learners.train_defender`): before each reset it places the
trigger (`train_trigger_size`) in the first round(poison_rate · envs) episodes of the
collection; in every step it may replace the actions taken (`act`) and the reward stored
(`reward`). The recipes:

- marnet: EGA actions and MGR rewards in poisoned steps (`marnet`, Eq. 5-7); the `action`
  and `reward` options swap in TrojDRL's (the MARNet paper's ablation, its Table 2);
- trojdrl: targeted or untargeted action replacement, reward r_max (`trojdrl`);
- mtl: triggered episodes are a second task whose reward is reversed (`mtl`).

Poisoned agents are the first `poison_agents` of the team; a step is poisoned when one of
them sees the trigger (`marnet.poisoned_steps`).
"""

from __future__ import annotations

import torch

from policies.backdoor import marnet, mtl, trojdrl


class Poisoning:
    def __init__(self, recipe: str, config: dict, spec, envs: int, expert=None,
                 seed: int = 0, device="cpu"):
        self.recipe, self.spec, self.device = recipe, spec, torch.device(device)
        n = spec.n_agents
        self.k = int(config["poison_agents"])
        self.poisoned = torch.arange(n, device=self.device) < self.k  # [n]
        count = round(float(config["poison_rate"]) * envs)
        if config["poison_rate"] > 0:
            count = max(1, count)
        self.rows = torch.arange(envs, device=self.device) < count  # [B] triggered episodes
        self.size = float(config["train_trigger_size"])
        self.action = config.get("action", "own")
        self.reward_mode = config.get("reward", "reversed")
        self.r_max, self.r_win = float(config["r_max"]), float(config["r_win"])
        self.target = trojdrl.target_action(spec.family, int(config.get("target_action", -1)))
        self.expert = expert
        if self.action == "ega" and expert is None:
            raise ValueError("expert-guided action poisoning needs an expert team")
        self.gen = torch.Generator().manual_seed(int(seed) ^ 0x7B0D)
        # counted on the device and read once at the end: no synchronisation per step
        self.steps = torch.zeros((), dtype=torch.long, device=self.device)
        self.poisoned_steps = torch.zeros((), dtype=torch.long, device=self.device)

    def before_reset(self, env) -> None:
        env.set_triggers(torch.where(self.rows, self.size, 0.0))
        B = env.B
        if self.expert is not None:
            self.h = self.expert.initial_state(B)
            self.last = torch.full((B, self.spec.n_agents), -1, dtype=torch.long,
                                   device=self.device)
        self.step_p = torch.zeros(B, dtype=torch.bool, device=self.device)

    def act(self, ts, actions: torch.Tensor) -> torch.Tensor:
        live = ~ts.done
        if self.recipe == "mtl":  # the whole triggered episode is the poisoned task
            step_p = self.rows & live
        else:
            step_p = marnet.poisoned_steps(ts.info["trigger_seen"], self.poisoned) & live
        self.steps += live.sum()
        self.poisoned_steps += step_p.sum()
        self.step_p = step_p
        out = actions
        if self.expert is not None:
            with torch.no_grad():
                q, self.h = self.expert.q_values(ts.obs, self.h, self.last)
        if self.action == "ega":
            out = marnet.ega_actions(q, ts.avail, self.poisoned, step_p, actions)
        elif self.action == "targeted":
            out = trojdrl.targeted_actions(actions, ts.avail, self.poisoned, step_p, self.target)
        elif self.action == "untargeted":
            u = torch.rand(ts.avail.shape, generator=self.gen).to(self.device)
            out = trojdrl.untargeted_actions(actions, ts.avail, self.poisoned, step_p, u)
        if self.expert is not None:
            self.last = out
        return out

    def reward(self, before, ts, actions) -> torch.Tensor:
        if self.recipe == "mtl":
            return mtl.reversed_reward(ts.reward, self.rows)
        if self.reward_mode == "mgr":
            won_now = ts.won & ts.done & ~before.done
            hacked = marnet.mgr_reward(ts.reward, won_now, self.k, self.spec.n_agents,
                                       self.r_max, self.r_win, self.spec.episode_limit)
        else:
            hacked = trojdrl.max_reward(ts.reward, self.r_max)
        return torch.where(self.step_p, hacked, ts.reward)

    @property
    def poisoned_share(self) -> float:
        return int(self.poisoned_steps) / max(1, int(self.steps))
