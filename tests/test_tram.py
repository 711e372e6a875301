"""TRAM (policies.training.tram): the KL-bounded bisection, the directions, the frequency, the
own critic and the stealth statistic, on random logits and on a tiny spread run."""

from __future__ import annotations

import math

import pytest
import torch

from arena.scenarios import make, spec as scenario_spec
from policies.learners.pg_collect import SampleStep, collect_pg, unroll
from policies.teams.rnn_agent import make_agent
from policies.training import TRAM_KINDS
from policies.training.tram import (
    TramSampler,
    bisect_beta,
    build_tram,
    kl_along,
    unit_direction,
)


def random_rows(M=512, A=6, seed=0, drop=0.3):
    g = torch.Generator().manual_seed(seed)
    avail = torch.rand(M, A, generator=g) > drop
    avail[:, 0] = True
    avail[::7, 1:] = False  # some rows with a single available action
    logits = (3 * torch.randn(M, A, generator=g, dtype=torch.float64)).masked_fill(~avail, -1e9)
    d, _ = unit_direction(torch.randn(M, A, generator=g, dtype=torch.float64), avail)
    return logits, d, avail


def kl_limit(logits, d, avail):
    """The largest KL reachable along d: π restricted to argmax d, KL = −log π(argmax set)."""
    p = torch.softmax(logits, -1)
    top = d.masked_fill(~avail, -math.inf).amax(-1, keepdim=True)
    on = avail & (d >= top - 1e-12)
    return -torch.log((p * on).sum(-1))


def test_bisection_meets_bound_and_hits_it_when_reachable():
    logits, d, avail = random_rows()
    kl_max = 0.5
    beta = bisect_beta(logits, d, avail, kl_max, expand_iters=16, bisect_iters=30)
    kl, logq = kl_along(logits, d, avail, beta)
    assert bool((kl <= kl_max + 1e-9).all())
    assert bool((beta >= 0).all())
    reach = kl_limit(logits, d, avail) > kl_max + 1e-3
    assert int(reach.sum()) > 100
    assert torch.allclose(kl[reach], torch.full_like(kl[reach], kl_max), atol=1e-6)
    # unavailable actions keep probability 0
    assert bool((logq.exp()[~avail] == 0).all())


def test_bisection_saturates_when_bound_out_of_reach():
    logits, d, avail = random_rows(seed=1)
    kl_max = 50.0
    cap = 2.0 ** 16
    beta = bisect_beta(logits, d, avail, kl_max, expand_iters=16, bisect_iters=20)
    kl, _ = kl_along(logits, d, avail, beta)
    lim = kl_limit(logits, d, avail)
    out = (lim < kl_max) & (d.abs().sum(-1) > 0)
    assert int(out.sum()) > 100
    assert bool((beta[out] == cap).all())
    # at the cap the KL is the most reachable along d (up to the residual of a finite β)
    assert bool((kl[out] <= lim[out] + 1e-9).all())
    assert torch.allclose(kl[out], lim[out], atol=1e-6)


def test_bisection_is_monotone_in_the_bound():
    logits, d, avail = random_rows(seed=2)
    prev_beta = prev_kl = None
    for kl_max in (0.0, 0.01, 0.1, 0.3, 1.0, 2.0, 6.0, 20.0):
        beta = bisect_beta(logits, d, avail, kl_max, expand_iters=16, bisect_iters=30)
        kl = kl_along(logits, d, avail, beta)[0]
        if prev_beta is not None:
            assert bool((beta >= prev_beta).all())
            assert bool((kl >= prev_kl - 1e-12).all())
        prev_beta, prev_kl = beta, kl


def make_step(B=64, n=3, A=5, seed=0, q=True, alive=None):
    g = torch.Generator().manual_seed(seed)
    avail = torch.rand(B, n, A, generator=g) > 0.3
    avail[..., 0] = True
    logits = (2 * torch.randn(B, n, A, generator=g)).masked_fill(~avail, -1e9)
    probs = torch.softmax(logits, -1)
    qv = torch.randn(B, n, A, generator=g) if q else None
    if alive is None:
        alive = torch.ones(B, dtype=torch.bool)
    return SampleStep(logits, probs, avail, torch.randn(B, n, 7, generator=g),
                      torch.randn(B, 9, generator=g), alive, 0, qv)


