"""`arena`: the command line of marl-arena. Thin: parse, call the packages, print.

Every library error becomes one line on stderr and exit code 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

EXIT_USAGE = 2


@dataclass
class Ctx:
    league: Path
    json: bool
    quiet: bool
    device: str
    lock_timeout: float
    debug: bool

    def open(self, mode: str = "r"):
        from store import League

        return League(self.league, mode=mode, lock_timeout=self.lock_timeout)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception classes whose message is meant for the user (imported lazily: fast --help)."""
    from arena.core import ScenarioError
    from policies.kinds import KindError
    from store import StoreError

    errors: list[type[BaseException]] = [StoreError, ScenarioError, KindError]
    for module, name in (
        ("solvers.meta", "SolverError"),
        ("policies.errors", "PolicyError"),
    ):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


class ArenaGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
            debug = bool(ctx.obj and ctx.obj.debug) or os.environ.get("ARENA_DEBUG") == "1"
            if debug:
                raise
            if isinstance(exc, _user_errors()):
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                click.echo(f"error: {msg}", err=True)
            else:
                click.echo(
                    f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug)", err=True
                )
            sys.exit(EXIT_USAGE)


def emit(ctx: Ctx, data, human=None) -> None:
    """Print `data` as JSON under --json, else call `human()` (or print data)."""
    if ctx.json:
        click.echo(json.dumps(data, indent=2, default=_json_default))
    elif human is not None:
        human()
    elif not ctx.quiet:
        click.echo(data)


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def json_option(f):
    """`--json` on a listing command (the global `arena --json` works too)."""

    def callback(ctx: click.Context, _param, value):
        if value:
            ctx.find_object(Ctx).json = True
        return value

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=callback,
        help="Print machine-readable JSON.",
    )(f)


