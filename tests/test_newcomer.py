"""What a newcomer hits first: bare names, plots, narrow listings, half-filled tables, CSVs
without a header, tied attacks, clear flags and parameters, progress on long work."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from store.starter import starter_path
from tests.helpers import make_league


def run(args, league=None, env=None):
    full = (["--league", str(league)] if league else []) + list(args)
    return CliRunner().invoke(main, full, catch_exceptions=False, env=env)


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def starter(tmp_path):
    path = tmp_path / "starter.h5"
    shutil.copyfile(starter_path(), path)
    return path


@pytest.fixture
def figures(monkeypatch):
    """Every matplotlib figure saved while the test runs (the plots close them after)."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


# -- 1. one resolver for bare names -------------------------------------------------------------

def test_show_and_retire_resolve_bare_names_like_play(starter, tmp_path):
    shown = json.loads(run(["show", "qmix", "--json"], starter).output)
    assert shown["ref"] == "qmix.3m@v1"  # the default scenario's, as `play qmix vs …` picks
    shown = json.loads(run(["show", "qmix", "--scenario", "pp7", "--json"], starter).output)
    assert shown["ref"] == "qmix.pp7@v1"
    one_line_error(run(["show", "qmix", "--scenario", "tj_easy"], starter), "qmix.3m")
    # retiring is never a guess
    one_line_error(run(["retire", "vdn"], starter), "ambiguous", "vdn.3m", "vdn.pp7")
    assert run(["retire", "vdn", "--scenario", "3m"], starter).output.strip() == "retired vdn.3m"
    assert json.loads(run(["show", "vdn", "--json"], starter).output)["ref"] == "vdn.pp7@v1"

    lg = tmp_path / "one.h5"
    run(["init"], lg)
    run(["add-policy", "fgsm.3m", "--kind", "fgsm", "--scenario", "3m"], lg)
    assert json.loads(run(["show", "fgsm", "--json"], lg).output)["ref"] == "fgsm.3m@v1"
    one_line_error(run(["show", "ghost"], lg), "unknown policy 'ghost'")


# -- 2./3. plots ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pa_ad.3m", "atla.3m"])
def test_learned_attackers_plot_their_curve(starter, tmp_path, figures, name):
    png = tmp_path / "a.png"
    res = run(["show", name, "--plot", str(png)], starter)
    assert res.exit_code == 0, res.output
    assert png.stat().st_size > 10_000
    ax, ax2 = figures[-1].axes
    assert "victim return" in ax.get_ylabel() and "win rate" in ax2.get_ylabel()


def test_training_curve_has_two_labelled_axes(starter, tmp_path, figures):
    res = run(["show", "qmix.3m", "--plot", str(tmp_path / "q.png")], starter)
    assert res.exit_code == 0, res.output
    ax, ax2 = figures[-1].axes
    # the starter's curves also hold returns under attack: the win rate axis says "(clean)"
    assert ax.get_ylabel() == "test return" and ax2.get_ylabel().startswith("win rate")
    assert ax2.get_ylim()[1] <= 1.1  # the win rate is not squashed onto the return's scale
    legend = ax.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().y0 < ax.bbox.y0  # below the data


def test_psro_plot_has_a_y_label_and_the_last_iteration(starter, tmp_path, figures):
    res = run(["runs", "show", "psro_3m", "--plot", str(tmp_path / "p.png")], starter)
    assert res.exit_code == 0, res.output
    (ax,) = figures[-1].axes
    assert ax.get_ylabel()
    value = ax.get_lines()[0]
    assert list(value.get_xdata()) == [0, 1, 2]


def test_heatmap_is_colour_blind_safe_readable_and_titled(tmp_path, figures):
    from arena.plots import payoff_heatmap

    values = np.array([[0.0, 1.0], [0.5, np.nan]])
    payoff_heatmap(values, ["qmix.3m@v1", "vdn.3m@v1"], ["none", "fgsm@v1"], tmp_path / "h.png",
                   "3m: win rate", "win rate", episodes=32, eps=0.2)
    ax = figures[-1].axes[0]
    assert ax.images[0].get_cmap().name in ("viridis", "cividis")
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["0.00"] == "white" and colours["1.00"] == "black"
    assert "3m" in ax.get_title() and "32 episodes per cell" in ax.get_title()
    assert "ε = 0.2" in ax.get_title()


