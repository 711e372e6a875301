"""DOP team learner (policies.learners.dop) on tiny budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.scenarios import make
from policies.learners.dop import (
    DOPConfig,
    DOPCritic,
    make_q_fn,
    td_lambda_targets,
    train_dop,
    tree_backup_targets,
)
from policies.learners.pg_train import PGTrainError
from policies.teams.networks import load_team


def tiny(**kw):
    base = dict(scenario="spread", steps=600, envs=4, off_batch_size=4, test_every=300,
                test_episodes=4, hidden=16, critic_hidden=32, seed=5)
    base.update(kw)
    return DOPConfig(**base)


def test_trains_a_loadable_team():
    res = train_dop(tiny())
    assert not res.partial and res.config["algo"] == "dop"
    prov = res.provenance
    assert prov["steps"] >= 600 and prov["updates"] > 0 and prov["critic_steps"] > 0
    assert prov["hyperparameters"]["tb_lambda"] == 0.93
    team = load_team(res.config, res.weights)
    env = make("spread", 2)
    ts = env.reset(0)
    q, _ = team.q_values(ts.obs, team.initial_state(2), None, ts.avail)
    assert q.shape == (2, env.spec.n_agents, env.spec.n_actions)


def test_same_seed_same_weights():
    a, b = train_dop(tiny(steps=400)), train_dop(tiny(steps=400))
    assert a.weights.keys() == b.weights.keys()
    for k in a.weights:
        np.testing.assert_array_equal(a.weights[k], b.weights[k])
    c = train_dop(tiny(steps=400, seed=6))
    assert any(not np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)


def test_k_nonnegative_and_q_fn_shape():
    spec = make("3m", 1).spec
    torch.manual_seed(0)
    critic = DOPCritic(spec, hidden=16, embed=8)
    B = 7
    state = torch.randn(B, spec.state_dim) * 3
    obs = torch.randn(B, spec.n_agents, spec.obs_dim)
    k = critic.k(state)
    assert k.shape == (B, spec.n_agents) and bool((k >= 0).all())
    torch.testing.assert_close(k.sum(-1), torch.ones(B))
    q = make_q_fn(critic)(state, obs, torch.zeros(B, spec.n_agents, spec.n_actions))
    assert q.shape == (B, spec.n_agents, spec.n_actions) and not q.requires_grad
    # k_i Q_i summed over agents at the taken actions, plus b, is the mixed Q_tot
    a = torch.randint(spec.n_actions, (B, spec.n_agents))
    q_tot = critic.mix(critic.q_i(state, obs).gather(-1, a[..., None]).squeeze(-1), state)
    torch.testing.assert_close(q.gather(-1, a[..., None]).squeeze(-1).sum(-1)
                               + critic.b(state), q_tot.detach())


def brute_tree_backup(q, e, r, term, filled, c, gamma, lam, n):
    """Precup et al.'s n-step tree backup, one episode and one step at a time."""
    B, T = q.shape
    out = torch.zeros(B, T)
    for i in range(B):
        for t in range(T):
            if not filled[i, t]:
                continue
            y, weight = float(q[i, t]), 1.0
            for step in range(t, min(t + n, T)):
                if not filled[i, step]:
                    break
                if step > t:
                    weight *= gamma * lam * float(c[i, step])
                boot = 0.0 if term[i, step] else gamma * float(e[i, step])
                y += weight * (float(r[i, step]) + boot - float(q[i, step]))
            out[i, t] = y
    return out


def test_tree_backup_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    B, T = 4, 9
    q, e, r = (torch.randn(B, T, generator=g) for _ in range(3))
    c = torch.rand(B, T, generator=g)
    lengths = torch.tensor([9, 6, 3, 1])
    filled = torch.arange(T)[None] < lengths[:, None]
    term = torch.zeros(B, T, dtype=torch.bool)
    term[1, 5] = term[2, 2] = True  # rows 0 and 3: row 0 truncated, row 3 one step
    for n in (1, 2, 5, 20):
        got = tree_backup_targets(q, e, r, term, filled, c, 0.9, 0.8, n)
        torch.testing.assert_close(got, brute_tree_backup(q, e, r, term, filled, c, 0.9, 0.8, n))


