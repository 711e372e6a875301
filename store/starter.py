"""The starter league shipped inside the package, and copying leagues without their matches."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from store.checkpoint import install
from store.errors import StoreError
from store.league import League

STARTER_NAME = "starter.h5"


def starter_path() -> Path:
    path = Path(str(resources.files("store") / "data" / STARTER_NAME))
    if not path.exists():
        raise StoreError("this installation ships no starter league "
                         "(build one with scripts/build_starter_league.sh)")
    return path


def copy_starter_league(dest: Path) -> Path:
    """Copy the starter league to `dest`; never overwrites an existing file.

    Goes the way of ``League.create``: under the league's lock, clearing what a deleted league
    at `dest` left behind (its journal would otherwise be read into the new league).
    """
    dest = Path(dest)
    message = f"{dest} already exists; the starter league never overwrites a league"
    if dest.exists():
        raise StoreError(message)
    src = starter_path()
    install(dest, lambda tmp: shutil.copyfile(src, tmp), False, message)
    return dest


def copy_policies_and_runs(src: Path, dest: Path) -> int:
    """A new league at `dest` with every policy version and run of `src` but no matches."""
    League.create(dest)
    n = 0
    with League(src, "r") as a, League(dest, "a") as b, b.transaction():
        for info in a.list(include_retired=False, all_versions=True):
            rec = a.get(info.ref)
            b.add_policy(rec.name, rec.role, rec.kind, rec.scenario, rec.config, rec.weights,
                         rec.provenance)
            n += 1
        for run in a.runs():
            b.create_run(run.config, run.run_id)
            for it in run.iterations:
                b.append_iteration(run.run_id, it)
    return n
