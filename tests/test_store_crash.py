"""SIGKILL at random moments of random writes never loses a committed record.

A forked writer adds policies, matches, transactions and run iterations, checkpoints and
reopens, printing each committed record; it is killed after a random delay, then the league
must open and hold every printed record with verified weights (store.soak).
"""

import os

import numpy as np
import pytest

from store import League
from store.soak import Committed, run_trial, soak, verify

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


@pytest.mark.slow
def test_sigkill_trials(tmp_path):
    report = soak(tmp_path / "league.h5", trials=60, max_delay=0.3, seed=1)
    assert report["problems"] == []
    assert report["policies"] > 30 and report["matches"] > 5  # the trials did write


def test_failed_checkpoint_keeps_everything(tmp_path, monkeypatch):
    """A checkpoint that dies after writing the copy but before replacing the file."""
    path = tmp_path / "league.h5"
    League.create(path)
    committed = Committed()
    committed.take(run_trial(path, seed=7, delay=0.2))
    lg = League(path, "a", checkpoint_bytes=1 << 40, checkpoint_entries=10**9)
    for i in range(3):
        ref = lg.add_policy("late", "defender", "qmix", "s", {}, {"w": np.full(4, i, np.float32)}, {})
        committed.take([f"P {ref} {lg.info(ref).sha256}"])
    import store.league as league_mod

    def die(*a, **k):
        raise KeyboardInterrupt  # stands in for a kill between the copy and os.replace

    monkeypatch.setattr(league_mod.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        lg.checkpoint()
    monkeypatch.undo()
    assert verify(path, committed) == []
    assert list((tmp_path / "league.h5.journal").glob("*.jrn"))
    with League(path, "a") as lg2:
        lg2.checkpoint()
    assert verify(path, committed) == []
    assert not (tmp_path / "league.h5.journal").exists()
