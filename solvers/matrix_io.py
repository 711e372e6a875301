"""Payoff tables as CSV files, so that any table can be solved without a league.

Layout: the header row holds a corner label (ignored) and then the attacker names; each
following row holds a defender name and then that defender's utility against each attacker:

    defender\\attacker,none,fgsm@v1,pgd@v2
    qmix@v1,19.5,12.0,8.25
    qmix@v2,19.0,15.5,13.0

Values are written with Python's shortest round-trip repr, so write then read gives back the
same floats bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from solvers.exploitability import SolverError, check_matrix

CORNER = "defender\\attacker"


def _check_names(names: list[str], who: str, where: str) -> None:
    if any(not n for n in names):
        raise SolverError(f"{where}: an empty {who} name")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise SolverError(f"{where}: duplicate {who} name {n!r}")
        seen.add(n)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_csv(text: str, where: str = "<csv>") -> tuple[list[str], list[str], np.ndarray]:
    """(defenders, attackers, M [D, A]) from CSV text; `where` names the source in errors."""
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if not rows:
        raise SolverError(f"{where}: empty CSV (expected a header row of attacker names)")
    header = [c.strip() for c in rows[0]]
    if len(header) > 1 and all(_is_number(c) for c in header[1:]):
        # without this, the first table row would silently become the attacker names
        raise SolverError(f"{where}: the first row is all numbers, not a header; add a header "
                          f"row of attacker names ({CORNER},none,fgsm,…)")
    attackers = header[1:]
    if not attackers:
        raise SolverError(f"{where}: the header row names no attacker")
    if len(rows) < 2:
        raise SolverError(f"{where}: no defender rows under the header")
    _check_names(attackers, "attacker", where)
    defenders: list[str] = []
    M = np.empty((len(rows) - 1, len(attackers)))  # [D, A]
    for i, row in enumerate(rows[1:]):
        line = i + 2  # 1-based, header is line 1 (blank lines are skipped)
        if len(row) != len(header):
            raise SolverError(f"{where}: row {line} has {len(row)} fields; the header has {len(header)}")
        defenders.append(row[0].strip())
        for j, cell in enumerate(row[1:]):
            try:
                x = float(cell)
            except ValueError:
                raise SolverError(
                    f"{where}: row {line}, column {attackers[j]!r}: {cell.strip()!r} is not a number"
                ) from None
            if not math.isfinite(x):
                raise SolverError(f"{where}: row {line}, column {attackers[j]!r} is {cell.strip()} (NaN/inf)")
            M[i, j] = x
    _check_names(defenders, "defender", where)
    return defenders, attackers, M


def read_csv(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """(defenders, attackers, M [D, A]) from a CSV file; see the module docstring."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SolverError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SolverError(f"{path}: cannot read: {exc}") from None
    return parse_csv(text, str(path))


def format_csv(defenders: list[str], attackers: list[str], M: np.ndarray) -> str:
    """CSV text of the table; see the module docstring for the layout."""
    M = check_matrix(M)
    if M.shape != (len(defenders), len(attackers)):
        raise SolverError(
            f"table is {M.shape[0]}x{M.shape[1]} but {len(defenders)} defender and "
            f"{len(attackers)} attacker names were given"
        )
    _check_names(list(defenders), "defender", "write_csv")
    _check_names(list(attackers), "attacker", "write_csv")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([CORNER, *attackers])
    for name, row in zip(defenders, M):
        writer.writerow([name, *(repr(float(x)) for x in row)])
    return out.getvalue()


def write_csv(path: str | Path, defenders: list[str], attackers: list[str], M: np.ndarray) -> None:
    """Writes the table to a CSV file readable by read_csv."""
    Path(path).write_text(format_csv(defenders, attackers, M), encoding="utf-8")
