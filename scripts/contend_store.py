"""Lock contention audit of the league store: writers and a steady stream of readers on one league.

Writers do what `arena add-policy` does: open the league, add one version of a shared name,
close (which merges the journal), then pause. Readers do what `ls`, `show` and `solve` do, with
no pause: open, list every version, show one with its weights, read a payoff table, close. Every
operation opens the league anew with the given lock timeout, like a separate command would.

At the end the league must hold exactly the versions the writers were told they added, each
once, with weights that verify. Prints the writers' lock waits (time until the write lock was
held), their failed writes (lock timeouts), the readers' operations and failures, and any
duplicate, lost or corrupted version.

Usage: python scripts/contend_store.py --seconds 60 --writers 2 --readers 4 --lock-timeout 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import League, LockTimeout, MatchRecord  # noqa: E402

SCENARIO = "3m"


def seed_league(path: Path) -> None:
    League.create(path, force=True)
    rng = np.random.default_rng(0)
    with League(path, "a") as lg, lg.transaction():
        for i in range(20):
            lg.add_policy(f"d{i}", "defender", "qmix", SCENARIO, {"i": i},
                          {"w": rng.standard_normal(4000).astype(np.float32)}, {})
        for j in range(5):
            lg.add_policy(f"a{j}", "attacker", "fgsm", "any", {"eps": 0.1 * j}, {}, {})
        for i in range(20):
            for j in range(5):
                e = 16
                lg.add_match(MatchRecord(f"d{i}@v1", f"a{j}@v1", SCENARIO, rng.standard_normal(e),
                                         rng.integers(0, 2, e), np.full(e, 30), np.zeros(e), i * 10 + j,
                                         "cpu", "contend"))


def writer(path: Path, k: int, until: float, timeout: float, pause: float, out) -> None:
    rng = np.random.default_rng(100 + k)
    waits, totals, added, failed, errors = [], [], [], 0, []
    while time.time() < until:
        t0 = time.monotonic()
        try:
            lg = League(path, "a", lock_timeout=timeout)
            try:
                with lg.transaction():
                    waits.append(time.monotonic() - t0)
                    w = {"w": rng.standard_normal(2000).astype(np.float32)}
                    ref = lg.add_policy("w", "defender", "qmix", SCENARIO, {"writer": k}, w, {})
                    sha = lg.info(ref).sha256
                added.append((ref, sha))  # committed: the transaction returned
            finally:
                lg.close()
            totals.append(time.monotonic() - t0)
        except LockTimeout:
            failed += 1
            waits.append(time.monotonic() - t0)
        except Exception as e:  # counted as corruption or a bug
            errors.append(f"{type(e).__name__}: {e}")
        time.sleep(pause)
    out.put({"role": "writer", "waits": waits, "totals": totals, "added": added, "failed": failed,
             "errors": errors})


def reader(path: Path, k: int, until: float, timeout: float, out) -> None:
    rng = np.random.default_rng(200 + k)
    ops, failed, errors = 0, 0, []
    while time.time() < until:
        try:
            with League(path, "r", lock_timeout=timeout) as lg:
                infos = lg.list(all_versions=True)  # ls
                pick = infos[int(rng.integers(len(infos)))]
                lg.get(pick.ref)  # show (weights verified against their sha256)
                defenders = [f"d{i}" for i in rng.choice(20, 6, replace=False)]
                lg.payoff(SCENARIO, defenders, ["none"] + [f"a{j}" for j in range(5)])  # solve
            ops += 1
        except LockTimeout:
            failed += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    out.put({"role": "reader", "ops": ops, "failed": failed, "errors": errors})


def verify(path: Path, added: list[tuple[str, str]]) -> dict:
    counts = Counter(ref for ref, _ in added)
    problems = []
    with League(path, "r", lock_timeout=30) as lg:
        stored = {p.ref for p in lg.list(all_versions=True, include_retired=True) if p.name == "w"}
        for ref, sha in dict(added).items():
            try:
                if lg.get(ref).sha256 != sha:
                    problems.append(f"{ref}: sha256 differs from the one committed")
            except Exception as e:
                problems.append(f"{ref}: {type(e).__name__}: {e}")
    return {"duplicates": sum(c - 1 for c in counts.values()), "lost": len(set(counts) - stored),
            "unreported": len(stored - set(counts)), "corrupt": problems}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description="lock contention audit of the league store")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--lock-timeout", type=float, default=2.0)
    ap.add_argument("--writer-pause", type=float, default=0.2, help="pause between one writer's writes (s)")
    ap.add_argument("--dir", default=None, help="directory for the league (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = Path(d) / "league.h5"
        seed_league(path)
        until = time.time() + args.seconds
        out = ctx.Queue()
        procs = [ctx.Process(target=writer, args=(path, k, until, args.lock_timeout, args.writer_pause, out))
                 for k in range(args.writers)]
        procs += [ctx.Process(target=reader, args=(path, k, until, args.lock_timeout, out))
                  for k in range(args.readers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join()
        ws = [r for r in results if r["role"] == "writer"]
        rs = [r for r in results if r["role"] == "reader"]
        added = [tuple(a) for w in ws for a in w["added"]]
        check = verify(path, added)
    waits = [x for w in ws for x in w["waits"]]
    report = {
        "seconds": args.seconds, "writers": args.writers, "readers": args.readers,
        "lock_timeout": args.lock_timeout, "writes": len(added), "failed_writes": sum(w["failed"] for w in ws),
        "writer_wait_p50": pct(waits, 50), "writer_wait_p90": pct(waits, 90), "writer_wait_max": max(waits, default=0.0),
        "reads": sum(r["ops"] for r in rs), "failed_reads": sum(r["failed"] for r in rs),
        "errors": [e for r in results for e in r["errors"]], **check,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.writers} writers + {args.readers} readers for {args.seconds:g} s, lock timeout "
              f"{args.lock_timeout:g} s")
        print(f"writes: {report['writes']} committed, {report['failed_writes']} failed (lock timeout); "
              f"writer lock wait p50 {report['writer_wait_p50']:.3f} s, p90 {report['writer_wait_p90']:.3f} s, "
              f"max {report['writer_wait_max']:.3f} s")
        print(f"reads: {report['reads']} done, {report['failed_reads']} failed (lock timeout)")
        print(f"duplicates {report['duplicates']}, lost {report['lost']}, unreported {report['unreported']}, "
              f"corrupt {len(report['corrupt'])}, other errors {len(report['errors'])}")
        for line in report["corrupt"][:10] + report["errors"][:10]:
            print("PROBLEM:", line)
    bad = report["duplicates"] or report["lost"] or report["corrupt"] or report["errors"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
