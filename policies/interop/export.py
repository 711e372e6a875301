"""A stored qmix/vdn team written as files other tools load.

`pymarl`: the layout of PyMARL's `save_models` (Samvelyan et al., "The StarCraft
Multi-Agent Challenge", 2019; EPyMARL, Papoudakis et al., NeurIPS 2021, keeps it):

- `agent.th`: the state dict of `RNNAgent` (fc1, rnn, fc2; EPyMARL's `use_rnn: False` agent
  has `rnn.weight`/`rnn.bias` of a Linear layer instead of the GRU cell's four arrays);
- `mixer.th`: the state dict of `QMixer` (hyper_w_1, hyper_w_final, hyper_b_1, V), or the
  empty state dict of VDN's mixer, as PyMARL saves it; none for a qmix agent imported
  without its mixer;
- `pymarl_args.json`: the PyMARL/EPyMARL arguments under which those modules have these
  shapes (`rnn_hidden_dim` in PyMARL, `hidden_dim` in EPyMARL, `obs_last_action`,
  `obs_agent_id`, `use_rnn`, `mixing_embed_dim`, `hypernet_layers`, `hypernet_embed`, …).

Both `.th` files are `torch.save` of a plain dict of tensors, so
`torch.load(path, weights_only=True)` reads them and `module.load_state_dict` takes them. PyMARL's
`learner.load_models` also reads an `opt.th` (optimiser state), which is not part of a team.

`safetensors`: one file, `team.safetensors`, of every named array under the league's own
names (`agent.fc1.weight`, …, `mixer.hyper_w_1.0.weight`, …) with the team's network config
as JSON in the file's metadata (key `config`); `arena add-policy --from team.safetensors`
reads it back, input flags included.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from policies.errors import PolicyError

FORMATS = ("pymarl", "safetensors")
TEAM_KINDS = ("qmix", "vdn")


def _tensors(weights: dict, prefix: str) -> OrderedDict:
    import torch

    return OrderedDict(
        (k[len(prefix):], torch.from_numpy(np.array(v, dtype=np.float32, copy=True)))
        for k, v in sorted(weights.items()) if k.startswith(prefix))


def pymarl_args(config: dict) -> dict:
    """The PyMARL/EPyMARL arguments that build modules of these shapes."""
    args = {
        "agent": "rnn",
        "rnn_hidden_dim": int(config.get("hidden", 64)),
        "hidden_dim": int(config.get("hidden", 64)),
        "use_rnn": bool(config.get("use_rnn", True)),
        "obs_last_action": bool(config.get("obs_last_action", True)),
        "obs_agent_id": bool(config.get("obs_agent_id", True)),
        "n_agents": int(config["n_agents"]),
        "n_actions": int(config["n_actions"]),
        "obs_shape": int(config["obs_dim"]),
        "state_shape": int(config["state_dim"]),
        "mixer": config["algo"],
    }
    if config["algo"] == "qmix":
        args.update(mixing_embed_dim=int(config.get("embed", 32)),
                    hypernet_layers=int(config.get("hypernet_layers", 2)),
                    hypernet_embed=int(config.get("hypernet_hidden", 64)))
    return args


def export_team(kind: str, config: dict, weights: dict, out_dir: Path, fmt: str = "pymarl",
                force: bool = False) -> dict:
    """Write the team into `out_dir`; returns {format, files, has_mixer} (paths as strings)."""
    if fmt not in FORMATS:
        raise PolicyError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if kind not in TEAM_KINDS:
        raise PolicyError(f"only qmix and vdn teams can be exported, not a {kind} policy")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PolicyError(f"{out_dir} exists and is not a directory")
    has_mixer = kind == "vdn" or any(k.startswith("mixer.") for k in weights)
    names = (["agent.th"] + (["mixer.th"] if has_mixer else []) + ["pymarl_args.json"]
             if fmt == "pymarl" else ["team.safetensors"])
    paths = [out_dir / n for n in names]
    taken = [str(p) for p in paths if p.exists()]
    if taken and not force:
        raise PolicyError(f"{taken[0]} exists; give --force to overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "pymarl":
        import torch

        torch.save(_tensors(weights, "agent."), paths[0])
        if has_mixer:
            torch.save(_tensors(weights, "mixer."), paths[1])
        paths[-1].write_text(json.dumps(pymarl_args(config), indent=2) + "\n")
    else:
        from safetensors.numpy import save_file

        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(weights.items())}
        save_file(arrays, str(paths[0]),
                  metadata={"format": "marl-arena team", "kind": kind,
                            "config": json.dumps(config, sort_keys=True)})
    return {"format": fmt, "files": [str(p) for p in paths], "has_mixer": has_mixer}
