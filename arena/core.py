"""The contract every vectorised scenario meets.

A scenario steps a batch of B independent episodes as torch tensors on one device, batch
dimension first, with no Python loop over episodes. Subclasses write the game's rules in
`_reset_rows` and `_step_active`; this base class owns what is common to every game:

- seeding: every episode (row) has its own random stream, a counter-based hash of the row's
  seed, the number of draws so far and the element index. A row's trajectory therefore
  depends on its own seed only, never on what else is in the batch: one episode run alone
  and the same episode run inside a batch of thousands are identical (the payoff filler
  relies on this to make batched and cell-by-cell filling agree),
- the step counter and the episode limit (truncation counts as a loss),
- freezing finished episodes (reward 0, done stays True, observation unchanged) until all
  are done, or resetting them on the spot when `auto_reset=True`,
- illegal actions: an error in debug mode, otherwise replaced by the lowest-index
  available action.

A scenario whose spec says `triggers=True` lets an attacker place a backdoor trigger per
episode (the environment surface): `set_triggers(size)` takes a trigger size in [0, 1] per
row, used from the row's next reset on (0: a clean episode, identical to one of the plain
scenario), and every TimeStep's info holds `trigger_seen` [B, n], the agents whose
observation shows a trigger (the base class copies it from `_trigger_seen`, which the
scenario's `_observe` sets).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch


class ScenarioError(ValueError):
    """Bad scenario name, option or action; the message is one line meant for the user."""


_U64 = 1 << 64


def _signed(x: int) -> int:
    return x - _U64 if x >= 1 << 63 else x


_C1, _C2, _GOLD = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB), _signed(0x9E3779B97F4A7C15)


def _lsr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors (multiplication wraps modulo 2^64)."""
    x = x ^ _lsr(x, 30)
    x = x * _C1
    x = x ^ _lsr(x, 27)
    x = x * _C2
    return x ^ _lsr(x, 31)


def row_seeds(seed: int, rows: int, device=None) -> torch.Tensor:
    """Seeds of rows 0..rows-1 of a batch seeded with `seed` (row r's seed does not depend on `rows`)."""
    r = torch.arange(rows, dtype=torch.long, device=device)
    return mix64(mix64(torch.full_like(r, int(seed) & ((1 << 62) - 1))) + r * _GOLD)


