"""Training defenders and attackers; each run is stored as a new league version."""

from __future__ import annotations

import click

from commands.common import (Ctx, StopOnInterrupt, TrainProgress, attack_summary, emit,
                             attacker_params, json_option, kind_params, takeover_summary)
from commands.options import SEED, parse_seeds, scenario_name
from commands.surfaces import train_pg

BACKDOOR_RECIPES = ("marnet", "trojdrl", "mtl", "honest")  # policies.backdoor.RECIPES
TAKEOVER_ALGOS = ("takeover_ppo", "takeover_dev")  # policies.agent.train_takeover.ALGOS


def policy_name(_ctx, param, value: str) -> str:
    """NAME of the policy to store: checked before training, not after it."""
    from store import StoreError
    from store.records import check_name

    try:
        return check_name(value, "policy name")
    except StoreError as exc:
        raise click.BadParameter(str(exc), param=param) from None


@click.group()
def train():
    """Train defenders and attackers; each run is stored as a new league version."""


SEEDS_HELP = ("Train one policy per seed, stored as NAME.s<seed> (e.g. NAME.s0, NAME.s1), "
              "one after the other; each provenance records family = NAME and its seed.")


def family_runs(name: str, seed: int, seeds: list[int] | None) -> list[tuple[str, int]]:
    """(stored name, seed) of each run: NAME alone, or NAME.s<seed> per seed of --seeds.

    The member names use only the characters the league allows (store.records.check_name); the
    `.s<seed>` suffix never reads as a scenario suffix (`qmix.3m`) since no scenario is so named.
    """
    if seeds is None:
        return [(name, seed)]
    if click.get_current_context().get_parameter_source("seed").name == "COMMANDLINE":
        raise click.UsageError("give --seed for one run or --seeds for several, not both")
    from store import StoreError
    from store.records import check_name

    runs = [(f"{name}.s{s}", s) for s in seeds]
    try:
        for member, _ in runs:
            check_name(member, "policy name")
    except StoreError as exc:
        raise click.UsageError(str(exc)) from None
    return runs


class _Notes:
    """Progress events that carry a "note" (e.g. a weak adversary round) are told at once on
    stderr as well as kept for the summary; the rest go to the bar."""

    def __init__(self, ctx: Ctx, bar):
        self.ctx, self.bar, self.notes = ctx, bar, []

    def __call__(self, p: dict) -> None:
        if p.get("note"):
            self.notes.append(p["note"])
            if not self.ctx.quiet:
                click.echo(f"note: {p['note']}", err=True)
        self.bar.update(p)


@train.command("defender")
@click.argument("name", callback=policy_name)
@click.option("--algo", type=click.Choice(["qmix", "vdn", "commnet", "tarmac", "ndq", "msg_filter",
                                           "mappo", "dop"]),
              default="qmix", show_default=True,
              help="msg_filter: ℜ-MACRL's message filter in front of the frozen communicating "
                   "team --init, trained against the message attackers --against; mappo, dop: "
                   "policy-gradient teams (the training surface's learners).")
@click.option("--scenario", callback=scenario_name,
              help="Required, except for msg_filter (default: the --init team's).")
@click.option("--against", "against",
              help="msg_filter: message attackers to train against, comma-separated; mappo, "
                   "dop: a training-time attacker (tram_*) poisoning the sampling.")
@click.option("--param", "params", multiple=True,
              help="key=value. msg_filter: detector (on|off), reconstructor (learned|random), "
                   "hidden, beta1; commnet, tarmac, ndq: their message widths (msg_dim; "
                   "key_dim of tarmac; msg_beta of ndq), range-checked by the kind; mappo, "
                   "dop: their learner's config fields (e.g. agg=median, lr=0.0005).")
@click.option("--steps", default=200_000, show_default=True, help="Environment steps.")
@click.option("--envs", default=8, show_default=True, help="Parallel episodes per collection.")
@click.option("--updates-per-collect", type=click.IntRange(min=1), default=1, show_default=True,
              help="Gradient updates after each collection of --envs episodes (4 on tj_easy: "
                   "one was measured too few for the traffic junction).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--seeds", callback=parse_seeds, help=SEEDS_HELP)
