"""The Markdown report of `arena reproduce s000` (MARNet) and the paper's trends checked.

The paper's own figures could not be read here (only its abstract is public: the submission
was withdrawn), so the report prints ours and checks the trends the paper states instead of
cells: MARNet keeps the clean score within about 5 % of the normal model's; its triggered
score falls monotonically with the trigger size and ends far below the normal model's at
25 %; TrojDRL lowers the clean score; MTL barely works; fine-tuning mitigates the backdoor but
does not remove it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from solvers.reproduce_s000 import (LEARNERS, SIZES, S000Config, S000Result, defence_specs,
                                    run)
from solvers.reproduce_s002_report import t_interval

LABELS = {"normal": "normal", "mtl": "MTL", "trojdrl": "TrojDRL (targeted)", "marnet": "MARNet",
          "ideal": "EGA played directly (bound)", "marnet_long": "MARNet, 5× poisoning steps"}


def per_seed(row, size: int, what: int = 0) -> list[float]:
    """The mean over episodes of each seed (or, for one team, of each episode)."""
    x = row.sweep[:, size, :, what]  # [seeds, episodes]
    return x.mean(1).tolist() if len(x) > 1 else x[0].tolist()


def cell(row, size: int, what: int = 0, pct: bool = False) -> str:
    mean, ci = t_interval(per_seed(row, size, what))
    k = 100.0 if pct else 1.0
    text = f"{k * mean:.0f}" if pct else f"{mean:.1f}"
    return text + (f" ± {k * ci:.0f}" if pct and ci else f" ± {ci:.1f}" if ci else "") + \
        (" %" if pct else "")


def mean_at(row, size: int, what: int = 0) -> float:
    return float(row.sweep[:, size, :, what].mean())


def trends(res: S000Result) -> list[tuple[str, bool]]:
    out = []
    last = len(SIZES) - 1
    for learner in LEARNERS:
        rows = {r.label: r for r in res.table1 if r.learner == learner}
        if "normal" not in rows or "marnet" not in rows:
            continue
        n, m = rows["normal"], rows["marnet"]
        c_n, c_m = mean_at(n, 0), mean_at(m, 0)
        out.append((f"{learner}: MARNet's clean return {c_m:.1f} is within 5 % of the normal "
                    f"model's {c_n:.1f}", abs(c_m - c_n) <= 0.05 * abs(c_n)))
        t = [mean_at(m, k) for k in range(len(SIZES))]
        out.append((f"{learner}: MARNet's triggered return falls with the trigger size ("
                    + " → ".join(f"{v:.1f}" for v in t) + ")",
                    all(b <= a for a, b in zip(t, t[1:])) and t[last] < t[0]))
        n_last = mean_at(n, last)
        out.append((f"{learner}: at 25 % MARNet's {t[last]:.1f} is far below the normal "
                    f"model's {n_last:.1f} (by more than half its size)",
                    t[last] < n_last - 0.5 * abs(n_last)))
        if "trojdrl" in rows:
            c_t = mean_at(rows["trojdrl"], 0)
            out.append((f"{learner}: TrojDRL lowers the clean return ({c_t:.1f} vs "
                        f"{c_n:.1f})", c_t < c_n))
        if "mtl" in rows:
            t_mtl = mean_at(rows["mtl"], last)
            n_last = mean_at(n, last)
            out.append((f"{learner}: MTL barely works (triggered {t_mtl:.1f} at 25 %, within "
                        f"20 % of the normal model's {n_last:.1f})",
                        t_mtl >= n_last - 0.2 * abs(n_last)))
    rows = {r.label: r for r in res.smac}
    if "normal" in rows and "marnet" in rows:
        n, m = rows["normal"], rows["marnet"]
        w = [mean_at(m, k, 1) for k in range(len(SIZES))]
        seeds = per_seed(m, 0, 1)
        kept = sum(v >= 0.95 * mean_at(n, 0, 1) for v in seeds)
        out.append((f"3m_marker: MARNet keeps the normal model's clean win rate "
                    f"({100 * mean_at(n, 0, 1):.0f} %) within 5 % in {kept} of {len(seeds)} "
                    f"seeds (" + ", ".join(f"{100 * v:.0f} %" for v in seeds) + ")",
                    2 * kept > len(seeds)))
        out.append(("3m_marker: MARNet's triggered win rate falls with the trigger size ("
                    + " → ".join(f"{100 * v:.0f} %" for v in w) + ")",
                    all(b <= a for a, b in zip(w, w[1:])) and w[-1] < w[0]))
        if "trojdrl" in rows:
            t = mean_at(rows["trojdrl"], 0, 1)
            out.append((f"3m_marker: TrojDRL lowers the clean win rate ({100 * t:.0f} % vs "
                        f"{100 * mean_at(n, 0, 1):.0f} %)", t < mean_at(n, 0, 1)))
    for learner in LEARNERS:
        none, ft = res.table3.get(("none", learner)), res.table3.get(("Fine-tune2", learner))
        if none and ft:
            tn, tf, cf = np.mean(none[1]), np.mean(ft[1]), np.mean(ft[0])
            out.append((f"{learner}: Fine-tune2 mitigates (triggered {tn:.1f} → {tf:.1f}) but "
                        f"does not remove the backdoor (clean {cf:.1f})", tn < tf < 0.95 * cf))
    return [(text, bool(ok)) for text, ok in out]


def markdown(res: S000Result, cfg: S000Config, seconds: float) -> str:
    lines = ["# MARNet backdoors on stag10 (`arena reproduce s000`)", "",
             "The paper's figures are not beside ours: only its abstract could be read (the "
             "submission was withdrawn). The trends it states are checked at the end.", "",
             f"Seeds {cfg.seeds} (ablation {cfg.ablation_seeds}), {cfg.episodes} episodes per "
             f"team and trigger size on common seeds, poisoning {cfg.poison_steps:,} steps "
             f"({cfg.poison_updates} updates per collection of 8 episodes) from "
             f"the expert. Mean ± Student-t 95 % interval over seeds (over episodes for the "
             f"normal model, one expert per learner).", "",
             "## Table 1: team return, clean and triggered", "",
             "| learner | model | " + " | ".join(f"{s:.0%}" for s in SIZES) + " |",
             "|---|---|" + "---|" * len(SIZES)]
    for r in res.table1:
        lines.append(f"| {r.learner} | {LABELS[r.label]} | "
                     + " | ".join(cell(r, k) for k in range(len(SIZES))) + " |")
    lines += ["", "0 % is clean play: the same episodes without a trigger. The last row of each "
              "learner is no trained team: the expert whose poisoned agents answer every "
              "poisoned step with its least-valued action, as EGA does in training; it bounds "
              "what a perfectly implanted MARNet backdoor costs.", "",
              "Where the backdoor fires, action by action: the share of the steps in which a "
              "poisoned agent sees the trigger (25 %) that it answers with the expert's "
              "least-valued action (mean over seeds; the normal model's is the baseline).", "",
              "The value gap is the team's Q_tot of its greedy actions over the first 20 steps, "
              "triggered minus clean (same episodes): MGR pays about r_max·n_p/n per poisoned "
              "step, so a team that has learned the poisoned task values triggered states far "
              "higher.", "",
              "| learner | model | poisoned agents' worst-action share | value gap |",
              "|---|---|---|---|"]
    for r in res.table1:
        if r.label != "ideal":
            lines.append(f"| {r.learner} | {LABELS[r.label]} | {100 * np.mean(r.worst):.0f} % "
                         f"| {np.mean(r.gap):+.1f} |")
    lines.append("")
    if res.ablation:
        lines += ["## Table 2: ablation on QMIX (clean / triggered at 25 %)", "",
                  "| action poisoning | MGR | max (TrojDRL) |", "|---|---|---|"]
        for action in ("ega", "targeted", "untargeted"):
            cells = []
            for reward in ("mgr", "max"):
                r = res.ablation.get((action, reward))
                cells.append(f"{mean_at(r, 0):.1f} / {mean_at(r, len(SIZES) - 1):.1f}"
                             if r is not None else "–")
            lines.append(f"| {action} | " + " | ".join(cells) + " |")
        lines.append("")
    if res.table3:
        lines += ["## Table 3: defences against MARNet (clean / triggered at 25 %)", "",
                  "| defence | " + " | ".join(LEARNERS) + " |", "|---|" + "---|" * len(LEARNERS)]
        for label, (kind, params) in defence_specs(cfg).items():
            cells = []
            for learner in LEARNERS:
                v = res.table3.get((label, learner))
                cells.append(f"{np.mean(v[0]):.1f} / {np.mean(v[1]):.1f}" if v else "–")
            what = ", ".join(f"{k} {v:,}" for k, v in params.items())
            lines.append(f"| {label} ({kind}{', ' + what if what else ''}) | "
                         + " | ".join(cells) + " |")
        lines.append("")
    if res.smac:
        lines += ["## SMAC-style: 3m_marker, win rate (one poisoned agent of three)", "",
                  "| model | " + " | ".join(f"{s:.0%}" for s in SIZES) + " |",
                  "|---|" + "---|" * len(SIZES)]
        for r in res.smac:
            lines.append(f"| {LABELS[r.label]} | "
                         + " | ".join(cell(r, k, 1, pct=True) for k in range(len(SIZES))) + " |")
        lines.append("")
    if res.ood:
        lines += ["## The out-of-distribution trigger (stag10_ood, QMIX)", "",
                  "The same QMIX expert, given the trigger channel with zero weights (it plays "
                  "as before), poisoned by MARNet as above: team return by trigger size, the "
                  "poisoned agents' worst-action share and the value gap at 25 %.", "",
                  "| model | " + " | ".join(f"{s:.0%}" for s in SIZES) + " | worst | gap |",
                  "|---|" + "---|" * (len(SIZES) + 2)]
        for r in res.ood:
            tail = (f" | {100 * np.mean(r.worst):.0f} % | {np.mean(r.gap):+.1f} |"
                    if r.label != "ideal" else " | | |")
            lines.append(f"| {LABELS[r.label]} | "
                         + " | ".join(cell(r, k) for k in range(len(SIZES))) + tail)
        lines.append("")
    lines += ["## The paper's trends", ""]
    lines += [f"- {'✓' if ok else '✗'} {text}" for text, ok in trends(res)]
    lines += ["", f"Generated in {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


def to_json(res: S000Result) -> dict:
    def rows(rs):
        return [{"label": r.label, "learner": r.learner, "refs": r.refs,
                 "mean_return": [mean_at(r, k) for k in range(len(SIZES))],
                 "worst_action_rate": r.worst, "value_gap": r.gap,
                 "win_rate": [mean_at(r, k, 1) for k in range(len(SIZES))],
                 "per_seed_return": [per_seed(r, k) for k in range(len(SIZES))]} for r in rs]

    return {"sizes": list(SIZES), "table1": rows(res.table1),
            "ablation": {f"{a}+{b}": rows([r])[0] for (a, b), r in res.ablation.items()},
            "table3": {f"{d}/{learner}": {"clean": v[0], "triggered": v[1]}
                       for (d, learner), v in res.table3.items()},
            "smac": rows(res.smac), "ood": rows(res.ood),
            "trends": [{"text": t, "ok": ok} for t, ok in trends(res)]}


def reproduce(league_open: Callable, cfg: S000Config, out: Path, hooks=None):
    import time

    start = time.perf_counter()
    res = run(league_open, cfg, hooks)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.md"
    report.write_text(markdown(res, cfg, time.perf_counter() - start))
    data = to_json(res)
    (out / "results.json").write_text(json.dumps(data, indent=1))
    return report, data
