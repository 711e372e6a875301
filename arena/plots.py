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


def text_colour(rgba) -> str:
    """Black or white, whichever contrasts more with a cell of colour `rgba` (WCAG relative
    luminance; 0.179 is where both contrasts are equal)."""
    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(float(c)) for c in rgba[:3])
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "white"


def _eps_text(eps) -> str:
    return f"ε = {eps:g}" if isinstance(eps, (int, float)) else f"ε = {eps}"


def payoff_heatmap(values: np.ndarray, defenders, attackers, path: Path, title: str,
                   label: str, annot: list[list[str]] | None = None, *,
                   episodes: int | None = None, eps=None, scenario: str | None = None) -> Path:
    """The table as a heatmap (rows defenders, columns attackers).

    `title` starts with the scenario (`"3m: win rate"`) unless `scenario` is given. A second
    title line gives `episodes` per cell (the least any cell holds) and the budget `eps`: one
    number for every attack, or a mapping attacker ref → ε, written under each column instead.
    Empty cells (NaN) are grey with a dash.
    """
    plt = _plt()
    values = np.asarray(values, dtype=float)
    D, A = values.shape
    if scenario is None and ":" in title:
        scenario = title.split(":")[0]
    # colour-blind safe and monotone in lightness, so the order of cells survives greyscale
    cmap = plt.get_cmap("cividis").with_extremes(bad="#d9d9d9")
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * A, 1.6 + 0.55 * D))
    masked = np.ma.masked_invalid(values)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if label == "win rate":
        lo, hi = 0.0, 1.0  # the same colours mean the same win rate on every table
    im = ax.imshow(masked, cmap=cmap, aspect="auto", vmin=lo, vmax=hi if hi > lo else lo + 1)
    per_col = eps if isinstance(eps, dict) else None
    xt = [short(a, scenario) + (f"\n{_eps_text(per_col[a])}"
                                if per_col and per_col.get(a) is not None else "")
          for a in attackers]
    ax.set_xticks(range(A), xt, rotation=30 if not per_col else 0,
                  ha="right" if not per_col else "center")
    ax.set_yticks(range(D), [short(d, scenario) for d in defenders])
    ax.set_xlabel("attacker")
    ax.set_ylabel("defender")
    sub = []
    if episodes is not None:
        sub.append(f"{episodes} episodes per cell")
    if eps is not None and per_col is None:
        sub.append(_eps_text(eps))
    full = title if not scenario or title.startswith(scenario) else f"{scenario}: {title}"
    ax.set_title(full + ("\n" + ", ".join(sub) if sub else ""), fontsize=10)
    for i in range(D):
        for j in range(A):
            empty = not np.isfinite(values[i, j])
            text = "—" if empty else (annot[i][j] if annot else f"{values[i, j]:.2f}")
            colour = "black" if empty else text_colour(im.cmap(im.norm(values[i, j])))
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def curves(xs, series: dict[str, list[float | None]], path: Path, title: str, xlabel: str,
           ylabel: str | None = None) -> Path:
    """Lines over a shared x axis; a None value is a gap (the line still reaches every x)."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, ys in series.items():
        ys = [np.nan if y is None else y for y in ys]
        ax.plot(xs, ys, marker="o", markersize=4, label=name)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(xs):
        pad = max(0.25, 0.03 * (max(xs) - min(xs)))
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.grid(alpha=0.3)
    # below the axes, so that it never hides a point
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=max(1, len(series)),
              frameon=False, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def training_curve(xs, left: tuple[str, list[float]], right: tuple[str, list[float]] | None,
                   path: Path, title: str, xlabel: str = "environment steps",
                   extra: tuple = (), ylabel: str | None = None) -> Path:
    """A return on the left axis and, when given, a win rate (0 … 100 %) on the right one.

    `extra`: more lines on the left axis, as (label, ys, colour, line style); a None in any
    series is a gap. `ylabel` names the left axis when it holds more than one line."""
    plt = _plt()
    from matplotlib.ticker import PercentFormatter

    def gaps(ys):
        return [np.nan if y is None else y for y in ys]

    fig, ax = plt.subplots(figsize=(6.8, 4.2 if extra else 3.9))
    lines = ax.plot(xs, gaps(left[1]), color="#0072B2", label=left[0])
    for label, ys, colour, style in extra:
        lines += ax.plot(xs, gaps(ys), color=colour, linestyle=style, marker="o", markersize=3,
                         label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or left[0], color="#0072B2" if not extra else "black")
    if not extra:
        ax.tick_params(axis="y", colors="#0072B2")
    ax.grid(alpha=0.3)
    if right is not None and any(y is not None for y in right[1]):
        ax2 = ax.twinx()
        lines += ax2.plot(xs, gaps(right[1]), color="#D55E00", linestyle="--",
                          alpha=0.6 if extra else 1.0, label=right[0])
        ax2.set_ylim(-0.03, 1.03)
        ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax2.set_ylabel(right[0], color="#D55E00")
        ax2.tick_params(axis="y", colors="#D55E00")
    ax.set_title(title)
    # below the axes, so that it never hides the data
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center",
              bbox_to_anchor=(0.5, -0.18 if extra else -0.2), ncol=2, frameon=False, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def curve_panels(panels: list[tuple[str, str, dict[str, tuple[list, list]]]], path: Path,
                 title: str, xlabel: str = "environment steps") -> Path:
    """Side-by-side panels of learning curves, each (title, y label, {line: (xs, ys)}); lines
    of one name share a colour across panels, so a seed is followed from panel to panel."""
    plt = _plt()

    names = list(dict.fromkeys(n for _, _, lines in panels for n in lines))
    colours = dict(zip(names, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.6),
                             squeeze=False)
    for ax, (sub, ylabel, lines) in zip(axes[0], panels):
        for name, (xs, ys) in lines.items():
            ax.plot(xs, [np.nan if y is None else y for y in ys], color=colours[name],
                    label=name)
        ax.set_title(sub, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[n], label=n) for n in names]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(names)), frameon=False,
               fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
