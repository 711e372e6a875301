"""Environment throughput: env-steps/s per batch size, measured in one run.

Random legal actions are drawn on the environment's device (uniform over the available
ones) so the figure is the cost of the environment plus a negligible action sampler.
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
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            ts = env.step(random_legal_actions(ts.avail, gen))
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        rate = b * steps / elapsed
        base = base or rate
        rows.append({"scenario": name, "batch": b, "device": str(env.device),
                     "env_steps_per_s": rate, "speedup": rate / base, "seconds": elapsed})
    return rows
