"""The HDF5 league: versioned policies, match records, payoff tables and runs (numpy + h5py only).

See ``store.league`` for the file layout and the crash-safety and locking rules.
"""

from store.errors import CorruptLeague, LockTimeout, StoreError
from store.league import League
from store.payoff import PayoffTable
from store.records import NO_ATTACK, MatchRecord, PolicyInfo, PolicyRecord, RunRecord, parse_ref
from store.version import SCHEMA_VERSION, arena_version

ARENA_VERSION = arena_version()

__all__ = [
    "ARENA_VERSION", "CorruptLeague", "League", "LockTimeout", "MatchRecord", "NO_ATTACK",
    "PayoffTable", "PolicyInfo", "PolicyRecord", "RunRecord", "SCHEMA_VERSION", "StoreError",
    "arena_version", "parse_ref",
]
