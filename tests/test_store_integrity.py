"""League integrity under concurrency and faults.

Versions never repeat and purges never silently break mixtures or runs; a fresh starter league
never inherits a deleted league's journal; a committed write never reports failure; a full disk,
a damaged journal entry or a hostile file gives one clear line; waiting writers go before a
stream of readers.
"""

import errno
import json
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import store.checkpoint as checkpoint_mod
import store.schema as schema_mod
from store import (BrokenPolicy, CorruptLeague, League, LockTimeout, PolicyInUse, StoreError,
                   check_policy_name)
from store.journal import MAGIC, journal_dir, list_entries, write_entry
from store.lock import FileLock
from store.records import to_json

ROOT = Path(__file__).resolve().parents[1]
H5PY_ENOSPC = ("Can't synchronously write data (file write failed: time = Sat Nov 21 17:23:01 2026\n, "
               "filename = '/x/league.h5.ckpt.tmp', file descriptor = 5, errno = 28, error message = "
               "'No space left on device', buf = 0x5600, total write size = 24000, bytes this sub-write "
               "= 24000, offset = 298232)")


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "league.h5"
    League.create(p)
    return p


def one_line(e, *needles):
    msg = str(e.value) if hasattr(e, "value") else str(e)
    assert "\n" not in msg and all(n in msg for n in needles), msg
    return msg


def add(lg, name, role="attacker", kind="fgsm", scenario="any", config=None, seed=0):
    w = {"w": np.full(3, seed, np.float32)}
    return lg.add_policy(name, role, kind, scenario, config or {}, w, {"seed": seed})


def mixture(lg, name, refs, role="attacker"):
    members = [{"ref": r, "weight": 1.0 / len(refs)} for r in refs]
    return lg.add_policy(name, role, "mixture", "any", {"members": members}, {}, {})


def h5py_enospc(*a, **k):
    raise OSError(H5PY_ENOSPC)


# -- 1. versions never repeat; purges never silently break referrers ------------------------------

@pytest.mark.parametrize("merged", [False, True])
def test_a_purged_name_keeps_counting(path, merged):
    with League(path, "a", checkpoint_entries=10**6) as lg:
        assert add(lg, "fgsm") == "fgsm@v1" and add(lg, "fgsm", seed=1) == "fgsm@v2"
        lg.purge("fgsm")
        if merged:
            lg.checkpoint()
        with pytest.raises(StoreError) as e:
            lg.info("fgsm")
        one_line(e, "unknown policy 'fgsm'", "purged")
        assert lg.list(include_retired=True) == []
        assert add(lg, "fgsm", kind="pgd", seed=2) == "fgsm@v3"  # a tombstone takes any kind
    with League(path, "a") as lg:
        lg.purge("fgsm")
    with League(path, "a") as lg:
        assert add(lg, "fgsm", seed=3) == "fgsm@v4"
    with h5py.File(path, "r") as f:
        assert f["policies/fgsm"].attrs["latest"] == 4 and list(f["policies/fgsm"]) == ["v4"]


def test_purge_of_what_a_mixture_or_run_names_is_refused(path):
    with League(path, "a") as lg:
        add(lg, "fgsm")
        add(lg, "pgd")
        mixture(lg, "mix", ["fgsm@v1", "none"])
        run = lg.create_run({"psro": {"attackers": ["none"]}}, run_id="r1")
        lg.append_iteration(run, {"attackers": ["none", "pgd@v1"], "new_attacker": "pgd@v1"})
        with pytest.raises(PolicyInUse) as e:
            lg.purge("fgsm@v1")
        one_line(e, "cannot purge fgsm@v1", "mixture mix@v1", "--force")
        with pytest.raises(PolicyInUse) as e:
            lg.purge("pgd")
        one_line(e, "cannot purge pgd", "run r1")
        assert lg.referrers("fgsm") == {"policies": {"mix@v1": ["fgsm@v1"]}, "runs": {}}
        assert lg.info("fgsm@v1").broken == [] and lg.info("mix").broken == []
    with League(path) as lg:  # nothing was purged
        assert {p.ref for p in lg.list()} == {"fgsm@v1", "pgd@v1", "mix@v1"}


def test_a_bare_member_breaks_only_when_the_name_is_gone(path):
    with League(path, "a") as lg:
        add(lg, "fgsm")
        add(lg, "fgsm", seed=1)
        mixture(lg, "mix", ["fgsm"])
        lg.purge("fgsm@v1")  # "fgsm" still resolves, to v2
        with pytest.raises(PolicyInUse, match="mixture mix@v1"):
            lg.purge("fgsm")


