"""Episode replay buffer as PyMARL's `ReplayBuffer`: whole episodes stored as padded tensors.

Layout (N = capacity, T = episode limit). Time index t holds what was seen before the t-th
action; index T holds the observation after the last possible action:

    obs        [N, T+1, n, obs]   float32
    state      [N, T+1, S]        float32
    avail      [N, T+1, n, A]     bool
    actions    [N, T, n]          long
    reward     [N, T]             float32
    terminated [N, T]             bool   (ended by the game, not by the step limit)
    filled     [N, T]             bool   (the t-th action was taken in a live episode)
"""

from __future__ import annotations

import torch

FIELDS = ("obs", "state", "avail", "actions", "reward", "terminated", "filled")


def empty_episodes(
    N: int, T: int, n: int, obs_dim: int, state_dim: int, n_actions: int, device
) -> dict[str, torch.Tensor]:
    return {
        "obs": torch.zeros(N, T + 1, n, obs_dim, device=device),
        "state": torch.zeros(N, T + 1, state_dim, device=device),
        "avail": torch.zeros(N, T + 1, n, n_actions, dtype=torch.bool, device=device),
        "actions": torch.zeros(N, T, n, dtype=torch.long, device=device),
        "reward": torch.zeros(N, T, device=device),
        "terminated": torch.zeros(N, T, dtype=torch.bool, device=device),
        "filled": torch.zeros(N, T, dtype=torch.bool, device=device),
    }


class EpisodeBuffer:
    """Ring buffer of `capacity` episodes; `insert` a batch, `sample` episodes uniformly.

    Storage grows (doubling) with the episodes inserted, up to `capacity`: a short run, a
    fine-tuning or a test, never holds the full buffer (5000 stag10 episodes are 5 GB).
    Where episodes sit, and so what `sample` draws, does not depend on the growth."""

    def __init__(
        self, capacity: int, T: int, n: int, obs_dim: int, state_dim: int, n_actions: int, device="cpu"
    ):
        self.capacity, self.T = capacity, T
        self._shape = (T, n, obs_dim, state_dim, n_actions, device)
        self.data = empty_episodes(min(capacity, 64), *self._shape)
        self.size = 0
        self.pos = 0

    def _grow(self, need: int) -> None:
        have = self.data["reward"].shape[0]
        if need <= have or have == self.capacity:
            return
        new = empty_episodes(min(self.capacity, max(2 * have, need)), *self._shape)
        for k in FIELDS:
            new[k][:have] = self.data[k]
        self.data = new

    def insert(self, batch: dict[str, torch.Tensor]) -> None:
        K = batch["reward"].shape[0]
        self._grow(self.size + K)
        idx = (self.pos + torch.arange(K)) % self.capacity  # [K]
        for k in FIELDS:
            self.data[k][idx.to(self.data[k].device)] = batch[k].to(self.data[k].device)
        self.pos = (self.pos + K) % self.capacity
        self.size = min(self.size + K, self.capacity)

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """`batch_size` distinct episodes, cut to the longest filled length among them."""
        idx = torch.randperm(self.size, generator=generator)[:batch_size]
        idx = idx.to(self.data["reward"].device)
        out = {k: v[idx] for k, v in self.data.items()}
        t_max = int(out["filled"].any(0).nonzero().max()) + 1 if out["filled"].any() else 1
        for k in ("actions", "reward", "terminated", "filled"):
            out[k] = out[k][:, :t_max]
        for k in ("obs", "state", "avail"):
            out[k] = out[k][:, : t_max + 1]
        return out