# -- 4. ls never cuts a name ----------------------------------------------------------------------

@pytest.mark.parametrize("columns", [None, "80", "50"])
def test_ls_never_cuts_policy_names(starter, columns):
    env = {"COLUMNS": columns} if columns else None
    res = run(["ls"], starter, env=env)
    assert res.exit_code == 0
    refs = [r["ref"] for r in json.loads(run(["ls", "--json"], starter).output)]
    for ref in refs:
        assert ref in res.output, ref
    assert "…" not in res.output.split("\n", 3)[-1]  # no cell is cut (the title may be)


# -- 5. solve a half-filled table ----------------------------------------------------------------

def test_filled_lines_drops_the_emptiest_lines():
    from solvers.tables import filled_lines

    count = np.ones((4, 5))
    count[3, :3] = 0  # a new defender, played only against two attackers
    count[:, 4] = 0  # a new attacker, not played yet
    assert filled_lines(count) == ([0, 1, 2], [0, 1, 2, 3])
    assert filled_lines(np.zeros((2, 2))) == ([], [])


def test_solve_uses_the_filled_sub_table_and_takes_solver_options(tmp_path):
    lg = make_league(tmp_path / "l.h5")
    res = run(["--quiet", "matrix", "--defenders", "qmix0", "--attackers", "none,random",
               "--episodes", "1"], lg)
    assert res.exit_code == 0, res.output
    res = run(["solve", "--scenario", "pp7"], lg)
    assert res.exit_code == 0, res.output
    assert "left out" in res.output and "vdn1" in res.output and "pgd" in res.output
    out = json.loads(run(["solve", "--scenario", "pp7", "--json"], lg).output)
    assert out["defenders"] == ["qmix0@v1"] and out["attackers"] == ["none", "random@v1"]
    assert out["left_out"]["defenders"] == ["vdn1@v1"]
    out = json.loads(run(["solve", "--scenario", "pp7", "--defenders", "qmix0", "--attackers",
                          "none", "--json"], lg).output)
    assert out["attackers"] == ["none"] and out["left_out"] is None
    one_line_error(run(["solve", "--scenario", "pp7", "--defenders", "qmix0,vdn1",
                        "--attackers", "none"], lg), "empty cell")
    for extra in (["--method", "rd", "--iterations", "50"],
                  ["--method", "alpharank", "--alpha", "5"]):
        res = run(["solve", "--scenario", "pp7", *extra], lg)
        assert res.exit_code == 0, res.output
    one_line_error(run(["solve", "--scenario", "pp7", "--alpha", "5"], lg), "alpharank")


# -- 6. CSV header, negative zero, ties ----------------------------------------------------------