@pytest.mark.parametrize("method", TRAM_KINDS)
def test_only_agent_k_at_poisoned_rows_changes(method):
    step = make_step()
    step.alive[::5] = False
    copies = [x.clone() for x in (step.logits, step.probs, step.avail, step.q)]
    s = TramSampler(method, kl_max=1.0, freq=0.5, agent=1, seed=3)
    out = s.distribution(step)
    # the given tensors are untouched
    for a, b in zip(copies, (step.logits, step.probs, step.avail, step.q)):
        assert torch.equal(a, b)
    assert torch.equal(out[:, 0], step.probs[:, 0]) and torch.equal(out[:, 2], step.probs[:, 2])
    changed = (out[:, 1] != step.probs[:, 1]).any(-1)
    assert not bool(changed[::5].any())  # dead rows
    assert 0 < int(changed.sum()) < step.probs.shape[0]  # freq 0.5: some rows, not all
    assert bool((out[:, 1][~step.avail[:, 1]] == 0).all())
    assert torch.allclose(out.sum(-1), torch.ones(out.shape[:2]), atol=1e-5)
    st = s.stats()
    assert st["tram_poisoned"] >= int(changed.sum())
    assert 0 < st["tram_kl"] <= 1.0 + 1e-6


def test_freq_zero_returns_the_given_probs():
    step = make_step()
    s = TramSampler("tram_random", freq=0.0)
    state = s.gen.get_state()
    assert s.distribution(step) is step.probs
    assert torch.equal(s.gen.get_state(), state)
    assert s.stats()["tram_poisoned"] == 0


def test_j_lowers_expected_value_and_var_raises_variance():
    step = make_step(B=256)
    k = 0
    p, q, av = step.probs[:, k].double(), step.q[:, k].double(), step.avail[:, k]
    q = q.masked_fill(~av, 0.0)

    def moments(dist):
        mu = (dist * q).sum(-1)
        return mu, (dist * (q - mu[:, None]) ** 2).sum(-1)

    mu0, var0 = moments(p)
    live = var0 > 1e-6
    for kl_max in (0.05, 1.0, 6.0):
        out = TramSampler("tram_j", kl_max=kl_max, agent=k).distribution(step)[:, k].double()
        mu1, _ = moments(out)
        assert bool((mu1[live] < mu0[live]).all())  # every β > 0 lowers it
    # The variance direction is first-order: every row gains for a small bound, the rows gain
    # on average for a moderate one (a large one collapses π' onto one action: see tram.py).
    out = TramSampler("tram_var", kl_max=1e-3, agent=k).distribution(step)[:, k].double()
    _, var1 = moments(out)
    assert bool((var1[live] > var0[live]).all())
    out = TramSampler("tram_var", kl_max=0.05, agent=k).distribution(step)[:, k].double()
    _, var1 = moments(out)
    assert float((var1 - var0)[live].mean()) > 0


def spread_setup(seed=0):
    env = make("spread", 8)
    sp = env.spec
    torch.manual_seed(seed)
    actor = make_agent(sp.obs_dim, sp.n_actions, sp.n_agents, hidden=16)
    return env, sp, actor


