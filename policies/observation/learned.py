"""What the learned observation attackers (ATLA, PA-AD) share: the base module, the ε-ball
helpers, and the registry of builders that turn a stored record into an attacker.

The registry lives here, below both attackers and below `policies.lineup`, so that the
attackers register themselves on import and the lineup only reads it: no import circle.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from policies.errors import PolicyError
from policies.observation.attacks import feature_bounds, feature_mask, target_mask
from policies.observation.fgsm import clip_to_box
from policies.weights import load_named

# kind name → builder(record, scenario spec, device) → a deterministic attacker module.
LEARNED_ATTACKERS: dict = {}


def agent_inputs(obs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """o_i ⊕ onehot(i) of the attacked agents: obs [R, n, o], idx [m] → [R, m, o + n]."""
    R, n, _ = obs.shape
    ids = torch.eye(n, device=obs.device, dtype=obs.dtype)[idx].expand(R, -1, -1)  # [R, m, n]
    return torch.cat([obs[:, idx], ids], dim=-1)


def with_state(x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """Critic input: x [R, m, d] ⊕ state [R, s] → [R, m, d + s]."""
    return torch.cat([x, state.unsqueeze(1).expand(-1, x.shape[1], -1).to(x.dtype)], dim=-1)


def project_ball(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Per-agent projection onto the ε-ball (last dim)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / delta.norm(dim=-1, keepdim=True).clamp_min(eps))


def scatter_delta(obs: torch.Tensor, delta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """õ = o with δ [R, m, o] added to the attacked agents idx [m] only."""
    full = torch.zeros_like(obs)
    full[:, idx] = delta.to(obs.dtype)
    return obs + full


def check_fits(config: dict, spec, ref: str = "") -> None:
    """A stored learned attacker must match the scenario's shapes."""
    got = tuple(int(config.get(k, -1)) for k in ("obs_dim", "n_agents", "n_actions"))
    want = (spec.obs_dim, spec.n_agents, spec.n_actions)
    if got != want:
        who = f"{ref}: " if ref else ""
        raise PolicyError(f"{who}attacker made for (obs_dim, n_agents, n_actions) = {got}, "
                          f"scenario {spec.name} has {want}")


class LearnedAttacker(nn.Module):
    """Common part of the learned observation attackers: budget, attacked agents, weights.

    Subclasses implement `act(obs, q_fn, avail, state, generator)` → (õ [R, n, o], sample),
    where `sample` holds what PPO needs per attacked agent ("x", "xv", "action", "logp",
    "value", ...; leading dims [R, m]); with `generator=None` the action is deterministic.

    `spec` (the scenario) supplies the feature groups (config "groups") and the feature bounds
    that õ is clipped to (config "clip", default true); without it the attacker perturbs every
    feature, unclipped. Groups and bounds are buffers, not weights: they follow the module's
    device and stay out of the stored weights.
    """

    algo = ""

    def __init__(self, config: dict, spec=None):
        super().__init__()
        self.config = dict(config)
        self.eps = float(config["eps"])
        self.norm = str(config.get("norm", "linf"))
        if self.norm not in ("linf", "l2"):
            raise PolicyError(f"unknown norm {self.norm!r}; known: linf, l2")
        self.n_agents = int(config["n_agents"])
        mask = target_mask(config.get("targets", "all"), self.n_agents)
        self.register_buffer("idx", mask.nonzero().flatten(), persistent=False)  # [m]
        features = feature_mask(config.get("groups", "all"), spec)  # bool [o] or None
        low, high = feature_bounds(bool(config.get("clip", True)), spec)
        self.register_buffer("features", None if features is None else features.float(),
                             persistent=False)
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)

    def restrict(self, delta: torch.Tensor) -> torch.Tensor:
        """δ [..., o] with the features outside the attacked groups zeroed."""
        return delta if self.features is None else delta * self.features.to(delta)

    def valid(self, obs: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """õ clipped to the feature bounds (widened to contain o: see `fgsm.clip_to_box`)."""
        return clip_to_box(obs, seen, self.low, self.high)

    # ObservationAttacker protocol (arena.rollout)
    def reset(self, rows: int, device) -> None:
        pass

    def perturb(self, obs: torch.Tensor, ctx) -> torch.Tensor:
        seen, _ = self.act(obs, ctx.q_fn, ctx.avail, ctx.state, generator=None)
        return seen.detach()

    # weights as named float32 arrays
    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict) -> "LearnedAttacker":
        return load_named(self, weights, "", f"{self.algo} network")
