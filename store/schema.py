"""Reading and writing the league's HDF5 layout (documented in ``store.league``).

Reading touches JSON/string attributes and numeric datasets only; a dataset of any other
dtype where weights are expected is reported as corrupt and never read. A league holds no
soft or external links: one found where the layout expects a group or dataset is reported as
corrupt and never followed (an external link would open a file outside the league).

Policy versions and runs may carry ``broken``, a JSON list of the purged refs they name (see
``store.references``); a purged name stays as a group without versions whose ``latest`` keeps
its version numbers from repeating.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from store.catalog import NameEntry, VersionEntry, View
from store.errors import CorruptLeague
from store.records import MatchRecord, loads_json, make_ref, now_iso
from store.version import SCHEMA_VERSION, arena_version

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
STR = h5py.string_dtype("utf-8")
ROW_STR = ("defender", "attacker", "device", "code_version", "created")
ROW_INT = ("seed", "episodes", "wins", "steps", "offset")
ROW_FLOAT = ("sum", "sumsq")
EPISODE = {"ep_returns": "<f8", "ep_wins": "i1", "ep_lengths": "<i8", "ep_attack_cost": "<f8"}
_NUMERIC = "fiu"


def _attr(obj: h5py.HLObject, key: str, what: str) -> Any:
    try:
        value = obj.attrs[key]
    except KeyError:
        raise CorruptLeague(f"{what}: missing attribute {key!r}") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def json_attr(obj: h5py.HLObject, key: str, what: str) -> Any:
    return loads_json(_attr(obj, key, what), f"{what}: attribute {key!r}")


def _broken_attr(obj: h5py.HLObject, what: str) -> tuple[str, ...]:
    if "broken" not in obj.attrs:
        return ()
    value = json_attr(obj, "broken", what)
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise CorruptLeague(f"{what}: attribute 'broken' is not a list of refs")
    return tuple(value)


def child(g: h5py.Group, key: str, what: str):
    """g[key] if it is a hard-linked member, None if absent; a soft or external link is corrupt."""
    try:
        link = g.get(key, getlink=True)
    except (KeyError, OSError, ValueError):
        link = None
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        kind = "a soft link" if isinstance(link, h5py.SoftLink) else "an external link"
        raise CorruptLeague(f"{what} is {kind}; a league holds no links")
    try:
        return g[key]
    except (KeyError, OSError, ValueError) as e:
        raise CorruptLeague(f"{what} is unreadable ({e})") from None


def members(g: h5py.Group, what: str):
    """(key, object) of every member of g, refusing links (see child)."""
    for key in list(g.keys()):
        yield key, child(g, key, f"{what}/{key}")


def top_group(f: h5py.File, key: str) -> h5py.Group | None:
    obj = child(f, key, f"/{key}")
    return obj if isinstance(obj, h5py.Group) else None


def init_file(f: h5py.File) -> None:
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["created"] = now_iso()
    f.attrs["arena_version"] = arena_version()
    f.attrs["journal_seq"] = 0
    for g in ("policies", "matches", "runs"):
        f.create_group(g)
    write_index(f, View({}, set(), 0))


def write_index(f: h5py.File, view: View) -> None:
    """/index: a JSON copy of the policy attributes and run ids, so opening reads one dataset.

    It is a cache: the attributes stay authoritative, and an index whose "seq" differs from the
    root's journal_seq (or a deleted one) makes readers scan the attributes instead.
    """
    policies = {name: {"role": e.role, "kind": e.kind, "scenario": e.scenario, "latest": e.latest,
                       "versions": {str(k): [v.config, v.provenance, v.sha256, v.created, v.retired, v.n_params,
                                             list(v.broken)]
                                    for k, v in e.versions.items()}}
                for name, e in view.names.items()}
    text = json.dumps({"seq": view.seq, "policies": policies, "runs": sorted(view.main_runs | set(view.new_runs))})
    if "index" in f:
        del f["index"]
    f.create_dataset("index", data=text, dtype=STR)


def _view_from_index(f: h5py.File, seq: int) -> View | None:
    try:
        ds = child(f, "index", "/index")
    except CorruptLeague:
        return None
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "O" or ds.shape != ():
        return None
    try:
        index = json.loads(ds.asstr()[()])
        if index.get("seq") != seq:
            return None
        names = {}
        for name, p in index["policies"].items():
            entry = NameEntry(p["role"], p["kind"], p["scenario"], int(p["latest"]))
            for k, (config, prov, sha, created, retired, n, *rest) in p["versions"].items():
                broken = tuple(rest[0]) if rest else ()
                entry.versions[int(k)] = VersionEntry(int(k), config, prov, sha, created, bool(retired), int(n),
                                                      ("main",), broken)
            names[name] = entry
        return View(names, set(index["runs"]), seq, main_seq=seq)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # a damaged cache: read the attributes instead


# -- reading -------------------------------------------------------------------------------------

def open_main(path: Path) -> tuple[h5py.File, int]:
    """Open a league's main file read-only, checking that it is a league of a schema we read."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise CorruptLeague(f"no league at {path}; create one with `arena init`") from None
    except OSError:
        with open(path, "rb") as raw:
            head = raw.read(8)
        what = "a damaged (truncated?) HDF5 file" if head == _HDF5_MAGIC else "not an HDF5 file"
        raise CorruptLeague(f"{path} is {what}, not a readable league") from None
    try:
        if "schema_version" not in f.attrs:
            raise CorruptLeague(f"{path} is an HDF5 file but not a league (no schema_version)")
        version = f.attrs["schema_version"]
        if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
            raise CorruptLeague(f"{path} has a schema_version that is not an integer ({version!r})")
        version = int(version)
        if version > SCHEMA_VERSION:
            raise CorruptLeague(f"league schema {version} is newer than this arena supports "
                                f"({SCHEMA_VERSION}); upgrade marl-arena")
        if version < 1:
            raise CorruptLeague(f"league schema {version} is not supported (this arena reads {SCHEMA_VERSION})")
        for g in ("policies", "matches", "runs"):
            if top_group(f, g) is None:
                raise CorruptLeague(f"{path} is not a complete league: group /{g} is missing")
    except BaseException as e:
        f.close()
        if isinstance(e, (TypeError, ValueError, OverflowError)):
            raise CorruptLeague(f"{path} has an unreadable schema_version") from None
        raise
    return f, version


