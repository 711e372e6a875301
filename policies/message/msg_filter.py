"""ℜ-MACRL's message filter: an anomaly detector and a message reconstructor in front of a
frozen communicating team.

Xue et al., "Mis-spoke or mis-lead: Achieving Robustness in Multi-Agent Communicative
Reinforcement Learning" (AAMAS 2022), Eq. 2: each incoming message m_j passes through

    f(m_j) = m_j              if h_d(m_j) = 0   (judged benign)
             g_r(m_j)         if h_d(m_j) = 1   (judged malicious)

where h_d is a Bernoulli detector (sampled while it is trained, thresholded at 0.5 in play)
and g_r a reconstructor of the message the sender would have sent.

Receiver-independent: the paper filters per receiver i with i's trajectory as context. Our
teams read a broadcast (CommNet's mean, TarMAC's attention over the same in-transit messages),
so one verdict per sender serves every receiver, and the context is what the whole team has in
transit: for sender j,

    x_j = m_j ⊕ mean_{k≠j} m_k ⊕ onehot(j),

the same input for h_d (its logit and its PPO value) and for g_r. g_r is residual,
g_r(x_j) = m_j + r(x_j), so that an untrained or lightly trained reconstructor stays close to
the identity on what it is given.

Ablations (kind parameters): `detector=off` reconstructs ONE agent's message per step, picked
at random, instead of the flagged ones (the paper's ablation without detection);
`reconstructor=random` replaces a flagged message by Gaussian noise of its own norm. Their
randomness comes from a hash of the row's in-transit messages, so an episode plays the same
alone or inside any batch.

The filter acts where the team reads: `FilterAgent` wraps the base agent, rewrites the
in-transit message slice of its recurrent state, then runs the base agent unchanged. A stored
filter carries its base team (config under "team", weights prefixed "team.") beside its own
"detector." and "reconstructor." arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from arena.core import mix64, uniform_from
from policies.errors import PolicyError
from policies.learners.ppo import MLP
from policies.teams.commnet import mean_of_others
from policies.teams.networks import MESSAGE_ALGOS
from policies.weights import load_named

_QUANT = float(1 << 12)
_SALT_PICK, _SALT_NOISE = 0x51F7E2, 0x7015E5
_MIX = 0x9E3779B97F4A7C15 - (1 << 64)


def message_keys(msgs: torch.Tensor) -> torch.Tensor:
    """[R] int64 keys from msgs [R, n, d]: a quantised, order-free integer hash (a wrapping sum
    of mixed elements), so a row's key is exact whatever batch it sits in."""
    q = torch.round(msgs.detach().float().clamp(-1e6, 1e6) * _QUANT).long().flatten(1)
    pos = torch.arange(q.shape[1], device=q.device, dtype=torch.long)
    return mix64(mix64(q + pos * _MIX).sum(1))