def uniform_from(seeds: torch.Tensor, counter: int | torch.Tensor,
                 shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform [0,1) floats of shape [len(seeds), *shape], one independent stream per seed.
    `counter` may be a 0-d long tensor (a compiled graph then does not bake it in)."""
    n = 1
    for s in shape:
        n *= s
    idx = torch.arange(n, dtype=torch.long, device=seeds.device)
    count = torch.as_tensor(counter, dtype=torch.long, device=seeds.device)
    key = mix64(seeds + count * _GOLD)  # [R]
    bits = mix64(key.unsqueeze(1) + (idx + 1).unsqueeze(0) * _C2)  # [R, n]
    u = _lsr(bits, 40).to(torch.float32) * (1.0 / (1 << 24))
    return u.view(len(seeds), *shape)


class IllegalActionError(ScenarioError):
    """An action outside the availability mask, raised in debug mode."""


# Feature groups every scenario may declare (an omitted one is empty): exact 0/1 flags,
# positions and distances, and other bounded quantities (health, counts, velocities, time).
STANDARD_GROUPS = ("binary", "position", "scalar")


@dataclass(frozen=True)
class ScenarioSpec:
    """Shapes and metadata of a scenario.

    `obs_low`/`obs_high` give, per observation feature, the range clean observations take
    (empty: unbounded), and `obs_groups` names sets of feature indices ("binary", "position",
    "scalar" and finer, scenario-specific ones). An observation attack clips to the bounds
    and may restrict itself to groups; `default_eps` is its budget unless told otherwise
    (Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks":
    0.2 on 2m_vs_1z, 3m, 3s_vs_3z, 0.05 on 2s3z). docs/epsilon.md says what ε means on each.
    """

    name: str
    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int
    messages: bool = False  # agents may exchange messages (communication surface)
    # backdoor triggers can be placed per episode (environment surface): the scenario has
    # `set_triggers(size [B])` and every TimeStep's info carries `trigger_seen` [B, n]
    triggers: bool = False
    family: str = ""  # "predator_prey", "stag_hunt", "smac", "traffic_junction", "mpe"
    description: str = ""
    obs_low: tuple[float, ...] = ()
    obs_high: tuple[float, ...] = ()
    obs_groups: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    default_eps: float = 0.2

    def __post_init__(self):
        low, high = tuple(map(float, self.obs_low)), tuple(map(float, self.obs_high))
        if (low or high) and not (len(low) == len(high) == self.obs_dim):
            raise ScenarioError(
                f"{self.name}: obs bounds have {len(low)} and {len(high)} entries, "
                f"obs_dim is {self.obs_dim}"
            )
        if any(lo > hi for lo, hi in zip(low, high)):
            raise ScenarioError(f"{self.name}: an obs lower bound exceeds its upper bound")
        groups = {str(k): tuple(sorted(int(i) for i in v)) for k, v in self.obs_groups.items()}
        for k, idx in groups.items():
            if any(not 0 <= i < self.obs_dim for i in idx) or len(set(idx)) != len(idx):
                raise ScenarioError(f"{self.name}: obs group {k!r} has bad feature indices")
        if self.default_eps < 0:
            raise ScenarioError(f"{self.name}: default_eps must be >= 0")
        # frozen: the normalised values replace the given ones once, here
        object.__setattr__(self, "obs_low", low)
        object.__setattr__(self, "obs_high", high)
        object.__setattr__(self, "obs_groups", groups)

    def bounds(self, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(low [obs_dim], high [obs_dim]) of clean observations; ±inf where undeclared."""
        if not self.obs_low:
            inf = torch.full((self.obs_dim,), float("inf"), dtype=dtype, device=device)
            return -inf, inf
        return (torch.tensor(self.obs_low, dtype=dtype, device=device),
                torch.tensor(self.obs_high, dtype=dtype, device=device))

    def group_mask(self, names: str | Iterable[str], device=None) -> torch.Tensor:
        """Bool [obs_dim]: the features of any of the groups `names` (a name or several)."""
        names = [names] if isinstance(names, str) else list(names)
        mask = torch.zeros(self.obs_dim, dtype=torch.bool, device=device)
        for name in names:
            if name not in self.obs_groups and name not in STANDARD_GROUPS:
                known = ", ".join(sorted(set(self.obs_groups) | set(STANDARD_GROUPS)))
                raise ScenarioError(f"{self.name} has no feature group {name!r}; known: {known}")
            idx = self.obs_groups.get(name, ())
            if idx:
                mask[torch.tensor(idx, dtype=torch.long, device=device)] = True
        return mask

    def group_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.obs_groups.items()}

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
            "triggers": self.triggers,
            "description": self.description,
            "default_eps": self.default_eps,
            "obs_groups": self.group_sizes(),
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
      drawing randomness only with `self.rand`/`self.randint` (leading dimension B or
      `int(rows.sum())`);
    - `_step_active(actions, active)`: advance the episodes where `active` [B] is True with
      legal actions [B, n] and leave the others untouched (draw randomness for all B rows,
      unconditionally, with `self.rand(B, ...)`); return
      `(reward [B], terminated [B], won [B], info)`;
    - `_observe()`: `(obs [B,n,obs_dim], state [B,state_dim], avail [B,n,A] bool)` of the
      current state.
    """

    spec: ScenarioSpec
    # The attributes holding per-episode state (leading dimension B): tensors, or dataclasses
    # whose tensor fields are. `keep_rows` re-indexes them; None: the batch cannot shrink.
    _row_state: tuple[str, ...] | None = None

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
        # Fallback generator for draws whose leading dimension is not a row count.
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)
        self.seeds = row_seeds(0, self.B, self.device)  # [B] int64, one stream per row
        self._draws = 0  # draw calls so far: the stream's counter
        self._rows: torch.Tensor | None = None  # rows being reset, during _reset_rows
        self.t = torch.zeros(self.B, dtype=torch.long, device=self.device)
        self.done = torch.ones(self.B, dtype=torch.bool, device=self.device)
        self.won = torch.zeros(self.B, dtype=torch.bool, device=self.device)
        self._last: TimeStep | None = None

    # -- helpers for subclasses --------------------------------------------------------------
    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0,1) of `shape`. With a leading dimension of B (or, inside `_reset_rows`,
        of the number of rows being reset) each row draws from its own stream. Draw calls
        must not depend on the data of other rows (their count and shapes fix the counter)."""
        self._draws += 1
        if shape and shape[0] == self.B:
            return uniform_from(self.seeds, self._draws, tuple(shape[1:]))
        if self._rows is not None and shape and shape[0] == len(self._rows):
            return uniform_from(self.seeds[self._rows], self._draws, tuple(shape[1:]))
        return torch.rand(*shape, generator=self.rng, device=self.device)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        return (self.rand(*shape) * high).long().clamp_(max=high - 1)

    def randperm_rows(self, n: int) -> torch.Tensor:
        """A random permutation of 0..n-1 per row: [B, n]."""
        return self.rand(self.B, n).argsort(dim=1, stable=True)  # ties broken the same everywhere

    def _reset_selected(self, rows: torch.Tensor) -> None:
        self._rows = rows.nonzero().flatten()
        try:
            self._reset_rows(rows)
        finally:
            self._rows = None

    # -- public API --------------------------------------------------------------------------
    def reset(self, seed: int | None = None, seeds: torch.Tensor | None = None) -> TimeStep:
        """Start every episode. `seed` seeds the batch (row r gets `row_seeds(seed, B)[r]`);
        `seeds` [B] gives each row its own seed explicitly (the payoff filler's per-episode seeds)."""
        if seeds is not None:
            seeds = torch.as_tensor(seeds, dtype=torch.long, device=self.device)
            if seeds.shape != (self.B,):
                raise ScenarioError(f"seeds must have shape [{self.B}], got {list(seeds.shape)}")
            self.seeds = seeds.clone()
        elif seed is not None:
            self.seeds = row_seeds(int(seed), self.B, self.device)
        if seed is not None:
            self.rng.manual_seed(int(seed))
        self._draws = 0
        every = torch.ones(self.B, dtype=torch.bool, device=self.device)
        self._reset_selected(every)
        self.t.zero_()
        self.done.zero_()
        self.won.zero_()
        zeros = torch.zeros(self.B, device=self.device)
        self._last = self._timestep(zeros, {})
        return self._last

    def step(self, actions: torch.Tensor) -> TimeStep:
        actions = self._checked_actions(actions)
        actions = self._legalise(actions, self._last.avail)
        reward, info, ended = self._advance(actions)
        return self._finish_step(reward, info, ended)

    # The step in three parts, so that `arena.compiled` compiles the middle one (tensors in,
    # tensors out, no branch on data) and shares the other two with the eager step.
    def _checked_actions(self, actions) -> torch.Tensor:
        if self._last is None:
            raise ScenarioError("call reset() before step()")
        actions = torch.as_tensor(actions, device=self.device).long()
        n = self.spec.n_agents
        if actions.shape != (self.B, n):
            raise ScenarioError(
                f"actions must have shape [{self.B}, {n}], got {list(actions.shape)}"
            )
        return actions

    def _advance(self, actions: torch.Tensor):
        """Advance the live episodes with legal `actions`: the step counter, the episode end
        (truncation counts as a loss), won and done. Returns (reward [B], info, ended [B])."""
        active = ~self.done
        reward, terminated, won, info = self._step_active(actions, active)
        self.t = torch.where(active, self.t + 1, self.t)
        truncated = active & (self.t >= self.spec.episode_limit) & ~terminated
        ended = active & (terminated | truncated)
        self.won = torch.where(ended, won & terminated, self.won)
        self.done = self.done | ended
        reward = torch.where(active, reward, torch.zeros_like(reward))
        return reward, {**info, "truncated": truncated}, ended

    def _finish_step(self, reward, info: dict, ended, observed=None) -> TimeStep:
        """Reset the rows that ended (with `auto_reset`) and return the time step. `observed`
        is `_observe()` of the state after `_advance` where already computed."""
        info = {**info, "episode_step": self.t.clone()}
        if self.auto_reset and bool(ended.any()):
            # The returned step carries the reward, done and won of the ending step and the
            # first observation of the new episode (the usual auto-reset convention).
            done_now, won_now = self.done.clone(), self.won.clone()
            self._reset_selected(ended)
            self.t = torch.where(ended, torch.zeros_like(self.t), self.t)
            self.done = self.done & ~ended
            self.won = self.won & ~ended
            ts = self._timestep(reward, info)
            ts.done, ts.won = done_now, won_now
        else:
            ts = self._timestep(reward, info, observed)
        self._last = ts
        return ts

    @property
    def can_drop_rows(self) -> bool:
        return self._row_state is not None and not self.auto_reset

    def keep_rows(self, keep: torch.Tensor) -> TimeStep:
        """Drop every episode but rows `keep` [K] (indices, in the order given): the batch
        becomes those K episodes, and each goes on exactly as it would have in the full batch
        (its random stream is its own seed and the shared draw counter). Returns the current
        time step of the kept rows. The evaluation rollout drops finished episodes this way,
        so the environment steps live rows only."""
        if not self.can_drop_rows:
            raise ScenarioError(f"scenario {self.spec.name} cannot drop episodes from its batch"
                                + (" while it resets them on the spot" if self.auto_reset else ""))
        if self._last is None:
            raise ScenarioError("call reset() before keep_rows()")
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.device)
        B = self.B
        self.seeds, self.t = self.seeds[keep], self.t[keep]
        self.done, self.won = self.done[keep], self.won[keep]
        for name in self._row_state:
            setattr(self, name, _take_rows(getattr(self, name), keep, B))
        self.B = len(keep)
        self._rows_kept()
        last = self._last
        self._last = TimeStep(
            obs=last.obs[keep], state=last.state[keep], avail=last.avail[keep],
            reward=last.reward[keep], done=last.done[keep], won=last.won[keep],
            info={k: _take_rows(v, keep, B) for k, v in last.info.items()},
        )
        return self._last

    def _rows_kept(self) -> None:
        """Rebuild whatever derives from the batch size after `keep_rows` (nothing here)."""

    # -- internals ---------------------------------------------------------------------------
    def _legal(self, actions: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """[B, n] bool: which actions are legal (any action of a finished episode is)."""
        A = self.spec.n_actions
        in_range = (actions >= 0) & (actions < A)
        legal = in_range & avail.gather(-1, actions.clamp(0, A - 1).unsqueeze(-1)).squeeze(-1)
        return legal | self.done.unsqueeze(-1)  # finished episodes ignore their actions

    def _legalise(self, actions: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        legal = self._legal(actions, avail)
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

    def _observed(self):
        """`_observe()` and who sees a trigger ([B, n] or None): a time step's observations."""
        obs, state, avail = self._observe()
        seen = getattr(self, "_trigger_seen", None)  # [B, n], set by `_observe` of a game
        return obs, state, avail, (None if seen is None else seen.clone())

    def _timestep(self, reward: torch.Tensor, info: dict, observed=None) -> TimeStep:
        obs, state, avail, seen = observed if observed is not None else self._observed()
        if seen is not None:  # with triggers: who sees one in this observation
            info = {**info, "trigger_seen": seen}
        return TimeStep(
            obs=obs,
            state=state,
            avail=avail,
            reward=reward.float(),
            done=self.done.clone(),
            won=self.won.clone(),
            info=info,
        )

    def set_triggers(self, size: torch.Tensor | float) -> None:
        """Trigger size per row ([B] or a scalar in [0, 1]) from each row's next reset on."""
        raise ScenarioError(f"scenario {self.spec.name} has no backdoor triggers")

    def _trigger_sizes(self, size: torch.Tensor | float) -> torch.Tensor:
        """`size` checked and broadcast to [B] float on the env's device."""
        size = torch.as_tensor(size, dtype=torch.float32, device=self.device)
        size = size.expand(self.B).clone() if size.dim() == 0 else size
        if size.shape != (self.B,):
            raise ScenarioError(f"trigger sizes must have shape [{self.B}], got {list(size.shape)}")
        if bool(((size < 0) | (size > 1)).any()):
            raise ScenarioError("trigger sizes must lie in [0, 1]")
        return size

    def _reset_rows(self, rows: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    def _observe(self):  # pragma: no cover - abstract
        raise NotImplementedError


def _take_rows(value, keep: torch.Tensor, B: int):
    """`value` with only rows `keep` of its leading batch dimension B: a tensor, or a dataclass
    whose tensor fields are re-indexed (a copy; the others are shared)."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0 or value.shape[0] != B:
            raise ScenarioError(f"per-episode state of shape {list(value.shape)} has no leading "
                                f"batch dimension {B}")
        return value[keep]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{
            f.name: _take_rows(getattr(value, f.name), keep, B)
            for f in dataclasses.fields(value) if isinstance(getattr(value, f.name), torch.Tensor)})
    raise ScenarioError(f"per-episode state of type {type(value).__name__} cannot be re-indexed")


def config_from_options(cls, options: dict, scenario: str):
    """A scenario's typed config dataclass from keyword options, unknown keys refused."""
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ScenarioError(
            f"unknown {scenario} option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    cfg = cls(**options)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def resolve_device(name: str | None) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cuda` without a GPU is a clear error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ScenarioError("--device cuda was asked for but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ScenarioError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ScenarioError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ScenarioError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s), numbered from 0")
    return device
