"""What every command shares: the context object, output in human or JSON form, progress
bars, and the tables and solutions that more than one command prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click


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


def new_bar(*middle: str, transient: bool = True):
    """A started rich bar on stderr: the task's description, a bar, `middle` text columns
    ("count": completed/total; other strings are format strings), the elapsed time."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    cols = [MofNCompleteColumn() if m == "count" else TextColumn(m) for m in middle]
    bar = Progress(TextColumn("{task.description}"), BarColumn(), *cols, TimeElapsedColumn(),
                   transient=transient, console=stderr_console())
    bar.start()
    return bar


class StepProgress:
    """A rich progress bar over environment steps of one batched rollout (silent with --quiet
    or --json); `callback(t, done)` is what the rollout calls after every step."""

    def __init__(self, ctx: Ctx, limit: int, label: str):
        self.enabled = show_progress(ctx)
        self.limit, self.label = limit, label
        self.episodes = 0

    def __enter__(self):
        if self.enabled:
            self.bar = new_bar("count", "{task.fields[info]}")
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


class PhaseProgress:
    """A transient bar over the phases of a longer job (batch sizes, timing passes); silent
    with --quiet, --json or off a terminal. `phase(label)` completes the running phase and
    starts the next."""

    def __init__(self, ctx: Ctx, total: int, label: str):
        self.enabled = show_progress(ctx)
        self.total, self.label, self.started = total, label, 0

    def __enter__(self):
        if self.enabled:
            self.bar = new_bar("count")
            self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def phase(self, label: str) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=self.started, description=f"{self.label}: {label}")
        self.started += 1

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


class CountProgress:
    """A transient bar counting `total` units of one job (bootstrap tables, oracle steps);
    silent with --quiet, --json or off a terminal. `update(done, info)`; `stop()`."""

    def __init__(self, ctx: Ctx, label: str, total: int, unit: str = ""):
        self.enabled = show_progress(ctx)
        self.total = total
        if self.enabled:
            self.bar = new_bar("count", unit, "{task.fields[info]}")
            self.task = self.bar.add_task(label, total=total, info="")

    def update(self, done: int, info: str = "") -> None:
        if self.enabled:
            self.bar.update(self.task, completed=min(done, self.total), info=info)

    def stop(self) -> None:
        if self.enabled:
            self.bar.stop()
            self.enabled = False


def show_progress(ctx: Ctx) -> bool:
    """Bars only on a terminal: elsewhere (pipes, logs) rich leaves a blank line on stderr,
    which would stand before an error's one line."""
    return not (ctx.quiet or ctx.json) and stderr_console().is_terminal


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def split_names(values) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def summary(returns, wins, cost) -> dict:
    import numpy as np

    r = np.asarray(returns, dtype=float)
    std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    return {"episodes": int(len(r)), "win_rate": float(np.mean(wins)), "return_mean": float(r.mean()),
            "return_std": std, "return_ci95": 1.96 * std / max(len(r), 1) ** 0.5,
            "attack_cost": float(np.mean(cost))}


def kind_params(kind: str, params, known: tuple[str, ...], what: str,
                full: bool = False) -> dict:
    """--param KEY=VALUE pairs for `kind`, limited to `known` and range-checked by the kind
    before any work. Returns the given keys, or with `full` every known key (defaults for the
    rest); an unknown key reads "--param KEY: <what> <known>"."""
    from policies.kinds import get_kind, parse_param_pairs

    pairs = parse_param_pairs(params)
    unknown = sorted(set(pairs) - set(known))
    if unknown:
        raise click.UsageError(f"--param {unknown[0]}: {what} {', '.join(known)}")
    config = get_kind(kind).make_config(pairs)
    return {k: config[k] for k in (known if full else pairs)}


def default_scenario(ctx: Ctx) -> str:
    from policies.names import default_scenario

    with ctx.open("r") as lg:
        scenario = default_scenario(lg)
    if scenario is None:
        raise click.UsageError("the league has no defender yet: give --scenario or train one")
    return scenario


