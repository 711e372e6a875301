"""Fuzz the command line: random, mostly wrong command lines against a copy of the starter
league; every one must end with exit 0, or with one `error:` line and exit 2 — never a
traceback and never "error: unexpected …" (an exception the CLI did not expect).

    .venv/bin/python scripts/fuzz_cli.py --lines 300 --seed 0

Prints one line per failure and a summary; exits 1 when any line failed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMANDS = {
    "ls": ["--role", "--kind", "--scenario", "--all", "--json"],
    "show": ["REF", "--plot", "--scenario", "--json"],
    "retire": ["REF", "--purge", "--force", "--scenario"],
    "add-policy": ["NAME", "--kind", "--role", "--scenario", "--param", "--from", "--mixer"],
    "kinds": ["--json"],
    "scenarios": ["--json"],
    "play": ["REF", "vs", "REF", "--scenario", "--episodes", "--seed", "--json"],
    "matrix": ["--scenario", "--defenders", "--attackers", "--episodes", "--seed", "--metric",
               "--format", "--csv", "--plot", "--by-seed"],
    "solve": ["--scenario", "--method", "--metric", "--matrix", "--bootstrap", "--seed",
              "--defenders", "--attackers", "--iterations", "--alpha"],
    "runs": ["--json"],
    "export": ["REF", "--format", "--out", "--scenario"],
    "init": ["--force", "--starter"],
    "bench env": ["--scenario", "--batch", "--steps"],
}
GLOBAL = ["--league", "--device", "--quiet", "--lock-timeout", "--json"]
VALUES = ["", "x", "x/y", "-1", "0", "1", "2", "nan", "inf", "1e309", "3m", "pp7", "qmix",
          "qmix@v1", "qmix@v99", "fgsm", "none", "pa_ad.3m", "eps=0.2", "eps=7", "targets=0,7",
          "hidden=1000000", "steps=0", "9" * 30, "-9" * 5, "@", "..", "return", "win", "lp",
          "rd", "alpharank", "csv", "latex", "markdown", "/nonexistent/dir/x.png", "cpu", "cuda",
          "tpu", "a,b", ",", "0.5", "2**63", "9223372036854775808", "1,64", "x,1"]


def random_line(rng: random.Random) -> list[str]:
    cmd = rng.choice(list(COMMANDS))
    args = cmd.split()
    for _ in range(rng.randint(0, 5)):
        opt = rng.choice(COMMANDS[cmd] + GLOBAL + ["--bogus"])
        if opt in ("REF", "NAME", "vs"):
            args.append(opt.lower() if opt == "vs" else rng.choice(VALUES))
        elif opt in ("--all", "--json", "--purge", "--force", "--starter", "--quiet", "--csv",
                     "--by-seed"):
            args.append(opt)
        elif opt == "--league":
            continue  # every line runs on its own copy; another file is tried below
        else:
            args += [opt, rng.choice(VALUES)]
    return args


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from click.testing import CliRunner

    from cli import main as arena
    from store.starter import starter_path

    rng = random.Random(a.seed)
    failures, codes = 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.lines):
            league = Path(tmp) / f"l{k}.h5"
            shutil.copy(starter_path(), league)
            args = ["--league", str(league)] + random_line(rng)
            res = CliRunner().invoke(arena, args, catch_exceptions=True)
            out = res.output.strip()
            lines = [ln for ln in out.splitlines() if ln.strip()]
            codes[res.exit_code] = codes.get(res.exit_code, 0) + 1
            bad = (res.exception is not None and not isinstance(res.exception, SystemExit)) \
                or "Traceback" in out or "error: unexpected" in out \
                or (res.exit_code != 0 and (len(lines) != 1 or not lines[0].startswith("error:")))
            if bad:
                failures += 1
                print(f"FAIL exit {res.exit_code}: arena {' '.join(args[2:])}\n  "
                      + (out.replace("\n", "\n  ")[:600] or repr(res.exception)))
            league.unlink(missing_ok=True)
    print(f"{a.lines} command lines: {failures} failed; exit codes {dict(sorted(codes.items()))}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
