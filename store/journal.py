"""Write-ahead journal: each committed write is one small, immutable file in ``PATH.journal/``.

An entry is ``MAGIC | u64 header length | JSON header | raw array bytes``. The header holds the
list of operations and, for each array they use, its dtype, shape and byte range. No pickle:
arrays are read back with ``np.frombuffer`` after checking that the dtype is numeric.

A write is committed when its entry is renamed from a temporary name to ``<seq>.jrn``
(after fsync of the file; the directory is fsynced after the rename). A process killed before
the rename leaves only a temporary file, which the next writer removes. Entry numbers are
consecutive; the main file's root attribute ``journal_seq`` says which are already merged.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from store.errors import CorruptLeague

MAGIC = b"MARLJRN1"
SUFFIX = ".jrn"
_NUMERIC = "fiub"


def journal_dir(league_path: Path) -> Path:
    return Path(str(league_path) + ".journal")


def entry_path(jdir: Path, seq: int) -> Path:
    return jdir / f"{seq:012d}{SUFFIX}"


def list_entries(jdir: Path) -> list[tuple[int, Path]]:
    """Committed entries, sorted by sequence number."""
    try:
        names = os.listdir(jdir)
    except FileNotFoundError:
        return []
    out = [(int(n[: -len(SUFFIX)]), jdir / n) for n in names
           if n.endswith(SUFFIX) and n[: -len(SUFFIX)].isdigit()]
    return sorted(out)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_entry(jdir: Path, seq: int, ops: list[dict], arrays: list[np.ndarray],
                sync: bool = True) -> tuple[Path, int, list[dict], int]:
    """Commit one entry; returns its path, data start, array table and size in bytes."""
    if not jdir.exists():
        jdir.mkdir()
        if sync:
            fsync_dir(jdir.parent)
    table, offset = [], 0
    for a in arrays:
        table.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes})
        offset += a.nbytes
    header = json.dumps({"ops": ops, "arrays": table, "body": offset}, allow_nan=False).encode()
    final = entry_path(jdir, seq)
    tmp = jdir / f".tmp-{os.getpid()}-{seq}"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for a in arrays:
            f.write(memoryview(np.ascontiguousarray(a)).cast("B"))
        f.flush()
        if sync:
            os.fsync(f.fileno())
    os.replace(tmp, final)
    if sync:
        fsync_dir(jdir)
    start = 16 + len(header)
    return final, start, table, start + offset


def read_header(path: Path) -> tuple[dict, int]:
    """The entry's header and the file offset where its array bytes start."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if len(head) != 16 or head[:8] != MAGIC:
                raise CorruptLeague(f"journal entry {path} is corrupt (bad header)")
            (n,) = struct.unpack("<Q", head[8:])
            header = json.loads(f.read(n))
            start = 16 + n
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CorruptLeague(f"journal entry {path} is unreadable: {e}") from None
    if not isinstance(header, dict) or size != start + header.get("body", -1):
        raise CorruptLeague(f"journal entry {path} is corrupt (truncated)")
    return header, start


def read_arrays(path: Path, start: int, table: list[dict], indices: list[int]) -> list[np.ndarray]:
    out = []
    with open(path, "rb") as f:
        for i in indices:
            t = table[i]
            dtype = np.dtype(t["dtype"])
            if dtype.kind not in _NUMERIC:
                raise CorruptLeague(f"journal entry {path}: array {i} is not a numeric array")
            f.seek(start + t["offset"])
            buf = f.read(t["nbytes"])
            if len(buf) != t["nbytes"]:
                raise CorruptLeague(f"journal entry {path} is corrupt (truncated)")
            out.append(np.frombuffer(buf, dtype=dtype).reshape(t["shape"]).copy())
    return out
