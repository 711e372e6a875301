"""Team networks from stored records and back: the architecture a config names, the agent and
mixer it builds, and the named float arrays the league keeps.

A config holds the scenario's sizes and the architecture fields (`ARCHITECTURE`); fields added
later (the PyMARL input flags, the feed-forward agent, one-layer hypernetworks, the message
width of a CommNet team, the signature width of a TarMAC team, the prior weight of an NDQ
team) default to their first meaning, so every stored team still loads. "commnet" and
"tarmac" are teams of communicating agents (policies.teams.commnet, policies.teams.tarmac)
under the VDN mixer; "ndq" (policies.teams.ndq) communicates under the QMIX mixer.
"""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from policies.errors import PolicyError
from policies.teams.commnet import CommNetAgent, make_commnet
from policies.teams.ndq import NDQAgent, make_ndq
from policies.teams.qmix import QMixer
from policies.teams.rnn_agent import QTeam, RNNAgent, make_agent
from policies.teams.tarmac import TarMACAgent, make_tarmac
from policies.teams.vdn import VDNMixer

ALGOS = ("qmix", "vdn", "commnet", "tarmac", "ndq")
MESSAGE_ALGOS = ("commnet", "tarmac", "ndq")  # teams whose agents send each other messages
# Policy-gradient teams (policies.learners.mappo, policies.learners.dop): the agent's outputs
# are an actor's logits, played greedily; their critics serve training only and are not kept.
PG_ALGOS = ("mappo", "dop")


class TeamError(PolicyError):
    """A team config or its weights do not make a network (one line for the user)."""


# Config fields that fix the shapes and the computation of a team beyond the scenario's sizes.
ARCHITECTURE = ("hidden", "use_rnn", "obs_last_action", "obs_agent_id", "embed",
                "hypernet_hidden", "hypernet_layers", "msg_dim", "key_dim", "msg_beta")


def architecture_fields(algo: str) -> tuple[str, ...]:
    """The ARCHITECTURE fields a team of `algo` keeps in its config (the message width only
    where there are messages, the signature width only where messages are addressed, the
    prior weight only where messages are Gaussian)."""
    keep = {"commnet": ("msg_dim",), "tarmac": ("msg_dim", "key_dim"),
            "ndq": ("msg_dim", "msg_beta")}.get(algo, ())
    return tuple(k for k in ARCHITECTURE
                 if k not in ("msg_dim", "key_dim", "msg_beta") or k in keep)


def agent_inputs(config: dict) -> list[str]:
    return (["obs"] + (["last_action_onehot"] if config.get("obs_last_action", True) else [])
            + (["agent_id_onehot"] if config.get("obs_agent_id", True) else []))


def architecture_of(weights: dict, config: dict) -> dict:
    """The architecture fields of a stored team's weights (shapes only), for `init` without
    its config; an input layout the shapes cannot settle is an error naming both flags."""
    from policies.interop.layout import agent_layout, mixer_layout
    from policies.kinds import KindError

    agent = {k[len("agent."):]: v for k, v in weights.items() if k.startswith("agent.")}
    mixer = {k[len("mixer."):]: v for k, v in weights.items() if k.startswith("mixer.")}
    try:
        out = agent_layout(agent, int(config["obs_dim"]), int(config["n_actions"]),
                           int(config["n_agents"]), where="the initial weights",
                           scenario=f"scenario {config['scenario']}")
        if config["algo"] in ("qmix", "ndq") and mixer:
            out.update(mixer_layout(mixer, int(config["n_agents"]), int(config["state_dim"]),
                                    where="the initial mixer weights",
                                    scenario=f"scenario {config['scenario']}"))
        if config["algo"] == "commnet":
            out["msg_dim"] = _commnet_msg_dim(agent)
        if config["algo"] == "tarmac":
            out.update(_tarmac_widths(agent))
        if config["algo"] == "ndq":
            out["msg_dim"] = _ndq_msg_dim(agent)
    except KindError as exc:
        raise TeamError(str(exc)) from None
    return out


def _commnet_msg_dim(agent: dict) -> int:
    from policies.kinds import KindError

    if "msg.weight" not in agent:
        raise KindError("the initial weights are not a commnet team's: no agent.msg.weight")
    return int(np.shape(agent["msg.weight"])[0])


def _tarmac_widths(agent: dict) -> dict:
    from policies.kinds import KindError

    for name in ("key.weight", "value.weight"):
        if name not in agent:
            raise KindError(f"the initial weights are not a tarmac team's: no agent.{name}")
    return {"msg_dim": int(np.shape(agent["value.weight"])[0]),
            "key_dim": int(np.shape(agent["key.weight"])[0])}


def _ndq_msg_dim(agent: dict) -> int:
    from policies.kinds import KindError

    if "mu.weight" not in agent:
        raise KindError("the initial weights are not an ndq team's: no agent.mu.weight")
    return int(np.shape(agent["mu.weight"])[0])


