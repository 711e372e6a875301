"""The contract every vectorised scenario meets.

A scenario steps a batch of B independent episodes as torch tensors on one device, batch
dimension first, with no Python loop over episodes. Subclasses write the game's rules in
`_reset_rows` and `_step_active`; this base class owns what is common to every game:

- seeding (one `torch.Generator` per environment, on the environment's device),
- the step counter and the episode limit (truncation counts as a loss),
- freezing finished episodes (reward 0, done stays True, observation unchanged) until all
  are done, or resetting them on the spot when `auto_reset=True`,
- illegal actions: an error in debug mode, otherwise replaced by the lowest-index
  available action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class ScenarioError(ValueError):
    """Bad scenario name, option or action; the message is one line meant for the user."""


class IllegalActionError(ScenarioError):
    """An action outside the availability mask, raised in debug mode."""


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int
    messages: bool = False  # agents may exchange messages (communication surface)
    family: str = ""  # "predator_prey", "stag_hunt", "smac", "traffic_junction", "mpe"
    description: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "n_agents": self.n_agents,
            "obs_dim": self.obs_dim,
            "state_dim": self.state_dim,
            "n_actions": self.n_actions,
            "episode_limit": self.episode_limit,
            "messages": self.messages,
            "description": self.description,
        }


@dataclass
class TimeStep:
    obs: torch.Tensor  # [B, n, obs_dim] float32
    state: torch.Tensor  # [B, state_dim] float32
    avail: torch.Tensor  # [B, n, n_actions] bool
    reward: torch.Tensor  # [B] float32, team reward of the step that led here
    done: torch.Tensor  # [B] bool
    won: torch.Tensor  # [B] bool, meaningful where done
    info: dict[str, torch.Tensor] = field(default_factory=dict)


class VecEnv:
    """Base class of the batched scenarios. See the module docstring for the contract.

    Subclasses set `spec` (a ScenarioSpec) and implement:

    - `_reset_rows(rows)`: re-initialise the episodes where the bool mask `rows` [B] is True,
      drawing randomness only from `self.rng`;
    - `_step_active(actions, active)`: advance the episodes where `active` [B] is True with
      legal actions [B, n] and leave the others untouched; return
      `(reward [B], terminated [B], won [B], info)`;
    - `_observe()`: `(obs [B,n,obs_dim], state [B,state_dim], avail [B,n,A] bool)` of the
      current state.
    """

    spec: ScenarioSpec

    def __init__(
        self,
        batch_size: int,
        device: str | torch.device = "cpu",
        auto_reset: bool = False,
        debug: bool = False,
    ):
        if batch_size < 1:
            raise ScenarioError(f"batch size must be at least 1, got {batch_size}")
        self.B = int(batch_size)
        self.device = torch.device(device)
        self.auto_reset = auto_reset
        self.debug = debug
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)
        self.t = torch.zeros(self.B, dtype=torch.long, device=self.device)
        self.done = torch.ones(self.B, dtype=torch.bool, device=self.device)
        self.won = torch.zeros(self.B, dtype=torch.bool, device=self.device)
        self._last: TimeStep | None = None

    # -- helpers for subclasses --------------------------------------------------------------
    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.rng, device=self.device)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        return torch.randint(high, shape, generator=self.rng, device=self.device)

    # -- public API --------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> TimeStep:
        if seed is not None:
            self.rng.manual_seed(int(seed))
        every = torch.ones(self.B, dtype=torch.bool, device=self.device)
        self._reset_rows(every)
        self.t.zero_()
        self.done.zero_()
        self.won.zero_()
        zeros = torch.zeros(self.B, device=self.device)
        self._last = self._timestep(zeros, {})
        return self._last

    def step(self, actions: torch.Tensor) -> TimeStep:
        if self._last is None:
            raise ScenarioError("call reset() before step()")
        actions = torch.as_tensor(actions, device=self.device).long()
        n = self.spec.n_agents
        if actions.shape != (self.B, n):
            raise ScenarioError(
                f"actions must have shape [{self.B}, {n}], got {list(actions.shape)}"
            )
        actions = self._legalise(actions, self._last.avail)
        active = ~self.done
        reward, terminated, won, info = self._step_active(actions, active)
        self.t = torch.where(active, self.t + 1, self.t)
        truncated = active & (self.t >= self.spec.episode_limit) & ~terminated
        ended = active & (terminated | truncated)
        self.won = torch.where(ended, won & terminated, self.won)
        self.done = self.done | ended
        reward = torch.where(active, reward, torch.zeros_like(reward))
        info = dict(info)
        info["truncated"] = truncated
        info["episode_step"] = self.t.clone()
        if self.auto_reset and bool(ended.any()):
            # The returned step carries the reward, done and won of the ending step and the
            # first observation of the new episode (the usual auto-reset convention).
            done_now, won_now = self.done.clone(), self.won.clone()
            self._reset_rows(ended)
            self.t = torch.where(ended, torch.zeros_like(self.t), self.t)
            self.done = self.done & ~ended
            self.won = self.won & ~ended
            ts = self._timestep(reward, info)
            ts.done, ts.won = done_now, won_now
            self._last = ts
            return ts
        self._last = self._timestep(reward, info)
        return self._last

    # -- internals ---------------------------------------------------------------------------
    def _legalise(self, actions: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        A = self.spec.n_actions
        in_range = (actions >= 0) & (actions < A)
        legal = in_range & avail.gather(-1, actions.clamp(0, A - 1).unsqueeze(-1)).squeeze(-1)
        legal = legal | self.done.unsqueeze(-1)  # finished episodes ignore their actions
        if bool(legal.all()):
            return actions
        if self.debug:
            b, i = (~legal).nonzero()[0].tolist()
            raise IllegalActionError(
                f"illegal action {int(actions[b, i])} for agent {i} in episode {b} "
                f"(available: {avail[b, i].nonzero().flatten().tolist()})"
            )
        first_avail = avail.float().argmax(-1)  # lowest-index available action
        return torch.where(legal, actions, first_avail)

    def _timestep(self, reward: torch.Tensor, info: dict) -> TimeStep:
        obs, state, avail = self._observe()
        return TimeStep(
            obs=obs,
            state=state,
            avail=avail,
            reward=reward.float(),
            done=self.done.clone(),
            won=self.won.clone(),
            info=info,
        )

    def _reset_rows(self, rows: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    def _observe(self):  # pragma: no cover - abstract
        raise NotImplementedError


def resolve_device(name: str | None) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cuda` without a GPU is a clear error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ScenarioError("--device cuda was asked for but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ScenarioError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
