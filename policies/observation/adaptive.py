"""Adaptive learned attackers: one ATLA or PA-AD attacker trained against each defender.

Guo et al., "Enhancing the Robustness of QMIX against State-adversarial Attacks" (2023),
Table I, evaluates every model under a learned attacker trained against that model itself.
An attacker trained against one team and played against another is a transfer attack, which
can be much weaker (or stronger) than the adaptive one. This module trains (or finds again in
the league) the attacker of an algorithm against each defender, and assembles the payoff view
with one "diagonal" column per algorithm, `<algo>*`, whose cell in row d is the adaptive
attacker of d against d.

An adaptive attacker is an ordinary league policy named `<algo>_vs_<defender name>` whose
provenance holds `adaptive` (the algorithm), `trained_against` (the defender's ref),
`adaptive_steps` (the step budget) and `seed`; it is found again by those fields and its ε,
so it is trained once, whatever process asks for it first. Its seed is derived from the
table's seed and the defender's ref with SHA-256 (stable across processes and platforms,
unlike Python's salted `hash`), so the same seeds give the same attackers on the CPU.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from policies.errors import PolicyError

ALGOS = ("atla", "pa_ad")
DEFAULT_STEPS = 100_000
DEFAULT_EPS = 0.2


def star(algo: str) -> str:
    """The label of an algorithm's diagonal column."""
    return f"{algo}*"


def adaptive_seed(seed: int, defender_ref: str) -> int:
    """The training seed of the adaptive attacker against `defender_ref` in a table seeded
    with `seed`: 31 bits of SHA-256, the same in every process."""
    digest = hashlib.sha256(f"{int(seed)}:{defender_ref}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def adaptive_name(algo: str, defender_name: str) -> str:
    """`<algo>_vs_<defender name>`: names keep letters, digits, '_', '.', '-' only, so the
    defender's name (not its ref, whose '@' is not allowed) is used; versions of the defender
    give versions of the attacker."""
    return f"{algo}_vs_{defender_name}"


def parse_algos(text: str | None) -> list[str]:
    """`"atla,pa_ad"` → ["atla", "pa_ad"] (order kept, duplicates dropped)."""
    out: list[str] = []
    for a in (text or "").split(","):
        a = a.strip()
        if not a:
            continue
        if a not in ALGOS:
            raise PolicyError(f"unknown adaptive attacker {a!r}; known: {', '.join(ALGOS)}")
        if a not in out:
            out.append(a)
    return out


def find_adaptive(lg, algo: str, defender_ref: str, steps: int, seed: int, eps: float,
                  scenario: str) -> str | None:
    """The ref of a stored, complete adaptive attacker with these settings (the latest
    version when several match), or None."""
    found = None
    for info in lg.list(role="attacker", kind=algo, scenario=scenario, all_versions=True):
        p = info.provenance
        if (p.get("adaptive") == algo and p.get("trained_against") == defender_ref
                and p.get("adaptive_steps") == steps and p.get("seed") == seed
                and not p.get("partial") and not info.broken
                and abs(float(info.config.get("eps", -1.0)) - eps) < 1e-9):
            found = info.ref
    return found


@dataclass
class AdaptiveSet:
    """Adaptive attackers by algorithm: algo → {defender ref: attacker ref}."""

    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)  # refs trained by this call
    reused: list[str] = field(default_factory=list)  # refs found in the league

    def refs(self) -> list[str]:
        return [a for col in self.columns.values() for a in col.values()]

    def pairs(self) -> set[tuple[str, str]]:
        return {(d, a) for col in self.columns.values() for d, a in col.items()}


def ensure_adaptive(league_open: Callable, scenario: str, defenders: list[str], algos: list[str],
                    steps: int = DEFAULT_STEPS, seed: int = 0, eps: float = DEFAULT_EPS,
                    device="cpu", envs: int = 32, eval_episodes: int = 64,
                    on_train: Callable[[str, int], None] | None = None,
                    on_progress: Callable[[dict], None] | None = None,
                    on_done: Callable[[str], None] | None = None) -> AdaptiveSet:
    """Find or train the adaptive attacker of each algorithm against each defender ref.

    Each one trained is stored as soon as it is done, so an interrupted call loses at most the
    training under way and a second call continues with the next. `on_train(name, steps)`
    announces a training, `on_progress(dict)` reports it (the trainer's progress dict),
    `on_done(ref)` follows its storing.
    """
    from arena.core import resolve_device
    from policies.build import base_provenance
    from policies.lineup import check_role, members_of
    from policies.observation.train_attacker import AttackerTrainConfig, train_attacker

    if steps < 1:
        raise PolicyError("--adaptive-steps must be at least 1")
    dev = str(resolve_device(device))
    out = AdaptiveSet({a: {} for a in algos})
    for algo in algos:
        for d in defenders:
            s = adaptive_seed(seed, d)
            with league_open("r") as lg:
                ref = find_adaptive(lg, algo, d, steps, s, eps, scenario)
                if ref is None:
                    info = lg.info(d)
                    check_role(info, "defender")
                    recs = [(lg.get(r), w) for r, w in members_of(info)]
                    name = adaptive_name(algo, info.name)
                    lg.check_add(name, "attacker", algo, scenario)
            if ref is not None:
                out.columns[algo][d] = ref
                out.reused.append(ref)
                continue
            cfg = AttackerTrainConfig(algo=algo, scenario=scenario, steps=steps, envs=envs, seed=s,
                                      eps=eps, device=dev, eval_episodes=eval_episodes,
                                      trained_against={r.ref: w for r, w in recs})
            if on_train is not None:
                on_train(name, steps)
            res = train_attacker(cfg, [(r.config, r.weights) for r, _ in recs],
                                 [w for _, w in recs], on_progress=on_progress)
            prov = base_provenance(**{**res.provenance, "partial": res.partial,
                                      "trained_against": d, "adaptive": algo,
                                      "adaptive_steps": steps, "matrix_seed": seed})
            with league_open("a") as lg:
                ref = lg.add_policy(name, "attacker", algo, scenario, res.config, res.weights, prov)
            out.columns[algo][d] = ref
            out.trained.append(ref)
            if on_done is not None:
                on_done(ref)
    return out