def test_tree_backup_hand_computed():
    # A 3-step episode that terminates; γ = 0.5, λ = 1, every c = 1 and E_π Q = Q of the next
    # action: the tree backup telescopes to the discounted return once n covers the episode.
    q = torch.tensor([[1.0, 2.0, 3.0]])
    r = torch.tensor([[1.0, 2.0, 4.0]])
    e = torch.tensor([[2.0, 3.0, 7.0]])  # E at t+1; the last is ignored (terminated)
    filled = torch.ones(1, 3, dtype=torch.bool)
    term = torch.tensor([[False, False, True]])
    c = torch.ones(1, 3)
    y = tree_backup_targets(q, e, r, term, filled, c, 0.5, 1.0, 3)
    torch.testing.assert_close(y, torch.tensor([[1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0]]))
    # one step: y_t = r_t + γ E_{t+1}
    y1 = tree_backup_targets(q, e, r, term, filled, c, 0.5, 1.0, 1)
    torch.testing.assert_close(y1, torch.tensor([[1 + 0.5 * 2, 2 + 0.5 * 3, 4.0]]))
    # c = 0 cuts the trace after one step whatever n is
    y0 = tree_backup_targets(q, e, r, term, filled, torch.zeros(1, 3), 0.5, 1.0, 3)
    torch.testing.assert_close(y0, y1)


def test_td_lambda_hand_computed():
    q = torch.tensor([[1.0, 2.0, 3.0]])
    r = torch.tensor([[1.0, 2.0, 4.0]])
    e = torch.tensor([[0.0, 0.0, 10.0]])  # only the truncated last step reads E
    filled = torch.ones(1, 3, dtype=torch.bool)
    term = torch.zeros(1, 3, dtype=torch.bool)
    g, lam = 0.5, 0.5
    g2 = 4 + g * 10
    g1 = 2 + g * ((1 - lam) * 3 + lam * g2)
    g0 = 1 + g * ((1 - lam) * 2 + lam * g1)
    y = td_lambda_targets(q, e, r, term, filled, g, lam)
    torch.testing.assert_close(y, torch.tensor([[g0, g1, g2]]))
    y_term = td_lambda_targets(q, e, r, torch.tensor([[False, False, True]]), filled, g, lam)
    assert float(y_term[0, 2]) == 4.0


def test_should_stop_gives_partial():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    res = train_dop(tiny(steps=100_000), should_stop=stop)
    assert res.partial and res.provenance["partial"]
    assert res.provenance["steps"] < 100_000
    load_team(res.config, res.weights)


@pytest.mark.parametrize("kw, word", [
    (dict(tb_lambda=1.5), "tb_lambda"), (dict(td_lambda=-0.1), "td_lambda"),
    (dict(lr=0.0), "lr"), (dict(critic_lr=-1.0), "critic_lr"), (dict(tb_steps=0), "tb_steps"),
    (dict(off_batch_size=10, off_buffer_size=5), "off_batch_size"), (dict(gamma=0.0), "gamma"),
    (dict(steps=0), "steps"), (dict(entropy_coef=-1.0), "entropy_coef"),
    (dict(scenario="no_such_map"), "no_such_map"),
])
def test_bad_config_is_one_line(kw, word):
    with pytest.raises(PGTrainError) as exc:
        train_dop(tiny(**kw))
    msg = str(exc.value)
    assert word in msg and "\n" not in msg


def test_sampler_reads_q_fn():
    seen = []

    class Spy:
        def reset(self, batch_size):
            pass

        def distribution(self, step):
            seen.append(step.q.shape)
            return step.probs

        def observe(self, batch):
            pass

    res = train_dop(tiny(steps=200), sampler=Spy())
    spec = make("spread", 1).spec
    assert seen and seen[0] == (4, spec.n_agents, spec.n_actions)
    # a sampler that draws from π itself trains as no sampler
    plain = train_dop(tiny(steps=200))
    for k in res.weights:
        np.testing.assert_array_equal(res.weights[k], plain.weights[k])
