"""The compiled environment step (arena.compiled) and the training option that uses it.

Most tests trace with torch.compile's "eager" backend: the same graph capture, rand swap and
state write-back as with inductor, built in about a second and bit-identical to the plain
step. One test (slow) builds the real inductor kernels, for 3m, the scenario that is not
bit-identical under inductor: the bound it checks is float32 rounding.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import arena.compiled as compiled
import policies.learners.q_learner as q_learner
from arena.bench import random_legal_actions
from arena.compiled import compile_env, is_compiled
from arena.core import IllegalActionError, ScenarioError
from arena.scenarios import make
from policies.learners.train_defender import DefenderTrainConfig, DefenderTrainError, train_defender


@pytest.fixture
def eager_backend(monkeypatch):
    monkeypatch.setattr(compiled, "BACKEND", "eager")


def play_both(name: str, batch: int, steps: int, seed: int = 5, auto_reset: bool = True):
    """Eager and compiled envs fed the same random legal actions; yields (eager, compiled)."""
    plain = make(name, batch, auto_reset=auto_reset)
    comp = compile_env(make(name, batch, auto_reset=auto_reset))
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    a, b = plain.reset(seed=seed), comp.reset(seed=seed)
    yield a, b
    for _ in range(steps):
        a = plain.step(random_legal_actions(a.avail, g1))
        b = comp.step(random_legal_actions(b.avail, g2))
        yield a, b
    assert is_compiled(comp)
    assert plain._draws == comp._draws


def assert_same(a, b, atol=0.0):
    for field in ("done", "won", "avail"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    for field in ("obs", "state", "reward"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert torch.allclose(x, y, rtol=0, atol=atol), (field, (x - y).abs().max())
    assert a.info.keys() == b.info.keys()
    for k in a.info:
        assert torch.allclose(a.info[k].float(), b.info[k].float(), rtol=0, atol=atol), k


@pytest.mark.parametrize("name", ["pp7", "3m", "stag10"])
def test_traced_step_is_the_eager_step(eager_backend, name):
    # pp7 draws randomness every step (agent and prey order): the counter must follow;
    # stag10 has backdoor triggers (`trigger_seen` in info); auto-reset runs the reset path
    for a, b in play_both(name, 3, 120):
        assert_same(a, b)


def test_without_auto_reset_episodes_freeze(eager_backend):
    last = None
    for a, b in play_both("3m", 2, 80, auto_reset=False):
        assert_same(a, b)
        last = b
    assert bool(last.done.all())


def test_step_checks_remain(eager_backend):
    env = compile_env(make("3m", 2, debug=True))
    with pytest.raises(ScenarioError, match="reset"):
        env.step(torch.zeros(2, 3, dtype=torch.long))
    ts = env.reset(seed=0)
    with pytest.raises(ScenarioError, match="shape"):
        env.step(torch.zeros(2, 2, dtype=torch.long))
    illegal = (~ts.avail).float().argmax(-1)  # an unavailable action for every agent
    with pytest.raises(IllegalActionError):
        env.step(illegal)


def test_compile_failure_falls_back_with_one_warning():
    def broken(gm, example_inputs):
        raise RuntimeError("no compiler here")

    plain = make("3m", 2)
    env = compile_env(make("3m", 2), backend=broken)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b = plain.reset(seed=1), env.reset(seed=1)  # the reset observes: a compiled call
        for _ in range(5):
            a = plain.step(random_legal_actions(a.avail, g1))
            b = env.step(random_legal_actions(b.avail, g2))
            assert_same(a, b)
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1 and "eagerly" in msgs[0]
    assert not is_compiled(env)


def test_compile_unavailable(monkeypatch):
    monkeypatch.setattr(compiled, "compile_available", lambda: False)
    env = make("3m", 2)
    with pytest.warns(RuntimeWarning, match="not available"):
        assert compile_env(env) is env
    assert not is_compiled(env)


def small_cfg(**kw):
    base = dict(scenario="3m", steps=600, envs=4, batch=8, buffer=64, eps_anneal=400,
                target_update=16, test_every=300, test_episodes=4, test_attacks=False, seed=2)
    return DefenderTrainConfig(**{**base, **kw})


def test_training_option(eager_backend):
    with pytest.raises(DefenderTrainError, match="compile"):
        small_cfg(compile="yes").validate()
    plain = train_defender(small_cfg())
    fast = train_defender(small_cfg(compile=True))
    assert fast.provenance["hyperparameters"]["compile"] is True
    # the traced env and team steps are bit-identical; the one-call GRU unroll of the learner
    # agrees with the cell-by-cell one to float32 rounding, so the runs stay within rounding
    assert plain.provenance["steps"] == fast.provenance["steps"]
    assert [p["test_win"] for p in plain.provenance["curve"]] == \
        [p["test_win"] for p in fast.provenance["curve"]]
    for k, w in plain.weights.items():
        assert abs(w - fast.weights[k]).max() < 1e-4, k


def test_sequence_unroll_is_the_cell_unroll(monkeypatch):
    # the learner's unroll: one GRU call vs a GRUCell per step, the same Q and hidden states
    from policies.learners.q_learner import LearnerConfig, QLearner
    from policies.teams.rnn_agent import RNNAgent, agent_input_dim

    torch.manual_seed(0)
    n, A, obs_dim, B, T = 3, 9, 7, 5, 11
    agent = RNNAgent(agent_input_dim(obs_dim, A, n), A, hidden=16)
    learner = QLearner(agent, torch.nn.Identity(), n, A, LearnerConfig())
    batch = {"obs": torch.randn(B, T + 1, n, obs_dim),
             "actions": torch.randint(-1, A, (B, T, n))}
    fast = learner.unroll(agent, batch)
    monkeypatch.setattr(q_learner, "SEQUENCE_UNROLL", False)
    slow = learner.unroll(agent, batch)
    for x, y in zip(fast, slow):
        assert x.shape == y.shape
        assert torch.allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_inductor_step_matches_eager_within_rounding():
    # inductor fuses the step into C++ loops that may contract a*b+c or reorder a sum:
    # float features agree to float32 rounding, integer and boolean outputs exactly
    for a, b in play_both("3m", 4, 200):
        assert_same(a, b, atol=1e-5)