def same_norm_noise(msgs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """[R, n, d] Gaussian directions scaled to each message's L2 norm."""
    n, d = msgs.shape[1], msgs.shape[2]
    u1 = uniform_from(keys ^ _SALT_NOISE, 1, (n, d)).clamp_min(1e-7).to(msgs)
    u2 = uniform_from(keys ^ _SALT_NOISE, 2, (n, d)).to(msgs)
    gauss = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return gauss / gauss.norm(dim=-1, keepdim=True).clamp_min(1e-12) * msgs.norm(dim=-1,
                                                                                keepdim=True)


def random_agent(msgs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """[R, n] bool: one agent per row, drawn from the row's key."""
    n = msgs.shape[1]
    pick = (uniform_from(keys ^ _SALT_PICK, 0, ()).view(-1) * n).long().clamp(max=n - 1)
    return F.one_hot(pick, n).bool()


class MessageFilter(nn.Module):
    """Detector "detector.policy" (logit) and "detector.value" (PPO's V), reconstructor
    "reconstructor" (residual), all over x_j."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        n, d, h = (int(config[k]) for k in ("n_agents", "msg_dim", "hidden"))
        self.n_agents, self.msg_dim = n, d
        self.use_detector = str(config.get("detector", "on")) == "on"
        self.learned = str(config.get("reconstructor", "learned")) == "learned"
        self.detector = nn.ModuleDict({"policy": MLP(2 * d + n, h, 1, out_gain=1.0),
                                       "value": MLP(2 * d + n, h, 1, out_gain=1.0)})
        self.reconstructor = MLP(2 * d + n, h, d)

    def features(self, msgs: torch.Tensor) -> torch.Tensor:
        """msgs [R, n, d] → x [R, n, 2d + n]."""
        R, n, d = msgs.shape
        if (n, d) != (self.n_agents, self.msg_dim):
            raise PolicyError(f"a message filter made for {self.n_agents} agents sending "
                              f"{self.msg_dim}-wide messages meets {n} agents sending {d}-wide")
        ids = torch.eye(n, device=msgs.device, dtype=msgs.dtype).expand(R, -1, -1)
        return torch.cat([msgs, mean_of_others(msgs), ids], -1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector["policy"](x).squeeze(-1)

    def reconstruct(self, msgs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return msgs + self.reconstructor(x)

    def flags(self, msgs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """[R, n] bool: the detector's verdicts thresholded at 0.5, or, without a detector,
        one random agent per row."""
        if not self.use_detector:
            return random_agent(msgs, message_keys(msgs))
        return self.logits(x) > 0

    def replace(self, msgs: torch.Tensor, x: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
        """Eq. 2: flagged messages replaced by g_r's (or, ablated, same-norm noise)."""
        out = (self.reconstruct(msgs, x) if self.learned
               else same_norm_noise(msgs, message_keys(msgs)))
        return torch.where(flags.unsqueeze(-1), out.to(msgs.dtype), msgs)

    @torch.no_grad()
    def forward(self, msgs: torch.Tensor) -> torch.Tensor:
        """What the receivers read in play: msgs [R, n, d] → filtered [R, n, d]."""
        x = self.features(msgs)
        return self.replace(msgs, x, self.flags(msgs, x))

    def evaluate(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """policies.learners.ppo.ActorCritic over flat samples: (log p(flag), entropy, V)."""
        logit = self.logits(batch["x"])
        dist = torch.distributions.Bernoulli(logits=logit)
        return (dist.log_prob(batch["action"]), dist.entropy(),
                self.detector["value"](batch["x"]).squeeze(-1))

    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32)
                for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict) -> "MessageFilter":
        return load_named(self, {k: v for k, v in weights.items() if not k.startswith("team.")},
                          "", "message filter")


class FilterAgent(nn.Module):
    """A communicating agent (CommNetAgent, TarMACAgent) whose readers get filtered messages;
    meets their interface, so a team, StackedTeam or the message surface holds it as they hold
    the base agent."""

    def __init__(self, base: nn.Module, msg_filter: MessageFilter):
        super().__init__()
        self.base, self.filter = base, msg_filter
        for name in ("rnn_hidden", "msg_dim", "hidden", "n_agents", "n_actions", "use_rnn"):
            setattr(self, name, getattr(base, name))

    @property
    def layout(self) -> tuple:
        """Tagged apart from the base's: StackedTeam runs these members one by one."""
        cfg = self.filter.config
        return ("msg_filter", self.base.layout, int(cfg["hidden"]), str(cfg["detector"]),
                str(cfg["reconstructor"]))

    def init_hidden(self, batch: int, device=None) -> torch.Tensor:
        return self.base.init_hidden(batch, device)

    def messages(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.base.messages(hidden)

    def with_messages(self, hidden: torch.Tensor, msgs: torch.Tensor) -> torch.Tensor:
        return self.base.with_messages(hidden, msgs)

    def filter_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [R, n, H + d] with its in-transit messages filtered."""
        return self.base.with_messages(hidden, self.filter(self.base.messages(hidden)))

    def forward(self, inputs: torch.Tensor, h: torch.Tensor):
        M, n = h.shape[0], self.n_agents
        h = self.filter_hidden(h.view(M // n, n, -1)).reshape(M, -1)
        return self.base(inputs, h)


def filter_config(team_config: dict, msg_dim: int, hidden: int = 64, detector: str = "on",
                  reconstructor: str = "learned", beta1: float = 1.0,
                  trained_against=None) -> dict:
    """The stored config: the base team's config under "team", the scenario's shapes (as every
    team record keeps them), the filter's sizes, its ablation switches and what it was
    trained against."""
    return {
        "algo": "msg_filter", "team": dict(team_config),
        **{k: team_config[k] for k in ("obs_dim", "n_agents", "n_actions") if k in team_config},
        "msg_dim": int(msg_dim), "hidden": int(hidden), "detector": str(detector),
        "reconstructor": str(reconstructor), "beta1": float(beta1),
        "trained_against": trained_against if trained_against is not None else [],
    }


def team_weights(weights: dict) -> dict:
    """The base team's arrays of a filter record, without their "team." prefix."""
    return {k[len("team."):]: v for k, v in weights.items() if k.startswith("team.")}


def build_filter_agent(config: dict, weights: dict, device="cpu") -> FilterAgent:
    """A stored filter record (config, weights) → the FilterAgent of matches."""
    from policies.teams.networks import load_defender

    base_cfg = config.get("team")
    if not isinstance(base_cfg, dict) or base_cfg.get("algo") not in MESSAGE_ALGOS:
        raise PolicyError("a msg_filter record must carry a communicating base team "
                          f"({', '.join(MESSAGE_ALGOS)}) under config 'team'")
    base, _ = load_defender(base_cfg, team_weights(weights), device)
    flt = MessageFilter(config).load_weights(weights)
    if flt.msg_dim != base.msg_dim:
        raise PolicyError(f"the filter reads {flt.msg_dim}-wide messages but its team sends "
                          f"{base.msg_dim}-wide ones")
    agent = FilterAgent(base.eval(), flt.eval()).to(device).eval()
    agent.requires_grad_(False)
    return agent
