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
    right = None
    if any(c.get(win_key) is not None for c in curve):
        right = ("win rate" if ret_key == "test_return" else "victim win rate",
                 [c.get(win_key) for c in curve])
    if extra:
        eps = (provenance.get("test_attacks") or {}).get("eps")
        return training_curve(
            xs, ("test return (clean)", [c[ret_key] for c in curve]),
            right and ("win rate (clean)", right[1]), path,
            f"{title}: {what}" + (f" (ε = {eps:g})" if eps is not None else ""),
            extra=[(f"return {label}", ys, colour, style) for label, ys, colour, style in extra],
            ylabel="test return")
    return training_curve(xs, (ylabel, [c[ret_key] for c in curve]), right, path,
                          f"{title}: {what}")
