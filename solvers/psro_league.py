"""PSRO on the league: RL oracles, payoff filling, run records and the final mixtures.

`LeagueGame` implements `solvers.psro.PSROGame` with
- payoff: `policies.evaluate.fill` of the run's threat surface (only new cells are played),
  metric = team return;
- oracles pluggable per surface (`ORACLES`), each trained against the other player's current
  meta-strategy and stored as `<run>_att<k>` / `<run>_def<k>`:
  - observation: ATLA or PA-AD against the defender mixture (one member drawn per episode);
    a QMIX team fine-tuned from the heaviest defender, with FGSM adversarial training
    (`fgsm`) or against the attacker mixture itself (`mixture`);
  - message, ℜ-MACRL (Xue et al., AAMAS 2022, Algorithm 1): msg_ppo against the defender
    mixture; a msg_filter in front of the run's communicating team, trained against the
    attacker mixture (its `none` weight is the share of clean training episodes);
  - agent (hijacked teammates, Wu et al. 2021): takeover_ppo or takeover_dev against the
    defender mixture; the heaviest defender retrained while the attacker mixture hijacks its
    members (`solvers.psro_agent`);
  - backdoor (MARNet): a marnet backdoor re-poisoned from the heaviest attacker's defended
    team; a fine-tuning defence with twice the budget (`solvers.psro_backdoor`). Its payoff
    is the triggered return of `policies.backdoor.cells.fill_backdoor`.
The run's config and every iteration go to the league's `/runs/<run>`: populations,
meta-strategies, value, both best-response gains and their NashConv, Σ max(0, gain)
(`solvers.psro`); at the end the meta-strategies are stored as mixture policies `<run>_def`
and `<run>_att`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from solvers.exploitability import SolverError
from solvers.psro import Iteration, PSROConfig, as_record, run_psro

# surface → (attacker oracles, defender oracles); the first of each is the surface's default
ORACLES = {"observation": (("pa_ad", "atla"), ("fgsm", "mixture")),
           "message": (("msg_ppo",), ("msg_filter",)),
           "backdoor": (("marnet",), ("finetune",)),
           "agent": (("takeover_ppo", "takeover_dev"), ("takeover",))}


@dataclass
class LeaguePSROConfig:
    scenario: str
    defenders: list[str]
    attackers: list[str]
    iterations: int = 3
    attacker_oracle: str = "pa_ad"
    defender_oracle: str = "fgsm"
    meta: str = "lp"
    episodes: int = 32
    steps_per_oracle: int = 50_000
    eps: float = 0.2
    tol: float = 0.0
    seed: int = 0
    device: str = "cpu"
    surface: str = "observation"
    attacker_params: dict = field(default_factory=dict)
    """The msg_ppo or takeover oracle's kind parameters (e.g. targets, hidden)."""

    def validate(self) -> None:
        if self.surface not in ORACLES:
            raise SolverError(f"unknown surface {self.surface!r}; valid: {', '.join(ORACLES)}")
        att, dfd = ORACLES[self.surface]
        if self.attacker_oracle not in att:
            raise SolverError(f"attacker oracle {self.attacker_oracle!r} does not act on the "
                              f"{self.surface} surface; valid: {', '.join(att)}")
        if self.defender_oracle not in dfd:
            raise SolverError(f"defender oracle {self.defender_oracle!r} does not defend the "
                              f"{self.surface} surface; valid: {', '.join(dfd)}")
        if self.attacker_params and self.surface not in ("message", "agent"):
            raise SolverError("attacker parameters are for the msg_ppo and takeover oracles")
        if self.iterations < 0 or self.episodes < 1 or self.steps_per_oracle < 1:
            raise SolverError("iterations must be ≥ 0, episodes and steps-per-oracle ≥ 1")
        if not self.defenders or not self.attackers:
            raise SolverError("PSRO needs at least one defender and one attacker to start from")


