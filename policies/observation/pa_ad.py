"""PA-AD: a learned director picks the action each attacked agent should take; a gradient actor
moves the observation towards it.

Sun et al., "Who Is the Strongest Enemy? Towards Optimal and Efficient Evasion Attacks in Deep
RL" (ICLR 2022): the optimal evasion attack is split into a *director*, an RL policy that
chooses a policy perturbation direction, and an *actor* that realises it within the ε-ball by
a gradient method. For discrete actions the direction is a target action. The multi-agent
version is Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks"
(2023), Alg. 2, whose actor is the targeted FGSM step of their Eq. 7:

    δ_i = −ε · sign(∇_õ CE(softmax Q_i(õ), a*_i)) at õ = o_i,     õ_i = o_i + δ_i,

which raises the probability of the director's target a*_i. With `steps` > 1 the actor is the
projected iteration of that step (PGD, step 2.5ε/steps); the L2 variant uses g/‖g‖₂.

Director (PPO, reward −r_team): a categorical policy over the n_actions of each attacked agent,
masked by the agent's available actions, on o_i ⊕ onehot(i) ⊕ q̂_i ⊕ avail_i, where q̂_i is the
victim's clean Q-values relative to the best available one, clipped to [−10, 0] and divided
by 10 (unavailable entries −1), so the director sees what the victim would do. Evaluation
uses the director's argmax.
"""

from __future__ import annotations

import torch

from policies.observation.learned import (
    LEARNED_ATTACKERS, LearnedAttacker, agent_inputs, check_fits, project_ball, with_state,
)
from policies.observation.fgsm import cross_entropy_per_agent, normalised_step
from policies.learners.ppo import MLP

_Q_CLIP = 10.0


def q_features(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Victim Q [R, m, A] → bounded features: (Q − max_avail Q) clipped to [−10, 0] / 10."""
    q = q.detach()
    best = q.masked_fill(~avail, float("-inf")).amax(-1, keepdim=True)
    rel = ((q - best).clamp(min=-_Q_CLIP) / _Q_CLIP)
    return torch.where(avail, rel, torch.full_like(rel, -1.0))


def targeted_step(q_fn, obs: torch.Tensor, target: torch.Tensor, idx: torch.Tensor, eps: float,
                  norm: str, steps: int = 1, avail: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7 of Guo et al. (2023): obs [R, n, o] moved towards target actions [R, m] of agents
    idx [m] by descending CE(softmax Q(õ), a*); other agents untouched. No gradient out."""
    obs = obs.detach()
    R, n, _ = obs.shape
    full_target = torch.zeros(R, n, dtype=torch.long, device=obs.device)
    full_target[:, idx] = target
    weight = torch.zeros(n, device=obs.device, dtype=obs.dtype)
    weight[idx] = 1.0
    size = eps if steps == 1 else 2.5 * eps / steps
    delta = torch.zeros_like(obs)  # [R, n, o]
    for _ in range(steps):
        x = (obs + delta).requires_grad_(True)
        ce = cross_entropy_per_agent(q_fn(x), full_target, avail)  # [R, n]
        (grad,) = torch.autograd.grad((ce * weight).sum(), x)
        delta = project_ball(delta - size * normalised_step(grad, norm), eps, norm)
        delta = delta * weight.view(1, n, 1)
    return (obs + delta).detach()


class PAADAttacker(LearnedAttacker):
    """Director parameters "policy.*" (logits) and "value.*"; config "steps" = actor steps."""

    algo = "pa_ad"

    def __init__(self, config: dict):
        super().__init__(config)
        keys = ("obs_dim", "n_agents", "n_actions", "state_dim", "hidden")
        o, n, A, s, h = (int(config[k]) for k in keys)
        self.steps = int(config.get("steps", 1))
        self.policy = MLP(o + n + 2 * A, h, A)
        self.value = MLP(o + n + 2 * A + s, h, 1, out_gain=1.0)

    def _dist(self, x: torch.Tensor, avail: torch.Tensor) -> torch.distributions.Categorical:
        logits = self.policy(x).masked_fill(~avail, -1e9)  # [..., A]
        return torch.distributions.Categorical(logits=logits)

    def act(self, obs, q_fn, avail, state, generator: torch.Generator | None = None):
        with torch.no_grad():
            av = avail[:, self.idx].bool()  # [R, m, A]
            q = q_fn(obs)[:, self.idx]  # [R, m, A]
            x = torch.cat([agent_inputs(obs, self.idx), q_features(q, av), av.to(obs.dtype)], -1)
            dist = self._dist(x, av)
            if generator is None:
                target = dist.probs.argmax(-1)  # [R, m]
            else:
                probs = dist.probs.reshape(-1, dist.probs.shape[-1])  # [R * m, A]
                target = torch.multinomial(probs.to(generator.device), 1, generator=generator)
                target = target.view(dist.probs.shape[:-1]).to(obs.device)  # [R, m]
            sample = {"x": x, "avail": av, "action": target, "logp": dist.log_prob(target)}
            if generator is not None:
                xv = with_state(x, state)
                sample["xv"] = xv
                sample["value"] = self.value(xv).squeeze(-1)  # [R, m]
        seen = targeted_step(q_fn, obs, target, self.idx, self.eps, self.norm, self.steps, avail)
        return seen, sample

    def evaluate(self, batch):
        dist = self._dist(batch["x"], batch["avail"])
        return dist.log_prob(batch["action"]), dist.entropy(), self.value(batch["xv"]).squeeze(-1)


def pa_ad_config(spec, eps: float, norm: str, targets, freq: float = 1.0, hidden: int = 64,
                 steps: int = 1) -> dict:
    return {
        "algo": "pa_ad", "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
        "n_actions": spec.n_actions, "state_dim": spec.state_dim, "eps": float(eps), "norm": norm,
        "targets": targets, "freq": float(freq), "hidden": int(hidden), "steps": int(steps),
    }


def build_pa_ad(rec, spec, device="cpu") -> PAADAttacker:
    """LEARNED_ATTACKERS builder: a stored record (config, weights) → a deterministic attacker."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    return PAADAttacker(rec.config).load_weights(rec.weights).to(device).eval()


LEARNED_ATTACKERS["pa_ad"] = build_pa_ad