@click.option("--adv", type=click.Choice(["fgsm", "atla", "pa_ad", "takeover", "none"]),
              help="Robust training: FGSM perturbations, or alternating with a learned adversary "
                   "(atla|pa_ad); takeover: alternating with a hijacked teammate (needs --init); "
                   "none: no perturbation (with --reg policy: the regulariser alone).")
@click.option("--takeover-algo", type=click.Choice(TAKEOVER_ALGOS), default="takeover_ppo",
              show_default=True, help="--adv takeover: the adversarial teammate's algorithm.")
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(min=1),
              help="Alternation rounds (--adv atla|pa_ad).")
@click.option("--attacker-steps", default=30_000, show_default=True, type=click.IntRange(min=1),
              help="Adversary training steps per round (--adv atla|pa_ad); the one adversary "
                   "is continued from round to round.")
@click.option("--attacker-cap", type=click.IntRange(min=1),
              help="Most adversary steps in a round whose adversary stays weak "
                   "(default: twice --attacker-steps).")
@click.option("--weak-fraction", default=0.9, show_default=True, type=click.FloatRange(0, 1),
              help="An adversary is weak when the team keeps this fraction of its clean return "
                   "under it; its round is extended, then flagged.")
@click.option("--eps", "adv_eps", default=0.2, show_default=True,
              help="ε of --adv / --reg, and of the FGSM and PGD-10 test points.")
@click.option("--adv-fraction", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, min_open=True),
              help="Share of the parallel training episodes played under the perturbation "
                   "(--adv, or FGSM implied by --reg); the rest are clean. 1: all perturbed.")
@click.option("--reg", type=click.Choice(["policy"]),
              help="Policy regularisation (hinge; Guo et al. 2023 §IV-B): trains under FGSM "
                   "perturbations of ε --eps unless --adv says otherwise.")
@click.option("--kappa", default=0.1, show_default=True, help="Regulariser weight (2nd half).")
@click.option("--hinge", "hinge_c", default=10.0, show_default=True, help="Hinge floor c.")
@click.option("--init", "init_ref", help="Start from this stored defender's weights.")
@click.option("--test-every", default=10_000, show_default=True,
              help="Steps between test points (clean, FGSM, PGD-10 and the learned adversary).")
@click.option("--test-attacks/--no-test-attacks", default=True, show_default=True,
              help="Also play each test point under FGSM, PGD-10 (ε --eps) and the learned "
                   "adversary; a PGD-10 test costs about ten clean ones.")
