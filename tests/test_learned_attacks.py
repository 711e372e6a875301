"""Learned observation attackers (ATLA, PA-AD) and their PPO trainer.

The victim of the training tests is a hand-written team on `CueMatch` (tests/toy_envs.py):
each agent plays the action of the larger of the two cue features, so an observation
perturbation of L∞ radius ε > 0.5 can flip its choice, while uniform noise of that radius
rarely does. A learned attacker must find the flip; random noise is the baseline it must beat.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arena.rollout import episode_seeds, play
from arena.scenarios import REGISTRY
from policies.observation.atla import atla_config
from policies.kinds import get_kind
from policies.observation.learned import LEARNED_ATTACKERS
from policies.observation.attacks import RandomAttack
from policies.observation.pa_ad import pa_ad_config, targeted_step
from policies.learners.ppo import PPOConfig, clipped_policy_loss, gae
from policies.teams.rnn_agent import RNNAgent, agent_input_dim
from policies.teams.stacked_team import StackedTeam
from policies.observation.train_attacker import (
    AttackerTrainConfig,
    AttackerTrainError,
    load_victims,
    make_attacker,
    train_attacker,
)
from tests.toy_envs import CueMatch

EPS = 0.75


def cue_victim(k: float = 2.0) -> tuple[dict, dict]:
    """A VDN team record whose agents play argmax(cue): Q_a = tanh(relu(k·(c_a − c_{1−a})))."""
    n, A, o, H = 2, 3, 3, 2
    config = {"algo": "vdn", "obs_dim": o, "n_agents": n, "n_actions": A, "state_dim": 3, "hidden": H}
    d = agent_input_dim(o, A, n)
    fc1 = np.zeros((H, d), np.float32)
    fc1[0, :2], fc1[1, :2] = (k, -k), (-k, k)
    w_ih = np.zeros((3 * H, H), np.float32)
    w_ih[2 * H:] = np.eye(H)  # candidate gate n = tanh(x)
    b_ih = np.zeros(3 * H, np.float32)
    b_ih[H:2 * H] = -30.0  # update gate z ≈ 0: h' = n, no memory
    fc2 = np.zeros((A, H), np.float32)
    fc2[0, 0] = fc2[1, 1] = 1.0
    weights = {
        "agent.fc1.weight": fc1, "agent.fc1.bias": np.zeros(H, np.float32),
        "agent.rnn.weight_ih": w_ih, "agent.rnn.weight_hh": np.zeros((3 * H, H), np.float32),
        "agent.rnn.bias_ih": b_ih, "agent.rnn.bias_hh": np.zeros(3 * H, np.float32),
        "agent.fc2.weight": fc2, "agent.fc2.bias": np.zeros(A, np.float32),
    }
    return config, weights


def train_cfg(algo: str, steps: int = 64 * 5 * 20, seed: int = 0, **kw) -> AttackerTrainConfig:
    return AttackerTrainConfig(algo=algo, scenario="cue_match", steps=steps, envs=64, seed=seed,
                               eps=EPS, hidden=32, eval_episodes=64, ppo=PPOConfig(lr=1e-3), **kw)


def cue_env(batch_size: int) -> CueMatch:
    return CueMatch(batch_size)


@pytest.fixture(scope="module")
def trained():
    return {algo: train_attacker(train_cfg(algo), [cue_victim()], make_env=cue_env)
            for algo in ("atla", "pa_ad")}


def random_victim(o=5, n=3, A=4, H=8, seed=0):
    torch.manual_seed(seed)
    agent = RNNAgent(agent_input_dim(o, A, n), A, H)
    with torch.no_grad():  # spread the Q-values as a trained team's are, not near-uniform
        agent.fc1.weight.mul_(3.0)
        agent.fc2.weight.mul_(10.0)
    return StackedTeam([agent], n, A)


def spec_of(o=5, n=3, A=4, s=7):
    return SimpleNamespace(name="toy", obs_dim=o, n_agents=n, n_actions=A, state_dim=s)


# -- PPO pieces -----------------------------------------------------------------------------------
def test_gae_matches_hand_computation():
    g, lam = 0.9, 0.5
    r = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])  # [T=3, K=2]
    v = torch.tensor([[0.5, 1.0], [0.2, 0.4], [1.0, 0.0]])
    alive = torch.tensor([[True, True], [True, True], [True, False]])  # episode 1 ends at t=1
    adv, ret = gae(r, v, alive, g, lam)
    # episode 0: δ2 = 3 − 1; δ1 = 0 + 0.9·1 − 0.2; δ0 = 1 + 0.9·0.2 − 0.5
    d2, d1, d0 = 2.0, 0.7, 0.68
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    # episode 1: δ1 = 1 − 0.4 (bootstrap 0 at the end); δ0 = 2 + 0.9·0.4 − 1
    b1 = 0.6
    b0 = 1.36 + g * lam * b1
    want = torch.tensor([[a0, b0], [a1, b1], [a2, 0.0]])
    assert torch.allclose(adv, want, atol=1e-6)
    assert torch.allclose(ret, (want + v) * alive, atol=1e-6)


def test_clipped_loss_matches_hand_computation():
    old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.7]))
    adv = torch.tensor([1.0, 1.0, -2.0, -1.0])
    # per sample −min(ρA, clip(ρ)A): 1.5·1 → 1.2 (clipped); 0.5·1 → 0.5; 1.1·−2 → −2.2;
    # 0.7·−1 → −0.8 (clipped)
    want = -torch.tensor([1.2, 0.5, -2.2, -0.8]).mean()
    assert torch.allclose(clipped_policy_loss(logp, old, adv, 0.2), want, atol=1e-6)


# -- perturbations --------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["atla", "pa_ad"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_perturbation_in_ball_and_only_targets(algo, norm, stochastic):
    sp = spec_of()
    make_cfg = atla_config if algo == "atla" else pa_ad_config
    attacker = make_attacker(make_cfg(sp, 0.3, norm, [0, 2], hidden=16))
    with torch.no_grad():
        attacker.policy.out.weight.mul_(1000.0)  # saturate the squashing: test the ball's edge
    team = random_victim()
    R = 64
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(R, 3, 5, generator=g)
    avail = torch.rand(R, 3, 4, generator=g) < 0.7
    avail[..., 0] = True
    hidden, last = team.initial_state(R), torch.zeros(R, 3, 4)
    q_fn = lambda o: team.q_values(o, hidden, last, torch.zeros(R, dtype=torch.long))[0]  # noqa: E731
    seen, sample = attacker.act(obs, q_fn, avail, torch.randn(R, 7), g if stochastic else None)
    delta = seen - obs  # [R, n, o]
    size = delta.abs().amax(-1) if norm == "linf" else delta.norm(dim=-1)
    assert seen.shape == obs.shape
    assert bool((size[:, [0, 2]] <= 0.3 + 1e-5).all())
    assert float(size[:, [0, 2]].mean()) > 0.05  # the attack does move the observation
    assert bool((delta[:, 1] == 0).all())
    assert sample["logp"].shape == (R, 2)
    if algo == "pa_ad":
        chosen = sample["avail"].gather(-1, sample["action"].unsqueeze(-1))
        assert bool(chosen.all())  # the director never targets an unavailable action
    if stochastic:
        assert sample["value"].shape == (R, 2)


def test_pa_ad_actor_raises_target_probability():
    team = random_victim(seed=3)
    R = 256
    g = torch.Generator().manual_seed(2)
    obs = torch.randn(R, 3, 5, generator=g)
    hidden, last = team.initial_state(R), torch.zeros(R, 3, 4)
    q_fn = lambda o: team.q_values(o, hidden, last, torch.zeros(R, dtype=torch.long))[0]  # noqa: E731
    target = torch.randint(0, 4, (R, 3), generator=g)
    idx = torch.arange(3)
    with torch.no_grad():
        before = q_fn(obs).softmax(-1).gather(-1, target.unsqueeze(-1)).mean()
    for norm in ("linf", "l2"):
        for steps in (1, 5):
            seen = targeted_step(q_fn, obs, target, idx, 0.2, norm, steps)
            with torch.no_grad():
                after = q_fn(seen).softmax(-1).gather(-1, target.unsqueeze(-1)).mean()
            assert float(after) > float(before) + 0.01, (norm, steps, float(before), float(after))


# -- training against a fixed victim ----------------------------------------------------------------
@pytest.mark.parametrize("algo", ["atla", "pa_ad"])
def test_training_lowers_return_below_random_noise(trained, algo):
    res = trained[algo]
    p = res.provenance
    sp = CueMatch.spec
    victim = load_victims([cue_victim()], sp, "cpu")
    seeds = episode_seeds(p["eval_seed"], 0, p["eval_episodes"])
    member = torch.zeros(len(seeds), dtype=torch.long)
    noise = RandomAttack({"eps": EPS, "norm": "linf", "targets": "all"}, sp.n_agents)
    noisy = play("cue_match", victim, member, [noise], member, seeds, env=CueMatch(len(seeds)))
    noisy_return = float(noisy.returns.mean())
    assert p["final_clean_return"] == pytest.approx(5.0)  # the victim is perfect without attack
    assert noisy_return > 3.5  # uniform noise of this radius rarely flips a choice
    attacked = p["final_attacked_return"]
    assert attacked < noisy_return - 2.0, (algo, attacked, noisy_return)
    assert p["curve"][-1]["victim_return"] < p["curve"][0]["victim_return"]


@pytest.mark.parametrize("algo", ["atla", "pa_ad"])
def test_builder_round_trip_and_arena_play(trained, algo, monkeypatch):
    res = trained[algo]
    config = json.loads(json.dumps(res.config))  # what the league stores
    weights = {k: np.array(v) for k, v in res.weights.items()}
    assert all(v.dtype == np.float32 for v in weights.values())
    get_kind(algo).make_config(config)  # the kind declares every stored field
    rec = SimpleNamespace(config=config, weights=weights, ref=f"{algo}@v1")
    built = LEARNED_ATTACKERS[algo](rec, CueMatch.spec, "cpu")
    direct = make_attacker(res.config).load_weights(res.weights).eval()
    # the match engine with the built attacker reproduces the trainer's own evaluation
    monkeypatch.setitem(REGISTRY, "cue_match", ("tests.toy_envs", "CueMatch", {}))
    p = res.provenance
    seeds = episode_seeds(p["eval_seed"], 0, p["eval_episodes"])
    team = load_victims([cue_victim()], CueMatch.spec, "cpu")
    zeros = torch.zeros(len(seeds), dtype=torch.long)
    st = play("cue_match", team, zeros, [built], zeros, seeds)
    assert float(st.returns.mean()) == pytest.approx(p["final_attacked_return"])
    obs = torch.rand(16, 2, 3)
    avail = torch.ones(16, 2, 3, dtype=torch.bool)
    avail[..., 2] = False
    h, last = team.initial_state(16), torch.zeros(16, 2, 3)
    q_fn = lambda o: team.q_values(o, h, last, zeros[:16])[0]  # noqa: E731
    ctx = SimpleNamespace(q_fn=q_fn, avail=avail, state=torch.rand(16, 3))
    assert torch.equal(built.perturb(obs, ctx), direct.perturb(obs, ctx))


def test_builder_rejects_wrong_shapes(trained):
    from policies.errors import PolicyError

    rec = SimpleNamespace(config=trained["atla"].config, weights=trained["atla"].weights, ref="a@v1")
    with pytest.raises(PolicyError, match="scenario toy"):
        LEARNED_ATTACKERS["atla"](rec, spec_of(), "cpu")
    bad = SimpleNamespace(config=rec.config, weights={"policy.fc1.weight": np.zeros(1)}, ref="a@v1")
    with pytest.raises(PolicyError, match="do not fit"):
        LEARNED_ATTACKERS["atla"](bad, CueMatch.spec, "cpu")


@pytest.mark.parametrize("algo", ["atla", "pa_ad"])
def test_same_seed_same_weights(algo):
    def cfg(seed):
        return AttackerTrainConfig(algo=algo, scenario="cue_match", steps=64 * 5 * 2, envs=64,
                                   seed=seed, eps=EPS, hidden=16, eval_episodes=8)

    runs = [train_attacker(cfg(s), [cue_victim()], make_env=cue_env) for s in (5, 5, 6)]
    a, b, c = (r.weights for r in runs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_victim_mixture_and_errors():
    cfg = AttackerTrainConfig(algo="atla", scenario="cue_match", steps=64 * 5, envs=64, eps=EPS,
                              hidden=16, eval_episodes=16, trained_against=["d@v1", "d@v2"])
    res = train_attacker(cfg, [cue_victim(2.0), cue_victim(3.0)], victim_weights=[0.5, 0.5],
                         make_env=cue_env)
    assert res.provenance["trained_against"] == ["d@v1", "d@v2"]
    assert res.provenance["steps"] >= 64 * 5
    json.dumps(res.provenance)
    wrong = ({**cue_victim()[0], "obs_dim": 4}, cue_victim()[1])
    with pytest.raises(AttackerTrainError, match="does not fit"):
        train_attacker(cfg, [wrong], make_env=cue_env)
    with pytest.raises(AttackerTrainError, match="unknown attacker algo"):
        train_attacker(AttackerTrainConfig(algo="nope"), [cue_victim()], make_env=cue_env)


def test_league_fill_with_learned_attackers(trained, tmp_path, monkeypatch):
    """Stored as league records, the trained attackers play in the payoff filler."""
    from policies.evaluate import fill
    from store import NO_ATTACK, League

    monkeypatch.setitem(REGISTRY, "cue_match", ("tests.toy_envs", "CueMatch", {}))
    path = tmp_path / "league.h5"
    League.create(path)
    config, weights = cue_victim()
    with League(path, "a", durable=False) as lg:
        lg.add_policy("cue", "defender", "vdn", "cue_match", config, weights, {})
        for algo, res in trained.items():
            lg.add_policy(algo, "attacker", algo, "cue_match", res.config, res.weights, res.provenance)
    out = fill(lambda mode: League(path, mode, durable=False), "cue_match", ["cue@v1"],
               [NO_ATTACK, "atla@v1", "pa_ad@v1"], episodes=32)
    clean, atla, pa_ad = out.table.mean[0]
    assert clean == pytest.approx(5.0)
    assert atla < 2.0 and pa_ad < 2.0, (atla, pa_ad)
