"""Playing: one match, the payoff table, and the demo."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import (
    BackdoorProgress, Ctx, StepProgress, default_scenario, emit, heatmap_eps, json_option, num,
    print_solution, print_table, split_names, summary,
)
from commands.options import (EPISODES, SEED, check_memory, ray_option, scenario_name,
                              writable_file)
from commands.surfaces import backdoor_matrix, device_of, training_matrix

@click.command()
@click.argument("defender")
@click.argument("vs", metavar="vs")
@click.argument("attacker")
@click.option("--scenario", callback=scenario_name,
              help="Default: the scenario the policies were made for.")
@click.option("--episodes", type=EPISODES, default=32, show_default=True)
@click.option("--seed", type=SEED, help="Default: continue the cell's episode sequence. A seed "
              "whose episodes are already recorded replays them without recording them again.")
@json_option
@click.pass_obj
def play(ctx: Ctx, defender, vs, attacker, scenario, episodes, seed):
    """Play DEFENDER vs ATTACKER for a batch of episodes and record the match.

    A backdoor defence (as_delivered, finetune, prune) against a backdoor attacker plays the
    cell of the backdoor table: the defence applied to the attacker's delivered team (once),
    filled up to --episodes with the trigger placed and without it.

    \b
    Examples:
      arena play qmix_fgsm vs pa_ad
      arena play qmix vs fgsm --episodes 128 --seed 0 --json
      arena play finetune1 vs marnet1 --scenario stag10   # one backdoor cell
    """
    from arena.scenarios import spec as scenario_spec
    from policies.evaluate import play_and_record

    if vs.lower() != "vs":
        raise click.UsageError("write: arena play DEFENDER vs ATTACKER")
    if scenario:
        check_memory(scenario, episodes, ctx.device)
    cell = _backdoor_pair(ctx, defender, attacker, scenario)
    if cell is not None:
        return _play_backdoor(ctx, *cell, episodes, seed)
    limit = scenario_spec(scenario).episode_limit if scenario else 200
    with StepProgress(ctx, limit, f"{defender} vs {attacker}") as bar:
        bar.episodes = episodes
        res = play_and_record(ctx.open, defender, attacker, scenario, episodes, seed,
                              ctx.device, on_step=bar.callback)
    rec, seconds = res.record, res.seconds
    hijacks = _on_agents(ctx, rec.attacker)
    data = {"defender": rec.defender, "attacker": rec.attacker, "scenario": rec.scenario,
            "seed": rec.seed, "device": rec.device, "seconds": seconds, "recorded": res.recorded,
            **summary(rec.returns, rec.wins, rec.attack_cost)}

    def human():
        click.echo(f"{rec.defender} vs {rec.attacker} on {rec.scenario}: {data['episodes']} "
                   f"episodes (seed {rec.seed}, {rec.device}, {seconds:.1f} s)"
                   + ("" if res.recorded else "; a replay of recorded episodes, not recorded again"))
        click.echo(f"  win rate      {data['win_rate']:.1%}")
        click.echo(f"  return        {data['return_mean']:.2f} ± {data['return_std']:.2f}  "
                   f"(95% CI ± {data['return_ci95']:.2f})")
        if hijacks:
            click.echo(f"  hijacked      {data['attack_cost']:.1f} agent(s) per episode")
        else:
            click.echo(f"  perturbation  {data['attack_cost']:.3f} (mean norm per attacked step)")

    emit(ctx, data, human)


def _on_agents(ctx: Ctx, ref: str) -> bool:
    """Whether the attacker hijacks teammates (its cost is a count of agents, not a norm)."""
    from policies.surfaces import attacker_surface
    from store import NO_ATTACK

    if ref == NO_ATTACK:
        return False
    with ctx.open("r") as lg:
        return attacker_surface(lg, lg.info(ref)) == "agent"


def _backdoor_pair(ctx: Ctx, defender: str, attacker: str, scenario):
    """(defence ref, backdoor attacker ref, scenario) when the match is a backdoor cell, None
    when it is an ordinary match (a team against a backdoor attacker is one: its episodes
    have the trigger placed); a backdoor defence against anything else is an error."""
    from policies.backdoor import BACKDOOR_ATTACKS, DEFENCES
    from policies.errors import PolicyError
    from policies.names import default_scenario as league_scenario
    from policies.names import resolve_for
    from store import NO_ATTACK

    with ctx.open("r") as lg:
        d_info = lg.info(resolve_for(lg, defender, scenario, prefer=league_scenario(lg)))
        a_ref = resolve_for(lg, attacker, scenario)
        a_info = None if a_ref == NO_ATTACK else lg.info(a_ref)
    if a_info is not None and a_info.kind in DEFENCES:
        raise PolicyError(f"{a_info.ref} is a backdoor defence, not an attacker: write `arena "
                          f"play {a_info.name} vs BACKDOOR_ATTACKER`")
    if d_info.kind not in DEFENCES:
        return None
    if a_info is None or a_info.kind not in BACKDOOR_ATTACKS:
        what = "no attack" if a_info is None else f"a {a_info.kind} {a_info.role}"
        raise PolicyError(f"{d_info.ref} is a backdoor defence ({', '.join(DEFENCES)}): it "
                          f"plays a backdoor attacker ({', '.join(BACKDOOR_ATTACKS)}), not "
                          f"{attacker} ({what})")
    return d_info.ref, a_info.ref, scenario or a_info.scenario


def _play_backdoor(ctx: Ctx, defence: str, attacker: str, scenario: str, episodes: int, seed):
    from arena.scenarios import spec as scenario_spec
    from policies.backdoor.cells import fill_backdoor

    label = f"{defence} vs {attacker}"
    with BackdoorProgress(ctx, scenario_spec(scenario).episode_limit, label) as bar:
        t = fill_backdoor(ctx.open, scenario, [defence], [attacker], episodes,
                          0 if seed is None else seed, device_of(ctx), **bar.hooks())
    sides = {k: {"episodes": int(p.count[0, 0]), "return_mean": float(p.mean[0, 0]),
                 "return_std": float(p.std[0, 0]), "win_rate": float(p.win_rate[0, 0])}
             for k, p in (("triggered", t.triggered), ("clean", t.clean))}
    data = {"defence": defence, "attacker": attacker, "scenario": scenario,
            "team": t.teams[0][0], **sides, "episodes_run": t.episodes_run,
            "seconds": t.seconds}

    def human():
        ran = (f"{t.episodes_run} played now ({t.seconds:.1f} s)" if t.episodes_run
               else "already filled, nothing played")
        click.echo(f"{defence} vs {attacker} on {scenario}, cell team {t.teams[0][0]}: {ran}")
        for k, v in sides.items():
            click.echo(f"  {k:9}  return {num(v['return_mean'], '.2f')} ± "
                       f"{v['return_std']:.2f}  win rate {v['win_rate']:.1%}  "
                       f"({v['episodes']} episodes)")

    emit(ctx, data, human)


@click.command()
@click.option("--scenario", callback=scenario_name,
              help="Default: the scenario with the most defenders.")
@click.option("--defenders", multiple=True, help="Comma-separated refs (default: all).")
@click.option("--attackers", multiple=True, help="Comma-separated refs (default: all).")
@click.option("--episodes", type=EPISODES, default=32, show_default=True, help="Episodes per cell.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--metric", type=click.Choice(["return", "win"]), default="return", show_default=True,
              help="What the heatmap and --csv show: the team return (the game's utility) "
                   "or the win rate.")
@click.option("--format", "fmt", type=click.Choice(["csv", "markdown", "latex"]),
              help="Export every cell: mean, std, 95% CI half-width, episodes, win rate.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print the metric's means as a CSV matrix (for `arena solve --matrix`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), callback=writable_file,
              help="Write a heatmap PNG.")
@click.option("--adaptive", "adaptive", metavar="ALGOS",
              help="Comma-separated learned attackers (atla, pa_ad) to train (or reuse) against "
                   "each row's defender; shown as one column per algorithm, e.g. `atla*`.")
@click.option("--adaptive-steps", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Training steps of each adaptive attacker.")
@click.option("--adaptive-eps", type=click.FloatRange(0.0, 1.0), default=0.2, show_default=True,
              help="ε of the adaptive attackers.")
@click.option("--surface", type=click.Choice(["observation", "message", "backdoor", "agent",
                                              "training"]),
              default="observation", show_default=True,
              help="The game the default players come from: observation attackers against every "
                   "defender, message attackers against communicating teams, backdoor "
                   "attackers against backdoor defences (each cell: triggered / clean), or "
                   "training-time attackers against learner recipes (each cell: teams trained "
                   "under the attack, --seeds of them).")
@click.option("--seeds", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="--surface training: trained teams per cell (seeds 0..N-1).")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="--surface training: trainings run at once, in separate processes.")
@click.option("--by-seed", is_flag=True,
              help="Show each training seed of a family as its own row or column (default: one "
                   "per family, the mean of the seeds' means with a between-seed 95% CI).")
@ray_option
@json_option
@click.pass_obj
def matrix(ctx: Ctx, scenario, defenders, attackers, episodes, seed, metric, fmt, as_csv, plot,
           adaptive, adaptive_steps, adaptive_eps, surface, seeds, jobs, by_seed):
    """Fill the missing cells of the payoff table in one batch and print it.

    Rows are defenders, the first column is no attack; each cell shows the win rate and the
    return ± std. Cells that already hold enough episodes are not run again.

    \b
    Examples:
      arena matrix --scenario 3m
      arena matrix --defenders qmix,qmix_fgsm --attackers none,fgsm,pgd --episodes 64
      arena matrix --csv > table.csv                  # then: arena solve --matrix table.csv
      arena matrix --format latex > table.tex
      arena matrix --adaptive atla,pa_ad            # atla*: ATLA trained against each row
      arena matrix --scenario pp7 --surface message # message attackers vs commnet teams
      arena matrix --scenario stag10 --surface backdoor  # defences × backdoors
      arena matrix --scenario 3m --surface agent    # teams × hijacked teammates
      arena matrix --scenario spread --surface training --seeds 5 --jobs 2
      arena matrix --scenario 3m --ray auto           # cells split over a local Ray
      arena matrix --scenario 3m --ray head:6379      # ... or over a cluster's nodes

    \b
    `atla` is the stored attacker trained against one defender (a transfer attack for the other
    rows); `atla*` is the attacker trained against the row's own defender (stored once as
    atla_vs_<defender>, reused afterwards). `arena solve` reads the league, where adaptive
    attackers are no default column; a table exported with them (--csv) makes `atla*` one
    column whose strategy depends on the row, which a solver treats as one attacker.
    """
    from arena.scenarios import spec as scenario_spec
    from policies.evaluate import fill
    from solvers.tables import by_family, family_map

    scenario = scenario or default_scenario(ctx)
    limit = scenario_spec(scenario).episode_limit
    adaptive_set = None
    if adaptive and surface != "observation":
        raise click.UsageError(f"--adaptive trains observation attackers; drop --surface "
                               f"{surface}")
    if surface == "backdoor":
        from policies.distributed import active

        if active():
            raise click.UsageError("--ray is not available with --surface backdoor")
        for given, name in ((fmt, "--format"), (plot, "--plot"), (by_seed, "--by-seed")):
            if given:
                raise click.UsageError(f"{name} is not available with --surface backdoor")
        return backdoor_matrix(ctx, scenario, defenders, attackers, episodes, seed, metric,
                               as_csv)
    if surface == "training":
        for given, name in ((fmt, "--format"), (plot, "--plot"), (by_seed, "--by-seed")):
            if given:
                raise click.UsageError(f"{name} is not available with --surface training")
        return training_matrix(ctx, scenario, defenders, attackers, episodes, seed, metric,
                               as_csv, seeds, jobs)
    if adaptive:
        from policies.observation.adaptive import parse_algos

        res, adaptive_set = _fill_adaptive_cli(ctx, parse_algos(adaptive), scenario, defenders,
                                               attackers, episodes, seed, limit, adaptive_steps,
                                               adaptive_eps)
    else:
        with StepProgress(ctx, limit, f"matrix {scenario}") as bar:
            res = fill(ctx.open, scenario, split_names(defenders), split_names(attackers),
                       episodes, seed, ctx.device, on_step=bar.callback, on_plan=bar.set_episodes,
                       surface=surface)
    t = res.table
    column_refs = {a: a for a in t.attackers}
    if adaptive_set is not None:
        from policies.observation.adaptive import star

        column_refs.update({star(al): next(iter(col.values()))
                            for al, col in adaptive_set.columns.items() if col})
    if not by_seed:
        with ctx.open("r") as lg:
            t = by_family(t, family_map(lg, t.defenders), family_map(lg, t.attackers))
        for label, members in getattr(t, "col_members", {}).items():
            column_refs[label] = column_refs.get(members[0], members[0])
    values = t.win_rate if metric == "win" else t.mean
    data = {**t.to_dict(), "metric": metric, "episodes_run": res.episodes_run,
            "cells_run": len(res.cells), "seconds": res.seconds}
    if adaptive_set is not None:
        data["adaptive"] = {"columns": adaptive_set.columns, "trained": adaptive_set.trained,
                            "reused": adaptive_set.reused, "steps": adaptive_steps,
                            "eps": adaptive_eps}
    if plot:
        from arena.plots import payoff_heatmap

        annot = [[f"{t.win_rate[i, j]:.0%}\n{t.mean[i, j]:.1f}±{t.std[i, j]:.1f}"
                  for j in range(len(t.attackers))] for i in range(len(t.defenders))]
        payoff_heatmap(values, t.defenders, t.attackers, plot,
                       f"{scenario}: {'win rate' if metric == 'win' else 'team return'}",
                       "win rate" if metric == "win" else "return", annot,
                       episodes=int(t.count.min()),
                       eps=heatmap_eps(ctx, [column_refs.get(a, a) for a in t.attackers]))
        data["plot"] = str(plot)
    if as_csv:
        from solvers.matrix_io import format_csv

        click.echo(format_csv(list(t.defenders), list(t.attackers), values), nl=False)
        return
    if fmt:
        click.echo(format_cells(t, fmt), nl=False)
        return

    def human():
        print_table(t, metric, f"{scenario}: {len(t.defenders)} defenders × "
                     f"{len(t.attackers)} attackers", res)
        if adaptive_set is not None:
            click.echo(f"adaptive columns ({adaptive_steps:,} steps, ε {adaptive_eps:g}): "
                       + ", ".join(f"{a}* = {a} trained against the row's defender"
                                   for a in adaptive_set.columns)
                       + f"; {len(adaptive_set.trained)} trained, "
                         f"{len(adaptive_set.reused)} reused")
        if hasattr(t, "seeds"):
            fams = [f"{k} ({len(v)} seeds)" for k, v in {**t.row_members, **t.col_members}.items()
                    if len(v) > 1]
            click.echo(f"seed families {', '.join(fams)}: each cell is the mean of the seeds' "
                       f"means, its 95% CI between seeds (t); --by-seed shows every seed")
        if plot:
            click.echo(f"heatmap written to {plot}")

    emit(ctx, data, human)


def _fill_adaptive_cli(ctx, algos, scenario, defenders, attackers, episodes, seed, limit, steps,
                       eps):
    """Adaptive attackers trained (one progress bar each) or reused, then the table filled."""
    from commands.common import TrainProgress
    from policies.observation.adaptive import fill_with_adaptive, prepare_adaptive

    bars: list = []

    def close():
        while bars:
            bars.pop().__exit__(None, None, None)

    def on_train(name, n):
        close()
        bars.append(TrainProgress(ctx, n, f"train {name}").__enter__())

    try:
        drefs, arefs, adaptive = prepare_adaptive(
            ctx.open, scenario, split_names(defenders), split_names(attackers), algos, seed,
            ctx.device, steps, eps, on_train=on_train,
            on_progress=lambda p: bars[-1].update(p) if bars else None,
            on_done=lambda ref: close())
    finally:
        close()
    with StepProgress(ctx, limit, f"matrix {scenario}") as bar:
        res = fill_with_adaptive(ctx.open, scenario, drefs, arefs, adaptive, episodes, seed,
                                 ctx.device, on_step=bar.callback, on_plan=bar.set_episodes)
    return res, adaptive


def format_cells(t, fmt: str) -> str:
    """One row per cell (defender, attacker): mean, std, 95% CI half-width, episodes, win rate
    (a fraction in CSV, a percentage in the tables meant for reading); empty where undefined."""
    import math

    def num(x, pct=False):
        if not math.isfinite(x):
            return ""
        if pct and fmt != "csv":
            return f"{x:.1%}".replace("%", r"\%" if fmt == "latex" else "%")
        return f"{x:.4f}"

    rows = [[d, a, num(t.mean[i, j]), num(t.std[i, j]), num(t.ci95[i, j]), str(int(t.count[i, j])),
             num(t.win_rate[i, j], pct=True)]
            for i, d in enumerate(t.defenders) for j, a in enumerate(t.attackers)]
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["defender", "attacker", "mean", "std", "ci95", "episodes", "win_rate"])
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| defender | attacker | mean | std | 95% CI ± | episodes | win rate |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"

    def tex(text: str) -> str:  # refs hold letters, digits, '_', '.', '-', '@' only
        return text.replace("_", r"\_")

    lines = [r"\begin{tabular}{llrrrrr}", r"\toprule",
             r"defender & attacker & mean & std & 95\% CI $\pm$ & episodes & win rate \\",
             r"\midrule"]
    lines += [" & ".join([tex(r[0]), tex(r[1])] + r[2:]) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--scenario", default="3m", show_default=True, callback=scenario_name)
@click.option("--episodes", type=EPISODES, default=32, show_default=True, help="Episodes per cell.")
@click.option("--bootstrap", "n_boot", default=200, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), callback=writable_file,
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
    from solvers.tables import game_from_table, worst_attacks
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
    tied, worst = worst_attacks(game, sol.defender)
    single = game.M.min(axis=1)
    best = int(single.argmax())
    names = ", ".join(short(game.attackers[k], scenario) for k in tied)
    click.echo(f"most dangerous attack{'s, tied' if len(tied) > 1 else ''}: {names} (the Nash "
               f"defender mixture keeps {num(worst, '.2f')}; attacks ranked: " + ", ".join(
                   f"{short(game.attackers[k], scenario)} {num(col[k], '.2f')}"
                   for k in col.argsort(kind="stable")[:4]) + ")")
    click.echo(f"best single defender in the worst case: {short(game.defenders[best], scenario)} "
               f"({num(single[best], '.2f')}); Nash mixture's worst case: {num(worst, '.2f')}")
    annot = [[f"{t.mean[i, k]:.1f}\n{t.win_rate[i, k]:.0%}" for k in range(len(t.attackers))]
             for i in range(len(t.defenders))]
    payoff_heatmap(t.mean, t.defenders, t.attackers, plot, f"{scenario}: team return (win rate)",
                   "return", annot, episodes=int(t.count.min()),
                   eps=heatmap_eps(ctx, list(t.attackers)))
    click.echo(f"heatmap written to {plot}   ({time.perf_counter() - start:.0f} s in all)")
    click.echo("\nnext, try:\n  arena play qmix_fgsm vs pa_ad\n  arena solve --method alpharank\n"
               f"  arena psro --scenario {scenario} --defenders qmix --attackers none,fgsm "
               "--iterations 2 --steps-per-oracle 20000")


COMMANDS = [play, matrix, demo]