@json_option
@click.pass_obj
def train_defender_cmd(ctx: Ctx, name, algo, scenario, against, params, steps, envs, seed,
                       seeds, adv, rounds, attacker_steps, attacker_cap, weak_fraction, adv_eps,
                       adv_fraction, reg, kappa, hinge_c, init_ref, test_every, test_attacks,
                       updates_per_collect, takeover_algo):
    """Train a QMIX or VDN team and store it as NAME (a new version).

    With --reg policy the team trains under FGSM perturbations (ε = --eps), as the paper's
    recipe (start from a trained clean team with --init); --adv none keeps the observations
    clean, --adv atla|pa_ad lets the learned adversary perturb them instead. With --seeds,
    one team per seed is trained and stored as NAME.s<seed>.

    \b
    Examples:
      arena train defender qmix --algo qmix --scenario 3m --steps 200000
      arena train defender qmix --scenario 3m --seeds 0,1,2   # qmix.s0, qmix.s1, qmix.s2
      arena train defender qmix_fgsm --scenario 3m --adv fgsm --eps 0.2
      arena train defender qmix_reg --scenario 3m --reg policy --init qmix
      arena train defender qmix_paad --scenario 3m --adv pa_ad --init qmix --rounds 2
      arena train defender qmix_tk --scenario 3m --adv takeover --init qmix --adv-fraction 0.5
      arena train defender guard --algo msg_filter --init commnet --against mp,noise
      arena train defender dop_j --algo dop --scenario spread --against tram_j
    """
    if algo in ("mappo", "dop"):
        if scenario is None:
            raise click.UsageError("Missing option '--scenario'.")
        return train_pg(ctx, name, algo, scenario, family_runs(name, seed, seeds),
                        name if seeds is not None else None, steps, envs, test_every, params,
                        against, init_ref)
    if algo == "msg_filter":
        if seeds is not None:
            raise click.UsageError("--seeds is not for --algo msg_filter: give --seed")
        return _train_filter(ctx, name, scenario, init_ref, against, params, steps, envs, seed)
    if against:
        raise click.UsageError("--against is for --algo msg_filter")
    messages = _message_params(algo, params)
    if scenario is None:
        raise click.UsageError("Missing option '--scenario'.")
    from arena.core import resolve_device
    from arena.scenarios import spec as scenario_spec
    from policies.build import base_provenance
    from policies.learners.train_defender import (DefenderTrainConfig, train_defender,
                                                  training_perturbation)

    scenario_spec(scenario)  # unknown scenario: one line before any work
    runs = family_runs(name, seed, seeds)
    init, init_config, parent = None, None, None
    if init_ref:
        from policies.names import resolve_for

        with ctx.open("r") as lg:
            rec = lg.get(resolve_for(lg, init_ref, scenario))
        if rec.kind != algo or rec.scenario != scenario:
            hint = f" (--algo {rec.kind} continues it)" if rec.scenario == scenario else ""
            raise click.UsageError(f"--init {rec.ref} is a {rec.kind} team for {rec.scenario}, "
                                   f"not a {algo} team for {scenario}{hint}")
        init, init_config, parent = rec.weights, rec.config, rec.ref
    elif reg:
        click.echo("note: the regulariser is meant to start from a trained clean model (--init)",
                   err=True)
    learned_adv = adv in ("atla", "pa_ad", "takeover")
    if adv == "takeover" and init is None:
        raise click.UsageError("--adv takeover retrains a trained team: give --init")
    out = []
    with StopOnInterrupt() as stopper:
        for run_name, run_seed in runs:
            cfg = DefenderTrainConfig(algo=algo, scenario=scenario, steps=steps, envs=envs,
                                      seed=run_seed, adv=None if learned_adv else adv,
                                      adv_eps=adv_eps, adv_fraction=adv_fraction, reg=reg,
                                      kappa=kappa, hinge_c=hinge_c, init=init,
                                      init_config=init_config, test_every=test_every,
                                      updates_per_collect=updates_per_collect,
                                      test_attacks=test_attacks, **messages,
                                      device=str(resolve_device(ctx.device)))
            with TrainProgress(ctx, steps, f"train {run_name}") as bar:
                notes = _Notes(ctx, bar)
                if adv == "takeover":
                    from policies.agent.retrain import train_takeover_retrained

                    result, _ = train_takeover_retrained(
                        cfg, takeover_algo, rounds, attacker_steps, fraction=adv_fraction,
                        on_progress=notes, should_stop=lambda: stopper.stop)
                elif learned_adv:
                    from policies.observation.adversarial_training import train_robust_defender

                    result = train_robust_defender(cfg, adv, rounds, attacker_steps, notes,
                                                   lambda: stopper.stop,
                                                   weak_fraction=weak_fraction,
                                                   attacker_cap=attacker_cap)
                else:
                    result = train_defender(cfg, on_progress=notes,
                                            should_stop=lambda: stopper.stop)
            perturbation = training_perturbation(cfg, learned_adv)
            against = (f"{takeover_algo} (hijacked teammate)" if adv == "takeover" else
                       f"{adv} eps={adv_eps}" if learned_adv else
                       f"fgsm eps={adv_eps}" if perturbation == "fgsm" else None)
            prov = base_provenance(**{**result.provenance, "parent": parent,
                                      "partial": result.partial, "trained_against": against,
                                      "family": name if seeds is not None else None,
                                      "seed": run_seed})
            with ctx.open("a") as lg:
                ref = lg.add_policy(run_name, "defender", algo, scenario, result.config,
                                    result.weights, prov)
            data = {"ref": ref, "partial": result.partial,
                    **{k: prov.get(k) for k in ("steps", "final_test_return", "final_test_win",
                                                "final_fgsm_return", "final_pgd_return",
                                                "final_adv_return", "wall_time_s")}}
            if notes.notes:
                data["notes"] = notes.notes
            if seeds is not None:
                data.update(family=name, seed=run_seed)
            out.append((data, prov))
            if result.partial:
                break  # Ctrl-C: what was learned is stored; the remaining seeds are not run

    def human():
        for data, prov in out:
            tag = " (partial)" if data["partial"] else ""
            robust = ", ".join(f"{what} {prov[key]:.2f}" for key, what in
                               (("final_fgsm_return", "under FGSM"),
                                ("final_pgd_return", "under PGD-10"),
                                ("final_adv_return", "under the adversary"))
                               if prov.get(key) is not None)
            click.echo(f"stored {data['ref']}{tag}: {prov.get('steps', 0):,} steps, "
                       f"test return {prov.get('final_test_return', float('nan')):.2f}"
                       + (f" ({robust})" if robust else "")
                       + f", win rate {prov.get('final_test_win', float('nan')):.0%}"
                       + takeover_summary(prov))

    emit(ctx, _family_output(name, seeds, [d for d, _ in out]), human)


