"""The report of `arena reproduce s001`: our TRAM figures beside the paper's claims.

The paper's numeric tables are not in our references; its claims are set beside ours as
trends and checked (solvers.reproduce_s001 names them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from solvers.reproduce_s001 import (METHODS, Run, S001Config, attacker_name, collect, ensure,
                                    recipe_name, summarise)
from store import NO_ATTACK

LABELS = {NO_ATTACK: "clean", "tram_random": "random", "tram_j": "J-based",
          "tram_var": "variance-based"}
PAPER = {"final": "J-based and variance-based: win rate → 0 on SMAC maps; random: the team "
                  "still learns",
         "llr": "variance-based: the lowest log-likelihood of being abnormal"}


def _cell(runs: list[Run], scenario, recipe, attacker) -> list[Run]:
    return [r for r in runs if (r.scenario, r.recipe, r.attacker) == (scenario, recipe, attacker)]


def _fmt(m, h, n, pct=False) -> str:
    if n == 0:
        return "—"
    body = f"{m:.0%}" if pct else f"{m:.2f}"
    return body + ("" if h != h else (f" ± {h:.0%}" if pct else f" ± {h:.2f}")) + f" ({n})"


def _random_floor(scenario: str, episodes: int = 64) -> tuple[float, float]:
    from arena.scenarios import make
    from policies.learners.pg_collect import random_team_return

    st = random_team_return(make(scenario, episodes), seed=12345)
    return st.mean_return, st.win_rate


def _curves_png(runs: list[Run], scenario: str, recipe: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for a in (NO_ATTACK,) + METHODS:
        name = a if a == NO_ATTACK else attacker_name(a, scenario)
        cell = _cell(runs, scenario, recipe, name)
        if not cell:
            continue
        n = min(len(r.curve) for r in cell)
        steps = np.array([p["steps"] for p in cell[0].curve[:n]])
        ys = np.array([[p["test_return"] for p in r.curve[:n]] for r in cell])
        mean = ys.mean(0)
        ax.plot(steps, mean, label=f"{LABELS[a]} ({len(cell)})")
        if len(cell) > 1:
            from scipy.stats import t

            h = t.ppf(0.975, len(cell) - 1) * ys.std(0, ddof=1) / np.sqrt(len(cell))
            ax.fill_between(steps, mean - h, mean + h, alpha=0.2)
    ax.set_xlabel("training steps")
    ax.set_ylabel("greedy test return")
    ax.set_title(f"{recipe}: f_A = 1, KL^U = 6")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _headline(runs, cfg, sc, learner, lines, data):
    recipe = recipe_name(learner, sc)
    lines += [f"### {recipe}: final greedy return at f_A = 1, KL^U = {cfg.kl_max:g}", "",
              "| training | return (mean ± 95% CI, seeds) | win rate | Table 1: log-likelihood "
              "ratio per poisoned step | KL per poisoned step |", "|---|---|---|---|---|"]
    out = {}
    for a in (NO_ATTACK,) + METHODS:
        name = a if a == NO_ATTACK else attacker_name(a, sc)
        cell = _cell(runs, sc, recipe, name)
        ret = summarise([r.final_return for r in cell])
        win = summarise([r.final_win for r in cell])
        llr = summarise([r.llr for r in cell]) if a != NO_ATTACK else (float("nan"),) * 2 + (0,)
        kl = summarise([r.kl for r in cell]) if a != NO_ATTACK else (float("nan"),) * 2 + (0,)
        out[a] = {"return": ret, "win": win, "llr": llr, "kl": kl}
        lines.append(f"| {LABELS[a]} | {_fmt(*ret)} | {_fmt(*win, pct=True)} | {_fmt(*llr)} | "
                     f"{_fmt(*kl)} |")
    data[recipe] = out
    return out


def _sweep(runs, cfg, sc, lines, data):
    recipe = recipe_name("dop", sc)
    for title, points, name_of in (
            ("f_A sweep (KL^U = %g)" % cfg.kl_max, tuple(cfg.freqs) + (1.0,),
             lambda m, p: attacker_name(m, sc, p)),
            ("KL^U sweep (f_A = 1)", tuple(cfg.kls) + (cfg.kl_max,),
             lambda m, p: attacker_name(m, sc) if p == cfg.kl_max else
             attacker_name(m, sc, kl=p))):
        key = "f_A" if title.startswith("f_A") else "KL^U"
        lines += ["", f"### {recipe}: {title}", "",
                  f"| {key} | J-based return | variance-based return |", "|---|---|---|"]
        rows = {}
        for p in points:
            cells = {m: summarise([r.final_return for r in _cell(runs, sc, recipe, name_of(m, p))])
                     for m in ("tram_j", "tram_var")}
            rows[str(p)] = cells
            lines.append(f"| {p:g} | {_fmt(*cells['tram_j'])} | {_fmt(*cells['tram_var'])} |")
        data[f"{recipe} {key} sweep"] = rows


def _game(league_open, cfg: S001Config, sc: str, lines: list, data: dict) -> None:
    """The training game on `sc`: every recipe × (clean, the three attacks), each trained
    team played on 64 clean episodes (policies.training.cells), solved by LP."""
    from policies.training.cells import fill_training
    from solvers.meta import solve

    learners = [ln for ln in cfg.learners if ln == "dop" or sc in cfg.mappo_scenarios]
    if len(learners) < 2:
        return
    seeds = len(cfg.other_seeds)
    with league_open("r") as lg:
        recipes = [lg.resolve(recipe_name(ln, sc)) for ln in learners]
        attackers = [NO_ATTACK] + [lg.resolve(attacker_name(m, sc)) for m in METHODS]
    t = fill_training(league_open, sc, recipes, attackers, seeds, 64, device=cfg.device,
                      workers=cfg.workers)
    M, ci = t.payoff.mean, t.ci95
    if np.isnan(M).any():
        return
    sol = solve(M, "lp")
    cols = [LABELS[NO_ATTACK]] + [LABELS[m] for m in METHODS]
    lines += ["", f"### The training game on {sc} (seeds 0-{seeds - 1}, 64 clean episodes per "
              "team), solved", "", "| recipe | " + " | ".join(cols) + " | σ_D |",
              "|---" * (len(cols) + 2) + "|"]
    for i, r in enumerate(recipes):
        lines.append(f"| {r.split('@')[0]} | " + " | ".join(
            f"{M[i, j]:.2f}" + ("" if ci[i, j] != ci[i, j] else f" ± {ci[i, j]:.2f}")
            for j in range(len(cols)))
            + f" | {sol.defender[i]:.2f} |")
    lines.append("| σ_A | " + " | ".join(f"{q:.2f}" for q in sol.attacker) + " | |")
    lines += ["", f"Game value {sol.value:.2f} (LP Nash; exploitability "
              f"{sol.exploitability:.1e}). `arena solve --surface training --scenario {sc}` "
              "gives the same from the league."]
    data[f"game {sc}"] = {"recipes": recipes, "attackers": attackers, "mean": M.tolist(),
                          "ci95": ci.tolist(), "solution": sol.to_dict()}


def _trends(fig: dict, clean_floor) -> list[tuple[str, bool | None, str]]:
    """(claim, held, figures) per learner table."""
    out = []
    for recipe, t in fig.items():
        rnd, j, var, clean = (t[m]["return"] for m in ("tram_random", "tram_j", "tram_var",
                                                       NO_ATTACK))
        if min(x[2] for x in (rnd, j, var, clean)) == 0:
            continue
        span = clean[0] - clean_floor[recipe.split(".")[1]]
        drop = {k: clean[0] - v[0] for k, v in (("random", rnd), ("J", j), ("var", var))}
        # where clean training does not beat random play there is nothing for an attack to undo
        far = None if span <= 0 else all(drop[k] > 2 * max(drop["random"], 0.0)
                                         and drop[k] > 0.1 * span for k in ("J", "var"))
        out.append((f"{recipe}: J and var lower the return far more than random (> 2× its "
                    f"loss and > 10 % of the clean gain over random play)", far,
                    "return change from clean: " + ", ".join(f"{k} {-v:+.2f}"
                                                             for k, v in drop.items())))
        llr = {m: t[m]["llr"][0] for m in METHODS}
        lowest = min(llr, key=lambda m: llr[m])
        out.append((f"{recipe}: variance-based has the lowest log-likelihood ratio",
                    lowest == "tram_var",
                    ", ".join(f"{LABELS[m]} {v:.3f}" for m, v in llr.items())))
    return out


def reproduce(league_open, cfg: S001Config, out: Path, hooks=None) -> tuple[Path, dict]:
    on_event = getattr(hooks, "say", None)
    trained = ensure(league_open, cfg, on_event=on_event)
    runs = collect(league_open, cfg)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# s001: TRAM, training-time attacks on one agent's sampling", "",
             "Each figure: the final greedy test return of the teams trained under the attack, "
             "mean ± 95 % CI between seeds (Student's t; the number of seeds in brackets). "
             "The paper's numeric tables are not in our references; its claims stand beside "
             "ours as trends.", ""]
    data: dict = {"config": {k: v for k, v in vars(cfg).items()}, "trained": trained}
    floor = {}
    headline = {}
    for sc in cfg.scenarios:
        floor[sc] = _random_floor(sc)
        lines += [f"## {sc}", "", f"A team of uniformly random actions: return "
                  f"{floor[sc][0]:.2f}, win rate {floor[sc][1]:.0%}.", ""]
        for learner in cfg.learners:
            if learner != "dop" and sc not in cfg.mappo_scenarios:
                continue
            headline[recipe_name(learner, sc)] = _headline(runs, cfg, sc, learner, lines, data)
            png = out / f"curves_{learner}_{sc}.png"
            _curves_png(runs, sc, recipe_name(learner, sc), png)
            lines += ["", f"![curves]({png.name})", ""]
        if sc in cfg.sweep_scenarios and "dop" in cfg.learners:
            _sweep(runs, cfg, sc, lines, data)
        if sc == cfg.scenarios[0]:
            _game(league_open, cfg, sc, lines, data)
        lines.append("")
    lines += ["## The paper's claims, checked", "", f"- Paper: {PAPER['final']}.",
              f"- Paper: {PAPER['llr']}.", ""]
    trends = _trends(headline, {sc: f[0] for sc, f in floor.items()})
    for claim, held, figs in trends:
        verdict = ("not testable: clean training does not beat random play" if held is None
                   else "reproduced" if held else "not reproduced")
        lines.append(f"- {claim}: **{verdict}** ({figs}).")
    data["trends"] = [{"claim": c, "held": h, "figures": f} for c, h, f in trends]
    data["random_team"] = floor
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(data, indent=1, default=_json_default))
    return report, {"trained": trained, "trends": data["trends"]}


def _json_default(x):
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)