def print_table(t, metric, title, res=None) -> None:
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
            cells.append(f"{t.win_rate[i, j]:.0%}  {num(t.mean[i, j], '.1f')}±{t.std[i, j]:.1f}")
        table.add_row(short(d, t.scenario), *cells)
    Console(width=max(100, 16 + 18 * len(t.attackers))).print(table)
    if res is not None:
        click.echo(f"ran {len(res.cells)} cells, {res.episodes_run} episodes in {res.seconds:.1f} s; "
                   f"each cell: win rate  return±std over {int(t.count.min())}+ episodes")


def num(x, spec: str = ".3f") -> str:
    """`format(x, spec)` without a minus sign on a number that rounds to zero (`-0.000`)."""
    text = format(x, spec)
    if "-" in text.split("e")[0] and not any(c in "123456789" for c in text.split("e")[0]):
        return format(0.0, spec)
    return text


def heatmap_eps(ctx: Ctx, attackers) -> float | dict[str, float] | None:
    """The ε budget to give `arena.plots.payoff_heatmap(eps=…)`: one number when every
    attack with a budget shares it, else a mapping attacker ref → ε (None: no budget)."""
    from store import NO_ATTACK

    with ctx.open("r") as lg:
        budgets = {a: lg.info(a).config.get("eps") for a in attackers if a != NO_ATTACK}
    budgets = {a: float(e) for a, e in budgets.items() if isinstance(e, (int, float))}
    values = set(budgets.values())
    if not values:
        return None
    return values.pop() if len(values) == 1 else budgets


def print_solution(game, sol, boot, source, scenario=None) -> None:
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
            interval = f"   [{num(lo[i], '.2f')}, {num(hi[i], '.2f')}]" if boot is not None else ""
            click.echo(f"    {num(w[i], '6.3f')}  {short(names[i], scenario)}{interval}")
    interval = (f"  (95% interval {num(boot.value_lo)} … {num(boot.value_hi)})" if boot else "")
    click.echo(f"  value: {num(sol.value)}{interval}")
    click.echo(f"  exploitability (NashConv): {num(sol.exploitability, '.2e')}")


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
        self.enabled = show_progress(ctx)
        self.total, self.label = total, label

    def __enter__(self):
        if self.enabled:
            self.bar = new_bar("{task.completed:,}/{task.total:,}", "{task.fields[info]}",
                               transient=False)
            self.task = self.bar.add_task(self.label, total=self.total, info="")
        return self

    def update(self, p: dict) -> None:
        if not self.enabled:
            return
        self.bar.update(self.task, completed=min(p.get("steps", 0), self.total),
                        info=progress_info(p))

    def __exit__(self, exc_type, *exc):
        if self.enabled:
            if exc_type is not None:  # the error line must stand alone, not under a stale bar
                self.bar.live.transient = True
            self.bar.stop()
        return False


def progress_info(p: dict) -> str:
    """One line of what a trainer's progress report holds (defenders: ε, loss, test return and
    win rate; attackers: the victim's return and win rate under attack)."""
    parts = []
    for key, fmt in (("epsilon", "ε {:.2f}"), ("loss", "loss {:.3f}"),
                     ("test_return", "test return {:.2f}"), ("test_win", "win {:.0%}"),
                     ("victim_return", "victim return {:.2f}"), ("victim_win", "victim win {:.0%}"),
                     ("steps_per_s", "{:,.0f} steps/s")):
        if p.get(key) is not None:
            parts.append(fmt.format(p[key]))
    return "  ".join(parts)


