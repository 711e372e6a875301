"""The contract every registered scenario meets (arena/core.py), checked on each of them."""

import pytest
import torch

from arena.bench import random_legal_actions
from arena.core import STANDARD_GROUPS, ScenarioError, resolve_device, uniform_from
from arena.scenarios import REGISTRY, make
from tests.helpers import rollout


def _available(name):
    try:
        return make(name, 2)
    except ScenarioError as exc:
        pytest.skip(str(exc))




@pytest.mark.parametrize("name", list(REGISTRY))
def test_shapes_and_dtypes(name):
    env = _available(name)
    s = env.spec
    B = 3
    env = make(name, B)
    ts = env.reset(seed=1)
    assert ts.obs.shape == (B, s.n_agents, s.obs_dim) and ts.obs.dtype == torch.float32
    assert ts.state.shape == (B, s.state_dim) and ts.state.dtype == torch.float32
    assert ts.avail.shape == (B, s.n_agents, s.n_actions) and ts.avail.dtype == torch.bool
    assert ts.reward.shape == (B,) and ts.done.shape == (B,) and ts.won.shape == (B,)
    assert ts.avail.any(-1).all(), "every agent must have at least one available action"
    assert torch.isfinite(ts.obs).all() and torch.isfinite(ts.state).all()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_same_seed_same_trajectory(name):
    _available(name)
    a = rollout(make(name, 4), seed=7, steps=30)
    b = rollout(make(name, 4), seed=7, steps=30)
    for x, y in zip(a, b):
        assert torch.equal(x.obs, y.obs) and torch.equal(x.reward, y.reward)
        assert torch.equal(x.done, y.done)
    c = rollout(make(name, 4), seed=8, steps=30)
    assert any(not torch.equal(x.obs, y.obs) for x, y in zip(a, c))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_a_row_does_not_depend_on_the_rest_of_the_batch(name):
    """Row r of a batch behaves exactly like the same episode run alone (per-row streams)."""
    _available(name)
    big = make(name, 5)
    seeds = torch.tensor([11, 22, 33, 44, 55])
    ts_big = big.reset(seeds=seeds)
    alone = make(name, 1)
    ts_one = alone.reset(seeds=seeds[3:4])
    gen = torch.Generator().manual_seed(3)
    for _ in range(40):
        acts = random_legal_actions(ts_big.avail, gen)
        ts_big = big.step(acts)
        ts_one = alone.step(acts[3:4])
        assert torch.equal(ts_big.obs[3:4], ts_one.obs)
        assert torch.equal(ts_big.reward[3:4], ts_one.reward)
        assert torch.equal(ts_big.done[3:4], ts_one.done)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_dropping_rows_leaves_the_kept_episodes_unchanged(name):
    """`keep_rows` (the rollout drops finished episodes): each kept episode goes on exactly
    as in the full batch. Rows are dropped as they finish, plus some live ones, in a shuffled
    order; actions come from each episode's own stream, so they do not depend on the batch."""
    env = _available(name)
    if not env.can_drop_rows:
        with pytest.raises(ScenarioError, match="cannot drop"):
            env.reset(seed=0)
            env.keep_rows(torch.tensor([0]))
        return
    B, limit = 9, env.spec.episode_limit
    seeds = torch.arange(100, 100 + B) * 7919
    full, part = make(name, B), make(name, B)
    ts_f, ts_p = full.reset(seeds=seeds), part.reset(seeds=seeds)
    rows = torch.arange(B)  # the full batch's row of each of part's rows

    def actions(avail, row_seeds, t):
        u = uniform_from(row_seeds, t, tuple(avail.shape[1:]))
        return (u * avail).argmax(-1)

    for t in range(limit):
        ts_f = full.step(actions(ts_f.avail, seeds, t))
        ts_p = part.step(actions(ts_p.avail, seeds[rows], t))
        for field in ("obs", "state", "avail", "reward", "done", "won"):
            assert torch.equal(getattr(ts_f, field)[rows], getattr(ts_p, field)), (t, field)
        for key, value in ts_p.info.items():
            assert torch.equal(ts_f.info[key][rows], value), (t, key)
        if ts_p.done.all():
            break
        keep = (~ts_p.done).nonzero().flatten()
        if t == 3 and len(keep) > 2:  # a live row dropped too, and the rest reordered
            keep = keep[1:].flip(0)
        ts_p = part.keep_rows(keep)
        rows = rows[keep]
        assert part.B == len(keep) and torch.equal(ts_p.obs, ts_f.obs[rows])
    assert len(rows) < B


