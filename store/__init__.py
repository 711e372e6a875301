"""The HDF5 league: versioned policies, match records, payoff tables and runs (numpy + h5py only).

See ``store.league`` for the file layout and the crash-safety and locking rules.
"""

from store.errors import BrokenPolicy, CorruptLeague, LockTimeout, PolicyInUse, StoreError
from store.league import League
from store.payoff import PayoffTable
from store.records import NO_ATTACK, MatchRecord, PolicyInfo, PolicyRecord, RunRecord, check_policy_name, parse_ref
from store.version import SCHEMA_VERSION, arena_version

ARENA_VERSION = arena_version()

__all__ = [
    "ARENA_VERSION", "BrokenPolicy", "CorruptLeague", "League", "LockTimeout", "MatchRecord", "NO_ATTACK",
    "PayoffTable", "PolicyInUse", "PolicyInfo", "PolicyRecord", "RunRecord", "SCHEMA_VERSION", "StoreError",
    "arena_version", "check_policy_name", "parse_ref",
]
