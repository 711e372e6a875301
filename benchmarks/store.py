"""League store benchmark: adds, list, open+get, and the cost of crash safety.

Usage: python benchmarks/store.py [--n 1000] [--dir /tmp]

Policies have ~28k float32 parameters (a QMIX-sized GRU agent). The baseline writes the same
groups, attributes and datasets into one HDF5 file opened once and kept open (no journal, no
fsync, no copy): what a store with no crash safety would do.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

# Run as a script, this file's directory comes first on sys.path and its name would hide the
# `store` package.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here] + [str(_here.parent)]

from store import League  # noqa: E402
from store.schema import init_file  # noqa: E402

SHAPES = {"agent.fc1.weight": (64, 48), "agent.fc1.bias": (64,), "agent.rnn.weight_ih": (192, 64),
          "agent.rnn.weight_hh": (192, 64), "agent.rnn.bias_ih": (192,), "agent.rnn.bias_hh": (192,),
          "agent.fc2.weight": (12, 64), "agent.fc2.bias": (12,)}


def make_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}


def bench_adds(path: Path, n: int, durable: bool) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(0)
    League.create(path, force=True)
    times = []
    t0 = time.perf_counter()
    with League(path, "a", durable=durable) as lg:
        for i in range(n):
            w = make_weights(rng)
            t = time.perf_counter()
            lg.add_policy(f"p{i:04d}", "defender", "qmix", "3m", {"i": i}, w, {"seed": i})
            times.append(time.perf_counter() - t)
    return np.array(times), time.perf_counter() - t0  # total includes the closing checkpoint


def bench_baseline(path: Path, n: int) -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        init_file(f)
        for i in range(n):
            w = make_weights(rng)
            g = f["policies"].create_group(f"p{i:04d}")
            g.attrs.update({"role": "defender", "kind": "qmix", "scenario": "3m", "latest": 1})
            vg = g.create_group("v1")
            vg.attrs.update({"config": "{}", "provenance": "{}", "sha256": "0" * 64, "created": "",
                             "retired": False, "n_params": 0})
            wg = vg.create_group("weights")
            for k, a in w.items():
                wg.create_dataset(k, data=a)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="policies to add")
    ap.add_argument("--dir", default=None, help="directory for the league files")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        n_params = sum(int(np.prod(s)) for s in SHAPES.values())
        path = d / "league.h5"
        per, total = bench_adds(path, args.n, durable=True)
        size = path.stat().st_size
        print(f"add {args.n} policies of {n_params} params (journal + fsync + checkpoints):")
        print(f"  per add: mean {per.mean() * 1e3:.1f} ms, p95 {np.percentile(per, 95) * 1e3:.1f} ms, "
              f"max {per.max() * 1e3:.0f} ms (checkpoints)")
        print(f"  total incl. closing checkpoint: {total:.2f} s = {total / args.n * 1e3:.1f} ms per add; "
              f"file {size / 1e6:.0f} MB")

        t = time.perf_counter()
        with League(path) as lg:
            infos = lg.list()
        t_list_cold = time.perf_counter() - t
        with League(path) as lg:
            t = time.perf_counter()
            lg.list()
            t_list_warm = time.perf_counter() - t
        t = time.perf_counter()
        with League(path) as lg:
            rec = lg.get(f"p{args.n // 2:04d}")
        t_get = time.perf_counter() - t
        assert len(infos) == args.n and rec.n_params == n_params
        print(f"list: {t_list_cold:.3f} s (open + list, fresh process state), {t_list_warm * 1e3:.1f} ms (cached)")
        print(f"open + get one: {t_get * 1e3:.1f} ms")

        # Reader with a large journal: half the adds not yet merged.
        jpath = d / "journal.h5"
        League.create(jpath)
        rng = np.random.default_rng(1)
        lg = League(jpath, "a", checkpoint_bytes=1 << 40, checkpoint_entries=10**9)
        for i in range(args.n // 2):
            lg.add_policy(f"p{i:04d}", "defender", "qmix", "3m", {}, make_weights(rng), {})
        t = time.perf_counter()
        with League(jpath) as rd:
            rd.list()
            rd.get("p0001")
        print(f"open + list + get with {args.n // 2} unmerged journal entries: {(time.perf_counter() - t) * 1e3:.0f} ms")
        t = time.perf_counter()
        lg.close()
        print(f"checkpoint of those {args.n // 2} entries: {time.perf_counter() - t:.2f} s")

        per_nd, total_nd = bench_adds(d / "nosync.h5", args.n, durable=False)
        base = bench_baseline(d / "baseline.h5", args.n)
        print("cost of crash safety (same adds):")
        print(f"  in-place h5py, no crash safety: {base / args.n * 1e3:.1f} ms per add")
        print(f"  journal + checkpoints, no fsync: {total_nd / args.n * 1e3:.1f} ms per add "
              f"({total_nd / base:.1f}x)")
        print(f"  journal + checkpoints + fsync:   {total / args.n * 1e3:.1f} ms per add ({total / base:.1f}x)")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
