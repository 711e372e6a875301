"""MAPPO (policies.learners.mappo) on tiny budgets: a loadable team, determinism, the median
aggregation, the old log-probabilities read from the batch, early stopping, bad configs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from arena.scenarios import make
from policies.learners.mappo import (
    MAPPOConfig,
    MAPPOLearner,
    StateValue,
    coordinate_median,
    train_mappo,
)
from policies.learners.pg_collect import collect_pg
from policies.learners.pg_train import PGTrainError, make_actor
from policies.teams.networks import load_team


def tiny(**kw):
    base = dict(scenario="spread", steps=400, envs=4, hidden=16, test_every=200,
                test_episodes=4, epochs=2, seed=5)
    base.update(kw)
    return MAPPOConfig(**base)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_trains_a_loadable_team():
    seen = []
    res = train_mappo(tiny(scenario="3m"), on_progress=seen.append)
    assert not res.partial
    prov = res.provenance
    assert prov["algo"] == "mappo" and prov["steps"] >= 400 and prov["updates"] > 0
    assert prov["agg"] == "mean" and prov["hyperparameters"]["clip"] == 0.2
    assert [p["steps"] for p in prov["curve"]][0] == 0 and prov["curve"][-1]["steps"] == prov["steps"]
    assert seen and seen[-1]["steps"] == prov["steps"]
    team = load_team(res.config, res.weights)
    env = make("3m", 2)
    ts = env.reset(0)
    q, h = team.q_values(ts.obs, team.initial_state(2), None, ts.avail)
    assert q.shape == (2, env.spec.n_agents, env.spec.n_actions)


def test_same_seed_same_weights():
    a, b = train_mappo(tiny()), train_mappo(tiny())
    assert same(a.weights, b.weights)
    assert a.provenance["curve"][-1]["test_return"] == b.provenance["curve"][-1]["test_return"]
    assert not same(a.weights, train_mappo(tiny(seed=6)).weights)


def test_median_runs_and_differs_from_mean():
    mean, med = train_mappo(tiny()), train_mappo(tiny(agg="median"))
    assert med.provenance["agg"] == "median"
    assert not same(mean.weights, med.weights)
    assert all(np.isfinite(v).all() for v in med.weights.values())


def test_coordinate_median_ignores_one_outlier():
    honest = torch.tensor([[1.0, -2.0], [1.2, -1.8], [0.8, -2.2]])
    poisoned = torch.cat([honest, torch.tensor([[1e6, -1e6]])])
    assert torch.allclose(coordinate_median(honest), torch.tensor([1.0, -2.0]))
    med = coordinate_median(poisoned)  # even n: mean of the two middle values
    assert torch.allclose(med, torch.tensor([1.1, -2.1]))


def learner_and_batch(**kw):
    cfg = tiny(epochs=1, **kw)
    env = make(cfg.scenario, cfg.envs)
    torch.manual_seed(0)
    actor = make_actor(env.spec, cfg)
    critic = StateValue(env.spec.state_dim, cfg.critic_hidden)
    batch, _ = collect_pg(env, actor, torch.Generator().manual_seed(0), seed=0)
    return MAPPOLearner(actor, critic, cfg, env.spec.n_actions), batch


@pytest.mark.parametrize("agg", ["mean", "median"])
def test_update_reads_old_logp_from_the_batch(agg):
    learner, batch = learner_and_batch(agg=agg)
    # the batch's logp is the current policy's: the first ratio is exactly one
    first = copy.deepcopy(learner).update(batch, torch.Generator().manual_seed(0))
    assert first["approx_kl"] < 1e-6 and first["clipfrac"] == 0.0
    # what the learner believed it sampled from is what the update uses, not the actions'
    # probability under the current actor: another logp, another ratio, another step
    other = dict(batch, logp=batch["logp"] - 0.5 * batch["filled"].unsqueeze(-1))
    shifted = copy.deepcopy(learner)
    out = shifted.update(other, torch.Generator().manual_seed(0))
    assert out["approx_kl"] > 1e-2 and out["clipfrac"] > 0.5
    base = copy.deepcopy(learner)
    base.update(batch, torch.Generator().manual_seed(0))
    assert any(not torch.equal(p, q) for p, q in zip(base.actor.parameters(),
                                                      shifted.actor.parameters()))


def test_should_stop_gives_partial():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    res = train_mappo(tiny(steps=10_000), should_stop=stop)
    assert res.partial and res.provenance["partial"]
    assert 0 < res.provenance["steps"] < 10_000 and res.provenance["updates"] == 2 * 2
    assert res.provenance["curve"][-1]["steps"] == res.provenance["steps"]
    load_team(res.config, res.weights)


@pytest.mark.parametrize("bad", [
    {"agg": "trimmed"}, {"epochs": 0}, {"minibatches": 5}, {"clip": 0.0}, {"lr": -1.0},
    {"gamma": 1.5}, {"gae_lambda": -0.1}, {"value_loss": "l1"}, {"ent_coef": -0.01},
    {"steps": 0}, {"envs": 0}, {"scenario": "nowhere"},
])
def test_bad_config_is_one_line_error(bad):
    with pytest.raises(PGTrainError) as err:
        train_mappo(tiny(**bad))
    assert "\n" not in str(err.value) and str(err.value)
