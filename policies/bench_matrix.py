"""The payoff table filled two ways with the same code, timed in one run.

(a) cell by cell and episode by episode: one batch of one episode per call;
(b) every episode of every cell in one batch.
Both play exactly the same episodes (per-episode seeds), so the ratio is the speed-up of
batching alone. Nothing is written to the league.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from arena import payoff as pay
from policies.lineup import build_lineup


# Untrained teams are valid defenders for timing: their play is deterministic given their
# weights. The message surface needs teams that send messages and attacks that alter them.
_SYNTHETIC = {
    "observation": ([("qmix", i) for i in range(4)],
                    [("random", "random", ["eps=0.2"]), ("fgsm", "fgsm", ["eps=0.2"]),
                     ("pgd", "pgd", ["eps=0.2", "steps=3"])]),
    "message": ([("commnet", 0), ("tarmac", 1)],
                [("msg_random_t1", "msg_random", ["targets=1", "omega=1"]),
                 ("msg_random_t2", "msg_random", ["targets=2", "omega=0.5"]),
                 ("msg_random_add", "msg_random", ["combine=add"])]),
}


def synthetic_league(path: Path, scenario: str, surface: str = "observation") -> Path:
    """Untrained teams and parameter-only attacks of `surface`: enough to time the engine
    anywhere."""
    from policies.build import base_provenance, build_policy_record
    from policies.learners.train_defender import untrained_team
    from store import League

    teams, attacks = _SYNTHETIC[surface]
    League.create(path)
    with League(path, "a") as lg, lg.transaction():
        for i, (algo, seed) in enumerate(teams):
            cfg, weights = untrained_team(algo, scenario, seed)
            name = f"untrained{i}" if surface == "observation" else f"untrained_{algo}{i}"
            lg.add_policy(name, "defender", algo, scenario, cfg, weights,
                          base_provenance(seed=seed))
        for name, kind, params in attacks:
            lg.add_policy(**build_policy_record(name, kind, scenario=scenario, params=params))
    return path


def bench_matrix(league_open, scenario: str, episodes: int, device, defenders=None,
                 attackers=None, seed: int = 0, on_phase=None,
                 surface: str = "observation") -> dict:
    """`on_phase(name)` before each of the two timed passes (for a progress bar). `surface`
    picks the default players (`policies.evaluate.default_players`)."""
    from policies.evaluate import check_batch, default_players

    phase = on_phase or (lambda name: None)

    with league_open("r") as lg:
        d_all, a_all = default_players(lg, scenario, surface=surface)
        defenders = defenders or d_all
        attackers = attackers or a_all
        check_batch(scenario, episodes, len(defenders) * len(attackers), device)
        lineup = build_lineup(lg, scenario, defenders, attackers, device)
    cells = [pay.Cell(d, a, episodes, seed) for d in defenders for a in attackers]
    total = len(cells) * episodes
    steps = []  # episodes finished after each step of the batch

    phase("one batch")
    start = time.perf_counter()
    batched = pay.run_cells(scenario, lineup, cells, device,
                            on_step=lambda t, done: steps.append(done))
    t_batched = time.perf_counter() - start
    # rows the batch stepped (finished episodes leave it) against a batch that keeps them
    stepped = total + sum(total - d for d in steps[:-1])
    phase("episode by episode")
    start = time.perf_counter()
    seq = pay.run_cells_sequential(scenario, lineup, cells, device)
    t_seq = time.perf_counter() - start
    same = all(torch.allclose(b.returns, s.returns, atol=1e-4) for b, s in zip(batched, seq))
    return {"scenario": scenario, "surface": surface, "device": str(device),
            "defenders": len(defenders),
            "attackers": len(attackers), "episodes_per_cell": episodes, "episodes": total,
            "sequential_s": t_seq, "batched_s": t_batched, "speedup": t_seq / t_batched,
            "episodes_per_s_sequential": total / t_seq, "episodes_per_s_batched": total / t_batched,
            "same_returns": same, "rows": list(defenders), "columns": list(attackers),
            "row_steps": stepped, "row_steps_kept": total * len(steps),
            "live_share": stepped / max(1, total * len(steps))}


def bench_matrix_anywhere(league_path: Path, scenario: str, episodes: int, device,
                          on_phase=None, surface: str = "observation") -> dict:
    """Use the league when it has defenders of `surface` for `scenario`, else a synthetic one."""
    from policies.evaluate import default_players
    from policies.surfaces import check_surface
    from store import League

    check_surface(surface)

    def opener(path):
        return lambda mode: League(path, mode=mode)

    if league_path.exists():
        with League(league_path) as lg:
            has = bool(default_players(lg, scenario, surface=surface)[0])
        if has:
            out = bench_matrix(opener(league_path), scenario, episodes, device,
                               on_phase=on_phase, surface=surface)
            return {**out, "league": str(league_path)}
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic_league(Path(tmp) / "bench.h5", scenario, surface)
        out = bench_matrix(opener(path), scenario, episodes, device, on_phase=on_phase,
                           surface=surface)
    return {**out, "league": "synthetic (untrained teams)"}
