"""Training a defender against a mixture of attackers: one attacker drawn per episode.

Meets the collection hook of `policies.learners.collect` (`perturb(q_fn, obs, avail) -> obs'`, with
`reset(B)` called at the start of every batch of episodes). This is the defender oracle of
PSRO: a best response to the attacker meta-strategy σ_A. Members attack every step with the
victim's own gradients: a member's `freq` and `surrogate` apply in matches only, so training
faces an adversary at least as strong as the one it is evaluated against.
"""

from __future__ import annotations

import torch

from arena.rollout import AttackContext, Streams


class MixturePerturb:
    def __init__(self, attackers: list, weights: list[float], seed: int = 0, device="cpu"):
        w = torch.tensor(weights, dtype=torch.float64)
        if len(attackers) != len(w) or not len(w) or float(w.sum()) <= 0:
            raise ValueError("a mixture needs attackers with positive total weight")
        self.attackers, self.probs = attackers, w / w.sum()
        self.gen = torch.Generator().manual_seed(seed)
        self.device = torch.device(device)
        self.groups: list = []
        self.seeds = torch.zeros(0, dtype=torch.long)
        self.t = 0

    @classmethod
    def from_league(cls, lg, scenario, attacker_refs, sigma, seed, device):
        from policies.lineup import build_lineup

        keep = [(r, float(w)) for r, w in zip(attacker_refs, sigma) if w > 1e-6]
        lineup = build_lineup(lg, scenario, [], [r for r, _ in keep], device)
        objs, weights = [], []
        for (ref, w), members in zip(keep, lineup.attacker_members):
            for idx, mw in members:
                objs.append(lineup.attacker_objs[idx])
                weights.append(w * mw / sum(m for _, m in members))
        return cls(objs, weights, seed, device)

    def reset(self, B: int) -> None:
        which = torch.multinomial(self.probs, B, replacement=True, generator=self.gen)
        self.seeds = torch.randint(0, 2**62, (B,), generator=self.gen).to(self.device)
        self.groups = []
        for k in range(len(self.attackers)):
            rows = (which == k).nonzero().flatten().to(self.device)
            if len(rows):
                self.attackers[k].reset(len(rows), self.device)
                self.groups.append((k, rows))
        self.t = 0

    def __call__(self, q_fn, obs, avail):
        out = obs.clone()
        for k, rows in self.groups:
            def q_rows(o, _rows=rows):
                full = obs.detach().index_put((_rows,), o)
                return q_fn(full)[_rows]

            ctx = AttackContext(q_fn=q_rows, avail=avail[rows], state=obs.new_zeros(len(rows), 0),
                                t=self.t, rand=Streams(self.seeds[rows], self.t), rows=rows)
            with torch.enable_grad():
                out[rows] = self.attackers[k].perturb(obs[rows], ctx).detach()
        self.t += 1
        return out