@pytest.mark.parametrize("merged", [False, True])
def test_forced_purge_marks_the_referrers_broken(path, merged):
    with League(path, "a", checkpoint_entries=10**6) as lg:
        add(lg, "fgsm")
        add(lg, "pgd")
        mixture(lg, "mix", ["fgsm@v1", "pgd@v1"])
        run = lg.create_run({"psro": {"attackers": ["fgsm@v1"]}}, run_id="r1")
        lg.append_iteration(run, {"attackers": ["fgsm@v1"]})
        if merged:
            lg.checkpoint()
        lg.purge("fgsm", force=True)
        if merged:
            lg.checkpoint()
        for reader in (lg, League(path)):
            info = reader.info("mix")
            assert info.broken == ["fgsm@v1"] and reader.get("mix").broken == ["fgsm@v1"]
            with pytest.raises(BrokenPolicy) as e:
                reader.get("mix", usable=True)
            one_line(e, "mix@v1 is broken: it references purged fgsm@v1")
            with pytest.raises(BrokenPolicy):
                reader.info("mix@v1", usable=True)
            assert reader.get("pgd", usable=True).broken == []
            assert reader.get_run("r1").broken == ["fgsm@v1"]
    with h5py.File(path, "r") as f:  # stored, not computed: it survives the purged name
        assert json.loads(f["policies/mix/v1"].attrs["broken"]) == ["fgsm@v1"]
        assert json.loads(f["runs/r1"].attrs["broken"]) == ["fgsm@v1"]
    with League(path, "a") as lg:
        assert add(lg, "fgsm") == "fgsm@v2"  # the new fgsm is not the purged one...
        assert lg.info("mix").broken == ["fgsm@v1"]  # ...and the mixture still says so


def test_cli_retire_purge_needs_force_for_a_used_policy(path):
    from click.testing import CliRunner

    from cli import main

    with League(path, "a") as lg:
        add(lg, "fgsm")
        mixture(lg, "mix", ["fgsm@v1"])

    def run(*args):
        return CliRunner().invoke(main, ["--league", str(path), "retire", *args], catch_exceptions=False)

    res = run("fgsm@v1", "--purge")
    assert res.exit_code != 0 and "mix@v1" in res.output and "Traceback" not in res.output
    res = run("fgsm@v1", "--purge", "--force")
    assert res.exit_code == 0, res.output
    with League(path) as lg:
        assert lg.info("mix").broken == ["fgsm@v1"]


# -- 2. a starter league never inherits a deleted league's journal --------------------------------

def test_init_starter_clears_a_deleted_leagues_journal(tmp_path, monkeypatch):
    import store.starter as starter_mod

    shipped = tmp_path / "shipped.h5"  # a starter league whose journal_seq is 0, like a new one
    League.create(shipped)
    with League(shipped, "a") as lg:
        add(lg, "real")
    monkeypatch.setattr(starter_mod, "starter_path", lambda: shipped)

    path = tmp_path / "league.h5"
    League.create(path)
    lg = League(path, "a", checkpoint_entries=10**6)
    add(lg, "ghost")
    lg._closed = True  # the writer dies before any checkpoint: the entry stays in the journal
    assert list_entries(journal_dir(path))
    path.unlink()
    starter_mod.copy_starter_league(path)
    with League(path) as lg:
        assert [p.name for p in lg.list()] == ["real"]
    assert not journal_dir(path).exists()
    with pytest.raises(StoreError, match="never overwrites"):
        starter_mod.copy_starter_league(path)


# -- 3. a committed write never reports failure ---------------------------------------------------

