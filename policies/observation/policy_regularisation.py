"""Policy regularisation of a Q-learning defender against observation attacks.

Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks" (2023),
§IV-B, after Zhang et al. (SA-DQN, NeurIPS 2020): for every agent i with clean greedy action
a*_i = argmax_a Q_i(o_i, a), the hinge

    L_reg = Σ_i max{ max_{õ_i ∈ B(o_i)} max_{a≠a*_i} Q_i(õ_i, a) − Q_i(õ_i, a*_i), −c }

is added to the TD loss as L + κ·L_reg. The inner maximisation over the ε-ball is
approximated by a few PGD steps on the Q-gap (policies.observation.pgd with objective="gap"); the hinge
at −c stops pushing once the greedy action leads by a margin c.

Training recipe of the paper (§IV-B): start from a trained QMIX team, and train it UNDER FGSM
interference (the collected observations are FGSM-perturbed with the run's ε, as in §IV-A)
with κ = 0 in the first half and κ = 0.1 in the second, c = 10. `policies.learners.
train_defender` does so: `reg="policy"` implies FGSM perturbation during collection unless
`adv="none"` asks for clean collection or an external perturbation (a learned adversary of the
alternating training) replaces it; `arena train defender --reg policy --init TEAM` is the
recipe, `--adv none` the regulariser alone.
"""

from __future__ import annotations

import torch

from policies.observation.fgsm import QFn, greedy_actions
from policies.observation.pgd import pgd, q_gap


def hinge(q_adv: torch.Tensor, a_star: torch.Tensor, c: float, avail=None) -> torch.Tensor:
    """Σ_i max{gap_i, −c} per row: q_adv [B,n,A], a_star [B,n] → [B]."""
    return q_gap(q_adv, a_star, avail).clamp_min(-c).sum(-1)


def policy_regulariser(
    q_fn: QFn,
    obs: torch.Tensor,
    eps: float,
    c: float,
    pgd_steps: int,
    avail: torch.Tensor | None = None,
    attack_q_fn: QFn | None = None,
) -> torch.Tensor:
    """L_reg per row [B] for obs [B, n, obs]; differentiable in q_fn's parameters.

    `attack_q_fn` (default q_fn) is used for the inner PGD, e.g. with detached recurrent
    state; the PGD step size is 2.5·ε/steps as in Madry et al.
    """
    attack_q_fn = attack_q_fn or q_fn
    with torch.no_grad():
        a_star = greedy_actions(attack_q_fn(obs), avail)  # [B, n]
    steps = max(1, pgd_steps)
    obs_adv = pgd(
        attack_q_fn, obs, eps, steps=steps, step_size=2.5 * eps / steps, avail=avail, objective="gap"
    )
    return hinge(q_fn(obs_adv), a_star, c, avail)
