"""Which network a set of PyMARL/EPyMARL weights is, read from the parameter shapes alone.

PyMARL (Samvelyan et al., "The StarCraft Multi-Agent Challenge", 2019) saves a team as
`agent.th`, the state dict of `RNNAgent` (fc1 → GRUCell `rnn` → fc2), and `mixer.th`, the
state dict of `QMixer` (or an empty one for VDN). EPyMARL (Papoudakis et al.,
"Benchmarking Multi-Agent Deep Reinforcement Learning Algorithms in Cooperative Tasks",
NeurIPS 2021) keeps these names and adds `use_rnn: False`, where `rnn` is a Linear layer.

- Agent: hidden width = fc1.weight rows; `rnn.weight_ih` means a GRU cell, `rnn.weight` a
  Linear layer; fc1's input width = obs_dim + [n_actions if obs_last_action] +
  [n_agents if obs_agent_id] (`BasicMAC._get_input_shape`), which settles both flags unless
  exactly one extension is present and n_actions == n_agents.
- QMixer: `hypernet_layers` 1 has hyper_w_1/hyper_w_final as one Linear each, 2 as
  Linear → ReLU → Linear (`hyper_w_1.0`, `hyper_w_1.2`, …; hidden width `hypernet_embed`);
  the mixing embedding width is hyper_b_1's output width.
"""

from __future__ import annotations

import numpy as np

from policies.kinds import KindError

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def parse_flag(name: str, raw) -> bool | None:
    """A stated flag (bool or word) or None for "infer it"; "auto" and "" mean infer."""
    if raw is None or isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in ("", "auto"):
        return None
    if word not in _BOOL_WORDS:
        raise KindError(f"{name} must be true, false or auto; got {raw!r}")
    return _BOOL_WORDS[word]


def _word(flag: bool) -> str:
    return "true" if flag else "false"


def _shape(weights: dict, name: str, where: str) -> tuple:
    if name not in weights:
        raise KindError(f"{where}: missing weight {name}")
    return tuple(np.shape(weights[name]))


def agent_layout(weights: dict, obs_dim: int, n_actions: int, n_agents: int, *,
                 obs_last_action=None, obs_agent_id=None, use_rnn=None, hidden=None,
                 where: str = "agent weights", scenario: str = "the scenario") -> dict:
    """{hidden, use_rnn, obs_last_action, obs_agent_id} of PyMARL-named agent weights.

    Stated values (not None) must agree with the shapes; the rest are inferred. Raises a
    one-line KindError when the shapes fit no layout, or fit two and nothing says which.
    """
    obs_last_action = parse_flag("obs_last_action", obs_last_action)
    obs_agent_id = parse_flag("obs_agent_id", obs_agent_id)
    use_rnn = parse_flag("use_rnn", use_rnn)
    fc1 = _shape(weights, "fc1.weight", where)
    if len(fc1) != 2:
        raise KindError(f"{where}: fc1.weight has shape {list(fc1)}, not [hidden, inputs]")
    width, in_dim = fc1
    if hidden not in (None, "", 0) and int(hidden) != width:
        raise KindError(f"{where}: the agent's hidden width is {width}, not hidden={hidden}")
    if "rnn.weight_ih" in weights:
        recurrent = True
    elif "rnn.weight" in weights:
        recurrent = False
    else:
        raise KindError(f"{where}: neither rnn.weight_ih (GRU cell) nor rnn.weight "
                        f"(EPyMARL use_rnn=False) is there")
    if use_rnn is not None and use_rnn != recurrent:
        raise KindError(f"{where}: the agent is {'recurrent' if recurrent else 'feed-forward'}, "
                        f"not use_rnn={_word(use_rnn)}")
    out_dim = _shape(weights, "fc2.weight", where)
    if len(out_dim) != 2 or out_dim[0] != n_actions:
        raise KindError(f"{where}: fc2.weight has shape {list(out_dim)} but {scenario} has "
                        f"{n_actions} actions")
    fits = [(last, ids) for last in (True, False) for ids in (True, False)
            if obs_dim + (n_actions if last else 0) + (n_agents if ids else 0) == in_dim]
    stated = [(last, ids) for last, ids in fits
              if obs_last_action in (None, last) and obs_agent_id in (None, ids)]
    if not stated:
        said = "".join(f" with {k}={_word(v)}" for k, v in (("obs_last_action", obs_last_action),
                                                            ("obs_agent_id", obs_agent_id))
                       if v is not None)
        raise KindError(
            f"{where}: fc1 takes {in_dim} inputs, which {scenario} (obs {obs_dim}, "
            f"{n_actions} actions, {n_agents} agents) does not give{said}")
    if len(stated) > 1:
        a, b = stated[0], stated[1]
        raise KindError(
            f"{where}: fc1's {in_dim} inputs fit obs_last_action={_word(a[0])} "
            f"obs_agent_id={_word(a[1])} and obs_last_action={_word(b[0])} "
            f"obs_agent_id={_word(b[1])} ({n_actions} actions = {n_agents} agents); state "
            f"which with --param obs_last_action={_word(a[0])} --param obs_agent_id={_word(a[1])}")
    last, ids = stated[0]
    return {"hidden": int(width), "use_rnn": recurrent, "obs_last_action": last,
            "obs_agent_id": ids}


def mixer_layout(weights: dict, n_agents: int, state_dim: int, *,
                 where: str = "mixer weights", scenario: str = "the scenario") -> dict:
    """{embed, hypernet_layers, hypernet_hidden} of PyMARL-named QMixer weights."""
    embed = _shape(weights, "hyper_b_1.weight", where)
    if len(embed) != 2:
        raise KindError(f"{where}: hyper_b_1.weight has shape {list(embed)}, not [embed, state]")
    if embed[1] != state_dim:
        raise KindError(f"{where}: the mixer reads a state of {embed[1]} values but {scenario} "
                        f"has {state_dim}")
    embed_dim = int(embed[0])
    if "hyper_w_1.weight" in weights:
        layers, hyper_hidden = 1, None
        w1 = _shape(weights, "hyper_w_1.weight", where)
    elif "hyper_w_1.0.weight" in weights:
        layers = 2
        hyper_hidden = int(_shape(weights, "hyper_w_1.0.weight", where)[0])
        w1 = _shape(weights, "hyper_w_1.2.weight", where)
    else:
        raise KindError(f"{where}: no hyper_w_1 weights; not a PyMARL QMixer state dict")
    if w1[0] != embed_dim * n_agents:
        raise KindError(f"{where}: hyper_w_1 makes {w1[0]} weights, but {n_agents} agents × "
                        f"embed {embed_dim} need {embed_dim * n_agents} ({scenario})")
    out = {"embed": embed_dim, "hypernet_layers": layers}
    if hyper_hidden is not None:
        out["hypernet_hidden"] = hyper_hidden
    return out
