"""Plots of what a policy's provenance records."""

from __future__ import annotations

from pathlib import Path

from arena.plots import curves
from policies.errors import PolicyError


def plot_training_curve(provenance: dict, path: Path, title: str) -> Path:
    curve = provenance.get("curve") or []
    if not curve:
        raise PolicyError(f"{title} has no training curve in its provenance")
    xs = [c["steps"] for c in curve]
    series = {"test return": [c["test_return"] for c in curve]}
    if any(c.get("test_win") is not None for c in curve):
        series["test win rate"] = [c.get("test_win") or 0.0 for c in curve]
    return curves(xs, series, path, f"{title}: greedy test episodes", "environment steps")
