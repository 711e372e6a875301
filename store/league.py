"""The HDF5 league: versioned policies, match records, payoff views and runs in one file.

File layout (readable with plain h5py; strings are variable-length UTF-8)::

    /                          attrs: schema_version (int, 1), created (ISO), arena_version,
                                      journal_seq (int: last journal entry merged, see below)
    /policies/<name>/          attrs: role ("defender" | "attacker"), kind, scenario ("any" for
                                      scenario-free policies), latest (highest version issued)
    /policies/<name>/v<K>/     attrs: config (JSON), provenance (JSON), sha256, created (ISO),
                                      retired (bool), n_params (int)
    /policies/<name>/v<K>/weights/<param>   one dataset per parameter (float32, or the integer
                                      dtype given); names may contain '.', never '/'
    /matches/<scenario>/       append-only columns, one row per match record:
        defender, attacker, device, code_version, created     (str)  [R]
        seed, episodes, wins, steps, offset                   (int64) [R]  (wins, steps: sums)
        sum, sumsq                                            (float64) [R] (of team returns)
        ep_returns (f8), ep_wins (i1), ep_lengths (i8), ep_attack_cost (f8)   [total episodes]
            row i's episodes are ep_*[offset[i] : offset[i] + episodes[i]]
    /runs/<run_id>/            attrs: config (JSON), created; dataset iterations: one JSON str
                                      per iteration
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
(plus its empty ``PATH.lock``).

Concurrency: each operation holds ``PATH.lock`` (``store.lock``) shared to read or exclusively
to write, and opens the HDF5 file only for that operation; a ``transaction()`` holds it
exclusively throughout. A process that cannot get the lock within ``lock_timeout`` seconds
raises LockTimeout naming the holder.

Refs: "name@vK", or a bare "name" meaning its latest version that is not retired (the latest
version if all are retired). retire/purge on a bare name act on every version of the name.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
import h5py
import numpy as np

from store import schema
from store.catalog import NameEntry, VersionEntry, View
from store.errors import CorruptLeague, StoreError
from store.journal import fsync_dir, journal_dir, list_entries, read_arrays, read_header, write_entry
from store.lock import FileLock
from store.payoff import PayoffTable
from store.records import (NO_ATTACK, ROLES, MatchRecord, PolicyInfo, PolicyRecord, RunRecord, check_name,
                           make_ref, normalise_weights, now_iso, parse_ref, to_json, weights_sha256)
from store.version import SCHEMA_VERSION

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _a(role: str) -> str:
    return ("an " if role[0] in "aeiou" else "a ") + role


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Txn:
    ops: list[dict] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    added: list[tuple[VersionEntry, dict]] = field(default_factory=list)


class League:
    """A league file opened for reading ("r") or reading and writing ("a")."""

    def __init__(self, path: str | os.PathLike, mode: str = "r", lock_timeout: float = 30.0, *,
                 durable: bool = True, checkpoint_bytes: int = 64 << 20, checkpoint_entries: int = 1000):
        if mode not in ("r", "a"):
            raise StoreError(f"invalid league mode {mode!r}: expected 'r' or 'a'")
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
        with self._lock.hold(False):
            self._refresh()

    # -- creation ------------------------------------------------------------------------------

    @staticmethod
    def create(path: str | os.PathLike, force: bool = False) -> None:
        """Create a new, empty league; an existing file is replaced only with force=True."""
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a league file")
        if path.exists() and not force:
            raise StoreError(f"{path} already exists; pass force to replace it (its data is lost)")
        if not path.parent.exists():
            raise StoreError(f"directory {path.parent} does not exist")
        with FileLock(path, 30.0).hold(True):
            # The old journal goes first: a crash must never leave it beside the new, empty file.
            shutil.rmtree(journal_dir(path), ignore_errors=True)
            tmp = Path(str(path) + ".create.tmp")
            with h5py.File(tmp, "w") as f:
                schema.init_file(f)
            _fsync_file(tmp)
            os.replace(tmp, path)
            fsync_dir(path.parent)

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> "League":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the league; a writer first merges the journal (a closed league is one file)."""
        if self._closed:
            return
        if self.mode == "a" and self._txn is None:
            with self._lock.hold(True):
                view = self._refresh()
                if view.seq > view.main_seq:
                    self._checkpoint_locked()
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
        try:
            f = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise CorruptLeague(f"no league at {self.path}; create one with `arena init`") from None
        except OSError:
            with open(self.path, "rb") as raw:
                head = raw.read(8)
            what = "a damaged (truncated?) HDF5 file" if head == _HDF5_MAGIC else "not an HDF5 file"
            raise CorruptLeague(f"{self.path} is {what}, not a readable league") from None
        try:
            if "schema_version" not in f.attrs:
                raise CorruptLeague(f"{self.path} is an HDF5 file but not a league (no schema_version)")
            version = int(f.attrs["schema_version"])
            if version > SCHEMA_VERSION:
                raise CorruptLeague(f"league schema {version} is newer than this arena supports "
                                    f"({SCHEMA_VERSION}); upgrade marl-arena")
            if version < 1:
                raise CorruptLeague(f"league schema {version} is not supported (this arena reads {SCHEMA_VERSION})")
            for g in ("policies", "matches", "runs"):
                if not isinstance(f.get(g), h5py.Group):
                    raise CorruptLeague(f"{self.path} is not a complete league: group /{g} is missing")
        except (CorruptLeague, TypeError, ValueError) as e:
            f.close()
            if isinstance(e, CorruptLeague):
                raise
            raise CorruptLeague(f"{self.path} has an unreadable schema_version") from None
        self.schema_version = version
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
        self._check_exists(self.path)
        key = self._main_key()
        if self._view is None or self._view.main_key != key:
            self._view = None
            with self._open_main() as f:
                try:
                    view = schema.load_view(f)
                except (KeyError, ValueError, TypeError, OSError) as e:
                    raise CorruptLeague(f"{self.path} has a damaged policy catalogue ({e})") from None
            view.main_key = key
            self._view = view
        view = self._view
        for seq, path in list_entries(self._jdir):
            if seq <= view.seq:
                continue
            if seq != view.seq + 1:
                self._view = None
                raise CorruptLeague(f"league journal {self._jdir} is missing entry {view.seq + 1}")
            header, start = read_header(path)
            src = ("jrn", path, start, header["arrays"])
            try:
                for op in header["ops"]:
                    view.apply(op, src, lambda idx, p=path, s=start, t=header["arrays"]: read_arrays(p, s, t, idx))
            except (KeyError, ValueError, TypeError) as e:
                self._view = None
                raise CorruptLeague(f"journal entry {path} does not fit the league ({e})") from None
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
            raise StoreError(f"could not write to league {self.path}: {e.strerror or e}") from None
        for entry, op in txn.added:
            entry.src = ("jrn", path, start, table, dict(op["weights"]))
        view.seq = seq
        view.journal_bytes += size
        view.journal_entries += 1
        main_size = view.main_key[1] if view.main_key else 0
        if view.journal_entries >= self.checkpoint_entries or \
                view.journal_bytes >= max(self.checkpoint_bytes, main_size):
            self._checkpoint_locked()

    def checkpoint(self) -> None:
        """Merge the journal into the main file now."""
        self._require_write()
        if self._txn is not None:
            raise StoreError("cannot checkpoint inside a transaction")
        with self._lock.hold(True):
            self._refresh()
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        view = self._view
        for stale in self.path.parent.glob(self.path.name + ".ckpt*.tmp"):
            stale.unlink(missing_ok=True)
        for stale in self._jdir.glob(".tmp-*") if self._jdir.exists() else ():
            stale.unlink(missing_ok=True)
        entries = [(s, p) for s, p in list_entries(self._jdir) if s > view.main_seq]
        if entries:
            tmp = Path(str(self.path) + ".ckpt.tmp")
            shutil.copyfile(self.path, tmp)
            out = tmp
            try:
                with h5py.File(tmp, "r+") as f:
                    purged = False
                    for _, p in entries:
                        header, start = read_header(p)
                        reader = lambda idx, p=p, s=start, t=header["arrays"]: read_arrays(p, s, t, idx)
                        for op in header["ops"]:
                            schema.apply_op(f, op, reader)
                            purged |= op["op"] == "purge"
                    f.attrs["journal_seq"] = view.seq
                    schema.write_index(f, view)
                    if purged:
                        out = Path(str(self.path) + ".ckpt2.tmp")
                        schema.repack(f, out)
                if self.durable:
                    _fsync_file(out)
                os.replace(out, self.path)
                if self.durable:
                    fsync_dir(self.path.parent)
            except OSError as e:
                self._view = None
                raise StoreError(f"could not checkpoint league {self.path}: {e.strerror or e}") from None
            finally:
                tmp.unlink(missing_ok=True)
            self._after_checkpoint(view)
        for _, p in list_entries(self._jdir):
            p.unlink(missing_ok=True)
        if self._jdir.exists():
            try:
                self._jdir.rmdir()
            except OSError:
                pass

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
        view.main_seq = view.seq
        view.journal_bytes = view.journal_entries = 0
        view.main_key = self._main_key()

    # -- resolving refs ------------------------------------------------------------------------

    def _entry(self, view: View, name: str) -> NameEntry:
        entry = view.names.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, list(view.names), n=1)
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
        check_name(name, "policy name")
        if name == NO_ATTACK:
            raise StoreError(f"{NO_ATTACK!r} is reserved for the no-attack column")
        if role not in ROLES:
            raise StoreError(f"invalid role {role!r}: expected 'defender' or 'attacker'")
        check_name(kind, "kind")
        check_name(scenario, "scenario")
        config_json, provenance_json = to_json(config, "config"), to_json(provenance, "provenance")
        w = normalise_weights(weights)
        op = {"op": "add_policy", "name": name, "role": role, "kind": kind, "scenario": scenario,
              "config": config_json, "provenance": provenance_json, "sha256": weights_sha256(w),
              "created": now_iso(), "n_params": int(sum(a.size for a in w.values()))}
        with self.transaction():
            entry = self._view.names.get(name)
            if entry is not None:
                for attr, value in (("role", role), ("kind", kind), ("scenario", scenario)):
                    if getattr(entry, attr) != value:
                        raise StoreError(f"policy {name} has {attr} {getattr(entry, attr)!r}, "
                                         f"not {value!r}; use another name")
            op["version"] = entry.latest + 1 if entry else 1
            self._stage(op, w, "weights")
        return make_ref(name, op["version"])

    def _info(self, name: str, entry: NameEntry, ve: VersionEntry) -> PolicyInfo:
        try:
            config, provenance = json.loads(ve.config), json.loads(ve.provenance)
        except ValueError:
            raise CorruptLeague(f"policy {make_ref(name, ve.version)}: config or provenance is not JSON") from None
        return PolicyInfo(name, ve.version, make_ref(name, ve.version), entry.role, entry.kind,
                          entry.scenario, config, provenance, ve.sha256, ve.retired, ve.created,
                          ve.n_params, len(entry.versions))

    def info(self, ref: str) -> PolicyInfo:
        """A version's metadata, without reading its weights."""
        with self._read():
            return self._info(*self._lookup(self._refresh(), ref))

    def get(self, ref: str) -> PolicyRecord:
        """A version with its weights, checked against the stored sha256."""
        with self._read():
            name, entry, ve = self._lookup(self._refresh(), ref)
            info = self._info(name, entry, ve)
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

    def purge(self, ref: str) -> None:
        """Delete a version (or every version of a bare name) and the matches it played."""
        self._require_write()
        with self.transaction():
            name, ks = self._select(self._view, ref)
            self._stage_plain({"op": "purge", "name": name, "versions": ks})

    # -- matches and payoff tables -------------------------------------------------------------

    def _player(self, view: View, ref: str, role: str, scenario: str) -> str:
        if role == "attacker" and ref == NO_ATTACK:
            return NO_ATTACK
        name, entry, ve = self._lookup(view, ref)
        full = make_ref(name, ve.version)
        if entry.role != role:
            raise StoreError(f"{full} is {_a(entry.role)}, not {_a(role)}")
        if entry.scenario not in (scenario, "any"):
            raise StoreError(f"{full} is for scenario {entry.scenario!r}, not {scenario!r}")
        return full

    def add_match(self, rec: MatchRecord) -> None:
        """Append a match record (bare names are stored as the refs they resolve to)."""
        self._require_write()
        if not isinstance(rec, MatchRecord):
            raise StoreError(f"add_match expects a MatchRecord, got {type(rec).__name__}")
        m = rec.validated()
        check_name(m.scenario, "scenario")
        with self.transaction():
            view = self._view
            op = {"op": "add_match", "scenario": m.scenario,
                  "defender": self._player(view, m.defender, "defender", m.scenario),
                  "attacker": self._player(view, m.attacker, "attacker", m.scenario),
                  "seed": m.seed, "device": m.device, "code_version": m.code_version, "created": m.created}
            self._stage(op, {"returns": m.returns, "wins": m.wins, "lengths": m.lengths,
                             "attack_cost": m.attack_cost}, "arrays")

    def _scenarios(self, view: View) -> list[str]:
        with self._open_main() as f:
            main = set(f["matches"].keys())
        return sorted(main | {m.scenario for m in view.new_matches})

    def matches(self, scenario: str | None = None, defender: str | None = None,
                attacker: str | None = None) -> list[MatchRecord]:
        """Match records in the order they were added. A bare name matches all its versions."""
        with self._read():
            view = self._refresh()
            tests = []
            for who, ref in (("defender", defender), ("attacker", attacker)):
                if ref is None:
                    continue
                if ref == NO_ATTACK and who == "attacker":
                    tests.append((who, lambda r: r == NO_ATTACK))
                    continue
                name, k = parse_ref(ref)
                if k is None:
                    self._entry(view, name)
                    tests.append((who, lambda r, n=name: r.split("@")[0] == n))
                else:
                    tests.append((who, lambda r, ref=ref: r == ref))
            scenarios = [scenario] if scenario is not None else self._scenarios(view)
            out: list[MatchRecord] = []
            with self._open_main() as f:
                for s in scenarios:
                    if s in f["matches"]:
                        out += [m for m in schema.read_matches(f, s)
                                if m.defender not in view.purged_main_refs
                                and m.attacker not in view.purged_main_refs]
            main_count = len(out)
            out += [m for m in view.new_matches if m.scenario in scenarios]
            out[main_count:] = [MatchRecord(m.defender, m.attacker, m.scenario, m.returns.copy(), m.wins.copy(),
                                            m.lengths.copy(), m.attack_cost.copy(), m.seed, m.device,
                                            m.code_version, m.created) for m in out[main_count:]]
        return [m for m in out if all(test(getattr(m, who)) for who, test in tests)]

    def payoff(self, scenario: str, defenders: list[str], attackers: list[str]) -> PayoffTable:
        """Sum, sum of squares, count and wins of every (defender, attacker) cell."""
        with self._read():
            view = self._refresh()
            drefs = [self._player(view, r, "defender", scenario) for r in defenders]
            arefs = [self._player(view, r, "attacker", scenario) for r in attackers]
            with self._open_main() as f:
                rows = schema.read_match_rows(f, scenario)
            d_col, a_col = list(rows["defender"]), list(rows["attacker"])
            ep, s, sq, w = (list(rows[k]) for k in ("episodes", "sum", "sumsq", "wins"))
            if view.purged_main_refs:
                keep = [i for i in range(len(d_col)) if d_col[i] not in view.purged_main_refs
                        and a_col[i] not in view.purged_main_refs]
                d_col, a_col, ep, s, sq, w = ([c[i] for i in keep] for c in (d_col, a_col, ep, s, sq, w))
            for m in view.new_matches:
                if m.scenario == scenario:
                    d_col.append(m.defender)
                    a_col.append(m.attacker)
                    ep.append(m.episodes)
                    s.append(m.sum)
                    sq.append(m.sumsq)
                    w.append(int(m.wins.sum()))
        D, A = len(drefs), len(arefs)
        count = np.zeros((D, A), np.int64)
        total, total_sq = np.zeros((D, A)), np.zeros((D, A))
        wins = np.zeros((D, A), np.int64)
        if d_col:
            # Group the rows by (defender, attacker) once, then scatter the groups into the cells.
            pairs = np.array([d + "\0" + a for d, a in zip(d_col, a_col)], dtype=object)
            keys, inv = np.unique(pairs, return_inverse=True)
            sums = [np.bincount(inv, weights=np.asarray(c, np.float64), minlength=len(keys))
                    for c in (ep, s, sq, w)]
            d_idx = {r: [i for i, x in enumerate(drefs) if x == r] for r in drefs}
            a_idx = {r: [j for j, x in enumerate(arefs) if x == r] for r in arefs}
            for g, key in enumerate(keys):
                d, a = key.split("\0")
                for i in d_idx.get(d, ()):
                    for j in a_idx.get(a, ()):
                        count[i, j] += int(sums[0][g])
                        total[i, j] += sums[1][g]
                        total_sq[i, j] += sums[2][g]
                        wins[i, j] += int(sums[3][g])
        return PayoffTable(scenario, drefs, arefs, count, total, total_sq, wins)

    # -- runs ----------------------------------------------------------------------------------

    def create_run(self, config: dict, run_id: str | None = None) -> str:
        """Start a run record (e.g. a PSRO run); returns its id."""
        self._require_write()
        config_json = to_json(config, "run config")
        if run_id is None:
            run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        check_name(run_id, "run id")
        with self.transaction():
            if self._view.has_run(run_id):
                raise StoreError(f"run {run_id!r} already exists")
            self._stage_plain({"op": "create_run", "run_id": run_id, "config": config_json, "created": now_iso()})
        return run_id

    def append_iteration(self, run_id: str, record: dict) -> None:
        """Append one iteration's record (JSON) to a run."""
        self._require_write()
        record_json = to_json(record, "iteration record")
        with self.transaction():
            if not self._view.has_run(run_id):
                raise StoreError(f"unknown run {run_id!r}")
            self._stage_plain({"op": "append_iteration", "run_id": run_id, "record": record_json})

    def _run(self, view: View, run_id: str) -> RunRecord:
        if run_id in view.main_runs:
            with self._open_main() as f:
                config, created, its = schema.read_run(f, run_id)
        elif run_id in view.new_runs:
            config_json, created = view.new_runs[run_id]
            config, its = json.loads(config_json), []
        else:
            raise StoreError(f"unknown run {run_id!r}")
        its = its + view.new_iters.get(run_id, [])
        try:
            iterations = [json.loads(s) for s in its]
        except ValueError:
            raise CorruptLeague(f"run {run_id}: an iteration record is not JSON") from None
        return RunRecord(run_id, config, iterations, created)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read():
            return self._run(self._refresh(), run_id)

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        with self._read():
            view = self._refresh()
            out = [self._run(view, r) for r in view.main_runs | set(view.new_runs)]
        return sorted(out, key=lambda r: (r.created, r.run_id))