def build_mixer(config: dict) -> nn.Module:
    algo = config["algo"]
    if algo in ("vdn", "commnet", "tarmac") + PG_ALGOS:
        return VDNMixer()
    if algo not in ("qmix", "ndq"):
        raise TeamError(f"unknown algo {algo!r}; known: {', '.join(ALGOS + PG_ALGOS)}")
    n, S = int(config["n_agents"]), int(config["state_dim"])
    embed = int(config.get("embed", 32))
    mixer = QMixer(n, S, embed, int(config.get("hypernet_hidden", 64)))
    layers = int(config.get("hypernet_layers", 2))
    if layers == 1:
        # PyMARL's hypernet_layers=1: each hypernetwork is one Linear, under the same names.
        mixer.hyper_w_1 = nn.Linear(S, embed * n)
        mixer.hyper_w_final = nn.Linear(S, embed)
    elif layers != 2:
        raise TeamError(f"hypernet_layers must be 1 or 2, got {layers}")
    return mixer


def build_agent(config: dict) -> RNNAgent | CommNetAgent | TarMACAgent | NDQAgent:
    n_agents, hidden = int(config["n_agents"]), int(config.get("hidden", 64))
    flags = dict(obs_last_action=bool(config.get("obs_last_action", True)),
                 obs_agent_id=bool(config.get("obs_agent_id", True)))
    algo = config["algo"]
    if algo in MESSAGE_ALGOS:
        if not bool(config.get("use_rnn", True)):
            raise TeamError(f"a {algo} team has GRU agents: use_rnn must be true")
        msg_dim = int(config.get("msg_dim", 16))
        if msg_dim < 1:
            raise TeamError(f"msg_dim must be at least 1, got {msg_dim}")
        if algo == "commnet":
            return make_commnet(int(config["obs_dim"]), int(config["n_actions"]), n_agents,
                                hidden, msg_dim, **flags)
        if algo == "ndq":
            beta = float(config.get("msg_beta", 1e-3))
            if not beta >= 0:
                raise TeamError(f"msg_beta must be at least 0, got {beta}")
            return make_ndq(int(config["obs_dim"]), int(config["n_actions"]), n_agents, hidden,
                            msg_dim, msg_beta=beta, **flags)
        key_dim = int(config.get("key_dim", 8))
        if key_dim < 1:
            raise TeamError(f"key_dim must be at least 1, got {key_dim}")
        return make_tarmac(int(config["obs_dim"]), int(config["n_actions"]), n_agents, hidden,
                           msg_dim, key_dim, **flags)
    return make_agent(int(config["obs_dim"]), int(config["n_actions"]), n_agents, hidden,
                      use_rnn=bool(config.get("use_rnn", True)), **flags)


def build_networks(config: dict, device="cpu") -> tuple[nn.Module, nn.Module]:
    """(agent, mixer) of a stored config; fields added later default to their first meaning."""
    try:
        agent = build_agent(config)
        mixer = build_mixer(config)
    except KeyError as exc:
        raise TeamError(f"defender config lacks the field {exc.args[0]!r}") from exc
    return agent.to(device), mixer.to(device)


def export_weights(agent: nn.Module, mixer: nn.Module) -> dict[str, np.ndarray]:
    out = {}
    for prefix, module in (("agent.", agent), ("mixer.", mixer)):
        for k, v in module.state_dict().items():
            out[prefix + k] = v.detach().cpu().numpy().astype(np.float32)
    return out


def load_weights(agent: nn.Module, mixer: nn.Module, weights: dict) -> None:
    from policies.weights import load_named

    if any(True for _ in mixer.parameters()) and not any(k.startswith("mixer.") for k in weights):
        raise TeamError(
            "the weights hold an agent but no mixer (imported without one): add the team again "
            "with its mixer (`arena add-policy … --from agent.th --mixer mixer.th`)")
    for prefix, module in (("agent.", agent), ("mixer.", mixer)):
        load_named(module, weights, prefix, f"{prefix[:-1]} network", TeamError)


def load_defender(config: dict, weights: dict, device="cpu") -> tuple[RNNAgent, nn.Module]:
    """Rebuild (agent, mixer) from a stored config and weights (name → array)."""
    agent, mixer = build_networks(config, device)
    if config.get("agent_only"):
        # An agent imported without its mixer plays and can be attacked; its mixer stays fresh.
        from policies.weights import load_named

        load_named(agent, weights, "agent.", "agent network", TeamError)
        return agent, mixer
    load_weights(agent, mixer, weights)
    return agent, mixer


def load_team(config: dict, weights: dict, device="cpu") -> QTeam:
    """A greedy QTeam for matches, from a stored config and weights."""
    agent, _ = load_defender(config, weights, device)
    agent.eval()
    return QTeam(agent, int(config["n_agents"]), int(config["n_actions"]))