@click.group(cls=ArenaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--league", type=click.Path(dir_okay=False, path_type=Path), envvar="ARENA_LEAGUE",
    default="league.h5", show_default=True, help="League file (env ARENA_LEAGUE).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="Print only results, no progress.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="Where rollouts and training run.",
)
@click.option(
    "--lock-timeout", type=float, default=30.0, show_default=True,
    help="Seconds to wait for another process holding the league.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx, league, as_json, quiet, device, lock_timeout, debug):
    """A game-theoretic arena for attacks and defences in cooperative MARL.

    \b
    Examples:
      arena init --starter
      arena ls --role attacker
      arena add-policy fgsm --kind fgsm --param eps=0.2
      arena play qmix_fgsm vs pa_ad
      arena matrix --scenario 3m
      arena solve --method lp
    """
    ctx.obj = Ctx(league, as_json, quiet, device, lock_timeout, debug)
    _set_threads()


def _set_threads() -> None:
    """One intra-op thread by default: the arena's tensors are small, and on a shared 2-core
    machine two torch threads were measured up to 20× slower than one. ARENA_THREADS overrides."""
    import torch

    torch.set_num_threads(int(os.environ.get("ARENA_THREADS", "1")))


# -- league -----------------------------------------------------------------------------------
@main.command()
@click.option("--force", is_flag=True, help="Replace an existing league (its data is lost).")
@click.option("--starter", is_flag=True, help="Start from the shipped starter league.")
@click.pass_obj
def init(ctx: Ctx, force: bool, starter: bool):
    """Create a new league file: empty, or a copy of the shipped starter league.

    \b
    Examples:
      arena --league my.h5 init
      arena init --starter
    """
    from store import League

    if starter:
        from store.starter import copy_starter_league

        copy_starter_league(ctx.league)
    else:
        League.create(ctx.league, force=force)
    emit(ctx, {"league": str(ctx.league), "created": True},
         lambda: click.echo(f"created league {ctx.league}"))


def _info_dict(info) -> dict:
    return {
        "ref": info.ref, "name": info.name, "version": info.version, "versions": info.versions,
        "role": info.role, "kind": info.kind, "scenario": info.scenario,
        "n_params": info.n_params, "retired": info.retired, "created": info.created,
        "sha256": info.sha256, "config": info.config, "provenance": info.provenance,
    }


@main.command("ls")
@click.option("--role", type=click.Choice(["defender", "attacker"]))
@click.option("--kind")
@click.option("--scenario")
@click.option("--all", "show_all", is_flag=True, help="Every version and retired policies too.")
@json_option
@click.pass_obj
def ls_(ctx: Ctx, role, kind, scenario, show_all):
    """List the policies of the league.

    \b
    Examples:
      arena ls
      arena ls --role attacker --json
    """
    with ctx.open("r") as lg:
        infos = lg.list(role=role, kind=kind, scenario=scenario,
                        include_retired=show_all, all_versions=show_all)
    rows = [_info_dict(i) for i in infos]

    def human():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{ctx.league}: {len(rows)} policies")
        for col in ("policy", "role", "kind", "scenario", "params", "versions", "created"):
            table.add_column(col)
        for r in rows:
            name = r["ref"] + (" (retired)" if r["retired"] else "")
            table.add_row(name, r["role"], r["kind"], r["scenario"], f"{r['n_params']:,}",
                          str(r["versions"]), r["created"][:19])
        Console().print(table)

    emit(ctx, rows, human)


@main.command()
@click.argument("ref")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the training curve kept in the provenance to this PNG.")
@json_option
@click.pass_obj
def show(ctx: Ctx, ref, plot):
    """Show one policy: config, provenance, parameter count and matches played.

    \b
    Examples:
      arena show qmix
      arena show qmix@v2 --json
    """
    with ctx.open("r") as lg:
        info = lg.info(ref)
        played = [m for m in lg.matches() if info.ref in (m.defender, m.attacker)]
    data = _info_dict(info)
    data["matches"] = len(played)
    data["episodes"] = int(sum(m.episodes for m in played))
    if plot:
        from policies.plots import plot_training_curve

        plot_training_curve(info.provenance, plot, title=info.ref)
        data["plot"] = str(plot)

    def human():
        click.echo(f"{info.ref}  role={info.role} kind={info.kind} scenario={info.scenario}"
                   f"{'  RETIRED' if info.retired else ''}")
        click.echo(f"  parameters: {info.n_params:,}   versions: {info.versions}   "
                   f"matches: {data['matches']} ({data['episodes']} episodes)")
        click.echo(f"  sha256: {info.sha256}")
        click.echo("  config: " + json.dumps(info.config, sort_keys=True))
        prov = {k: v for k, v in info.provenance.items() if k != "curve"}
        click.echo("  provenance: " + json.dumps(prov, sort_keys=True))
        if plot:
            click.echo(f"  curve drawn to {plot}")

    emit(ctx, data, human)


@main.command()
@click.argument("ref")
@click.option("--purge", is_flag=True, help="Delete the data for good instead of hiding it.")
@click.pass_obj
def retire(ctx: Ctx, ref, purge):
    """Hide a policy from listings and tables (data kept unless --purge).

    \b
    Example:
      arena retire fgsm@v1
    """
    with ctx.open("a") as lg:
        resolved = lg.resolve(ref) if "@" in ref else ref
        lg.purge(ref) if purge else lg.retire(ref)
    verb = "purged" if purge else "retired"
    emit(ctx, {"ref": resolved, verb: True}, lambda: click.echo(f"{verb} {resolved}"))


@main.command("add-policy")
@click.argument("name")
@click.option("--kind", "kind_name", required=True, help="Policy kind (see `arena kinds`).")
@click.option("--role", type=click.Choice(["defender", "attacker"]),
              help="Defaults to the kind's role.")
@click.option("--scenario", default=None, help="Scenario the policy is for (default: any).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Kind parameter; repeatable.")
@click.option("--from", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Weights: .safetensors, a torch state dict, or a PyMARL agent.th.")
@click.pass_obj
def add_policy(ctx: Ctx, name, kind_name, role, scenario, params, source):
    """Add a policy version to the league (a new version if NAME exists).

    \b
    Examples:
      arena add-policy fgsm --kind fgsm --param eps=0.2
      arena add-policy pgd10 --kind pgd --param eps=0.1 --param steps=10 --param norm=l2
      arena add-policy qmix_pymarl --kind qmix --scenario 3m --from agent.th
    """
    from policies.build import build_policy_record

    rec = build_policy_record(name, kind_name, role=role, scenario=scenario,
                              params=params, source=source)
    with ctx.open("a") as lg:
        ref = lg.add_policy(**rec)
    emit(ctx, {"ref": ref, **{k: rec[k] for k in ("role", "kind", "scenario", "config")}},
         lambda: click.echo(f"added {ref}"))


@main.command()
@json_option
@click.pass_obj
def kinds(ctx: Ctx):
    """List the policy kinds and their parameters."""
    from policies.kinds import KINDS

    rows = [{"kind": k.name, "role": k.role, "surface": k.surface, "learned": k.learned,
             "description": k.description,
             "params": [{"name": p.name, "type": p.type, "default": p.default, "low": p.low,
                         "high": p.high, "choices": list(p.choices), "help": p.help}
                        for p in k.params]}
            for k in KINDS.values()]

    def human():
        for k in KINDS.values():
            click.echo(f"{k.name:10} {k.role:9} {k.surface:12} {k.description}")
            for p in k.params:
                click.echo(f"{'':12}{p.describe()}")

    emit(ctx, rows, human)


# -- matches and the payoff table -------------------------------------------------------------
class StepProgress:
    """A rich progress bar over environment steps of one batched rollout (silent with --quiet
    or --json); `callback(t, done)` is what the rollout calls after every step."""

    def __init__(self, ctx: Ctx, limit: int, label: str):
        self.enabled = not (ctx.quiet or ctx.json)
        self.limit, self.label = limit, label
        self.episodes = 0

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), transient=True, console=_stderr())
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.limit, info="")
            import time

            self.t0 = time.perf_counter()
        return self

    def set_episodes(self, cells) -> None:
        self.episodes = sum(c.episodes for c in cells)

    def callback(self, t: int, done: int) -> None:
        if self.enabled:
            import time

            rate = done / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, completed=min(t, self.limit),
                            info=f"step {t}  episodes {done}/{self.episodes}  {rate:,.0f} ep/s")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _names(values) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _summary(returns, wins, cost) -> dict:
    import numpy as np

    r = np.asarray(returns, dtype=float)
    std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    return {"episodes": int(len(r)), "win_rate": float(np.mean(wins)), "return_mean": float(r.mean()),
            "return_std": std, "return_ci95": 1.96 * std / max(len(r), 1) ** 0.5,
            "attack_cost": float(np.mean(cost))}


