"""Reading weights from files written by other tools, without running code.

`.safetensors` files are plain tensors by design. Torch files are read with
`torch.load(weights_only=True)`, which refuses anything but tensors and containers of them.
A PyMARL `agent.th` (Samvelyan et al. 2019, RNNAgent: fc1 → GRUCell → fc2) maps onto our GRU
agent by prefixing its parameter names with `agent.`; so does EPyMARL's feed-forward agent
(Papoudakis et al. 2021, `use_rnn: False`: `rnn` is a Linear layer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policies.kinds import KindError

# PyMARL's RNNAgent parameter names, which our GRU agent keeps on purpose.
PYMARL_AGENT_KEYS = (
    "fc1.weight", "fc1.bias", "rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih", "rnn.bias_hh",
    "fc2.weight", "fc2.bias",
)
# EPyMARL's RNNAgent with use_rnn=False.
EPYMARL_FF_AGENT_KEYS = (
    "fc1.weight", "fc1.bias", "rnn.weight", "rnn.bias", "fc2.weight", "fc2.bias",
)


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a .safetensors file (empty for other files)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - read_weights reports an unreadable file
        return {}


def read_weights(path: Path, allow_empty: bool = False) -> dict[str, np.ndarray]:
    """Named arrays of a .safetensors or torch file; `allow_empty` accepts a state dict with no
    entries (what PyMARL saves as the mixer.th of VDN, whose mixer has no parameters)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:  # pragma: no cover - safetensors is a declared dependency
            raise KindError("reading .safetensors needs the safetensors package") from exc
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
            raise KindError(f"{path} is not a readable .safetensors file ({exc})") from None
        return {k: np.asarray(v) for k, v in tensors.items()}
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - refused or unreadable: one line either way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KindError(f"{path} is not a plain torch state dict ({first[:160]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not (obj or allow_empty):
        raise KindError(f"{path} does not hold a state dict of named tensors")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise KindError(f"{path}: entry {key!r} is not a named tensor")
        out[key] = value.detach().cpu().numpy()
    return out


def map_pymarl_agent(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyMARL/EPyMARL RNNAgent names → ours (`agent.` prefix); already-prefixed dicts pass
    through."""
    if all(k.startswith(("agent.", "mixer.")) for k in weights):
        return dict(weights)
    keys = EPYMARL_FF_AGENT_KEYS if "rnn.weight" in weights else PYMARL_AGENT_KEYS
    missing = [k for k in keys if k not in weights]
    extra = [k for k in weights if k not in keys]
    if missing or extra:
        raise KindError(
            "not a PyMARL RNNAgent state dict: "
            + (f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra[:4])}")
        )
    return {f"agent.{k}": v for k, v in weights.items()}


def map_pymarl_mixer(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A PyMARL mixer state dict (QMixer names, or none for VDN) → ours (`mixer.` prefix)."""
    if weights and all(k.startswith("mixer.") for k in weights):
        return dict(weights)
    if any(k.startswith(("agent.", "fc1.", "fc2.", "rnn.")) for k in weights):
        raise KindError("the mixer file holds agent weights; give the agent with --from")
    return {f"mixer.{k}": v for k, v in weights.items()}
