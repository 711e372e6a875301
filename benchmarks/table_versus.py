"""The batched payoff table timed on two checkouts of the project, alternately, in one run.

    git worktree add /tmp/base <commit>
    python benchmarks/table_versus.py --base /tmp/base --league L.h5 --scenario 3m

Each round times one batched fill (every cell of the league's default table, nothing
written) in a fresh process per checkout, base then this tree, so both see the same load;
it prints the median seconds of each and their ratio, and checks that both played the same
returns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# run inside the checkout under test: its modules first on the path
_SNIPPET = """
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(1)
from arena import payoff as pay
from policies.evaluate import default_players
from policies.lineup import build_lineup
from store import League
league, scenario, episodes = sys.argv[2], sys.argv[3], int(sys.argv[4])
with League(league) as lg:
    d, a = default_players(lg, scenario)
    lineup = build_lineup(lg, scenario, d, a, "cpu")
cells = [pay.Cell(x, y, episodes, 0) for x in d for y in a]
start = time.perf_counter()
stats = pay.run_cells(scenario, lineup, cells, "cpu")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "cells": len(cells),
                  "returns": [float(s.returns.sum()) for s in stats]}))
"""


def _time(tree: Path, league: Path, scenario: str, episodes: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _SNIPPET, str(tree), str(league), scenario,
                          str(episodes)], capture_output=True, text=True, cwd=tree,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if out.returncode:
        sys.exit(f"{tree}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout to compare against")
    ap.add_argument("--league", type=Path, required=True)
    ap.add_argument("--scenario", default="3m")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"base": [], "head": []}
    returns = {}
    for r in range(args.rounds):
        for name, tree in (("base", args.base.resolve()), ("head", HERE)):
            got = _time(tree, args.league.resolve(), args.scenario, args.episodes)
            times[name].append(got["seconds"])
            returns[name] = got["returns"]
            print(f"round {r + 1} {name}: {got['seconds']:.2f} s ({got['cells']} cells)",
                  flush=True)
    base, head = statistics.median(times["base"]), statistics.median(times["head"])
    same = all(abs(x - y) < 1e-3 for x, y in zip(returns["base"], returns["head"]))
    print(f"median: base {base:.2f} s, this tree {head:.2f} s: {base / head:.2f}x; "
          f"same returns: {same}")


if __name__ == "__main__":
    main()
