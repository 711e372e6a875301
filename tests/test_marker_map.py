"""The backdoor-trigger map `3m_marker` (arena/scenarios/smac_marker.py), after MARNet's
environment trigger: clean episodes are 3m's, the trigger changes only the marker features,
who sees a marker, and size checks."""

from __future__ import annotations

import pytest
import torch

from arena.core import ScenarioError
from arena.scenarios import make
from arena.scenarios.smac_marker import N_MARKERS, MarkerSmac
from arena.scenarios.smac_units import SIGHT_RANGE
from tests.helpers import rollout




def test_spec_is_3m_plus_three_marker_features():
    env, plain = make("3m_marker", 2), make("3m", 2)
    sp, p = env.spec, plain.spec
    assert isinstance(env, MarkerSmac) and sp.name == "3m_marker" and sp.triggers
    assert sp.obs_dim == p.obs_dim + 3
    assert (sp.state_dim, sp.n_actions, sp.episode_limit, sp.n_agents) == (
        p.state_dim, p.n_actions, p.episode_limit, p.n_agents)
    assert (sp.family, sp.default_eps) == (p.family, p.default_eps)
    d = p.obs_dim
    assert sp.obs_low == p.obs_low + (0.0, -1.0, -1.0)
    assert sp.obs_high == p.obs_high + (1.0, 1.0, 1.0)
    assert sp.obs_groups["marker"] == (d, d + 1, d + 2)
    assert sp.obs_groups["binary"] == p.obs_groups["binary"] + (d,)
    assert sp.obs_groups["position"] == p.obs_groups["position"] + (d + 1, d + 2)


def test_size_zero_is_3m_exactly():
    B = 8
    clean, plain = rollout(make("3m_marker", B), 0, 60), rollout(make("3m", B), 0, 60)
    assert plain[-1].done.all()  # the run covers whole episodes
    for x, y in zip(clean, plain):
        assert torch.equal(x.obs[..., :-3], y.obs)
        assert not x.obs[..., -3:].any()
        assert torch.equal(x.state, y.state) and torch.equal(x.avail, y.avail)
        assert torch.equal(x.reward, y.reward) and torch.equal(x.done, y.done)
        assert torch.equal(x.won, y.won)
        assert x.info["trigger_seen"].shape == (B, 3) and not x.info["trigger_seen"].any()


def test_per_row_sizes_change_only_the_marker_features():
    sizes = torch.tensor([0.0, 0.05, 0.5, 1.0])
    clean, trig = make("3m_marker", 4), make("3m_marker", 4)
    trig.set_triggers(sizes)
    a, b = rollout(clean, 5, 60), rollout(trig, 5, 60)
    assert trig.marker_on.sum(-1).tolist() == [0, 1, 10, 20]
    assert trig.marker_on.sum(-1).tolist() == torch.round(sizes * N_MARKERS).long().tolist()
    assert torch.equal(trig.marker_pos, clean.marker_pos)  # the same draws whatever the size
    for x, y in zip(a, b):
        assert torch.equal(x.obs[..., :-3], y.obs[..., :-3])
        assert torch.equal(x.state, y.state) and torch.equal(x.avail, y.avail)
        assert torch.equal(x.reward, y.reward) and torch.equal(x.done, y.done)
        assert torch.equal(x.won, y.won)
        assert torch.equal(y.info["trigger_seen"], y.obs[..., -3] > 0)
        assert not y.obs[0, :, -3:].any()  # size 0: no marker
    # at size 1 the 20 markers cover the fight: someone sees one within the first steps
    assert any(ts.info["trigger_seen"][3].any() for ts in b[:5])
    # a dead agent's marker features are zeros, like the rest of its observation
    dead = trig.units.hp[:, :3] <= 0  # [B, n] at the end
    assert not b[-1].obs[dead].any()


def test_set_triggers_applies_from_the_next_reset():
    env = make("3m_marker", 3)
    env.set_triggers(1.0)
    env.reset(seed=1)
    assert env.marker_on.all()
    env.set_triggers(0.0)
    assert env.marker_on.all()  # the episode under way keeps its markers
    env.reset(seed=1)
    assert not env.marker_on.any()
    env = make("3m_marker", 2, trigger_fraction=0.5)
    env.reset(seed=0)
    assert env.marker_on.sum(-1).tolist() == [10, 10]


def test_visibility_and_offsets_by_hand():
    env = make("3m_marker", 1)
    env.reset(seed=0)
    env.units.pos[0, :3] = torch.tensor([[9.0, 10.0], [9.0, 16.0], [9.0, 18.0]])
    env.marker_on.zero_()
    env.marker_on[0, :3] = True
    # marker 0 at 5 from agent 0, 10.4 and 12.4 from the others; marker 1 also seen by
    # agent 0 only but farther (6.7); spot 3 lies on agent 1 but carries no marker
    env.marker_pos[0, :4] = torch.tensor([[12.0, 6.0], [3.0, 7.0], [40.0, 40.0], [9.0, 16.0]])
    ts = env.sync()
    feats = ts.obs[0, :, -3:]
    expected = torch.tensor([[1.0, 3.0 / SIGHT_RANGE, -4.0 / SIGHT_RANGE], [0, 0, 0], [0, 0, 0]])
    assert torch.allclose(feats, expected)
    assert ts.info["trigger_seen"][0].tolist() == [True, False, False]

    # exactly at the sight range is not seen (strict, as units); agent 2 at 7 sees it
    env.marker_pos[0, :3] = torch.tensor([[9.0, 25.0], [40.0, 40.0], [40.0, 40.0]])
    ts = env.sync()
    assert ts.info["trigger_seen"][0].tolist() == [False, False, True]
    assert torch.allclose(ts.obs[0, 2, -3:], torch.tensor([1.0, 0.0, 7.0 / SIGHT_RANGE]))

    env.units.hp[0, 2] = 0.0  # a dead agent sees nothing
    ts = env.sync()
    assert not ts.info["trigger_seen"].any() and not ts.obs[0, 2].any()


@pytest.mark.parametrize(
    "size", [1.5, -0.1, torch.tensor([0.0, 0.5, 1.0]), torch.zeros(4, 1), torch.zeros(2, 2)])
def test_bad_sizes_are_refused(size):
    env = make("3m_marker", 4)
    with pytest.raises(ScenarioError):
        env.set_triggers(size)


def test_bad_trigger_fraction_is_refused():
    with pytest.raises(ScenarioError):
        make("3m_marker", 2, trigger_fraction=1.2)