class LeagueGame:
    def __init__(self, league_open: Callable, run_id: str, cfg: LeaguePSROConfig,
                 on_event: Callable[[str], None] | None = None,
                 on_progress: Callable[[dict], None] | None = None,
                 on_oracle: Callable[[str, int], None] | None = None):
        self.open, self.run_id, self.cfg = league_open, run_id, cfg
        self.say = on_event or (lambda msg: None)
        self.on_progress = on_progress
        self.on_oracle = on_oracle or (lambda name, steps: None)

    # -- the empirical game -------------------------------------------------------------------
    def payoff(self, defenders, attackers) -> np.ndarray:
        if self.cfg.surface == "backdoor":
            return self._backdoor_payoff(defenders, attackers)
        from policies.evaluate import fill

        res = fill(self.open, self.cfg.scenario, defenders, attackers, self.cfg.episodes,
                   self.cfg.seed, self.cfg.device, surface=self.cfg.surface)
        if res.cells:
            self.say(f"filled {len(res.cells)} cells ({res.episodes_run} episodes) "
                     f"in {res.seconds:.1f} s")
        return np.asarray(res.table.mean, dtype=float)

    # -- oracles -------------------------------------------------------------------------------
    def attacker_response(self, defenders, sigma, iteration) -> str:
        if self.cfg.surface == "message":
            return self._message_attacker(defenders, sigma, iteration)
        if self.cfg.surface == "agent":
            from solvers.psro_agent import takeover_response

            return takeover_response(self, defenders, sigma, iteration)
        if self.cfg.surface == "backdoor":
            from solvers.meta import solve
            from solvers.psro_backdoor import marnet_response

            # σ_A is no argument of this oracle: it is the meta-solve of the table the run
            # just solved (the last payoff, deterministic); σ_D is kept for the defence oracle
            self._sigma_d = dict(zip(defenders, sigma))
            attackers, M = self._last
            return marnet_response(self, defenders, sigma, attackers,
                                   solve(M, self.cfg.meta).attacker, iteration)
        plan = self._attacker_plan(defenders, sigma, iteration)
        self.on_oracle(plan["name"], self.cfg.steps_per_oracle)
        return self._store_response(plan, plan["train"](*plan["args"], **plan["kwargs"],
                                                        on_progress=self.on_progress))

    def _attacker_plan(self, defenders, sigma, iteration) -> dict:
        """The observation attacker oracle as data: what to train (a call a Ray worker can run
        as well as this process) and how to store it."""
        from policies.observation.train_attacker import AttackerTrainConfig, train_attacker

        victims, weights, refs = self._records(defenders, sigma)
        name = f"{self.run_id}_att{iteration}"
        self.say(f"training {name} ({self.cfg.attacker_oracle}) against "
                 + ", ".join(f"{r} {w:.2f}" for r, w in zip(refs, weights)))
        cfg = AttackerTrainConfig(algo=self.cfg.attacker_oracle, scenario=self.cfg.scenario,
                                  steps=self.cfg.steps_per_oracle, seed=self.cfg.seed + iteration,
                                  eps=self.cfg.eps, device=self.cfg.device,
                                  trained_against={"mixture": dict(zip(refs, weights))})
        return {"name": name, "role": "attacker", "kind": self.cfg.attacker_oracle,
                "train": train_attacker, "args": (cfg, victims, weights), "kwargs": {},
                "provenance": {"psro_run": self.run_id, "psro_iteration": iteration}}

    def _store_response(self, plan: dict, res) -> str:
        from policies.build import base_provenance

        prov = base_provenance(**{**res.provenance, **plan["provenance"]})
        with self.open("a") as lg:
            return lg.add_policy(plan["name"], plan["role"], plan["kind"], self.cfg.scenario,
                                 res.config, res.weights, prov)

    def responses(self, defenders, sigma_d, attackers, sigma_a, iteration) -> tuple[str, str]:
        """Both oracles of an iteration: (new attacker, new defender). On a Ray cluster
        (`policies.distributed.connect`) the observation oracles train at once, as two tasks
        that return their weights; this process stores them, the attacker first, as a run in
        one process does. The other surfaces train one after the other here."""
        from policies import distributed

        if self.cfg.surface != "observation" or not distributed.active():
            return (self.attacker_response(defenders, sigma_d, iteration),
                    self.defender_response(attackers, sigma_a, iteration))
        plans = [self._attacker_plan(defenders, sigma_d, iteration),
                 self._defender_plan(attackers, sigma_a, iteration)]
        self.say(f"training {plans[0]['name']} and {plans[1]['name']} as two Ray tasks")
        tasks = [distributed.submit(p["train"], *p["args"], device=self.cfg.device,
                                    **p["kwargs"]) for p in plans]
        results = distributed.gather(tasks)
        return tuple(self._store_response(p, r) for p, r in zip(plans, results))

    def defender_response(self, attackers, sigma, iteration) -> str:
        if self.cfg.surface == "message":
            return self._message_filter(attackers, sigma, iteration)
        if self.cfg.surface == "agent":
            from solvers.psro_agent import retrain_response

            return retrain_response(self, attackers, sigma, iteration)
        if self.cfg.surface == "backdoor":
            from solvers.psro_backdoor import finetune_response

            return finetune_response(self, self._sigma_d, attackers, sigma, iteration)
        plan = self._defender_plan(attackers, sigma, iteration)
        self.on_oracle(plan["name"], self.cfg.steps_per_oracle)
        return self._store_response(plan, plan["train"](*plan["args"], **plan["kwargs"],
                                                        on_progress=self.on_progress))

    def _defender_plan(self, attackers, sigma, iteration) -> dict:
        """The observation defender oracle as data (see `_attacker_plan`)."""
        from policies.learners.train_defender import DefenderTrainConfig, train_defender

        name = f"{self.run_id}_def{iteration}"
        with self.open("r") as lg:
            base = lg.get(self._heaviest_defender)
        cfg = DefenderTrainConfig(algo=base.kind, scenario=self.cfg.scenario,
                                  steps=self.cfg.steps_per_oracle, seed=self.cfg.seed + iteration,
                                  init=base.weights, init_config=base.config,
                                  device=self.cfg.device,
                                  adv="fgsm" if self.cfg.defender_oracle == "fgsm" else None,
                                  adv_eps=self.cfg.eps, test_every=self.cfg.steps_per_oracle,
                                  # a best response faces σ_A exactly: its clean share is
                                  # σ_A's weight on `none`, not a fixed half
                                  adv_fraction=(1.0 if self.cfg.defender_oracle == "mixture"
                                                else DefenderTrainConfig.adv_fraction))
        perturb = None
        if self.cfg.defender_oracle == "mixture":
            from policies.observation.mixture_perturb import MixturePerturb

            with self.open("r") as lg:
                perturb = MixturePerturb.from_league(lg, self.cfg.scenario, attackers, sigma,
                                                     self.cfg.seed + iteration, self.cfg.device)
        self.say(f"training {name} ({self.cfg.defender_oracle}) from {base.ref}")
        against = {a: float(w) for a, w in zip(attackers, sigma) if w > 0}
        return {"name": name, "role": "defender", "kind": base.kind,
                "train": train_defender, "args": (cfg,), "kwargs": {"perturb": perturb},
                "provenance": {"parent": base.ref, "psro_run": self.run_id,
                               "psro_iteration": iteration, "trained_against": against}}

    def _backdoor_payoff(self, defenders, attackers) -> np.ndarray:
        from policies.backdoor.cells import fill_backdoor

        res = fill_backdoor(self.open, self.cfg.scenario, defenders, attackers,
                            self.cfg.episodes, self.cfg.seed, self.cfg.device,
                            on_event=self.say, on_progress=self.on_progress)
        if res.episodes_run:
            self.say(f"played {res.episodes_run} episodes in {res.seconds:.1f} s")
        M = np.asarray(res.triggered.mean, dtype=float)
        self._last = (list(attackers), M)
        return M

    # -- the message surface (ℜ-MACRL) ------------------------------------------------------------
    def _message_attacker(self, defenders, sigma, iteration) -> str:
        from policies.build import base_provenance
        from policies.message.train_msg_attacker import (MsgAttackerTrainConfig,
                                                         train_msg_attacker)

        victims, weights, refs = self._records(defenders, sigma)
        name = f"{self.run_id}_att{iteration}"
        self.say(f"training {name} (msg_ppo) against "
                 + ", ".join(f"{r} {w:.2f}" for r, w in zip(refs, weights)))
        cfg = MsgAttackerTrainConfig(scenario=self.cfg.scenario, steps=self.cfg.steps_per_oracle,
                                     seed=self.cfg.seed + iteration, device=self.cfg.device,
                                     trained_against={"mixture": dict(zip(refs, weights))},
                                     **self.cfg.attacker_params)
        self.on_oracle(name, self.cfg.steps_per_oracle)
        res = train_msg_attacker(cfg, victims, weights, on_progress=self.on_progress)
        prov = base_provenance(**{**res.provenance, "psro_run": self.run_id,
                                  "psro_iteration": iteration})
        with self.open("a") as lg:
            return lg.add_policy(name, "attacker", "msg_ppo", self.cfg.scenario, res.config,
                                 res.weights, prov)

    def _message_filter(self, attackers, sigma, iteration) -> str:
        """A new filter in front of the run's communicating team (never a filter around a
        filter), trained against σ_A: its attackers drawn by weight, `none` as clean episodes."""
        from policies.build import base_provenance
        from policies.message.train_msg_filter import (MsgFilterTrainConfig, Opponents,
                                                       from_league, train_msg_filter)
        from store import NO_ATTACK

        name = f"{self.run_id}_def{iteration}"
        opp, refs, clean = Opponents([], [], []), [], 0.0
        with self.open("r") as lg:
            team = self._guarded_team(lg)
            for ref, w in zip(attackers, sigma):
                if w <= 1e-6:
                    continue
                if ref == NO_ATTACK:
                    clean += float(w)
                    continue
                rec, one, _ = from_league(lg, team, [ref], self.cfg.scenario, self.cfg.device)
                opp.attackers += one.attackers
                opp.weights += [float(w) * x for x in one.weights]
                opp.salts += one.salts
                refs.append(ref)
        if not opp.attackers:  # σ_A is all `none`: nothing to filter against yet
            opp_refs = [a for a in attackers if a != NO_ATTACK][:1]
            with self.open("r") as lg:
                rec, opp, refs = from_league(lg, team, opp_refs, self.cfg.scenario,
                                             self.cfg.device)
            clean = 0.0
        self.say(f"training {name} (msg_filter around {rec.ref}) against "
                 + ", ".join(refs) + (f" and {clean:.2f} clean" if clean else ""))
        cfg = MsgFilterTrainConfig(scenario=self.cfg.scenario, steps=self.cfg.steps_per_oracle,
                                   seed=self.cfg.seed + iteration, device=self.cfg.device,
                                   clean_fraction=min(clean, 0.95), trained_against=refs)
        self.on_oracle(name, self.cfg.steps_per_oracle)
        res = train_msg_filter(cfg, (rec.config, rec.weights), opp, on_progress=self.on_progress)
        prov = base_provenance(**{**res.provenance, "parent": rec.ref, "psro_run": self.run_id,
                                  "psro_iteration": iteration,
                                  "trained_against": {a: float(w) for a, w in
                                                      zip(attackers, sigma) if w > 0}})
        with self.open("a") as lg:
            return lg.add_policy(name, "defender", "msg_filter", self.cfg.scenario, res.config,
                                 res.weights, prov)

    def _guarded_team(self, lg) -> str:
        """The communicating team the run's filters guard: the first starting defender that is
        one, or the team behind the first starting filter."""
        from policies.teams.networks import MESSAGE_ALGOS

        for ref in self.cfg.defenders:
            info = lg.info(ref)
            if info.kind in MESSAGE_ALGOS:
                return info.ref
            if info.kind == "msg_filter" and info.provenance.get("parent"):
                return info.provenance["parent"]
        raise SolverError(f"a message-surface PSRO run needs a communicating team "
                          f"({', '.join(MESSAGE_ALGOS)}) or a filter around one among its "
                          f"starting defenders")

    def _records(self, defenders, sigma):
        victims, weights, refs = [], [], []
        with self.open("r") as lg:
            for ref, w in zip(defenders, sigma):
                if w <= 1e-6:
                    continue
                rec = lg.get(ref)
                victims.append((rec.config, rec.weights))
                weights.append(float(w))
                refs.append(rec.ref)
        self._heaviest_defender = refs[int(np.argmax(weights))]
        return victims, weights, refs