def test_committed_write_survives_a_failed_checkpoint(path, monkeypatch, capfd):
    lg = League(path, "a", checkpoint_entries=1)
    monkeypatch.setattr(schema_mod, "apply_op", h5py_enospc)
    assert add(lg, "a") == "a@v1"  # committed: no exception although its checkpoint failed
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: committed; checkpoint deferred (")
    assert f"no space left on device at {path.parent}" in err
    assert not list(path.parent.glob("*.tmp"))
    assert add(lg, "b") == "b@v1"
    monkeypatch.undo()
    assert add(lg, "c") == "c@v1"  # the next writer's checkpoint merges everything
    assert not journal_dir(path).exists()
    lg.close()
    with League(path) as rd:
        assert [p.ref for p in rd.list()] == ["a@v1", "b@v1", "c@v1"]


def test_a_failed_copy_leaves_no_partial_file(path, monkeypatch):
    with League(path, "a", checkpoint_entries=10**6) as lg:
        add(lg, "a")

        def partial_copy(src, dst):
            Path(dst).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(checkpoint_mod.shutil, "copyfile", partial_copy)
        with pytest.raises(StoreError) as e:
            lg.checkpoint()  # asked for explicitly: an error, not a warning
        one_line(e, f"no space left on device at {path.parent}")
        assert not list(path.parent.glob("*.tmp"))
        monkeypatch.undo()
    with League(path) as rd:
        assert rd.info("a").ref == "a@v1"


def test_close_defers_its_checkpoint_when_the_lock_is_taken(path, capfd):
    lg = League(path, "a", lock_timeout=0.2, checkpoint_entries=10**6)
    add(lg, "a")
    with FileLock(path, 1.0).hold(True):  # another writer holds the league
        lg.close()  # no LockTimeout: the write is committed
    assert "warning: committed; checkpoint deferred (" in capfd.readouterr().err
    with League(path, "a") as lg2:  # the next writer merges
        assert lg2.info("a").ref == "a@v1"
    assert not journal_dir(path).exists()


def test_a_checkpoint_error_never_replaces_the_error_in_flight(path, monkeypatch):
    monkeypatch.setattr(schema_mod, "apply_op", h5py_enospc)
    with pytest.raises(KeyError, match="original"):
        with League(path, "a", checkpoint_entries=10**6) as lg:
            add(lg, "a")
            raise KeyError("original")


def test_a_damaged_entry_is_set_aside_and_writes_go_on(path, capfd):
    with League(path, "a", checkpoint_entries=10**6) as lg:
        add(lg, "a")
        lg.checkpoint()
        add(lg, "b")
        lg._closed = True
    jdir = journal_dir(path)
    # Entry 3 fits no league (an unknown policy); entry 4 fits the catalogue but not the HDF5 file
    # (a version that exists already); entry 5 is a good one written after them.
    write_entry(jdir, 3, [{"op": "retire", "name": "nope", "versions": [1]}], [])
    dup = {"op": "add_policy", "name": "a", "version": 1, "role": "attacker", "kind": "fgsm",
           "scenario": "any", "config": "{}", "provenance": "{}", "sha256": "0" * 64,
           "created": "now", "n_params": 0, "weights": {}}
    write_entry(jdir, 4, [dup], [])
    with pytest.raises(CorruptLeague) as e:  # a reader cannot repair: it reports
        League(path)
    one_line(e, "journal entry", "sets it aside")
    with League(path, "a") as lg:
        assert add(lg, "c") == "c@v1"
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("warning: ") and "set aside" in line for line in err)
    assert sorted(p.name for p in (jdir / "bad").iterdir()) == ["000000000003.jrn", "000000000004.jrn"]
    with League(path) as rd:
        assert [p.ref for p in rd.list()] == ["a@v1", "b@v1", "c@v1"]
        rd.get("a@v1")  # the original, verified against its sha256


# -- 4. full disk while locking --------------------------------------------------------------------

def test_full_disk_while_locking_keeps_no_lock(path, monkeypatch):
    import store.lock as lock_mod

    lg = League(path, "a", lock_timeout=1.0)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_mod.os, "pwrite", full)
    with pytest.raises(StoreError) as e:
        add(lg, "a")
    one_line(e, "cannot lock league", f"no space left on device at {path.parent}")
    monkeypatch.undo()
    t = time.monotonic()
    assert add(lg, "a") == "a@v1"  # no descriptor kept locked: no wait on itself
    assert time.monotonic() - t < 0.5
    lg.close()


# -- 5. writers go before a stream of readers -------------------------------------------------------

STREAM_READ = """
import sys, time
from pathlib import Path
from store.lock import FileLock
lock = FileLock(Path(sys.argv[1]), 30.0)
end = time.monotonic() + float(sys.argv[2])
first = True
while time.monotonic() < end:
    with lock.hold(False):
        if first:
            print("locked", flush=True)
            first = False
        time.sleep(0.12)
    time.sleep(0.002)
"""

