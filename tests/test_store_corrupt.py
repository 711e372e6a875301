"""Damaged or foreign files are reported as CorruptLeague with one line; nothing is executed."""

import os
import pickle

import h5py
import numpy as np
import pytest

from store import CorruptLeague, League, StoreError


class Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.fixture
def league(tmp_path):
    p = tmp_path / "league.h5"
    League.create(p)
    with League(p, "a") as lg:
        for i in range(3):
            lg.add_policy(f"p{i}", "defender", "qmix", "3m", {}, {"w": np.ones((50, 50), np.float32)}, {})
    return p


def one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


def test_missing_file(tmp_path):
    with pytest.raises(CorruptLeague) as e:
        League(tmp_path / "nope.h5")
    one_line(e, "no league at", "arena init")
    assert not (tmp_path / "nope.h5.lock").exists()


def test_truncated_file(league):
    data = league.read_bytes()
    league.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptLeague) as e:
        League(league)
    one_line(e, "damaged", str(league))


def test_random_bytes(tmp_path):
    p = tmp_path / "junk.h5"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptLeague) as e:
        League(p)
    one_line(e, "not an HDF5 file")


def test_hdf5_but_not_a_league(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(CorruptLeague) as e:
        League(p)
    one_line(e, "not a league", "schema_version")


def test_newer_schema(league):
    with h5py.File(league, "r+") as f:
        f.attrs["schema_version"] = 7
    with pytest.raises(CorruptLeague) as e:
        League(league)
    one_line(e, "league schema 7 is newer than this arena supports (1); upgrade marl-arena")


def test_pickled_object_as_weight_is_never_loaded(league, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with h5py.File(league, "r+") as f:
        g = f["policies/p1/v1/weights"]
        del g["w"]
        g.create_dataset("w", data=np.void(pickle.dumps(Boom())))  # opaque bytes
        vlen = np.empty(1, dtype=object)
        vlen[0] = np.frombuffer(pickle.dumps(Boom()), np.uint8)
        f["policies/p2/v1/weights"].create_dataset("x", data=vlen, dtype=h5py.vlen_dtype(np.uint8))
    with League(league) as lg:
        assert lg.get("p0").weights["w"].shape == (50, 50)
        for ref in ("p1", "p2"):
            with pytest.raises(CorruptLeague) as e:
                lg.get(ref)
            one_line(e, f"{ref}@v1", "not a numeric array")
    assert not (tmp_path / "PWNED").exists()


def test_weights_changed_on_disk_fail_sha256(league):
    with h5py.File(league, "r+") as f:
        f["policies/p1/v1/weights/w"][0, 0] = 2.0
    with League(league) as lg:
        with pytest.raises(CorruptLeague) as e:
            lg.get("p1@v1")
        one_line(e, "p1@v1", "sha256")
        lg.get("p0")


def test_damaged_journal_entry(league):
    with League(league, "a", checkpoint_entries=100) as lg:
        lg.add_policy("j", "defender", "qmix", "3m", {}, {"w": np.ones(10)}, {})
        entry = next((league.parent / "league.h5.journal").glob("*.jrn"))
        entry.write_bytes(entry.read_bytes()[:-7])
        with pytest.raises(CorruptLeague) as e:
            League(league)
        one_line(e, "journal entry", "truncated")
        lg._closed = True  # the damaged entry would fail the closing checkpoint too


def test_corrupt_is_a_store_error():
    assert issubclass(CorruptLeague, StoreError)
