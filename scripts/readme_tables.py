"""The README's result tables, regenerated from the shipped starter league.

    .venv/bin/python scripts/readme_tables.py > /tmp/tables.md

Copies the starter league, fills each scenario's table with `arena matrix` (32 episodes per
cell, the adaptive columns reusing the shipped adaptive attackers) and prints, per scenario, a
Markdown table of "win rate  return±std" per cell and the mean perturbation norm per attack.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# what scripts/build_starter_league.sh trained the adaptive attackers with
ADAPTIVE = ["--adaptive", "atla,pa_ad", "--adaptive-steps", "100000", "--adaptive-eps", "0.2",
            "--seed", "10"]


def table(league: Path, scenario: str, episodes: int) -> str:
    from arena.plots import short
    from store import League

    out = subprocess.run(
        [str(ROOT / ".venv/bin/arena"), "--league", str(league), "--quiet", "--device", "cpu",
         "matrix", "--scenario", scenario, "--episodes", str(episodes), "--json", *ADAPTIVE],
        check=True, capture_output=True, text=True).stdout
    t = json.loads(out)
    atts, defs = t["attackers"], t["defenders"]
    head = "| defender \\ attacker | " + " | ".join(short(a, scenario) for a in atts) + " |"
    rows = [head, "|---" * (len(atts) + 1) + "|"]
    for i, d in enumerate(defs):
        cells = [f"{t['win_rate'][i][j]:.0%} {t['mean'][i][j]:.1f}±{t['std'][i][j]:.1f}"
                 for j in range(len(atts))]
        rows.append(f"| {short(d, scenario)} | " + " | ".join(cells) + " |")
    # attack cost: the mean over the table's episodes of each attacker (a starred column is
    # the diagonal of its adaptive attackers)
    with League(league) as lg:
        recs = lg.matches(scenario)
    members = {a: [a] for a in atts}
    for algo, col in ((t.get("adaptive") or {}).get("columns") or {}).items():
        members[f"{algo}*"] = list(col.values())  # defender ref → its adaptive attacker
    costs = []
    for a in atts:
        if a == "none":
            continue
        c = [np.mean(r.attack_cost) for r in recs if r.attacker in members[a]
             and r.defender in defs]
        if c:
            costs.append(f"{short(a, scenario)} {np.mean(c):.3f}")
    return "\n".join(rows) + "\n\nmean perturbation norm per attacked step (L∞): " + \
        ", ".join(costs) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="3m,pp7")
    ap.add_argument("--episodes", type=int, default=32)
    a = ap.parse_args()
    from store.starter import starter_path

    with tempfile.TemporaryDirectory() as tmp:
        league = Path(tmp) / "league.h5"
        shutil.copy(starter_path(), league)
        for s in a.scenarios.split(","):
            print(f"### {s}\n\n{table(league, s, a.episodes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
