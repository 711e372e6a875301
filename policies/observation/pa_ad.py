"""PA-AD: a learned director picks the action each attacked agent should take; a gradient actor
moves the observation towards it.

Sun et al., "Who Is the Strongest Enemy? Towards Optimal and Efficient Evasion Attacks in Deep
RL" (ICLR 2022): the optimal evasion attack is split into a *director*, an RL policy that
chooses a policy perturbation direction, and an *actor* that realises it within the ε-ball by
a gradient method. For discrete actions the direction is a target action. The multi-agent
version is Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks"
(2023), Alg. 2, whose actor is the targeted FGSM step of their Eq. 7. For attacked agent i with
clean greedy action u_i = argmax_a Q_i(o_i, a) and director target â_i,

    δ_i = ε · sign(∇_õ [ −CE(softmax Q_i(õ), â_i) + CE(softmax Q_i(õ), u_i) ]) at õ = o_i,
    õ_i = o_i + δ_i,                                                          (Eq. 7)

which at once raises the probability of the target â_i and lowers that of the action the
victim would have taken. Since CE(softmax q, a) = logsumexp(q) − q_a, the objective equals the
targeted Q-gap Q_i(õ, â_i) − Q_i(õ, u_i): the log-partition terms cancel. With `steps` > 1
the actor is the projected iteration of that step (PGD, step 2.5ε/steps, u_i kept at its
clean value); the L2 variant uses g/‖g‖₂. Each iterate is restricted to the attacked feature
groups and clipped to the scenario's feature bounds (policies/observation/attacks.py).

Director (reward −r_team): a categorical policy over the n_actions of each attacked agent,
masked by the agent's available actions, on o_i ⊕ onehot(i) ⊕ q̂_i ⊕ avail_i, where q̂_i is the
victim's clean Q-values relative to the best available one, clipped to [−10, 0] and divided
by 10 (unavailable entries −1), so the director sees what the victim would do. Evaluation
uses the director's argmax.

Why the director learns with PPO (kind parameter `director`, only "ppo" for now). Guo et al.
(2023, Alg. 2) train their director as a value-based QMIX team on −r; PA-AD itself leaves the
director's learner open (any RL algorithm on the director's MDP), and Sun et al. learn theirs
with a policy-gradient method, PPO. We keep PPO as the default because (1) the director is a
stochastic policy over a small, masked, discrete action set, which a categorical PPO policy
represents directly, with the victim's available actions as its mask; (2) ATLA here is trained
by the same PPO code (policies/observation/train_attacker.py), so a difference between the two
attacks in the payoff table is a difference of attack parametrisation, not of learner; (3) the
attacked agents share one director network with a centralised critic, which needs no mixing
network over their joint target actions. What this does not reproduce: a QMIX director's credit
assignment across attacked agents, and the off-policy sample reuse of a replay buffer. A PA-AD
record here is a PPO-director PA-AD; compare it with Guo et al.'s numbers with that in mind.
"""

from __future__ import annotations

import torch

from policies.errors import PolicyError
from policies.observation.learned import (
    LEARNED_ATTACKERS, LearnedAttacker, agent_inputs, check_fits, project_ball, with_state,
)
from policies.observation.fgsm import (
    clip_to_box, cross_entropy_per_agent, greedy_actions, normalised_step,
)
from policies.learners.ppo import MLP

DIRECTORS = ("ppo",)
_Q_CLIP = 10.0


