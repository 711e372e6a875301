"""A `VecEnv` whose step runs as one torch.compile'd function, for small fixed batches.

At batch 1 to ~64 a scenario's step is a few hundred tiny tensor operations, and the time
goes to Python and operator dispatch, not arithmetic. `compile_env(env)` wraps an env
instance from outside (the scenario's code is untouched): the tensor part of `step` (action
legalisation, `_step_active`, the step counter and episode end, `_observe`) becomes one
graph compiled by inductor with static shapes; what stays in Python is the argument check,
debug-mode errors and the auto-reset of finished rows, which runs the scenario's eager
`_reset_rows` followed by the compiled `_observe`.

Randomness: the base class's `rand` numbers draws with a Python counter, which a compiled
graph would bake in as a constant (one recompilation per step). While the compiled step is
traced and run, `rand` is swapped for a twin that takes the counter as a tensor and draws
the same counter-based hash (`arena.core.uniform_from`), so a compiled env follows exactly
the rows' streams of the eager one. A draw whose leading dimension is not the batch (the
scenario's torch.Generator fallback) cannot be compiled: the env then stays eager.

Results: the same formulas in the same order, but inductor fuses them into C++ loops that
may contract a*b+c into one rounding or reorder a reduction, so float observations and
rewards agree with the eager env to float32 rounding (tests/test_compiled.py bounds the
gap), and integer and boolean outputs (done, won, avail, actions taken) are identical.

Compiling costs seconds to a minute of CPU per (scenario, batch size) and is paid again in
every new process (inductor keeps the kernels on disk, which makes later compiles take
seconds); it pays back only over thousands of steps (the README's Benchmarks give the
figures). Anything that goes wrong while compiling leaves the env eager
with one warning.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

from arena.core import ScenarioError, TimeStep, VecEnv, uniform_from


# torch.compile backend of everything here. "inductor" generates fused C++ kernels, the
# speed-up; "eager" only traces the graph and runs it op by op (no kernel compiler, about
# a second to build, bit-identical to the plain step), which tests use to check the
# tracing cheaply.
BACKEND = "inductor"


class _NotCompilable(RuntimeError):
    """The scenario does something the compiled step cannot reproduce exactly."""


class _Counter:
    """Draws made inside one compiled step, on top of the env's count before it."""

    def __init__(self):
        self.k = 0
        self.base: torch.Tensor | None = None


def compile_available() -> bool:
    return hasattr(torch, "compile") and hasattr(torch, "_dynamo")


