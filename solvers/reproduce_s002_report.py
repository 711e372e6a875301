"""The ℜ-MACRL reproduction's figures, learning curves and Markdown report
(solvers.reproduce_s002 trains and measures; this module only derives and writes).

Per seed, on the scenario's metric m (team return on predator-prey, success/win rate on the
traffic junctions and SMAC-style maps), with R = m(team, no attack):
  reliance  1 − m(team, every message random)/R: whether the team uses its messages at all,
            without which no message attack can work;
  (a, b, c) random-message loss 1 − m(team, random)/R; learned-attack loss
            1 − m(team, msg_ppo)/R; what the filter restores m(filter, msg_ppo)/R;
  (d)       loss of the defended team to an attacker retrained against the frozen filter,
            1 − m(filter, msg_ppo vs filter)/m(filter, no attack);
  (f)       the same with two malicious agents (msg_ppo2, filter2);
and across seeds their mean with a Student-t 95 % interval. (e) is Table 3 of
reproduce_s002.rmacrl, in team return.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from solvers.reproduce_s002 import (
    NO_MESSAGE_BOUND, PAPER, PAPER_EXPLOIT, PAPER_FIGURES, TEAMS, Hooks, S002Config,
    ScenarioResult, SeedResult, run_scenario,
)

# name → (defender role, attacker role) of a metric cell
CELLS = {"clean": ("team", "none"), "random": ("team", "noise"), "attacked": ("team", "mp"),
         "filtered": ("filter", "mp"), "filtered_clean": ("filter", "none"),
         "exploited": ("filter", "mp_vs_filter"), "random2": ("team", "noise2"),
         "attacked2": ("team", "mp2"), "filtered2": ("filter2", "mp2"),
         "filter_vs_mp2": ("filter", "mp2"), "noise_all": ("team", "noise_all")}
# name → (numerator cell, denominator cell, loss?): loss = 1 − num/den, else num/den
RATIOS = {"reliance": ("noise_all", "clean", True), "random_drop": ("random", "clean", True),
          "attack_drop": ("attacked", "clean", True),
          "restored": ("filtered", "clean", False),
          "exploit_drop": ("exploited", "filtered_clean", True),
          "attack2_drop": ("attacked2", "clean", True), "restored2": ("filtered2", "clean", False)}
RATIO_TEXT = {"reliance": "loss when every message is random (reliance on messages)",
              "random_drop": "loss to random messages", "attack_drop": "loss to msg_ppo",
              "restored": "filtered / clean", "exploit_drop": "(d) loss of the filtered team to "
              "an attacker retrained against it", "attack2_drop": "(f) loss to two msg_ppo "
              "attackers", "restored2": "(f) filtered (filter2) / clean"}


def per_seed(result: ScenarioResult, seed: SeedResult) -> dict:
    cells = {k: seed.cell(result.metric, d, a) for k, (d, a) in CELLS.items()}
    out = dict(cells)
    for k, (num, den, loss) in RATIOS.items():
        # a share of a non-positive baseline means nothing (an untrained team on pp7_p05)
        ok = math.isfinite(cells[num]) and math.isfinite(cells[den]) and cells[den] > 1e-9
        ratio = cells[num] / cells[den] if ok else float("nan")
        out[k] = 1.0 - ratio if loss else ratio
    return out


def t_interval(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its Student-t 95 % interval (None for one value)."""
    from scipy import stats

    x = np.asarray([v for v in values if math.isfinite(v)], float)
    if len(x) == 0:
        return float("nan"), None
    if len(x) == 1:
        return float(x[0]), None
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / len(x) ** 0.5)


def summary(result: ScenarioResult) -> dict:
    """name → {"seeds": [...], "mean": m, "ci95": h} for every cell and ratio."""
    rows = [per_seed(result, s) for s in result.seeds]
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows]
        mean, ci = t_interval(vals)
        out[k] = {"seeds": vals, "mean": mean, "ci95": ci}
    return out


