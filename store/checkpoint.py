"""Replacing a league's main file: a checkpoint (merging the journal) or a new league.

Both write a temporary file beside the league, fsync it, ``os.replace`` it over the main file
and fsync the directory, with ``PATH.lock`` held exclusively (see ``store.league`` for why this
never loses a committed write). A failure at any step removes the temporary files and leaves the
main file as it was; the OSError is reported as one line naming its cause (a full disk names
the directory), never as h5py's multi-field message.

HDF5 does not survive a full disk well (it may crash the process while flushing), so a merge
first checks that the directory has room for what it will write and, when it has not, fails
with the same "no space left on device" line without touching HDF5.

A journal entry that cannot be merged (it fits no league: an HDF5 error other than an OSError)
is reported back instead of failing the merge, so that the caller can set it aside and merge the
others; an OSError is the disk's fault, not the entry's, and fails the checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Callable

import h5py

from store import schema
from store.catalog import View
from store.errors import StoreError, os_error_text
from store.journal import fsync_path, journal_dir, list_entries, read_arrays, read_header
from store.lock import FileLock

# Temporary files beside PATH that only a process holding the exclusive lock creates.
_TMP_SUFFIXES = (".ckpt.tmp", ".ckpt2.tmp", ".create.tmp", ".partial")


def remove_stale(path: Path) -> None:
    """Temporary files of a process that died while holding the lock."""
    for suffix in _TMP_SUFFIXES:
        with suppress(OSError):
            Path(str(path) + suffix).unlink(missing_ok=True)
    jdir = journal_dir(path)
    for stale in jdir.glob(".tmp-*") if jdir.exists() else ():
        with suppress(OSError):
            stale.unlink(missing_ok=True)


def install(path: Path, fill: Callable[[Path], None], replace: bool, exists_message: str,
            lock_timeout: float = 30.0) -> None:
    """Make `fill(tmp)` the main file at `path`, clearing what a former league there left.

    A deleted league's journal (and temporary files) would otherwise be read as part of the new
    one, so they go first, under the same lock that writers take.
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a league file")
    if not path.parent.exists():
        raise StoreError(f"directory {path.parent} does not exist")
    with FileLock(path, lock_timeout).hold(True):
        if path.exists() and not replace:
            raise StoreError(exists_message)
        # The old journal goes first: a crash must never leave it beside the new file.
        shutil.rmtree(journal_dir(path), ignore_errors=True)
        remove_stale(path)
        tmp = Path(str(path) + ".create.tmp")
        try:
            fill(tmp)
            fsync_path(tmp)
            os.replace(tmp, path)
            fsync_path(path.parent)
        except OSError as e:
            raise StoreError(f"could not create league {path}: {os_error_text(e, path.parent)}") from None
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def _check_room(path: Path, entries: list[tuple[int, Path]], purge: bool) -> None:
    """OSError(ENOSPC) unless the directory can hold the merged copy (twice, to repack a purge)."""
    size = os.stat(path).st_size + 2 * sum(os.stat(p).st_size for _, p in entries)
    need = size * (2 if purge else 1) + (1 << 20)
    if shutil.disk_usage(path.parent).free < need:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def merge(path: Path, view: View, durable: bool) -> tuple[int, Path, str] | None:
    """Merge the journal entries after ``view.main_seq`` into the main file (lock held).

    Returns None when done (or when there was nothing to merge), or (seq, entry, reason) for an
    entry that cannot be applied; then the main file is unchanged.
    """
    jdir = journal_dir(path)
    remove_stale(path)
    entries = [(s, p) for s, p in list_entries(jdir) if s > view.main_seq]
    if not entries:
        return None
    headers = {}
    for seq, p in entries:
        try:
            headers[seq] = read_header(p)
        except StoreError as e:
            return seq, p, str(e)
    tmp, tmp2 = Path(str(path) + ".ckpt.tmp"), Path(str(path) + ".ckpt2.tmp")
    try:
        _check_room(path, entries, any(isinstance(op, dict) and op.get("op") == "purge"
                                       for h, _ in headers.values() for op in h["ops"]))
        shutil.copyfile(path, tmp)
        out = tmp
        with h5py.File(tmp, "r+") as f:
            purged = False
            for seq, p in entries:
                header, start = headers[seq]
                try:
                    reader = lambda idx, p=p, s=start, t=header["arrays"]: read_arrays(p, s, t, idx)
                    for op in header["ops"]:
                        schema.apply_op(f, op, reader)
                        purged |= op["op"] == "purge"
                except OSError:
                    raise
                except Exception as e:  # the entry's fault: report it, merge nothing
                    return seq, p, (str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {e}")
            f.attrs["journal_seq"] = view.seq
            schema.write_index(f, view)
            if purged:  # HDF5 never returns the space of deleted objects: copy what is left
                out = tmp2
                schema.repack(f, out)
        if durable:
            fsync_path(out)
        os.replace(out, path)
        if durable:
            fsync_path(path.parent)
    except OSError as e:
        raise StoreError(f"could not checkpoint league {path}: {os_error_text(e, path.parent)}") from None
    finally:
        for t in (tmp, tmp2):
            with suppress(OSError):
                t.unlink(missing_ok=True)
    return None