def load_view(f: h5py.File) -> View:
    """The policy catalogue (no weights) and the run ids of a main file."""
    seq = f.attrs.get("journal_seq", 0)
    if isinstance(seq, (bool, np.bool_)) or not isinstance(seq, (int, np.integer)) or seq < 0:
        raise CorruptLeague(f"{f.filename}: root attribute journal_seq is not a non-negative integer")
    seq = int(seq)
    view = _view_from_index(f, seq)
    if view is not None:
        return view
    names: dict[str, NameEntry] = {}
    for name, g in members(f["policies"], "/policies"):
        what = f"policy {name}"
        if not isinstance(g, h5py.Group):
            raise CorruptLeague(f"{what}: /policies/{name} is not a group")
        entry = NameEntry(str(_attr(g, "role", what)), str(_attr(g, "kind", what)),
                          str(_attr(g, "scenario", what)), int(_attr(g, "latest", what)))
        for key, vg in members(g, f"/policies/{name}"):
            if not (key.startswith("v") and key[1:].isdigit()):
                continue
            k = int(key[1:])
            vwhat = f"policy {make_ref(name, k)}"
            if not isinstance(vg, h5py.Group):
                raise CorruptLeague(f"{vwhat} is not a group")
            a = vg.attrs
            try:
                entry.versions[k] = VersionEntry(
                    k, str(a["config"]), str(a["provenance"]), str(a["sha256"]), str(a["created"]),
                    bool(a["retired"]), int(a["n_params"]), ("main",), _broken_attr(vg, vwhat))
            except KeyError as e:
                raise CorruptLeague(f"{vwhat}: missing attribute {e.args[0]!r}") from None
            entry.latest = max(entry.latest, k)
        names[name] = entry  # without versions: the tombstone of a purged name
    return View(names, set(f["runs"].keys()), seq, main_seq=seq)


def read_weights(f: h5py.File, name: str, version: int) -> dict[str, np.ndarray]:
    ref = make_ref(name, version)
    g = f["policies"]
    for key, where in ((name, f"/policies/{name}"), (f"v{version}", f"policy {ref}"), ("weights", f"policy {ref} weights")):
        g = child(g, key, where) if isinstance(g, h5py.Group) else None
    if not isinstance(g, h5py.Group):
        raise CorruptLeague(f"policy {ref}: weights group is missing")
    out = {}
    for key, ds in members(g, f"policy {ref} weight"):
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in _NUMERIC:
            raise CorruptLeague(f"policy {ref}: weight {key!r} is not a numeric array")
        out[key] = ds[()] if ds.shape == () else ds[...]
        out[key] = np.asarray(out[key])
    return out