_FILTER_PARAMS = ("detector", "reconstructor", "hidden", "beta1")


def _train_filter(ctx: Ctx, name, scenario, init_ref, against, params, steps, envs, seed):
    """`train defender --algo msg_filter`: the filter around --init, against --against."""
    from arena.core import resolve_device
    from policies.build import base_provenance
    from policies.message.train_msg_filter import (MsgFilterTrainConfig, from_league,
                                                   train_msg_filter)

    if not init_ref or not against:
        raise click.UsageError("--algo msg_filter needs the team to guard (--init) and the "
                               "message attackers to train against (--against)")
    config = kind_params("msg_filter", params, _FILTER_PARAMS, "msg_filter trains with",
                         full=True)
    device = str(resolve_device(ctx.device))
    with ctx.open("r") as lg:
        rec, opponents, refs = from_league(lg, init_ref, [a.strip() for a in against.split(",")
                                                          if a.strip()], scenario, device)
    cfg = MsgFilterTrainConfig(scenario=rec.scenario, steps=steps, envs=envs, seed=seed,
                               device=device, trained_against=refs,
                               **{k: config[k] for k in _FILTER_PARAMS})
    with StopOnInterrupt() as stopper, TrainProgress(ctx, steps, f"train {name}") as bar:
        res = train_msg_filter(cfg, (rec.config, rec.weights), opponents,
                               on_progress=bar.update, should_stop=lambda: stopper.stop)
    prov = base_provenance(**{**res.provenance, "parent": rec.ref, "partial": res.partial})
    with ctx.open("a") as lg:
        ref = lg.add_policy(name, "defender", "msg_filter", rec.scenario, res.config,
                            res.weights, prov)
    data = {"ref": ref, "partial": res.partial,
            **{k: prov.get(k) for k in ("steps", "final_clean_return", "final_attacked_return",
                                        "final_filtered_return", "wall_time_s")}}

    def human():
        click.echo(f"stored {ref}{' (partial)' if res.partial else ''}: {data['steps']:,} "
                   f"steps, under attack {data['final_attacked_return']:.2f} unfiltered, "
                   f"{data['final_filtered_return']:.2f} filtered (clean "
                   f"{data['final_clean_return']:.2f})")

    emit(ctx, data, human)


_MESSAGE_PARAMS = {"commnet": ("msg_dim",), "tarmac": ("msg_dim", "key_dim"),
                   "ndq": ("msg_dim", "msg_beta")}


def _message_params(algo: str, params) -> dict:
    """--param pairs of a communicating team's message widths, range-checked by its kind."""
    if not params:
        return {}
    known = _MESSAGE_PARAMS.get(algo)
    if known is None:
        raise click.UsageError(f"--param is for communicating teams (commnet, tarmac, ndq) and "
                               f"msg_filter, not --algo {algo}")
    return kind_params(algo, params, known, f"--algo {algo} takes")


def _family_output(name: str, seeds, runs: list[dict]) -> dict:
    """One run: its record as before; --seeds: the family and one record per member."""
    if seeds is None:
        return runs[0]
    return {"family": name, "seeds": seeds, "refs": [r["ref"] for r in runs], "runs": runs,
            "partial": any(r["partial"] for r in runs)}