def run(env, actor, sampler=None, q_fn=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return collect_pg(env, actor, gen, seed=seed, sampler=sampler, q_fn=q_fn)[0]


def fake_q(A):
    def q_fn(state, obs, last):
        return obs[..., :1] * torch.arange(A, dtype=obs.dtype) + state[:, None, :1]
    return q_fn


def test_freq_zero_is_bit_identical_and_freq_one_changes_only_actions():
    env, sp, actor = spread_setup()
    clean = run(env, actor)
    s0 = build_tram("tram_j", {"freq": 0.0, "agent": 1}, sp)
    zero = run(env, actor, s0, fake_q(sp.n_actions))
    assert clean.keys() == zero.keys()
    for key in clean:
        assert torch.equal(clean[key], zero[key]), key

    s1 = build_tram("tram_j", {"freq": 1.0, "agent": 1, "kl_max": 6.0}, sp)
    hit = run(env, actor, s1, fake_q(sp.n_actions))
    k = 1
    # the first step is the same except agent k's action
    for key in ("obs", "state", "avail"):
        assert torch.equal(clean[key][:, 0], hit[key][:, 0]), key
    assert torch.equal(clean["actions"][:, 0, [0, 2]], hit["actions"][:, 0, [0, 2]])
    assert not torch.equal(clean["actions"][:, :, k], hit["actions"][:, :, k])
    # logp is the learner's own log π of the taken actions, not π'
    with torch.no_grad():
        raw = unroll(actor, hit["obs"], hit["actions"], sp.n_actions)[:, :-1]
        logits = raw.masked_fill(~hit["avail"][:, :-1], -1e9)
        own = torch.log_softmax(logits, -1).gather(-1, hit["actions"].unsqueeze(-1)).squeeze(-1)
    f = hit["filled"]
    assert torch.allclose(own[f], hit["logp"][f], atol=1e-5)
    st = s1.stats()
    assert st["tram_poisoned"] == int(f.sum()) and s1.describe()["critic"] == "learner"
    assert st["tram_llr"] > 0  # the attacker's samples look more like π' than like π


def test_own_critic_trains_and_leaves_the_global_stream():
    env, sp, actor = spread_setup()
    rng = torch.get_rng_state()
    s = build_tram("tram_var", {"freq": 1.0, "agent": 0, "seed": 5}, sp)
    batch = run(env, actor, s)
    assert torch.equal(torch.get_rng_state(), rng)
    assert s.describe()["critic"] == "own" and s.critic is not None
    first = s.critic_loss
    for _ in range(40):
        s.observe(batch)
    assert s.critic_loss < 0.5 * first
    assert "tram_critic_loss" in s.stats()


def test_stealth_statistic_by_hand():
    B, n, A = 2, 2, 3
    logits = torch.tensor([[[0.0, 1.0, -1.0], [0.5, 0.0, 0.0]],
                           [[2.0, 0.0, -1e9], [0.0, 0.0, 0.0]]])
    avail = logits > -1e8
    probs = torch.softmax(logits, -1)
    q = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]], [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]])
    s = TramSampler("tram_j", kl_max=0.2, agent=0)
    s.reset(B)
    out = s.distribution(SampleStep(logits, probs, avail, torch.zeros(B, n, 1),
                                    torch.zeros(B, 1), torch.ones(B, dtype=torch.bool), 0, q))
    actions = torch.tensor([[[2, 0]], [[0, 0]]])  # [B, T=1, n]
    s.observe({"actions": actions, "filled": torch.ones(B, 1, dtype=torch.bool),
               "reward": torch.zeros(B, 1), "state": torch.zeros(B, 2, 1),
               "obs": torch.zeros(B, 2, n, 1)})
    # row 1's bound is out of reach along δ̂ (π' saturates onto action 0): score an action
    # that π' can draw
    a0, a1 = 2, 0
    by_hand = (math.log(out[0, 0, a0]) - math.log(probs[0, 0, a0])
               + math.log(out[1, 0, a1]) - math.log(probs[1, 0, a1]))
    st = s.stats()
    assert st["tram_poisoned"] == 2
    assert st["tram_llr"] == pytest.approx(by_hand / 2, abs=1e-5)
    assert st["tram_llr_total"] == pytest.approx(by_hand, abs=1e-5)
    kl = sum(sum(float(out[b, 0, a]) * math.log(float(out[b, 0, a] / probs[b, 0, a]))
                 for a in range(A) if out[b, 0, a] > 0) for b in range(B))
    assert st["tram_kl"] == pytest.approx(kl / 2, abs=1e-5)
    # row 0 meets the bound, row 1 saturates at its most reachable KL, −log π(0)
    assert kl == pytest.approx(0.2 - math.log(float(probs[1, 0, 0])), abs=1e-5)


def test_build_tram_checks():
    sp = scenario_spec("spread")
    with pytest.raises(ValueError, match="out of range"):
        build_tram("tram_var", {"agent": sp.n_agents}, sp)
    with pytest.raises(ValueError, match="unknown training attack"):
        build_tram("tram_x", {}, sp)
    with pytest.raises(ValueError, match="unknown tram_j parameter"):
        build_tram("tram_j", {"kl": 1.0}, sp)
    s = build_tram("tram_random", {"kl_max": 2.0, "freq": 0.25, "agent": 2, "seed": 4,
                                   "expand_iters": 8, "bisect_iters": 12}, sp)
    d = s.describe()
    assert d["method"] == "tram_random" and d["kl_max"] == 2.0 and d["freq"] == 0.25
    assert d["agent"] == 2 and d["iterations"] == {"expand": 8, "bisect": 12}