def test_solve_matrix_refuses_a_csv_without_header(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("q,1,2\nv,3,4\n")
    one_line_error(run(["solve", "--matrix", str(csv_file)]), "header")


def test_solve_never_prints_negative_zero_and_names_every_tied_attack(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("defender\\attacker,a,b,c\nx,-0.0,-0.0,1\n")
    res = run(["solve", "--matrix", str(csv_file)])
    assert res.exit_code == 0, res.output
    assert "-0.000" not in res.output
    assert "most dangerous attacks against this defender mixture, tied: a, b (each" in res.output
    out = json.loads(run(["solve", "--matrix", str(csv_file), "--json"]).output)
    assert out["worst_attacks"] == ["a", "b"] and out["worst_attack"] == "a"


def test_num_drops_the_sign_of_zero():
    from commands.common import num

    assert num(-0.0) == "0.000" and num(-0.0004) == "0.000" and num(-0.0, "+.3f") == "+0.000"
    assert num(-0.5) == "-0.500" and num(-1e-20, ".2e") == "-1.00e-20"


# -- 7. flags, repeated configs, parameters ------------------------------------------------------

def test_init_names_the_force_flag(tmp_path):
    lg = tmp_path / "l.h5"
    run(["init"], lg)
    one_line_error(run(["init"], lg), "--force")
    assert run(["init", "--force"], lg).exit_code == 0


def test_add_policy_says_identical_and_checks_targets_and_sizes(tmp_path):
    lg = tmp_path / "l.h5"
    run(["init"], lg)
    assert run(["add-policy", "f", "--kind", "fgsm"], lg).output.strip() == "added f@v1"
    res = run(["add-policy", "f", "--kind", "fgsm"], lg)
    assert "added f@v2" in res.output and "identical to f@v1" in res.output
    other = run(["add-policy", "f", "--kind", "fgsm", "--param", "eps=0.1"], lg)
    assert other.output.strip() == "added f@v3"
    one_line_error(run(["add-policy", "p", "--kind", "pgd", "--scenario", "3m", "--param",
                        "targets=0,7"], lg), "3 agents")
    one_line_error(run(["add-policy", "p", "--kind", "pgd", "--scenario", "3m", "--param",
                        "targets=4"], lg), "3 agents")
    assert run(["add-policy", "p", "--kind", "pgd", "--scenario", "3m", "--param",
                "targets=0,2"], lg).exit_code == 0
    one_line_error(run(["add-policy", "q", "--kind", "qmix", "--scenario", "3m", "--param",
                        "hidden=1000000"], lg), "outside its range")
    kinds = {k["kind"]: k for k in json.loads(run(["kinds", "--json"]).output)}
    assert {"hidden", "embed", "hypernet_hidden"} <= {p["name"] for p in kinds["qmix"]["params"]}
    assert "hidden" in {p["name"] for p in kinds["vdn"]["params"]}


# -- 8. progress on long work --------------------------------------------------------------------

def test_bootstrap_reports_progress():
    from solvers.bootstrap import bootstrap

    seen = []
    bootstrap(np.eye(2), np.ones((2, 2)), np.full((2, 2), 4), n=5,
              on_progress=lambda k, n: seen.append((k, n)))
    assert seen == [(k, 5) for k in range(1, 6)]


def test_psro_oracles_announce_their_training(tmp_path, monkeypatch):
    from policies.learners import train_defender as td
    from policies.observation import train_attacker as ta
    from solvers.psro_league import LeagueGame, LeaguePSROConfig
    from tests.helpers import opener

    lg = make_league(tmp_path / "l.h5")
    calls = []

    def fake(cfg, *args, on_progress=None, **kwargs):
        on_progress({"steps": cfg.steps})
        return SimpleNamespace(config={}, weights={}, provenance={}, partial=False)

    monkeypatch.setattr(ta, "train_attacker", fake)
    monkeypatch.setattr(td, "train_defender", fake)
    cfg = LeaguePSROConfig(scenario="pp7", defenders=["qmix0@v1"], attackers=["none"],
                           steps_per_oracle=123)
    game = LeagueGame(opener(lg), "r", cfg,
                      on_progress=lambda p: calls.append(("progress", p["steps"])),
                      on_oracle=lambda name, steps: calls.append((name, steps)))
    game.attacker_response(["qmix0@v1"], [1.0], 0)
    game.defender_response(["none"], [1.0], 0)
    assert calls == [("r_att0", 123), ("progress", 123), ("r_def0", 123), ("progress", 123)]


def test_psro_command_passes_progress_hooks(tmp_path, monkeypatch):
    import solvers.psro_league as pl

    seen = {}

    def fake_run(league_open, cfg, run_id, resume=False, **hooks):
        seen.update(hooks)
        hooks["on_oracle"]("x_att0", 10)
        hooks["on_progress"]({"steps": 5, "victim_return": 1.0})
        it = SimpleNamespace(value=1.0, iteration=0, defenders=["q"], attackers=["none"],
                             gain_attacker=None)
        return run_id, [it], ("x_def@v1", "x_att@v1")

    monkeypatch.setattr(pl, "run_league_psro", fake_run)
    lg = make_league(tmp_path / "l.h5")
    res = run(["psro", "--scenario", "pp7", "--defenders", "qmix0", "--name", "x"], lg)
    assert res.exit_code == 0, res.output
    assert callable(seen["on_oracle"]) and callable(seen["on_progress"])


def test_heatmap_eps_is_one_number_or_one_per_attacker(tmp_path):
    from commands.common import Ctx, heatmap_eps

    lg = make_league(tmp_path / "l.h5")
    ctx = Ctx(lg, False, False, "cpu", 5.0, False)
    assert heatmap_eps(ctx, ["none", "random@v1", "fgsm@v1"]) == 0.2
    run(["add-policy", "pgd_small", "--kind", "pgd", "--param", "eps=0.1"], lg)
    assert heatmap_eps(ctx, ["none", "fgsm@v1", "pgd_small@v1"]) == {"fgsm@v1": 0.2,
                                                                    "pgd_small@v1": 0.1}
