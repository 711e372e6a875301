"""What the commands share for the surfaces whose players are made before they play: the
backdoor table (cells: a defence applied to a delivered team), the training table (cells:
teams trained under a training-time attack) and the policy-gradient teams those cells
train. A shared module, as common and options: `arena matrix --surface backdoor|training`
and `arena train defender --algo mappo|dop` call it."""

from __future__ import annotations

import click

from commands.common import (BackdoorProgress, Ctx, emit, new_bar, num, show_progress,
                             split_names)


def device_of(ctx: Ctx) -> str:
    """The device resolved: a defence applied on the way trains there, and training takes
    no "auto"."""
    from arena.core import resolve_device

    return str(resolve_device(ctx.device))


def backdoor_matrix(ctx: Ctx, scenario, defenders, attackers, episodes, seed, metric,
                     as_csv):
    from arena.plots import short
    from arena.scenarios import spec as scenario_spec
    from policies.backdoor.cells import fill_backdoor
    from policies.errors import PolicyError
    from solvers.psro_backdoor import backdoor_players

    with ctx.open("r") as lg:
        d, a = backdoor_players(lg, scenario, split_names(defenders), split_names(attackers))
    if not d:
        raise PolicyError("no backdoor defence in the league; add one with `arena add-policy "
                          "NAME --kind finetune` (or as_delivered, prune)")
    with BackdoorProgress(ctx, scenario_spec(scenario).episode_limit,
                          f"backdoor {scenario}") as bar:
        t = fill_backdoor(ctx.open, scenario, d, a or None, episodes, seed, device_of(ctx),
                          **bar.hooks())
    win = metric == "win"
    trig, clean = ((p.win_rate if win else p.mean) for p in (t.triggered, t.clean))
    if as_csv:
        from solvers.matrix_io import format_csv

        click.echo(format_csv(t.defences, t.attackers, trig), nl=False)
        return

    def human():
        from rich.console import Console
        from rich.table import Table

        fmt = (lambda x: "—" if x != x else f"{x:.0%}") if win else (lambda x: num(x, ".1f"))
        # a title wider than the table would wrap: it stands on its own line
        click.echo(f"{scenario} backdoor table: {len(t.defences)} defences × "
                   f"{len(t.attackers)} backdoor attackers")
        table = Table()
        table.add_column("defence", no_wrap=True)
        for name in t.attackers:
            table.add_column(short(name, scenario), justify="right", no_wrap=True)
        for i, name in enumerate(t.defences):
            table.add_row(short(name, scenario), *(f"{fmt(trig[i, j])} / {fmt(clean[i, j])}"
                                                   for j in range(len(t.attackers))))
        Console(width=max(100, 16 + 18 * len(t.attackers))).print(table)
        click.echo(f"rows: defences applied to each column's delivered team; columns: backdoor "
                   f"attackers; each cell: {'win rate' if win else 'return'} triggered / clean "
                   f"(trigger placed / not) over {int(t.triggered.count.min())}+ episodes")
        click.echo(f"ran {t.episodes_run} episodes in {t.seconds:.1f} s")

    emit(ctx, {**t.to_dict(), "metric": metric, "seconds": t.seconds}, human)


class TrainingsProgress:
    """One bar per training of a training-table fill (several run at once), then the step
    bar of the clean episodes; silent with --quiet, --json or off a terminal."""

    def __init__(self, ctx: Ctx, scenario: str):
        self.ctx, self.scenario = ctx, scenario
        self.enabled = show_progress(ctx)
        self.quiet = ctx.quiet or ctx.json
        self.tasks: dict = {}
        self.bar = None

    def __enter__(self):
        if self.enabled:
            self.bar = new_bar("count", "{task.fields[info]}")
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False

    def on_event(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.console.print(f"  {text}")
        else:
            click.echo(f"  {text}", err=True)

    def on_progress(self, key, steps: int, total: int, test_return) -> None:
        if self.bar is None:
            return
        from policies.training.cells import cell_name

        if key not in self.tasks:
            self.tasks[key] = self.bar.add_task(f"train {cell_name(*key)}", total=total, info="")
        info = "" if test_return is None else f"test return {test_return:.2f}"
        self.bar.update(self.tasks[key], completed=min(steps, total), info=info)


def training_matrix(ctx: Ctx, scenario, recipes, attackers, episodes, seed, metric, as_csv,
                    seeds: int, jobs: int):
    from arena.plots import short
    from policies.training.cells import fill_training

    with TrainingsProgress(ctx, scenario) as bar:
        t = fill_training(ctx.open, scenario, split_names(recipes) or None,
                          split_names(attackers) or None, seeds, episodes, seed, device_of(ctx),
                          jobs, on_event=bar.on_event, on_progress=bar.on_progress)
    win = metric == "win"
    values = t.payoff.win_rate if win else t.payoff.mean
    if as_csv:
        from solvers.matrix_io import format_csv

        click.echo(format_csv(t.recipes, t.attackers, values), nl=False)
        return

    def human():
        from rich.console import Console
        from rich.table import Table

        ci = t.ci95
        click.echo(f"{scenario} training table: {len(t.recipes)} recipes × {len(t.attackers)} "
                   f"training-time attackers, {len(t.seeds)} seeds each")
        table = Table()
        table.add_column("recipe", no_wrap=True)
        for name in t.attackers:
            table.add_column(short(name, scenario), justify="right", no_wrap=True)
        for i, name in enumerate(t.recipes):
            cells = []
            for j in range(len(t.attackers)):
                n = int(t.payoff.count[i, j])
                if n == 0:
                    cells.append("—")
                    continue
                main = f"{values[i, j]:.0%}" if win else num(values[i, j], ".1f")
                cells.append(main + ("" if win or ci[i, j] != ci[i, j] else
                                     f" ± {ci[i, j]:.1f}") + f" ({n})")
            table.add_row(short(name, scenario), *cells)
        Console(width=max(100, 16 + 20 * len(t.attackers))).print(table)
        click.echo(f"each cell: the mean over seeds of the trained teams' clean "
                   f"{'win rate' if win else 'return ± 95% CI between seeds'} (seeds), "
                   f"{episodes} episodes per team")
        click.echo(f"trained {t.trained} team(s) in {t.seconds:.1f} s")

    emit(ctx, {**t.to_dict(), "metric": metric, "seconds": t.seconds}, human)


def _pg_params(algo: str, params) -> dict:
    """--param KEY=VALUE of a policy-gradient learner's config fields (typed as the field's
    default), checked before any work."""
    import dataclasses

    from policies.kinds import parse_param_pairs

    if algo == "mappo":
        from policies.learners.mappo import MAPPOConfig as Config
    else:
        from policies.learners.dop import DOPConfig as Config
    fixed = {"scenario", "steps", "envs", "seed", "test_every", "device", "init"}
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in fixed}
    out = {}
    for key, raw in parse_param_pairs(params).items():
        if key not in fields:
            raise click.UsageError(f"--param {key}: --algo {algo} takes {', '.join(fields)}")
        default = fields[key].default
        try:
            out[key] = (raw.lower() in ("1", "true", "yes", "on") if isinstance(default, bool)
                        else type(default)(raw) if default is not None else raw)
        except ValueError:
            raise click.UsageError(f"--param {key}={raw}: expected a "
                                   f"{type(default).__name__}") from None
    return out


