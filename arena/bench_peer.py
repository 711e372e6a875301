"""Our scenarios timed beside a peer implementation of the same game, in one process.

The peer is JaxMARL's SMAX (Rutherford et al., 2023), SMAC re-implemented in JAX, in its
`HeuristicEnemySMAX` form: the allies are the agents and the enemies follow SMAX's scripted
heuristic, which is the game our SMAC-style maps play (their scripted enemy is that heuristic).

Timing matches `arena.bench.bench_env`: random legal actions (uniform over the availability
mask), auto-reset on episode end, `warmup` untimed steps, then `steps` timed ones; the rate is
batch × steps / seconds. For SMAX one env step is one call of `jax.jit(jax.vmap(step))` that
draws the actions from the mask, steps, and auto-resets finished episodes (JaxMARL's
`MultiAgentEnv.step`); compilation happens in the warm-up and is not timed, and the clock is
read only after `block_until_ready`. The observations, world state, rewards and dones are
returned by the jitted call so that XLA cannot drop their computation, as our step computes
and returns them too.

jax and jaxmarl are the optional extra `peers`; they are imported inside the functions so that
importing this module never needs them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable

from arena.core import ScenarioError

PEERS = ("smax",)
# maps present both in our scenarios and in SMAX's MAP_NAME_TO_SCENARIO
SMAX_MAPS = ("3m", "8m", "2s3z")
MISSING_EXTRA = "the smax peer needs the optional extra: pip install -e .[peers]"


class PeerMissingError(ScenarioError):
    """The peer's packages are not installed (the message is one line for the user)."""


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1: jaxmarl prints two lines about optional submodules on import
    that `contextlib.redirect_stdout` does not catch (jaxmarl 0.2.0)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _import_smax():
    try:
        with _quiet_stdout():
            import jax
            import jax.numpy as jnp
            from jaxmarl import make as make_peer
            from jaxmarl.environments.smax import map_name_to_scenario
    except ImportError:
        raise PeerMissingError(MISSING_EXTRA) from None
    return jax, jnp, make_peer, map_name_to_scenario


def _smax_env(map_name: str):
    if map_name not in SMAX_MAPS:
        raise ScenarioError(
            f"no smax peer for {map_name!r}; maps both have: {', '.join(SMAX_MAPS)}")
    jax, jnp, make_peer, map_name_to_scenario = _import_smax()
    env = make_peer("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name))
    return jax, jnp, env


def _random_step(jax, jnp, env):
    """jit(vmap) of: draw uniform legal actions, step with auto-reset. (key, state) → (key,
    state, obs, reward, dones) per row."""
    agents = list(env.agents)

    def one(key, state):
        key, k_act, k_env = jax.random.split(key, 3)
        avail = env.get_avail_actions(state)
        mask = jnp.stack([avail[a] for a in agents])  # [n, n_actions]
        act = jnp.argmax(jax.random.uniform(k_act, mask.shape) * mask, axis=-1)
        obs, state, reward, dones, _ = env.step(
            k_env, state, {a: act[i] for i, a in enumerate(agents)})
        return key, state, obs, reward, dones

    return jax.jit(jax.vmap(one))


def bench_smax(map_name: str, batch_sizes: list[int], steps: int = 200, warmup: int = 10,
               seed: int = 0, on_size: Callable[[int], None] | None = None) -> list[dict]:
    """Rows shaped as `arena.bench.bench_env`'s, plus "impl": "smax"; JAX on its default
    device (the CPU where jaxlib has no GPU)."""
    jax, jnp, env = _smax_env(map_name)
    step = _random_step(jax, jnp, env)
    reset = jax.jit(jax.vmap(env.reset))
    device = jax.devices()[0].platform
    rows = []
    base = None
    for b in batch_sizes:
        if on_size is not None:
            on_size(b)
        keys = jax.random.split(jax.random.PRNGKey(seed), b)
        _, state = reset(keys)
        out = (keys, state)
        for _ in range(max(warmup, 1)):  # the first call compiles for this batch size
            out = step(out[0], out[1])
        jax.block_until_ready(out)
        start = time.perf_counter()
        for _ in range(steps):
            out = step(out[0], out[1])
        jax.block_until_ready(out)
        elapsed = time.perf_counter() - start
        rate = b * steps / elapsed
        base = base or rate
        rows.append({"scenario": map_name, "batch": b, "device": device, "impl": "smax",
                     "env_steps_per_s": rate, "speedup": rate / base, "seconds": elapsed})
    return rows


def compare(ours: list[dict], peer: list[dict],
            compiled: list[dict] | None = None) -> list[dict]:
    """One row per batch size (in the order first seen, ours first): both rates and
    ours/peer; a batch size timed on one side only has None for the other and the ratio.
    With `compiled`, also the compiled rate and compiled/peer."""
    def by_batch(rows):
        return {r["batch"]: r for r in rows or []}

    mine, theirs, comp = by_batch(ours), by_batch(peer), by_batch(compiled)
    order = list(dict.fromkeys([r["batch"] for r in ours] + [r["batch"] for r in peer]))
    impl = peer[0].get("impl", "peer") if peer else "peer"
    out = []
    for b in order:
        o, p = mine.get(b), theirs.get(b)
        rate_o = o["env_steps_per_s"] if o else None
        rate_p = p["env_steps_per_s"] if p else None
        row = {"scenario": (o or p)["scenario"], "batch": b, "peer": impl,
               "ours_env_steps_per_s": rate_o, "peer_env_steps_per_s": rate_p,
               "ratio": rate_o / rate_p if rate_o and rate_p else None}
        if compiled is not None:
            c = comp.get(b)
            rate_c = c["env_steps_per_s"] if c else None
            row["ours_compiled_env_steps_per_s"] = rate_c
            row["compiled_ratio"] = rate_c / rate_p if rate_c and rate_p else None
        out.append(row)
    return out


def versus(peer: str, name: str, batch_sizes: list[int], steps: int = 200,
           compiled: bool = False, on_size: Callable[[int], None] | None = None) -> list[dict]:
    """Our scenario `name` (eager, and compiled with `compiled`: `arena.bench`) and the peer's,
    timed on the CPU in this process at each batch size; `compare`'s rows."""
    from arena.bench import bench_env, bench_env_compiled

    if peer not in PEERS:
        raise ScenarioError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")
    _smax_env(name)  # an unknown map or a missing extra: one line before any timing
    comp = None
    if compiled:
        both = bench_env_compiled(name, batch_sizes, device="cpu", steps=steps, on_size=on_size)
        ours = [dict(r, env_steps_per_s=r["eager_steps_per_s"]) for r in both]
        comp = [dict(r, env_steps_per_s=r["compiled_steps_per_s"]) for r in both if r["compiled"]]
    else:
        ours = bench_env(name, batch_sizes, device="cpu", steps=steps, on_size=on_size)
    return compare(ours, bench_smax(name, batch_sizes, steps=steps), comp)
