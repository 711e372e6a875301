"""Errors raised by the league store; every message is one line meant for the user.

Warnings (a write committed but its checkpoint was deferred, a damaged journal entry set aside)
go to stderr as one line each: the operation succeeded, so the caller must not see an error.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path


class StoreError(Exception):
    """A league operation that cannot be done as asked (bad name, unknown ref, bad input)."""


class LockTimeout(StoreError):
    """Another process held the league for longer than the lock timeout."""


class CorruptLeague(StoreError):
    """The league file (or its journal) is missing, unreadable, or not a league of this schema."""


class PolicyInUse(StoreError):
    """A purge was refused: mixtures or runs reference the policy (purge with force to go on)."""


class BrokenPolicy(StoreError):
    """A policy asked for as usable references a purged policy."""


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


_HDF5_MESSAGE = re.compile(r"error message = '([^']*)'")


def os_error_text(e: BaseException, where: Path | str) -> str:
    """The useful part of an OSError (h5py's included), on one line.

    h5py reports a failed write as one long line whose errno field is empty and whose
    "error message = '...'" part holds the system's reason; a full disk is always named with
    the directory it happened in, so that the user knows which disk to clear.
    """
    text = str(e)
    if getattr(e, "errno", None) == errno.ENOSPC or "No space left on device" in text or "errno = 28," in text:
        return f"no space left on device at {where}"
    strerror = getattr(e, "strerror", None)
    if strerror:
        name = getattr(e, "filename", None)
        return f"{strerror}: {name}" if name else strerror
    m = _HDF5_MESSAGE.search(text)
    if m:
        return m.group(1)
    return (text.splitlines() or [type(e).__name__])[0][:300]
