"""Gradient attacks of one victim driven together (arena.gradients): one forward and one
backward pass per round for all of them, and each gets what it would get alone."""

import torch

from arena.gradients import GradRequest, answer, drive_together
from arena.rollout import AttackContext, Streams
from policies.observation.attacks import FGSMAttack, PGDAttack
from policies.teams.rnn_agent import RNNAgent
from policies.teams.stacked_team import StackedTeam

N, OBS, A = 2, 6, 4


def _team():
    torch.manual_seed(0)
    return StackedTeam([RNNAgent(OBS + A + N, A) for _ in range(2)], N, A)


def _attacks():
    return [FGSMAttack({"eps": 0.3}, N),
            PGDAttack({"eps": 0.3, "steps": 4}, N),
            PGDAttack({"eps": 0.2, "steps": 2, "objective": "gap", "norm": "l2"}, N)]


def test_driven_together_equals_each_alone_in_fewer_passes():
    team = _team()
    R = 12
    obs = torch.randn(R, N, OBS)
    hidden = torch.randn(R, N, 64)
    last = torch.zeros(R, N, A)
    member = torch.arange(R) % 2
    avail = torch.rand(R, N, A) > 0.3
    avail[..., 0] = True
    rows = [torch.arange(0, 4), torch.arange(4, 9), torch.arange(9, 12)]
    calls = []

    def q_fn_for(r):
        def q_fn(x):
            calls.append(len(x))
            return team.q_values(x, hidden[r], last[r], member[r])[0]
        return q_fn

    def ctx(r):
        return AttackContext(q_fn=q_fn_for(r), avail=avail[r], state=torch.zeros(len(r), 1), t=0,
                             rand=Streams(r + 100, 0), rows=r)

    attacks = _attacks()
    for a in attacks:
        a.reset(len(obs), "cpu")
    alone = [a.perturb(obs[r], ctx(r)) for a, r in zip(attacks, rows)]
    assert len(calls) == 1 + 5 + 3  # FGSM 1, PGD-4 1 + 4, PGD-2 1 + 2
    calls.clear()
    together = drive_together([a.perturb_steps(obs[r], ctx(r)) for a, r in zip(attacks, rows)],
                              rows, q_fn_for)
    assert calls == [12, 8, 8, 5, 5]  # rounds: all three, the two PGDs twice, PGD-4 alone
    for a, b in zip(alone, together):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert not torch.equal(a, obs[:len(a)])


def test_answer_gives_gradients_only_where_asked():
    x = torch.randn(3, 2, 5)
    w = torch.randn(5, 4)

    def q_fn(v):
        return v @ w

    (q1, g1), (q2, g2) = answer([GradRequest(x[:2], lambda q: q[..., 0]), GradRequest(x[2:])],
                                q_fn)
    assert g2 is None and g1.shape == (2, 2, 5)
    torch.testing.assert_close(g1, w[:, 0].expand(2, 2, 5))
    torch.testing.assert_close(torch.cat([q1, q2]), x @ w)
