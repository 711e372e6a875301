"""Inter-process lock on a league: fcntl.flock on the sidecar files ``PATH.lock`` and ``PATH.lock.w``.

Writers take ``PATH.lock`` exclusively, readers shared. The lock files are never deleted
(deleting a flock file lets two processes lock two different inodes). The exclusive holder writes
its pid and command line into ``PATH.lock`` so that a process that gives up can name the holder;
it empties the file before releasing. The kernel drops the locks of a killed process, so a crash
never leaves the league locked.

Writers go first. With flock alone, a steady stream of overlapping readers keeps the shared
lock held forever and a writer waits until it times out. So a writer first takes the intent
lock ``PATH.lock.w`` exclusively and keeps it while it waits and writes; a reader takes the
intent lock shared only for the moment of taking its shared lock. New readers therefore wait
behind a waiting writer, while the readers already in finish, and the writer gets in.

A process that gives up names who holds the league: the writer from ``PATH.lock``, or the
readers, counted from the kernel's table of locks (``/proc/locks``, where there is one).
"""

from __future__ import annotations

import fcntl
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from store.errors import LockTimeout, StoreError, os_error_text
from store.records import now_iso


def check_timeout(timeout) -> float:
    """A lock timeout in seconds: a finite number ≥ 0 (0 tries once)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(timeout, bool) or not math.isfinite(value) or value < 0:
        raise StoreError(f"lock timeout must be a finite number ≥ 0, got {timeout!r}")
    return value


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            text = " ".join(f.read(400).replace(b"\0", b" ").decode("utf-8", "replace").split())
    except OSError:
        return "?"
    return (text[:120] + "…") if len(text) > 120 else (text or "?")


def _holder_line(text: str) -> str | None:
    """'pid 123 (cmd) since T' from the lock file, if that process still lives."""
    fields = dict(part.split("=", 1) for part in text.strip().splitlines() if "=" in part)
    try:
        pid = int(fields.get("pid", ""))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return None
    except PermissionError:
        pass
    return f"pid {pid} ({fields.get('cmd', '?')}) since {fields.get('since', '?')}"


def flock_holders(path: Path) -> list[tuple[int, str]]:
    """(pid, "READ" | "WRITE") of the flocks held on `path`, from /proc/locks ([] if unknown)."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    exact = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or "->" in parts or parts[1] != "FLOCK":  # "->": a blocked waiter
            continue
        try:
            rows.append((int(parts[4]), parts[3], parts[5]))
        except ValueError:
            continue
    # Some filesystems (overlayfs) report another device than stat does: fall back to the inode.
    same = [r for r in rows if r[2] == exact] or [r for r in rows if r[2].endswith(f":{st.st_ino}")]
    return [(pid, mode) for pid, mode, _ in same]


def _unlock_close(fd: int) -> None:
    # Unlock explicitly: a forked child may share the descriptor, and closing alone would not
    # release the flock while the child keeps it open.
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileLock:
    """Re-entrant (within one object) shared/exclusive flock with a timeout, writers first."""

    def __init__(self, league_path: Path, timeout: float):
        self.path = Path(str(league_path) + ".lock")
        self.intent_path = Path(str(league_path) + ".lock.w")
        self.league_path = Path(league_path)
        self.timeout = check_timeout(timeout)
        self._fd: int | None = None
        self._intent_fd: int | None = None
        self._mode: int | None = None
        self._depth = 0

    @property
    def exclusive(self) -> bool:
        return self._depth > 0 and self._mode == fcntl.LOCK_EX

    def _open(self, path: Path) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open lock file {path}: {os_error_text(e, path.parent)}") from None

    def _describe(self) -> str:
        """Who holds the league, for a timeout message."""
        holder = None
        try:
            with open(self.path, "rb") as f:
                holder = _holder_line(f.read(4096).decode("utf-8", "replace"))
        except OSError:
            pass
        if holder:
            return f"locked by {holder}"
        me = os.getpid()
        readers = [pid for pid, mode in flock_holders(self.path) if mode == "READ"]
        waiting = [pid for pid, mode in flock_holders(self.intent_path) if mode == "WRITE" and pid != me]
        if readers:
            pid = next((p for p in readers if p != me), readers[0])
            text = f"held by another process: {len(readers)} reader{'s' if len(readers) > 1 else ''}, " \
                   f"e.g. pid {pid} ({_cmdline(pid)})"
            if waiting:
                text += f", with writer pid {waiting[0]} waiting"
            return text
        if waiting:
            return f"held by another process: writer pid {waiting[0]} ({_cmdline(waiting[0])}) is about to write"
        return "held by another process (a reader or a writer starting up)"

    def _wait(self, fd: int, mode: int, deadline: float) -> None:
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockTimeout(f"league {self.league_path} is {self._describe()}; "
                                      f"gave up after {self.timeout:g} s") from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)

    def _acquire(self, mode: int) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            ifd = self._open(self.intent_path)
        except StoreError:
            if mode == fcntl.LOCK_EX:
                raise
            ifd = None  # e.g. a read-only directory with an older league's lock file: read anyway
        fd = None
        try:
            if ifd is not None:
                self._wait(ifd, fcntl.LOCK_EX if mode == fcntl.LOCK_EX else fcntl.LOCK_SH, deadline)
            fd = self._open(self.path)
            self._wait(fd, mode, deadline)
            if mode == fcntl.LOCK_EX:
                cmd = " ".join(sys.argv)[:200].replace("\n", " ") or "python"
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"pid={os.getpid()}\ncmd={cmd}\nsince={now_iso()}\n".encode(), 0)
                except OSError as e:  # e.g. a full disk: release both locks, never keep them
                    raise StoreError(f"cannot lock league {self.league_path}: "
                                     f"{os_error_text(e, self.path.parent)}") from None
            elif ifd is not None:  # a reader holds the intent lock only while taking its own
                _unlock_close(ifd)
                ifd = None
        except BaseException:
            for d in (fd, ifd):
                if d is not None:
                    _unlock_close(d)
            raise
        self._fd, self._intent_fd, self._mode = fd, ifd, mode

    def _release(self) -> None:
        fd, ifd = self._fd, self._intent_fd
        self._fd = self._intent_fd = None
        mode, self._mode = self._mode, None
        if fd is not None:
            if mode == fcntl.LOCK_EX:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass  # a stale holder line names a dead pid, which is ignored
            _unlock_close(fd)
        if ifd is not None:
            _unlock_close(ifd)

    @contextmanager
    def hold(self, exclusive: bool):
        """Hold the lock; nested holds reuse it (an exclusive hold serves shared requests)."""
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if self._depth:
            if mode == fcntl.LOCK_EX and self._mode != fcntl.LOCK_EX:
                raise StoreError("cannot write to the league while reading it")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._acquire(mode)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._release()

