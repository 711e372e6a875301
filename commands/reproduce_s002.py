"""`arena reproduce s002`: ℜ-MACRL (Xue et al. 2022) on our scenarios."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import Ctx, Reporter, emit, json_option
from commands.options import EPISODES, parse_seeds

_STEPS = click.IntRange(min=1)


@click.command(
    "s002", short_help="Xue et al. (2022), ℜ-MACRL: message attacks, the filter, Table 3.")
@click.option("--quick", is_flag=True,
              help="The starter league's shipped message policies on pp7 (CommNet team, "
                   "msg_ppo attackers, filters, one ℜ-MACRL run); nothing is trained, about a "
                   "minute.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s002", show_default=True,
              help="Folder of the Markdown report, the learning curves and results.json.")
@click.option("--scenarios", help="Comma-separated (default: pp7,pp7_p05; pp7 with --quick); "
                                  "also tj_easy, tj_hard.")
@click.option("--seeds", callback=parse_seeds,
              help="Comma-separated training seeds  [default: 0,1,2; 0 with --quick]")
@click.option("--episodes", type=EPISODES, default=64, show_default=True,
              help="Episodes per table cell.")
@click.option("--team-steps", type=_STEPS,
              help="Steps of each communicating team  [default: per scenario, 400,000 on pp7]")
@click.option("--attacker-steps", type=_STEPS, default=300_000, show_default=True,
              help="Steps of each msg_ppo attacker.")
@click.option("--filter-steps", type=_STEPS, default=100_000, show_default=True,
              help="Steps of each message filter.")
@click.option("--alpha", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="msg_ppo's penalty weight α on the change of the message (Eq. 1), for every "
                   "attacker; 0: unpenalised.")
@click.option("--psro-iterations", type=click.IntRange(min=0), default=2, show_default=True,
              help="ℜ-MACRL iterations for Table 3 (0: no Table 3).")
@click.option("--psro-steps", type=_STEPS, default=100_000, show_default=True,
              help="Steps of each ℜ-MACRL oracle.")
@json_option
@click.pass_obj
def s002(ctx: Ctx, quick, out, scenarios, seeds, episodes, team_steps, attacker_steps,
         filter_steps, alpha, psro_iterations, psro_steps):
    """ℜ-MACRL (Xue et al., AAMAS 2022): attacks on messages and the message filter.

    Per scenario and seed: a communicating team (CommNet on pp7 and pp7_p05, TarMAC on the
    traffic junctions), a msg_ppo attacker against it, a message filter against that attacker
    and random messages, an attacker retrained against the frozen filter, and the same with
    two malicious agents; one message table per seed; then one ℜ-MACRL run per scenario for
    Table 3. Every trained policy is stored at once, so an interrupted run resumes where it
    stopped.

    \b
    Examples:
      arena reproduce s002 --quick --out report/
      arena reproduce s002 --scenarios pp7,pp7_p05 --seeds 0,1,2
      arena reproduce s002 --scenarios tj_easy --seeds 0 --psro-iterations 0
    """
    import time

    from policies import reproduce_s002 as s002m
    from policies.reproduce_s002_report import reproduce, summary

    names = [x.strip() for x in scenarios.split(",") if x.strip()] if scenarios else \
        (["pp7"] if quick else list(s002m.SCENARIOS))
    cfg = s002m.S002Config(scenarios=names, seeds=seeds or ([0] if quick else [0, 1, 2]),
                           quick=quick, episodes=episodes, team_steps=team_steps,
                           attacker_steps=attacker_steps, filter_steps=filter_steps,
                           psro_iterations=psro_iterations, psro_steps=psro_steps, alpha=alpha,
                           device=ctx.device)
    rep = Reporter(ctx)
    start = time.perf_counter()
    try:
        report, results = reproduce(ctx.open, cfg, out, rep.hooks(s002m.Hooks))
    finally:
        rep.close()
    seconds = time.perf_counter() - start
    data = {"paper": "s002", "report": str(report), "seconds": seconds,
            "scenarios": {r.scenario: {"algo": r.algo, "metric": r.metric,
                                       "summary": summary(r), "curves": r.curves,
                                       "table3": None if r.table3 is None else {
                                           "run": r.table3.run_id, "rmacrl": r.table3.rmacrl,
                                           "single": r.table3.single}}
                          for r in results}}

    def human():
        click.echo(report.read_text(), nl=False)
        click.echo(f"\nreport written to {report} ({seconds:.0f} s)")

    emit(ctx, data, human)