def trends(result: ScenarioResult, s: dict) -> list[tuple[str, bool | None]]:
    """The paper's qualitative claims, checked on the seed means (None: not measurable)."""
    m = {k: v["mean"] for k, v in s.items()}

    def check(key, ok):
        return ok(m[key]) if math.isfinite(m[key]) else None

    return [("the team relies on its messages (every message random costs ≥ 20 %)",
             check("reliance", lambda x: x >= 0.20)),
            ("random messages barely hurt (loss < 10 %)", check("random_drop", lambda x: x < 0.10)),
            ("the learned attack costs ≥ 30 %", check("attack_drop", lambda x: x >= 0.30)),
            ("the filter restores ≥ 90 % of the clean figure",
             check("restored", lambda x: x >= 0.90)),
            ("(d) a retrained attacker drives the filtered team down again (loss ≥ 10 %)",
             check("exploit_drop", lambda x: x >= 0.10)),
            ("(f) two attackers cost more than one",
             check("attack2_drop", lambda x: x > m["attack_drop"]))]


def curves(league_open: Callable, result: ScenarioResult, path: Path) -> Path | None:
    """Learning curves of the team, its msg_ppo attacker and its filter, one line per seed."""
    from arena.plots import curve_panels

    keys = (("team", "test_win" if result.metric == "win" else "test_return",
             f"{result.algo} team (greedy tests)"),
            ("mp", "victim_win" if result.metric == "win" else "victim_return",
             "team under msg_ppo (training)"),
            ("filter", "team_return", "team behind the filter (training)"))
    panels = []
    with league_open("r") as lg:
        for role, key, title in keys:
            lines = {}
            for s in result.seeds:
                curve = lg.info(s.refs[role]).provenance.get("curve") or []
                pts = [(c["steps"], c.get(key)) for c in curve if c.get(key) is not None]
                if pts:
                    lines[f"seed {s.seed}"] = ([p[0] for p in pts], [p[1] for p in pts])
            if lines:
                ylabel = "win rate" if key.endswith("win") else "team return"
                panels.append((title, ylabel, lines))
    if not panels:
        return None
    return curve_panels(panels, path, f"{result.scenario}: learning curves")


