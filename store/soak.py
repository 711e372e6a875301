"""Crash trials: a forked writer is killed with SIGKILL at a random moment, then the league is
checked for every record the writer reported as committed.

The writer prints one line per committed write, after the call returned:
  P <ref> <sha256>      a policy version
  M <seed>              a match (seeds are unique)
  R <run_id> <count>    a run has at least <count> iterations
  X <ref>               a version of "x", added in the transaction that purged (with force) the
                        previous one and added a mixture naming it: versions must never repeat
Used by tests/test_store_crash.py and scripts/soak_store.py.
"""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from store.league import League
from store.records import MatchRecord


def writer_loop(path: Path, out_fd: int, seed: int) -> None:
    """Write forever: adds, matches, transactions, runs, checkpoints, reopenings."""
    rng = np.random.default_rng(seed)
    base = int(seed) * 1_000_000

    def say(line: str) -> None:
        os.write(out_fd, (line + "\n").encode())

    def open_league() -> League:
        return League(path, "a", checkpoint_bytes=int(rng.integers(20_000, 200_000)),
                      checkpoint_entries=int(rng.integers(3, 30)))

    lg = open_league()
    run_id = f"run{seed}"
    lg.create_run({"seed": int(seed)}, run_id=run_id)
    say(f"R {run_id} 0")
    iters = 0
    for i in range(10**9):
        u = rng.random()
        if u < 0.45:
            w = {"w": rng.standard_normal((int(rng.integers(1, 40)), 50)).astype(np.float32), "n": np.arange(3)}
            ref = lg.add_policy(f"d{rng.integers(5)}", "defender", "qmix", "s", {"i": i}, w, {"seed": int(seed)})
            say(f"P {ref} {lg.info(ref).sha256}")
        elif u < 0.7:
            defenders = [p.ref for p in lg.list(role="defender")]
            if defenders:
                e = int(rng.integers(1, 20))
                lg.add_match(MatchRecord(defenders[int(rng.integers(len(defenders)))], "none", "s",
                                         rng.standard_normal(e), rng.integers(0, 2, e), rng.integers(1, 9, e),
                                         np.zeros(e), base + i, "cpu", "soak"))
                say(f"M {base + i}")
        elif u < 0.8:
            with lg.transaction():
                refs = [lg.add_policy(f"t{rng.integers(3)}", "defender", "vdn", "s", {}, {"w": rng.standard_normal(300)}, {})
                        for _ in range(2)]
                lg.add_match(MatchRecord(refs[0], "none", "s", [1.0], [1], [3], [0.0], base + i, "cpu", "soak"))
            for ref in refs:
                say(f"P {ref} {lg.info(ref).sha256}")
            say(f"M {base + i}")
        elif u < 0.87:
            with lg.transaction():
                if any(p.name == "x" for p in lg.list(include_retired=True)):
                    lg.purge("x", force=True)  # the mixture naming it is marked broken
                ref = lg.add_policy("x", "attacker", "fgsm", "any", {}, {"w": rng.standard_normal(50)}, {})
                lg.add_policy("mx", "attacker", "mixture", "any", {"members": [{"ref": ref, "weight": 1.0}]}, {}, {})
            say(f"X {ref}")
        elif u < 0.9:
            lg.append_iteration(run_id, {"i": i})
            iters += 1
            say(f"R {run_id} {iters}")
        elif u < 0.95:
            lg.checkpoint()
        else:
            lg.close()
            lg = open_league()


@dataclass
class Committed:
    """Everything reported committed so far (over all trials on one league)."""

    policies: dict[str, str] = field(default_factory=dict)  # ref -> sha256
    match_seeds: set[int] = field(default_factory=set)
    runs: dict[str, int] = field(default_factory=dict)  # run_id -> iterations
    x_refs: list[str] = field(default_factory=list)  # versions of "x", in order

    def take(self, lines: list[str]) -> None:
        for line in lines:
            parts = line.split()
            if parts[0] == "P":
                self.policies[parts[1]] = parts[2]
            elif parts[0] == "M":
                self.match_seeds.add(int(parts[1]))
            elif parts[0] == "R":
                self.runs[parts[1]] = max(self.runs.get(parts[1], 0), int(parts[2]))
            elif parts[0] == "X":
                self.x_refs.append(parts[1])


