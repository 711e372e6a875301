"""League commands: create, list, show, retire, add policies; the kinds and scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands.common import Ctx, emit, json_option


@click.command()
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


@click.command("ls")
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


@click.command()
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


@click.command()
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


@click.command("add-policy")
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


@click.command()
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


@click.command()
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


COMMANDS = [init, ls_, show, retire, add_policy, kinds, scenarios]
