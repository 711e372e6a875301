"""Checks shared by the tests of the communicating teams (commnet, tarmac, ndq)."""

from __future__ import annotations

import torch

from arena.scenarios import make
from policies.learners.collect import evaluate_greedy
from policies.learners.train_defender import DefenderTrainConfig, train_defender
from policies.teams.networks import load_team
from policies.teams.rnn_agent import QTeam
from tests.toy_envs import CueRelay


class Silenced(QTeam):
    """The same team with every message zeroed before it is read."""

    def q_values(self, obs, hidden, last_action=None, avail=None):
        hidden = self.agent.with_messages(hidden, torch.zeros_like(self.agent.messages(hidden)))
        return super().q_values(obs, hidden, last_action, avail)


def assert_stacked_equals_alone(team, alone: list, member: torch.Tensor, steps: int,
                                scenario: str = "pp7", seed: int = 3) -> None:
    """Row r of the stacked `team`, played by member[r], gives the Q-values and the state of
    that member's own team `alone[member[r]]` played by itself, step after step."""
    R = len(member)
    env = make(scenario, R)
    n, A = env.spec.n_agents, env.spec.n_actions
    ts = env.reset(seed)
    h = team.initial_state(R)
    hs = [a.initial_state(1).expand(R, -1, -1).clone() for a in alone]
    last = torch.zeros(R, n, A)
    for _ in range(steps):
        q, h = team.q_values(ts.obs, h, last, member)
        for r in range(R):
            m = int(member[r])
            q_ref, h_ref = alone[m].q_values(ts.obs[r:r + 1], hs[m][r:r + 1], last[r:r + 1])
            hs[m][r] = h_ref[0]
            torch.testing.assert_close(q[r], q_ref[0], atol=1e-5, rtol=1e-5)
            W = alone[m].agent.hidden
            torch.testing.assert_close(h[r, :, :W], h_ref[0], atol=1e-5, rtol=1e-5)
        actions = QTeam.act_greedy(q, ts.avail)
        last = torch.nn.functional.one_hot(actions, A).float()
        ts = env.step(actions)


def assert_messages_carry_the_cue(algo: str, mute: str, steps: int, make_env=CueRelay,
                                  **cfg) -> None:
    """On CueRelay (agent 1 must play a cue only agent 0 sees: chance 2.5 of 5, messages one
    step late allow 4.5) a team of `algo` learns the cue, a `mute` team without messages
    stays at chance, and the learned team falls back to chance with its messages zeroed."""
    base = dict(scenario="cue_relay", steps=steps, envs=8, eps_anneal=1200, lr=2e-3, batch=16,
                target_update=40, test_every=10**6, test_episodes=256, seed=0,
                test_attacks=False, hidden=32, msg_dim=8)
    base.update(cfg)
    talk = train_defender(DefenderTrainConfig(algo=algo, **base), make_env=make_env)
    silent = train_defender(DefenderTrainConfig(algo=mute, **base), make_env=make_env)
    with_msgs = talk.provenance["final_test_return"]
    without = silent.provenance["final_test_return"]
    assert with_msgs > 4.2 and without < 2.9 and with_msgs > without + 1.3, (with_msgs, without)
    team = load_team(talk.config, talk.weights)
    env = make_env(256)
    assert evaluate_greedy(env, team, seed=9).mean_return > 4.2
    silenced = evaluate_greedy(env, Silenced(team.agent, 2, 2), seed=9).mean_return
    assert silenced < 2.9, silenced
