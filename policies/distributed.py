"""Ray for tables and trainings that outgrow one machine: connect, split, run, gather.

Only the driver (the `arena` process) reads and writes the league. Workers get what they need
through the object store, never through a shared file system: a payoff chunk gets a copy of
the league (main file and journal entries, taken under the read lock) that it opens read-only
in a temporary directory; a training gets its job as plain data. Workers return statistics,
weights and provenance; the driver commits them with the same code as a single-process run.

Results do not depend on how the cells are split: every episode draws from its own random
streams (`arena.rollout`), so a cell played in another process, in a smaller batch, yields the
same episodes. Ray is imported only once `connect` is called: it is an optional extra.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

from policies.errors import PolicyError

_state = {"connected": False}


def _ray():
    try:
        import ray
    except ImportError:
        raise PolicyError("--ray needs Ray, which is not installed: pip install -e .[ray]") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    """host and port of `host:port` or `ray://host:port`; a malformed address is one line."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PolicyError(f"--ray {address!r}: give auto, HOST:PORT (e.g. head:6379) or "
                          f"ray://HOST:PORT (e.g. ray://head:10001)")
    return host.strip("[]"), int(port)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds where Ray itself would retry for minutes on an address nobody serves."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise PolicyError(f"cannot reach a Ray cluster at {address}: {e.strerror or e}; start "
                          f"one with `ray start --head` or check the address") from None


def _running_cluster() -> str | None:
    """The address of a running cluster `auto` should join (RAY_ADDRESS, then the newest local
    one), or None when there is none to join."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        return env
    try:
        from ray._private.services import find_gcs_addresses

        found = sorted(find_gcs_addresses())
    except Exception:  # noqa: BLE001 - a private helper; without it, start a local instance
        return None
    for addr in found:
        try:
            _reachable(addr, timeout=1.0)
            return addr
        except PolicyError:
            continue  # a stale record of a cluster that has stopped
    return None


def connect(address: str = "auto") -> str:
    """Join the Ray cluster at `address` (`auto`: the running one, else a new local instance)
    and make Ray the default for fills, trainings and PSRO responses in this process.
    Returns a short description of the cluster for the user."""
    ray = _ray()
    target = _running_cluster() if address == "auto" else address
    if target is not None:
        _reachable(target)
    if not ray.is_initialized():
        # the driver's log lines would interleave with the table; the workers' own go to files
        kw = dict(log_to_driver=False, logging_level="ERROR")
        try:
            if target is None:
                ray.init(include_dashboard=False, **kw)
            else:
                ray.init(address=target, **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = target or "a new local instance"
            raise PolicyError(f"cannot join the Ray cluster at {where}: "
                              f"{(str(e).strip().splitlines() or [''])[0]}") from None
    _state["connected"] = True
    cpus = int(ray.cluster_resources().get("CPU", 0))
    gpus = int(ray.cluster_resources().get("GPU", 0))
    return f"Ray: {len(ray.nodes())} node(s), {cpus} CPUs, {gpus} GPUs"


def active() -> bool:
    """Whether `connect` joined a cluster that is still up in this process."""
    if not _state["connected"]:
        return False
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def disconnect() -> None:
    _state["connected"] = False
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _options(device: str) -> dict:
    """One CPU per task, and one GPU where the driver's device is a GPU: each worker plays on
    its own device."""
    gpu = str(device).startswith("cuda")
    if gpu and not _ray().cluster_resources().get("GPU"):
        # a task asking for a GPU no node has would wait for one forever
        raise PolicyError("--device cuda with --ray: the Ray cluster has no GPU; use "
                          "--device cpu or start its nodes with `ray start --num-gpus N`")
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


def _threads() -> None:
    """One torch thread per CPU Ray gave this task (else every worker of a node would start
    one thread per core and they would fight over them)."""
    import torch

    ray = _ray()
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))


def workers(device: str) -> int:
    """How many tasks of `_options(device)` the cluster runs at once."""
    _options(device)
    res = _ray().cluster_resources()
    key = "GPU" if str(device).startswith("cuda") else "CPU"
    return max(1, int(res.get(key, 1)))


# -- the league copy ------------------------------------------------------------------------

def league_snapshot(path: Path, lock_timeout: float = 30.0) -> dict[str, bytes]:
    """The league's main file and journal entries, read under its shared lock (a consistent
    state: writers wait, and a checkpoint cannot remove an entry while it is read)."""
    from store.journal import journal_dir, list_entries
    from store.lock import FileLock

    path = Path(path)
    jdir = journal_dir(path)
    with FileLock(path, lock_timeout).hold(False):
        files = {path.name: path.read_bytes()}
        for _, entry in list_entries(jdir):
            files[f"{jdir.name}/{entry.name}"] = entry.read_bytes()
    return files


def _open_snapshot(files: dict[str, bytes], tmp: str):
    from store import League

    main = None
    for rel, data in files.items():
        dest = Path(tmp) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        main = main or dest  # the main file comes first
    return League(main, "r")


# -- payoff cells ---------------------------------------------------------------------------

def split(cells: list, parts: int) -> list[list]:
    """Cells in at most `parts` chunks of about equal episodes (largest first onto the lightest
    chunk); each chunk keeps the cells' order."""
    parts = max(1, min(parts, len(cells)))
    load, chunks = [0] * parts, [[] for _ in range(parts)]
    order = sorted(range(len(cells)), key=lambda i: -cells[i].episodes)
    for i in order:
        k = load.index(min(load))
        chunks[k].append(i)
        load[k] += cells[i].episodes
    return [[cells[i] for i in sorted(ix)] for ix in chunks if ix]


