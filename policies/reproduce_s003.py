"""Regenerating Table I of Guo et al., "Enhancing the Robustness of QMIX against
State-adversarial Attacks" (2023): five QMIX models on four SMAC maps under each attack.

Rows (§IV): vanilla QMIX; QMIX trained with FGSM perturbations (§IV-A); QMIX with the hinge
policy regulariser (§IV-B); QMIX trained alternately against an ATLA and a PA-AD adversary
(§IV-C/D). Columns: no attack, random noise, FGSM, PGD and the learned ATLA and PA-AD
attackers, each trained against the model it attacks (adaptive, `atla*` and `pa_ad*`). The
budget ε is the paper's: 0.2 on 2m_vs_1z, 3m and 3s_vs_3z, 0.05 on 2s3z.

Every policy is stored in the league as soon as it is trained and found again by its
provenance, so a long run that is interrupted resumes where it stopped; match cells are
recorded per map. `quick` uses the shipped starter teams (3m only) and small adaptive budgets.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from policies.errors import PolicyError
from policies.learners.train_defender import DefenderTrainConfig

PAPER = "s003"
MAPS = ("2m_vs_1z", "3m", "3s_vs_3z", "2s3z")
EPS = {"2m_vs_1z": 0.2, "3m": 0.2, "3s_vs_3z": 0.2, "2s3z": 0.05}
MODELS = ("qmix", "qmix_fgsm", "qmix_reg", "qmix_atla", "qmix_paad")
MODEL_TEXT = {"qmix": "vanilla QMIX", "qmix_fgsm": "FGSM-trained", "qmix_reg": "regularised",
              "qmix_atla": "ATLA-trained", "qmix_paad": "PA-AD-trained"}
_FROM_VANILLA = ("qmix_fgsm", "qmix_reg", "qmix_atla", "qmix_paad")  # fine-tuned from vanilla
ATTACKS = ("none", "random", "fgsm", "pgd")
ADAPTIVE = ("atla", "pa_ad")
COLUMNS = ATTACKS + tuple(f"{a}*" for a in ADAPTIVE)
COLUMN_TEXT = {"none": "natural", "random": "random", "fgsm": "FGSM", "pgd": "PGD",
               "atla*": "ATLA (adaptive)", "pa_ad*": "PA-AD (adaptive)"}

# Table I of the paper: test win rate (%) of each model under each attack, per map. The
# figures could not be checked against the paper's text here, so every entry is None ("not
# available") rather than a number that might not be the paper's; fill them from the paper.
PAPER_TABLE_I: dict[str, dict[str, dict[str, float | None]]] = {
    m: {model: {col: None for col in COLUMNS} for model in MODELS} for m in MAPS}


STARTER_ADAPTIVE_SEED = 10  # `arena matrix --adaptive … --seed 10` in the starter build


@dataclass
class ReproduceConfig:
    maps: list[str] = field(default_factory=lambda: list(MAPS))
    models: list[str] = field(default_factory=lambda: list(MODELS))
    quick: bool = False
    """Shipped starter policies only (3m): its teams and its adaptive attackers."""
    episodes: int = 32
    seed: int = 0
    steps: int = 2_000_000
    """Team training steps of each model (PyMARL's t_max on these maps)."""
    attacker_steps: int | None = None
    """Adaptive attacker budget (default 100 000, the budget of the starter's own adaptive
    attackers, which `quick` reuses)."""
    finetune_steps: int | None = None
    """Team steps of each robust model, fine-tuned from the vanilla one (default: a quarter
    of `steps`, the starter league's ratio)."""
    adv_fraction: float = DefenderTrainConfig.adv_fraction
    """Share of the robust models' training episodes played under their perturbation
    (DefenderTrainConfig.adv_fraction)."""
    robust_attacker_steps: int = 30_000
    """Adversary steps per alternation round of the ATLA/PA-AD-trained models."""
    rounds: int = 2
    device: str = "cpu"

    def robust_steps(self) -> int:
        return self.finetune_steps if self.finetune_steps is not None else max(1, self.steps // 4)

    def adaptive_steps(self) -> int:
        return self.attacker_steps if self.attacker_steps is not None else 100_000

    def adaptive_seed(self) -> int:
        """The table seed the adaptive attackers derive their seeds from: with `quick` (and the
        default budget) the one scripts/build_starter_league.sh trained the shipped ones with,
        so they are reused and nothing is trained."""
        return STARTER_ADAPTIVE_SEED if self.quick and self.attacker_steps is None else self.seed

    def validate(self) -> None:
        bad = [m for m in self.maps if m not in MAPS]
        if bad:
            raise PolicyError(f"unknown map {bad[0]!r} for {PAPER}; its maps: {', '.join(MAPS)}")
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            raise PolicyError(f"unknown model {bad[0]!r}; models: {', '.join(MODELS)}")
        if self.quick and self.maps != ["3m"]:
            missing = [m for m in self.maps if m != "3m"]
            raise PolicyError(f"--quick uses the shipped teams, which exist on 3m only, not on "
                              f"{', '.join(missing)}; give --maps 3m or drop --quick")
        if not 0.0 < self.adv_fraction <= 1.0:
            raise PolicyError(f"adv_fraction must lie in (0, 1], got {self.adv_fraction}")
        for name in ("episodes", "steps", "robust_attacker_steps", "rounds"):
            if getattr(self, name) < 1:
                raise PolicyError(f"{name} must be at least 1")
        if self.adaptive_steps() < 1:
            raise PolicyError("attacker steps must be at least 1")


@dataclass
class Hooks:
    """What the caller sees: `say(text)`; `train(name, steps)` before a training, then
    `progress(dict)`; `done()` after it; `fill(scenario)`: a context manager around a map's
    fill whose value has `callback(t, done)` and `set_episodes(cells)` (or is None)."""

    say: Callable[[str], None] = lambda text: None
    train: Callable[[str, int], None] = lambda name, steps: None
    progress: Callable[[dict], None] = lambda p: None
    done: Callable[[], None] = lambda: None
    fill: Callable = lambda scenario: contextlib.nullcontext(None)


# -- players -----------------------------------------------------------------------------------
def attack_ref(league_open: Callable, kind: str, eps: float) -> str:
    """A stored parameter-free attack of `kind` with budget ε: the starter's when its ε
    matches, else `s003_<kind>_eps<ε>`, added on first use."""
    from policies.build import build_policy_record

    name = f"{PAPER}_{kind}_eps{eps:g}"
    with league_open("r") as lg:
        for info in lg.list(role="attacker", kind=kind):
            if info.name in (kind, name) and info.scenario == "any" and \
                    abs(float(info.config.get("eps", -1)) - eps) < 1e-9:
                return info.ref
    rec = build_policy_record(name, kind, params=[f"eps={eps:g}"])
    with league_open("a") as lg:
        return lg.add_policy(**rec)


def shipped_defender(league_open: Callable, model: str, scenario: str) -> str:
    from policies.names import resolve_for

    with league_open("r") as lg:
        try:
            return resolve_for(lg, model, scenario)
        except Exception as exc:  # the league's own error says which name is missing
            raise PolicyError(f"--quick needs the shipped team {model} on {scenario}: {exc}") from None


def _spec(cfg: ReproduceConfig, model: str, scenario: str, eps: float) -> dict:
    """What makes a trained model the one this run needs (stored in its provenance)."""
    spec = {"paper": PAPER, "model": model, "scenario": scenario, "steps": cfg.steps,
            "seed": cfg.seed, "eps": eps}
    if model != "qmix":
        spec.update(finetune_steps=cfg.robust_steps(), adv_fraction=cfg.adv_fraction)
    if model in ("qmix_atla", "qmix_paad"):
        spec.update(rounds=cfg.rounds, attacker_steps=cfg.robust_attacker_steps)
    return spec


def find_trained(lg, name: str, spec: dict, role: str = "defender") -> str | None:
    """The newest complete version of `name` whose provenance says a reproduction with this
    `spec` made it (None: it must be trained)."""
    found = None
    for info in lg.list(role=role, all_versions=True):
        p = info.provenance
        if info.name == name and p.get("reproduce") == spec and not p.get("partial"):
            found = info.ref
    return found


def trained_defender(league_open: Callable, cfg: ReproduceConfig, model: str, scenario: str,
                     eps: float, hooks: Hooks, vanilla: str | None) -> str:
    """Find or train model `model` on `scenario`; stored as `s003_<model>.<scenario>`.

    FGSM training and the regulariser follow `arena train defender --adv fgsm` and
    `--reg policy --init <vanilla>`; the ATLA/PA-AD models alternate from the vanilla model
    (`train_robust_defender`)."""
    from policies.build import base_provenance
    from policies.learners.train_defender import DefenderTrainConfig, train_defender

    name = f"{PAPER}_{model}.{scenario}"
    spec = _spec(cfg, model, scenario, eps)
    with league_open("r") as lg:
        ref = find_trained(lg, name, spec)
        if ref is not None:
            hooks.say(f"reusing {ref}")
            return ref
        init = lg.get(vanilla) if model in _FROM_VANILLA else None
        lg.check_add(name, "defender", "qmix", scenario)
    steps = cfg.steps if model == "qmix" else cfg.robust_steps()
    base = dict(algo="qmix", scenario=scenario, steps=steps, seed=cfg.seed, adv_eps=eps,
                device=cfg.device)
    if init is not None:
        base.update(init=init.weights, init_config=init.config, adv_fraction=cfg.adv_fraction)
    hooks.train(name, steps)
    try:
        if model == "qmix":
            res = train_defender(DefenderTrainConfig(**base), on_progress=hooks.progress)
        elif model == "qmix_fgsm":
            res = train_defender(DefenderTrainConfig(**base, adv="fgsm"), on_progress=hooks.progress)
        elif model == "qmix_reg":
            res = train_defender(DefenderTrainConfig(**base, reg="policy"),
                                 on_progress=hooks.progress)
        else:
            from policies.observation.adversarial_training import train_robust_defender

            res = train_robust_defender(
                DefenderTrainConfig(**base), "atla" if model == "qmix_atla" else "pa_ad",
                cfg.rounds, cfg.robust_attacker_steps, hooks.progress)
    finally:
        hooks.done()
    prov = base_provenance(**{**res.provenance, "partial": res.partial, "reproduce": spec,
                              "parent": init.ref if init is not None else None,
                              "trained_against": f"{model} eps={eps:g}" if model != "qmix" else None})
    with league_open("a") as lg:
        ref = lg.add_policy(name, "defender", "qmix", scenario, res.config, res.weights, prov)
    hooks.say(f"stored {ref}")
    return ref


# -- one map -----------------------------------------------------------------------------------
@dataclass
class MapResult:
    scenario: str
    eps: float
    models: list[str]  # row names (MODELS order)
    defenders: list[str]  # their refs
    columns: list[str]  # COLUMNS
    attackers: list[str]  # refs of the ATTACKS columns, then the `<algo>*` labels
    win: list[list[float | None]]
    win_low: list[list[float | None]]  # 95 % Wilson interval of the win rate
    win_high: list[list[float | None]]
    ret: list[list[float | None]]
    ret_ci95: list[list[float | None]]
    episodes: list[list[int]]
    adaptive: dict  # algo → {defender ref: attacker ref}
    trained: list[str]  # refs trained by this run
    seconds: float
    heatmap: str | None = None


def run_map(league_open: Callable, cfg: ReproduceConfig, scenario: str, hooks: Hooks) -> MapResult:
    from policies.observation.adaptive import ensure_adaptive, fill_with_adaptive

    start = time.perf_counter()
    eps = EPS[scenario]
    trained: list[str] = []
    defenders = []
    if cfg.quick:
        defenders = [shipped_defender(league_open, m, scenario) for m in cfg.models]
    else:
        vanilla = None
        if "qmix" in cfg.models or set(cfg.models) & set(_FROM_VANILLA):
            vanilla = trained_defender(league_open, cfg, "qmix", scenario, eps, hooks, None)
        defenders = [vanilla if m == "qmix" else
                     trained_defender(league_open, cfg, m, scenario, eps, hooks, vanilla)
                     for m in cfg.models]
    attackers = [a if a == "none" else attack_ref(league_open, a, eps) for a in ATTACKS]
    small = cfg.quick  # a few parallel episodes keep tiny budgets from costing a full batch
    hook_train = hooks.train

    def on_train(name, steps):
        hooks.say(f"training {name} ({steps:,} steps)")
        hook_train(name, steps)

    adaptive = ensure_adaptive(league_open, scenario, defenders, list(ADAPTIVE),
                               cfg.adaptive_steps(), cfg.adaptive_seed(), eps, cfg.device,
                               envs=8 if small else 32, eval_episodes=8 if small else 64,
                               on_train=on_train, on_progress=hooks.progress,
                               on_done=lambda ref: hooks.done())
    trained += adaptive.trained
    with hooks.fill(scenario) as bar:
        res = fill_with_adaptive(league_open, scenario, defenders, attackers, adaptive,
                                 cfg.episodes, cfg.seed, cfg.device,
                                 on_step=bar.callback if bar is not None else None,
                                 on_plan=bar.set_episodes if bar is not None else None)
    t = res.table
    win, ret = np.asarray(t.win_rate, float), np.asarray(t.mean, float)
    n = np.asarray(t.count, float)
    low, high = wilson(win, n)

    def lists(a):
        return [[None if not math.isfinite(v) else float(v) for v in row] for row in a]

    return MapResult(scenario, eps, list(cfg.models), defenders, list(COLUMNS), list(t.attackers),
                     lists(win), lists(low), lists(high), lists(ret), lists(np.asarray(t.ci95, float)),
                     np.asarray(t.count, int).tolist(), adaptive.columns, trained,
                     time.perf_counter() - start)


def heatmap(result: MapResult, path: Path) -> Path:
    from arena.plots import payoff_heatmap

    win = np.array([[np.nan if v is None else v for v in row] for row in result.win])
    annot = [[("—" if w is None else f"{w:.0%}") + ("" if r is None else f"\n{r:.1f}")
              for w, r in zip(wr, rr)] for wr, rr in zip(result.win, result.ret)]
    return payoff_heatmap(win, result.models, result.columns, path,
                          f"{result.scenario}: test win rate (Guo et al. 2023, Table I)",
                          "win rate", annot, episodes=int(np.min(result.episodes)),
                          eps=result.eps)


# -- report ------------------------------------------------------------------------------------
def wilson(p: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval of a win rate p over n episodes (NaN where n = 0); unlike
    p ± z·sqrt(p(1-p)/n) it does not shrink to a point at 0 % or 100 %."""
    p, n = np.asarray(p, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        ok = n > 0
        return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


def _pct(x: float | None, low: float | None = None, high: float | None = None) -> str:
    if x is None:
        return "—"
    text = f"{100 * x:.0f}%"
    if low is not None and high is not None:
        text += f" [{100 * low:.0f}–{100 * high:.0f}]"
    return text


def _paper(x: float | None) -> str:
    return "n/a" if x is None else f"{x:g}%"


def markdown(results: list[MapResult], cfg: ReproduceConfig, seconds: float, device: str) -> str:
    lines = ["# Table I of Guo et al. (2023), regenerated",
             "",
             "Guo et al., \"Enhancing the Robustness of QMIX against State-adversarial Attacks\" "
             "(2023), Table I: the test win rate of five QMIX models under each attack.",
             "",
             f"- mode: {'quick (the shipped starter teams, 3m only)' if cfg.quick else 'full'}",
             f"- episodes per cell: {cfg.episodes}, seed {cfg.seed}, device {device}, "
             f"{seconds:.0f} s in all",
             f"- adaptive attackers (`atla*`, `pa_ad*`): trained against each row's own model, "
             f"{cfg.adaptive_steps():,} environment steps each"
             + (" (the starter league's own)" if cfg.quick and cfg.attacker_steps is None else "")
             + (" — a far smaller budget than the 100,000 of a full run, so these columns "
                "understate what a learned attacker does" if cfg.adaptive_steps() < 100_000
                else ""),
             ]
    if not cfg.quick:
        lines.append(f"- vanilla model: {cfg.steps:,} training steps, seed {cfg.seed}; the robust "
                     f"models fine-tuned from it for {cfg.robust_steps():,} steps, "
                     f"{cfg.adv_fraction:.0%} of their training episodes perturbed; ATLA/PA-AD "
                     f"models: {cfg.rounds} alternation rounds of {cfg.robust_attacker_steps:,} "
                     f"adversary steps")
    known = any(v is not None for m in PAPER_TABLE_I.values() for row in m.values()
                for v in row.values())
    lines += ["- each cell: our win rate [its 95% Wilson interval]"
              + (", then the paper's figure where it is known" if known else
                 "; the paper's figures are not available here, so none is shown (not filled "
                 "in rather than guessed)"), ""]
    for r in results:
        lines += [f"## {r.scenario} (ε = {r.eps:g})", ""]
        head = "| model | " + " | ".join(COLUMN_TEXT[c] for c in r.columns) + " |"
        lines += [head, "|---|" + "---:|" * len(r.columns)]
        for i, m in enumerate(r.models):
            ref = r.defenders[i]
            cells = []
            for j, c in enumerate(r.columns):
                paper = PAPER_TABLE_I.get(r.scenario, {}).get(m, {}).get(c)
                cells.append(_pct(r.win[i][j], r.win_low[i][j], r.win_high[i][j])
                             + ("" if paper is None else f" (paper {_paper(paper)})"))
            lines.append(f"| {MODEL_TEXT[m]} (`{ref}`) | " + " | ".join(cells) + " |")
        lines += ["", "Team return (mean ± 95% CI):", "",
                  "| model | " + " | ".join(COLUMN_TEXT[c] for c in r.columns) + " |",
                  "|---|" + "---:|" * len(r.columns)]
        for i, m in enumerate(r.models):
            cells = ["—" if r.ret[i][j] is None else
                     f"{r.ret[i][j]:.2f}" + ("" if r.ret_ci95[i][j] is None else
                                             f" ± {r.ret_ci95[i][j]:.2f}")
                     for j in range(len(r.columns))]
            lines.append(f"| {MODEL_TEXT[m]} | " + " | ".join(cells) + " |")
        lines.append("")
        if r.heatmap:
            lines += [f"![{r.scenario}]({Path(r.heatmap).name})", ""]
        lines += ["Attacks: " + ", ".join(f"{COLUMN_TEXT[c]} = `{a}`" for c, a in
                                            zip(r.columns, r.attackers) if "*" not in c)
                  + "; adaptive: " + "; ".join(
                      f"{algo}* = " + ", ".join(f"`{a}`" for a in col.values())
                      for algo, col in r.adaptive.items()),
                  f"Trained by this run: {', '.join(f'`{t}`' for t in r.trained) or 'nothing (all reused)'}; "
                  f"{r.seconds:.0f} s.", ""]
    return "\n".join(lines)


def reproduce(league_open: Callable, cfg: ReproduceConfig, out: Path,
              hooks: Hooks | None = None) -> tuple[Path, list[MapResult]]:
    """Regenerate Table I on `cfg.maps` into `out` (report.md, one heatmap per map,
    results.json); returns the report's path and the per-map results."""
    from arena.core import resolve_device

    cfg.validate()
    hooks = hooks or Hooks()
    device = str(resolve_device(cfg.device))
    cfg.device = device
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = []
    for scenario in cfg.maps:
        hooks.say(f"{scenario}: ε {EPS[scenario]:g}")
        r = run_map(league_open, cfg, scenario, hooks)
        r.heatmap = str(heatmap(r, out / f"table1_{scenario}.png"))
        results.append(r)
    seconds = time.perf_counter() - start
    report = out / "report.md"
    report.write_text(markdown(results, cfg, seconds, device))
    (out / "results.json").write_text(json.dumps(
        {"paper": PAPER, "config": asdict(cfg), "seconds": seconds,
         "maps": [asdict(r) for r in results], "paper_table_i": PAPER_TABLE_I}, indent=1))
    return report, results
