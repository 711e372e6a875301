"""Records exchanged with the league: policies, matches, runs; and the validation of their parts.

Weights are named numeric arrays. Floating arrays are stored as float32, integer arrays keep
their dtype; bool, complex, object and string arrays are refused. The sha256 of a weight set is
taken over the parameters sorted by name, each contributing
``name \\0 dtype.str \\0 repr(shape) \\0 little-endian C-order bytes``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from store.errors import CorruptLeague, StoreError

ROLES = ("defender", "attacker")
NO_ATTACK = "none"  # the payoff column of unattacked play; never a stored policy

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_REF_RE = re.compile(r"^([A-Za-z0-9_.-]+)(?:@v([0-9]+))?$")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_name(value: Any, what: str = "name") -> str:
    """A policy, scenario, kind or run name: [A-Za-z0-9_.-]+, and not only dots (HDF5 paths)."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or set(value) == {"."}:
        raise StoreError(f"invalid {what} {value!r}: use letters, digits, '_', '.', '-'")
    return value


def check_policy_name(name: Any) -> str:
    """The name of a new policy, checked before anything is computed for it (e.g. a training)."""
    check_name(name, "policy name")
    if name == NO_ATTACK:
        raise StoreError(f"{NO_ATTACK!r} is reserved for the no-attack column")
    return name


def parse_ref(ref: Any) -> tuple[str, int | None]:
    """'name' -> (name, None); 'name@vK' -> (name, K). Malformed refs raise StoreError."""
    m = _REF_RE.match(ref) if isinstance(ref, str) else None
    if m is None or set(m.group(1)) == {"."} or (m.group(2) is not None and int(m.group(2)) < 1):
        raise StoreError(f"malformed ref {ref!r}: expected NAME or NAME@vK (e.g. qmix@v2)")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def make_ref(name: str, version: int) -> str:
    return f"{name}@v{version}"


def to_json(value: Any, what: str) -> str:
    """Strict JSON (no NaN/Inf, no arbitrary objects): what is stored must be readable anywhere."""
    if not isinstance(value, dict):
        raise StoreError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise StoreError(f"{what} is not JSON-serialisable: {e}") from None
    except RecursionError:
        raise StoreError(f"{what} is nested too deeply to store") from None


def loads_json(text: Any, what: str) -> Any:
    """Parse stored JSON; text that is not JSON, or nested past the parser's depth, is CorruptLeague."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise CorruptLeague(f"{what} is not JSON") from None
    except RecursionError:
        raise CorruptLeague(f"{what} is JSON nested too deeply to read") from None


def json_strings(value: Any):
    """Every string inside a parsed JSON value, found without recursion (stored JSON can be deep)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def normalise_weights(weights: Any) -> dict[str, np.ndarray]:
    """Validate and convert weights: floats -> float32, ints kept; C-contiguous little-endian."""
    if not isinstance(weights, dict):
        raise StoreError(f"weights must be a dict of name -> array, got {type(weights).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        if not isinstance(key, str):
            raise StoreError(f"weight names must be strings, got {key!r}")
        if not key or "/" in key or set(key) == {"."}:
            raise StoreError(f"invalid weight name {key!r}: non-empty, no '/', not only dots")
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
        kind = arr.dtype.kind
        if kind == "f":
            with np.errstate(over="ignore"):
                arr = arr.astype("<f4")
            if not np.isfinite(arr).all():
                raise StoreError(f"weight {key!r} has NaN or Inf values (after casting to float32)")
        elif kind in "iu":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        else:
            raise StoreError(f"weight {key!r} has dtype {arr.dtype}; only float and integer arrays are stored")
        out[key] = np.ascontiguousarray(arr)
    return out


def weights_sha256(weights: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(weights):
        a = weights[key]
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        h.update(key.encode() + b"\0" + a.dtype.str.encode() + b"\0" + repr(tuple(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class PolicyInfo:
    """A stored policy version without its weights."""

    name: str
    version: int
    ref: str  # "name@vK"
    role: str  # "defender" | "attacker"
    kind: str
    scenario: str  # or "any"
    config: dict
    provenance: dict
    sha256: str
    retired: bool
    created: str  # ISO 8601, UTC
    n_params: int
    versions: int  # how many versions the name has (retired ones included)
    # Purged refs that this version (a mixture, or an attacker with a surrogate) still names;
    # non-empty means it cannot be played (League.get(ref, usable=True) refuses it).
    broken: list[str] = field(default_factory=list)


@dataclass
class PolicyRecord(PolicyInfo):
    """A stored policy version with its weights (verified against sha256 when read)."""

    weights: dict[str, np.ndarray] = field(kw_only=True)

    def info(self) -> PolicyInfo:
        return PolicyInfo(**{f.name: getattr(self, f.name) for f in dataclasses.fields(PolicyInfo)})


@dataclass
class MatchRecord:
    """A batch of E episodes of one defender against one attacker (attacker "none": no attack)."""

    defender: str
    attacker: str
    scenario: str
    returns: np.ndarray  # [E] float, team return per episode
    wins: np.ndarray  # [E] 0/1
    lengths: np.ndarray  # [E] int, steps per episode
    attack_cost: np.ndarray  # [E] float, mean perturbation norm per episode
    seed: int
    device: str
    code_version: str
    created: str = field(default_factory=now_iso)

    def __post_init__(self):
        self.returns = np.asarray(self.returns, dtype=np.float64).reshape(-1)
        self.wins = np.asarray(self.wins).reshape(-1)
        self.lengths = np.asarray(self.lengths).reshape(-1)
        self.attack_cost = np.asarray(self.attack_cost, dtype=np.float64).reshape(-1)

    @property
    def episodes(self) -> int:
        return int(self.returns.shape[0])

    @property
    def sum(self) -> float:
        return float(self.returns.sum())

    @property
    def sumsq(self) -> float:
        return float(np.square(self.returns).sum())

    def validated(self) -> "MatchRecord":
        """A copy with checked shapes and canonical dtypes, or StoreError."""
        e = self.episodes
        if e < 1:
            raise StoreError("a match needs at least one episode")
        for what, arr in (("wins", self.wins), ("lengths", self.lengths), ("attack_cost", self.attack_cost)):
            if arr.shape != (e,):
                raise StoreError(f"match {what} has {arr.shape[0]} entries, returns has {e}")
        if not (np.isfinite(self.returns).all() and np.isfinite(self.attack_cost).all()):
            raise StoreError("match returns and attack_cost must be finite")
        if self.wins.dtype.kind not in "biuf" or not np.isin(self.wins, (0, 1)).all():
            raise StoreError("match wins must be 0/1 (or bool) per episode")
        if self.lengths.dtype.kind not in "iuf" or not (self.lengths == np.round(self.lengths)).all() \
                or (self.lengths < 0).any():
            raise StoreError("match lengths must be non-negative integers")
        for what in ("device", "code_version", "created"):
            if not isinstance(getattr(self, what), str):
                raise StoreError(f"match {what} must be a string")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise StoreError(f"match seed must be an int, got {self.seed!r}")
        return MatchRecord(self.defender, self.attacker, self.scenario, self.returns.copy(),
                           self.wins.astype(np.int8), self.lengths.astype(np.int64),
                           self.attack_cost.copy(), int(self.seed), self.device,
                           self.code_version, self.created)


@dataclass
class RunRecord:
    """A PSRO (or other) run: its config and one JSON record per iteration."""

    run_id: str
    config: dict
    iterations: list[dict]
    created: str
    broken: list[str] = field(default_factory=list)  # purged refs the run names


def finite_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
