"""Inter-process lock on a league: fcntl.flock on the sidecar file ``PATH.lock``.

Writers take it exclusively, readers shared. The lock file is never deleted (deleting a flock
file lets two processes lock two different inodes). The exclusive holder writes its pid and
command line into it so that a process that gives up can name the holder; it empties the file
before releasing. The kernel drops the lock of a killed process, so a crash never leaves the
league locked.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from store.errors import LockTimeout, StoreError
from store.records import now_iso


def _holder_line(text: str) -> str | None:
    """'pid 123 (cmd) since T' from the lock file, if that process still lives."""
    fields = dict(part.split("=", 1) for part in text.strip().splitlines() if "=" in part)
    try:
        pid = int(fields.get("pid", ""))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass
    return f"pid {pid} ({fields.get('cmd', '?')}) since {fields.get('since', '?')}"


class FileLock:
    """Re-entrant (within one object) shared/exclusive flock with a timeout and back-off."""

    def __init__(self, league_path: Path, timeout: float):
        self.path = Path(str(league_path) + ".lock")
        self.league_path = league_path
        self.timeout = float(timeout)
        self._fd: int | None = None
        self._mode: int | None = None
        self._depth = 0

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open lock file {self.path}: {e.strerror}") from None

    def _acquire(self, mode: int) -> None:
        fd = self._open()
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = None
                    try:
                        holder = _holder_line(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                    except OSError:
                        pass
                    os.close(fd)
                    who = f"locked by {holder}" if holder else "held by another process (a reader or a writer starting up)"
                    raise LockTimeout(f"league {self.league_path} is {who}; gave up after {self.timeout:g} s") from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
        if mode == fcntl.LOCK_EX:
            cmd = " ".join(sys.argv)[:200].replace("\n", " ") or "python"
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid={os.getpid()}\ncmd={cmd}\nsince={now_iso()}\n".encode(), 0)
        self._fd, self._mode = fd, mode

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._mode == fcntl.LOCK_EX:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            self._mode = None

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
