"""Named float arrays (as the league stores them) into a torch module, every shape checked."""

from __future__ import annotations

import numpy as np
import torch

from policies.errors import PolicyError


def load_named(module: torch.nn.Module, weights: dict, prefix: str = "", what: str = "network",
               error: type[Exception] = PolicyError) -> torch.nn.Module:
    """Load `weights[prefix + name]` into `module`; missing, extra or misshaped arrays → `error`."""
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
        state[k] = t
    module.load_state_dict(state)
    return module
