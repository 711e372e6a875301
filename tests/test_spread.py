import pytest
import torch

pytest.importorskip("vmas")

from arena.core import ScenarioError  # noqa: E402
from arena.scenarios import make  # noqa: E402


def play(env, seed: int, action_seed: int = 0, steps: int | None = None):
    gen = torch.Generator().manual_seed(action_seed)
    ts = env.reset(seed=seed)
    trace = [ts]
    for _ in range(steps or env.spec.episode_limit):
        ts = env.step(torch.randint(5, (env.B, env.spec.n_agents), generator=gen))
        trace.append(ts)
    return trace


def test_spec_and_shapes():
    env = make("spread", 4)
    s = env.spec
    assert (s.n_agents, s.n_actions, s.episode_limit, s.obs_dim, s.state_dim) == (3, 5, 25, 14, 18)
    ts = env.reset(seed=0)
    assert ts.obs.shape == (4, 3, 14) and ts.obs.dtype == torch.float32
    assert ts.state.shape == (4, 18)
    assert ts.avail.shape == (4, 3, 5) and ts.avail.all()
    ts = env.step(torch.zeros(4, 3, dtype=torch.long))
    assert ts.reward.shape == ts.done.shape == ts.won.shape == (4,)


def test_observation_and_state_agree():
    env = make("spread", 8)
    ts = play(env, seed=1, steps=5)[-1]
    pos = ts.state[:, :6].view(8, 3, 2)
    vel = ts.state[:, 6:12].view(8, 3, 2)
    marks = ts.state[:, 12:].view(8, 3, 2)
    torch.testing.assert_close(ts.obs[..., :2], pos)
    torch.testing.assert_close(ts.obs[..., 2:4], vel)
    torch.testing.assert_close(ts.obs[:, 0, 4:10].view(8, 3, 2), marks - pos[:, :1])
    assert (pos.abs() <= 1.5).all() and (marks.abs() <= 1).all()


def test_actions_move_in_the_mpe_directions():
    env = make("spread", 1)
    directions = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1), 0: (0, 0)}
    for action, (dx, dy) in directions.items():
        ts = env.reset(seed=0)
        p0 = ts.state[0, :2].clone()
        ts = env.step(torch.tensor([[action, 0, 0]]))
        step = ts.state[0, :2] - p0
        assert torch.sign(step).tolist() == [dx, dy]


def test_reward_matches_the_spread_formula():
    env = make("spread", 16)
    for ts in play(env, seed=2)[1:]:
        pos = ts.state[:, :6].view(16, 3, 2)
        marks = ts.state[:, 12:].view(16, 3, 2)
        cover = torch.cdist(marks, pos).min(-1).values.sum(-1)  # [B]
        gap = torch.cdist(pos, pos)
        overlap = ((gap < 0.3) & ~torch.eye(3, dtype=torch.bool)).sum((-1, -2))
        torch.testing.assert_close(ts.reward, -3 * cover - overlap.float(), atol=1e-4, rtol=0)


def test_random_play_rewards_are_finite_and_negative():
    env = make("spread", 64)
    rewards = torch.stack([ts.reward for ts in play(env, seed=3)[1:]])  # [T, B]
    assert torch.isfinite(rewards).all()
    assert (rewards < 0).all()
    assert (rewards.mean() < -1.0) and (rewards.mean() > -50.0)


def test_same_seed_same_trajectory():
    a = play(make("spread", 8), seed=7)
    b = play(make("spread", 8), seed=7)
    c = play(make("spread", 8), seed=8)
    for x, y in zip(a, b):
        assert torch.equal(x.obs, y.obs) and torch.equal(x.reward, y.reward)
    assert not torch.equal(a[-1].obs, c[-1].obs)


def test_global_rng_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    play(make("spread", 4), seed=0, steps=3)
    assert torch.equal(torch.rand(3), expected)


def test_done_rows_are_frozen():
    env = make("spread", 6)
    before = play(env, seed=0, steps=4)[-1]
    env.done[:3] = True  # freeze half the rows mid-episode
    gen = torch.Generator().manual_seed(9)
    for _ in range(4):
        ts = env.step(torch.randint(5, (6, 3), generator=gen))
        assert torch.equal(ts.obs[:3], before.obs[:3])
        assert torch.equal(ts.state[:3], before.state[:3])
        assert (ts.reward[:3] == 0).all()
    assert not torch.equal(ts.state[3:], before.state[3:])


def test_episode_truncates_at_limit_and_never_wins():
    env = make("spread", 4)
    trace = play(env, seed=0)
    assert not any(bool(ts.done.any()) for ts in trace[:-1])
    last = trace[-1]
    assert last.done.all() and last.info["truncated"].all() and not last.won.any()
    frozen = env.step(torch.zeros(4, 3, dtype=torch.long))
    assert torch.equal(frozen.obs, last.obs) and (frozen.reward == 0).all()


def test_auto_reset_starts_new_episodes():
    env = make("spread", 4, auto_reset=True)
    trace = play(env, seed=0, steps=26)
    end = trace[25]
    assert end.done.all() and not end.won.any()
    # The returned observation is the first of the new episode: velocities are zero.
    assert (end.state[:, 6:12] == 0).all() and not torch.equal(end.state, trace[24].state)
    assert not trace[26].done.any() and (env.t == 1).all()


def test_unknown_option_is_a_clear_error():
    with pytest.raises(ScenarioError, match="unknown spread option"):
        make("spread", 1, n_landmarks=3)


def test_partial_reset_touches_only_its_rows():
    env = make("spread", 6)
    before = play(env, seed=0, steps=3)[-1]
    rows = torch.tensor([True, False, True, False, False, True])
    env._reset_rows(rows)
    obs, state, _ = env._observe()
    assert torch.equal(obs[~rows], before.obs[~rows])
    assert torch.equal(state[~rows], before.state[~rows])
    assert (state[rows, 6:12] == 0).all()  # fresh episodes start at rest
    assert (state[rows] != before.state[rows]).any(-1).all()
