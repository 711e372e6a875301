"""Benchmarks that print ratios measured in one run."""

from __future__ import annotations


import click

from commands.common import Ctx, PhaseProgress, emit, json_option
from commands.options import EPISODES, check_memory, scenario_name


def _sizes(_ctx, param, value: str) -> list[int]:
    """--batch: comma-separated positive integers."""
    sizes = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            b = int(part)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a whole number (write e.g. 1,64,1024)",
                                     param=param) from None
        if b < 1:
            raise click.BadParameter(f"batch sizes must be at least 1, not {b}", param=param)
        sizes.append(b)
    if not sizes:
        raise click.BadParameter("no batch size given (write e.g. 1,64,1024)", param=param)
    return sizes


def _scenarios(_ctx, param, value: str) -> list[str]:
    """--scenario: comma-separated known scenario names."""
    from arena.core import ScenarioError
    from arena.scenarios import spec

    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names:
        raise click.BadParameter("empty; name one (see `arena scenarios`)", param=param)
    for name in names:
        try:
            spec(name)
        except ScenarioError as exc:
            raise click.BadParameter(str(exc), param=param) from None
    return names


@click.group()
def bench():
    """Benchmarks that print ratios measured in one run."""


@bench.command("env")
@click.option("--scenario", "scenario_names", default="pp7,3m", show_default=True,
              callback=_scenarios, help="Comma-separated scenarios.")
@click.option("--batch", default="1,64,1024,4096", show_default=True, callback=_sizes,
              help="Comma-separated batch sizes.")
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True,
              help="Steps timed per batch size.")
@click.option("--compile", "compiled", is_flag=True,
              help="Also time the compiled step (arena.compiled): eager and compiled side by "
                   "side with their ratio; compiling costs seconds to a minute per batch size.")
@click.option("--peer", type=click.Choice(["smax"]),
              help="Time the same map of another implementation beside ours, in this process: "
                   "smax (JaxMARL's SMAX on the CPU; 3m, 8m, 2s3z; needs `pip install -e "
                   ".[peers]`).")
@json_option
@click.pass_obj
def bench_env(ctx: Ctx, scenario_names, batch, steps, compiled, peer):
    """Env-steps/s per batch size and the speed-up over batch 1.

    \b
    Examples:
      arena bench env --scenario pp7,3m --batch 1,64,1024,4096
      arena bench env --scenario 3m --batch 8 --compile
      arena bench env --scenario 3m --batch 1,8,64,256,1024,4096 --peer smax --compile
    """
    from arena.bench import bench_env as run_bench
    from arena.bench import bench_env_compiled
    from arena.core import resolve_device

    if peer:
        _bench_peer(ctx, peer, scenario_names, batch, steps, compiled)
        return
    device = resolve_device(ctx.device)
    for name in scenario_names:
        check_memory(name, max(batch), str(device), "--batch")
    rows = []
    runner = bench_env_compiled if compiled else run_bench
    with PhaseProgress(ctx, len(scenario_names) * len(batch), "bench env") as bar:
        for name in scenario_names:
            rows += runner(name, batch, device=device, steps=steps,
                           on_size=lambda b, name=name: bar.phase(f"{name} batch {b:,}"))

    def human_compiled():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"env-steps/s on {device}, eager vs compiled (one run, interleaved)")
        for col in ("scenario", "batch", "eager", "compiled", "× eager", "compile s"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(r["scenario"], str(r["batch"]), f"{r['eager_steps_per_s']:,.0f}",
                          f"{r['compiled_steps_per_s']:,.0f}" if r["compiled"] else "failed",
                          f"{r['ratio']:.2f}", f"{r['compile_s']:.1f}")
        Console().print(table)

    if compiled:
        emit(ctx, rows, human_compiled)
        return

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


def _bench_peer(ctx: Ctx, peer, scenario_names, batch, steps, compiled):
    from arena.bench_peer import versus

    rows = []
    with PhaseProgress(ctx, len(scenario_names) * len(batch) * 2, f"bench env vs {peer}") as bar:
        for name in scenario_names:
            rows += versus(peer, name, batch, steps, compiled,
                           on_size=lambda b, name=name: bar.phase(f"{name} batch {b:,}"))

    def rate(x, spec=",.0f"):
        return "-" if x is None else format(x, spec)

    def human():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"env-steps/s on the CPU, ours vs {peer} (one process)")
        cols = ["scenario", "batch", "ours", peer, f"ours/{peer}"]
        if compiled:
            cols += ["ours compiled", f"compiled/{peer}"]
        for col in cols:
            table.add_column(col, justify="right")
        for r in rows:
            cells = [r["scenario"], str(r["batch"]), rate(r["ours_env_steps_per_s"]),
                     rate(r["peer_env_steps_per_s"]), rate(r["ratio"], ".2f")]
            if compiled:
                cells += [rate(r["ours_compiled_env_steps_per_s"]),
                          rate(r["compiled_ratio"], ".2f")]
            table.add_row(*cells)
        Console().print(table)

    emit(ctx, rows, human)


# 3m: the README's reference table; pp7: the scenario the message surface is documented on
_MATRIX_SCENARIO = {"observation": "3m", "message": "pp7"}


@bench.command("matrix")
@click.option("--scenario", default=None, callback=scenario_name,
              help="[default: 3m; pp7 with --surface message]")
@click.option("--surface", type=click.Choice(["observation", "message"]), default="observation",
              show_default=True, help="Which table: observation attackers vs every defender, or "
              "message attackers vs the communicating defenders (`arena matrix --surface`).")
@click.option("--episodes", type=EPISODES, default=8, show_default=True, help="Episodes per cell.")
@json_option
@click.pass_obj
def bench_matrix_cmd(ctx: Ctx, scenario, surface, episodes):
    """Time the payoff table filled episode by episode vs in one batch; print the ratio.

    Uses the league's defenders for the scenario (its communicating ones with --surface
    message), or untrained teams when it has none. Nothing is written to the league.

    \b
    Examples:
      arena bench matrix --scenario 3m --episodes 8
      arena bench matrix --surface message --scenario pp7 --episodes 16
    """
    from arena.core import resolve_device
    from policies.bench_matrix import bench_matrix_anywhere

    scenario = scenario or _MATRIX_SCENARIO[surface]
    check_memory(scenario, episodes, ctx.device)
    with PhaseProgress(ctx, 2, f"bench matrix {scenario} {surface}") as bar:
        out = bench_matrix_anywhere(ctx.league, scenario, episodes, resolve_device(ctx.device),
                                    on_phase=bar.phase, surface=surface)

    def human():
        click.echo(f"{out['scenario']} {out['surface']} table on {out['device']}: "
                   f"{out['defenders']} defenders × {out['attackers']} attackers × "
                   f"{out['episodes_per_cell']} episodes ({out['league']})")
        click.echo(f"  episode by episode: {out['sequential_s']:8.2f} s  "
                   f"{out['episodes_per_s_sequential']:9.1f} episodes/s")
        click.echo(f"  one batch:          {out['batched_s']:8.2f} s  "
                   f"{out['episodes_per_s_batched']:9.1f} episodes/s")
        click.echo(f"  speed-up: {out['speedup']:.1f}×   same returns: {out['same_returns']}")
        click.echo(f"  the batch stepped {out['row_steps']:,} episode-steps, "
                   f"{out['live_share']:.0%} of the {out['row_steps_kept']:,} it would step "
                   f"keeping finished episodes to the end")

    emit(ctx, out, human)


COMMANDS = [bench]
