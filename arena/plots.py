"""Pictures: the payoff heatmap, training curves and PSRO runs (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def short(ref: str, scenario: str | None = None) -> str:
    """Display name: no `@v1`, and no `.<scenario>` suffix when the table is for that scenario."""
    name = ref[:-3] if ref.endswith("@v1") else ref
    if scenario:
        name = name.replace(f".{scenario}@", "@")
        if name.endswith(f".{scenario}"):
            name = name[: -len(scenario) - 1]
    return name


def payoff_heatmap(values: np.ndarray, defenders, attackers, path: Path, title: str,
                   label: str, annot: list[list[str]] | None = None) -> Path:
    plt = _plt()
    D, A = values.shape
    fig, ax = plt.subplots(figsize=(1.6 + 1.25 * A, 1.0 + 0.55 * D))
    im = ax.imshow(values, cmap="RdYlGn", aspect="auto")
    scenario = title.split(":")[0] if ":" in title else None
    ax.set_xticks(range(A), [short(a, scenario) for a in attackers], rotation=30, ha="right")
    ax.set_yticks(range(D), [short(d, scenario) for d in defenders])
    ax.set_xlabel("attacker")
    ax.set_ylabel("defender")
    ax.set_title(title)
    for i in range(D):
        for j in range(A):
            text = annot[i][j] if annot else ("—" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def curves(xs, series: dict[str, list[float]], path: Path, title: str, xlabel: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
