"""Bare policy names resolved for a scenario: the one resolver every command uses for a ref.

A league may hold the same policy for several scenarios under scenario-qualified names
(`qmix.3m`, `qmix.pp7`; the starter league does). A bare name that is not itself stored
resolves to `<name>.<scenario>`, so `arena play qmix_fgsm vs pa_ad --scenario pp7` finds the
pp7 versions and the same command without `--scenario` finds those of the default scenario.
Without a scenario, a bare name held for exactly one scenario resolves to it; one held for
several resolves to the `prefer`red scenario's (the default scenario, for commands where
that is safe, as `arena show qmix`) or is an error that lists the candidates (`arena retire`).
"""

from __future__ import annotations

from store import NO_ATTACK, StoreError, parse_ref


def scoped_candidates(lg, name: str) -> list[str]:
    """Stored names `<name>.<scenario>` whose suffix is the scenario the policy was made for:
    the live ones, or the retired ones when none is live (so they can still be shown)."""
    found = [i for i in lg.list(include_retired=True)
             if i.name.startswith(f"{name}.") and i.name == f"{name}.{i.scenario}"]
    live = [i for i in found if not i.retired]
    return sorted({i.name for i in (live or found)})


def resolve_name(lg, ref: str, scenario: str | None = None, prefer: str | None = None) -> str:
    """`ref` with its name replaced by the stored one, the version kept as written (a bare
    ref stays bare, so `retire` still means every version). `scenario`: the one the command
    was given (strict); `prefer`: the one to pick among several when none was given.
    Raises one-line StoreErrors."""
    if ref == NO_ATTACK:
        return NO_ATTACK
    name, version = parse_ref(ref)
    suffix = f"@v{version}" if version else ""
    try:
        lg.resolve(name)
        return ref
    except StoreError as exc:
        unknown = exc
    candidates = scoped_candidates(lg, name)
    if scenario:
        if f"{name}.{scenario}" in candidates:
            return f"{name}.{scenario}{suffix}"
        if candidates:
            raise StoreError(f"no policy {name!r} for scenario {scenario}; stored for other "
                             f"scenarios: {', '.join(candidates)}")
        import difflib

        names = sorted({i.name for i in lg.list()})
        close = difflib.get_close_matches(f"{name}.{scenario}", names, n=1) or \
            difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StoreError(f"unknown policy {name!r} (nor {name}.{scenario}){hint}")
    if len(candidates) == 1:
        return candidates[0] + suffix
    if prefer and f"{name}.{prefer}" in candidates:
        return f"{name}.{prefer}{suffix}"
    if candidates:
        raise StoreError(f"{name!r} is ambiguous: {', '.join(candidates)} (write one of them, "
                         f"or give --scenario)")
    raise unknown


def resolve_for(lg, ref: str, scenario: str | None = None, prefer: str | None = None) -> str:
    """`ref` as stored (name@vK), trying `<name>.<scenario>` when the bare name is unknown;
    see `resolve_name`."""
    if ref == NO_ATTACK:
        return NO_ATTACK
    return lg.resolve(resolve_name(lg, ref, scenario, prefer))


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
