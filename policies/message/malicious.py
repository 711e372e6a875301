"""Which agents are malicious in each episode, from a `targets` value of the kind registry."""

from __future__ import annotations

import torch

from policies.errors import PolicyError


def check_count(targets, n_agents: int) -> None:
    """One line when `targets` names more agents, or other agents, than the team has."""
    if targets == "all" or targets is None:
        return
    if isinstance(targets, int):
        if targets > n_agents:
            raise PolicyError(f"targets={targets} malicious agents, but the team has only "
                              f"{n_agents} agents")
        return
    bad = [i for i in targets if int(i) >= n_agents]
    if bad:
        raise PolicyError(f"malicious agent(s) {bad} do not exist: the team has {n_agents} "
                          f"agents (indices 0..{n_agents - 1})")


def draw_malicious(targets, n_agents: int, rand) -> torch.Tensor:
    """bool [R, n]: "all", fixed indices, or `targets` agents drawn uniformly per row.

    `rand(*shape) -> [R, *shape]` is the rows' per-episode stream, so a row's draw is the same
    alone or in any batch. The k smallest of n uniforms are a uniform k-subset."""
    u = rand(n_agents)  # drawn even for fixed targets: the stream's use never depends on them
    mask = torch.zeros(u.shape, dtype=torch.bool, device=u.device)
    if targets == "all":
        mask[:] = True
    elif isinstance(targets, int):
        k = min(int(targets), n_agents)
        mask.scatter_(1, u.argsort(dim=1, stable=True)[:, :k], True)
    else:
        mask[:, list(targets)] = True
    return mask
