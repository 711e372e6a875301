"""Locking between processes: one writer at a time, shared readers, clear timeouts."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from store import League, LockTimeout

ROOT = Path(__file__).resolve().parents[1]

HOLD_WRITE = """
import sys, time
from store import League
with League(sys.argv[1], "a") as lg:
    with lg.transaction():
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
"""

HOLD_READ = """
import sys, time
from pathlib import Path
from store.lock import FileLock
with FileLock(Path(sys.argv[1]), 5.0).hold(False):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "league.h5"
    League.create(p)
    return p


def holder(code, path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_and_reader_time_out_naming_the_holder(path):
    proc = holder(HOLD_WRITE, path, 60)
    try:
        for mode in ("r", "a"):
            t = time.monotonic()
            with pytest.raises(LockTimeout) as e:
                League(path, mode, lock_timeout=0.5)
            assert 0.5 <= time.monotonic() - t < 5
            msg = str(e.value)
            assert f"pid {proc.pid}" in msg and "gave up after 0.5 s" in msg and "\n" not in msg
    finally:
        proc.kill()
        proc.wait()
    with League(path, "a", lock_timeout=0.5) as lg:  # the kernel dropped the killed holder's lock
        lg.add_policy("p", "defender", "qmix", "3m", {}, {}, {})


def test_waiter_succeeds_once_the_holder_releases(path):
    with League(path, "a") as lg:
        lg.add_policy("p", "defender", "qmix", "3m", {}, {"w": np.zeros(3)}, {})
        proc = holder(HOLD_WRITE, path, 1.0)
        t = time.monotonic()
        assert lg.add_policy("p", "defender", "qmix", "3m", {}, {"w": np.ones(3)}, {}) == "p@v2"
        assert time.monotonic() - t > 0.3
        proc.wait(timeout=30)


def test_readers_share_and_block_writers(path):
    with League(path, "a") as lg:
        lg.add_policy("p", "defender", "qmix", "3m", {}, {}, {})
    proc = holder(HOLD_READ, path, 60)
    try:
        with League(path, "r", lock_timeout=0.5) as rd:
            assert [p.ref for p in rd.list()] == ["p@v1"]
        lg = League(path, "a", lock_timeout=0.5)  # opening only reads
        with pytest.raises(LockTimeout, match="held by another process"):
            lg.add_policy("q", "defender", "qmix", "3m", {}, {}, {})
    finally:
        proc.kill()
        proc.wait()
    lg.add_policy("q", "defender", "qmix", "3m", {}, {}, {})
    lg.close()
