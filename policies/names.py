"""Bare policy names resolved for a scenario.

A league may hold the same policy for several scenarios under scenario-qualified names
(`qmix.3m`, `qmix.pp7`; the starter league does). A bare name that is not itself stored
resolves to `<name>.<scenario>`, so `arena play qmix_fgsm vs pa_ad --scenario pp7` finds the
pp7 versions and the same command without `--scenario` finds those of the default scenario.
"""

from __future__ import annotations

from store import NO_ATTACK, StoreError, parse_ref


def resolve_for(lg, ref: str, scenario: str | None) -> str:
    """`ref` as stored (name@vK), trying `<name>.<scenario>` when the bare name is unknown."""
    if ref == NO_ATTACK:
        return NO_ATTACK
    try:
        return lg.resolve(ref)
    except StoreError:
        if not scenario:
            raise
        name, version = parse_ref(ref)
        scoped = f"{name}.{scenario}" + (f"@v{version}" if version else "")
        try:
            return lg.resolve(scoped)
        except StoreError:
            raise StoreError(f"unknown policy {name!r} (nor {name}.{scenario})") from None


def default_scenario(lg) -> str | None:
    """3m when the league has defenders for it, else the scenario with the most of them."""
    from collections import Counter

    from arena.scenarios import DEFAULT_SCENARIO, names

    counts = Counter(i.scenario for i in lg.list(role="defender") if i.scenario != "any")
    if not counts:
        return None
    if DEFAULT_SCENARIO in counts:
        return DEFAULT_SCENARIO
    order = {n: k for k, n in enumerate(names())}
    return max(counts, key=lambda s: (counts[s], -order.get(s, 99)))
