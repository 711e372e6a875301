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

    if ctx.league.exists() and not force and not starter:
        from store import StoreError

        # checked here so that the message names the command-line flag
        raise StoreError(f"{ctx.league} already exists; pass --force to replace it (its data "
                         f"is lost)")
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


def _policy_columns(rows, width: int) -> list[str]:
    """The columns that fit in `width`: the policy name always, whole; `created`, `params`,
    `versions`, `role`, `kind` and `scenario` are dropped in that order until the rest fits."""
    name_w = max([len("policy")] + [len(_shown_name(r)) for r in rows])
    widths = {"role": 8, "kind": max([4] + [len(r["kind"]) for r in rows]),
              "scenario": max([8] + [len(r["scenario"]) for r in rows]),
              "params": max([6] + [len(f"{r['n_params']:,}") for r in rows]),
              "versions": 8, "created": 19}
    cols = ["policy", "role", "kind", "scenario", "params", "versions", "created"]

    def need(cs):  # rich spends 3 characters per column on padding and borders, 1 at the edge
        return sum(name_w if c == "policy" else widths[c] for c in cs) + 3 * len(cs) + 1

    for drop in ("created", "params", "versions", "role", "kind", "scenario"):
        if need(cols) <= width:
            break
        cols.remove(drop)
    return cols


def _shown_name(r) -> str:
    return r["ref"] + (" (retired)" if r["retired"] else "")


def _print_policies(ctx: Ctx, rows) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cols = _policy_columns(rows, console.width)
    table = Table(title=f"{ctx.league}: {len(rows)} policies")
    name_w = max([len("policy")] + [len(_shown_name(r)) for r in rows])
    for col in cols:
        if col == "policy":
            table.add_column(col, no_wrap=True, min_width=name_w)
        else:
            table.add_column(col, no_wrap=True, overflow="ellipsis")
    cells = {"role": lambda r: r["role"], "kind": lambda r: r["kind"],
             "scenario": lambda r: r["scenario"], "params": lambda r: f"{r['n_params']:,}",
             "versions": lambda r: str(r["versions"]), "created": lambda r: r["created"][:19]}
    for r in rows:
        table.add_row(*[_shown_name(r) if c == "policy" else cells[c](r) for c in cols])
    console.print(table)


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
        _print_policies(ctx, rows)

    emit(ctx, rows, human)


_SCENARIO_HELP = "Scenario of a bare name held for several (qmix --scenario pp7 → qmix.pp7)."


@click.command()
@click.argument("ref")
@click.option("--scenario", help=_SCENARIO_HELP)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the training curve kept in the provenance to this PNG.")
@json_option
@click.pass_obj
def show(ctx: Ctx, ref, scenario, plot):
    """Show one policy: config, provenance, parameter count and matches played.

    A bare name resolves like everywhere else: `qmix` is `qmix.3m` when only 3m holds one,
    and the default scenario's when several do (--scenario picks another).

    \b
    Examples:
      arena show qmix.3m
      arena show qmix --scenario pp7
      arena show qmix@v2 --json
      arena show pa_ad.3m --plot curve.png
    """
    from policies.names import default_scenario, resolve_for

    with ctx.open("r") as lg:
        info = lg.info(resolve_for(lg, ref, scenario, prefer=default_scenario(lg)))
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
@click.option("--scenario", help=_SCENARIO_HELP)
@click.option("--purge", is_flag=True, help="Delete the data for good instead of hiding it.")
@click.option("--force", is_flag=True,
              help="With --purge: purge even what mixtures or runs use (they are marked broken).")
@click.pass_obj
def retire(ctx: Ctx, ref, scenario, purge, force):
    """Hide a policy from listings and tables (data kept unless --purge).

    A bare name retires every version of it; one held for several scenarios (qmix.3m,
    qmix.pp7) needs --scenario.

    \b
    Examples:
      arena retire fgsm@v1
      arena retire qmix --scenario pp7
    """
    from policies.names import resolve_name

    with ctx.open("a") as lg:
        ref = resolve_name(lg, ref, scenario)
        resolved = lg.resolve(ref) if "@" in ref else ref
        lg.purge(ref, force=force) if purge else lg.retire(ref)
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
@click.option("--mixer", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PyMARL mixer.th (QMixer, or VDN's empty one) for the agent of --from.")
@click.pass_obj
def add_policy(ctx: Ctx, name, kind_name, role, scenario, params, source, mixer):
    """Add a policy version to the league (a new version if NAME exists).

    \b
    Examples:
      arena add-policy fgsm --kind fgsm --param eps=0.2
      arena add-policy pgd10 --kind pgd --param eps=0.1 --param steps=10 --param norm=l2
      arena add-policy qmix_pymarl --kind qmix --scenario 3m --from agent.th
      arena add-policy qmix_pymarl --kind qmix --scenario 3m --from agent.th --mixer mixer.th
    """
    from policies.build import build_policy_record

    rec = build_policy_record(name, kind_name, role=role, scenario=scenario,
                              params=params, source=source, mixer=mixer)
    with ctx.open("a") as lg:
        same = _identical_version(lg, rec)
        ref = lg.add_policy(**rec)
    data = {"ref": ref, **{k: rec[k] for k in ("role", "kind", "scenario", "config")},
            "identical_to": same}

    def human():
        note = f" (identical to {same}: same config and weights)" if same else ""
        click.echo(f"added {ref}{note}")

    emit(ctx, data, human)


def _identical_version(lg, rec) -> str | None:
    """The latest stored version of the same name with the same config and weights, if any."""
    from store.records import normalise_weights, weights_sha256

    versions = [i for i in lg.list(include_retired=True, all_versions=True)
                if i.name == rec["name"] and i.kind == rec["kind"]]
    if not versions:
        return None
    digest = weights_sha256(normalise_weights(rec["weights"]))
    config = json.loads(json.dumps(rec["config"]))  # as stored: tuples become lists
    for info in reversed(versions):
        if info.config == config and info.sha256 == digest:
            return info.ref
    return None


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
        for col in ("name", "agents", "obs", "state", "actions", "limit", "messages", "triggers",
                    "family"):
            table.add_column(col)
        for r in rows:
            if "unavailable" in r:
                table.add_row(r["name"], "-", "-", "-", "-", "-", "-", "-", r["unavailable"])
                continue
            table.add_row(r["name"], str(r["n_agents"]), str(r["obs_dim"]), str(r["state_dim"]),
                          str(r["n_actions"]), str(r["episode_limit"]),
                          "yes" if r["messages"] else "no", "yes" if r["triggers"] else "no",
                          r["family"])
        Console(width=max(100, Console().width)).print(table)

    emit(ctx, rows, human)


COMMANDS = [init, ls_, show, retire, add_policy, kinds, scenarios]
