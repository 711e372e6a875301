"""In-memory view of a league: the main file's policy catalogue plus the journal's operations.

Every write is an operation (a JSON dict whose arrays are referenced by index). The same
operations are applied here, to the view that readers query, and by ``store.schema`` to the
HDF5 file at a checkpoint; ``tests/test_store_journal.py`` checks that both give one answer.

Operations:
  add_policy        name, version, role, kind, scenario, config, provenance (JSON strings),
                    sha256, created, n_params, weights {param name: array index}
  retire            name, versions [K, ...]
  purge             name, versions [K, ...], broken (optional) {"policies": {ref: [purged refs]},
                    "runs": {run_id: [purged refs]}}: removes the versions and every match record
                    that involves one; a name left without versions stays as a tombstone that
                    keeps ``latest``, so its next version never repeats a purged one; the
                    referrers named in ``broken`` are marked (see ``store.references``)
  add_match         scenario, defender, attacker, seed, device, code_version, created,
                    arrays {returns, wins, lengths, attack_cost: array index}
  create_run        run_id, config (JSON string), created
  append_iteration  run_id, record (JSON string)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from store.records import MatchRecord, make_ref

# Where a version's weights live: ("main",), ("mem", {param: array}) for a write not yet
# committed, or ("jrn", path, start, table, {param: array index}).
Source = tuple


@dataclass
class VersionEntry:
    version: int
    config: str
    provenance: str
    sha256: str
    created: str
    retired: bool
    n_params: int
    src: Source
    broken: tuple[str, ...] = ()  # purged refs this version names (store.references)


@dataclass
class NameEntry:
    role: str
    kind: str
    scenario: str
    latest: int  # highest version number ever issued for this name
    versions: dict[int, VersionEntry] = field(default_factory=dict)  # empty: a purged name (tombstone)


@dataclass
class View:
    names: dict[str, NameEntry]
    main_runs: set[str]
    seq: int  # last journal entry reflected in this view
    main_key: tuple | None = None  # stat of the main file this view was loaded from
    main_seq: int = 0  # journal entries up to this one are merged into the main file
    journal_bytes: int = 0  # size of the entries not yet merged
    journal_entries: int = 0
    new_runs: dict[str, tuple[str, str]] = field(default_factory=dict)  # run_id -> (config, created)
    new_iters: dict[str, list[str]] = field(default_factory=dict)  # run_id -> JSON records
    new_matches: list[MatchRecord] = field(default_factory=list)
    purged_main_refs: set[str] = field(default_factory=set)  # main-file matches to hide
    broken_runs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # marks not yet in the main file

    def live_names(self) -> list[str]:
        """Names with at least one version (tombstones of purged names left out)."""
        return [n for n, e in self.names.items() if e.versions]

    def has_run(self, run_id: str) -> bool:
        return run_id in self.main_runs or run_id in self.new_runs

    def apply(self, op: dict, src: Source, arrays: Callable[[list[int]], list[Any]]) -> None:
        """Apply one operation. `src` locates the entry's arrays, `arrays` reads them by index."""
        kind = op["op"]
        if kind == "add_policy":
            entry = self.names.get(op["name"])
            if entry is None:
                entry = self.names[op["name"]] = NameEntry(op["role"], op["kind"], op["scenario"], 0)
            elif not entry.versions:  # a tombstone takes the new version's attributes
                entry.role, entry.kind, entry.scenario = op["role"], op["kind"], op["scenario"]
            entry.latest = max(entry.latest, op["version"])
            if src[0] == "mem":
                wsrc: Source = ("mem", {k: src[1][i] for k, i in op["weights"].items()})
            else:
                wsrc = ("jrn", *src[1:], dict(op["weights"]))
            entry.versions[op["version"]] = VersionEntry(
                op["version"], op["config"], op["provenance"], op["sha256"], op["created"],
                False, op["n_params"], wsrc)
        elif kind == "retire":
            entry = self.names[op["name"]]
            for k in op["versions"]:
                entry.versions[k].retired = True
        elif kind == "purge":
            entry = self.names[op["name"]]
            refs = {make_ref(op["name"], k) for k in op["versions"]}
            for k in op["versions"]:
                del entry.versions[k]
            broken = op.get("broken") or {}
            for ref, purged in broken.get("policies", {}).items():
                name, _, k = ref.rpartition("@v")
                ve = self.names[name].versions[int(k)]
                ve.broken = tuple(sorted(set(ve.broken) | set(purged)))
            for run_id, purged in broken.get("runs", {}).items():
                self.broken_runs[run_id] = tuple(sorted(set(self.broken_runs.get(run_id, ())) | set(purged)))
            self.purged_main_refs |= refs
            self.new_matches = [m for m in self.new_matches if m.defender not in refs and m.attacker not in refs]
        elif kind == "add_match":
            keys = ("returns", "wins", "lengths", "attack_cost")
            ret, wins, lengths, cost = arrays([op["arrays"][k] for k in keys])
            self.new_matches.append(MatchRecord(
                op["defender"], op["attacker"], op["scenario"], ret, wins, lengths, cost,
                op["seed"], op["device"], op["code_version"], op["created"]))
        elif kind == "create_run":
            self.new_runs[op["run_id"]] = (op["config"], op["created"])
            self.new_iters.setdefault(op["run_id"], [])
        elif kind == "append_iteration":
            self.new_iters.setdefault(op["run_id"], []).append(op["record"])
        else:
            raise ValueError(f"unknown operation {kind!r}")