@train.command("attacker")
@click.argument("name", callback=policy_name)
@click.option("--algo", type=click.Choice(["atla", "pa_ad", "msg_ppo", *TAKEOVER_ALGOS,
                                          *BACKDOOR_RECIPES]),
              default="pa_ad", show_default=True,
              help="atla, pa_ad: observation attackers; msg_ppo: ℜ-MACRL's message attacker "
                   "(against a communicating team); marnet, trojdrl, mtl: a backdoored team "
                   "poisoned from --expert (honest: --expert delivered as it is).")
@click.option("--against", "against", help="The defender (or mixture) to attack.")
@click.option("--expert", help="Backdoors: the clean qmix/vdn team the poisoning starts from.")
@click.option("--poison-agents", type=click.IntRange(min=1),
              help="Backdoors: poisoned agents, the first K (default 4).")
@click.option("--trigger-fraction", type=click.FloatRange(0, 1),
              help="Backdoors: trigger size, in training and at play (default 0.25).")
@click.option("--init", type=click.Choice(["expert", "scratch"]), default="expert",
              show_default=True, help="Backdoors: start from the expert's weights or afresh.")
@click.option("--scenario", callback=scenario_name, help="Default: the defender's scenario.")
@click.option("--eps", default=0.2, show_default=True)
@click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True)
@click.option("--param", "params", multiple=True,
              help="key=value. msg_ppo: targets, omega, combine, alpha, sigma, hidden; "
                   "backdoors: poison_rate, action, reward, r_max, r_win, target_action, "
                   "train_trigger_size (ranges: `arena kinds`).")
@click.option("--steps", default=100_000, show_default=True)
@click.option("--envs", type=click.IntRange(min=1),
              help="Parallel episodes per collection [default: 32; backdoors 8].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--seeds", callback=parse_seeds, help=SEEDS_HELP)
