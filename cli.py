"""`arena`: the command line of marl-arena. Thin: parse, call the packages, print.

This module builds the group, its global options and the one error handler; the commands live
in `commands/` (one module per topic). Every library error and every option error becomes one
line on stderr and exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import click

from commands import bench, interop, league, play, reproduce, solve, train
from commands.common import Ctx

EXIT_USAGE = 2


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


def _one_line(text: str) -> str:
    text = str(text).strip()
    return text.splitlines()[0] if text else ""


class ArenaGroup(click.Group):
    """The `arena` group: one line per error, never click's usage block or a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {_one_line(exc.format_message())}{where}", err=True)
            rv = EXIT_USAGE
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            rv = exc.exit_code
        except click.Abort:
            click.echo("aborted", err=True)
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            # Warnings raised while a command works (torch, numpy, matplotlib) are shown once
            # it has succeeded: when it fails, its one error line stands alone on stderr.
            with warnings.catch_warnings(record=True) as caught:
                out = super().invoke(ctx)
            for w in caught:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            return out
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # the reader went away (`arena show … | head`): nothing is wrong, say nothing, and
            # keep Python from complaining again when it flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)  # 128 + SIGPIPE, as a shell reports a command a closed pipe stopped
        except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
            debug = bool(ctx.obj and ctx.obj.debug) or os.environ.get("ARENA_DEBUG") == "1"
            if debug:
                raise
            if isinstance(exc, _user_errors()):
                click.echo(f"error: {_one_line(exc) or type(exc).__name__}", err=True)
            else:
                click.echo(
                    f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug)",
                    err=True,
                )
            sys.exit(EXIT_USAGE)


class DeviceType(click.ParamType):
    """auto, cpu, cuda or cuda:N (one GPU of several)."""

    name = "auto|cpu|cuda[:N]"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        head, _, index = text.partition(":")
        if text in ("auto", "cpu", "cuda") or head == "cuda" and index.isdigit():
            return text
        self.fail(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N", param, ctx)


DEVICE = DeviceType()


# The options every command accepts, before or after the command name (`arena --league x.h5 ls`
# and `arena ls --league x.h5` are the same). name → (click option args, option kwargs).
_GLOBAL_OPTIONS = {
    "league": (("--league",), dict(type=click.Path(dir_okay=False, path_type=Path),
                                   help="League file (env ARENA_LEAGUE).")),
    "quiet": (("--quiet", "-q"), dict(is_flag=True, help="Print only results, no progress.")),
    "device": (("--device",), dict(type=DEVICE, metavar=DEVICE.name,
                                   help="Where rollouts and training run.")),
    "lock_timeout": (("--lock-timeout",), dict(type=float,
                                               help="Seconds to wait for another process "
                                                    "holding the league.")),
}


def _global_option(name: str):
    decls, kwargs = _GLOBAL_OPTIONS[name]

    def callback(cctx: click.Context, _param, value):
        given = cctx.get_parameter_source(_param.name) == click.core.ParameterSource.COMMANDLINE
        if given and value is not None:
            setattr(cctx.find_object(Ctx), name, value)
        return value

    return click.Option(decls, expose_value=False, callback=callback, default=None,
                        **{**kwargs, "help": kwargs["help"] + " (also before the command)"})


def _with_global_options(cmd: click.Command) -> click.Command:
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_global_options(sub)
    have = {d for p in cmd.params for d in getattr(p, "opts", [])}
    for name, (decls, _) in _GLOBAL_OPTIONS.items():
        if not have.intersection(decls):
            cmd.params.append(_global_option(name))
    return cmd


@click.group(cls=ArenaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--league", type=click.Path(dir_okay=False, path_type=Path), envvar="ARENA_LEAGUE",
    default="league.h5", show_default=True, help="League file (env ARENA_LEAGUE).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="Print only results, no progress.")
@click.option(
    "--device", type=DEVICE, metavar=DEVICE.name, default="auto", show_default=True,
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


for _module in (league, play, solve, train, bench, interop, reproduce):
    for _cmd in _module.COMMANDS:
        main.add_command(_with_global_options(_cmd))


if __name__ == "__main__":
    main()