def _col(g: h5py.Group, key: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
    ds = child(g, key, f"matches column {g.name}/{key}")
    if ds is None:
        raise KeyError(key)
    if not isinstance(ds, h5py.Dataset):
        raise CorruptLeague(f"matches column {g.name}/{key} is not a dataset")
    if ds.dtype.kind == "O":
        return ds.asstr()[lo:hi]
    if ds.dtype.kind not in _NUMERIC:
        raise CorruptLeague(f"matches column {g.name}/{key} has an unexpected dtype")
    return ds[lo:hi]


def read_match_rows(f: h5py.File, scenario: str) -> dict[str, np.ndarray]:
    """Row columns (no per-episode data) of one scenario's match table."""
    g = child(f["matches"], scenario, f"match table {scenario}")
    if g is None:
        return {k: np.empty(0) for k in ROW_STR + ROW_INT + ROW_FLOAT}
    if not isinstance(g, h5py.Group):
        raise CorruptLeague(f"match table {scenario} is not a group")
    try:
        return {k: _col(g, k) for k in ROW_STR + ROW_INT + ROW_FLOAT}
    except KeyError as e:
        raise CorruptLeague(f"match table {scenario}: missing column {e.args[0]!r}") from None


def read_matches(f: h5py.File, scenario: str) -> list[MatchRecord]:
    rows = read_match_rows(f, scenario)
    n = len(rows["defender"])
    if n == 0:
        return []
    g = f["matches"][scenario]
    eps = {k: _col(g, k) for k in EPISODE}
    out = []
    for i in range(n):
        lo = int(rows["offset"][i])
        hi = lo + int(rows["episodes"][i])
        out.append(MatchRecord(
            rows["defender"][i], rows["attacker"][i], scenario, eps["ep_returns"][lo:hi],
            eps["ep_wins"][lo:hi], eps["ep_lengths"][lo:hi], eps["ep_attack_cost"][lo:hi],
            int(rows["seed"][i]), rows["device"][i], rows["code_version"][i], rows["created"][i]))
    return out


def read_run(f: h5py.File, run_id: str) -> tuple[dict, str, list[str], tuple[str, ...]]:
    """A run's config, creation time, iteration records (JSON text) and broken marks."""
    what = f"run {run_id}"
    g = child(f["runs"], run_id, what)
    if not isinstance(g, h5py.Group):
        raise CorruptLeague(f"{what} is missing or not a group")
    ds = child(g, "iterations", f"{what} iterations")
    if ds is not None and (not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "O"):
        raise CorruptLeague(f"{what}: iterations is not a string dataset")
    its = ds.asstr()[...] if ds is not None else []
    return json_attr(g, "config", what), str(_attr(g, "created", what)), list(its), _broken_attr(g, what)


# -- writing (only ever on a copy of the main file, see League.checkpoint) -------------------------

def _append(g: h5py.Group, key: str, values: np.ndarray, dtype) -> None:
    if key not in g:
        g.create_dataset(key, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,))
    ds = g[key]
    n = ds.shape[0]
    ds.resize((n + len(values),))
    if len(values):
        ds[n:] = values


def _match_group(f: h5py.File, scenario: str) -> h5py.Group:
    g = f["matches"].get(scenario)
    if g is None:
        g = f["matches"].create_group(scenario)
        for k in ROW_STR:
            _append(g, k, np.empty(0, dtype=object), STR)
        for k in ROW_INT:
            _append(g, k, np.empty(0, dtype="<i8"), "<i8")
        for k in ROW_FLOAT:
            _append(g, k, np.empty(0, dtype="<f8"), "<f8")
        for k, dt in EPISODE.items():
            _append(g, k, np.empty(0, dtype=dt), dt)
    return g


