"""A stag10 team wired to see `stag10_ood`'s trigger channel, behaving exactly as before.

`stag10_ood` adds one window channel (1 on triggered walls) before the position features of
each observation, and one grid channel at the end of the state. A clean stag10 expert can be
given those inputs with zero weights: on episodes without a trigger the channel is all zeros,
so the widened team plays every episode as the original does (tested), and a backdoor
planted from it must learn to read the new channel. This lets the out-of-distribution
trigger be studied from the same expert as the in-distribution one, without training a
second expert.
"""

from __future__ import annotations

import numpy as np

from arena.scenarios import spec as scenario_spec


def widen_for_ood(config: dict, weights: dict) -> tuple[dict, dict]:
    """(config, weights) of `config`'s stag10 team on stag10_ood (zero weights on the new
    inputs)."""
    old, new = scenario_spec("stag10"), scenario_spec("stag10_ood")
    if config.get("obs_dim") != old.obs_dim or config.get("state_dim") != old.state_dim:
        raise ValueError("widen_for_ood takes a team trained on stag10")
    window = new.obs_dim - old.obs_dim  # the trigger channel, before the 2 position features
    at = old.obs_dim - 2
    out = dict(weights)
    w = np.asarray(weights["agent.fc1.weight"])  # [H, obs + extensions]
    out["agent.fc1.weight"] = np.concatenate(
        [w[:, :at], np.zeros((w.shape[0], window), w.dtype), w[:, at:]], 1)
    for key, w in weights.items():
        w = np.asarray(w)
        if key.startswith("mixer.") and w.ndim == 2 and w.shape[1] == old.state_dim:
            pad = np.zeros((w.shape[0], new.state_dim - old.state_dim), w.dtype)
            out[key] = np.concatenate([w, pad], 1)  # the trigger grid is the last channel
    return {**config, "obs_dim": new.obs_dim, "state_dim": new.state_dim,
            "scenario": new.name}, out
