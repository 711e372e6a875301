"""Wall time of each meta-solver on square random payoff tables.

    python benchmarks/solve.py                      # sizes 10, 50, 100, 200, 500
    python benchmarks/solve.py --sizes 10,50 --repeats 5
    python benchmarks/solve.py --blas-threads 1     # on a loaded machine (see below)

Tables are N x N with standard normal entries (seed 0). Each method is timed through the
public entry point `solvers.meta.solve` (so the time includes the checks and the NashConv of
the result), best of --repeats runs; a run longer than 2 s is not repeated. The last column
is the NashConv of the returned pair divided by the table's payoff range (0 = exact Nash).

Alpha-rank builds a dense Markov chain over the N^2 joint profiles (N^4 entries) with a
Python loop over profiles and their 2(N-1) neighbours, then a dense eigendecomposition,
O(N^6); sizes above --alpharank-max-profiles are reported as skipped, with the memory the
chain alone would take and a cubic extrapolation (in the number of profiles) of the time from
the largest size measured.

On a machine whose cores are busy with other jobs, multi-threaded OpenBLAS (behind the dense
eigendecomposition of alpha-rank) can run many times slower than single-threaded;
--blas-threads sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS before numpy is
imported.
"""

from __future__ import annotations

import argparse
import os
import time

METHODS = [
    ("lp (highs)", "lp", {"backend": "highs"}),
    ("lp (openspiel)", "lp", {"backend": "openspiel"}),
    ("rd", "rd", {}),
    ("alpharank", "alpharank", {}),
    ("uniform", "uniform", {}),
]


def time_solve(M, method: str, kwargs: dict, repeats: int) -> tuple[float, float]:
    """(best wall time in seconds, NashConv / payoff range) of solve(M, method, **kwargs)."""
    from solvers.meta import solve

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = solve(M, method, **kwargs)
        best = min(best, time.perf_counter() - t0)
        if best > 2.0:
            break
    return best, sol.exploitability / float(M.max() - M.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,50,100,200,500", help="comma-separated N of the N x N tables")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--openspiel-max", type=int, default=500, help="largest N for the OpenSpiel LP")
    ap.add_argument(
        "--alpharank-max-profiles", type=int, default=2500, help="largest N*N for alpha-rank (50x50 = 2500)"
    )
    ap.add_argument("--blas-threads", type=int, default=None, help="BLAS/OpenMP threads (default: library's)")
    args = ap.parse_args()
    if args.blas_threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    import numpy as np  # after the thread settings, which BLAS reads once at load time

    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"{'N':>5}  {'method':<15} {'time':>12}  {'NashConv/range':>14}")
    alpharank_ref: tuple[int, float] | None = None  # (profiles, seconds) of the largest run
    for n in sizes:
        M = np.random.default_rng(0).normal(size=(n, n))  # [N, N]
        for label, method, kwargs in METHODS:
            skip = None
            if method == "lp" and kwargs.get("backend") == "openspiel" and n > args.openspiel_max:
                skip = f"skipped (N > --openspiel-max {args.openspiel_max})"
            if method == "alpharank" and n * n > args.alpharank_max_profiles:
                profiles = n * n
                gib = profiles**2 * 8 / 2**30
                skip = f"skipped ({profiles} profiles: dense chain {gib:.1f} GiB"
                if alpharank_ref is not None:
                    ref_p, ref_t = alpharank_ref
                    skip += f", est. {ref_t * (profiles / ref_p) ** 3 / 60:.0f} min"
                skip += ")"
            if skip:
                print(f"{n:>5}  {label:<15} {skip}", flush=True)
                continue
            if method == "alpharank":
                kwargs = {**kwargs, "max_profiles": args.alpharank_max_profiles}
            seconds, conv = time_solve(M, method, kwargs, args.repeats)
            if method == "alpharank":
                alpharank_ref = (n * n, seconds)
            print(f"{n:>5}  {label:<15} {seconds * 1e3:>9.2f} ms  {conv:>14.2e}", flush=True)


if __name__ == "__main__":
    main()
