"""Plots of what a policy's provenance records."""

from __future__ import annotations

from pathlib import Path

from arena.plots import training_curve
from policies.errors import PolicyError

# (return key, win key, what the curve measures, axis label of the return) per kind of
# curve: defenders record greedy test episodes; learned attackers (policies.observation.
# train_attacker) record the victim's return and win rate under attack per training step.
_CURVES = (
    ("test_return", "test_win", "greedy test episodes", "test return"),
    ("victim_return", "victim_win", "victim under attack", "victim return under attack"),
)

# Returns under attack recorded at a defender's test points (policies.learners.train_defender),
# drawn on the return axis beside the clean return; curves stored before they existed lack
# the keys and plot as before.
_UNDER_ATTACK = (
    ("fgsm_return", "under FGSM", "#009E73", "--"),
    ("pgd_return", "under PGD-10", "#CC79A7", "-."),
    ("adv_return", "under the learned adversary", "#E69F00", ":"),
)


def plot_training_curve(provenance: dict, path: Path, title: str) -> Path:
    curve = provenance.get("curve") or []
    if not curve:
        raise PolicyError(f"{title} has no training curve in its provenance")
    for ret_key, win_key, what, ylabel in _CURVES:
        if all(ret_key in c for c in curve):
            break
    else:
        keys = sorted({k for c in curve for k in c} - {"steps", "wall_s"})
        raise PolicyError(f"{title}: its training curve records {', '.join(keys) or 'nothing'}, "
                          f"not a return to plot")
    xs = [c["steps"] for c in curve]
    extra = [(label, [c.get(key) for c in curve], colour, style)
             for key, label, colour, style in _UNDER_ATTACK
             if ret_key == "test_return" and any(c.get(key) is not None for c in curve)]
    if extra:
        eps = (provenance.get("test_attacks") or {}).get("eps")
        return _robust_curve(xs, [c[ret_key] for c in curve], extra,
                             [c.get(win_key) for c in curve], path,
                             f"{title}: {what}" + (f" (ε = {eps:g})" if eps is not None else ""))
    right = None
    if any(c.get(win_key) is not None for c in curve):
        right = ("win rate" if ret_key == "test_return" else "victim win rate",
                 [c.get(win_key) for c in curve])
    return training_curve(xs, (ylabel, [c[ret_key] for c in curve]), right, path,
                          f"{title}: {what}")


def _robust_curve(xs, clean, extra, wins, path: Path, title: str) -> Path:
    """The clean test return and the returns under attack on the left axis, the clean win
    rate on the right one (as arena.plots.training_curve, with more lines on the left)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    def gaps(ys):
        return [np.nan if y is None else y for y in ys]

    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    lines = ax.plot(xs, clean, color="#0072B2", label="test return (clean)")
    for label, ys, colour, style in extra:
        lines += ax.plot(xs, gaps(ys), color=colour, linestyle=style, marker="o",
                         markersize=3, label=f"return {label}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("test return")
    ax.grid(alpha=0.3)
    if any(w is not None for w in wins):
        ax2 = ax.twinx()
        lines += ax2.plot(xs, gaps(wins), color="#D55E00", linestyle="--", alpha=0.6,
                          label="win rate (clean)")
        ax2.set_ylim(-0.03, 1.03)
        ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax2.set_ylabel("win rate (clean)", color="#D55E00")
        ax2.tick_params(axis="y", colors="#D55E00")
    ax.set_title(title)
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center",
              bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
