"""Benchmarks that print ratios measured in one run."""

from __future__ import annotations


import click

from commands.common import Ctx, emit, json_option


@click.group()
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


COMMANDS = [bench]
