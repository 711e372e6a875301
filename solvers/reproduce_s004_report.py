"""The s004 report: learning curves with a 95 % interval over seeds, the steps each algorithm
takes to a damage target, the retraining table, the transfer table and the paper's trends
checked one by one (Markdown, results.json and one figure per scenario)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from solvers.reproduce_s002_report import t_interval
from solvers.reproduce_s004 import ALGOS, S004Config, ScenarioResult, run

_LABEL = {"takeover_ppo": "PPO (adversarial PPO)", "takeover_dev": "PPO + deviation terms"}


def mean_curve(by_seed: dict) -> list[tuple[float, float, float | None]]:
    """(steps, mean return, CI half-width) per evaluation point, seeds aligned by index."""
    n = min((len(c) for c in by_seed.values()), default=0)
    out = []
    for k in range(n):
        steps = float(np.mean([c[k][0] for c in by_seed.values()]))
        m, ci = t_interval([c[k][1] for c in by_seed.values()])
        out.append((steps, m, ci))
    return out


def target(res: ScenarioResult) -> float | None:
    """The damage target: 90 % of the way from the untrained adversary's return (the curves'
    first points) to plain PPO's final return, means over seeds; both algorithms are timed
    to it."""
    ppo = res.finals.get("takeover_ppo", {})
    starts = [c[0][1] for a in ALGOS for c in res.curves.get(a, {}).values() if c]
    if not ppo or not starts:
        return None
    final = float(np.mean([f["final_attacked_return"] for f in ppo.values()]))
    return float(np.mean(starts) + 0.9 * (final - np.mean(starts)))


def steps_to(curve: list, goal: float) -> float:
    """First evaluation step whose return is at or below `goal` (inf when never)."""
    return next((float(s) for s, r in curve if r <= goal), float("inf"))


def summary(res: ScenarioResult) -> dict:
    goal = target(res)
    out = {"target_return": goal}
    for algo in ALGOS:
        curves, finals = res.curves.get(algo, {}), res.finals.get(algo, {})
        if not finals:
            continue
        hit = [steps_to(c, goal) for c in curves.values()] if goal is not None else []
        out[algo] = {
            "final_attacked": t_interval([f["final_attacked_return"] for f in finals.values()]),
            "final_random": t_interval([f["final_random_return"] for f in finals.values()]),
            "final_clean": t_interval([f["final_clean_return"] for f in finals.values()]),
            "area": t_interval([float(np.mean([r for _, r in c])) for c in curves.values()
                                if c]),
            "steps_to_target": hit,
            "reached": sum(np.isfinite(hit)),
        }
    return out


def _cell(t: dict, d: str, a: str) -> tuple[float, float]:
    i, j = t["defenders"].index(d), t["attackers"].index(a)
    return t["mean"][i][j], t["ci95"][i][j]


def trends(res: ScenarioResult, s: dict) -> list[tuple[str, bool | None]]:
    out = []
    ppo, dev = s.get("takeover_ppo"), s.get("takeover_dev")
    if ppo and dev:
        for algo, d in (("takeover_ppo", ppo), ("takeover_dev", dev)):
            out.append((f"{algo} damages more than takeover_random (lower final return)",
                        d["final_attacked"][0] < d["final_random"][0]))
        fin = [np.mean([x for x in d["steps_to_target"] if np.isfinite(x)] or [np.inf])
               for d in (ppo, dev)]
        out.append(("the deviation terms reach the damage target in fewer steps "
                    f"({fin[1]:,.0f} vs {fin[0]:,.0f}, seeds that reached it)",
                    dev["reached"] >= ppo["reached"] and fin[1] < fin[0]))
        out.append(("the deviation terms give the lower curve (mean return over training)",
                    dev["area"][0] < ppo["area"][0]))
    t = res.retrain
    if t:
        team, re = t["defenders"]
        adv = t["attackers"][2]
        out.append(("retraining raises the return under the training adversary",
                    _cell(t, re, adv)[0] > _cell(t, team, adv)[0]))
        out.append(("retraining costs clean return (the generalisability cost)",
                    _cell(t, re, "none")[0] < _cell(t, team, "none")[0]))
        if len(t["attackers"]) > 4:
            out.append(("a fresh adversary still breaks the retrained team (its return under it "
                        "is below its clean return by more than the CI)",
                        _cell(t, re, t["attackers"][3])[0] + _cell(t, re, t["attackers"][3])[1]
                        < _cell(t, re, "none")[0]))
    tr = res.transfer
    if tr and len(tr["attackers"]) > 2:
        hurt = [all(tr["mean"][i][j] < tr["mean"][i][0] for j in range(2, len(tr["attackers"])))
                for i in range(len(tr["defenders"]))]
        out.append((f"adversaries trained against {res.team} transfer to the other teams "
                    f"({sum(hurt)} of {len(hurt)} teams lose return to each)", all(hurt)))
    return out


def _fmt(m, ci=None) -> str:
    if m is None or not np.isfinite(m):
        return "—"
    return f"{m:.2f}" + (f" ± {ci:.2f}" if ci else "")


def _table_md(t: dict, scenario: str) -> list[str]:
    from arena.plots import short

    cols = [short(a, scenario) for a in t["attackers"]]
    lines = ["| team | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i, d in enumerate(t["defenders"]):
        cells = [f"{_fmt(t['mean'][i][j], t['ci95'][i][j])} ({t['win'][i][j]:.0%})"
                 for j in range(len(cols))]
        lines.append(f"| {short(d, scenario)} | " + " | ".join(cells) + " |")
    return lines


def plot(res: ScenarioResult, out: Path) -> Path | None:
    from arena.plots import curve_panels

    lines = {}
    for algo in ALGOS:
        c = mean_curve(res.curves.get(algo, {}))
        if c:
            lines[_LABEL[algo]] = ([p[0] for p in c], [p[1] for p in c])
    if not lines:
        return None
    return curve_panels([(f"{res.scenario}: team return under attack", "team return", lines)],
                        out / f"curves_{res.scenario}.png", "takeover: attacker training",
                        xlabel="attacker training steps")


def markdown(results: list, cfg: S004Config, seconds: float, figures: dict) -> str:
    out = ["# s004: adversarial teammates (Wu et al., USENIX Security 2021)", "",
           f"Scenarios {', '.join(cfg.scenarios)}; seeds {cfg.seeds}; "
           + ("--quick: the starter's shipped policies, nothing trained; " if cfg.quick else "")
           + f"{cfg.episodes} episodes per table cell; {seconds:.0f} s.", "",
           "The paper's tables are on two-player MuJoCo and Pong games, not on cooperative "
           "teams: its numbers have no counterpart here, so the report checks its claims as "
           "trends. One agent of the team is hijacked per episode (drawn per episode); the "
           "learned adversaries play their stochastic policy, sampled from each episode's own "
           "stream.", ""]
    for res in results:
        s = summary(res)
        out += [f"## {res.scenario} (victim team {res.team})", ""]
        if res.scenario in figures and figures[res.scenario]:
            out += [f"![curves]({figures[res.scenario].name})", ""]
        if any(a in s for a in ALGOS):
            out += ["| attacker | final return under attack | takeover_random | clean | "
                    "mean over the curve | steps to the target |", "|---|---|---|---|---|---|"]
            for algo in ALGOS:
                d = s.get(algo)
                if not d:
                    continue
                hit = [x for x in d["steps_to_target"] if np.isfinite(x)]
                reach = (f"{np.mean(hit):,.0f} ({d['reached']}/{len(d['steps_to_target'])} "
                         f"seeds)" if hit else "not reached")
                out.append(f"| {algo} | {_fmt(*d['final_attacked'])} | "
                           f"{_fmt(*d['final_random'])} | {_fmt(*d['final_clean'])} | "
                           f"{_fmt(*d['area'])} | {reach} |")
            out += ["", f"Damage target: return {_fmt(s['target_return'])} (90 % of the way "
                    "from the untrained adversary to plain PPO's final return).", ""]
            for algo in ALGOS:
                c = mean_curve(res.curves.get(algo, {}))
                if c:
                    pts = ", ".join(f"{st / 1000:.1f}k: {_fmt(m, ci)}" for st, m, ci in c)
                    out += [f"- {algo} curve (mean ± 95 % CI over seeds): {pts}"]
            out.append("")
        if res.retrain:
            out += ["### Adversarial retraining", "",
                    "Return ± 95 % CI (win rate). Columns: no attack, random hijacker, the "
                    "retraining's last adversary, a fresh takeover_dev trained against the "
                    "retrained team, the seed-0 adversary trained against the original team.",
                    ""] + _table_md(res.retrain, res.scenario) + [""]
        if res.transfer:
            out += ["### Transfer to other teams of the scenario", "",
                    f"Adversaries trained against {res.team} only."] + [""] \
                + _table_md(res.transfer, res.scenario) + [""]
        out += ["### Trends", ""]
        out += [f"- {'✓' if ok else '✗' if ok is not None else '?'} {text}"
                for text, ok in trends(res, s)] + [""]
    return "\n".join(out)


def to_json(results: list) -> dict:
    return {"scenarios": {r.scenario: {**asdict(r), "summary": summary(r),
                                       "trends": [{"trend": t, "holds": ok}
                                                  for t, ok in trends(r, summary(r))]}
                          for r in results}}


def reproduce(league_open: Callable, cfg: S004Config, out: Path, hooks=None):
    start = time.perf_counter()
    results = run(league_open, cfg, hooks)
    out.mkdir(parents=True, exist_ok=True)
    figures = {r.scenario: plot(r, out) for r in results}
    report = out / "report.md"
    report.write_text(markdown(results, cfg, time.perf_counter() - start, figures))
    data = to_json(results)
    (out / "results.json").write_text(json.dumps(data, indent=1, default=float))
    return report, data
