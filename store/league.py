"""The HDF5 league: versioned policies, match records, payoff views and runs in one file.

This module is long because `League` is the one public face of the store: every operation a
caller may do (policies, refs, retire/purge, transactions, commit) is a method here, while the
parts with an idea of their own live beside it (checkpoint, journal, lock, schema, references,
tables).

File layout (readable with plain h5py; strings are variable-length UTF-8)::

    /                          attrs: schema_version (int, 1), created (ISO), arena_version,
                                      journal_seq (int: last journal entry merged, see below)
    /policies/<name>/          attrs: role ("defender" | "attacker"), kind, scenario ("any" for
                                      scenario-free policies), latest (highest version issued;
                                      kept when every version is purged: a tombstone)
    /policies/<name>/v<K>/     attrs: config (JSON), provenance (JSON), sha256, created (ISO),
                                      retired (bool), n_params (int), broken (JSON list of the
                                      purged refs it names; absent when none)
    /policies/<name>/v<K>/weights/<param>   one dataset per parameter (float32, or the integer
                                      dtype given); names may contain '.', never '/'
    /matches/<scenario>/       append-only columns, one row per match record:
        defender, attacker, device, code_version, created     (str)  [R]
        seed, episodes, wins, steps, offset                   (int64) [R]  (wins, steps: sums)
        sum, sumsq                                            (float64) [R] (of team returns)
        ep_returns (f8), ep_wins (i1), ep_lengths (i8), ep_attack_cost (f8)   [total episodes]
            row i's episodes are ep_*[offset[i] : offset[i] + episodes[i]]
    /runs/<run_id>/            attrs: config (JSON), created, broken (as for policies); dataset
                                      iterations: one JSON str per iteration
    /index                     a JSON str caching the policy attributes and run ids (read on
                               open instead of every group's attributes; see schema.write_index)

Crash safety. The main file is never written in place. A committed write (one call, or one
``transaction()``) is a small journal entry ``PATH.journal/<seq>.jrn`` made durable by fsync
and an atomic rename (see ``store.journal``); readers see the main file plus the journal. A
checkpoint merges the journal: copy the main file, apply the entries to the copy, fsync,
``os.replace`` over the main file, fsync the directory, then delete the merged entries. The
copy's ``journal_seq`` makes re-applying an entry impossible if the process dies between the
replace and the deletion. Checkpoints run when the journal grows past the main file's size
(at least ``checkpoint_bytes``) or ``checkpoint_entries`` entries, which keeps the copying
linear in the data written, and when a writer closes, so a closed league is one .h5 file
(plus its empty lock files). The copying and replacing is ``store.checkpoint``.

A write that committed never fails afterwards: when its checkpoint fails (a full disk, a lock
timeout at close, any OSError) one line "warning: committed; checkpoint deferred (reason)" goes
to stderr and the next writer or closer tries again. A journal entry that cannot be read or
applied is set aside to ``PATH.journal/bad/`` by the next writer, with one warning line, so it
cannot stop every later write; readers meanwhile report it as CorruptLeague.

Concurrency: each operation holds ``PATH.lock`` (``store.lock``) shared to read or exclusively
to write, and opens the HDF5 file only for that operation; a ``transaction()`` holds it
exclusively throughout. Waiting writers go before new readers. A process that cannot get the
lock within ``lock_timeout`` seconds raises LockTimeout naming the holder (or the readers).

Refs: "name@vK", or a bare "name" meaning its latest version that is not retired (the latest
version if all are retired). retire/purge on a bare name act on every version of the name.
Version numbers never repeat: a name whose versions are all purged stays as a tombstone that
keeps ``latest``. Purging what a mixture or run names is refused unless forced; a forced purge
marks the referrers broken (``store.references``): ``info``/``get`` still return them, with
``broken`` set, and ``get(ref, usable=True)`` raises BrokenPolicy.
"""

from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
import h5py
import numpy as np

from store import checkpoint, references, schema
from store.catalog import NameEntry, VersionEntry, View
from store.errors import BrokenPolicy, CorruptLeague, StoreError, os_error_text, warn
from store.journal import (DamagedEntry, journal_dir, list_entries, read_arrays, read_header, set_aside,
                           set_aside_seqs, write_entry)
from store.lock import FileLock, check_timeout
from store.tables import TablesMixin
from store.records import (ROLES, PolicyInfo, PolicyRecord, check_name, check_policy_name, loads_json,
                           make_ref, normalise_weights, now_iso, parse_ref, to_json, weights_sha256)
from store.version import SCHEMA_VERSION

