"""`arena reproduce s004`: adversarial teammates (Wu et al., USENIX Security 2021) in
cooperative MARL, regenerated from the league.

Wu et al., "Adversarial Policy Training against Deep Reinforcement Learning": adversarial
PPO extended with victim-deviation terms trains a stronger adversary faster than plain
adversarial PPO; adversarial retraining robustifies the victim against it but costs it
generalisability; transfer of an adversary to other victims is stated future work. Here the
victim is a team and the adversary hijacks one of its members (the agent surface).

Per scenario (3m, pp7) against its clean team `qmix.<scenario>`:
1. curves: takeover_ppo and takeover_dev, `seeds` each, the team's return under the sampled
   adversary on fixed evaluation episodes every `eval_every` steps (policies.agent.
   train_takeover), stored as `s004_<algo>.<scenario>.s<seed>`;
2. retraining: the team retrained against a hijacked teammate (takeover_dev, alternating,
   policies.agent.retrain) → `s004_retrained.<scenario>`, its last adversary stored as
   `s004_retrain_adv.<scenario>`, and a fresh takeover_dev trained against the retrained team
   (`s004_fresh.<scenario>`). Table: both teams × (clean, takeover_random, the training
   adversary, the fresh one, the seed-0 adversary trained against the original team);
3. transfer: the seed-0 adversaries trained against `qmix.<scenario>` played against every
   other team of the scenario in the league.
Every policy is found again by name, so a rerun trains nothing. `--quick` reads the shipped
starter's `takeover_ppo.3m`, `takeover_dev.3m` and `qmix_tk.3m` and trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from policies.reproduce_s003 import Hooks
from solvers.reproduce_s000 import _has

ALGOS = ("takeover_ppo", "takeover_dev")


@dataclass
class S004Config:
    scenarios: tuple = ("3m", "pp7")
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    steps: dict = field(default_factory=lambda: {"3m": 50_000, "pp7": 200_000})
    """Attacker training steps per scenario (its curve's length)."""
    eval_every: dict = field(default_factory=lambda: {"3m": 2_500, "pp7": 10_000})
    team_steps: int = 100_000
    """Team steps of the retraining (split over its rounds)."""
    rounds: int = 2
    episodes: int = 64
    """Episodes per cell of the retraining and transfer tables."""
    seed: int = 0
    quick: bool = False
    device: str = "cpu"


@dataclass
class ScenarioResult:
    scenario: str
    team: str
    curves: dict  # algo -> {seed: [(steps, return)]}
    finals: dict  # algo -> {seed: provenance final_* figures}
    retrain: dict | None  # rows, columns, returns, wins, cis
    transfer: dict | None


def _name(scenario: str, what: str, seed: int | None = None) -> str:
    return f"s004_{what}.{scenario}" + (f".s{seed}" if seed is not None else "")


def _train_attacker(league_open, name, algo, scenario, team_ref, seed, steps, every, hooks,
                    device):
    from policies.agent.train_takeover import TakeoverTrainConfig, train_takeover
    from policies.build import base_provenance

    with league_open("r") as lg:
        if _has(lg, name):
            return
        team = lg.get(team_ref)
    hooks.train(name, steps)
    cfg = TakeoverTrainConfig(algo=algo, scenario=scenario, steps=steps, seed=seed,
                              eval_every=every, device=device, trained_against=team.ref)
    res = train_takeover(cfg, [(team.config, team.weights)], on_progress=hooks.progress)
    hooks.done()
    with league_open("a") as lg:
        lg.add_policy(name, "attacker", algo, scenario, res.config, res.weights,
                      base_provenance(**{**res.provenance, "trained_against": team.ref,
                                         "reproduce": "s004"}))


def _retrain(league_open, scenario, team_ref, cfg: S004Config, hooks):
    from policies.agent.retrain import train_takeover_retrained
    from policies.build import base_provenance
    from policies.learners.train_defender import DefenderTrainConfig

    name, adv_name = _name(scenario, "retrained"), _name(scenario, "retrain_adv")
    with league_open("r") as lg:
        if _has(lg, name) and _has(lg, adv_name):
            return
        team = lg.get(team_ref)
    hooks.train(name, cfg.team_steps)
    dcfg = DefenderTrainConfig(algo=team.kind, scenario=scenario, steps=cfg.team_steps,
                               seed=cfg.seed, init=team.weights, init_config=team.config,
                               device=cfg.device, test_every=cfg.team_steps)
    res, adv = train_takeover_retrained(dcfg, "takeover_dev", cfg.rounds, cfg.steps[scenario],
                                        on_progress=hooks.progress)
    hooks.done()
    with league_open("a") as lg:
        lg.add_policy(name, "defender", team.kind, scenario, res.config, res.weights,
                      base_provenance(**{**res.provenance, "parent": team.ref,
                                         "trained_against": "takeover_dev (hijacked teammate)",
                                         "reproduce": "s004"}))
        lg.add_policy(adv_name, "attacker", "takeover_dev", scenario, adv.config, adv.weights,
                      base_provenance(**{**adv.provenance, "trained_against": team.ref,
                                         "reproduce": "s004"}))


def ensure(league_open: Callable, cfg: S004Config, hooks: Hooks) -> None:
    """Train what the tables need and the league lacks, each stored as soon as it is made."""
    for scenario in cfg.scenarios:
        team = f"qmix.{scenario}"
        for algo in ALGOS:
            for s in cfg.seeds:
                _train_attacker(league_open, _name(scenario, algo, s), algo, scenario, team, s,
                                cfg.steps[scenario], cfg.eval_every[scenario], hooks,
                                cfg.device)
        _retrain(league_open, scenario, team, cfg, hooks)
        _train_attacker(league_open, _name(scenario, "fresh"), "takeover_dev", scenario,
                        _name(scenario, "retrained"), cfg.seed + 100, cfg.steps[scenario],
                        0, hooks, cfg.device)


def _names(cfg: S004Config, scenario: str) -> dict:
    """The players of a scenario's tables: the full run's, or the starter's with --quick."""
    if cfg.quick:
        return {"team": f"qmix.{scenario}", "retrained": f"qmix_tk.{scenario}",
                "train_adv": f"takeover_dev.{scenario}", "fresh": None,
                "curves": {a: {0: f"{a}.{scenario}"} for a in ALGOS}}
    return {"team": f"qmix.{scenario}", "retrained": _name(scenario, "retrained"),
            "train_adv": _name(scenario, "retrain_adv"), "fresh": _name(scenario, "fresh"),
            "curves": {a: {s: _name(scenario, a, s) for s in cfg.seeds} for a in ALGOS}}


def _random_ref(league_open) -> str:
    """The stored takeover_random (one hijacked agent), added on first use."""
    from policies.build import build_policy_record

    with league_open("r") as lg:
        if _has(lg, "takeover_random"):
            return lg.info("takeover_random").ref
    with league_open("a") as lg:
        return lg.add_policy(**build_policy_record("takeover_random", "takeover_random"))


def _table(league_open, scenario, defenders, attackers, cfg: S004Config) -> dict:
    from policies.evaluate import fill

    res = fill(league_open, scenario, defenders, attackers, cfg.episodes, cfg.seed, cfg.device,
               surface="agent")
    t = res.table
    return {"defenders": list(t.defenders), "attackers": list(t.attackers),
            "mean": t.mean.tolist(), "ci95": t.ci95.tolist(), "win": t.win_rate.tolist()}


def scenario_result(league_open, cfg: S004Config, scenario: str) -> ScenarioResult:
    from policies.evaluate import default_players
    from store import NO_ATTACK

    names = _names(cfg, scenario)
    curves, finals = {}, {}
    with league_open("r") as lg:
        team = lg.info(names["team"]).ref
        for algo, by_seed in names["curves"].items():
            for s, ref in by_seed.items():
                if not _has(lg, ref):
                    continue
                p = lg.info(ref).provenance
                curves.setdefault(algo, {})[s] = [(c["steps"], c["eval_return"])
                                                  for c in p.get("curve", [])]
                finals.setdefault(algo, {})[s] = {k: p[k] for k in p if k.startswith("final_")}
        have = {k: _has(lg, v) for k, v in names.items() if isinstance(v, str)}
        teams = [d for d in default_players(lg, scenario, surface="agent")[0]
                 if lg.info(d).kind != "mixture" and not d.startswith("s004_")]
    rnd = _random_ref(league_open)
    retrain = None
    if have.get("retrained") and have.get("train_adv"):
        seed0 = names["curves"]["takeover_dev"].get(0)
        cols = [NO_ATTACK, rnd, names["train_adv"]] + [c for c in (names["fresh"], seed0) if c]
        retrain = _table(league_open, scenario, [team, names["retrained"]], cols, cfg)
    transfer = None
    adv0 = [names["curves"][a].get(0) for a in ALGOS]
    adv0 = [a for a in adv0 if a]
    if adv0 and teams:
        transfer = _table(league_open, scenario, teams, [NO_ATTACK, rnd] + adv0, cfg)
    return ScenarioResult(scenario, team, curves, finals, retrain, transfer)


def run(league_open: Callable, cfg: S004Config, hooks: Hooks | None = None) -> list:
    hooks = hooks or Hooks()
    if not cfg.quick:
        ensure(league_open, cfg, hooks)
    return [scenario_result(league_open, cfg, s) for s in cfg.scenarios]