HOLD_READ = """
import sys, time
from pathlib import Path
from store.lock import FileLock
with FileLock(Path(sys.argv[1]), 5.0).hold(False):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _start(code, path, seconds):
    return subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_writer_goes_before_a_stream_of_readers(path):
    procs = []
    try:
        for _ in range(3):  # overlapping shared holds: with flock alone the lock is never free
            procs.append(_start(STREAM_READ, path, 6))
            assert procs[-1].stdout.readline().strip() == "locked"
            time.sleep(0.04)
        waits = []
        with League(path, "a", lock_timeout=2.0) as lg:
            for i in range(3):
                t = time.monotonic()
                add(lg, "w", seed=i)
                waits.append(time.monotonic() - t)
        assert max(waits) < 1.0, waits
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_timeout_names_the_readers(path):
    proc = _start(HOLD_READ, path, 60)
    try:
        assert proc.stdout.readline().strip() == "locked"
        lg = League(path, "a", lock_timeout=0.3)
        with pytest.raises(LockTimeout) as e:
            add(lg, "a")
        one_line(e, "held by another process: 1 reader", f"pid {proc.pid}", "gave up after 0.3 s")
    finally:
        proc.kill()
        proc.wait()
    lg.close()


# -- 6. bounded and hostile inputs ------------------------------------------------------------------

def test_non_integer_schema_version(path):
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 1.5
    with pytest.raises(CorruptLeague) as e:
        League(path)
    one_line(e, "schema_version", "not an integer")


@pytest.mark.parametrize("attr", ["config", "provenance"])
def test_deeply_nested_json_attribute(path, attr):
    with League(path, "a") as lg:
        add(lg, "p")
    with h5py.File(path, "r+") as f:
        f["policies/p/v1"].attrs[attr] = "[" * 100_000 + "]" * 100_000
        del f["index"]  # the attributes are read, not the cache
    with League(path) as lg:
        with pytest.raises(CorruptLeague) as e:
            lg.info("p")
        one_line(e, f"policy p@v1: {attr}", "nested too deeply")


def test_deeply_nested_json_is_refused_on_write(path):
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(StoreError) as e:
        to_json({"x": deep}, "config")
    one_line(e, "config is nested too deeply")


def test_journal_header_claiming_a_huge_length(path):
    jdir = journal_dir(path)
    jdir.mkdir()
    (jdir / "000000000001.jrn").write_bytes(MAGIC + struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(CorruptLeague) as e:
        League(path)
    one_line(e, "journal entry", "corrupt")
    with League(path, "a") as lg:  # a writer sets it aside and goes on
        assert add(lg, "a") == "a@v1"


@pytest.mark.parametrize("link", [h5py.SoftLink("/nowhere"), h5py.ExternalLink("other.h5", "/x")])
def test_links_inside_policies(path, link):
    with League(path, "a") as lg:
        add(lg, "p")
    with h5py.File(path, "r+") as f:
        f["policies"]["evil"] = link
        del f["index"]
    with pytest.raises(CorruptLeague) as e:
        League(path)
    one_line(e, "/policies/evil", "link")


def test_link_in_place_of_weights(path):
    with League(path, "a") as lg:
        add(lg, "p")
    with h5py.File(path, "r+") as f:
        del f["policies/p/v1/weights/w"]
        f["policies/p/v1/weights/w"] = h5py.ExternalLink("/etc/hostname", "/x")
    with League(path) as lg:
        with pytest.raises(CorruptLeague) as e:
            lg.get("p")
        one_line(e, "p@v1", "external link")


@pytest.mark.parametrize("bad", [math.nan, -1, math.inf, "soon", True])
def test_lock_timeout_must_be_finite(path, bad):
    with pytest.raises(StoreError) as e:
        League(path, lock_timeout=bad)
    one_line(e, "lock timeout must be a finite number ≥ 0")


def test_names_are_checked_before_any_work(path):
    for bad in ("x/y", "", "none", "a@v1", ".."):
        with pytest.raises(StoreError) as e:
            check_policy_name(bad)
        one_line(e, repr(bad))
    assert check_policy_name("qmix_3m.v2") == "qmix_3m.v2"
    with League(path, "a") as lg:
        add(lg, "fgsm")
        lg.check_add("new", "defender", "qmix", "3m")
        with pytest.raises(StoreError) as e:
            lg.check_add("fgsm", "defender", "qmix", "3m")
        one_line(e, "policy fgsm has role 'attacker'")


# -- 7. h5py's reason is kept -----------------------------------------------------------------------

def test_hdf5_no_space_message_is_kept(path, monkeypatch):
    with League(path, "a", checkpoint_entries=10**6) as lg:
        add(lg, "a")
        monkeypatch.setattr(schema_mod, "apply_op", h5py_enospc)
        with pytest.raises(StoreError) as e:
            lg.checkpoint()
        one_line(e, f"could not checkpoint league {path}: no space left on device at {path.parent}")
        monkeypatch.undo()
    monkeypatch.setattr(schema_mod, "init_file", h5py_enospc)
    with pytest.raises(StoreError) as e:
        League.create(path.parent / "new.h5")
    one_line(e, "could not create league", "no space left on device at")
    assert not (path.parent / "new.h5").exists() and not list(path.parent.glob("*.tmp"))
