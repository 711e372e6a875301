"""The backdoor game for the solvers: its players, its stored table and PSRO's two oracles.

The game (policies.backdoor.cells): rows are defences applied to a delivered team, columns
are backdoor attackers, the payoff is the team return with the trigger placed (zero-sum).
- `backdoor_players`: the default players of its tables, without what no cell can play (a
  mixture has no delivered team to defend, nor is it one defence);
- `stored_triggered`: the triggered table as the league holds it, nothing played (`arena
  solve` reads, `arena matrix --surface backdoor` fills);
- PSRO's oracles (`solvers.psro_league`, surface "backdoor"):
  - defender, `finetune` against the attacker mixture: a new fine-tuning defence with twice
    the budget of the largest fine-tune σ_D plays, since the defender cannot know the trigger
    and its only lever against σ_A is more clean training;
  - attacker, `marnet` against the defence mixture: the heaviest attacker's recipe poisons
    again, starting from its team as the heaviest defence left it, so the new backdoor is
    planted in the weights the defender would deploy.
"""

from __future__ import annotations

import numpy as np

from solvers.exploitability import SolverError

RECIPE_PARAMS = ("trigger_size", "poison_agents", "train_trigger_size", "poison_rate",
                 "updates_per_collect")


def backdoor_players(lg, scenario: str, defences=(), attackers=()) -> tuple[list, list]:
    """The named refs resolved, or the backdoor surface's default players (PSRO's mixture
    attackers `<run>_att` left out); PolicyError on a ref no cell can play."""
    from policies.backdoor.cells import check_players
    from policies.evaluate import default_players
    from policies.names import resolve_for

    d_all, a_all = default_players(lg, scenario, surface="backdoor")
    d = [resolve_for(lg, r, scenario) for r in defences] or d_all
    a = [resolve_for(lg, r, scenario) for r in attackers] or a_all
    check_players(lg, scenario, d, a)
    return d, a


def stored_triggered(lg, scenario: str, defences: list[str], attackers: list[str]):
    """The triggered returns of defences × attackers held by the league (a cell whose defence
    was never applied is empty)."""
    from policies.backdoor.cells import find_cell_team
    from store.payoff import PayoffTable

    teams = [[find_cell_team(lg, d, a) for a in attackers] for d in defences]
    shape = (len(defences), len(attackers))
    count, s, sq, wins = (np.zeros(shape) for _ in range(4))
    refs = sorted({t for row in teams for t in row if t})
    if refs:
        t = lg.payoff(scenario, refs, list(attackers))
        for i, row in enumerate(teams):
            for j, ref in enumerate(row):
                if ref:
                    r = t.defenders.index(ref)
                    count[i, j], s[i, j] = t.count[r, j], t.sum[r, j]
                    sq[i, j], wins[i, j] = t.sumsq[r, j], t.wins[r, j]
    return PayoffTable(scenario, list(defences), list(attackers), count.astype(int), s, sq,
                       wins.astype(int))


def _heaviest(refs, sigma) -> str:
    return refs[int(np.argmax(np.asarray(sigma, dtype=float)))]


def finetune_response(game, sigma_d: dict, attackers, sigma_a, iteration: int) -> str:
    """A new `finetune` defence `<run>_def<k>` (parameter-only, any scenario)."""
    from policies.build import base_provenance
    from policies.kinds import get_kind

    cfg = game.cfg
    name = f"{game.run_id}_def{iteration}"
    with game.open("r") as lg:
        steps = [int(lg.info(d).config["steps"]) for d, w in sigma_d.items()
                 if w > 1e-6 and lg.info(d).kind == "finetune"]
    budget = 2 * max(steps) if steps else cfg.steps_per_oracle
    config = get_kind("finetune").make_config({"steps": budget, "seed": cfg.seed + iteration})
    against = {a: float(w) for a, w in zip(attackers, sigma_a) if w > 0}
    game.say(f"adding {name} (finetune, {budget:,} clean steps) against "
             + ", ".join(f"{a} {w:.2f}" for a, w in against.items()))
    prov = base_provenance(psro_run=game.run_id, psro_iteration=iteration,
                           trained_against=against, seed=cfg.seed + iteration)
    with game.open("a") as lg:
        return lg.add_policy(name, "defender", "finetune", "any", config, {}, prov)


def marnet_response(game, defences, sigma_d, attackers, sigma_a, iteration: int) -> str:
    """A new marnet backdoor `<run>_att<k>` poisoned from the heaviest attacker's team as the
    heaviest defence left it."""
    from policies.backdoor.cells import apply_defence, find_cell_team
    from policies.backdoor.train_backdoor import BackdoorTrainConfig, train_backdoor
    from policies.build import base_provenance

    cfg = game.cfg
    name = f"{game.run_id}_att{iteration}"
    a_ref, d_ref = _heaviest(attackers, sigma_a), _heaviest(defences, sigma_d)
    with game.open("r") as lg:
        rec = lg.get(a_ref, usable=True)
        expert_ref = rec.provenance.get("expert")
        if not expert_ref:
            raise SolverError(f"{a_ref} names no expert team to re-poison from")
        expert = lg.get(expert_ref, usable=True)
        defence = lg.get(d_ref)
        team = find_cell_team(lg, d_ref, a_ref)
        start = dict(lg.get(team).weights) if team else None
    if start is None:  # the payoff fill stores every cell's team; this is only a fallback
        game.say(f"applying {d_ref} to {a_ref}'s team")
        start = apply_defence(defence, rec, cfg.scenario, cfg.device, game.on_progress)[2]
    params = {k: rec.config[k] for k in RECIPE_PARAMS if k in rec.config}
    game.say(f"training {name} (marnet) from {a_ref}'s team under {d_ref}")
    bcfg = BackdoorTrainConfig(recipe="marnet", scenario=cfg.scenario,
                               steps=cfg.steps_per_oracle, seed=cfg.seed + iteration,
                               params=params, start=start, test_every=cfg.steps_per_oracle,
                               device=cfg.device)
    game.on_oracle(name, cfg.steps_per_oracle)
    res = train_backdoor(bcfg, expert, on_progress=game.on_progress)
    against = {d: float(w) for d, w in zip(defences, sigma_d) if w > 0}
    prov = base_provenance(**{**res.provenance, "psro_run": game.run_id,
                              "psro_iteration": iteration, "trained_against": against,
                              "repoisoned_from": a_ref})
    with game.open("a") as lg:
        return lg.add_policy(name, "attacker", "marnet", cfg.scenario, res.config, res.weights,
                             prov)
