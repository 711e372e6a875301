"""`arena reproduce PAPER`: regenerating a paper's results from the league (s000: MARNet
backdoors; s001: TRAM training-time attacks; s002: ℜ-MACRL, Xue et al. 2022; s003: Table I
of Guo et al. 2023; s004: adversarial teammates, Wu et al. 2021)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from commands.common import Ctx, Reporter, emit, json_option
from commands.options import EPISODES, SEED, parse_seeds, ray_option

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def reproduce():
    """Regenerate a paper's results on our scenarios: trains (or reuses) what it needs, fills
    the tables and writes a Markdown report beside the paper's figures.

    \b
    Papers:
      s000  MARNet: backdoors in cooperative MARL, Tables 1-3 and the SMAC-style experiment
      s001  TRAM: training-time attacks on one agent's sampling (DOP, MAPPO)
      s002  Xue et al. (2022), ℜ-MACRL: attacks on messages and the message filter
      s004  Wu et al. (2021): adversarial teammates, deviation terms, adversarial retraining
      s003  Guo et al. (2023): Table I, robust QMIX under observation attacks

    \b
    Examples:
      arena reproduce s003 --quick --out report/
      arena reproduce s002 --quick --out report_s002/
      arena reproduce s001 --ray head:6379   # trainings and tables on a Ray cluster
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
    from policies import reproduce_s003 as s003

    def names(text, default):
        return [x.strip() for x in text.split(",") if x.strip()] if text else list(default)

    cfg = s003.ReproduceConfig(
        maps=names(maps, ["3m"] if quick else s003.MAPS), models=names(models, s003.MODELS),
        quick=quick, episodes=episodes, seed=seed, steps=steps, finetune_steps=finetune_steps,
        adv_fraction=adv_fraction, attacker_steps=attacker_steps,
        robust_attacker_steps=robust_attacker_steps, rounds=rounds, device=ctx.device)
    report, results, seconds = _run_paper(
        ctx, lambda rep: s003.reproduce(ctx.open, cfg, out, rep.hooks(s003.Hooks)))
    data = {"paper": paper, "report": str(report), "seconds": seconds,
            "heatmaps": [r.heatmap for r in results],
            "maps": {r.scenario: {"models": r.models, "columns": r.columns, "win": r.win,
                                  "return": r.ret, "trained": r.trained} for r in results}}
    _emit_report(ctx, report, data, seconds)



_STEPS = click.IntRange(min=1)


@reproduce.command(
    "s002", short_help="Xue et al. (2022), ℜ-MACRL: message attacks, the filter, Table 3.")
@click.option("--quick", is_flag=True,
              help="The starter league's shipped message policies on pp7 (CommNet team, "
                   "msg_ppo attackers, filters, one ℜ-MACRL run); nothing is trained, well under a "
                   "minute.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s002", show_default=True,
              help="Folder of the Markdown report, the learning curves and results.json.")