def q_features(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Victim Q [R, m, A] → bounded features: (Q − max_avail Q) clipped to [−10, 0] / 10."""
    q = q.detach()
    best = q.masked_fill(~avail, float("-inf")).amax(-1, keepdim=True)
    rel = ((q - best).clamp(min=-_Q_CLIP) / _Q_CLIP)
    return torch.where(avail, rel, torch.full_like(rel, -1.0))


def targeted_step(q_fn, obs: torch.Tensor, target: torch.Tensor, idx: torch.Tensor, eps: float,
                  norm: str, steps: int = 1, avail: torch.Tensor | None = None,
                  greedy: torch.Tensor | None = None, features: torch.Tensor | None = None,
                  low: torch.Tensor | None = None, high: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7 of Guo et al. (2023): obs [R, n, o] moved by ascending
    −CE(softmax Q(õ), â) + CE(softmax Q(õ), u) for the target actions â [R, m] of agents
    idx [m]; the other agents are untouched. No gradient out.

    `greedy` [R, n] is u, the victim's greedy action on the clean observation (computed here
    when not given); `features` [o] restricts δ to some features; `low`, `high` [o] are the
    feature bounds each iterate is clipped to.

    Where â_i = u_i the two terms of Eq. 7 cancel identically and that agent's step is zero:
    the director chose "keep the victim's action", and a zero perturbation realises that
    exactly. Falling back to an untargeted FGSM push would overrule the director, and PPO would
    then credit the effect of that push to the choice â = u, a different action from the one
    the attack plays. The agent is masked out explicitly, so that rounding in the two
    cancelling cross-entropies cannot leave a sign(±tiny) step of full size ε.
    """
    obs = obs.detach()
    R, n, _ = obs.shape
    if greedy is None:
        with torch.no_grad():
            greedy = greedy_actions(q_fn(obs), avail)  # [R, n]
    full_target = greedy.clone()  # [R, n]: unattacked agents get â = u, hence no step
    full_target[:, idx] = target
    weight = (full_target != greedy).to(obs.dtype)  # [R, n]
    keep = weight.unsqueeze(-1)  # [R, n, 1]
    if features is not None:
        keep = keep * features.to(obs)  # [R, n, o]
    size = eps if steps == 1 else 2.5 * eps / steps
    delta = torch.zeros_like(obs)  # [R, n, o]
    for _ in range(steps):
        x = (obs + delta).requires_grad_(True)
        q = q_fn(x)  # [R, n, A]
        gain = cross_entropy_per_agent(q, greedy, avail) - cross_entropy_per_agent(q, full_target, avail)
        (grad,) = torch.autograd.grad((gain * weight).sum(), x)
        if features is not None:
            grad = grad * features.to(grad)  # before normalising: the group gets the full step
        delta = project_ball(delta + size * normalised_step(grad, norm), eps, norm) * keep
        if low is not None:
            delta = clip_to_box(obs, obs + delta, low, high) - obs
    return clip_to_box(obs, obs + delta, low, high).detach()


class PAADAttacker(LearnedAttacker):
    """Director parameters "policy.*" (logits) and "value.*"; config "steps" = actor steps."""

    algo = "pa_ad"

    def __init__(self, config: dict, spec=None):
        super().__init__(config, spec)
        director = str(config.get("director", "ppo"))
        if director not in DIRECTORS:
            raise PolicyError(f"unknown PA-AD director {director!r}; known: {', '.join(DIRECTORS)}")
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
            q_all = q_fn(obs)  # [R, n, A]
            greedy = greedy_actions(q_all, avail)  # [R, n]: u of Eq. 7, from this one forward pass
            q = q_all[:, self.idx]  # [R, m, A]
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
        seen = targeted_step(q_fn, obs, target, self.idx, self.eps, self.norm, self.steps, avail,
                             greedy, self.features, self.low, self.high)
        return seen, sample

    def evaluate(self, batch):
        dist = self._dist(batch["x"], batch["avail"])
        return dist.log_prob(batch["action"]), dist.entropy(), self.value(batch["xv"]).squeeze(-1)


def pa_ad_config(spec, eps: float, norm: str, targets, freq: float = 1.0, hidden: int = 64,
                 steps: int = 1, clip: bool = True, groups: str = "all",
                 director: str = "ppo") -> dict:
    return {
        "algo": "pa_ad", "obs_dim": spec.obs_dim, "n_agents": spec.n_agents,
        "n_actions": spec.n_actions, "state_dim": spec.state_dim, "eps": float(eps), "norm": norm,
        "targets": targets, "freq": float(freq), "hidden": int(hidden), "steps": int(steps),
        "clip": bool(clip), "groups": str(groups), "director": str(director),
    }


def build_pa_ad(rec, spec, device="cpu") -> PAADAttacker:
    """LEARNED_ATTACKERS builder: a stored record (config, weights) → a deterministic attacker
    within the scenario's feature groups and bounds."""
    check_fits(rec.config, spec, getattr(rec, "ref", ""))
    return PAADAttacker(rec.config, spec).load_weights(rec.weights).to(device).eval()


LEARNED_ATTACKERS["pa_ad"] = build_pa_ad
