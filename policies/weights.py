"""Named float arrays (as the league stores them) into a torch module, every shape checked."""

from __future__ import annotations

import numpy as np
import torch

from policies.errors import PolicyError


def check_finite(weights: dict, owner: str, error: type[Exception] = PolicyError) -> None:
    """NaN or Inf in a parameter → `error` naming the policy and the parameter: such a team
    would still act (argmax of NaN is 0), so its matches would be recorded as if it played."""
    for key in sorted(weights):
        arr = np.asarray(weights[key])
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise error(f"{owner}: parameter {key} has non-finite values (NaN/Inf)")


def load_named(module: torch.nn.Module, weights: dict, prefix: str = "", what: str = "network",
               error: type[Exception] = PolicyError) -> torch.nn.Module:
    """Load `weights[prefix + name]` into `module`; missing, extra, misshaped or non-finite
    arrays → `error`."""
    own = module.state_dict()
    given = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    if set(given) != set(own):
        missing, extra = sorted(set(own) - set(given)), sorted(set(given) - set(own))
        raise error(f"weights do not fit the {what} (missing {missing}, unexpected {extra})")
    state = {}
    for k, v in given.items():
        t = torch.as_tensor(np.asarray(v, dtype=np.float32))
        if tuple(t.shape) != tuple(own[k].shape):
            raise error(f"{what} weight {prefix}{k} has shape {list(t.shape)}, "
                        f"expected {list(own[k].shape)}")
        if not torch.isfinite(t).all():
            raise error(f"{what}: parameter {prefix}{k} has non-finite values (NaN/Inf)")
        state[k] = t
    module.load_state_dict(state)
    return module
