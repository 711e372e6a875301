"""Options and checks shared by the commands: seeds, episode counts, scenario names, output
paths, and what fits in memory. Each raises click's BadParameter, one line at the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import click

SEED = click.IntRange(0, 2**63 - 1)  # episode seeds are int64
EPISODES = click.IntRange(min=1)


def scenario_name(_ctx, param, value):
    """--scenario: an empty name is a mistake, not a request for the default."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty; name one (see `arena scenarios`)", param=param)
    return value.strip() if value else value


def writable_file(_ctx, param, value):
    """An output file whose directory exists and is writable: checked before any work."""
    if value is None:
        return value
    parent = value.parent if str(value.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"directory {parent} does not exist", param=param)
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"directory {parent} is not writable", param=param)
    return value


def check_memory(scenario: str, episodes: int, device: str, option: str = "--episodes") -> None:
    """One line when `episodes` of `scenario` cannot be one batch in memory."""
    from arena.core import resolve_device
    from arena.payoff import max_episodes

    cap = max_episodes(scenario, resolve_device(device))
    if episodes > cap:
        raise click.BadParameter(f"{episodes:,} episodes of {scenario} do not fit in memory; "
                                 f"the largest feasible value is {cap:,}", param_hint=f"'{option}'")


def parse_seeds(_ctx, param, value):
    """--seeds 0,1,2: one training per seed, each a member of the family NAME."""
    if value is None:
        return None
    try:
        seeds = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give seeds as integers separated by commas, "
                                 f"e.g. 0,1,2", param=param) from None
    if not seeds:
        raise click.BadParameter("give at least one seed, e.g. 0,1,2", param=param)
    if any(not 0 <= s < 2**63 for s in seeds):
        raise click.BadParameter("seeds lie in 0 … 2^63 − 1", param=param)
    if len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r} repeats a seed", param=param)
    return seeds


def _connect_ray(cctx: click.Context, _param, value):
    """--ray: join the cluster as soon as the option is read, so a bad address is one line
    before any work; fills, trainings and PSRO responses then use it (policies.distributed)."""
    if value is None:
        return value
    from policies.distributed import connect

    about = connect(value.strip())
    obj = cctx.find_root().obj
    if not (getattr(obj, "quiet", False) or getattr(obj, "json", False)):
        click.echo(about, err=True)
    return value


def ray_option(f):
    """--ray auto|ADDRESS, shared by the commands that fill tables or train responses."""
    return click.option(
        "--ray", metavar="auto|ADDRESS", expose_value=False, callback=_connect_ray,
        help="Split missing cells and trainings over a Ray cluster: auto (RAY_ADDRESS, a "
             "running local cluster, else a new local instance) or its address (HEAD:6379, "
             "ray://HEAD:10001). Results are those of one process; only this one writes the "
             "league. Needs `pip install -e .[ray]`.")(f)
