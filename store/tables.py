"""Match records, payoff tables and run records: the part of ``League`` that reads and appends them.

A mixin of ``store.league.League``, which supplies the lock, the view (``store.catalog``) and the
main file; the layout is documented there. Kept apart so that each module stays readable.
"""

from __future__ import annotations

import json
import secrets
import time

from store import schema
from store.catalog import View
from store.errors import StoreError
from store.payoff import PayoffTable
from store.records import (NO_ATTACK, MatchRecord, RunRecord, check_name, loads_json, make_ref, now_iso,
                           parse_ref, to_json)


def _a(role: str) -> str:
    return ("an " if role[0] in "aeiou" else "a ") + role


class TablesMixin:
    """League methods over matches, payoff tables and runs."""

    # -- matches and payoff tables -------------------------------------------------------------

    def _player(self, view: View, ref: str, role: str, scenario: str) -> str:
        if role == "attacker" and ref == NO_ATTACK:
            return NO_ATTACK
        name, entry, ve = self._lookup(view, ref)
        full = make_ref(name, ve.version)
        if entry.role != role:
            raise StoreError(f"{full} is {_a(entry.role)}, not {_a(role)}")
        if entry.scenario not in (scenario, "any"):
            raise StoreError(f"{full} is for scenario {entry.scenario!r}, not {scenario!r}")
        return full

    def add_match(self, rec: MatchRecord) -> None:
        """Append a match record (bare names are stored as the refs they resolve to)."""
        self._require_write()
        if not isinstance(rec, MatchRecord):
            raise StoreError(f"add_match expects a MatchRecord, got {type(rec).__name__}")
        m = rec.validated()
        check_name(m.scenario, "scenario")
        with self.transaction():
            view = self._view
            op = {"op": "add_match", "scenario": m.scenario,
                  "defender": self._player(view, m.defender, "defender", m.scenario),
                  "attacker": self._player(view, m.attacker, "attacker", m.scenario),
                  "seed": m.seed, "device": m.device, "code_version": m.code_version, "created": m.created}
            self._stage(op, {"returns": m.returns, "wins": m.wins, "lengths": m.lengths,
                             "attack_cost": m.attack_cost}, "arrays")

    def _scenarios(self, view: View) -> list[str]:
        with self._open_main() as f:
            main = set(f["matches"].keys())
        return sorted(main | {m.scenario for m in view.new_matches})

    def matches(self, scenario: str | None = None, defender: str | None = None,
                attacker: str | None = None) -> list[MatchRecord]:
        """Match records in the order they were added. A bare name matches all its versions."""
        with self._read():
            view = self._refresh()
            tests = []
            for who, ref in (("defender", defender), ("attacker", attacker)):
                if ref is None:
                    continue
                if ref == NO_ATTACK and who == "attacker":
                    tests.append((who, lambda r: r == NO_ATTACK))
                    continue
                name, k = parse_ref(ref)
                if k is None:
                    self._entry(view, name)
                    tests.append((who, lambda r, n=name: r.split("@")[0] == n))
                else:
                    tests.append((who, lambda r, ref=ref: r == ref))
            scenarios = [scenario] if scenario is not None else self._scenarios(view)
            out: list[MatchRecord] = []
            with self._open_main() as f:
                for s in scenarios:
                    if s in f["matches"]:
                        out += [m for m in schema.read_matches(f, s)
                                if m.defender not in view.purged_main_refs
                                and m.attacker not in view.purged_main_refs]
            main_count = len(out)
            out += [m for m in view.new_matches if m.scenario in scenarios]
            out[main_count:] = [MatchRecord(m.defender, m.attacker, m.scenario, m.returns.copy(), m.wins.copy(),
                                            m.lengths.copy(), m.attack_cost.copy(), m.seed, m.device,
                                            m.code_version, m.created) for m in out[main_count:]]
        return [m for m in out if all(test(getattr(m, who)) for who, test in tests)]

    def payoff(self, scenario: str, defenders: list[str], attackers: list[str]) -> PayoffTable:
        """Sum, sum of squares, count and wins of every (defender, attacker) cell."""
        with self._read():
            view = self._refresh()
            drefs = [self._player(view, r, "defender", scenario) for r in defenders]
            arefs = [self._player(view, r, "attacker", scenario) for r in attackers]
            with self._open_main() as f:
                rows = schema.read_match_rows(f, scenario)
            d_col, a_col = list(rows["defender"]), list(rows["attacker"])
            ep, s, sq, w = (list(rows[k]) for k in ("episodes", "sum", "sumsq", "wins"))
            if view.purged_main_refs:
                keep = [i for i in range(len(d_col)) if d_col[i] not in view.purged_main_refs
                        and a_col[i] not in view.purged_main_refs]
                d_col, a_col, ep, s, sq, w = ([c[i] for i in keep] for c in (d_col, a_col, ep, s, sq, w))
            for m in view.new_matches:
                if m.scenario == scenario:
                    d_col.append(m.defender)
                    a_col.append(m.attacker)
                    ep.append(m.episodes)
                    s.append(m.sum)
                    sq.append(m.sumsq)
                    w.append(int(m.wins.sum()))
        return PayoffTable.from_rows(scenario, drefs, arefs, d_col, a_col, ep, s, sq, w)

    # -- runs ----------------------------------------------------------------------------------

    def _run_texts(self, view: View):
        """(run_id, [config JSON, iteration JSON...]) of every run (for store.references)."""
        for run_id in sorted(view.new_runs):
            yield run_id, [view.new_runs[run_id][0]] + view.new_iters.get(run_id, [])
        if view.main_runs:
            with self._open_main() as f:
                for run_id in sorted(view.main_runs):
                    config, _, its, _ = schema.read_run(f, run_id)
                    yield run_id, [json.dumps(config)] + its + view.new_iters.get(run_id, [])

    def create_run(self, config: dict, run_id: str | None = None) -> str:
        """Start a run record (e.g. a PSRO run); returns its id."""
        self._require_write()
        config_json = to_json(config, "run config")
        if run_id is None:
            run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        check_name(run_id, "run id")
        with self.transaction():
            if self._view.has_run(run_id):
                raise StoreError(f"run {run_id!r} already exists")
            self._stage_plain({"op": "create_run", "run_id": run_id, "config": config_json, "created": now_iso()})
        return run_id

    def append_iteration(self, run_id: str, record: dict) -> None:
        """Append one iteration's record (JSON) to a run."""
        self._require_write()
        record_json = to_json(record, "iteration record")
        with self.transaction():
            if not self._view.has_run(run_id):
                raise StoreError(f"unknown run {run_id!r}")
            self._stage_plain({"op": "append_iteration", "run_id": run_id, "record": record_json})

    def _run(self, view: View, run_id: str) -> RunRecord:
        broken: tuple[str, ...] = ()
        if run_id in view.main_runs:
            with self._open_main() as f:
                config, created, its, broken = schema.read_run(f, run_id)
        elif run_id in view.new_runs:
            config_json, created = view.new_runs[run_id]
            config, its = loads_json(config_json, f"run {run_id}: config"), []
        else:
            raise StoreError(f"unknown run {run_id!r}")
        its = its + view.new_iters.get(run_id, [])
        iterations = [loads_json(s, f"run {run_id}: an iteration record") for s in its]
        broken = sorted(set(broken) | set(view.broken_runs.get(run_id, ())))
        return RunRecord(run_id, config, iterations, created, broken)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read():
            return self._run(self._refresh(), run_id)

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        with self._read():
            view = self._refresh()
            out = [self._run(view, r) for r in view.main_runs | set(view.new_runs)]
        return sorted(out, key=lambda r: (r.created, r.run_id))
