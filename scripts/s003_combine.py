"""Joins per-map `arena reproduce s003` outputs into one Table I report, and checks the
3m figures against the pattern the paper reports (which rows hold which attacks).

    python scripts/s003_combine.py build/s003/out_2m_vs_1z build/s003/out_3m … --out docs/s003
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from policies.reproduce_s003 import MapResult, ReproduceConfig, markdown

# The pattern of the paper on 3m (the reading of its Table I): rows, column, bound.
PATTERN_3M = [
    ("qmix", "none", ">=", 0.9), ("qmix", "fgsm", "<=", 0.1), ("qmix", "pa_ad*", "<=", 0.1),
    ("qmix_fgsm", "fgsm", ">=", 0.7), ("qmix_reg", "fgsm", ">=", 0.7),
    ("qmix_paad", "fgsm", ">=", 0.7), ("qmix_atla", "atla*", ">=", 0.7),
    ("qmix_fgsm", "none", ">=", 0.9), ("qmix_reg", "none", ">=", 0.9),
    ("qmix_atla", "none", ">=", 0.9), ("qmix_paad", "none", ">=", 0.9),
]


def check(r: MapResult) -> list[str]:
    lines = []
    for model, col, op, bound in PATTERN_3M:
        if model not in r.models or col not in r.columns:
            continue
        w = r.win[r.models.index(model)][r.columns.index(col)]
        ok = w is not None and (w >= bound if op == ">=" else w <= bound)
        lines.append(f"| {model} | {col} | {op} {bound:.0%} | "
                     f"{'—' if w is None else f'{w:.0%}'} | {'met' if ok else 'NOT met'} |")
    return lines


def compact(results: list[MapResult]) -> str:
    """Every map's win rates in one table (the README's)."""
    from policies.reproduce_s003 import COLUMN_TEXT, MODEL_TEXT

    cols = results[0].columns
    lines = ["| map (ε) | model | " + " | ".join(COLUMN_TEXT[c] for c in cols) + " |",
             "|---|---|" + "---:|" * len(cols)]
    for r in results:
        for i, m in enumerate(r.models):
            cells = ["—" if w is None else f"{100 * w:.0f}%" for w in r.win[i]]
            lines.append(f"| {r.scenario} ({r.eps:g}) | {MODEL_TEXT[m]} | " + " | ".join(cells)
                         + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results, seconds, cfg = [], 0.0, None
    for d in args.dirs:
        data = json.loads((d / "results.json").read_text())
        cfg = cfg or ReproduceConfig(**{**data["config"], "maps": []})
        seconds += data["seconds"]
        for m in data["maps"]:
            r = MapResult(**m)
            if r.heatmap:
                shutil.copy(r.heatmap, args.out / Path(r.heatmap).name)
            results.append(r)
    cfg.maps = [r.scenario for r in results]
    text = markdown(results, cfg, seconds, cfg.device)
    text = text.replace("\n## ", "\n## All maps (win rates)\n\n" + compact(results) + "\n## ", 1)
    three = [r for r in results if r.scenario == "3m"]
    if three:
        text += "\n## The paper's pattern on 3m\n\n| row | column | bound | ours | |\n|---|---|---|---|---|\n"
        text += "\n".join(check(three[0])) + "\n"
    (args.out / "report.md").write_text(text)
    print(f"report written to {args.out / 'report.md'}")


if __name__ == "__main__":
    main()