@main.command()
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
            **_summary(rec.returns, rec.wins, rec.attack_cost)}

    def human():
        click.echo(f"{rec.defender} vs {rec.attacker} on {rec.scenario}: {data['episodes']} "
                   f"episodes (seed {rec.seed}, {rec.device}, {seconds:.1f} s)")
        click.echo(f"  win rate      {data['win_rate']:.1%}")
        click.echo(f"  return        {data['return_mean']:.2f} ± {data['return_std']:.2f}  "
                   f"(95% CI ± {data['return_ci95']:.2f})")
        click.echo(f"  perturbation  {data['attack_cost']:.3f} (mean norm per attacked step)")

    emit(ctx, data, human)


def _default_scenario(ctx: Ctx) -> str:
    from policies.names import default_scenario

    with ctx.open("r") as lg:
        scenario = default_scenario(lg)
    if scenario is None:
        raise click.UsageError("the league has no defender yet: give --scenario or train one")
    return scenario


@main.command()
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

    scenario = scenario or _default_scenario(ctx)
    limit = scenario_spec(scenario).episode_limit
    with StepProgress(ctx, limit, f"matrix {scenario}") as bar:
        res = fill(ctx.open, scenario, _names(defenders), _names(attackers), episodes, seed,
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
        _print_table(t, metric, f"{scenario}: {len(t.defenders)} defenders × "
                     f"{len(t.attackers)} attackers", res)
        if plot:
            click.echo(f"heatmap written to {plot}")

    emit(ctx, data, human)


def _print_table(t, metric, title, res=None) -> None:
    from rich.console import Console
    from rich.table import Table

    from arena.plots import short

    table = Table(title=title)
    table.add_column("defender", no_wrap=True)
    for a in t.attackers:
        table.add_column(short(a, t.scenario), justify="right", no_wrap=True)
    for i, d in enumerate(t.defenders):
        cells = []
        for j in range(len(t.attackers)):
            if t.count[i, j] == 0:
                cells.append("—")
                continue
            cells.append(f"{t.win_rate[i, j]:.0%}  {t.mean[i, j]:.1f}±{t.std[i, j]:.1f}")
        table.add_row(short(d, t.scenario), *cells)
    Console(width=max(100, 16 + 18 * len(t.attackers))).print(table)
    if res is not None:
        click.echo(f"ran {len(res.cells)} cells, {res.episodes_run} episodes in {res.seconds:.1f} s; "
                   f"each cell: win rate  return±std over {int(t.count.min())}+ episodes")


# -- solving ---------------------------------------------------------------------------------
def _league_game(ctx: Ctx, scenario: str | None, metric: str):
    from policies.evaluate import default_players
    from solvers.tables import game_from_table

    scenario = scenario or _default_scenario(ctx)
    with ctx.open("r") as lg:
        defenders, attackers = default_players(lg, scenario)
        table = lg.payoff(scenario, defenders, attackers)
    return scenario, game_from_table(table, metric)


@main.command()
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
        _print_solution(game, sol, boot, source, scenario)
        click.echo(f"most dangerous attack against this defender mixture: {game.attackers[j]} "
                   f"(leaves {worst:.3f})")

    emit(ctx, data, human)


def _print_solution(game, sol, boot, source, scenario=None) -> None:
    from arena.plots import short

    click.echo(f"{sol.method} solution of {source}: {len(game.defenders)} defenders × "
               f"{len(game.attackers)} attackers")
    for side, names, w, lo, hi in (
        ("defender", game.defenders, sol.defender, boot and boot.defender_lo,
         boot and boot.defender_hi),
        ("attacker", game.attackers, sol.attacker, boot and boot.attacker_lo,
         boot and boot.attacker_hi),
    ):
        click.echo(f"  {side} mixture:")
        for i in sorted(range(len(names)), key=lambda k: -w[k]):
            interval = f"   [{lo[i]:.2f}, {hi[i]:.2f}]" if boot is not None else ""
            click.echo(f"    {w[i]:6.3f}  {short(names[i], scenario)}{interval}")
    interval = f"  (95% interval {boot.value_lo:.3f} … {boot.value_hi:.3f})" if boot else ""
    click.echo(f"  value: {sol.value:.3f}{interval}")
    click.echo(f"  exploitability (NashConv): {sol.exploitability:.2e}")


# -- training ---------------------------------------------------------------------------------
@main.group()
def train():
    """Train defenders and attackers; each run is stored as a new league version."""


class StopOnInterrupt:
    """First Ctrl-C asks the trainer to stop and keep what it learned; a second one aborts."""

    def __init__(self):
        self.stop = False

    def __enter__(self):
        import signal

        self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, *_):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        click.echo("\nstopping: the policy learned so far will be stored as partial "
                   "(Ctrl-C again to abort)", err=True)

    def __exit__(self, *exc):
        import signal

        signal.signal(signal.SIGINT, self._old)
        return False


