"""Crash soak of the league store: N writers killed by SIGKILL at random moments.

Every record a writer reported committed must still be in the league, with verified weights,
after every kill, and a purged name's versions must never repeat; a final writer must be able
to go on and close the league into one file. Kills that hit a checkpoint or a journal write are
counted from the temporary files they leave.

Usage: python scripts/soak_store.py --trials 500 --max-delay 1.0
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.soak import soak  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description="SIGKILL soak of the league store")
    ap.add_argument("--trials", type=int, default=200, help="writers to kill")
    ap.add_argument("--max-delay", type=float, default=0.8, help="longest time before a kill (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="directory for the league (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        r = soak(Path(d) / "league.h5", args.trials, args.max_delay, args.seed)
    print(f"{r['trials']} trials in {r['seconds']:.1f} s: {r['policies']} policies, {r['matches']} matches, "
          f"{r['iterations']} run iterations, {r['x_versions']} purge-and-re-add versions committed; "
          f"league {r['size_mb']:.1f} MB")
    print(f"killed during a checkpoint (merge copy on disk): {r['killed_in_checkpoint']}; "
          f"while writing a journal entry: {r['killed_writing_entry']}")
    for p in r["problems"]:
        print("PROBLEM:", p)
    print("OK: every committed record survived" if not r["problems"] else f"FAILED: {len(r['problems'])} problems")
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
