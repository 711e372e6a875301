"""PyMARL / EPyMARL interoperability: import any agent.th (+ mixer.th), export, Q-values, fine-tune.

Long because the PyMARL and EPyMARL reference modules live here beside the tests that use them,
so that nothing outside the tests imports them.

The reference modules below re-create PyMARL's `RNNAgent` and `QMixer` (Samvelyan et al.,
"The StarCraft Multi-Agent Challenge", 2019) and EPyMARL's agent with `use_rnn`
(Papoudakis et al., NeurIPS 2021) with their exact parameter names, and PyMARL's
`BasicMAC._build_inputs` (observation, then last action, then agent id).
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from click.testing import CliRunner

from arena.core import ScenarioSpec
from commands.common import Ctx
from policies.build import base_provenance
from policies.interop.layout import agent_layout
from policies.interop.team_import import import_team
from policies.kinds import KindError
from policies.learners.train_defender import DefenderTrainConfig, DefenderTrainError, train_defender
from policies.teams.networks import load_defender, load_team
from policies.teams.rnn_agent import QTeam, onehot_actions
from policies.teams.stacked_team import StackedTeam
from store import League
from tests.toy_envs import CueMatch


# -- PyMARL / EPyMARL reference modules -----------------------------------------------------
class PymarlRNNAgent(nn.Module):
    def __init__(self, input_shape, args):
        super().__init__()
        self.args = args
        self.fc1 = nn.Linear(input_shape, args.rnn_hidden_dim)
        self.rnn = nn.GRUCell(args.rnn_hidden_dim, args.rnn_hidden_dim)
        self.fc2 = nn.Linear(args.rnn_hidden_dim, args.n_actions)

    def init_hidden(self):
        return self.fc1.weight.new(1, self.args.rnn_hidden_dim).zero_()

    def forward(self, inputs, hidden_state):
        x = F.relu(self.fc1(inputs))
        h_in = hidden_state.reshape(-1, self.args.rnn_hidden_dim)
        h = self.rnn(x, h_in)
        return self.fc2(h), h


class EpymarlRNNAgent(nn.Module):
    def __init__(self, input_shape, args):
        super().__init__()
        self.args = args
        self.fc1 = nn.Linear(input_shape, args.hidden_dim)
        if self.args.use_rnn:
            self.rnn = nn.GRUCell(args.hidden_dim, args.hidden_dim)
        else:
            self.rnn = nn.Linear(args.hidden_dim, args.hidden_dim)
        self.fc2 = nn.Linear(args.hidden_dim, args.n_actions)

    def init_hidden(self):
        return self.fc1.weight.new(1, self.args.hidden_dim).zero_()

    def forward(self, inputs, hidden_state):
        x = F.relu(self.fc1(inputs))
        h_in = hidden_state.reshape(-1, self.args.hidden_dim)
        if self.args.use_rnn:
            h = self.rnn(x, h_in)
        else:
            h = F.relu(self.rnn(x))
        return self.fc2(h), h


class PymarlQMixer(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.n_agents = args.n_agents
        self.state_dim = int(np.prod(args.state_shape))
        self.embed_dim = args.mixing_embed_dim
        if getattr(args, "hypernet_layers", 1) == 1:
            self.hyper_w_1 = nn.Linear(self.state_dim, self.embed_dim * self.n_agents)
            self.hyper_w_final = nn.Linear(self.state_dim, self.embed_dim)
        elif getattr(args, "hypernet_layers", 1) == 2:
            hypernet_embed = self.args.hypernet_embed
            self.hyper_w_1 = nn.Sequential(
                nn.Linear(self.state_dim, hypernet_embed), nn.ReLU(),
                nn.Linear(hypernet_embed, self.embed_dim * self.n_agents))
            self.hyper_w_final = nn.Sequential(
                nn.Linear(self.state_dim, hypernet_embed), nn.ReLU(),
                nn.Linear(hypernet_embed, self.embed_dim))
        self.hyper_b_1 = nn.Linear(self.state_dim, self.embed_dim)
        self.V = nn.Sequential(nn.Linear(self.state_dim, self.embed_dim), nn.ReLU(),
                               nn.Linear(self.embed_dim, 1))

    def forward(self, agent_qs, states):
        bs = agent_qs.size(0)
        states = states.reshape(-1, self.state_dim)
        agent_qs = agent_qs.view(-1, 1, self.n_agents)
        w1 = torch.abs(self.hyper_w_1(states))
        b1 = self.hyper_b_1(states)
        w1 = w1.view(-1, self.n_agents, self.embed_dim)
        b1 = b1.view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(agent_qs, w1) + b1)
        w_final = torch.abs(self.hyper_w_final(states)).view(-1, self.embed_dim, 1)
        v = self.V(states).view(-1, 1, 1)
        y = torch.bmm(hidden, w_final) + v
        return y.view(bs, -1, 1)


def pymarl_inputs(obs, last_onehot, args):
    """BasicMAC._build_inputs for one step: obs [B,n,o], last action one-hot [B,n,A]."""
    bs, n = obs.shape[:2]
    inputs = [obs]
    if args.obs_last_action:
        inputs.append(last_onehot)
    if args.obs_agent_id:
        inputs.append(torch.eye(n).unsqueeze(0).expand(bs, -1, -1))
    return torch.cat([x.reshape(bs * n, -1) for x in inputs], dim=1)


def pymarl_input_shape(obs_dim, args):
    return obs_dim + (args.n_actions if args.obs_last_action else 0) + (
        args.n_agents if args.obs_agent_id else 0)


def make_args(spec, hidden=16, last=True, ids=True, use_rnn=True, epymarl=False, layers=2,
              embed=8, hyper=24):
    return SimpleNamespace(rnn_hidden_dim=hidden, hidden_dim=hidden, use_rnn=use_rnn,
                           obs_last_action=last, obs_agent_id=ids, n_agents=spec.n_agents,
                           n_actions=spec.n_actions, state_shape=spec.state_dim,
                           mixing_embed_dim=embed, hypernet_layers=layers, hypernet_embed=hyper,
                           epymarl=epymarl)


def make_pymarl_team(spec, args, seed=0):
    torch.manual_seed(seed)
    cls = EpymarlRNNAgent if args.epymarl else PymarlRNNAgent
    agent = cls(pymarl_input_shape(spec.obs_dim, args), args)
    mixer = PymarlQMixer(args)
    return agent, mixer


# -- scenarios and command-line helpers ------------------------------------------------------
class SquareCue(CueMatch):
    """Shapes only: as many actions as agents, so one input extension could be either."""

    spec = dataclasses.replace(CueMatch.spec, name="square_cue", n_agents=3, n_actions=3,
                               obs_dim=4, state_dim=5)


@pytest.fixture(autouse=True)
def toy_scenarios(monkeypatch):
    from arena import scenarios

    monkeypatch.setitem(scenarios.REGISTRY, "cue_match", ("tests.toy_envs", "CueMatch", {}))
    monkeypatch.setitem(scenarios.REGISTRY, "square_cue", ("tests.test_interop", "SquareCue", {}))


def spec_of(name) -> ScenarioSpec:
    from arena.scenarios import spec

    return spec(name)


def export_group():
    from cli import ArenaGroup
    from commands import interop

    group = ArenaGroup()
    for cmd in interop.COMMANDS:
        group.add_command(cmd)
    return group


def run_export(league, args):
    ctx = Ctx(league=league, json=False, quiet=True, device="cpu", lock_timeout=5.0, debug=False)
    return CliRunner().invoke(export_group(), args, obj=ctx, catch_exceptions=False)


def store(path, name, kind, scenario, config, weights):
    if not path.exists():
        League.create(path)
    with League(path, "a") as lg:
        return lg.add_policy(name, "defender", kind, scenario, config, weights, base_provenance())


def save_team(tmp_path, agent, mixer=None, tag=""):
    torch.save(agent.state_dict(), tmp_path / f"agent{tag}.th")
    if mixer is not None:
        torch.save(mixer.state_dict(), tmp_path / f"mixer{tag}.th")
    return tmp_path / f"agent{tag}.th", (tmp_path / f"mixer{tag}.th" if mixer is not None else None)


def q_sequence(spec, ref_agent, args, team, steps=4, B=5, seed=1):
    """Q-values of the reference agent (PyMARL inputs) and of our team over a few steps."""
    gen = torch.Generator().manual_seed(seed)
    n, A = spec.n_agents, spec.n_actions
    h_ref = ref_agent.init_hidden().unsqueeze(0).expand(B, n, -1).reshape(B * n, -1)
    h = team.initial_state(B)
    last = torch.full((B, n), -1, dtype=torch.long)
    ours, theirs = [], []
    for _ in range(steps):
        obs = torch.randn(B, n, spec.obs_dim, generator=gen)
        with torch.no_grad():
            q_ref, h_ref = ref_agent(pymarl_inputs(obs, onehot_actions(last, A), args), h_ref)
            q, h = team.q_values(obs, h, last)
        theirs.append(q_ref.view(B, n, A))
        ours.append(q)
        last = torch.randint(0, A, (B, n), generator=gen)
    return torch.stack(ours), torch.stack(theirs)


# -- import → store → export → PyMARL, bit for bit -------------------------------------------
VARIANTS = [
    # (last action, agent id, epymarl, use_rnn, hidden, hypernet layers)
    (True, True, False, True, 64, 2),
    (True, False, False, True, 16, 1),
    (False, True, True, True, 24, 2),
    (False, False, True, False, 8, 1),
    (True, True, True, False, 32, 2),
]


@pytest.mark.parametrize("last,ids,epymarl,use_rnn,hidden,layers", VARIANTS)
def test_pymarl_round_trip_bit_identical(tmp_path, last, ids, epymarl, use_rnn, hidden, layers):
    spec = spec_of("3m")
    args = make_args(spec, hidden, last, ids, use_rnn, epymarl, layers, embed=12, hyper=20)
    agent, mixer = make_pymarl_team(spec, args)
    agent_th, mixer_th = save_team(tmp_path, agent, mixer)

    config, weights = import_team("qmix", "3m", agent_th, mixer_source=mixer_th)
    assert (config["obs_last_action"], config["obs_agent_id"], config["use_rnn"],
            config["hidden"], config["hypernet_layers"], config["embed"]) == (
        last, ids, use_rnn, hidden, layers, 12)
    assert "agent_only" not in config
    league = tmp_path / "l.h5"
    ref = store(league, "imp", "qmix", "3m", config, weights)
    with League(league, "r") as lg:
        rec = lg.get(ref)

    out = tmp_path / "out"
    res = run_export(league, ["export", "imp", "--format", "pymarl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fresh_agent, fresh_mixer = make_pymarl_team(spec, args, seed=99)
    fresh_agent.load_state_dict(torch.load(out / "agent.th", weights_only=True))
    fresh_mixer.load_state_dict(torch.load(out / "mixer.th", weights_only=True))
    for old, new in ((agent, fresh_agent), (mixer, fresh_mixer)):
        a, b = old.state_dict(), new.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    args_json = json.loads((out / "pymarl_args.json").read_text())
    assert args_json["obs_last_action"] == last and args_json["obs_agent_id"] == ids
    assert args_json["use_rnn"] == use_rnn and args_json["rnn_hidden_dim"] == hidden
    assert args_json["hypernet_layers"] == layers and args_json["mixing_embed_dim"] == 12

    # The stored team computes PyMARL's Q-values and Q_tot.
    ours, theirs = q_sequence(spec, agent, args, load_team(rec.config, rec.weights))
    assert torch.equal(ours, theirs)
    _, our_mixer = load_defender(rec.config, rec.weights)
    qs, states = torch.randn(6, 7, spec.n_agents), torch.randn(6, 7, spec.state_dim)
    with torch.no_grad():
        assert torch.allclose(our_mixer(qs, states), mixer(qs, states), atol=1e-6, rtol=0)

    # Stacked evaluation next to a team of today's layout gives each member's Q-values.
    from tests.helpers import random_team

    cfg0, w0 = random_team("qmix", "3m", 3)
    agents = [load_defender(rec.config, rec.weights)[0], load_defender(cfg0, w0)[0]]
    stacked = StackedTeam(agents, spec.n_agents, spec.n_actions)
    B = 6
    obs = torch.randn(B, spec.n_agents, spec.obs_dim)
    last_oh = onehot_actions(torch.randint(0, spec.n_actions, (B, spec.n_agents)), spec.n_actions)
    member = torch.tensor([0, 1, 0, 1, 1, 0])
    hidden_in = torch.randn(B, spec.n_agents, stacked.hidden) * 0.1
    with torch.no_grad():
        q, _ = stacked.q_values(obs, hidden_in, last_oh, member)
        for r in range(B):
            m = int(member[r])
            team = QTeam(agents[m], spec.n_agents, spec.n_actions)
            H = agents[m].hidden
            q_ref, _ = team.q_values(obs[r:r + 1], hidden_in[r:r + 1, :, :H], last_oh[r:r + 1])
            assert torch.allclose(q[r], q_ref[0], atol=1e-5), r


@pytest.mark.parametrize("last,ids", [(True, True), (True, False), (False, True), (False, False)])
def test_q_values_match_pymarl_for_every_input_layout(tmp_path, last, ids):
    spec = spec_of("pp7")
    args = make_args(spec, 16, last, ids)
    agent, _ = make_pymarl_team(spec, args, seed=5)
    agent_th, _ = save_team(tmp_path, agent)
    config, weights = import_team("vdn", "pp7", agent_th)
    assert (config["obs_last_action"], config["obs_agent_id"]) == (last, ids)
    assert "agent_only" not in config  # VDN's mixer has no parameters: the team is whole
    ours, theirs = q_sequence(spec, agent, args, load_team(config, weights), steps=5)
    assert torch.equal(ours, theirs)


def test_vdn_mixer_and_safetensors_round_trip(tmp_path):
    spec = spec_of("3m")
    args = make_args(spec, 16, last=False, ids=True, use_rnn=False, epymarl=True)
    agent, _ = make_pymarl_team(spec, args)
    agent_th, _ = save_team(tmp_path, agent)
    torch.save({}, tmp_path / "mixer.th")  # what PyMARL saves for VDN
    config, weights = import_team("vdn", "3m", agent_th, mixer_source=tmp_path / "mixer.th")
    league = tmp_path / "l.h5"
    store(league, "v", "vdn", "3m", config, weights)

    res = run_export(league, ["export", "v", "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert torch.load(tmp_path / "p" / "mixer.th", weights_only=True) == {}
    fresh, _ = make_pymarl_team(spec, args, seed=7)
    fresh.load_state_dict(torch.load(tmp_path / "p" / "agent.th", weights_only=True))
    for k, v in agent.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k])

    res = run_export(league, ["export", "v", "--format", "safetensors", "--out",
                              str(tmp_path / "s"), "--json"])
    assert res.exit_code == 0, res.output
    files = json.loads(res.output)["files"]
    assert [p.rsplit("/", 1)[-1] for p in files] == ["team.safetensors"]
    config2, weights2 = import_team("vdn", "3m", tmp_path / "s" / "team.safetensors")
    assert {k: config2[k] for k in ("obs_last_action", "obs_agent_id", "use_rnn", "hidden")} == {
        k: config[k] for k in ("obs_last_action", "obs_agent_id", "use_rnn", "hidden")}
    assert weights2.keys() == weights.keys()
    assert all(np.array_equal(weights[k], weights2[k]) for k in weights)

    again = run_export(league, ["export", "v", "--out", str(tmp_path / "p")])
    assert again.exit_code == 2 and "--force" in again.output
    forced = run_export(league, ["export", "v", "--out", str(tmp_path / "p"), "--force"])
    assert forced.exit_code == 0, forced.output


def test_safetensors_metadata_settles_an_ambiguous_layout(tmp_path):
    spec = spec_of("square_cue")
    args = make_args(spec, 8, last=False, ids=True)
    agent, _ = make_pymarl_team(spec, args)
    agent_th, _ = save_team(tmp_path, agent)
    config, weights = import_team("vdn", "square_cue", agent_th,
                                  params={"obs_last_action": "false", "obs_agent_id": "true"})
    league = tmp_path / "l.h5"
    store(league, "sq", "vdn", "square_cue", config, weights)
    assert run_export(league, ["export", "sq", "--format", "safetensors", "--out",
                               str(tmp_path / "s")]).exit_code == 0
    config2, _ = import_team("vdn", "square_cue", tmp_path / "s" / "team.safetensors")
    assert (config2["obs_last_action"], config2["obs_agent_id"]) == (False, True)


# -- errors: one line each -------------------------------------------------------------------
@pytest.mark.parametrize("last,ids", [(True, False), (False, True)])
def test_ambiguous_input_layout_names_both_flags(tmp_path, last, ids):
    spec = spec_of("square_cue")
    args = make_args(spec, 8, last=last, ids=ids)
    agent, _ = make_pymarl_team(spec, args)
    agent_th, _ = save_team(tmp_path, agent)
    with pytest.raises(KindError) as err:
        import_team("qmix", "square_cue", agent_th)
    msg = str(err.value)
    assert "\n" not in msg
    for text in ("obs_last_action", "obs_agent_id", "--param obs_last_action=",
                 "--param obs_agent_id="):
        assert text in msg, msg
    stated = {"obs_last_action": str(last).lower(), "obs_agent_id": str(ids).lower()}
    config, weights = import_team("qmix", "square_cue", agent_th, params=stated)
    assert (config["obs_last_action"], config["obs_agent_id"]) == (last, ids)
    assert config["agent_only"] is True
    # One stated flag is enough to settle the other.
    config, _ = import_team("qmix", "square_cue", agent_th, params={"obs_agent_id": ids})
    assert config["obs_last_action"] == last
    ours, theirs = q_sequence(spec, agent, args, load_team(config, weights))
    assert torch.equal(ours, theirs)


def test_import_errors_are_one_line(tmp_path):
    spec = spec_of("3m")
    args = make_args(spec, 16)
    agent, mixer = make_pymarl_team(spec, args)
    agent_th, mixer_th = save_team(tmp_path, agent, mixer)
    torch.save({}, tmp_path / "vdn_mixer.th")
    cases = [
        (lambda: import_team("qmix", "3m", agent_th, mixer_source=tmp_path / "vdn_mixer.th"),
         "--kind vdn"),
        (lambda: import_team("vdn", "3m", agent_th, mixer_source=mixer_th), "--kind qmix"),
        (lambda: import_team("qmix", "3m", agent_th, params={"obs_agent_id": "false"}),
         "obs_agent_id=false"),
        (lambda: import_team("qmix", "3m", agent_th, params={"use_rnn": "false"}), "use_rnn"),
        (lambda: import_team("qmix", "3m", agent_th, params={"hidden": "32"}), "hidden"),
        (lambda: import_team("qmix", "3m", agent_th, params={"obs_agent_id": "maybe"}),
         "true, false or auto"),
        (lambda: import_team("qmix", "3m", mixer_th), "RNNAgent"),
        (lambda: import_team("qmix", "3m", agent_th, mixer_source=agent_th), "agent weights"),
        (lambda: import_team("qmix", "pp7", agent_th), "pp7"),
    ]
    spec8 = spec_of("8m")
    other = PymarlQMixer(make_args(spec8, 16))
    torch.save(other.state_dict(), tmp_path / "mixer8.th")
    cases.append((lambda: import_team("qmix", "3m", agent_th, mixer_source=tmp_path / "mixer8.th"),
                  "state"))
    for call, needle in cases:
        with pytest.raises(KindError) as err:
            call()
        assert "\n" not in str(err.value) and needle in str(err.value), (needle, str(err.value))


def test_layout_inference_without_a_scenario():
    w = {"fc1.weight": np.zeros((5, 7 + 4)), "rnn.weight_ih": np.zeros((15, 5)),
         "fc2.weight": np.zeros((4, 5))}
    assert agent_layout(w, 7, 4, 4, obs_last_action=True) == {
        "hidden": 5, "use_rnn": True, "obs_last_action": True, "obs_agent_id": False}
    with pytest.raises(KindError, match="--param obs_last_action=true --param obs_agent_id=false"):
        agent_layout(w, 7, 4, 4)


# -- fine-tuning an imported team -------------------------------------------------------------
def test_imported_qmix_team_fine_tunes_with_init(tmp_path):
    from cli import main

    spec = spec_of("cue_match")
    args = make_args(spec, 12, last=False, ids=True, layers=1, embed=6)
    agent, mixer = make_pymarl_team(spec, args)
    agent_th, mixer_th = save_team(tmp_path, agent, mixer)
    config, weights = import_team("qmix", "cue_match", agent_th, mixer_source=mixer_th)
    league = tmp_path / "l.h5"
    store(league, "imp", "qmix", "cue_match", config, weights)
    only_cfg, only_w = import_team("qmix", "cue_match", agent_th)
    store(league, "agent_only", "qmix", "cue_match", only_cfg, only_w)

    base = ["--league", str(league), "train", "defender"]
    tiny = ["--scenario", "cue_match", "--steps", "300", "--envs", "8", "--test-every", "1000"]
    res = CliRunner().invoke(main, base + ["ft", *tiny, "--init", "imp", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    with League(league, "r") as lg:
        tuned = lg.get("ft")
    for key in ("obs_last_action", "obs_agent_id", "use_rnn", "hidden", "embed", "hypernet_layers"):
        assert tuned.config[key] == config[key], key
    assert tuned.weights.keys() == weights.keys()
    assert any(not np.array_equal(tuned.weights[k], weights[k]) for k in weights)
    assert tuned.provenance["steps"] >= 300

    res = CliRunner().invoke(main, base + ["ft2", *tiny, "--init", "agent_only"])
    assert res.exit_code == 2 and "--mixer" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output

    # The library path with the stored config as well (the layout need not be inferred).
    out = train_defender(DefenderTrainConfig(algo="qmix", scenario="cue_match", steps=120, envs=4,
                                             batch=4, test_episodes=4, init=weights,
                                             init_config=config), make_env=CueMatch)
    assert out.config["hypernet_layers"] == 1 and out.config["obs_last_action"] is False
    with pytest.raises(DefenderTrainError, match="mixer"):
        train_defender(DefenderTrainConfig(algo="qmix", scenario="cue_match", steps=40, envs=4,
                                           batch=4, test_episodes=4, init=only_w,
                                           init_config=only_cfg), make_env=CueMatch)


def test_stored_configs_without_the_new_fields_load_as_before():
    from tests.helpers import random_team

    config, weights = random_team("qmix", "pp7", 0)
    old = {k: v for k, v in config.items()
           if k not in ("use_rnn", "obs_last_action", "obs_agent_id", "hypernet_layers")}
    agent, mixer = load_defender(old, weights)
    assert agent.use_rnn and agent.obs_last_action and agent.obs_agent_id
    assert isinstance(mixer.hyper_w_1, nn.Sequential)


# -- the command line, once `add-policy --mixer` and `export` are registered -----------------
def test_add_policy_with_mixer_and_export_through_the_cli(tmp_path):
    from cli import main

    add = main.commands.get("add-policy")
    if add is None or not any(p.name == "mixer" for p in add.params):
        pytest.skip("add-policy has no --mixer option in this build")
    spec = spec_of("square_cue")
    args = make_args(spec, 8, last=True, ids=False, layers=2, embed=4, hyper=6)
    agent, mixer = make_pymarl_team(spec, args)
    agent_th, mixer_th = save_team(tmp_path, agent, mixer)
    league = tmp_path / "l.h5"
    runner = CliRunner()

    def arena(*argv):
        return runner.invoke(main, ["--league", str(league), *argv], catch_exceptions=False)

    assert arena("init").exit_code == 0
    cmd = ["add-policy", "imp", "--kind", "qmix", "--scenario", "square_cue", "--from",
           str(agent_th), "--mixer", str(mixer_th)]
    res = arena(*cmd)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert "--param obs_last_action=" in lines[0] and "--param obs_agent_id=" in lines[0]
    res = arena(*cmd, "--param", "obs_last_action=true", "--param", "obs_agent_id=false")
    assert res.exit_code == 0, res.output
    with League(league, "r") as lg:
        rec = lg.get("imp")
    assert (rec.config["obs_last_action"], rec.config["obs_agent_id"]) == (True, False)
    assert "agent_only" not in rec.config

    out = tmp_path / "out"
    if "export" in main.commands:
        res = arena("export", "imp", "--out", str(out))
    else:
        res = run_export(league, ["export", "imp", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fresh_agent, fresh_mixer = make_pymarl_team(spec, args, seed=5)
    fresh_agent.load_state_dict(torch.load(out / "agent.th", weights_only=True))
    fresh_mixer.load_state_dict(torch.load(out / "mixer.th", weights_only=True))
    for old, new in ((agent, fresh_agent), (mixer, fresh_mixer)):
        assert all(torch.equal(v, new.state_dict()[k]) for k, v in old.state_dict().items())
