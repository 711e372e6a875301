"""Solving the table (meta-solvers) and growing the league with PSRO; PSRO runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands.common import (Ctx, CountProgress, default_scenario, emit, json_option, num,
                             kind_params, print_solution, progress_info, split_names)
from commands.options import ray_option


# policies.surfaces.SURFACES, spelt here: importing it loads torch before `--help`
SURFACES = ("observation", "message", "backdoor", "agent", "training")


def _league_game(ctx: Ctx, scenario: str | None, metric: str, defenders=(), attackers=(),
                 surface: str = "observation"):
    """(scenario, game, left_out): the named rows and columns must be filled; without names,
    the largest filled sub-table of the default players of `surface` is solved and
    `left_out` says what it dropped. The backdoor table is its triggered returns."""
    from policies.evaluate import default_players
    from policies.names import resolve_for
    from solvers.tables import filled_subgame, game_from_table

    scenario = scenario or default_scenario(ctx)
    with ctx.open("r") as lg:
        if surface == "backdoor":
            from solvers.psro_backdoor import backdoor_players, stored_triggered

            d, a = backdoor_players(lg, scenario, defenders, attackers)
            table = stored_triggered(lg, scenario, d, a)
        elif surface == "training":
            from policies.evaluate import table_players
            from policies.training.cells import stored_training

            d, a = table_players(lg, scenario, list(defenders), list(attackers), "training")
            table = stored_training(lg, scenario, d, a)
        else:
            d_all, a_all = default_players(lg, scenario, surface=surface)
            d = [resolve_for(lg, r, scenario) for r in defenders] or d_all
            a = [resolve_for(lg, r, scenario) for r in attackers] or a_all
            table = lg.payoff(scenario, d, a)
    if surface != "observation" and not (d and a):
        raise click.UsageError(f"no {surface} table on {scenario}: the league has no "
                               f"{'defender' if not d else 'attacker'} of it")
    if defenders and attackers:
        return scenario, game_from_table(table, metric), None
    game, drop_d, drop_a, empty = filled_subgame(table, metric)
    if defenders and drop_d or attackers and drop_a:
        named = "defenders" if defenders and drop_d else "attackers"
        raise click.UsageError(f"the table has {empty} empty cell(s) among the given {named}; "
                               f"fill them with `arena matrix` or leave out "
                               f"{', '.join(drop_d if named == 'defenders' else drop_a)}")
    left_out = {"defenders": drop_d, "attackers": drop_a, "empty_cells": empty} if empty else None
    return scenario, game, left_out


def _left_out_line(left_out: dict, scenario) -> str:
    from arena.plots import short

    parts = [f"{len(v)} {k[:-1] + ('s' if len(v) > 1 else '')} ("
             + ", ".join(short(x, scenario) for x in v) + ")"
             for k, v in (("defenders", left_out["defenders"]),
                          ("attackers", left_out["attackers"])) if v]
    return (f"left out {' and '.join(parts)} to solve the filled sub-table "
            f"({left_out['empty_cells']} empty cell(s); `arena matrix` fills them)")


def _solver_options(method: str, iterations, alpha) -> dict:
    if iterations is not None and method != "rd":
        raise click.UsageError("--iterations is an option of --method rd")
    if alpha is not None and method != "alpharank":
        raise click.UsageError("--alpha is an option of --method alpharank")
    opts = {}
    if iterations is not None:
        opts["iterations"] = iterations
    if alpha is not None:
        opts["alpha"] = alpha
    return opts


@click.command()
@click.option("--scenario", help="Default: the scenario with the most defenders.")
@click.option("--method", default="lp", show_default=True,
              type=click.Choice(["lp", "rd", "alpharank", "uniform"]))
@click.option("--metric", type=click.Choice(["return", "win"]), default="return", show_default=True)
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Solve this CSV instead (header = attackers, first column = defenders).")
@click.option("--defenders", multiple=True,
              help="Rows to solve, comma-separated (default: every defender of the scenario).")
@click.option("--attackers", multiple=True,
              help="Columns to solve, comma-separated (default: every attacker and none).")
@click.option("--bootstrap", "n_boot", default=0, show_default=True,
              help="Bootstrap resamples of the cell means for intervals (0 = none).")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--iterations", type=click.IntRange(1, 10_000_000),
              help="rd: Euler steps of the replicator dynamics (default 10,000); raise it when "
                   "the exploitability stays high.")
@click.option("--alpha", type=click.FloatRange(0, min_open=True),
              help="alpharank: selection intensity on the [0, 1]-normalised table (default 100).")
@click.option("--surface", type=click.Choice(SURFACES), default="observation",
              show_default=True,
              help="The table solved: the observation or message game, or the backdoor game "
                   "(defences × backdoor attackers, payoff = the return with the trigger "
                   "placed; `arena matrix --surface backdoor` fills it), or the training game "
                   "(recipes × training-time attackers, payoff = the trained teams' mean return "
                   "over seeds; `arena matrix --surface training` fills it).")
@json_option
@click.pass_obj
def solve(ctx: Ctx, scenario, method, metric, matrix_file, defenders, attackers, n_boot, seed,
          iterations, alpha, surface):
    """Solve the payoff table: each side's mixture, the value and the exploitability.

    The game is zero-sum: the defender maximises the team return (or win rate), the attacker
    minimises it. Without --defenders/--attackers, a table with empty cells (after a PSRO run
    or a new policy) is solved on its filled part: rows and columns with the most empty
    cells are left out one at a time until every cell left is filled, and one line says
    which.

    \b
    Examples:
      arena solve --method lp --bootstrap 200
      arena solve --method alpharank --metric win --alpha 10
      arena solve --method rd --iterations 100000
      arena solve --defenders qmix,qmix_fgsm --attackers none,fgsm,pgd
      arena solve --matrix table.csv --json
      arena solve --surface backdoor --scenario stag10
      arena solve --surface training --scenario spread
    """
    from solvers.meta import solve as run_solver
    from solvers.tables import Game, worst_attacks

    options = _solver_options(method, iterations, alpha)
    left_out = None
    if matrix_file:
        from solvers.matrix_io import read_csv

        if defenders or attackers:
            raise click.UsageError("--defenders/--attackers pick from the league's table, "
                                   "not a CSV")
        names_d, names_a, M = read_csv(matrix_file)
        game, source = Game(names_d, names_a, M), str(matrix_file)
        if n_boot:
            raise click.UsageError("--bootstrap needs the league's per-cell statistics, not a CSV")
        if surface != "observation":
            raise click.UsageError("--surface picks the league's table, not a CSV")
    else:
        scenario, game, left_out = _league_game(ctx, scenario, metric, split_names(defenders),
                                                split_names(attackers), surface)
        source = (f"{ctx.league} ({scenario}, {metric}"
                  + (", backdoor: triggered)" if surface == "backdoor" else ")"))
    sol = run_solver(game.M, method, **options)
    tied, worst = worst_attacks(game, sol.defender)
    data = {"source": source, "defenders": game.defenders, "attackers": game.attackers,
            **sol.to_dict(), "worst_attack": game.attackers[tied[0]],
            "worst_attacks": [game.attackers[j] for j in tied], "worst_attack_value": worst,
            "left_out": left_out}
    boot = None
    if n_boot:
        from solvers.bootstrap import bootstrap

        bar = CountProgress(ctx, "bootstrap", n_boot, "tables")
        try:
            boot = bootstrap(game.M, game.std, game.count, method=method, n=n_boot, seed=seed,
                             on_progress=lambda k, n: bar.update(k), **options)
        finally:
            bar.stop()
        data["bootstrap"] = {"n": n_boot, "value": [boot.value_lo, boot.value_hi],
                             "defender": [boot.defender_lo.tolist(), boot.defender_hi.tolist()],
                             "attacker": [boot.attacker_lo.tolist(), boot.attacker_hi.tolist()]}

    def human():
        if left_out:
            click.echo(_left_out_line(left_out, scenario))
        print_solution(game, sol, boot, source, scenario)
        if len(tied) == 1:
            click.echo(f"most dangerous attack against this defender mixture: "
                       f"{game.attackers[tied[0]]} (leaves {num(worst)})")
        else:
            click.echo(f"most dangerous attacks against this defender mixture, tied: "
                       f"{', '.join(game.attackers[j] for j in tied)} (each leaves {num(worst)})")

    emit(ctx, data, human)


@click.command()
@click.option("--scenario", help="Default: the scenario with the most defenders.")
@click.option("--defenders", multiple=True, help="Starting defenders (comma-separated).")
@click.option("--attackers", multiple=True, help="Starting attackers (comma-separated).")
@click.option("--iterations", default=3, show_default=True)
@click.option("--surface", type=click.Choice([s for s in SURFACES if s != "training"]),
              default="observation",
              show_default=True, help="The threat surface of the game; message: ℜ-MACRL "
              "(message attackers against communicating teams and their filters); backdoor: "
              "MARNet (backdoor defences against backdoor attackers, triggered return); "
              "agent: hijacked teammates (takeover attackers against teams).")
@click.option("--attacker-oracle", type=click.Choice(["pa_ad", "atla", "msg_ppo", "marnet",
                                                      "takeover_ppo", "takeover_dev"]),
              help="Default: pa_ad on observations, msg_ppo on messages, marnet on backdoors "
              "(re-poisons the heaviest attacker's team as the heaviest defence left it), "
              "takeover_ppo on agents.")
@click.option("--defender-oracle",
              type=click.Choice(["fgsm", "mixture", "msg_filter", "finetune", "takeover"]),
              help="fgsm: FGSM adversarial training; mixture: train against the attacker "
              "meta-strategy; msg_filter: a message filter against it (the message surface's "
              "default; fgsm is the observation surface's); finetune: a fine-tuning defence "
              "with twice the budget of σ_D's largest (the backdoor surface's); takeover: the "
              "heaviest defender retrained while σ_A hijacks its members (the agent surface's).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="msg_ppo oracle: targets, omega, combine, alpha, sigma, hidden; takeover "
              "oracles: targets, watch, hidden (and eta, obs_weight for takeover_dev).")
@click.option("--meta", type=click.Choice(["lp", "rd", "alpharank", "uniform"]), default="lp",
              show_default=True)
@click.option("--episodes", default=32, show_default=True, help="Episodes per cell.")
@click.option("--steps-per-oracle", default=50_000, show_default=True)
@click.option("--eps", default=0.2, show_default=True)
@click.option("--tol", default=0.0, show_default=True, help="Stop when both gains are below it.")
@click.option("--seed", default=0, show_default=True)
@click.option("--name", "run_name", help="Run id (default: psro<N>).")
@click.option("--resume", "resume_run", help="Resume this run from its last iteration.")
@ray_option
@json_option
@click.pass_obj
def psro(ctx: Ctx, scenario, defenders, attackers, iterations, surface, attacker_oracle,
         defender_oracle, params, meta, episodes, steps_per_oracle, eps, tol, seed, run_name,
         resume_run):
    """Grow the league towards equilibrium with best-response attackers and defenders.

    Each iteration solves the table, trains an attacker against the defender mixture and a
    defender against the attacker mixture, adds both and fills only the new row and column.
    The final meta-strategies are stored as mixture policies RUN_def and RUN_att.
    With --iterations 0 it is a single match table solved once.

    \b
    Examples:
      arena psro --scenario 3m --defenders qmix --attackers fgsm --iterations 3
      arena psro --surface message --scenario pp7 --defenders commnet_filter \
          --attackers msg_random --iterations 3          # ℜ-MACRL
      arena psro --surface backdoor --scenario stag10 --defenders keep,ft \
          --attackers mn --iterations 2 --steps-per-oracle 20000  # MARNet
      arena psro --surface agent --scenario 3m --defenders qmix \
          --attackers takeover_random --iterations 2        # hijacked teammates
      arena psro --resume psro1
      arena psro --scenario 3m --defenders qmix --ray auto  # both oracles at once, on Ray
    """
    from arena.core import resolve_device
    from solvers.psro_league import ORACLES, LeaguePSROConfig, run_league_psro

    device = str(resolve_device(ctx.device))
    if resume_run:
        cfg = LeaguePSROConfig(scenario="", defenders=["-"], attackers=["-"])
    else:
        scenario = scenario or default_scenario(ctx)
        if surface == "backdoor" and not split_names(attackers):
            raise click.UsageError("give the starting backdoor attackers with --attackers")
        att, dfd = ORACLES[surface]
        cfg = LeaguePSROConfig(scenario=scenario, defenders=split_names(defenders),
                               attackers=split_names(attackers) or ["none"], iterations=iterations,
                               attacker_oracle=attacker_oracle or att[0],
                               defender_oracle=defender_oracle or dfd[0],
                               meta=meta, episodes=episodes, steps_per_oracle=steps_per_oracle,
                               eps=eps, tol=tol, seed=seed, device=device, surface=surface,
                               attacker_params=_oracle_params(
                                   attacker_oracle or att[0], params))
        if not cfg.defenders:
            raise click.UsageError("give the starting defenders with --defenders")

    bars: list[CountProgress] = []

    def close_bar():
        while bars:
            bars.pop().stop()

    def event(msg):
        close_bar()
        if not (ctx.quiet or ctx.json):
            click.echo(f"  {msg}", err=True)

    def oracle(name, steps):  # one bar per oracle training, over its environment steps
        close_bar()
        bars.append(CountProgress(ctx, f"  {name}", steps, "steps"))

    def progress(p: dict):
        if bars:
            bars[-1].update(int(p.get("steps", 0)), progress_info(p))

    def show(it):
        close_bar()
        if not (ctx.quiet or ctx.json):
            click.echo(_iteration_line(it.__dict__))

    if not resume_run and not run_name:
        with ctx.open("r") as lg:
            taken = {r.run_id for r in lg.runs()}
        run_name = next(f"psro{k}" for k in range(1, len(taken) + 2) if f"psro{k}" not in taken)
    try:
        run_id, its, refs = run_league_psro(ctx.open, cfg, resume_run or run_name,
                                            resume=bool(resume_run), on_event=event,
                                            on_iteration=show, on_oracle=oracle,
                                            on_progress=progress)
    finally:
        close_bar()
    data = {"run": run_id, "iterations": [it.__dict__ for it in its],
            "defender_mixture": refs[0], "attacker_mixture": refs[1]}
    emit(ctx, data, lambda: click.echo(
        f"run {run_id}: value {its[-1].value:.3f}; mixtures stored as {refs[0]} and {refs[1]}"))


_ORACLE_PARAMS = {"msg_ppo": ("targets", "omega", "combine", "alpha", "sigma", "hidden"),
                  "takeover_ppo": ("targets", "watch", "hidden"),
                  "takeover_dev": ("targets", "watch", "hidden", "eta", "obs_weight")}


def _oracle_params(oracle: str, params) -> dict:
    """--param pairs of the msg_ppo or takeover oracle, range-checked by its kind first."""
    if not params:
        return {}
    if oracle not in _ORACLE_PARAMS:
        raise click.UsageError(f"--param is for the {', '.join(_ORACLE_PARAMS)} oracles, not "
                               f"{oracle}")
    return kind_params(oracle, params, _ORACLE_PARAMS[oracle], f"the {oracle} oracle takes")


def _iteration_line(it: dict) -> str:
    from solvers.exploitability import iteration_nash_conv

    gains = ""
    if it.get("gain_attacker") is not None:
        gains = (f"  NashConv {num(iteration_nash_conv(it), '.3f')} "
                 f"(gain att {num(it['gain_attacker'], '+.3f')}, def "
                 f"{num(it['gain_defender'], '+.3f')})  added "
                 f"{it['new_attacker']}, {it['new_defender']}")
    return (f"iteration {it['iteration']}: {len(it['defenders'])}×{len(it['attackers'])}  "
            f"value {num(it['value'])}{gains}")


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

        # the last iteration is solved but trains no response: it has a value, no gains
        from solvers.exploitability import iteration_nash_conv

        gains = [iteration_nash_conv(i) for i in its]
        on = run.config.get("psro", {}).get("scenario")
        curves([i["iteration"] for i in its],
               {"game value (meta-strategies)": [i["value"] for i in its],
                "NashConv (Σ max(0, best-response gain))": gains},
               plot, f"PSRO {run_id}" + (f" on {on}" if on else ""), "iteration",
               ylabel="team return")
    data = {"run": run.run_id, "config": run.config, "iterations": its}

    def human():
        click.echo(f"run {run.run_id}: " + json.dumps(run.config.get("psro", run.config)))
        for it in its:
            click.echo(_iteration_line(it))
        if plot:
            click.echo(f"plot written to {plot}")

    emit(ctx, data, human)


COMMANDS = [solve, psro, runs]