class CompiledStep:
    """The compiled step of one env instance (installed as `env.step` by `compile_env`)."""

    def __init__(self, env: VecEnv, backend=None):
        self.env = env
        self.eager_step = env.step  # the bound method of the class
        self.ctr = _Counter()
        self.failed: str | None = None
        self.calls = 0
        self.observed_ok = False
        self.batch = env.B  # the size the graph is built for

        def traced_rand(*shape: int) -> torch.Tensor:
            self.ctr.k += 1
            if not shape or shape[0] != env.B:
                raise _NotCompilable("a draw whose leading dimension is not the batch size")
            return uniform_from(env.seeds, self.ctr.base + self.ctr.k, tuple(shape[1:]))

        self.traced_rand = traced_rand
        opts = dict(fullgraph=True, dynamic=False, backend=backend or BACKEND)
        self._fused = torch.compile(self._fused_step, **opts)
        self._observe = torch.compile(lambda: VecEnv._observed(env), **opts)

    # -- the compiled part: the env's own `_advance` and `_observe` (arena.core), traced
    def _fused_step(self, actions, avail, base):
        env = self.env
        self.ctr.base = base
        # `_legalise` without its all-legal shortcut (a branch on data): torch.where keeps
        # legal actions as they are, so the result is the same either way
        actions = torch.where(env._legal(actions, avail), actions, avail.float().argmax(-1))
        reward, info, ended = env._advance(actions)
        return reward, info, ended, VecEnv._observed(env)

    def observed(self):
        """The compiled `_observed` of the env (a reset's observation), while the batch is
        the one compiled for."""
        if self.failed is None and self.env.B == self.batch:
            try:
                with torch.no_grad():
                    out = self._observe()
                self.observed_ok = True
                return out
            except Exception as exc:  # noqa: BLE001 - as in `__call__`
                if self.observed_ok:
                    raise
                self._give_up(exc)
        return VecEnv._observed(self.env)

    # -- the step installed on the env --------------------------------------------------------
    def __call__(self, actions: torch.Tensor) -> TimeStep:
        env = self.env
        if self.failed is not None or env.B != self.batch:
            # a batch shrunk by `keep_rows` would recompile at every new size
            return self.eager_step(actions)
        actions = env._checked_actions(actions)
        if env.debug:
            env._legalise(actions, env._last.avail)  # raises IllegalActionError as eager does
        try:
            out = self._run(actions)
        except ScenarioError:
            raise
        except Exception as exc:  # noqa: BLE001 - any compile failure falls back to eager
            if self.calls:
                raise  # it compiled and ran before: a real error of the step
            self._give_up(exc)  # compiling failed before the graph ran: nothing changed
            return self.eager_step(actions)
        self.calls += 1
        return out

    def _run(self, actions: torch.Tensor) -> TimeStep:
        env = self.env
        self.ctr.k = 0
        base = torch.tensor(env._draws, dtype=torch.long, device=env.device)
        env.rand = self.traced_rand
        try:
            with torch.no_grad():  # the inference graph: no autograd wrapper around it
                reward, info, ended, observed = self._fused(actions, env._last.avail, base)
        finally:
            del env.rand  # back to the class's eager rand
            env._draws += self.ctr.k
        return env._finish_step(reward, info, ended, observed)

    def _give_up(self, exc: Exception) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.failed = f"{type(exc).__name__}: {first}"[:300]
        warnings.warn(f"torch.compile of the {self.env.spec.name} step failed, running it "
                      f"eagerly ({self.failed})", RuntimeWarning, stacklevel=3)
        del self.env.step, self.env._observed  # the class's eager methods again


def compile_env(env: VecEnv, backend=None) -> VecEnv:
    """Make `env.step` the compiled step (in place; returns `env`). The first step compiles;
    if compiling is impossible or fails, the env stays eager after one warning."""
    if isinstance(getattr(env, "step", None), CompiledStep):
        return env
    if not compile_available():
        warnings.warn("torch.compile is not available; the environment step runs eagerly",
                      RuntimeWarning, stacklevel=2)
        return env
    env.step = CompiledStep(env, backend=backend)
    env._observed = env.step.observed  # the observation after an auto-reset, compiled too
    return env


def is_compiled(env: VecEnv) -> bool:
    """True while `env.step` is a working compiled step."""
    step = getattr(env, "step", None)
    return isinstance(step, CompiledStep) and step.failed is None


def compile_function(fn: Callable, backend=None):
    """`fn` compiled with static shapes, or `fn` itself (one warning) when torch.compile
    is missing or the first call fails to compile."""
    if not compile_available():
        warnings.warn("torch.compile is not available; running eagerly", RuntimeWarning,
                      stacklevel=2)
        return fn
    compiled = torch.compile(fn, fullgraph=True, dynamic=False, backend=backend or BACKEND)
    state = {"ok": None}

    def call(*args, **kwargs):
        if state["ok"] is False:
            return fn(*args, **kwargs)
        if state["ok"] is None:
            try:
                out = compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - fall back to eager once, with a warning
                state["ok"] = False
                warnings.warn(f"torch.compile of {getattr(fn, '__name__', 'a function')} "
                              f"failed, running it eagerly ({type(exc).__name__})",
                              RuntimeWarning, stacklevel=2)
                return fn(*args, **kwargs)
            state["ok"] = True
            return out
        return compiled(*args, **kwargs)

    return call