class TrainProgress:
    def __init__(self, ctx: Ctx, total: int, label: str):
        self.enabled = not (ctx.quiet or ctx.json)
        self.total, self.label = total, label

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.completed:,}/{task.total:,}"),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                console=_stderr())
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total, info="")
        return self

    def update(self, p: dict) -> None:
        if not self.enabled:
            return
        parts = []
        for key, fmt in (("epsilon", "ε {:.2f}"), ("loss", "loss {:.3f}"),
                         ("test_return", "test return {:.2f}"), ("test_win", "win {:.0%}"),
                         ("steps_per_s", "{:,.0f} steps/s")):
            if p.get(key) is not None:
                parts.append(fmt.format(p[key]))
        self.bar.update(self.task, completed=min(p.get("steps", 0), self.total),
                        info="  ".join(parts))

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


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
    from policies.train_defender import DefenderTrainConfig, train_defender

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
            from policies.adversarial_training import train_robust_defender

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
    from policies.train_attacker import AttackerTrainConfig, train_attacker

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


# -- PSRO -------------------------------------------------------------------------------------
@main.command()
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
        scenario = scenario or _default_scenario(ctx)
        cfg = LeaguePSROConfig(scenario=scenario, defenders=_names(defenders),
                               attackers=_names(attackers) or ["none"], iterations=iterations,
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


@main.group(invoke_without_command=True)
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


# -- demo -------------------------------------------------------------------------------------
@main.command()
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
    _print_table(t, "win", f"{scenario}: win rate  return±std  ({int(t.count.min())}+ episodes "
                 f"per cell; rows defenders, columns attackers)", res)
    game = game_from_table(t, "return")
    sol = run_solver(game.M, "lp")
    boot = bootstrap(game.M, game.std, game.count, method="lp", n=n_boot, seed=0) if n_boot else None
    _print_solution(game, sol, boot, f"the {scenario} table (team return)", scenario)
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


# -- scenarios and benchmarks -----------------------------------------------------------------
@main.command()
@json_option
@click.pass_obj
def scenarios(ctx: Ctx):
    """List the scenarios with their shapes.

    \b
    Example:
      arena scenarios --json
    """
    from arena.core import ScenarioError
    from arena.scenarios import REGISTRY, spec

    rows = []
    for name in REGISTRY:
        try:
            rows.append(spec(name).as_dict())
        except ScenarioError as exc:
            rows.append({"name": name, "unavailable": str(exc)})

    def human():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="scenarios")
        for col in ("name", "agents", "obs", "state", "actions", "limit", "messages", "family"):
            table.add_column(col)
        for r in rows:
            if "unavailable" in r:
                table.add_row(r["name"], "-", "-", "-", "-", "-", "-", r["unavailable"])
                continue
            table.add_row(r["name"], str(r["n_agents"]), str(r["obs_dim"]), str(r["state_dim"]),
                          str(r["n_actions"]), str(r["episode_limit"]),
                          "yes" if r["messages"] else "no", r["family"])
        Console().print(table)

    emit(ctx, rows, human)