@click.option("--scenarios", help="Comma-separated (default: pp7,pp7_p05; pp7 with --quick); "
                                  "also tj_easy, tj_hard, 1o_2m_scout.")
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
    traffic junctions, NDQ on 1o_2m_scout), a msg_ppo attacker against it, a message filter
    against that attacker and random messages, an attacker retrained against the frozen
    filter, and the same with two malicious agents; one message table per seed; then one
    ℜ-MACRL run per scenario for Table 3. Every trained policy is stored at once, so an
    interrupted run resumes where it stopped.

    \b
    Examples:
      arena reproduce s002 --quick --out report/
      arena reproduce s002 --scenarios pp7,pp7_p05 --seeds 0,1,2
      arena reproduce s002 --scenarios tj_easy --seeds 0 --psro-iterations 0
    """
    from solvers import reproduce_s002 as s002m
    from solvers.reproduce_s002_report import reproduce, summary

    names = [x.strip() for x in scenarios.split(",") if x.strip()] if scenarios else \
        (["pp7"] if quick else list(s002m.SCENARIOS))
    cfg = s002m.S002Config(scenarios=names, seeds=seeds or ([0] if quick else [0, 1, 2]),
                           quick=quick, episodes=episodes, team_steps=team_steps,
                           attacker_steps=attacker_steps, filter_steps=filter_steps,
                           psro_iterations=psro_iterations, psro_steps=psro_steps, alpha=alpha,
                           device=ctx.device)
    report, results, seconds = _run_paper(
        ctx, lambda rep: reproduce(ctx.open, cfg, out, rep.hooks(s002m.Hooks)))
    data = {"paper": "s002", "report": str(report), "seconds": seconds,
            "scenarios": {r.scenario: {"algo": r.algo, "metric": r.metric,
                                       "summary": summary(r), "curves": r.curves,
                                       "table3": None if r.table3 is None else {
                                           "run": r.table3.run_id, "rmacrl": r.table3.rmacrl,
                                           "single": r.table3.single}}
                          for r in results}}
    _emit_report(ctx, report, data, seconds)


@reproduce.command("s000", short_help="MARNet: backdoors in cooperative MARL (Tables 1-3).")
@click.option("--quick", is_flag=True,
              help="The shipped starter league's stag10 policies only (one seed, QMIX); "
                   "nothing is trained but the Table 3 defences it lacks.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s000", show_default=True,
              help="Folder of the Markdown report and results.json.")
@click.option("--seeds", callback=parse_seeds, help="Poisoning seeds [default: 0,1,2].")
@click.option("--episodes", type=EPISODES, default=64, show_default=True,
              help="Episodes per team and trigger size.")
@click.option("--poison-steps", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Poisoning steps of each backdoored team (from its expert).")
@click.option("--finetune-steps", default="20000,100000", show_default=True,
              help="Fine-tune1,Fine-tune2 budgets (Table 3); fine-pruning fine-tunes for the "
                   "first.")
@click.option("--smac/--no-smac", default=True, show_default=True,
              help="Also the SMAC-style experiment on 3m_marker.")
@json_option
@click.pass_obj
def s000(ctx: Ctx, quick, out, seeds, episodes, poison_steps, finetune_steps, smac):
    """MARNet (backdoor attacks on cooperative MARL): Tables 1-3 and the SMAC-style experiment.

    The clean experts (qmix.stag10, vdn.stag10, qmix.3m_marker) must be in the league;
    every backdoored team it lacks is trained from them and stored at once, so an interrupted
    run resumes. scripts/s000_lanes.sh trains all of it in two parallel lanes.

    \b
    Examples:
      arena reproduce s000 --quick --out report/
      scripts/s000_lanes.sh league.h5 && arena --league league.h5 reproduce s000
    """
    from arena.core import resolve_device
    from policies.reproduce_s003 import Hooks
    from solvers.reproduce_s000 import S000Config
    from solvers.reproduce_s000_report import reproduce as run_s000

    try:
        budgets = tuple(int(x) for x in finetune_steps.split(","))
    except ValueError:
        budgets = ()
    if len(budgets) != 2 or min(budgets) < 1:
        raise click.BadParameter("two positive step counts, e.g. 20000,100000",
                                 param_hint="--finetune-steps")
    cfg = S000Config(seeds=seeds or ([0] if quick else [0, 1, 2]), episodes=episodes,
                     poison_steps=poison_steps, finetune_steps=budgets, quick=quick,
                     smac=smac and not quick, device=str(resolve_device(ctx.device)))
    report, data, _ = _run_paper(ctx, lambda rep: run_s000(ctx.open, cfg, out, rep.hooks(Hooks)))
    _emit_report(ctx, report, {"paper": "s000", "report": str(report), **data})


@reproduce.command("s004", short_help="Wu et al. (2021): adversarial teammates and retraining.")
@click.option("--quick", is_flag=True,
              help="The shipped starter's 3m policies only (one seed); nothing is trained.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s004", show_default=True,
              help="Folder of the Markdown report, results.json and the curves.")
@click.option("--seeds", callback=parse_seeds, help="Attacker seeds [default: 0,1,2].")
@click.option("--scenarios", default="3m,pp7", show_default=True)
@click.option("--episodes", type=EPISODES, default=64, show_default=True,
              help="Episodes per cell of the retraining and transfer tables.")
@click.option("--team-steps", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Team steps of the adversarial retraining.")
@json_option
@click.pass_obj
def s004(ctx: Ctx, quick, out, seeds, scenarios, episodes, team_steps):
    """Adversarial teammates: takeover_ppo vs takeover_dev learning curves, adversarial
    retraining and transfer, on 3m and pp7 against qmix.<scenario>.

    Every policy it lacks is trained and stored at once (named s004_*), so an interrupted
    run resumes and a rerun trains nothing.

    \b
    Examples:
      arena init --starter && arena reproduce s004 --quick --out report/
      arena reproduce s004 --seeds 0,1,2
    """
    from arena.core import resolve_device
    from policies.reproduce_s003 import Hooks
    from solvers.reproduce_s004 import S004Config
    from solvers.reproduce_s004_report import reproduce as run_s004

    names = tuple(x.strip() for x in scenarios.split(",") if x.strip())
    if quick:
        names = tuple(n for n in names if n == "3m") or ("3m",)
    bad = [n for n in names if n not in ("3m", "pp7")]
    if bad:
        raise click.BadParameter(f"{bad[0]}: s004 runs on 3m and pp7", param_hint="--scenarios")
    cfg = S004Config(scenarios=names, seeds=seeds or [0, 1, 2], episodes=episodes,
                     team_steps=team_steps, quick=quick,
                     device=str(resolve_device(ctx.device)))
    if quick:
        cfg.seeds = [0]
    report, data, _ = _run_paper(ctx, lambda rep: run_s004(ctx.open, cfg, out, rep.hooks(Hooks)))
    _emit_report(ctx, report, {"paper": "s004", "report": str(report), **data})



@reproduce.command("s001", short_help="TRAM: training-time attacks on one agent's sampling.")
@click.option("--quick", is_flag=True,
              help="A reduced sweep in minutes: 3m, DOP, 2 seeds, short trainings.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default="reproduce_s001", show_default=True,
              help="Folder of the Markdown report, results.json and the curves.")
@click.option("--seeds", callback=parse_seeds, help="Training seeds [default: 0,1,2,3,4].")
@click.option("--scenarios", default="3m,spread,2s3z", show_default=True,
              help="Comma-separated (3m, spread, SMAC-style maps); the first gets 5 seeds, "
                   "the sweeps and MAPPO.")
@click.option("--steps", type=click.IntRange(min=1),
              help="Training steps of every run [default: 100000 on spread, 200000 on maps].")
@click.option("--jobs", type=click.IntRange(1, 256), default=2, show_default=True,
              help="Trainings run at once, in separate processes.")
@json_option
@click.pass_obj
def s001(ctx: Ctx, quick, out, seeds, scenarios, steps, jobs):
    """TRAM: DOP (and MAPPO) trained while one agent samples from perturbed logits.

    Curves of clean / random / J-based / variance-based training at f_A = 1, KL^U = 6, the f_A
    and KL^U sweeps, and Table 1 (log-likelihood of being abnormal). Every run is a training
    cell stored at once (s001_*), so an interrupted run resumes and a rerun trains nothing.

    \b
    Examples:
      arena reproduce s001 --quick --out report/
      arena reproduce s001 --scenarios 3m,spread --jobs 2
    """
    from arena.core import resolve_device
    from arena.scenarios import REGISTRY
    from solvers.reproduce_s001 import S001Config, quick_config
    from solvers.reproduce_s001_report import reproduce as run_s001

    device = str(resolve_device(ctx.device))
    names = tuple(x.strip() for x in scenarios.split(",") if x.strip())
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        raise click.BadParameter(f"unknown scenario {bad[0]}", param_hint="--scenarios")
    cfg = quick_config(device) if quick else S001Config(device=device)
    if not quick:
        cfg.scenarios = names
        cfg.sweep_scenarios = cfg.mappo_scenarios = names[:1]
        for n in names:
            cfg.steps.setdefault(n, 200_000)
            cfg.test_every.setdefault(n, 10_000)
            cfg.agent.setdefault(n, 0)
    if seeds:
        cfg.seeds = seeds
    if steps:
        cfg.steps = {n: steps for n in cfg.scenarios}
        cfg.test_every = {n: max(1, steps // 20) for n in cfg.scenarios}
    cfg.workers = jobs
    report, data, _ = _run_paper(ctx, lambda rep: run_s001(ctx.open, cfg, out, rep))
    _emit_report(ctx, report, {"paper": "s001", "report": str(report), **data})


def _run_paper(ctx: Ctx, run):
    """`run(reporter)` → (report path, results), with the progress reporter closed whatever
    happens; returns them and the seconds it took."""
    rep = Reporter(ctx)
    start = time.perf_counter()
    try:
        report, results = run(rep)
    finally:
        rep.close()
    return report, results, time.perf_counter() - start


def _emit_report(ctx: Ctx, report: Path, data: dict, seconds: float | None = None) -> None:
    """The report itself for people, `data` for --json."""
    def human():
        click.echo(report.read_text(), nl=False)
        took = "" if seconds is None else f" ({seconds:.0f} s)"
        click.echo(f"\nreport written to {report}{took}")

    emit(ctx, data, human)


# every paper fills tables and trains teams through the same fills and training cells
for _cmd in reproduce.commands.values():
    ray_option(_cmd)

COMMANDS = [reproduce]
