"""PSRO's two oracles on the agent surface (hijacked teammates).

- attacker, `takeover_ppo` or `takeover_dev` against the defender mixture σ_D: one adversarial
  teammate trained against the stacked teams, one drawn per episode with σ_D's weights
  (policies.agent.train_takeover);
- defender, `takeover`: the heaviest defender of σ_D trained on (the project's Q-learner)
  while σ_A's adversaries hijack its members, one drawn per episode with σ_A's weights; σ_A's
  weight on `none` is the share of clean episodes (policies.agent.retrain.Hijack).
The payoff is the ordinary table of the agent surface (policies.evaluate.fill).
"""

from __future__ import annotations


def takeover_response(game, defenders, sigma, iteration: int) -> str:
    from policies.agent.train_takeover import TakeoverTrainConfig, train_takeover
    from policies.build import base_provenance

    cfg = game.cfg
    victims, weights, refs = game._records(defenders, sigma)
    name = f"{game.run_id}_att{iteration}"
    game.say(f"training {name} ({cfg.attacker_oracle}) against "
             + ", ".join(f"{r} {w:.2f}" for r, w in zip(refs, weights)))
    tcfg = TakeoverTrainConfig(algo=cfg.attacker_oracle, scenario=cfg.scenario,
                               steps=cfg.steps_per_oracle, seed=cfg.seed + iteration,
                               device=cfg.device,
                               trained_against={"mixture": dict(zip(refs, weights))},
                               **cfg.attacker_params)
    game.on_oracle(name, cfg.steps_per_oracle)
    res = train_takeover(tcfg, victims, weights, on_progress=game.on_progress)
    prov = base_provenance(**{**res.provenance, "psro_run": game.run_id,
                              "psro_iteration": iteration})
    with game.open("a") as lg:
        return lg.add_policy(name, "attacker", cfg.attacker_oracle, cfg.scenario, res.config,
                             res.weights, prov)


def retrain_response(game, attackers, sigma, iteration: int) -> str:
    from arena.scenarios import spec as scenario_spec
    from policies.agent.retrain import Hijack, hijackers_from_league
    from policies.build import base_provenance
    from policies.learners.train_defender import DefenderTrainConfig, train_defender

    cfg = game.cfg
    name = f"{game.run_id}_def{iteration}"
    spec = scenario_spec(cfg.scenario)
    with game.open("r") as lg:
        base = lg.get(game._heaviest_defender)
        players, weights, clean = hijackers_from_league(lg, attackers, sigma, spec, cfg.device)
    if not players:  # σ_A is all `none`: train against the first learned adversary
        with game.open("r") as lg:
            first = [a for a in attackers if lg.info(a).kind != "takeover_random"][:1] or \
                attackers[1:2]
            players, weights, _ = hijackers_from_league(lg, first, [1.0], spec, cfg.device)
        clean = 0.0
    hook = Hijack(players, weights, 1.0 - min(clean, 0.95), spec, cfg.seed + iteration,
                  cfg.device)
    dcfg = DefenderTrainConfig(algo=base.kind, scenario=cfg.scenario,
                               steps=cfg.steps_per_oracle, seed=cfg.seed + iteration,
                               init=base.weights, init_config=base.config, device=cfg.device,
                               test_every=cfg.steps_per_oracle, test_attacks=False)
    game.say(f"training {name} (retrained against hijackers) from {base.ref}")
    game.on_oracle(name, cfg.steps_per_oracle)
    res = train_defender(dcfg, on_progress=game.on_progress, poison=hook)
    against = {a: float(w) for a, w in zip(attackers, sigma) if w > 0}
    prov = base_provenance(**{**res.provenance, "parent": base.ref, "psro_run": game.run_id,
                              "psro_iteration": iteration, "trained_against": against})
    with game.open("a") as lg:
        return lg.add_policy(name, "defender", base.kind, cfg.scenario, res.config,
                             res.weights, prov)