def run_league_psro(league_open: Callable, cfg: LeaguePSROConfig, run_id: str | None = None,
                    resume: bool = False, on_event=None, on_progress=None,
                    on_iteration: Callable[[Iteration], None] | None = None,
                    on_oracle: Callable[[str, int], None] | None = None):
    """Start (or resume) a run; returns (run_id, iterations, mixture refs).

    `on_event(text)`: what happens (cells filled, an oracle starts); `on_oracle(name, steps)`:
    an oracle named `name` starts training for `steps` environment steps, after which
    `on_progress(dict)` reports its trainer's progress (a dict with at least `steps`)."""
    from policies.names import resolve_for

    cfg.validate()
    with league_open("a") as lg:
        if resume:
            run = lg.get_run(run_id)
            cfg = LeaguePSROConfig(**run.config["psro"])
            history = run.iterations
        else:
            cfg.defenders = [resolve_for(lg, r, cfg.scenario) for r in cfg.defenders]
            cfg.attackers = [resolve_for(lg, r, cfg.scenario) for r in cfg.attackers]
            run_id = lg.create_run({"psro": asdict(cfg)}, run_id)
            history = []

    game = LeagueGame(league_open, run_id, cfg, on_event, on_progress, on_oracle)
    if history:  # the heaviest defender is needed by the defender oracle after a resume
        last = history[-1]
        game._heaviest_defender = last["defenders"][int(np.argmax(last["sigma_defender"]))]

    def record(it: Iteration) -> None:
        with league_open("a") as lg:
            lg.append_iteration(run_id, as_record(it))
        if on_iteration is not None:
            on_iteration(it)

    its = run_psro(game, cfg.defenders, cfg.attackers,
                   PSROConfig(iterations=cfg.iterations, meta=cfg.meta, tol=cfg.tol), history, record)
    refs = store_mixtures(league_open, run_id, cfg.scenario, its[-1])
    return run_id, its, refs


def store_mixtures(league_open, run_id: str, scenario: str, last: Iteration) -> tuple[str, str]:
    """The final meta-strategies as mixture policies `<run>_def` and `<run>_att`."""
    from policies.build import base_provenance

    out = []
    with league_open("a") as lg, lg.transaction():
        for role, names, sigma, suffix in (("defender", last.defenders, last.sigma_defender, "def"),
                                           ("attacker", last.attackers, last.sigma_attacker, "att")):
            members = [{"ref": r, "weight": float(w)} for r, w in zip(names, sigma) if w > 1e-6]
            prov = base_provenance(psro_run=run_id, psro_iteration=last.iteration,
                                   value=last.value)
            out.append(lg.add_policy(f"{run_id}_{suffix}", role, "mixture", scenario,
                                     {"members": members}, {}, prov))
    return out[0], out[1]
