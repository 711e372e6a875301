"""The pruning defence: cut the hidden units that clean play leaves dormant, then fine-tune.

Liu, Dolan-Gavitt and Garg, "Fine-Pruning: Defending Against Backdooring Attacks on Deep
Neural Networks", RAID 2018 (beyond the MARNet paper). A backdoor tends to live in units that
clean inputs do not activate. Fine-pruning ranks the units of the last hidden layer by their
mean activation on clean inputs and removes the least active ones, then fine-tunes the
network on clean data. Here the last hidden layer is the agent's recurrent state h (the
input of the Q head): a unit's activity is its mean |h_j| over the live agents' steps of
`episodes` clean greedy episodes; a cut unit's column of the Q head is set to zero, so it no
longer reaches any Q-value, and it stays zero after the optional clean fine-tuning
(`finetune`).
"""

from __future__ import annotations

import numpy as np
import torch

from arena.scenarios import make
from policies.backdoor.finetune import finetune
from policies.teams.networks import load_team

HEAD = "agent.fc2.weight"  # [A, H]: the Q head, whose columns are the hidden units


def unit_activity(config: dict, weights: dict, scenario: str, episodes: int, seed: int,
                  device="cpu") -> torch.Tensor:
    """Mean |h_j| [H] of the team's hidden units over clean greedy episodes."""
    team = load_team(config, weights, device)
    env = make(scenario, episodes, device=device)
    ts = env.reset(seed=seed)
    h = team.initial_state(episodes)
    last = None
    total = torch.zeros(h.shape[-1], device=h.device)
    count = torch.zeros((), device=h.device)
    with torch.no_grad():
        while not bool(ts.done.all()):
            q, h = team.q_values(ts.obs, h, last, ts.avail)
            live = (~ts.done).unsqueeze(1) & ts.avail.any(-1)  # [B, n]
            total += (h.abs() * live.unsqueeze(-1)).sum((0, 1))
            count += live.sum()
            last = q.argmax(-1)
            ts = env.step(last)
    return total / count.clamp(min=1)


def cut(weights: dict, units: np.ndarray) -> dict:
    out = dict(weights)
    head = np.array(out[HEAD], dtype=np.float32, copy=True)
    head[:, units] = 0.0
    out[HEAD] = head
    return out


def prune(kind: str, config: dict, weights: dict, scenario: str, fraction: float, episodes: int,
          steps: int, seed: int, device="cpu", on_progress=None, should_stop=None):
    """(config, weights, provenance) of the pruned (and optionally fine-tuned) team."""
    if HEAD not in weights:
        raise ValueError(f"pruning needs a Q head {HEAD}; this team has none")
    activity = unit_activity(config, weights, scenario, episodes, seed, device).cpu().numpy()
    k = int(round(fraction * len(activity)))
    units = np.argsort(activity, kind="stable")[:k]
    out = cut(weights, units)
    prov = {"cut_units": sorted(int(u) for u in units), "activity_cut_max":
            float(activity[units].max()) if k else 0.0, "activity_mean": float(activity.mean())}
    if steps > 0:
        config, out, ft = finetune(kind, config, out, scenario, steps, 5e-4, 0.05, seed,
                                   device, on_progress, should_stop)
        out = cut(out, units)
        prov["finetune"] = ft
    return config, out, prov
