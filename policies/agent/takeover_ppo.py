"""An adversarial teammate trained with PPO: the hijacked agent's policy (takeover_ppo).

Wu et al., "Adversarial Policy Training against Deep Reinforcement Learning" (USENIX
Security 2021), §3: the adversary fully controls its own agent and may passively watch its
victims' observations and actions; its policy π_α is trained with PPO (Schulman et al. 2017,
Eq. 7, policies.learners.ppo) on the negated team reward,

    r_α(t) = −r_team(t),

one sample per hijacked agent and step (policies.agent.train_takeover). In cooperative MARL
the victims are the hijacked agent's own teammates.

Input of π_α and of its value function, for a hijacked agent i:
  o_i ⊕ onehot(i)                          its own observation and index, and, with `watch`,
  o_1 ⊕ … ⊕ o_n ⊕ a_1 ⊕ … ⊕ a_n            every agent's observation and the one-hot actions
                                           all took last step (what it may passively watch).
No recurrent state: an episode plays the same alone or inside any batch. The value function
also reads the global state (a centralised critic, used in training only). Unavailable
actions are masked. Matches sample the trained stochastic policy from each episode's own
random stream (a cell is reproducible from its seed); `greedy` plays its most likely action.

`takeover_dev` (policies.agent.takeover_dev) is this network plus learned models of the
victims, whose deviation terms join the PPO loss.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from policies.errors import PolicyError
from policies.learners.ppo import MLP
from policies.message.malicious import check_count, draw_malicious
from policies.observation.learned import check_fits
from policies.weights import load_named

_MASKED = -1e8  # finite: probabilities 0 and entropies defined where actions are unavailable


def gumbel_max(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """A draw from softmax(logits) along the last dim, from uniforms u of the same shape:
    argmax(logits + g), g = −log(−log u) (the Gumbel-max trick)."""
    g = -torch.log((-torch.log(u.clamp(1e-20, 1.0))).clamp(min=1e-20))
    return (logits + g).argmax(-1)


class TakeoverPolicy(nn.Module):
    """Policy network "policy.*" and value network "value.*", shared by the hijacked agents;
    `takeover_dev` adds its victim models "victims.*"."""

    surface = "agent"

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        o, n, A, S, h = (int(config[k]) for k in ("obs_dim", "n_agents", "n_actions",
                                                   "state_dim", "hidden"))
        self.obs_dim, self.n_agents, self.n_actions = o, n, A
        self.algo = str(config.get("algo", "takeover_ppo"))
        self.targets = config.get("targets", 1)
        check_count(self.targets, n)
        self.watch = bool(config.get("watch", True))
        x_dim = o + n + (n * (o + A) if self.watch else 0)
        self.policy = MLP(x_dim, h, A)
        self.value = MLP(x_dim + S, h, 1, out_gain=1.0)
        if self.algo == "takeover_dev":
            from policies.agent.takeover_dev import VictimModels

            # their own seed: the policy starts exactly as takeover_ppo's of the same seed
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(config.get("model_seed", 0)))
                self.victims = VictimModels(o, n, A, int(config.get("model_hidden", 64)))

    def inputs(self, obs: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """[R, n, x]: agent i's input in row i (the hijacked ones are picked afterwards)."""
        R, n, o = obs.shape
        if (n, o) != (self.n_agents, self.obs_dim):
            raise PolicyError(f"takeover attacker made for {self.n_agents} agents seeing "
                              f"{self.obs_dim} features meets {n} agents seeing {o}")
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(R, -1, -1)
        parts = [obs, ids]
        if self.watch:
            parts += [obs.reshape(R, 1, -1).expand(-1, n, -1),
                      last.to(obs.dtype).reshape(R, 1, -1).expand(-1, n, -1)]
        return torch.cat(parts, dim=-1)

    def logits(self, x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        return self.policy(x).masked_fill(~avail, _MASKED)

    def act(self, obs, last, avail, state, generator: torch.Generator | None = None,
            u: torch.Tensor | None = None):
        """(actions [R, n] for every agent, PPO samples with leading dims [R, n]). Sampled
        from `generator` (with the samples), or from given uniforms u [R, n, A] (a match's
        per-episode streams), else greedy."""
        with torch.no_grad():
            x = self.inputs(obs, last)
            logits = self.logits(x, avail)
            if generator is None and u is None:
                return logits.argmax(-1), {}
            if u is None:
                u = torch.rand(logits.shape, generator=generator, device=generator.device)
            action = gumbel_max(logits, u.to(logits))
            if generator is None:
                return action, {}
            logp = torch.log_softmax(logits, -1).gather(-1, action.unsqueeze(-1)).squeeze(-1)
            xv = torch.cat([x, state.unsqueeze(1).expand(-1, x.shape[1], -1)], -1)
            return action, {"x": x, "xv": xv, "avail": avail, "action": action, "logp": logp,
                            "value": self.value(xv).squeeze(-1)}

    def evaluate(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """policies.learners.ppo.ActorCritic: (log π(a), entropy, V) of flat samples."""
        logp_all = torch.log_softmax(self.logits(batch["x"], batch["avail"]), -1)
        logp = logp_all.gather(-1, batch["action"].unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp, entropy, self.value(batch["xv"]).squeeze(-1)

    def hijacked(self, n_agents: int, rand) -> torch.Tensor:
        """[R, n] bool: the hijacked agents of each episode (arena.rollout.AgentAttacker)."""
        return draw_malicious(self.targets, n_agents, rand)

    # -- weights as named float32 arrays -----------------------------------------------------
    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32)
                for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict) -> "TakeoverPolicy":
        return load_named(self, weights, "", f"{self.algo} network")


class _InMatch:
    """The policy as arena.rollout.AgentAttacker: it samples its actions from the episode's
    own stream (the stochastic policy PPO trained), or plays greedily with `greedy`."""

    surface = "agent"

    def __init__(self, net: TakeoverPolicy):
        self.net, self.algo, self.targets = net, net.algo, net.targets
        self.greedy = bool(net.config.get("greedy", False))

    def reset(self, rows: int, device) -> None:
        pass

    def hijacked(self, n_agents: int, rand) -> torch.Tensor:
        return self.net.hijacked(n_agents, rand)

    def act(self, ctx) -> torch.Tensor:
        u = None if self.greedy else ctx.rand(*ctx.avail.shape[1:])
        return self.net.act(ctx.obs, ctx.last_action, ctx.avail, ctx.state, u=u)[0]


def in_match(net: TakeoverPolicy) -> _InMatch:
    return _InMatch(net)


def takeover_config(spec, algo: str = "takeover_ppo", targets=1, watch: bool = True,
                    hidden: int = 64, eta: float = 0.0, obs_weight: float = 1.0,
                    model_hidden: int = 64, model_seed: int = 0, greedy: bool = False) -> dict:
    """The stored config: every key a parameter of the takeover kinds (policies.kinds)."""
    cfg = {"algo": algo, "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
           "n_actions": spec.n_actions, "state_dim": spec.state_dim, "targets": targets,
           "watch": bool(watch), "hidden": int(hidden), "greedy": bool(greedy)}
    if algo == "takeover_dev":
        cfg.update(eta=float(eta), obs_weight=float(obs_weight),
                   model_hidden=int(model_hidden), model_seed=int(model_seed))
    return cfg


def build_takeover(rec, spec, device="cpu") -> _InMatch:
    """A stored record (config, weights) → the greedy attacker of matches."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    if int(rec.config.get("state_dim", -1)) != spec.state_dim:
        raise PolicyError(f"{getattr(rec, 'ref', 'attacker')}: made for state size "
                          f"{rec.config.get('state_dim')}, scenario {spec.name} has "
                          f"{spec.state_dim}")
    net = TakeoverPolicy(rec.config).load_weights(rec.weights).to(device).eval()
    return in_match(net)