def _play_chunk(files: dict[str, bytes], scenario: str, cells: list, device: str):
    """A worker: its own read-only league copy, the lineup of its chunk's players only, one
    batched fill; returns per-cell statistics as numpy arrays and the device it played on."""
    from arena import payoff as pay
    from arena.core import resolve_device
    from policies.lineup import build_lineup

    _threads()
    device = resolve_device(device)
    defenders = list(dict.fromkeys(c.defender for c in cells))
    attackers = list(dict.fromkeys(c.attacker for c in cells))
    with tempfile.TemporaryDirectory() as tmp:
        with _open_snapshot(files, tmp) as lg:
            lineup = build_lineup(lg, scenario, defenders, attackers, device)
    stats = pay.run_cells(scenario, lineup, cells, device)
    return [tuple(getattr(s, f).cpu().numpy() for f in ("returns", "wins", "lengths", "cost"))
            for s in stats], str(device)


def run_cells(league_path: Path, scenario: str, cells: list, device: str,
              lock_timeout: float = 30.0) -> tuple[list, list[str]]:
    """`arena.payoff.run_cells` over the cluster: per-cell EpisodeStats in cell order and the
    device each cell was played on."""
    import numpy as np
    import torch

    from arena.rollout import EpisodeStats

    ray = _ray()
    if not cells:
        return [], []
    files = ray.put(league_snapshot(league_path, lock_timeout))
    task = ray.remote(_play_chunk).options(**_options(device))
    chunks = split(cells, workers(device))
    outs = ray.get([task.remote(files, scenario, chunk, str(device)) for chunk in chunks])
    by_id = {}
    for chunk, (stats, where) in zip(chunks, outs):
        for c, s in zip(chunk, stats):
            by_id[id(c)] = (EpisodeStats(*(torch.from_numpy(np.array(a)) for a in s)), where)
    got = [by_id[id(c)] for c in cells]
    return [g[0] for g in got], [g[1] for g in got]


# -- trainings ------------------------------------------------------------------------------

def _call(fn: Callable, args: tuple, kwargs: dict):
    _threads()
    return fn(*args, **kwargs)


def submit(fn: Callable, *args, device: str = "cpu", **kwargs):
    """Start `fn(*args, **kwargs)` on a worker; `gather` collects it. `fn` must be importable
    on the workers (a module-level function of the project) and its arguments picklable."""
    ray = _ray()
    return ray.remote(_call).options(**_options(device)).remote(fn, args, kwargs)


def gather(refs: list) -> list:
    return _ray().get(list(refs))


def as_completed(refs: list, should_stop: Callable[[], bool] | None = None):
    """Yield (index, result) as tasks finish; cancels the rest once `should_stop()` holds."""
    ray = _ray()
    index = {r: i for i, r in enumerate(refs)}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for r in done:
                yield index[r], ray.get(r)
            if should_stop is not None and should_stop():
                break
    finally:
        for r in pending:
            ray.cancel(r)