# Exceptions by which a journal entry shows that it does not fit the league.
_ENTRY_ERRORS = (CorruptLeague, KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError)


@dataclass
class _Txn:
    ops: list[dict] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    added: list[tuple[VersionEntry, dict]] = field(default_factory=list)


class League(TablesMixin):
    """A league file opened for reading ("r") or reading and writing ("a")."""

    def __init__(self, path: str | os.PathLike, mode: str = "r", lock_timeout: float = 30.0, *,
                 durable: bool = True, checkpoint_bytes: int = 64 << 20, checkpoint_entries: int = 1000):
        if mode not in ("r", "a"):
            raise StoreError(f"invalid league mode {mode!r}: expected 'r' or 'a'")
        lock_timeout = check_timeout(lock_timeout)
        self.path = Path(path)
        self.mode = mode
        self.durable = durable  # False skips fsync: survives a killed process, not a power cut
        self.checkpoint_bytes = int(checkpoint_bytes)
        self.checkpoint_entries = int(checkpoint_entries)
        self._check_exists(self.path)
        self._jdir = journal_dir(self.path)
        self._lock = FileLock(self.path, lock_timeout)
        self._view: View | None = None
        self._txn: _Txn | None = None
        self._closed = False
        self.schema_version = SCHEMA_VERSION
        try:
            with self._lock.hold(False):
                self._refresh()
        except DamagedEntry:
            if mode != "a":
                raise
            with self._lock.hold(True):  # a writer sets the damaged entry aside and goes on
                self._refresh()

    # -- creation ------------------------------------------------------------------------------

    @staticmethod
    def create(path: str | os.PathLike, force: bool = False) -> None:
        """Create a new, empty league; an existing file is replaced only with force=True."""
        path = Path(path)
        message = f"{path} already exists; pass force to replace it (its data is lost)"
        if path.exists() and not force and not path.is_dir():
            raise StoreError(message)

        def fill(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f:
                schema.init_file(f)
        checkpoint.install(path, fill, force, message)

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> "League":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # closing must never replace the error being propagated
            self.close()
        except Exception as e:
            warn(f"warning: could not close league {self.path}: {e}")

    def close(self) -> None:
        """Release the league; a writer first merges the journal (a closed league is one file).

        Everything this writer wrote is committed already, so a failed merge is a warning (the
        next writer or closer merges), not an error.
        """
        if self._closed:
            return
        try:
            if self.mode == "a" and self._txn is None and list_entries(self._jdir):
                with self._lock.hold(True):
                    view = self._refresh()
                    if view.seq > view.main_seq or list_entries(self._jdir):
                        self._checkpoint_locked()
        except Exception as e:
            warn(f"warning: committed; checkpoint deferred ({e})")
        finally:
            self._closed = True
            self._view = None

    def __repr__(self) -> str:
        return f"League({str(self.path)!r}, mode={self.mode!r})"

    # -- opening and refreshing ----------------------------------------------------------------

    @staticmethod
    def _check_exists(path: Path) -> None:
        if path.is_dir():
            raise CorruptLeague(f"{path} is a directory, not a league file")
        if not path.exists():
            raise CorruptLeague(f"no league at {path}; create one with `arena init`")

    def _open_main(self) -> h5py.File:
        """Open the main file read-only and check that it is a league of a schema we read."""
        self._check_exists(self.path)
        f, self.schema_version = schema.open_main(self.path)
        return f

    def _main_key(self) -> tuple:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _refresh(self) -> View:
        """Bring the view up to date with the main file and the committed journal (lock held)."""
        if self._closed:
            raise StoreError(f"league {self.path} is closed")
        if self._txn is not None:
            return self._view  # the exclusive lock is held: nothing else can have changed
        for _ in range(1000):
            try:
                return self._refresh_once()
            except DamagedEntry as bad:
                self._view = None
                if not self._lock.exclusive:
                    raise
                self._set_aside(bad.seq, bad.path, str(bad))
        raise CorruptLeague(f"league journal {self._jdir} has too many damaged entries")

    def _set_aside(self, seq: int, path: Path, reason: str) -> None:
        dest = set_aside(self._jdir, seq, path)
        warn(f"warning: league {self.path}: set aside journal entry {seq} as {dest} ({reason})")

    def _refresh_once(self) -> View:
        self._check_exists(self.path)
        key = self._main_key()
        if self._view is None or self._view.main_key != key:
            self._view = None
            with self._open_main() as f:
                try:
                    view = schema.load_view(f)
                except (KeyError, ValueError, TypeError, OSError, AttributeError, RecursionError) as e:
                    raise CorruptLeague(f"{self.path} has a damaged policy catalogue "
                                        f"({type(e).__name__}: {str(e)[:200]})") from None
            view.main_key = key
            self._view = view
        view = self._view
        aside = None
        for seq, path in list_entries(self._jdir):
            if seq <= view.seq:
                continue
            if seq != view.seq + 1:  # a gap is allowed only where entries were set aside
                aside = set_aside_seqs(self._jdir) if aside is None else aside
                if sum(1 for s in aside if view.seq < s < seq) != seq - view.seq - 1:
                    self._view = None
                    raise CorruptLeague(f"league journal {self._jdir} is missing entry {view.seq + 1}")
            try:
                header, start = read_header(path)
                src = ("jrn", path, start, header["arrays"])
                for op in header["ops"]:
                    view.apply(op, src, lambda idx, p=path, s=start, t=header["arrays"]: read_arrays(p, s, t, idx))
            except _ENTRY_ERRORS as e:
                self._view = None  # it may hold part of the entry
                text = str(e) if isinstance(e, CorruptLeague) else \
                    f"journal entry {path} does not fit the league ({type(e).__name__}: {str(e)[:200]})"
                raise DamagedEntry(f"{text}; the next write sets it aside", seq, path) from None
            view.seq = seq
            view.journal_bytes += start + header["body"]
            view.journal_entries += 1
        return view

    def _read(self):
        return self._lock.hold(False)

    # -- writes --------------------------------------------------------------------------------

    def _require_write(self) -> None:
        if self.mode != "a":
            raise StoreError(f"league {self.path} is open read-only")
        if self._closed:
            raise StoreError(f"league {self.path} is closed")

    @contextmanager
    def transaction(self):
        """Group writes into one commit: all of them survive a crash, or none does."""
        self._require_write()
        if self._txn is not None:
            yield self
            return
        with self._lock.hold(True):
            self._refresh()
            txn = self._txn = _Txn()
            try:
                yield self
            except BaseException:
                if txn.ops:
                    self._view = None  # it holds the uncommitted writes; reload on next use
                raise
            finally:
                self._txn = None
            if txn.ops:
                self._commit(txn)

    def _stage(self, op: dict, arrays: dict[str, np.ndarray], slot: str) -> None:
        """Add an operation to the open transaction and apply it to the view."""
        txn = self._txn
        op[slot] = {}
        for key, arr in arrays.items():
            op[slot][key] = len(txn.arrays)
            txn.arrays.append(arr)
        self._view.apply(op, ("mem", txn.arrays), lambda idx: [txn.arrays[i] for i in idx])
        txn.ops.append(op)
        if op["op"] == "add_policy":
            txn.added.append((self._view.names[op["name"]].versions[op["version"]], op))

    def _stage_plain(self, op: dict) -> None:
        txn = self._txn
        self._view.apply(op, ("mem", txn.arrays), lambda idx: [])
        txn.ops.append(op)

    def _commit(self, txn: _Txn) -> None:
        view = self._view
        seq = view.seq + 1
        try:
            path, start, table, size = write_entry(self._jdir, seq, txn.ops, txn.arrays, self.durable)
        except OSError as e:
            self._view = None
            raise StoreError(f"could not write to league {self.path}: {os_error_text(e, self.path.parent)}") from None
        for entry, op in txn.added:
            entry.src = ("jrn", path, start, table, dict(op["weights"]))
        view.seq = seq
        view.journal_bytes += size
        view.journal_entries += 1
        main_size = view.main_key[1] if view.main_key else 0
        if view.journal_entries >= self.checkpoint_entries or \
                view.journal_bytes >= max(self.checkpoint_bytes, main_size):
            try:
                self._checkpoint_locked()
            except Exception as e:  # the write is committed: it must not be reported as failed
                self._view = None
                warn(f"warning: committed; checkpoint deferred ({e})")

    def checkpoint(self) -> None:
        """Merge the journal into the main file now."""
        self._require_write()
        if self._txn is not None:
            raise StoreError("cannot checkpoint inside a transaction")
        with self._lock.hold(True):
            self._refresh()
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        for _ in range(1000):
            bad = checkpoint.merge(self.path, self._view, self.durable)
            if bad is None:
                break
            self._set_aside(*bad)  # merge the others without it: reload the view that holds it
            self._view = None
            self._refresh()
        else:
            raise CorruptLeague(f"league journal {self._jdir} has too many damaged entries")
        self._after_checkpoint(self._view)
        for _, p in list_entries(self._jdir):
            p.unlink(missing_ok=True)
        if self._jdir.exists():
            try:
                self._jdir.rmdir()
            except OSError:
                pass  # not empty: bad/ keeps the entries set aside

    def _after_checkpoint(self, view: View) -> None:
        """Everything in the view now lives in the main file."""
        for entry in view.names.values():
            for ve in entry.versions.values():
                ve.src = ("main",)
        view.main_runs |= set(view.new_runs)
        view.new_runs.clear()
        view.new_iters.clear()
        view.new_matches.clear()
        view.purged_main_refs.clear()
        view.broken_runs.clear()
        view.main_seq = view.seq
        view.journal_bytes = view.journal_entries = 0
        view.main_key = self._main_key()

    # -- resolving refs ------------------------------------------------------------------------

    def _entry(self, view: View, name: str) -> NameEntry:
        entry = view.names.get(name)
        if entry is not None and not entry.versions:
            raise StoreError(f"unknown policy {name!r}: all its versions (up to v{entry.latest}) were purged")
        if entry is None:
            close = difflib.get_close_matches(name, view.live_names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise StoreError(f"unknown policy {name!r}{hint}")
        return entry

    @staticmethod
    def _versions_text(name: str, versions) -> str:
        ks = sorted(versions)
        if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 2:
            return f"{name} has versions v{ks[0]}..v{ks[-1]}"
        return f"{name} has version{'s' if len(ks) > 1 else ''} " + ", ".join(f"v{k}" for k in ks)

    def _lookup(self, view: View, ref: str) -> tuple[str, NameEntry, VersionEntry]:
        name, k = parse_ref(ref)
        entry = self._entry(view, name)
        if k is None:
            live = [v for v in entry.versions if not entry.versions[v].retired]
            k = max(live or entry.versions)
        elif k not in entry.versions:
            raise StoreError(f"unknown version v{k}: {self._versions_text(name, entry.versions)}")
        return name, entry, entry.versions[k]

    def resolve(self, ref: str) -> str:
        """'name' -> 'name@vK' of its latest (non-retired) version; checks that the ref exists."""
        with self._read():
            name, _, ve = self._lookup(self._refresh(), ref)
        return make_ref(name, ve.version)

    # -- policies ------------------------------------------------------------------------------

    def add_policy(self, name: str, role: str, kind: str, scenario: str, config: dict,
                   weights: dict[str, np.ndarray], provenance: dict) -> str:
        """Store a new version of policy `name` (v1 if new); returns its ref 'name@vK'."""
        self._require_write()
        self._check_add(None, name, role, kind, scenario)
        config_json, provenance_json = to_json(config, "config"), to_json(provenance, "provenance")
        w = normalise_weights(weights)
        op = {"op": "add_policy", "name": name, "role": role, "kind": kind, "scenario": scenario,
              "config": config_json, "provenance": provenance_json, "sha256": weights_sha256(w),
              "created": now_iso(), "n_params": int(sum(a.size for a in w.values()))}
        with self.transaction():
            self._check_add(self._view, name, role, kind, scenario)
            entry = self._view.names.get(name)
            op["version"] = entry.latest + 1 if entry else 1  # a tombstone keeps counting
            self._stage(op, w, "weights")
        return make_ref(name, op["version"])

    def check_add(self, name: str, role: str, kind: str, scenario: str) -> None:
        """Raise StoreError now if add_policy(name, role, kind, scenario, ...) would be refused.

        For callers that compute a policy at length (a training) before they store it.
        """
        with self._read():
            self._check_add(self._refresh(), name, role, kind, scenario)

    @staticmethod
    def _check_add(view: View | None, name: str, role: str, kind: str, scenario: str) -> None:
        check_policy_name(name)
        if role not in ROLES:
            raise StoreError(f"invalid role {role!r}: expected 'defender' or 'attacker'")
        check_name(kind, "kind")
        check_name(scenario, "scenario")
        entry = view.names.get(name) if view is not None else None
        if entry is not None and entry.versions:
            for attr, value in (("role", role), ("kind", kind), ("scenario", scenario)):
                if getattr(entry, attr) != value:
                    raise StoreError(f"policy {name} has {attr} {getattr(entry, attr)!r}, "
                                     f"not {value!r}; use another name")

    def _info(self, name: str, entry: NameEntry, ve: VersionEntry) -> PolicyInfo:
        ref = make_ref(name, ve.version)
        config = loads_json(ve.config, f"policy {ref}: config")
        provenance = loads_json(ve.provenance, f"policy {ref}: provenance")
        if not isinstance(config, dict) or not isinstance(provenance, dict):
            raise CorruptLeague(f"policy {ref}: config or provenance is not a JSON object")
        return PolicyInfo(name, ve.version, ref, entry.role, entry.kind,
                          entry.scenario, config, provenance, ve.sha256, ve.retired, ve.created,
                          ve.n_params, len(entry.versions), list(ve.broken))

    @staticmethod
    def _check_usable(info: PolicyInfo) -> None:
        if info.broken:
            raise BrokenPolicy(f"{info.ref} is broken: it references purged {', '.join(info.broken)}")

    def info(self, ref: str, usable: bool = False) -> PolicyInfo:
        """A version's metadata, without reading its weights.

        With usable=True a broken version (one that names a purged policy) raises BrokenPolicy;
        otherwise it is returned with ``broken`` listing the purged refs, so it can be shown.
        """
        with self._read():
            info = self._info(*self._lookup(self._refresh(), ref))
        if usable:
            self._check_usable(info)
        return info

    def get(self, ref: str, usable: bool = False) -> PolicyRecord:
        """A version with its weights, checked against the stored sha256 (usable: as in info)."""
        with self._read():
            name, entry, ve = self._lookup(self._refresh(), ref)
            info = self._info(name, entry, ve)
            if usable:
                self._check_usable(info)
            src = ve.src
            if src[0] == "main":
                with self._open_main() as f:
                    weights = schema.read_weights(f, name, ve.version)
            elif src[0] == "jrn":
                _, path, start, table, wmap = src
                keys = list(wmap)
                weights = dict(zip(keys, read_arrays(path, start, table, [wmap[k] for k in keys])))
            else:
                weights = {k: a.copy() for k, a in src[1].items()}
        if weights_sha256(weights) != ve.sha256:
            raise CorruptLeague(f"policy {info.ref}: weights do not match their sha256 (the league is corrupted)")
        return PolicyRecord(**vars(info), weights=weights)

    def list(self, role: str | None = None, kind: str | None = None, scenario: str | None = None,
             include_retired: bool = False, all_versions: bool = False) -> list[PolicyInfo]:
        """Policies sorted by name: the latest shown version of each, or every version."""
        if role is not None and role not in ROLES:
            raise StoreError(f"invalid role {role!r}: expected 'defender' or 'attacker'")
        out = []
        with self._read():
            view = self._refresh()
            for name in sorted(view.names):
                entry = view.names[name]
                if (role and entry.role != role) or (kind and entry.kind != kind) or \
                        (scenario and entry.scenario != scenario):
                    continue
                ks = sorted(k for k, ve in entry.versions.items() if include_retired or not ve.retired)
                for k in ks if all_versions else ks[-1:]:
                    out.append(self._info(name, entry, entry.versions[k]))
        return out

    def _select(self, view: View, ref: str) -> tuple[str, list[int]]:
        name, k = parse_ref(ref)
        entry = self._entry(view, name)
        if k is not None and k not in entry.versions:
            raise StoreError(f"unknown version v{k}: {self._versions_text(name, entry.versions)}")
        return name, [k] if k is not None else sorted(entry.versions)

    def retire(self, ref: str) -> None:
        """Hide a version (or every version of a bare name) from listings; data is kept."""
        self._require_write()
        with self.transaction():
            name, ks = self._select(self._view, ref)
            self._stage_plain({"op": "retire", "name": name, "versions": ks})

    def referrers(self, ref: str) -> dict:
        """What names the version(s) `ref` selects: {"policies": {ref: [..]}, "runs": {id: [..]}}."""
        with self._read():
            view = self._refresh()
            name, ks = self._select(view, ref)
            return self._referrers(view, name, ks)

    def _referrers(self, view: View, name: str, ks: list[int]) -> dict:
        purged = {make_ref(name, k) for k in ks}
        emptied = {name} if set(ks) == set(view.names[name].versions) else set()
        return references.find_referrers(view, purged, emptied, self._run_texts(view))

    def purge(self, ref: str, force: bool = False) -> None:
        """Delete a version (or every version of a bare name) and the matches it played.

        Refused with PolicyInUse when a mixture, another policy's config or a run names it;
        force=True purges anyway and marks those referrers broken (see ``info``).
        """
        self._require_write()
        with self.transaction():
            view = self._view
            name, ks = self._select(view, ref)
            found = self._referrers(view, name, ks)
            if (found["policies"] or found["runs"]) and not force:
                references.refuse(ref, found, view)
            op = {"op": "purge", "name": name, "versions": ks}
            if found["policies"] or found["runs"]:
                op["broken"] = found
            self._stage_plain(op)
