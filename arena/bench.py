"""Environment throughput: env-steps/s per batch size, measured in one run.

Random legal actions are drawn on the environment's device (uniform over the available
ones) so the figure is the cost of the environment plus a negligible action sampler.

With `compile=True` every batch size is run twice, eager and compiled (arena.compiled), in
alternating chunks of steps in the same process so that both see the same machine load;
the compile time (the first compiled steps) is reported apart and not in the rate.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from arena.scenarios import make


def random_legal_actions(avail: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform over available actions: argmax of uniform noise restricted to the mask."""
    noise = torch.rand(avail.shape, generator=generator, device=avail.device)
    return (noise * avail).argmax(-1)  # [B, n]


def bench_env(name: str, batch_sizes: list[int], device="cpu", steps: int = 200,
              warmup: int = 10, seed: int = 0,
              on_size: Callable[[int], None] | None = None) -> list[dict]:
    """One row per batch size; `on_size(batch)` before each is timed (for a progress bar)."""
    rows = []
    base = None
    for b in batch_sizes:
        if on_size is not None:
            on_size(b)
        env = make(name, b, device=device, auto_reset=True)
        gen = torch.Generator(device=env.device)
        gen.manual_seed(seed)
        ts = env.reset(seed=seed)
        for _ in range(warmup):
            ts = env.step(random_legal_actions(ts.avail, gen))
        _sync(env)
        start = time.perf_counter()
        for _ in range(steps):
            ts = env.step(random_legal_actions(ts.avail, gen))
        _sync(env)
        elapsed = time.perf_counter() - start
        rate = b * steps / elapsed
        base = base or rate
        rows.append({"scenario": name, "batch": b, "device": str(env.device),
                     "env_steps_per_s": rate, "speedup": rate / base, "seconds": elapsed})
    return rows


def bench_env_compiled(name: str, batch_sizes: list[int], device="cpu", steps: int = 200,
                       warmup: int = 10, seed: int = 0, chunks: int = 4,
                       on_size: Callable[[int], None] | None = None) -> list[dict]:
    """One row per batch size: eager and compiled env-steps/s, their ratio, compile seconds."""
    from arena.compiled import compile_env, is_compiled

    rows = []
    for b in batch_sizes:
        if on_size is not None:
            on_size(b)
        runs = {}
        for way in ("eager", "compiled"):
            env = make(name, b, device=device, auto_reset=True)
            gen = torch.Generator(device=env.device)
            gen.manual_seed(seed)
            ts = env.reset(seed=seed)
            start = time.perf_counter()
            if way == "compiled":
                compile_env(env)
                # auto-reset compiles the observation after a reset as a second graph: run
                # until one row has ended so that both graphs are built before timing
                while True:
                    ts = env.step(random_legal_actions(ts.avail, gen))
                    if bool(ts.done.any()):
                        break
            for _ in range(warmup):
                ts = env.step(random_legal_actions(ts.avail, gen))
            runs[way] = {"env": env, "gen": gen, "ts": ts, "seconds": 0.0,
                         "setup_s": time.perf_counter() - start}
        per_chunk = max(1, steps // chunks)
        for _ in range(chunks):
            for run in runs.values():
                env, gen, ts = run["env"], run["gen"], run["ts"]
                _sync(env)
                start = time.perf_counter()
                for _ in range(per_chunk):
                    ts = env.step(random_legal_actions(ts.avail, gen))
                _sync(env)
                run["seconds"] += time.perf_counter() - start
                run["ts"] = ts
        eager = b * per_chunk * chunks / runs["eager"]["seconds"]
        compiled = b * per_chunk * chunks / runs["compiled"]["seconds"]
        rows.append({"scenario": name, "batch": b, "device": str(runs["eager"]["env"].device),
                     "eager_steps_per_s": eager, "compiled_steps_per_s": compiled,
                     "ratio": compiled / eager, "compile_s": runs["compiled"]["setup_s"],
                     "compiled": is_compiled(runs["compiled"]["env"])})
    return rows


def _sync(env) -> None:
    if env.device.type == "cuda":
        torch.cuda.synchronize()