@json_option
@click.pass_obj
def train_attacker_cmd(ctx: Ctx, name, algo, against, expert, poison_agents, trigger_fraction,
                       init, scenario, eps, norm, params, steps, envs, seed, seeds):
    """Train a learned attacker against a fixed defender; store it as NAME.

    \b
    Examples:
      arena train attacker pa_ad --algo pa_ad --against qmix --eps 0.2
      arena train attacker atla --algo atla --against qmix_fgsm --steps 200000
      arena train attacker pa_ad --against qmix --seeds 0,1,2   # pa_ad.s0, pa_ad.s1, pa_ad.s2
      arena train attacker mp --algo msg_ppo --scenario pp7 --against commnet --param omega=0.5
      arena train attacker takeover_dev --algo takeover_dev --against qmix --scenario 3m
      arena train attacker marnet --algo marnet --expert qmix --scenario stag10 --steps 100000
      arena train attacker trojdrl --algo trojdrl --expert qmix --trigger-fraction 0.2
    """
    if algo in BACKDOOR_RECIPES:
        return _train_backdoor(ctx, name, algo, expert, scenario, poison_agents,
                               trigger_fraction, init, params, steps, envs or 8, seed, seeds)
    if against is None:
        raise click.UsageError("--against is required: the defender (or mixture) to attack")
    envs = envs or 32
    from arena.core import resolve_device
    from policies.build import base_provenance
    from policies.errors import PolicyError
    from policies.lineup import check_role, members_of
    from policies.names import default_scenario, resolve_for
    from policies.surfaces import communicates

    runs = family_runs(name, seed, seeds)
    msg_params = attacker_params(algo, params)
    with ctx.open("r") as lg:
        info = lg.info(resolve_for(lg, against, scenario, prefer=default_scenario(lg)))
        check_role(info, "defender")
        if algo == "msg_ppo" and not communicates(lg, info):
            raise PolicyError(f"--algo msg_ppo attacks messages, but {info.ref} is a {info.kind} "
                              f"team, which sends none: train it against a communicating team "
                              f"such as commnet")
        members = members_of(info)
        recs = [(lg.get(r), w) for r, w in members]
    scenario = scenario or info.scenario
    device = str(resolve_device(ctx.device))
    against_refs = {r.ref: w for r, w in recs}
    if algo == "msg_ppo":
        from policies.message.train_msg_attacker import (
            MsgAttackerTrainConfig as TrainConfig, train_msg_attacker as trainer,
        )

        extra = msg_params
    elif algo in TAKEOVER_ALGOS:
        from policies.agent.train_takeover import (
            TakeoverTrainConfig as TrainConfig, train_takeover as trainer,
        )

        extra = {"algo": algo, **msg_params, "eval_every": max(1, steps // 20)}  # its curve
    else:
        from policies.observation.train_attacker import (
            AttackerTrainConfig as TrainConfig, train_attacker as trainer,
        )

        extra = {"algo": algo, "eps": eps, "norm": norm}
    out = []
    with StopOnInterrupt() as stopper:
        for run_name, run_seed in runs:
            cfg = TrainConfig(scenario=scenario, steps=steps, envs=envs, seed=run_seed,
                              device=device, trained_against=against_refs, **extra)
            with TrainProgress(ctx, steps, f"train {run_name}") as bar:
                res = trainer(cfg, [(r.config, r.weights) for r, _ in recs],
                              [w for _, w in recs], on_progress=bar.update,
                              should_stop=lambda: stopper.stop)
            prov = base_provenance(**{**res.provenance, "partial": res.partial,
                                      "trained_against": info.ref,
                                      "family": name if seeds is not None else None,
                                      "seed": run_seed})
            with ctx.open("a") as lg:
                ref = lg.add_policy(run_name, "attacker", algo, scenario, res.config,
                                    res.weights, prov)
            data = {"ref": ref, "partial": res.partial, "provenance": prov}
            if seeds is not None:
                data.update(family=name, seed=run_seed)
            out.append(data)
            if res.partial:
                break

    def human():
        for data in out:
            click.echo(f"stored {data['ref']}{' (partial)' if data['partial'] else ''}: "
                       + attack_summary(data["provenance"]))

    emit(ctx, _family_output(name, seeds, out), human)


def _train_backdoor(ctx: Ctx, name, algo, expert, scenario, poison_agents, trigger_fraction,
                    init, params, steps, envs, seed, seeds):
    """`arena train attacker --algo marnet|trojdrl|mtl|honest`: one backdoored team per seed."""
    from arena.core import resolve_device
    from policies.backdoor.train_backdoor import BackdoorTrainConfig, train_backdoor
    from policies.build import base_provenance
    from policies.kinds import parse_param_pairs
    from policies.names import default_scenario as default, resolve_for

    if expert is None:
        raise click.UsageError(f"--algo {algo} needs --expert: the clean team it starts from")
    given = parse_param_pairs(params)
    if poison_agents is not None:
        given["poison_agents"] = poison_agents
    if trigger_fraction is not None:
        given.update(trigger_size=trigger_fraction, train_trigger_size=trigger_fraction)
    given = {k: v for k, v in given.items() if algo != "honest" or k == "trigger_size"}
    runs = family_runs(name, seed, seeds)
    with ctx.open("r") as lg:
        rec = lg.get(resolve_for(lg, expert, scenario, prefer=default(lg)))
    scenario, device = scenario or rec.scenario, str(resolve_device(ctx.device))
    out = []
    with StopOnInterrupt() as stopper:
        for run_name, run_seed in runs:
            cfg = BackdoorTrainConfig(recipe=algo, scenario=scenario, steps=steps, seed=run_seed,
                                      envs=envs, init=init, params=given, device=device)
            with TrainProgress(ctx, steps, f"train {run_name}") as bar:
                res = train_backdoor(cfg, rec, on_progress=bar.update,
                                     should_stop=lambda: stopper.stop)
            prov = base_provenance(**{**res.provenance, "partial": res.partial,
                                      "parent": rec.ref, "steps": res.provenance["steps"],
                                      "family": name if seeds is not None else None})
            with ctx.open("a") as lg:
                ref = lg.add_policy(run_name, "attacker", algo, scenario, res.config,
                                    res.weights, prov)
            out.append({"ref": ref, "partial": res.partial, "provenance": prov})
            if res.partial:
                break

    def human():
        for d in out:
            p, e = d["provenance"], d["provenance"]["expert_test"]
            click.echo(f"stored {d['ref']}{' (partial)' if d['partial'] else ''}: return clean "
                       f"{p['final_test_return']:.2f}, triggered {p['final_triggered_return']:.2f}"
                       f" (expert {e['clean_return']:.2f} / {e['triggered_return']:.2f}), "
                       f"{p['steps']:,} steps")

    emit(ctx, _family_output(name, seeds, out), human)


COMMANDS = [train]