@pytest.mark.parametrize("name", list(REGISTRY))
def test_finished_episodes_stay_frozen(name):
    env = _available(name)
    limit = env.spec.episode_limit
    env = make(name, 4)
    gen = torch.Generator().manual_seed(0)
    ts = env.reset(seed=3)
    for _ in range(limit):
        prev = ts
        ts = env.step(random_legal_actions(ts.avail, gen))
        was_done = prev.done
        assert torch.equal(ts.obs[was_done], prev.obs[was_done])
        assert (ts.reward[was_done] == 0).all()
        assert ts.done[was_done].all()
    assert ts.done.all(), "every episode ends by the episode limit"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_auto_reset_restarts_finished_episodes(name):
    env = _available(name)
    limit = env.spec.episode_limit
    env = make(name, 2, auto_reset=True)
    gen = torch.Generator().manual_seed(0)
    ts = env.reset(seed=3)
    ended = 0
    for _ in range(limit + 2):
        ts = env.step(random_legal_actions(ts.avail, gen))
        ended += int(ts.done.sum())
        assert (env.t <= limit).all()
    assert ended >= 2 and not env.done.any()


def test_cuda_device_is_a_clear_error_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ScenarioError, match="no CUDA device"):
            resolve_device(name)
    assert resolve_device("auto").type == "cpu"


def test_a_cuda_index_past_the_devices_is_a_clear_error():
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    count = torch.cuda.device_count()
    assert resolve_device(f"cuda:{count - 1}").index == count - 1
    with pytest.raises(ScenarioError, match="numbered from 0"):
        resolve_device(f"cuda:{count}")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_spec_declares_bounds_groups_and_budget(name):
    s = _available(name).spec
    assert len(s.obs_low) == len(s.obs_high) == s.obs_dim
    low, high = s.bounds()
    assert low.shape == high.shape == (s.obs_dim,) and (low <= high).all()
    assert torch.isfinite(low).all() and torch.isfinite(high).all()
    # the standard groups split the features: each feature in exactly one of them
    masks = torch.stack([s.group_mask(g) for g in STANDARD_GROUPS])
    assert masks.sum(0).eq(1).all(), s.group_sizes()
    assert torch.equal(s.group_mask(list(STANDARD_GROUPS)), masks.any(0))
    binary = s.group_mask("binary")
    assert (low[binary] == 0).all() and (high[binary] == 1).all()
    for group, idx in s.obs_groups.items():
        assert s.group_mask(group).sum() == len(idx)
    assert 0 < s.default_eps <= 0.2
    row = s.as_dict()
    assert row["default_eps"] == s.default_eps and row["obs_groups"] == s.group_sizes()
    with pytest.raises(ScenarioError, match="no feature group"):
        s.group_mask("no_such_group")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_clean_observations_lie_within_the_declared_bounds(name):
    """Random legal play across episode ends: every observation inside [obs_low, obs_high],
    binary features exactly 0 or 1."""
    s = _available(name).spec
    low, high = s.bounds()
    binary = s.group_mask("binary")
    env = make(name, 16, auto_reset=True)
    gen = torch.Generator().manual_seed(1)
    ts = env.reset(seed=5)
    for t in range(301):
        obs = ts.obs.reshape(-1, s.obs_dim)
        below, above = obs < low, obs > high
        assert not below.any() and not above.any(), (
            f"step {t}: features {sorted(set((below | above).nonzero()[:, 1].tolist()))} "
            f"out of bounds"
        )
        bits = obs[:, binary]
        assert ((bits == 0) | (bits == 1)).all(), f"step {t}: a binary feature is not 0/1"
        ts = env.step(random_legal_actions(ts.avail, gen))


@pytest.mark.parametrize(
    "name,eps", [("2m_vs_1z", 0.2), ("3m", 0.2), ("3s_vs_3z", 0.2), ("8m", 0.2),
                 ("2s3z", 0.05), ("3s5z", 0.05), ("pp7", 0.2), ("stag10", 0.2)],
)
def test_default_budget_is_the_papers(name, eps):
    """Guo et al. (robust QMIX): ε = 0.2 on the small SMAC maps, 0.05 on 2s3z."""
    assert _available(name).spec.default_eps == eps


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(REGISTRY))
def test_cuda_matches_cpu_shapes(name):
    _available(name)
    env = make(name, 8, device="cuda")
    ts = env.reset(seed=0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(5):
        ts = env.step(random_legal_actions(ts.avail, gen))
    assert ts.obs.device.type == "cuda"