def run_trial(path: Path, seed: int, delay: float) -> list[str]:
    """Fork a writer, SIGKILL it after `delay` seconds; returns the lines it completed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's code
        code = 1
        try:
            os.close(r)
            writer_loop(path, w, seed)
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    os.close(w)
    buf = b""
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break  # the writer died by itself
            buf += chunk
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    while chunk := os.read(r, 65536):
        buf += chunk
    os.close(r)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        raise RuntimeError(f"writer exited by itself (status {status}) before it was killed")
    return [line for line in buf.decode().split("\n")[:-1] if line]  # a torn last line is dropped


def verify(path: Path, committed: Committed) -> list[str]:
    """Problems found (empty if every committed record is there and verifies)."""
    problems = []
    with League(path, "r", lock_timeout=5.0) as lg:
        for ref, sha in committed.policies.items():
            rec = lg.get(ref)  # raises CorruptLeague on a sha256 mismatch
            if rec.sha256 != sha:
                problems.append(f"{ref}: sha256 {rec.sha256} != committed {sha}")
        seeds = {m.seed for m in lg.matches()}
        missing = committed.match_seeds - seeds
        if missing:
            problems.append(f"{len(missing)} committed matches missing, e.g. seed {min(missing)}")
        for run_id, n in committed.runs.items():
            got = len(lg.get_run(run_id).iterations)
            if got < n:
                problems.append(f"run {run_id}: {got} iterations < {n} committed")
        xs = [int(r.rpartition("@v")[2]) for r in committed.x_refs]
        if xs != sorted(set(xs)):
            problems.append(f"versions of x repeat or go back: {committed.x_refs[-5:]}")
        if xs:
            live = [p.version for p in lg.list(include_retired=True, all_versions=True) if p.name == "x"]
            if len(live) != 1 or live[0] < xs[-1]:
                problems.append(f"x has versions {live}, expected one ≥ v{xs[-1]}")
    return problems


def kill_phase(path: Path) -> str:
    """What a killed writer left: "checkpoint" (a merge copy), "entry" (a journal temp), or ""."""
    if any(path.parent.glob(path.name + ".ckpt*.tmp")):
        return "checkpoint"
    jdir = Path(str(path) + ".journal")
    if jdir.exists() and any(jdir.glob(".tmp-*")):
        return "entry"
    return ""


def soak(path: Path, trials: int, max_delay: float, seed: int = 0) -> dict:
    """Run `trials` crash trials on one league; returns counts and any problems."""
    rng = np.random.default_rng(seed)
    League.create(path, force=True)
    committed = Committed()
    problems: list[str] = []
    phases: dict[str, int] = {"checkpoint": 0, "entry": 0, "": 0}
    t0 = time.perf_counter()
    for t in range(trials):
        lines = run_trial(path, seed * 100_000 + t + 1, float(rng.uniform(0.0, max_delay)))
        phases[kill_phase(path)] += 1
        committed.take(lines)
        found = verify(path, committed)
        problems += [f"trial {t}: {p}" for p in found]
    with League(path, "a") as lg:  # a writer can go on after the crashes, and closing merges all
        lg.add_policy("after", "defender", "qmix", "s", {}, {}, {})
    problems += [f"final: {p}" for p in verify(path, committed)]
    leftovers = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name) and p != path
                       and p.name not in (path.name + ".lock", path.name + ".lock.w"))
    if leftovers:
        problems.append(f"files left beside the league after close: {leftovers}")
    return {"trials": trials, "policies": len(committed.policies), "matches": len(committed.match_seeds),
            "iterations": sum(committed.runs.values()), "x_versions": len(committed.x_refs),
            "killed_in_checkpoint": phases["checkpoint"], "killed_writing_entry": phases["entry"],
            "seconds": time.perf_counter() - t0,
            "size_mb": path.stat().st_size / 1e6, "problems": problems}
