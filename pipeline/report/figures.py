"""Report figures, drawn on matplotlib Figure objects (no pyplot, no backend switching).

Every figure puts one row factor down the side (or one panel per level) and one column factor
across (or one colour per level), with short labels, so a 3 x 4 sweep stays readable.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

Series = dict[str, list[tuple[int, float]]]  # cell -> [(step, value)] per replicate, flattened


def heatmap(board: pd.DataFrame, row: str | None, col: str, metric: str, path: Path) -> Path:
    """Mean ± CI half-width per cell; tied-with-best cells framed, the best starred."""
    rows = _levels(board, row)
    cols = _levels(board, col)
    fig = Figure(layout="constrained", figsize=(1.55 * len(cols) + 2.8, 0.75 * len(rows) + 1.9))
    ax = fig.subplots()
    means = _grid(board, row, col, "mean", rows, cols)
    image = ax.imshow(means, cmap="viridis", aspect="auto")
    lo, hi = np.nanmin(means), np.nanmax(means)
    for (i, j), value in np.ndenumerate(means):
        cell = _cell(board, row, col, rows[i], cols[j])
        if cell is None:
            continue
        ax.text(j, i, _cell_text(cell, value), ha="center", va="center", fontsize=8,
                color="black" if value > lo + 0.6 * (hi - lo) else "white")
        if cell["tied_with_best"] or cell["is_best"]:
            ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=2.2,
                                   edgecolor="#ff3d7f"))
    ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(col, fontsize=9)
    ax.set_ylabel(row or "", fontsize=9)
    fig.colorbar(image, ax=ax, label=f"mean {metric}", shrink=0.9)
    ax.set_title(f"mean {metric} ± 95% CI half-width (★ best, framed: tied with the best)",
                 fontsize=9)
    return _save(fig, path)


def _cell_text(cell: pd.Series, value: float) -> str:
    if np.isnan(value):
        if cell.get("n_pruned", 0):
            return "pruned\n(halving)"
        return cell.get("status_note", "no finished\nreplicate")
    half = (cell["ci_high"] - cell["ci_low"]) / 2
    spread = f"\n±{half:.3f}" if np.isfinite(half) else "\n(1 replicate)"
    star = "★ " if cell["is_best"] else ""
    failed = int(cell["n_diverged"] + cell["n_failed"])
    note = f"\n{failed} failed/diverged" if failed else ""
    return f"{star}{value:.3f}{spread}{note}"


def interaction(residual: pd.DataFrame, row: str, col: str, metric: str, path: Path) -> Path:
    """The interaction residual: how much better (+) or worse (-) each pair does than its two
    main effects predict."""
    values = residual.to_numpy(dtype=float)
    fig = Figure(layout="constrained",
                 figsize=(1.45 * values.shape[1] + 2.8, 0.7 * values.shape[0] + 1.9))
    ax = fig.subplots()
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):  # dark cells at both ends of the diverging map: white text
            ax.text(j, i, f"{value:+.4f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(value) > 0.6 * limit else "black")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in residual.columns], rotation=20,
                  ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), [str(r) for r in residual.index], fontsize=8)
    ax.set_xlabel(col, fontsize=9)
    ax.set_ylabel(row, fontsize=9)
    fig.colorbar(image, ax=ax, label=f"{metric}: gain over the additive prediction",
                 shrink=0.9)
    ax.set_title("interaction: better (blue) or worse (red) than the two main effects predict",
                 fontsize=9)
    return _save(fig, path)


def effects(table: pd.DataFrame, path: Path) -> Path:
    """Share of variance per factor and interaction, with bootstrap 95% intervals."""
    terms = table[table["term"] != "residual"].sort_values("share")
    resid = table[table["term"] == "residual"]
    shown = pd.concat([resid, terms])
    fig = Figure(layout="constrained", figsize=(7.5, 0.45 * len(shown) + 1.4))
    ax = fig.subplots()
    y = np.arange(len(shown))
    share = shown["share"].to_numpy(float) * 100
    low = np.clip(share - shown["share_ci_low"].to_numpy(float) * 100, 0, None)
    high = np.clip(shown["share_ci_high"].to_numpy(float) * 100 - share, 0, None)
    colors = ["#bbbbbb" if t == "residual" else "#3b75af" for t in shown["term"]]
    ax.barh(y, share, xerr=np.nan_to_num([low, high]), color=colors, capsize=3)
    ax.set_yticks(y, [t.replace(":", " × ") for t in shown["term"]], fontsize=8)
    ax.set_xlabel("% of the variance of the metric across replicates (95% bootstrap CI)")
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def banded(series: pd.DataFrame, panel: str | None, colour: str, value: str, path: Path,
           ylabel: str, log: bool = False, title: str = "") -> Path:
    """One panel per ``panel`` level, one line per ``colour`` level: the mean over replicates
    of ``value`` per step, with a band from the lowest to the highest replicate.

    ``series``: a row per (run, step) with the factor columns, ``step`` and ``value``.
    """
    return _save(banded_figure(series, panel, colour, value, ylabel, log, title), path)


def banded_figure(series: pd.DataFrame, panel: str | None, colour: str, value: str,
                  ylabel: str, log: bool = False, title: str = "") -> Figure:
    """The figure :func:`banded` saves."""
    panels = _levels(series, panel)
    colours = _levels(series, colour)
    palette = matplotlib.colormaps["tab10"]
    fig = Figure(layout="constrained", figsize=(4.2 * len(panels) + 0.5, 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, squeeze=False)[0])
    for ax, level in zip(axes, panels, strict=True):
        part = series if panel is None else series[series[panel].astype(str) == level]
        for k, name in enumerate(colours):
            mine = part[part[colour].astype(str) == name]
            if mine.empty:
                continue
            by_step = mine.groupby("step")[value]
            steps = np.asarray(by_step.mean().index)
            # Markers too: a sweep of one epoch has one point per line, which a line alone hides.
            ax.plot(steps, by_step.mean().to_numpy(), color=palette(k % 10), label=name, lw=1.6,
                    marker="o", markersize=3)
            ax.fill_between(steps, by_step.min().to_numpy(), by_step.max().to_numpy(),
                            color=palette(k % 10), alpha=0.18, lw=0)
        _style(ax, level if panel else title, log)
    if series["step"].nunique() == 1:  # a lone step: an integer-wide axis instead of +-5%
        only = float(series["step"].iloc[0])
        for ax in axes:
            ax.set_xlim(only - 0.5, only + 0.5)
            ax.set_xticks([only])  # the integer locator falls back to fractions on this span
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False,
               title=colour, title_fontsize=8)
    if title and panel:
        fig.suptitle(title, fontsize=10)
    return fig


def _style(ax: Axes, title: str, log: bool) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")


def _levels(frame: pd.DataFrame, column: str | None) -> list[str]:
    return [""] if column is None else sorted(frame[column].astype(str).unique())


def _grid(board: pd.DataFrame, row: str | None, col: str, value: str, rows: list[str],
          cols: list[str]) -> np.ndarray:
    out = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = _cell(board, row, col, r, c)
            if cell is not None:
                out[i, j] = cell[value]
    return out


def _cell(board: pd.DataFrame, row: str | None, col: str, r: str, c: str) -> pd.Series | None:
    match = board[col].astype(str) == c
    if row is not None:
        match &= board[row].astype(str) == r
    found = board[match]
    return found.iloc[0] if len(found) else None


def _save(fig: Figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path