def _purge_matches(f: h5py.File, refs: set[str]) -> None:
    for scenario, g in f["matches"].items():
        d, a = g["defender"].asstr()[...], g["attacker"].asstr()[...]
        keep = ~(np.isin(d, list(refs)) | np.isin(a, list(refs)))
        if keep.all():
            continue
        rows = {k: _col(g, k) for k in ROW_STR + ROW_INT + ROW_FLOAT}
        eps = {k: _col(g, k) for k in EPISODE}
        ep_keep = np.repeat(keep, rows["episodes"])
        for k in EPISODE:
            eps[k] = eps[k][ep_keep]
        for k in rows:
            rows[k] = rows[k][keep]
        rows["offset"] = np.concatenate([[0], np.cumsum(rows["episodes"])[:-1]]).astype("<i8")[: keep.sum()]
        for k, v in list(rows.items()) + list(eps.items()):
            g[k].resize((len(v),))
            if len(v):
                g[k][...] = v


def apply_op(f: h5py.File, op: dict, arrays: Callable[[list[int]], list[np.ndarray]]) -> None:
    """Apply one journal operation (see store.catalog) to an open, writable league file."""
    kind = op["op"]
    if kind == "add_policy":
        pol = f["policies"]
        g = pol.get(op["name"])
        if g is None:
            g = pol.create_group(op["name"])
            g.attrs["latest"] = 0
        if not any(key.startswith("v") and key[1:].isdigit() for key in g):  # new, or a tombstone
            g.attrs.update({"role": op["role"], "kind": op["kind"], "scenario": op["scenario"]})
        g.attrs["latest"] = max(int(g.attrs["latest"]), op["version"])
        vg = g.create_group(f"v{op['version']}")
        for key in ("config", "provenance", "sha256", "created"):
            vg.attrs[key] = op[key]
        vg.attrs["retired"] = False
        vg.attrs["n_params"] = op["n_params"]
        wg = vg.create_group("weights")
        names = list(op["weights"])
        for key, arr in zip(names, arrays([op["weights"][k] for k in names])):
            wg.create_dataset(key, data=arr)
    elif kind == "retire":
        for k in op["versions"]:
            f["policies"][op["name"]][f"v{k}"].attrs["retired"] = True
    elif kind == "purge":
        g = f["policies"][op["name"]]
        for k in op["versions"]:
            del g[f"v{k}"]
        _purge_matches(f, {make_ref(op["name"], k) for k in op["versions"]})
        broken = op.get("broken") or {}
        marks = [(f["policies"][ref.rpartition("@v")[0]][f"v{ref.rpartition('@v')[2]}"], purged)
                 for ref, purged in broken.get("policies", {}).items()]
        marks += [(f["runs"][run_id], purged) for run_id, purged in broken.get("runs", {}).items()]
        for obj, purged in marks:
            old = json.loads(obj.attrs["broken"]) if "broken" in obj.attrs else []
            obj.attrs["broken"] = json.dumps(sorted(set(old) | set(purged)))
    elif kind == "add_match":
        keys = ("returns", "wins", "lengths", "attack_cost")
        ret, wins, lengths, cost = arrays([op["arrays"][k] for k in keys])
        g = _match_group(f, op["scenario"])
        offset = g["ep_returns"].shape[0]
        row = {"defender": op["defender"], "attacker": op["attacker"], "device": op["device"],
               "code_version": op["code_version"], "created": op["created"], "seed": op["seed"],
               "episodes": len(ret), "wins": int(wins.sum()), "steps": int(lengths.sum()),
               "offset": offset, "sum": float(ret.sum()), "sumsq": float(np.square(ret).sum())}
        for k in ROW_STR:
            _append(g, k, np.array([row[k]], dtype=object), STR)
        for k in ROW_INT:
            _append(g, k, np.array([row[k]], dtype="<i8"), "<i8")
        for k in ROW_FLOAT:
            _append(g, k, np.array([row[k]], dtype="<f8"), "<f8")
        for k, v in zip(EPISODE, (ret, wins, lengths, cost)):
            _append(g, k, v.astype(EPISODE[k]), EPISODE[k])
    elif kind == "create_run":
        g = f["runs"].create_group(op["run_id"])
        g.attrs["config"] = op["config"]
        g.attrs["created"] = op["created"]
        _append(g, "iterations", np.empty(0, dtype=object), STR)
    elif kind == "append_iteration":
        _append(f["runs"][op["run_id"]], "iterations", np.array([op["record"]], dtype=object), STR)
    else:
        raise ValueError(f"unknown operation {kind!r}")


def repack(src: h5py.File, dst_path: Path) -> None:
    """Copy every object into a fresh file: HDF5 never returns the space of deleted objects."""
    with h5py.File(dst_path, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        for key in src:
            src.copy(src[key], dst, name=key)
