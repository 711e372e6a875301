"""QMIX / VDN learners, gradient attacks and the policy regulariser on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.learners.collect import collect_episodes, evaluate_greedy
from policies.learners.episode_buffer import EpisodeBuffer
from policies.observation.fgsm import fgsm
from policies.observation.pgd import pgd
from policies.observation.policy_regularisation import hinge
from policies.teams.qmix import QMixer
from policies.teams.rnn_agent import QTeam, RNNAgent, agent_input_dim, build_inputs
from policies.learners.train_defender import (
    DefenderTrainConfig,
    DefenderTrainError,
    train_defender,
)
from policies.teams.networks import load_defender, load_team
from policies.teams.vdn import VDNMixer
from tests.toy_envs import CueMatch

B, N, OBS, A, S = 5, 3, 7, 4, 6


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny networks: intra-op threads only add contention on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_team(seed=0):
    torch.manual_seed(seed)
    agent = RNNAgent(agent_input_dim(OBS, A, N), A, hidden=16)
    return QTeam(agent, N, A)


def toy_cfg(**kw):
    base = dict(
        scenario="cue_match", steps=2000, envs=8, eps_anneal=800, batch=16,
        target_update=40, test_every=1000, test_episodes=64, seed=3,
    )
    base.update(kw)
    return DefenderTrainConfig(**base)


def test_shapes():
    team = small_team()
    obs = torch.randn(B, N, OBS)
    last = torch.zeros(B, N, A)
    assert build_inputs(obs, last).shape == (B, N, OBS + A + N)
    q, h = team.q_values(obs, team.initial_state(B), torch.tensor([[0, -1, 2]] * B))
    assert q.shape == (B, N, A) and h.shape == (B, N, 16)
    assert dict(team.agent.named_children()).keys() == {"fc1", "rnn", "fc2"}
    qs, states = torch.randn(B, 9, N), torch.randn(B, 9, S)
    assert QMixer(N, S).forward(qs, states).shape == (B, 9, 1)
    assert VDNMixer()(qs, states).shape == (B, 9, 1)


def test_mixer_monotonic():
    torch.manual_seed(1)
    mixer = QMixer(N, S)
    qs = (torch.randn(256, N) * 5).requires_grad_(True)
    q_tot = mixer(qs, torch.randn(256, S) * 3)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all() and (grad > 0).any()


def test_episode_buffer_masks():
    env = CueMatch(4)
    batch, stats = collect_episodes(env, QTeam(RNNAgent(agent_input_dim(3, 3, 2), 3), 2, 3), 1.0,
                                    torch.Generator().manual_seed(0), seed=0)
    assert batch["filled"].all() and batch["terminated"][:, -1].all()
    assert not batch["terminated"][:, :-1].any() and stats.steps == 20
    assert (batch["actions"] != 2).all()  # never an unavailable action
    buf = EpisodeBuffer(6, 5, 2, 3, 3, 3)
    buf.insert(batch)
    buf.insert(batch)
    assert buf.size == 6 and buf.sample(3)["obs"].shape == (3, 6, 2, 3)


@pytest.mark.parametrize("algo", ["qmix", "vdn"])
def test_learns_toy_task_beyond_random(algo):
    # Measured: with these settings 7 of 8 seeds solve the task within 2000 steps for either
    # algorithm; the other stays in the miscoordination trap (right on one cue only, as both
    # agents must explore the other cue's action at once).
    env = CueMatch(256)
    random_team = QTeam(RNNAgent(agent_input_dim(3, 3, 2), 3), 2, 3)
    _, rnd = collect_episodes(env, random_team, 1.0, torch.Generator().manual_seed(0), seed=11)
    res = train_defender(toy_cfg(algo=algo), make_env=CueMatch)
    final = res.provenance["final_test_return"]
    # Random play scores 1.25 of a possible 5 on average.
    assert rnd.mean_return < 1.6
    assert final >= 4.5, res.provenance["curve"]
    assert res.provenance["steps"] >= 2000 and not res.partial


def test_same_seed_same_weights():
    a = train_defender(toy_cfg(steps=400, test_every=10_000), make_env=CueMatch)
    b = train_defender(toy_cfg(steps=400, test_every=10_000), make_env=CueMatch)
    c = train_defender(toy_cfg(steps=400, test_every=10_000, seed=4), make_env=CueMatch)
    assert a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not all(np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)


def test_should_stop_gives_partial_and_progress():
    seen = []
    res = train_defender(
        toy_cfg(steps=10_000), on_progress=seen.append,
        should_stop=lambda: len(seen) >= 3, make_env=CueMatch,
    )
    assert res.partial and res.provenance["steps"] < 10_000
    assert {"steps", "epsilon", "loss", "test_return", "test_win", "steps_per_s"} <= seen[-1].keys()


def test_robust_variants_run():
    clean = train_defender(toy_cfg(steps=300, test_every=10_000), make_env=CueMatch)
    adv = train_defender(toy_cfg(steps=300, adv="fgsm", adv_targets=[0]), make_env=CueMatch)
    reg = train_defender(toy_cfg(steps=300, reg="policy", init=clean.weights), make_env=CueMatch)
    for r in (adv, reg):
        assert all(np.isfinite(v).all() for v in r.weights.values())
    assert reg.provenance["initialised_from_weights"]
    with pytest.raises(DefenderTrainError):
        train_defender(toy_cfg(algo="dqn"), make_env=CueMatch)


def test_perturbation_hook_is_reset_and_used_in_training_only():
    class Shift:
        def __init__(self):
            self.resets, self.calls = [], 0

        def reset(self, B):
            self.resets.append(B)

        def __call__(self, q_fn, obs, avail):
            self.calls += 1
            return obs + 0.1

    hook = Shift()
    train_defender(toy_cfg(steps=200, envs=4, test_episodes=16), perturb=hook, make_env=CueMatch)
    assert hook.resets == [4] * 10 and hook.calls == 10 * 6  # 5 steps + the final observation
    with pytest.raises(DefenderTrainError):
        train_defender(toy_cfg(adv="fgsm"), perturb=hook, make_env=CueMatch)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_stay_in_ball_and_touch_masked_agents_only(attack, norm):
    team = small_team()
    torch.manual_seed(2)
    obs = torch.randn(64, N, OBS)
    q_fn = team.q_fn(team.initial_state(64))
    mask = torch.tensor([True, False, True])
    eps = 0.3
    if attack == "fgsm":
        adv = fgsm(q_fn, obs, eps, norm=norm, agent_mask=mask)
    else:
        adv = pgd(q_fn, obs, eps, steps=5, step_size=0.1, norm=norm, random_start=True,
                  agent_mask=mask, generator=torch.Generator().manual_seed(0))
    delta = adv - obs
    size = delta.abs().amax(-1) if norm == "linf" else delta.norm(dim=-1)
    assert (size <= eps + 1e-5).all()
    assert (delta[:, 1] == 0).all() and (size[:, [0, 2]] > 0).all()
    assert not adv.requires_grad

    def greedy_prob(o):
        q = q_fn(o).detach()
        u = q_fn(obs).detach().argmax(-1, keepdim=True)
        return torch.softmax(q, -1).gather(-1, u).squeeze(-1)[:, [0, 2]].mean()

    assert greedy_prob(adv) < greedy_prob(obs)


def test_attack_batch_mask_per_row():
    team = small_team()
    obs = torch.randn(4, N, OBS)
    mask = torch.zeros(4, N, dtype=torch.bool)
    mask[1, 2] = True
    adv = fgsm(team.q_fn(team.initial_state(4)), obs, 0.1, agent_mask=mask)
    changed = (adv != obs).any(-1)
    assert changed.tolist() == mask.tolist()


def test_hinge_matches_hand_computation():
    q = torch.tensor([[[1.0, 3.0, 2.0], [5.0, 0.0, -20.0]]])  # [1, 2, 3]
    a_star = torch.tensor([[2, 0]])
    # agent 0: max_{a≠2} = 3, gap 3 − 2 = 1; agent 1: max_{a≠0} = 0, gap −5 → max(−5, −4) = −4
    assert torch.allclose(hinge(q, a_star, c=4.0), torch.tensor([1.0 - 4.0]))
    avail = torch.tensor([[[True, False, True], [True, True, True]]])
    # with action 1 unavailable to agent 0: max_{a≠2} = 1, gap −1
    assert torch.allclose(hinge(q, a_star, c=4.0, avail=avail), torch.tensor([-1.0 - 4.0]))


def test_load_defender_round_trip():
    res = train_defender(toy_cfg(steps=200, test_every=10_000), make_env=CueMatch)
    assert {"agent.fc1.weight", "agent.rnn.weight_hh", "mixer.hyper_w_1.0.weight", "mixer.V.2.bias"} <= res.weights.keys()
    agent, mixer = load_defender(res.config, res.weights)
    agent2, mixer2 = load_defender(res.config, {k: v.copy() for k, v in res.weights.items()})
    team, team2 = QTeam(agent, 2, 3), load_team(res.config, res.weights)
    env = CueMatch(8)
    ts = env.reset(0)
    h = team.initial_state(8)
    q1, _ = team.q_values(ts.obs, h)
    q2, _ = team2.q_values(ts.obs, h)
    assert torch.equal(q1, q2)
    st = torch.randn(8, 3)
    assert torch.equal(mixer(q1.max(-1).values, st), mixer2(q1.max(-1).values, st))
    assert evaluate_greedy(env, team2, seed=0).returns.shape == (8,)
    bad = dict(res.weights)
    bad.pop("agent.fc2.bias")
    with pytest.raises(DefenderTrainError):
        load_defender(res.config, bad)


def test_collect_stores_what_the_agents_saw():
    env = CueMatch(4)
    team = QTeam(RNNAgent(agent_input_dim(3, 3, 2), 3), 2, 3)
    seen = []

    def perturb(q_fn, obs, avail):
        adv = fgsm(q_fn, obs, 0.25, avail=avail)
        seen.append(adv)
        return adv

    batch, _ = collect_episodes(env, team, 0.0, seed=0, perturb=perturb)
    assert torch.equal(batch["obs"], torch.stack(seen, 1))  # 5 steps + the final observation
    # the cue one-hot entries are 0 or 1; every stored one sits exactly ε = 0.25 away
    off = (batch["obs"] - batch["obs"].round()).abs()
    assert torch.allclose(off[..., :2], torch.full_like(off[..., :2], 0.25))
