"""Solving the table (meta-solvers) and growing the league with PSRO; PSRO runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands.common import Ctx, emit, json_option, split_names, default_scenario, print_solution


def _league_game(ctx: Ctx, scenario: str | None, metric: str):
    from policies.evaluate import default_players
    from solvers.tables import game_from_table

    scenario = scenario or default_scenario(ctx)
    with ctx.open("r") as lg:
        defenders, attackers = default_players(lg, scenario)
        table = lg.payoff(scenario, defenders, attackers)
    return scenario, game_from_table(table, metric)


@click.command()
@click.option("--scenario", help="Default: the scenario with the most defenders.")
@click.option("--method", default="lp", show_default=True,
              type=click.Choice(["lp", "rd", "alpharank", "uniform"]))
@click.option("--metric", type=click.Choice(["return", "win"]), default="return", show_default=True)
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Solve this CSV instead (header = attackers, first column = defenders).")
@click.option("--bootstrap", "n_boot", default=0, show_default=True,
              help="Bootstrap resamples of the cell means for intervals (0 = none).")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@json_option
@click.pass_obj
def solve(ctx: Ctx, scenario, method, metric, matrix_file, n_boot, seed):
    """Solve the payoff table: each side's mixture, the value and the exploitability.

    The game is zero-sum: the defender maximises the team return (or win rate), the attacker
    minimises it.

    \b
    Examples:
      arena solve --method lp --bootstrap 200
      arena solve --method alpharank --metric win
      arena solve --matrix table.csv --json
    """
    from solvers.meta import solve as run_solver
    from solvers.tables import Game, worst_attack

    if matrix_file:
        from solvers.matrix_io import read_csv

        defenders, attackers, M = read_csv(matrix_file)
        game, source = Game(defenders, attackers, M), str(matrix_file)
        if n_boot:
            raise click.UsageError("--bootstrap needs the league's per-cell statistics, not a CSV")
    else:
        scenario, game = _league_game(ctx, scenario, metric)
        source = f"{ctx.league} ({scenario}, {metric})"
    sol = run_solver(game.M, method)
    j, worst = worst_attack(game, sol.defender)
    data = {"source": source, "defenders": game.defenders, "attackers": game.attackers,
            **sol.to_dict(), "worst_attack": game.attackers[j], "worst_attack_value": worst}
    boot = None
    if n_boot:
        from solvers.bootstrap import bootstrap

        boot = bootstrap(game.M, game.std, game.count, method=method, n=n_boot, seed=seed)
        data["bootstrap"] = {"n": n_boot, "value": [boot.value_lo, boot.value_hi],
                             "defender": [boot.defender_lo.tolist(), boot.defender_hi.tolist()],
                             "attacker": [boot.attacker_lo.tolist(), boot.attacker_hi.tolist()]}

    def human():
        print_solution(game, sol, boot, source, scenario)
        click.echo(f"most dangerous attack against this defender mixture: {game.attackers[j]} "
                   f"(leaves {worst:.3f})")

    emit(ctx, data, human)


@click.command()
@click.option("--scenario", help="Default: the scenario with the most defenders.")
@click.option("--defenders", multiple=True, help="Starting defenders (comma-separated).")
@click.option("--attackers", multiple=True, help="Starting attackers (comma-separated).")
@click.option("--iterations", default=3, show_default=True)
@click.option("--attacker-oracle", type=click.Choice(["atla", "pa_ad"]), default="pa_ad",
              show_default=True)
@click.option("--defender-oracle", type=click.Choice(["fgsm", "mixture"]), default="fgsm",
              show_default=True, help="fgsm: FGSM adversarial training; mixture: train "
              "against the attacker meta-strategy.")
@click.option("--meta", type=click.Choice(["lp", "rd", "alpharank", "uniform"]), default="lp",
              show_default=True)
@click.option("--episodes", default=32, show_default=True, help="Episodes per cell.")
@click.option("--steps-per-oracle", default=50_000, show_default=True)
@click.option("--eps", default=0.2, show_default=True)
@click.option("--tol", default=0.0, show_default=True, help="Stop when both gains are below it.")
@click.option("--seed", default=0, show_default=True)
@click.option("--name", "run_name", help="Run id (default: psro<N>).")
@click.option("--resume", "resume_run", help="Resume this run from its last iteration.")
@json_option
@click.pass_obj
def psro(ctx: Ctx, scenario, defenders, attackers, iterations, attacker_oracle, defender_oracle,
         meta, episodes, steps_per_oracle, eps, tol, seed, run_name, resume_run):
    """Grow the league towards equilibrium with best-response attackers and defenders.

    Each iteration solves the table, trains an attacker against the defender mixture and a
    defender against the attacker mixture, adds both and fills only the new row and column.
    The final meta-strategies are stored as mixture policies RUN_def and RUN_att.
    With --iterations 0 it is a single match table solved once.

    \b
    Examples:
      arena psro --scenario 3m --defenders qmix --attackers fgsm --iterations 3
      arena psro --resume psro1
    """
    from arena.core import resolve_device
    from solvers.psro_league import LeaguePSROConfig, run_league_psro

    device = str(resolve_device(ctx.device))
    if resume_run:
        cfg = LeaguePSROConfig(scenario="", defenders=["-"], attackers=["-"])
    else:
        scenario = scenario or default_scenario(ctx)
        cfg = LeaguePSROConfig(scenario=scenario, defenders=split_names(defenders),
                               attackers=split_names(attackers) or ["none"], iterations=iterations,
                               attacker_oracle=attacker_oracle, defender_oracle=defender_oracle,
                               meta=meta, episodes=episodes, steps_per_oracle=steps_per_oracle,
                               eps=eps, tol=tol, seed=seed, device=device)
        if not cfg.defenders:
            raise click.UsageError("give the starting defenders with --defenders")

    def event(msg):
        if not (ctx.quiet or ctx.json):
            click.echo(f"  {msg}", err=True)

    def show(it):
        if not (ctx.quiet or ctx.json):
            click.echo(_iteration_line(it.__dict__))

    if not resume_run and not run_name:
        with ctx.open("r") as lg:
            taken = {r.run_id for r in lg.runs()}
        run_name = next(f"psro{k}" for k in range(1, len(taken) + 2) if f"psro{k}" not in taken)
    run_id, its, refs = run_league_psro(ctx.open, cfg, resume_run or run_name,
                                        resume=bool(resume_run), on_event=event,
                                        on_iteration=show)
    data = {"run": run_id, "iterations": [it.__dict__ for it in its],
            "defender_mixture": refs[0], "attacker_mixture": refs[1]}
    emit(ctx, data, lambda: click.echo(
        f"run {run_id}: value {its[-1].value:.3f}; mixtures stored as {refs[0]} and {refs[1]}"))


def _iteration_line(it: dict) -> str:
    gains = ""
    if it.get("gain_attacker") is not None:
        gains = (f"  exploitability {it['gain_attacker'] + it['gain_defender']:+.3f} (gain att "
                 f"{it['gain_attacker']:+.3f}, def {it['gain_defender']:+.3f})  added "
                 f"{it['new_attacker']}, {it['new_defender']}")
    return (f"iteration {it['iteration']}: {len(it['defenders'])}×{len(it['attackers'])}  "
            f"value {it['value']:.3f}{gains}")


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def runs(cctx):
    """List PSRO runs (`arena runs show RUN` for one).

    \b
    Examples:
      arena runs --json
      arena runs show psro1 --plot psro1.png
    """
    if cctx.invoked_subcommand is not None:
        return
    ctx: Ctx = cctx.obj
    with ctx.open("r") as lg:
        rows = [{"run": r.run_id, "created": r.created, "iterations": len(r.iterations),
                 "scenario": r.config.get("psro", {}).get("scenario"),
                 "value": r.iterations[-1]["value"] if r.iterations else None}
                for r in lg.runs()]

    def human():
        for r in rows:
            value = "—" if r["value"] is None else f"{r['value']:.3f}"
            click.echo(f"{r['run']:12} {r['scenario'] or '-':8} iterations {r['iterations']:3}  "
                       f"value {value}  {r['created'][:19]}")

    emit(ctx, rows, human)


@runs.command("show")
@click.argument("run_id")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw value and exploitability per iteration.")
@json_option
@click.pass_obj
def runs_show(ctx: Ctx, run_id, plot):
    """One PSRO run: its config and every iteration."""
    with ctx.open("r") as lg:
        run = lg.get_run(run_id)
    its = run.iterations
    if plot:
        from arena.plots import curves

        done = [i for i in its if i.get("gain_attacker") is not None]
        curves([i["iteration"] for i in done],
               {"value": [i["value"] for i in done],
                "exploitability (best-response gains)":
                    [i["gain_attacker"] + i["gain_defender"] for i in done]},
               plot, f"PSRO {run_id}", "iteration")
    data = {"run": run.run_id, "config": run.config, "iterations": its}

    def human():
        click.echo(f"run {run.run_id}: " + json.dumps(run.config.get("psro", run.config)))
        for it in its:
            click.echo(_iteration_line(it))
        if plot:
            click.echo(f"plot written to {plot}")

    emit(ctx, data, human)


COMMANDS = [solve, psro, runs]
