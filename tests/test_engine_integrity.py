"""Engine integrity: no episode recorded twice, episodes that do not depend on their batch,
and weights that cannot play (NaN/Inf) refused before anything is recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from arena import payoff as pay
from arena.rollout import play
from arena.scenarios import spec as scenario_spec
from cli import main
from policies.build import base_provenance
from policies.evaluate import fill, play_and_record, play_match
from policies.lineup import build_lineup
from policies.observation.atla import ATLAAttacker, atla_config
from policies.observation.pa_ad import PAADAttacker, pa_ad_config
from store import NO_ATTACK, League
from store.records import weights_sha256
from tests.helpers import make_league, opener

ROOT = Path(__file__).resolve().parents[1]


def episode_ids(path, scenario="pp7"):
    """(defender, attacker) → Counter of (record seed, episode index) over every record."""
    out: dict = {}
    with League(path) as lg:
        for m in lg.matches(scenario):
            ids = out.setdefault((m.defender, m.attacker), Counter())
            ids.update((m.seed, i) for i in range(m.episodes))
    return out


def assert_exact(path, episodes, scenario="pp7"):
    ids = episode_ids(path, scenario)
    assert ids, "nothing recorded"
    for cell, counter in ids.items():
        dup = [k for k, n in counter.items() if n > 1]
        assert not dup, f"{cell}: episodes recorded twice {dup[:4]}"
        assert sum(counter.values()) == episodes, (cell, sum(counter.values()))


# -- 1. concurrent fills ------------------------------------------------------------------------

def test_fill_leaves_out_cells_another_fill_committed_after_the_plan(tmp_path):
    """The race, played out deterministically: plan, another fill commits, then commit."""
    path = make_league(tmp_path / "l.h5")
    raced = []

    def rival(cells):
        if not raced:  # the rival plans the same cells and commits first
            raced.append(fill(opener(path), "pp7", None, ["none", "random"], episodes=3, seed=0))

    res = fill(opener(path), "pp7", None, ["none", "random"], episodes=3, seed=0, on_plan=rival)
    assert raced[0].episodes_run == 12
    assert (res.table.count == 3).all()
    assert_exact(path, 3)


def test_fill_replans_a_cell_whose_seed_was_taken_by_a_shorter_record(tmp_path):
    """A rival that committed fewer episodes under the same seed: the part that is new cannot
    be a record of its own (records have no offset), so the cell is planned and played again."""
    path = make_league(tmp_path / "l.h5")
    raced = []

    def rival(cells):
        if not raced:
            raced.append(fill(opener(path), "pp7", None, ["none", "fgsm"], episodes=2, seed=0))

    res = fill(opener(path), "pp7", None, ["none", "fgsm"], episodes=5, seed=0, on_plan=rival)
    assert (res.table.count == 5).all()
    assert_exact(path, 5)
    with League(path) as lg:
        assert sorted({m.seed for m in lg.matches("pp7")}) == [0, 2]


def test_plan_never_reuses_a_seed_the_cell_holds(tmp_path):
    path = make_league(tmp_path / "l.h5")
    play_match(opener(path), "qmix0", "random", None, episodes=2, seed=2)  # seed 2: 2 episodes
    res = fill(opener(path), "pp7", ["qmix0"], ["random"], episodes=4, seed=0)
    # the cell holds 2 episodes, so its sequence continues at seed 0 + 2, which is taken
    assert [c.seed for c in res.cells] == [3]
    assert_exact(path, 4)


def test_play_without_seed_moves_on_when_its_seed_was_taken(tmp_path):
    path = make_league(tmp_path / "l.h5")
    raced = []

    def rival(t, done):
        if not raced:  # the league is closed while the rollout runs: a rival play commits
            raced.append(play_match(opener(path), "qmix0", "fgsm", None, episodes=2, seed=None))

    res = play_and_record(opener(path), "qmix0", "fgsm", None, episodes=2, seed=None, on_step=rival)
    assert res.recorded and res.record.seed == 2 and raced[0][0].seed == 0
    assert_exact(path, 4)


def test_play_with_a_recorded_seed_replays_without_recording(tmp_path):
    path = make_league(tmp_path / "l.h5")
    first = play_and_record(opener(path), "qmix0", "pgd", None, episodes=3, seed=7)
    again = play_and_record(opener(path), "qmix0", "pgd", None, episodes=3, seed=7)
    assert first.recorded and not again.recorded
    np.testing.assert_array_equal(first.record.returns, again.record.returns)
    np.testing.assert_array_equal(first.record.attack_cost, again.record.attack_cost)
    assert_exact(path, 3)


def test_two_processes_filling_the_same_table_record_each_episode_once(tmp_path):
    path = make_league(tmp_path / "l.h5")
    cmd = [sys.executable, "-c", "from cli import main; main()", "--league", str(path), "--quiet",
           "--lock-timeout", "120", "matrix", "--scenario", "pp7", "--episodes", "16", "--json"]
    env = {**os.environ, "ARENA_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert_exact(path, 16)
    with League(path) as lg:
        t = lg.payoff("pp7", ["qmix0", "vdn1"], [NO_ATTACK, "random", "fgsm", "pgd"])
    assert (t.count == 16).all()


# -- 2. episodes do not depend on their batch -----------------------------------------------------

def league_of_every_attacker(path, scenario="3m"):
    sp = scenario_spec(scenario)
    make_league(path, scenario, defenders=(("qmix", 0), ("vdn", 1)),
                attackers=(("random", ["eps=0.3"]), ("fgsm", ["eps=0.2"]),
                           ("pgd", ["eps=0.2", "steps=2"])))
    torch.manual_seed(0)
    atla = ATLAAttacker(atla_config(sp, 0.3, "linf", "all"))
    torch.manual_seed(1)
    paad = PAADAttacker(pa_ad_config(sp, 0.3, "linf", "all"))
    with League(path, "a") as lg, lg.transaction():
        for name, att in (("atla", atla), ("pa_ad", paad)):
            lg.add_policy(name, "attacker", name, scenario, att.config, att.export_weights(),
                          base_provenance(seed=0))
        lg.add_policy("mix", "attacker", "mixture", scenario,
                      {"members": [{"ref": "random@v1", "weight": 0.5},
                                   {"ref": "pgd@v1", "weight": 0.3},
                                   {"ref": "pa_ad@v1", "weight": 0.2}]}, {}, base_provenance())
    return path


ATTACKERS = [NO_ATTACK, "random@v1", "fgsm@v1", "pgd@v1", "atla@v1", "pa_ad@v1", "mix@v1"]


def test_every_attacker_kind_plays_the_same_episodes_alone_and_inside_a_batch(tmp_path):
    path = league_of_every_attacker(tmp_path / "l.h5")
    defenders = ["qmix0@v1", "vdn1@v1"]
    E = 6
    with League(path) as lg:
        full = build_lineup(lg, "3m", defenders, ATTACKERS)
        cells = [pay.Cell(d, a, E, 11) for d in defenders for a in ATTACKERS]
        batch = pay.run_cells("3m", full, cells)
        for c, st in zip(cells, batch):
            # alone, and inside a batch whose attackers come in another order
            others = [a for a in reversed(ATTACKERS) if a != c.attacker][:2] + [c.attacker]
            for attackers in ([c.attacker], others):
                lineup = build_lineup(lg, "3m", [c.defender], attackers)
                got = pay.run_cells("3m", lineup, [pay.Cell(c.defender, a, E, 11 if a == c.attacker
                                                            else 3) for a in attackers])[-1]
                what = f"{c.defender} vs {c.attacker} with {attackers}"
                assert torch.equal(got.returns, st.returns), what
                assert torch.equal(got.wins, st.wins) and torch.equal(got.lengths, st.lengths), what
                torch.testing.assert_close(got.cost, st.cost, rtol=0, atol=1e-6, msg=what)


def test_dropping_finished_episodes_changes_no_cell(tmp_path):
    """The rollout steps live episodes only (`play(drop_finished=True)`, the default): every
    statistic of every episode is the one of the batch that keeps finished episodes to the
    end, for every attacker kind, a surrogate (transfer) attacker and a frequency below 1."""
    path = league_of_every_attacker(tmp_path / "l.h5")
    defenders = ["qmix0@v1", "vdn1@v1"]
    with League(path) as lg:
        lineup = build_lineup(lg, "3m", defenders, ATTACKERS)
    cells = [pay.Cell(d, a, 5, 2) for d in defenders for a in ATTACKERS]
    seeds, team_of, attacker_of = pay.layout(lineup, cells)
    # black-box FGSM: its gradients come from the other defender of the stacked team
    surrogates = {lineup.attackers.index("fgsm@v1"): (lineup.team, 1 - team_of)}
    freq = [min(f, 0.7) for f in lineup.freq]
    runs = [play("3m", lineup.team, team_of, lineup.attacker_objs, attacker_of, seeds,
                 freq=freq, surrogates=surrogates, attack_salts=lineup.attacker_salts,
                 drop_finished=drop) for drop in (False, True)]
    kept, dropped = runs
    assert kept.lengths.min() < kept.lengths.max(), "episodes end at different steps"
    for f in ("returns", "wins", "lengths", "cost"):
        assert torch.equal(getattr(kept, f), getattr(dropped, f)), f


def test_a_stored_seed_replays_its_record_inside_a_bigger_table(tmp_path):
    path = league_of_every_attacker(tmp_path / "l.h5")
    alone = play_and_record(opener(path), "qmix0", "random", None, episodes=4, seed=5).record
    with League(path) as lg:
        lineup = build_lineup(lg, "3m", ["qmix0@v1", "vdn1@v1"], ATTACKERS)
    cells = [pay.Cell(d, a, 4, 5) for d in ("qmix0@v1", "vdn1@v1") for a in ATTACKERS]
    replay = pay.run_cells("3m", lineup, cells)[ATTACKERS.index("random@v1")]
    np.testing.assert_array_equal(replay.returns.numpy(), alone.returns)
    np.testing.assert_allclose(replay.cost.numpy(), alone.attack_cost, atol=1e-6)


# -- 3. non-finite weights --------------------------------------------------------------------------

def poison(path, name, param, value=np.nan):
    """Write `value` into one weight of a checkpointed policy the way another tool could, with a
    matching sha256, so only the values are wrong."""
    with League(path, "a") as lg:
        lg.checkpoint()
    with h5py.File(path, "r+") as f:
        g = f["policies"][name]["v1"]
        ds = g["weights"][param]
        arr = ds[...]
        arr.flat[0] = value
        ds[...] = arr
        weights = {k: np.asarray(d[...]) for k, d in g["weights"].items()}
        g.attrs["sha256"] = weights_sha256(weights)
        if "index" in f:
            del f["index"]  # the cached catalogue would hold the old sha256


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_are_refused_with_one_line_and_nothing_recorded(tmp_path, value):
    path = make_league(tmp_path / "l.h5")
    poison(path, "qmix0", "agent.fc1.weight", value)
    res = CliRunner().invoke(main, ["--league", str(path), "play", "qmix0", "vs", "fgsm",
                                    "--episodes", "2"], catch_exceptions=False)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2, res.output
    assert lines == ["error: qmix0@v1: parameter agent.fc1.weight has non-finite values (NaN/Inf)"]
    with League(path) as lg:
        assert lg.matches("pp7") == []
    # the table refuses too; the healthy defender alone still plays
    res = CliRunner().invoke(main, ["--league", str(path), "--quiet", "matrix", "--episodes", "1"],
                             catch_exceptions=False)
    assert res.exit_code == 2 and "qmix0@v1: parameter agent.fc1.weight" in res.output
    res = CliRunner().invoke(main, ["--league", str(path), "--quiet", "play", "vdn1", "vs", "none",
                                    "--episodes", "1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def test_non_finite_learned_attacker_weights_are_refused(tmp_path):
    path = league_of_every_attacker(tmp_path / "l.h5")
    with League(path) as lg:
        param = sorted(lg.get("atla@v1").weights)[0]
    poison(path, "atla", param)
    with pytest.raises(Exception, match=f"atla@v1: parameter {param} has non-finite"):
        play_match(opener(path), "qmix0", "atla", None, episodes=1, seed=0)