class BackdoorProgress:
    """The bars of one backdoor table fill, one at a time: a training bar per defence applied
    (fine-tuning, pruning), then the step bar of the batched rollout; its hooks are
    `fill_backdoor`'s (on_event, on_progress, on_plan, on_step)."""

    def __init__(self, ctx: Ctx, limit: int, label: str):
        self.ctx, self.limit, self.label = ctx, limit, label
        self.rep, self.step = Reporter(ctx), None

    def on_event(self, text: str) -> None:
        self.rep.say(text)

    def on_progress(self, p: dict) -> None:
        if not self.rep.bars:
            self.rep.train("defence", int(p.get("total_steps", p.get("steps", 0))))
        self.rep.progress(p)

    def on_plan(self, cells) -> None:
        self.rep.close()
        if self.step is None:
            self.step = StepProgress(self.ctx, self.limit, self.label).__enter__()
        self.step.set_episodes(cells)

    def on_step(self, t: int, done: int) -> None:
        if self.step is not None:
            self.step.callback(t, done)

    def hooks(self) -> dict:
        return {"on_event": self.on_event, "on_progress": self.on_progress,
                "on_plan": self.on_plan, "on_step": self.on_step}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.rep.close()
        if self.step is not None:
            self.step.__exit__(*exc)
        return False


class Reporter:
    """The hooks a reproduction reports through: a line per event on stderr, a bar per
    training and per table fill (all silent with --quiet or --json)."""

    def __init__(self, ctx: Ctx):
        self.ctx, self.quiet, self.bars = ctx, ctx.quiet or ctx.json, []

    def close(self):
        while self.bars:
            self.bars.pop().__exit__(None, None, None)

    def say(self, text):
        self.close()
        if not self.quiet:
            click.echo(f"  {text}", err=True)

    def train(self, name, n):
        self.close()
        self.bars.append(TrainProgress(self.ctx, n, f"train {name}").__enter__())

    def progress(self, p):
        if self.bars:
            self.bars[-1].update(p)

    def fill(self, scenario):
        from arena.scenarios import spec

        self.close()
        return StepProgress(self.ctx, spec(scenario).episode_limit, f"fill {scenario}")

    def hooks(self, klass):
        return klass(say=self.say, train=self.train, progress=self.progress, done=self.close,
                     fill=self.fill)


def attack_summary(prov: dict) -> str:
    """The trained attacker's final evaluation in words (the provenance keeps the raw keys)."""
    def pair(what, attacked, clean, fmt):
        if prov.get(attacked) is None:
            return None
        text = f"victim {what} under attack {format(prov[attacked], fmt)}"
        if prov.get(clean) is not None:
            text += f" (without attack {format(prov[clean], fmt)})"
        return text

    parts = [pair("return", "final_attacked_return", "final_clean_return", ".2f"),
             pair("win rate", "final_attacked_win", "final_clean_win", ".0%")]
    if prov.get("final_random_return") is not None:
        baseline = ("takeover_random" if str(prov.get("algo", "")).startswith("takeover")
                    else "msg_random")
        parts.append(f"under {baseline} {prov['final_random_return']:.2f}")
    parts = [p for p in parts if p]
    if prov.get("steps") is not None:
        parts.append(f"{int(prov['steps']):,} steps")
    return ", ".join(parts) or "no evaluation recorded"


def takeover_summary(prov: dict) -> str:
    """A team retrained against a hijacked teammate: its last round, before and after."""
    rounds = (prov.get("robust") or {}).get("per_round") or []
    if not rounds:
        return ""
    e = rounds[-1]
    return (f"; under the round-{e['round']} adversary {e['attacked_before']:.2f} → "
            f"{e['attacked_after']:.2f}, clean {e['clean_before']:.2f} → {e['clean_after']:.2f}")


_ATTACKER_PARAMS = {"msg_ppo": ("targets", "omega", "combine", "alpha", "sigma", "hidden"),
           "takeover_ppo": ("targets", "watch", "hidden"),
           "takeover_dev": ("targets", "watch", "hidden", "eta", "obs_weight", "model_hidden")}


def attacker_params(algo: str, params) -> dict:
    """--param pairs of msg_ppo and the takeover attackers, parsed and range-checked by their
    kind before any work."""
    if algo not in _ATTACKER_PARAMS:
        if params:
            raise click.UsageError("--param is for --algo msg_ppo|takeover_ppo|takeover_dev; "
                                   "atla and pa_ad take --eps and --norm")
        return {}
    return kind_params(algo, params, _ATTACKER_PARAMS[algo], f"{algo} trains with", full=True)