def with_adaptive_columns(table, adaptive: AdaptiveSet, keep: list[str] | None = None):
    """The payoff view shown, exported and solved: the columns `keep` (default: those of the
    table that are not adaptive attackers) followed by one column `<algo>*` per algorithm,
    whose cell in row d is the real cell (d, adaptive attacker of d).

    Returns a `store.PayoffTable` (sums, sums of squares, counts and wins copied from the real
    cells), so every later view (means, CIs, families, heatmaps, CSV) treats the starred
    column as any other.
    """
    from store import PayoffTable

    ours = set(adaptive.refs())
    keep = [a for a in table.attackers if a not in ours] if keep is None else list(keep)
    col = {a: j for j, a in enumerate(table.attackers)}
    D = len(table.defenders)
    fields = {k: [np.asarray(getattr(table, k))[:, col[a]] for a in keep]
              for k in ("count", "sum", "sumsq", "wins")}
    for algo, by_defender in adaptive.columns.items():
        for k in fields:
            src = np.asarray(getattr(table, k))
            fields[k].append(np.array([src[i, col[by_defender[d]]] if d in by_defender else 0
                                       for i, d in enumerate(table.defenders)], src.dtype))
    labels = keep + [star(a) for a in adaptive.columns]

    def stack(k, dtype):
        return np.stack(fields[k], axis=1).astype(dtype) if fields[k] else np.zeros((D, 0), dtype)

    return PayoffTable(table.scenario, list(table.defenders), labels, stack("count", np.int64),
                       stack("sum", np.float64), stack("sumsq", np.float64),
                       stack("wins", np.int64))


def prepare_adaptive(league_open: Callable, scenario: str, defenders: list[str] | None,
                     attackers: list[str] | None, algos: list[str], seed: int = 0, device="auto",
                     steps: int = DEFAULT_STEPS, eps: float = DEFAULT_EPS, envs: int = 32,
                     eval_episodes: int = 64, on_train=None, on_progress=None, on_done=None):
    """The table's defender and attacker refs (defaults as `fill`'s) and their adaptive
    attackers, trained or reused: (defender refs, attacker refs, AdaptiveSet)."""
    from policies.evaluate import table_players

    with league_open("r") as lg:
        drefs, arefs = table_players(lg, scenario, defenders, attackers)
    adaptive = ensure_adaptive(league_open, scenario, drefs, algos, steps, seed, eps, device,
                               envs, eval_episodes, on_train, on_progress, on_done)
    return drefs, arefs, adaptive


def fill_with_adaptive(league_open: Callable, scenario: str, drefs: list[str], arefs: list[str],
                       adaptive: AdaptiveSet, episodes: int, seed: int = 0, device="auto",
                       on_step=None, on_plan=None):
    """`policies.evaluate.fill` of drefs × arefs plus the diagonal of the adaptive attackers
    (their off-diagonal cells are not played); the table returned has the `<algo>*` columns."""
    from policies.evaluate import FillResult, fill

    extra = [a for a in adaptive.refs() if a not in arefs]
    pairs = {(d, a) for d in drefs for a in arefs} | adaptive.pairs()
    res = fill(league_open, scenario, drefs, arefs + extra, episodes, seed, device,
               on_step=on_step, on_plan=on_plan, pairs=pairs)
    table = with_adaptive_columns(res.table, adaptive, keep=arefs)
    return FillResult(table, res.cells, res.episodes_run, res.seconds)


def fill_adaptive(league_open: Callable, scenario: str, defenders: list[str] | None,
                  attackers: list[str] | None, algos: list[str], episodes: int, seed: int = 0,
                  device="auto", steps: int = DEFAULT_STEPS, eps: float = DEFAULT_EPS,
                  envs: int = 32, eval_episodes: int = 64, on_step=None, on_plan=None,
                  on_train=None, on_progress=None, on_done=None):
    """`prepare_adaptive` then `fill_with_adaptive`: (FillResult, AdaptiveSet)."""
    drefs, arefs, adaptive = prepare_adaptive(league_open, scenario, defenders, attackers, algos,
                                              seed, device, steps, eps, envs, eval_episodes,
                                              on_train, on_progress, on_done)
    res = fill_with_adaptive(league_open, scenario, drefs, arefs, adaptive, episodes, seed,
                             device, on_step, on_plan)
    return res, adaptive
