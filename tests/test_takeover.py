"""The agent surface: hijacked teammates in the engine, the takeover attackers and their
training, adversarial retraining. Tiny budgets throughout; every check is on the CPU, where
the same seed gives the same result."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from arena.rollout import episode_seeds, greedy, play
from arena.scenarios import make, spec
from policies.agent.takeover import TakeoverRandom
from policies.agent.takeover_ppo import TakeoverPolicy, in_match, takeover_config
from policies.agent.train_takeover import TakeoverTrainConfig, train_takeover
from policies.learners.train_defender import untrained_team
from policies.observation.train_attacker import load_victims


def _team(scenario="3m", seed=0):
    cfg, w = untrained_team("qmix", scenario, seed)
    return (cfg, w), load_victims([(cfg, w)], spec(scenario), torch.device("cpu"))


class _Recorder:
    """Records what the engine hands to the environment."""

    def __init__(self, env):
        self.env, self.steps = env, []
        self.B, self.spec, self.device = env.B, env.spec, env.device

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, *a, **k):
        self.ts = self.env.reset(*a, **k)
        return self.ts

    def step(self, actions):
        self.steps.append((self.ts, actions.clone()))
        self.ts = self.env.step(actions)
        return self.ts


class _Fixed:
    """Hijacks agent 1 and always picks its first available action; logs its choices."""

    surface = "agent"

    def __init__(self, illegal=False):
        self.illegal, self.chosen = illegal, []

    def reset(self, rows, device):
        pass

    def hijacked(self, n, rand):
        u = rand(n)
        mask = torch.zeros(u.shape, dtype=torch.bool)
        mask[:, 1] = True
        return mask

    def act(self, ctx):
        a = (~ctx.avail).long().argmax(-1) if self.illegal else ctx.avail.long().argmax(-1)
        self.chosen.append((ctx.rows.clone(), a.clone()))
        return a


def _play(team, attacker, B=6, scenario="3m", seed=3):
    env = _Recorder(make(scenario, B))
    seeds = episode_seeds(seed, 0, B)
    zeros = torch.zeros(B, dtype=torch.long)
    st = play(scenario, team, zeros, [attacker], zeros, seeds, env=env)
    return st, env


def test_hijacked_agents_play_the_attackers_legal_actions():
    _, team = _team()
    att = _Fixed()
    _, env = _play(team, att)
    assert len(att.chosen) == len(env.steps)
    for (ts, actions), (rows, chosen) in zip(env.steps, att.chosen):
        live = (~ts.done).nonzero().flatten()
        assert torch.equal(rows, live)
        assert torch.equal(actions[rows, 1], chosen[:, 1])
        assert bool(ts.avail[rows, 1].gather(-1, chosen[:, 1:2]).all())


def test_the_other_agents_act_as_without_the_attack_given_the_same_observations():
    _, team = _team()
    for attacker in (_Fixed(), TakeoverRandom({"targets": 1}, 3)):
        _, env = _play(team, attacker)
        B, n, A = env.B, env.spec.n_agents, env.spec.n_actions
        hidden, last = team.initial_state(B, "cpu"), torch.zeros(B, n, A)
        member = torch.zeros(B, dtype=torch.long)
        changed = 0
        for ts, actions in env.steps:
            q, hidden = team.q_values(ts.obs, hidden, last, member)
            own = greedy(q, ts.avail)
            live = ~ts.done
            differs = (own != actions) & live.unsqueeze(1)
            assert int(differs.sum(1).max()) <= 1  # one hijacked agent per episode at most
            changed += int(differs.sum())
            last = F.one_hot(actions, A).float()
        assert changed > 0  # the attack did act


def test_an_unavailable_action_is_refused():
    _, team = _team()
    with pytest.raises(ValueError, match="unavailable action"):
        _play(team, _Fixed(illegal=True))


def test_takeover_random_lowers_a_trained_teams_return_and_costs_its_hijacked_count():
    # any team: the cost is the number of hijacked agents, and the draw is per episode
    _, team = _team()
    st, _ = _play(team, TakeoverRandom({"targets": 2}, 3), B=8)
    assert torch.allclose(st.cost, torch.full((8,), 2.0))


@pytest.mark.parametrize("kind", ["random", "learned"])
def test_batched_equals_sequential(kind):
    _, team = _team()
    sp = spec("3m")
    if kind == "random":
        att = TakeoverRandom({"targets": 1}, 3)
    else:
        torch.manual_seed(1)
        att = in_match(TakeoverPolicy(takeover_config(sp)).eval())
    B = 5
    seeds = episode_seeds(11, 0, B)
    zeros = torch.zeros(B, dtype=torch.long)
    batch = play("3m", team, zeros, [att], zeros, seeds, attack_salts=[7])
    for b in range(B):
        one = play("3m", team, zeros[:1], [att], zeros[:1], seeds[b:b + 1], attack_salts=[7])
        assert float(one.returns[0]) == float(batch.returns[b])
        assert int(one.lengths[0]) == int(batch.lengths[b])


def _tiny(algo, **kw):
    return TakeoverTrainConfig(algo=algo, scenario="3m", steps=600, envs=8, seed=4,
                               eval_episodes=4, **kw)


def test_eta_zero_trains_exactly_as_plain_ppo():
    victims, _ = _team()
    ppo = train_takeover(_tiny("takeover_ppo"), [victims])
    dev = train_takeover(_tiny("takeover_dev", eta=0.0), [victims])
    assert ppo.provenance["iterations"] >= 2
    shared = [k for k in ppo.weights if k.startswith(("policy.", "value."))]
    assert shared and set(ppo.weights) == set(shared)
    for k in shared:
        assert (ppo.weights[k] == dev.weights[k]).all(), k
    assert any(k.startswith("victims.") for k in dev.weights)
    # and the deviation term does change training when it is weighted
    dev1 = train_takeover(_tiny("takeover_dev", eta=1.0), [victims])
    assert any((dev1.weights[k] != ppo.weights[k]).any() for k in shared)


def test_training_is_deterministic_on_the_cpu():
    victims, _ = _team()
    a = train_takeover(_tiny("takeover_dev"), [victims])
    b = train_takeover(_tiny("takeover_dev"), [victims])
    assert all((a.weights[k] == b.weights[k]).all() for k in a.weights)
    assert a.provenance["final_attacked_return"] == b.provenance["final_attacked_return"]


def test_continued_training_goes_on_from_the_checkpoint():
    victims, _ = _team()
    first = train_takeover(_tiny("takeover_ppo"), [victims])
    more = train_takeover(_tiny("takeover_ppo"), [victims], init=first.checkpoint)
    assert more.provenance["start_weights_id"] == first.provenance["weights_id"]
    assert more.checkpoint.steps == first.checkpoint.steps + more.provenance["steps"]


def test_gumbel_max_draws_from_the_masked_softmax():
    from policies.agent.takeover_ppo import gumbel_max

    logits = torch.tensor([0.0, 1.0, -1e8, 0.5])
    u = torch.rand(200_000, 4, generator=torch.Generator().manual_seed(0))
    draws = gumbel_max(logits.expand(len(u), -1), u)
    freq = torch.bincount(draws, minlength=4).float() / len(u)
    assert freq[2] == 0.0
    assert torch.allclose(freq, torch.softmax(logits, 0), atol=0.005)
