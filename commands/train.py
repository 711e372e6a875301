"""Training defenders and attackers; each run is stored as a new league version."""

from __future__ import annotations


import click

from commands.common import Ctx, emit, json_option, TrainProgress, StopOnInterrupt, default_scenario


@click.group()
def train():
    """Train defenders and attackers; each run is stored as a new league version."""


@train.command("defender")
@click.argument("name")
@click.option("--algo", type=click.Choice(["qmix", "vdn"]), default="qmix", show_default=True)
@click.option("--scenario", required=True)
@click.option("--steps", default=200_000, show_default=True, help="Environment steps.")
@click.option("--envs", default=8, show_default=True, help="Parallel episodes per collection.")
@click.option("--seed", default=0, show_default=True)
@click.option("--adv", type=click.Choice(["fgsm", "atla", "pa_ad"]),
              help="Robust training: FGSM perturbations, or alternating with a learned adversary.")
@click.option("--rounds", default=2, show_default=True, help="Alternation rounds (--adv atla|pa_ad).")
@click.option("--attacker-steps", default=30_000, show_default=True,
              help="Adversary training steps per round (--adv atla|pa_ad).")
@click.option("--eps", "adv_eps", default=0.2, show_default=True, help="ε of --adv / --reg.")
@click.option("--reg", type=click.Choice(["policy"]), help="Policy regularisation (hinge).")
@click.option("--kappa", default=0.1, show_default=True, help="Regulariser weight (2nd half).")
@click.option("--hinge", "hinge_c", default=10.0, show_default=True, help="Hinge floor c.")
@click.option("--init", "init_ref", help="Start from this stored defender's weights.")
@click.option("--test-every", default=10_000, show_default=True)
@json_option
@click.pass_obj
def train_defender_cmd(ctx: Ctx, name, algo, scenario, steps, envs, seed, adv, rounds,
                       attacker_steps, adv_eps, reg, kappa, hinge_c, init_ref, test_every):
    """Train a QMIX or VDN team and store it as NAME (a new version).

    \b
    Examples:
      arena train defender qmix --algo qmix --scenario 3m --steps 200000
      arena train defender qmix_fgsm --scenario 3m --adv fgsm --eps 0.2
      arena train defender qmix_reg --scenario 3m --reg policy --init qmix
      arena train defender qmix_paad --scenario 3m --adv pa_ad --init qmix --rounds 2
    """
    from arena.core import resolve_device
    from arena.scenarios import spec as scenario_spec
    from policies.build import base_provenance
    from policies.learners.train_defender import DefenderTrainConfig, train_defender

    scenario_spec(scenario)  # unknown scenario: one line before any work
    init, parent = None, None
    if init_ref:
        from policies.names import resolve_for

        with ctx.open("r") as lg:
            rec = lg.get(resolve_for(lg, init_ref, scenario))
        if rec.kind not in ("qmix", "vdn") or rec.scenario != scenario:
            raise click.UsageError(f"--init {rec.ref} is a {rec.kind} team for {rec.scenario}, "
                                   f"not a qmix/vdn team for {scenario}")
        init, parent = rec.weights, rec.ref
    elif reg:
        click.echo("note: the regulariser is meant to start from a trained clean model (--init)",
                   err=True)
    learned_adv = adv in ("atla", "pa_ad")
    cfg = DefenderTrainConfig(algo=algo, scenario=scenario, steps=steps, envs=envs, seed=seed,
                              adv=None if learned_adv else adv, adv_eps=adv_eps, reg=reg,
                              kappa=kappa, hinge_c=hinge_c, init=init, test_every=test_every,
                              device=str(resolve_device(ctx.device)))
    with StopOnInterrupt() as stopper, TrainProgress(ctx, steps, f"train {name}") as bar:
        if learned_adv:
            from policies.observation.adversarial_training import train_robust_defender

            result = train_robust_defender(cfg, adv, rounds, attacker_steps, bar.update,
                                           lambda: stopper.stop)
        else:
            result = train_defender(cfg, on_progress=bar.update, should_stop=lambda: stopper.stop)
    prov = base_provenance(**{**result.provenance, "parent": parent, "partial": result.partial,
                              "trained_against": f"{adv} eps={adv_eps}" if adv else None})
    with ctx.open("a") as lg:
        ref = lg.add_policy(name, "defender", algo, scenario, result.config, result.weights, prov)
    data = {"ref": ref, "partial": result.partial,
            **{k: prov.get(k) for k in ("steps", "final_test_return", "final_test_win", "wall_time_s")}}

    def human():
        tag = " (partial)" if result.partial else ""
        click.echo(f"stored {ref}{tag}: {prov.get('steps', 0):,} steps, "
                   f"test return {prov.get('final_test_return', float('nan')):.2f}, "
                   f"win rate {prov.get('final_test_win', float('nan')):.0%}")

    emit(ctx, data, human)


@train.command("attacker")
@click.argument("name")
@click.option("--algo", type=click.Choice(["atla", "pa_ad"]), default="pa_ad", show_default=True)
@click.option("--against", "against", required=True, help="The defender (or mixture) to attack.")
@click.option("--scenario", help="Default: the defender's scenario.")
@click.option("--eps", default=0.2, show_default=True)
@click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True)
@click.option("--steps", default=100_000, show_default=True)
@click.option("--envs", default=32, show_default=True)
@click.option("--seed", default=0, show_default=True)
@json_option
@click.pass_obj
def train_attacker_cmd(ctx: Ctx, name, algo, against, scenario, eps, norm, steps, envs, seed):
    """Train a learned observation attacker against a fixed defender; store it as NAME.

    \b
    Examples:
      arena train attacker pa_ad --algo pa_ad --against qmix --eps 0.2
      arena train attacker atla --algo atla --against qmix_fgsm --steps 200000
    """
    from arena.core import resolve_device
    from policies.build import base_provenance
    from policies.lineup import check_role, members_of
    from policies.observation.train_attacker import AttackerTrainConfig, train_attacker

    from policies.names import default_scenario, resolve_for

    with ctx.open("r") as lg:
        info = lg.info(resolve_for(lg, against, scenario or default_scenario(lg)))
        check_role(info, "defender")
        members = members_of(info)
        recs = [(lg.get(r), w) for r, w in members]
    scenario = scenario or info.scenario
    cfg = AttackerTrainConfig(algo=algo, scenario=scenario, steps=steps, envs=envs, seed=seed,
                              eps=eps, norm=norm, device=str(resolve_device(ctx.device)),
                              trained_against={r.ref: w for r, w in recs})
    with StopOnInterrupt() as stopper, TrainProgress(ctx, steps, f"train {name}") as bar:
        res = train_attacker(cfg, [(r.config, r.weights) for r, _ in recs], [w for _, w in recs],
                             on_progress=bar.update, should_stop=lambda: stopper.stop)
    prov = base_provenance(**{**res.provenance, "partial": res.partial,
                              "trained_against": info.ref})
    with ctx.open("a") as lg:
        ref = lg.add_policy(name, "attacker", algo, scenario, res.config, res.weights, prov)
    data = {"ref": ref, "partial": res.partial, "provenance": prov}
    emit(ctx, data, lambda: click.echo(
        f"stored {ref}{' (partial)' if res.partial else ''}: " + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in prov.items() if k.startswith(("victim_", "final_")))))


COMMANDS = [train]
