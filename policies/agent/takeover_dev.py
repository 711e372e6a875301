"""The adversarial teammate with victim-deviation terms (takeover_dev).

Wu et al., "Adversarial Policy Training against Deep Reinforcement Learning" (USENIX
Security 2021), §4: beside PPO's objective, the adversary maximises how far its action moves
its victims, through two learned models of them:

    H(o_v, a_α)  → ô_v'      the victim's next observation after the adversary plays a_α
    π̂_v(o_v)    → â_v       the victim's action (an imitation of its policy)

    J(θ) = J_PPO(θ) + η · E[ D_a + w_o · D_o ],
    D_o = ‖ H(o_v, π_θ(x)) − H(o_v, a_ref) ‖₁ / dim(o)
    D_a = ‖ π̂_v(H(o_v, π_θ(x))) − π̂_v(H(o_v, a_ref)) ‖₁

where a_ref is what the hijacked agent would have done without the adversary: here its own
team policy's greedy action, which the hijacker holds. Both terms are differentiable in θ
through the action distribution π_θ(·|x) (discrete actions: H reads the probabilities, the
relaxation of the paper's continuous action). The authors' released code weighs the
observation term negatively (large action change from a small observation change); w_o is a
signed parameter, `obs_weight`, and its default +1 follows this issue's statement that both
deviations are maximised.

H and π̂_v are fitted on every rollout before the PPO update (full batch, `model_epochs`
Adam steps: H by squared error on the victims' observed next observation given the
adversary's sampled action; π̂_v by cross-entropy on the victims' greedy actions) and are
frozen inside it. η = 0 gives takeover_ppo exactly (tested): the models neither draw from the
trainer's random streams nor touch the policy's gradients.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from policies.learners.ppo import MLP


class VictimModels(nn.Module):
    """"victims.obs_model.*" (H, predicting Δo) and "victims.action_model.*" (π̂_v logits)."""

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, hidden: int):
        super().__init__()
        self.n, self.A = n_agents, n_actions
        self.obs_model = MLP(obs_dim + 2 * n_agents + n_actions, hidden, obs_dim, out_gain=1.0)
        self.action_model = MLP(obs_dim + n_agents, hidden, n_actions, out_gain=1.0)

    def next_obs(self, obs: torch.Tensor, agent: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """[N, n, o] every agent's predicted next observation, given obs [N, n, o], the
        adversary's agent index [N] and its action distribution a [N, A]."""
        N, n, _ = obs.shape
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(N, -1, -1)
        own = F.one_hot(agent, n).to(obs.dtype).unsqueeze(1).expand(-1, n, -1)
        act = a.to(obs.dtype).unsqueeze(1).expand(-1, n, -1)
        return obs + self.obs_model(torch.cat([obs, ids, own, act], -1))

    def action_logits(self, obs: torch.Tensor) -> torch.Tensor:
        N, n, _ = obs.shape
        ids = torch.eye(n, device=obs.device, dtype=obs.dtype).expand(N, -1, -1)
        return self.action_model(torch.cat([obs, ids], -1))


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x [N, n] over the True entries of mask per row → [N]."""
    m = mask.to(x.dtype)
    return (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)


def deviation(models: VictimModels, probs: torch.Tensor, batch: dict):
    """(D_a [N], D_o [N]) of the adversary's action distribution probs [N, A] against the
    reference action, averaged over each sample's victims (batch: "vobs" [N, n, o], "agent"
    [N], "ref_action" [N], "vmask" [N, n])."""
    obs, agent, vmask = batch["vobs"], batch["agent"], batch["vmask"]
    ref = F.one_hot(batch["ref_action"], models.A).to(probs.dtype)
    o_adv = models.next_obs(obs, agent, probs)
    o_ref = models.next_obs(obs, agent, ref)
    d_o = _masked_mean((o_adv - o_ref).abs().mean(-1), vmask)
    p_adv = torch.softmax(models.action_logits(o_adv), -1)
    p_ref = torch.softmax(models.action_logits(o_ref), -1)
    d_a = _masked_mean((p_adv - p_ref).abs().sum(-1), vmask)
    return d_a, d_o


def fit(models: VictimModels, optimizer: torch.optim.Optimizer, data: dict,
        epochs: int) -> dict[str, float]:
    """`epochs` full-batch steps on one rollout; returns the last losses.

    data: "obs", "next_obs" [M, n, o], "agent" [M], "taken" [M] (the adversary's sampled
    action), "vmask" [M, n] (victims of each hijacked-agent sample), and for π̂_v "aobs"
    [L, n, o], "aact" [L, n], "amask" [L, n] (every live step's victims and their actions)."""
    models.requires_grad_(True)
    out = {"obs_model_loss": float("nan"), "action_model_loss": float("nan")}
    if len(data["agent"]) == 0:
        return out
    taken = F.one_hot(data["taken"], models.A)
    for _ in range(epochs):
        pred = models.next_obs(data["obs"], data["agent"], taken)
        err = (pred - data["next_obs"]).pow(2).mean(-1)  # [M, n]
        obs_loss = _masked_mean(err, data["vmask"]).mean()
        logits = models.action_logits(data["aobs"])  # [L, n, A]
        ce = F.cross_entropy(logits.reshape(-1, models.A), data["aact"].reshape(-1),
                             reduction="none").view(data["aact"].shape)
        act_loss = _masked_mean(ce, data["amask"]).mean()
        optimizer.zero_grad()
        (obs_loss + act_loss).backward()
        optimizer.step()
        out = {"obs_model_loss": obs_loss.item(), "action_model_loss": act_loss.item()}
    optimizer.zero_grad(set_to_none=True)  # no stale gradient in PPO's clipping norm
    models.requires_grad_(False)
    return out


def deviation_loss(net, eta: float, obs_weight: float):
    """The PPO loss term −η·(D_a + w_o·D_o) of a minibatch (policies.learners.ppo `aux`)."""
    def aux(part: dict) -> torch.Tensor:
        probs = torch.softmax(net.logits(part["x"], part["avail"]), -1)
        d_a, d_o = deviation(net.victims, probs, part)
        return -eta * (d_a + obs_weight * d_o).mean()

    return aux
