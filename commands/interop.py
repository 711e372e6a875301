"""Teams out to other tools: `arena export`."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import Ctx, emit, json_option

_SCENARIO_HELP = ("Scenario of a bare name held for several (qmix → qmix.3m); needed only "
                  "when the name is ambiguous.")


@click.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["pymarl", "safetensors"]), default="pymarl",
              show_default=True,
              help="pymarl: agent.th (+ mixer.th) for PyMARL/EPyMARL's load_state_dict; "
                   "safetensors: one team.safetensors of every named array.")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory to write into.")
@click.option("--scenario", help=_SCENARIO_HELP)
@click.option("--force", is_flag=True, help="Overwrite files of an earlier export.")
@json_option
@click.pass_obj
def export(ctx: Ctx, ref, fmt, out_dir, scenario, force):
    """Write a stored qmix/vdn team as files that PyMARL, EPyMARL or safetensors readers load.

    `pymarl` writes agent.th, mixer.th (qmix; VDN's is empty, as PyMARL saves it) and
    pymarl_args.json, the PyMARL/EPyMARL arguments (rnn_hidden_dim, obs_last_action,
    obs_agent_id, use_rnn, mixing_embed_dim, hypernet_layers, …) that give the modules these
    shapes. Both .th files are plain state dicts: torch.load(path, weights_only=True).

    \b
    Examples:
      arena export qmix --format pymarl --out exported/qmix
      arena export qmix@v2 --format safetensors --out exported/qmix_v2 --json
    """
    from policies.interop.export import export_team
    from policies.names import default_scenario, resolve_for

    with ctx.open("r") as lg:
        rec = lg.get(resolve_for(lg, ref, scenario, prefer=default_scenario(lg)))
    result = export_team(rec.kind, rec.config, rec.weights, out_dir, fmt, force=force)
    data = {"ref": rec.ref, "kind": rec.kind, "scenario": rec.scenario, **result}

    def human():
        note = "" if result["has_mixer"] else " (no mixer: the team was imported without one)"
        click.echo(f"exported {rec.ref} ({fmt}) to {out_dir}: "
                   + ", ".join(Path(f).name for f in result["files"]) + note)

    emit(ctx, data, human)


COMMANDS = [export]
