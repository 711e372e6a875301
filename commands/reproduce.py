"""Regenerating a paper's results table from the league."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import Ctx, Reporter, emit, json_option
from commands.reproduce_s002 import s002
from commands.options import EPISODES, SEED

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def reproduce():
    """Regenerate a paper's results on our scenarios: trains (or reuses) what it needs, fills
    the tables and writes a Markdown report beside the paper's figures.

    \b
    Papers:
      s002  Xue et al. (2022), ℜ-MACRL: attacks on messages and the message filter
      s003  Guo et al. (2023): Table I, robust QMIX under observation attacks

    \b
    Examples:
      arena reproduce s003 --quick --out report/
      arena reproduce s002 --quick --out report_s002/
    """


@reproduce.command(
    "s003", short_help="Guo et al. (2023), Table I: robust QMIX under observation attacks.")
@click.option("--quick", is_flag=True,
              help="The shipped starter policies only (3m): its teams and its adaptive "
                   "attackers; nothing is trained, well under a minute.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s003", show_default=True,
              help="Folder of the Markdown report, the heatmaps and results.json.")
@click.option("--maps", help="Comma-separated maps (default: 2m_vs_1z,3m,3s_vs_3z,2s3z; "
                             "3m with --quick).")
@click.option("--models", help="Comma-separated rows (default: qmix,qmix_fgsm,qmix_reg,"
                               "qmix_atla,qmix_paad).")
@click.option("--episodes", type=EPISODES, default=32, show_default=True, help="Episodes per cell.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=2_000_000, show_default=True,
              help="Training steps of each model (not with --quick).")
@click.option("--finetune-steps", type=click.IntRange(min=1),
              help="Training steps of each robust model, fine-tuned from the vanilla one  "
                   "[default: a quarter of --steps]")
@click.option("--adv-fraction", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, min_open=True),
              help="Share of the robust models' training episodes played under their "
                   "perturbation; the rest clean.")
@click.option("--attacker-steps", type=click.IntRange(min=1),
              help="Steps of each adaptive ATLA/PA-AD attacker  [default: 100000, which "
                   "--quick finds in the starter league]")
@click.option("--robust-attacker-steps", type=click.IntRange(min=1), default=30_000,
              show_default=True, help="Adversary steps per round of the ATLA/PA-AD-trained models.")
@click.option("--rounds", type=click.IntRange(min=1), default=2, show_default=True,
              help="Alternation rounds of the ATLA/PA-AD-trained models.")
@json_option
@click.pass_obj
def s003(ctx: Ctx, quick, out, maps, models, episodes, seed, steps, finetune_steps, adv_fraction,
          attacker_steps, robust_attacker_steps, rounds):
    """Table I of Guo et al. (2023), robust QMIX under observation attacks.

    On 2m_vs_1z, 3m, 3s_vs_3z and 2s3z (ε 0.2; 0.05 on
    2s3z): vanilla, FGSM-trained, regularised, ATLA- and PA-AD-trained QMIX under no attack,
    random noise, FGSM, PGD and ATLA/PA-AD attackers trained against each model. Every trained
    policy is stored at once, so an interrupted run resumes where it stopped.

    \b
    Examples:
      arena reproduce s003 --quick --out report/
      arena reproduce s003 --maps 3m,2s3z --steps 1000000
    """
    paper = "s003"
    import time

    from policies import reproduce_s003 as s003

    def names(text, default):
        return [x.strip() for x in text.split(",") if x.strip()] if text else list(default)

    cfg = s003.ReproduceConfig(
        maps=names(maps, ["3m"] if quick else s003.MAPS), models=names(models, s003.MODELS),
        quick=quick, episodes=episodes, seed=seed, steps=steps, finetune_steps=finetune_steps,
        adv_fraction=adv_fraction, attacker_steps=attacker_steps,
        robust_attacker_steps=robust_attacker_steps, rounds=rounds, device=ctx.device)
    rep = Reporter(ctx)
    start = time.perf_counter()
    try:
        report, results = s003.reproduce(ctx.open, cfg, out, rep.hooks(s003.Hooks))
    finally:
        rep.close()
    seconds = time.perf_counter() - start
    data = {"paper": paper, "report": str(report), "seconds": seconds,
            "heatmaps": [r.heatmap for r in results],
            "maps": {r.scenario: {"models": r.models, "columns": r.columns, "win": r.win,
                                  "return": r.ret, "trained": r.trained} for r in results}}

    def human():
        click.echo(report.read_text(), nl=False)
        click.echo(f"\nreport written to {report} ({seconds:.0f} s)")

    emit(ctx, data, human)


reproduce.add_command(s002)

COMMANDS = [reproduce]