def _fmt(v: float | None, metric: str, ci: float | None = None, ratio: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    if ratio or metric == "win":
        text = f"{100 * v:.0f}%"
        return text + (f" ± {100 * ci:.0f}" if ci is not None else "")
    return f"{v:.1f}" + (f" ± {ci:.1f}" if ci is not None else "")


def _paper(scenario: str, key: str) -> str:
    v = PAPER_FIGURES.get(scenario, {}).get(key)
    return "" if v is None else f" (paper {100 * v:.1f}%)"


def markdown(results: list[ScenarioResult], cfg: S002Config, seconds: float,
             device: str) -> str:
    lines = ["# ℜ-MACRL (Xue et al., AAMAS 2022), regenerated on our scenarios", "",
             "- mode: " + ("quick (the starter league’s shipped message policies)"
                           if cfg.quick else "full") + "; "
             f"seeds {', '.join(map(str, cfg.seeds))}; {cfg.episodes} episodes per cell; "
             f"device {device}; {seconds:.0f} s in all",
             f"- budgets: teams {', '.join(f'{s} {cfg.steps_of(s):,}' for s in cfg.scenarios)} "
             f"steps; msg_ppo {cfg.attacker_steps:,} (penalty α = {cfg.alpha:g}); "
             f"filters {cfg.filter_steps:,}; ℜ-MACRL "
             f"{cfg.psro_iterations} iterations of {cfg.psro_steps:,}-step oracles"
             + (" (not used: --quick)" if cfg.quick else ""),
             "- one malicious agent drawn per episode (Byzantine: the team does not know which); "
             "the deterministic attacker plays δ = f_μ in the tables",
             "- ± is a Student-t 95 % interval over seeds (none with one seed)", ""]
    for r in results:
        s = summary(r)
        unit = "success/win rate" if r.metric == "win" else "team return"
        lines += [f"## {r.scenario}: {r.algo} ({unit})", ""]
        if r.scenario in NO_MESSAGE_BOUND:
            lines += ["Without messages a team wins at most about "
                      f"{_fmt(NO_MESSAGE_BOUND[r.scenario], r.metric)} here (scripted); a clean "
                      "figure above it means the messages carry what the blind agents need.", ""]
        lines += ["| | clean | every message random | random messages | msg_ppo "
                  "| filtered (msg_ppo) | filtered, clean |",
                  "|---|---:|---:|---:|---:|---:|---:|",
                  "| " + " | ".join([f"{len(r.seeds)} seed(s)"] + [
                      _fmt(s[k]["mean"], r.metric, s[k]["ci95"]) + _paper(r.scenario, p)
                      for k, p in (("clean", "clean"), ("noise_all", ""), ("random", ""),
                                   ("attacked", "attacked"),
                                   ("filtered", "filtered"), ("filtered_clean", ""))]) + " |",
                  "", "| figure | ours | per seed | paper |", "|---|---:|---|---:|"]
        for k, text in RATIO_TEXT.items():
            paper = ("" if k != "attack_drop" else
                     _fmt(PAPER_FIGURES.get(r.scenario, {}).get("attack_drop"), r.metric,
                          ratio=True))
            if k == "exploit_drop":
                paper = PAPER_EXPLOIT
            lines.append(f"| {text} | {_fmt(s[k]['mean'], r.metric, s[k]['ci95'], True)} | "
                         + ", ".join(_fmt(v, r.metric, ratio=True) for v in s[k]["seeds"])
                         + f" | {paper or '—'} |")
        lines += ["", "Trends of the paper, on the seed means:", ""]
        lines += [f"- {'not measurable' if ok is None else 'yes' if ok else '**no**'}: {claim}"
                  for claim, ok in trends(r, s)]
        lines += ["", f"Two attackers (f): team {_fmt(s['attacked2']['mean'], r.metric)}, "
                      "behind the one-attacker filter "
                      f"{_fmt(s['filter_vs_mp2']['mean'], r.metric)}, "
                      f"behind filter2 {_fmt(s['filtered2']['mean'], r.metric)} (random ×2: "
                      f"{_fmt(s['random2']['mean'], r.metric)}).", ""]
        if r.table3 is not None:
            t = r.table3
            plural = "s" if t.iterations != 1 else ""
            lines += [f"Table 3 (e), run `{t.run_id}` ({t.iterations} iteration{plural}, "
                      "team return): "
                      f"each defender against the final attacker population "
                      f"({len(t.attackers)} attackers).", "",
                      "| defender | uniform over the population | final attacker Nash mixture "
                      "| worst attacker |", "|---|---:|---:|---|"]
            for label, d in (("ℜ-MACRL (final defender mixture)", t.rmacrl),
                             ("single filter (vanilla)", t.single)):
                lines.append(f"| {label} | {d['uniform'][0]:.2f} ± {d['uniform'][1]:.2f} | "
                             f"{d['nash'][0]:.2f} ± {d['nash'][1]:.2f} | "
                             f"{d['worst'][0]:.2f} (`{d['worst'][1]}`) |")
            lines += ["", "Defender mixture: " + ", ".join(
                f"`{d}` {w:.2f}" for d, w in zip(t.defenders, t.sigma_defender) if w > 1e-6)
                + "; attacker mixture: " + ", ".join(
                f"`{a}` {w:.2f}" for a, w in zip(t.attackers, t.sigma_attacker) if w > 1e-6), ""]
        if r.curves:
            lines += [f"![{r.scenario} learning curves]({Path(r.curves).name})", ""]
        lines += [f"Policies (seed {r.seeds[0].seed}): " + ", ".join(
            f"{k} `{v}`" for k, v in r.seeds[0].refs.items()) + f"; {r.seconds:.0f} s.", ""]
    return "\n".join(lines)


def reproduce(league_open: Callable, cfg: S002Config, out: Path,
              hooks: Hooks | None = None) -> tuple[Path, list[ScenarioResult]]:
    """Regenerate the reproduction into `out` (report.md, curves per scenario, results.json)."""
    from arena.core import resolve_device

    cfg.validate()
    hooks = hooks or Hooks()
    cfg.device = str(resolve_device(cfg.device))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = []
    for scenario in cfg.scenarios:
        r = run_scenario(league_open, cfg, scenario, hooks)
        path = curves(league_open, r, out / f"curves_{scenario}.png")
        r.curves = str(path) if path else None
        results.append(r)
    seconds = time.perf_counter() - start
    report = out / "report.md"
    report.write_text(markdown(results, cfg, seconds, cfg.device))
    (out / "results.json").write_text(json.dumps(
        {"paper": PAPER, "config": asdict(cfg), "seconds": seconds, "teams": TEAMS,
         "scenarios": [{**asdict(r), "summary": summary(r)} for r in results],
         "paper_figures": PAPER_FIGURES}, indent=1, default=str))
    return report, results