@main.group()
def bench():
    """Benchmarks that print ratios measured in one run."""


@bench.command("env")
@click.option("--scenario", "scenario_names", default="pp7,3m", show_default=True,
              help="Comma-separated scenarios.")
@click.option("--batch", default="1,64,1024,4096", show_default=True,
              help="Comma-separated batch sizes.")
@click.option("--steps", default=200, show_default=True, help="Steps timed per batch size.")
@json_option
@click.pass_obj
def bench_env(ctx: Ctx, scenario_names, batch, steps):
    """Env-steps/s per batch size and the speed-up over batch 1.

    \b
    Example:
      arena bench env --scenario pp7,3m --batch 1,64,1024,4096
    """
    from arena.bench import bench_env as run_bench
    from arena.core import resolve_device

    device = resolve_device(ctx.device)
    sizes = [int(b) for b in batch.split(",") if b.strip()]
    rows = []
    for name in [s.strip() for s in scenario_names.split(",") if s.strip()]:
        rows += run_bench(name, sizes, device=device, steps=steps)

    def human():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"env-steps/s on {device}")
        for col in ("scenario", "batch", "env-steps/s", "× batch 1"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(r["scenario"], str(r["batch"]), f"{r['env_steps_per_s']:,.0f}",
                          f"{r['speedup']:.1f}")
        Console().print(table)

    emit(ctx, rows, human)


@bench.command("matrix")
@click.option("--scenario", default="3m", show_default=True)
@click.option("--episodes", default=8, show_default=True, help="Episodes per cell.")
@json_option
@click.pass_obj
def bench_matrix_cmd(ctx: Ctx, scenario, episodes):
    """Time the payoff table filled episode by episode vs in one batch; print the ratio.

    Uses the league's defenders for the scenario, or untrained teams when it has none.
    Nothing is written to the league.

    \b
    Example:
      arena bench matrix --scenario 3m --episodes 8
    """
    from arena.core import resolve_device
    from policies.bench_matrix import bench_matrix_anywhere

    out = bench_matrix_anywhere(ctx.league, scenario, episodes, resolve_device(ctx.device))

    def human():
        click.echo(f"{out['scenario']} on {out['device']}: {out['defenders']} defenders × "
                   f"{out['attackers']} attackers × {out['episodes_per_cell']} episodes "
                   f"({out['league']})")
        click.echo(f"  episode by episode: {out['sequential_s']:8.2f} s  "
                   f"{out['episodes_per_s_sequential']:9.1f} episodes/s")
        click.echo(f"  one batch:          {out['batched_s']:8.2f} s  "
                   f"{out['episodes_per_s_batched']:9.1f} episodes/s")
        click.echo(f"  speed-up: {out['speedup']:.1f}×   same returns: {out['same_returns']}")

    emit(ctx, out, human)


if __name__ == "__main__":
    main()
