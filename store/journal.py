"""Write-ahead journal: each committed write is one small, immutable file in ``PATH.journal/``.

An entry is ``MAGIC | u64 header length | JSON header | raw array bytes``. The header holds the
list of operations and, for each array they use, its dtype, shape and byte range. No pickle:
arrays are read back with ``np.frombuffer`` after checking that the dtype is numeric.

A write is committed when its entry is renamed from a temporary name to ``<seq>.jrn``
(after fsync of the file; the directory is fsynced after the rename). A process killed before
the rename leaves only a temporary file, which the next writer removes. Entry numbers are
consecutive; the main file's root attribute ``journal_seq`` says which are already merged.

An entry that cannot be read or applied is moved aside to ``PATH.journal/bad/<seq>.jrn`` by the
next writer (see ``League._refresh``), so that one damaged entry cannot stop every later write;
a gap in the numbers is allowed only where ``bad/`` holds the missing entries.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from store.errors import CorruptLeague
from store.records import loads_json

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


def bad_dir(jdir: Path) -> Path:
    return jdir / "bad"


def set_aside(jdir: Path, seq: int, path: Path) -> Path:
    """Move a damaged entry to ``bad/``; it is kept for inspection, never applied."""
    bad = bad_dir(jdir)
    bad.mkdir(exist_ok=True)
    dest, n = entry_path(bad, seq), 1
    while dest.exists():  # a number reused after an entry at the end of the journal was set aside
        dest, n = bad / f"{seq:012d}-{n}{SUFFIX}", n + 1
    os.replace(path, dest)
    fsync_path(jdir)
    return dest


def set_aside_seqs(jdir: Path) -> set[int]:
    """Sequence numbers of the entries moved aside (allowed gaps in the journal)."""
    return {seq for seq, _ in list_entries(bad_dir(jdir))}


def fsync_path(path: Path) -> None:
    """Make a file's data, or a directory's entries, durable."""
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
            fsync_path(jdir.parent)
    table, offset = [], 0
    for a in arrays:
        table.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes})
        offset += a.nbytes
    header = json.dumps({"ops": ops, "arrays": table, "body": offset}, allow_nan=False).encode()
    final = entry_path(jdir, seq)
    tmp = jdir / f".tmp-{os.getpid()}-{seq}"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for a in arrays:
                f.write(memoryview(np.ascontiguousarray(a)).cast("B"))
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)  # a partial entry on a full disk takes the space others need
        except OSError:
            pass
        raise
    if sync:
        fsync_path(jdir)
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
            size = os.fstat(f.fileno()).st_size
            if n > size - 16:  # never allocate what a damaged length field claims
                raise CorruptLeague(f"journal entry {path} is corrupt (truncated: its header claims {n} bytes)")
            header = loads_json(f.read(n), f"journal entry {path} header")
            start = 16 + n
    except OSError as e:
        raise CorruptLeague(f"journal entry {path} is unreadable: {e.strerror or e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("body"), int) \
            or not isinstance(header.get("ops"), list) or not isinstance(header.get("arrays"), list):
        raise CorruptLeague(f"journal entry {path} is corrupt (bad header)")
    if size != start + header["body"]:
        raise CorruptLeague(f"journal entry {path} is corrupt (truncated)")
    return header, start


def read_arrays(path: Path, start: int, table: list[dict], indices: list[int]) -> list[np.ndarray]:
    out = []
    with open(path, "rb") as f:
        for i in indices:
            try:
                t = table[i]
                dtype = np.dtype(t["dtype"])
                offset, nbytes, shape = int(t["offset"]), int(t["nbytes"]), tuple(int(d) for d in t["shape"])
            except (IndexError, KeyError, TypeError, ValueError):
                raise CorruptLeague(f"journal entry {path}: array {i} has a damaged description") from None
            if dtype.kind not in _NUMERIC:
                raise CorruptLeague(f"journal entry {path}: array {i} is not a numeric array")
            size = os.fstat(f.fileno()).st_size
            if offset < 0 or nbytes < 0 or start + offset + nbytes > size:
                raise CorruptLeague(f"journal entry {path} is corrupt (truncated)")
            f.seek(start + offset)
            buf = f.read(nbytes)
            if len(buf) != nbytes:
                raise CorruptLeague(f"journal entry {path} is corrupt (truncated)")
            try:
                out.append(np.frombuffer(buf, dtype=dtype).reshape(shape).copy())
            except ValueError:
                raise CorruptLeague(f"journal entry {path}: array {i} does not match its shape") from None
    return out


class DamagedEntry(CorruptLeague):
    """A committed entry that cannot be read or applied; a writer sets it aside (``set_aside``)."""

    def __init__(self, message: str, seq: int, path: Path):
        super().__init__(message)
        self.seq, self.path = seq, path
