"""Playing: one match, the payoff table, and the demo."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import (
    Ctx, StepProgress, default_scenario, emit, json_option, print_solution, print_table,
    split_names, summary,
)


@click.command()
@click.argument("defender")
@click.argument("vs", metavar="vs")
@click.argument("attacker")
@click.option("--scenario", help="Default: the scenario the policies were made for.")
@click.option("--episodes", default=32, show_default=True)
@click.option("--seed", type=int, help="Default: continue the cell's episode sequence.")
@json_option
@click.pass_obj
def play(ctx: Ctx, defender, vs, attacker, scenario, episodes, seed):
    """Play DEFENDER vs ATTACKER for a batch of episodes and record the match.

    \b
    Examples:
      arena play qmix_fgsm vs pa_ad
      arena play qmix vs fgsm --episodes 128 --seed 0 --json
    """
    from arena.scenarios import spec as scenario_spec
    from policies.evaluate import play_match

    if vs.lower() != "vs":
        raise click.UsageError("write: arena play DEFENDER vs ATTACKER")
    limit = scenario_spec(scenario).episode_limit if scenario else 200
    with StepProgress(ctx, limit, f"{defender} vs {attacker}") as bar:
        bar.episodes = episodes
        rec, seconds = play_match(ctx.open, defender, attacker, scenario, episodes, seed,
                                  ctx.device, on_step=bar.callback)
    data = {"defender": rec.defender, "attacker": rec.attacker, "scenario": rec.scenario,
            "seed": rec.seed, "device": rec.device, "seconds": seconds,
            **summary(rec.returns, rec.wins, rec.attack_cost)}

    def human():
        click.echo(f"{rec.defender} vs {rec.attacker} on {rec.scenario}: {data['episodes']} "
                   f"episodes (seed {rec.seed}, {rec.device}, {seconds:.1f} s)")
        click.echo(f"  win rate      {data['win_rate']:.1%}")
        click.echo(f"  return        {data['return_mean']:.2f} ± {data['return_std']:.2f}  "
                   f"(95% CI ± {data['return_ci95']:.2f})")
        click.echo(f"  perturbation  {data['attack_cost']:.3f} (mean norm per attacked step)")

    emit(ctx, data, human)


@click.command()
@click.option("--scenario", help="Default: the scenario with the most defenders.")
@click.option("--defenders", multiple=True, help="Comma-separated refs (default: all).")
@click.option("--attackers", multiple=True, help="Comma-separated refs (default: all).")
@click.option("--episodes", default=32, show_default=True, help="Episodes per cell.")
@click.option("--seed", default=0, show_default=True)
@click.option("--metric", type=click.Choice(["win", "return"]), default="win", show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="Print the metric as CSV (for `arena solve --matrix`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a heatmap PNG.")
@json_option
@click.pass_obj
def matrix(ctx: Ctx, scenario, defenders, attackers, episodes, seed, metric, as_csv, plot):
    """Fill the missing cells of the payoff table in one batch and print it.

    Rows are defenders, the first column is no attack; each cell shows the win rate and the
    return ± std. Cells that already hold enough episodes are not run again.

    \b
    Examples:
      arena matrix --scenario 3m
      arena matrix --defenders qmix,qmix_fgsm --attackers none,fgsm,pgd --episodes 64
      arena matrix --metric return --csv > table.csv
    """
    from arena.scenarios import spec as scenario_spec
    from policies.evaluate import fill

    scenario = scenario or default_scenario(ctx)
    limit = scenario_spec(scenario).episode_limit
    with StepProgress(ctx, limit, f"matrix {scenario}") as bar:
        res = fill(ctx.open, scenario, split_names(defenders), split_names(attackers), episodes, seed,
                   ctx.device, on_step=bar.callback, on_plan=bar.set_episodes)
    t = res.table
    values = t.win_rate if metric == "win" else t.mean
    data = {**t.to_dict(), "metric": metric, "episodes_run": res.episodes_run,
            "cells_run": len(res.cells), "seconds": res.seconds}
    if plot:
        from arena.plots import payoff_heatmap

        annot = [[f"{t.win_rate[i, j]:.0%}\n{t.mean[i, j]:.1f}±{t.std[i, j]:.1f}"
                  for j in range(len(t.attackers))] for i in range(len(t.defenders))]
        payoff_heatmap(values, t.defenders, t.attackers, plot,
                       f"{scenario}: {'win rate' if metric == 'win' else 'team return'}",
                       "win rate" if metric == "win" else "return", annot)
        data["plot"] = str(plot)
    if as_csv:
        from solvers.matrix_io import format_csv

        click.echo(format_csv(list(t.defenders), list(t.attackers), values), nl=False)
        return

    def human():
        print_table(t, metric, f"{scenario}: {len(t.defenders)} defenders × "
                     f"{len(t.attackers)} attackers", res)
        if plot:
            click.echo(f"heatmap written to {plot}")

    emit(ctx, data, human)


@click.command()
@click.option("--scenario", default="3m", show_default=True)
@click.option("--episodes", default=32, show_default=True, help="Episodes per cell.")
@click.option("--bootstrap", "n_boot", default=200, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              default="demo_heatmap.png", show_default=True)
@click.pass_obj
def demo(ctx: Ctx, scenario, episodes, n_boot, plot):
    """The arena in one command: table, Nash mixtures and the most dangerous attack.

    Uses the league (./league.h5 by default), created from the shipped starter league when
    absent; fills the missing cells of the cross-attack table in one batched rollout, solves
    it and writes a heatmap.

    \b
    Example:
      arena demo
    """
    import time

    from arena.plots import payoff_heatmap, short
    from arena.scenarios import spec as scenario_spec
    from policies.evaluate import default_players, fill
    from solvers.bootstrap import bootstrap
    from solvers.meta import solve as run_solver
    from solvers.tables import game_from_table, worst_attack
    from store.starter import copy_starter_league

    start = time.perf_counter()
    if not ctx.league.exists():
        copy_starter_league(ctx.league)
        click.echo(f"created {ctx.league} from the starter league")
    limit = scenario_spec(scenario).episode_limit
    with ctx.open("r") as lg:
        defenders, attackers = default_players(lg, scenario)
    with StepProgress(ctx, limit, f"cross-attack table on {scenario}") as bar:
        res = fill(ctx.open, scenario, defenders, attackers, episodes, 0, ctx.device,
                   on_step=bar.callback, on_plan=bar.set_episodes)
    t = res.table
    print_table(t, "win", f"{scenario}: win rate  return±std  ({int(t.count.min())}+ episodes "
                 f"per cell; rows defenders, columns attackers)", res)
    game = game_from_table(t, "return")
    sol = run_solver(game.M, "lp")
    boot = bootstrap(game.M, game.std, game.count, method="lp", n=n_boot, seed=0) if n_boot else None
    print_solution(game, sol, boot, f"the {scenario} table (team return)", scenario)
    col = sol.defender @ game.M
    j, worst = worst_attack(game, sol.defender)
    single = game.M.min(axis=1)
    best = int(single.argmax())
    click.echo(f"most dangerous attack: {short(game.attackers[j], scenario)} (the Nash defender "
               f"mixture keeps {worst:.2f}; attacks ranked: " + ", ".join(
                   f"{short(game.attackers[k], scenario)} {col[k]:.2f}"
                   for k in col.argsort()[:4]) + ")")
    click.echo(f"best single defender in the worst case: {short(game.defenders[best], scenario)} "
               f"({single[best]:.2f}); Nash mixture's worst case: {worst:.2f}")
    annot = [[f"{t.win_rate[i, k]:.0%}\n{t.mean[i, k]:.1f}" for k in range(len(t.attackers))]
             for i in range(len(t.defenders))]
    payoff_heatmap(t.win_rate, t.defenders, t.attackers, plot, f"{scenario}: win rate (return)",
                   "win rate", annot)
    click.echo(f"heatmap written to {plot}   ({time.perf_counter() - start:.0f} s in all)")
    click.echo("\nnext, try:\n  arena play qmix_fgsm vs pa_ad\n  arena solve --method alpharank\n"
               f"  arena psro --scenario {scenario} --defenders qmix --attackers none,fgsm "
               "--iterations 2 --steps-per-oracle 20000")


COMMANDS = [play, matrix, demo]