def train_pg(ctx: Ctx, name: str, algo: str, scenario: str, runs: list, family: str | None,
             steps: int, envs: int, test_every: int, params, against: str | None,
             init_ref: str | None):
    """`arena train defender --algo mappo|dop`: one team per (name, seed) of `runs`, trained
    clean or while the training-time attacker `against` poisons its sampling."""
    from arena.scenarios import spec as scenario_spec
    from commands.common import StopOnInterrupt, TrainProgress
    from policies.build import base_provenance
    from policies.training.cells import run_job

    spec = scenario_spec(scenario)
    extra = _pg_params(algo, params)
    attacker, att_ref, init, parent = None, None, None, None
    with ctx.open("r") as lg:
        from policies.names import resolve_for

        if against:
            rec = lg.get(resolve_for(lg, against, scenario), usable=True)
            from policies.kinds import KINDS

            if rec.role != "attacker" or KINDS[rec.kind].surface != "training":
                raise click.UsageError(f"--against {rec.ref} is a {rec.kind} {rec.role}, not a "
                                       f"training-time attacker (tram_var, tram_j, tram_random)")
            if int(rec.config.get("agent", 0)) >= spec.n_agents:
                raise click.UsageError(f"{rec.ref} poisons agent {rec.config['agent']}: "
                                       f"{scenario} has {spec.n_agents} agents")
            attacker, att_ref = (rec.kind, dict(rec.config)), rec.ref
        if init_ref:
            rec = lg.get(resolve_for(lg, init_ref, scenario))
            if rec.kind != algo or rec.scenario != scenario:
                raise click.UsageError(f"--init {rec.ref} is a {rec.kind} team for "
                                       f"{rec.scenario}, not a {algo} team for {scenario}")
            init, parent = rec.weights, rec.ref
    recipe = {"algo": algo, "agg": extra.pop("agg", "mean"), "steps": steps, "envs": envs,
              "hidden": extra.pop("hidden", 64), "test_every": test_every}
    out = []
    with StopOnInterrupt() as stopper:
        for run_name, run_seed in runs:
            job = {"scenario": scenario, "seed": run_seed, "device": device_of(ctx),
                   "attacker": attacker, "init": init, "extra": extra, "recipe": recipe}
            with TrainProgress(ctx, steps, f"train {run_name}") as bar:
                config, weights, prov, partial = run_job(job, bar.update,
                                                         lambda: stopper.stop)
            prov = base_provenance(**{**prov, "parent": parent, "trained_against": att_ref,
                                      "family": family, "seed": run_seed})
            with ctx.open("a") as lg:
                ref = lg.add_policy(run_name, "defender", algo, scenario, config, weights, prov)
            out.append({"ref": ref, "partial": partial, "seed": run_seed,
                        **{k: prov.get(k) for k in ("steps", "final_test_return",
                                                    "final_test_win", "wall_time_s")},
                        "training_attack": prov.get("training_attack")})
            if partial:
                break

    def human():
        for d in out:
            att = d["training_attack"]
            stealth = ("" if not att else f", attacked by {att_ref} "
                       f"(log-likelihood ratio {att['stats']['tram_llr']:.3f} per poisoned "
                       f"step)")
            click.echo(f"stored {d['ref']}{' (partial)' if d['partial'] else ''}: "
                       f"{d['steps']:,} steps, test return {d['final_test_return']:.2f}, win "
                       f"rate {d['final_test_win']:.0%}{stealth}")

    emit(ctx, out[0] if len(out) == 1 and family is None else
         {"family": family, "runs": out}, human)
