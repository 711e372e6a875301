"""Which policies and runs name a policy version, so that purging it cannot silently break them.

What names a policy:
  - a policy's config: ``members[i].ref`` (a mixture) and ``surrogate`` (a black-box attacker),
    as "name@vK" or as a bare name, and any other config string of the form "name@vK";
  - a run: every "name@vK" string in its config and iteration records (PSRO: the populations
    and the responses it added).
A bare name is a reference to the name while it has a version: it breaks only when a purge
leaves the name without versions.

A purge of a referenced version is refused, naming the referrers; a forced purge marks each
referrer ``broken`` with the purged refs it names, in the same journal entry as the purge (op
field "broken", see ``store.catalog``), so the mark and the purge commit together.
"""

from __future__ import annotations

import re
from typing import Iterable

from store.catalog import View
from store.errors import PolicyInUse
from store.records import json_strings, loads_json, make_ref

_EXACT = re.compile(r"^[A-Za-z0-9_.-]+@v[0-9]+$")


def _named_by_config(config: object) -> tuple[set[str], set[str]]:
    """(exact refs, bare names) named by a policy's config."""
    exact = {s for s in json_strings(config) if _EXACT.match(s)}
    bare: set[str] = set()
    if isinstance(config, dict):
        named = [config.get("surrogate")]
        members = config.get("members")
        if isinstance(members, list):
            named += [m.get("ref") for m in members if isinstance(m, dict)]
        bare = {r for r in named if isinstance(r, str) and "@" not in r}
    return exact, bare


def find_referrers(view: View, purged: set[str], emptied: set[str],
                   runs: Iterable[tuple[str, list[str]]]) -> dict:
    """{"policies": {ref: [names]}, "runs": {run_id: [names]}} of what names a purged ref.

    `purged`: the refs being purged; `emptied`: the names left without versions; `runs`: each
    run's id and JSON texts (config and iterations). Referrers being purged are left out.
    """
    needles = {r.rpartition("@v")[0] for r in purged}  # cheap text filter before parsing
    out: dict = {"policies": {}, "runs": {}}
    for name, entry in view.names.items():
        for k, ve in entry.versions.items():
            ref = make_ref(name, k)
            if ref in purged or not any(n in ve.config for n in needles):
                continue
            exact, bare = _named_by_config(loads_json(ve.config, f"policy {ref}: config"))
            hits = sorted((exact & purged) | (bare & emptied))
            if hits:
                out["policies"][ref] = hits
    for run_id, texts in runs:
        if not any(n in t for t in texts for n in needles):
            continue
        hits = set()
        for t in texts:
            hits |= {s for s in json_strings(loads_json(t, f"run {run_id}")) if s in purged}
        if hits:
            out["runs"][run_id] = sorted(hits)
    return out


def refuse(target: str, referrers: dict, view: View) -> None:
    """Raise PolicyInUse naming the referrers (one line, the first few of them)."""
    items = []
    for ref in sorted(referrers["policies"]):
        kind = view.names[ref.rpartition("@v")[0]].kind
        items.append(f"{'mixture' if kind == 'mixture' else kind + ' policy'} {ref}")
    items += [f"run {r}" for r in sorted(referrers["runs"])]
    shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    raise PolicyInUse(f"cannot purge {target}: referenced by {shown}; "
                      f"--force purges anyway and marks them broken")
