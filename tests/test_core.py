"""The VecEnv base class: streams, freezing, auto-reset and illegal actions, on a tiny game."""

import pytest
import torch

from arena.core import (
    IllegalActionError,
    ScenarioError,
    ScenarioSpec,
    VecEnv,
    row_seeds,
    uniform_from,
)


class Guess(VecEnv):
    """Two agents guess a hidden coin each step; action 2 is never available."""

    def __init__(self, batch_size, device="cpu", auto_reset=False, debug=False, limit=4):
        self.spec = ScenarioSpec("guess", 2, 1, 1, 3, limit)
        super().__init__(batch_size, device, auto_reset, debug)
        self.coin = torch.zeros(self.B, dtype=torch.long)
        self.score = torch.zeros(self.B)

    def _reset_rows(self, rows):
        k = int(rows.sum())
        self.coin[rows] = self.randint(2, k)
        self.score[rows] = 0

    def _step_active(self, actions, active):
        hit = (actions == self.coin.unsqueeze(1)).all(1) & active
        reward = hit.float()
        self.score = self.score + reward
        self.coin = torch.where(active, self.randint(2, self.B), self.coin)
        terminated = self.score >= 3
        return reward, terminated, terminated, {}

    def _observe(self):
        obs = self.coin.float().view(-1, 1, 1).expand(-1, 2, 1).clone()
        avail = torch.tensor([True, True, False]).expand(self.B, 2, 3).clone()
        return obs, self.score.view(-1, 1).clone(), avail


def test_streams_are_uniform_and_independent_of_batch_size():
    s = row_seeds(5, 1000)
    u = uniform_from(s, 3, (200,))
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.std().item() - 12 ** -0.5) < 0.01
    assert torch.equal(row_seeds(5, 10), s[:10])
    assert torch.equal(uniform_from(s[7:8], 3, (200,)), u[7:8])
    assert not torch.equal(uniform_from(s, 4, (200,)), u)


def test_freeze_limit_and_win():
    env = Guess(64)
    ts = env.reset(seed=0)
    for _ in range(4):
        prev = ts
        ts = env.step(env.coin.view(-1, 1).expand(-1, 2))  # always right
        assert (ts.reward[prev.done] == 0).all()
    assert ts.done.all() and ts.won.all()
    assert env.t.max() == 3  # three right guesses win before the limit of 4


def test_truncation_is_not_a_win():
    env = Guess(8)
    env.reset(seed=0)
    for _ in range(4):
        ts = env.step(1 - env.coin.view(-1, 1).expand(-1, 2))  # always wrong
    assert ts.done.all() and not ts.won.any()
    assert ts.info["truncated"].all()


def test_illegal_action_raises_in_debug_and_is_masked_otherwise():
    env = Guess(2, debug=True)
    env.reset(seed=0)
    with pytest.raises(IllegalActionError, match="illegal action 2"):
        env.step(torch.tensor([[2, 0], [0, 0]]))
    env = Guess(2)
    env.reset(seed=0)
    env.step(torch.tensor([[2, 0], [0, 0]]))  # masked to action 0


def test_bad_action_shape_and_step_before_reset():
    env = Guess(2)
    with pytest.raises(ScenarioError, match="reset"):
        env.step(torch.zeros(2, 2))
    env.reset(seed=0)
    with pytest.raises(ScenarioError, match="shape"):
        env.step(torch.zeros(3, 2))


def test_explicit_seeds_per_row():
    a, b = Guess(3), Guess(1)
    ta = a.reset(seeds=torch.tensor([4, 5, 6]))
    tb = b.reset(seeds=torch.tensor([6]))
    assert torch.equal(ta.obs[2:], tb.obs)
    with pytest.raises(ScenarioError, match="seeds must have shape"):
        a.reset(seeds=torch.tensor([1, 2]))
