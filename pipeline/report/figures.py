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
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from pipeline.report import digits

Series = dict[str, list[tuple[int, float]]]  # cell -> [(step, value)] per replicate, flattened


def heatmap(board: pd.DataFrame, row: str | None, col: str, metric: str, path: Path) -> Path:
    """Mean ± CI half-width per cell; tied-with-best cells framed, the best starred. The colour
    scale spans the cells inside Tukey's fences, so one far-off cell does not flatten the
    differences between the rest; a cell beyond them is grey and says "off scale"."""
    rows = _levels(board, row)
    cols = _levels(board, col)
    fig = Figure(layout="constrained", figsize=(1.55 * len(cols) + 2.8, 0.75 * len(rows) + 1.9))
    ax = fig.subplots()
    means = _grid(board, row, col, "mean", rows, cols)
    higher = bool(board.attrs.get("higher_is_better", True))
    places = digits.separating(board["mean"], higher)
    image, lo, hi = _means_image(ax, means, higher)
    for (i, j), value in np.ndenumerate(means):
        cell = _cell(board, row, col, rows[i], cols[j])
        if cell is None:
            continue
        off = np.isfinite(value) and not lo <= value <= hi
        ax.text(j, i, _cell_text(cell, value, places) + ("\n(off scale)" if off else ""),
                ha="center", va="center", fontsize=8, color=_ink(value, lo, hi, higher))
        if cell["tied_with_best"] or cell["is_best"]:
            ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=2.2,
                                   edgecolor="#ff3d7f"))
    ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(col, fontsize=9)
    ax.set_ylabel(row or "", fontsize=9)
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (bool(np.nanmin(means) < lo), bool(np.nanmax(means) > hi)), "neither")
    fig.colorbar(image, ax=ax, label=f"mean {metric}", shrink=0.9, extend=extend)
    ax.set_title(f"mean {metric} ± 95% CI half-width (★ best, framed: tied with the best)",
                 fontsize=9)
    return _save(fig, path)


def _means_image(ax: Axes, means: np.ndarray, higher: bool) -> tuple[AxesImage, float, float]:
    """The cells' means on the robust scale (best bright), cells beyond it grey."""
    lo, hi = robust_range(means)
    cmap = matplotlib.colormaps["viridis" if higher else "viridis_r"].with_extremes(
        under="#9a9a9a", over="#9a9a9a")
    return ax.imshow(means, cmap=cmap, vmin=lo, vmax=hi, aspect="auto"), lo, hi


def _ink(value: float, lo: float, hi: float, higher: bool) -> str:
    """Text colour on a cell of :func:`_means_image`: black on its bright end and on grey."""
    if not lo <= value <= hi:
        return "black"
    share = (value - lo) / (hi - lo)
    return "black" if (share > 0.6 if higher else share < 0.4) else "white"


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """The colour scale's ends: the lowest and highest value inside Tukey's fences (1.5
    interquartile ranges beyond the quartiles)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    q1, q3 = np.percentile(finite, [25, 75])
    inside = finite[(finite >= q1 - 1.5 * (q3 - q1)) & (finite <= q3 + 1.5 * (q3 - q1))]
    lo, hi = float(inside.min()), float(inside.max())
    pad = max(abs(lo) * 1e-3, 1e-3)  # all alike: a readable span around the one value
    return (lo, hi) if hi > lo else (lo - pad, hi + pad)


def _cell_text(cell: pd.Series, value: float, places: int = 3) -> str:
    if np.isnan(value):
        if cell.get("n_pruned", 0):
            return "pruned\n(halving)"
        return cell.get("status_note", "no finished\nreplicate")
    half = (cell["ci_high"] - cell["ci_low"]) / 2
    spread = f"\n±{half:.{places}f}" if np.isfinite(half) else "\n(1 replicate)"
    star = "★ " if cell["is_best"] else ""
    failed = int(cell["n_diverged"] + cell["n_failed"])
    note = f"\n{failed} failed/diverged" if failed else ""
    return f"{star}{value:.{places}f}{spread}{note}"


def interaction(residual: pd.DataFrame, board: pd.DataFrame, row: str, col: str, metric: str,
                path: Path) -> Path:
    """Two panels: which pairs are best (each cell's rank by mean, 1 = best), and the
    deviation from additivity (how much better or worse each pair does than its two main
    effects predict). The second alone would read as a ranking, which it is not."""
    values = residual.to_numpy(dtype=float)
    rows, cols = [str(r) for r in residual.index], [str(c) for c in residual.columns]
    fig = Figure(layout="constrained",
                 figsize=(2 * (1.3 * len(cols) + 1.6) + 0.8, 0.7 * len(rows) + 2.1))
    best_ax, dev_ax = fig.subplots(1, 2)
    _ranks_panel(best_ax, board, row, col, rows, cols, metric)
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    image = dev_ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):  # dark cells at both ends of the diverging map: white text
            dev_ax.text(j, i, f"{value:+.4f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(value) > 0.6 * limit else "black")
    _axes_labels(dev_ax, rows, cols, row, col)
    fig.colorbar(image, ax=dev_ax, label="deviation from additive", shrink=0.9)
    dev_ax.set_title("Deviation from additivity: blue = better together than\n"
                     "the two main effects predict, red = worse (not a ranking)", fontsize=9)
    return _save(fig, path)


def _ranks_panel(ax: Axes, board: pd.DataFrame, row: str, col: str, rows: list[str],
                 cols: list[str], metric: str) -> None:
    """Each pair's rank by mean (1 = best) and its mean, coloured by the mean on the
    heatmap's robust scale (so that tied pairs look alike, whatever their rank)."""
    ranked = board.dropna(subset=["mean"]).reset_index(drop=True)
    ranks = np.full((len(rows), len(cols)), np.nan)
    for k, cell in ranked.iterrows():
        if str(cell[row]) in rows and str(cell[col]) in cols:
            ranks[rows.index(str(cell[row])), cols.index(str(cell[col]))] = k + 1
    means = _grid(board, row, col, "mean", rows, cols)
    higher = bool(board.attrs.get("higher_is_better", True))
    _, lo, hi = _means_image(ax, means, higher)
    places = digits.separating(board["mean"], higher, least=4)
    for (i, j), rank in np.ndenumerate(ranks):
        if np.isfinite(rank):
            ax.text(j, i, f"#{int(rank)}\n{means[i, j]:.{places}f}", ha="center", va="center",
                    fontsize=8, color=_ink(means[i, j], lo, hi, higher))
    _axes_labels(ax, rows, cols, row, col)
    ax.set_title(f"Which pairs are best: rank by mean {metric}\n(#1 = best)", fontsize=9)


def _axes_labels(ax: Axes, rows: list[str], cols: list[str], row: str, col: str) -> None:
    ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(col, fontsize=9)
    ax.set_ylabel(row, fontsize=9)


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
           ylabel: str, log: bool = False, title: str = "", xlabel: str = "epoch") -> Path:
    """One panel per ``panel`` level, one line per ``colour`` level: the mean over replicates
    of ``value`` per step, with a band from the lowest to the highest replicate.

    ``series``: a row per (run, step) with the factor columns, ``step`` and ``value``.
    """
    return _save(banded_figure(series, panel, colour, value, ylabel, log, title, xlabel), path)


def banded_figure(series: pd.DataFrame, panel: str | None, colour: str, value: str,
                  ylabel: str, log: bool = False, title: str = "",
                  xlabel: str = "epoch") -> Figure:
    """The figure :func:`banded` saves."""
    panels = _levels(series, panel)
    colours = _levels(series, colour)
    palette = matplotlib.colormaps["tab10"]
    # Colour and line style both change per level, so lines that overlap stay told apart.
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v"]
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
                    ls=styles[k % len(styles)], marker=markers[k % len(markers)], markersize=3.5)
            ax.fill_between(steps, by_step.min().to_numpy(), by_step.max().to_numpy(),
                            color=palette(k % 10), alpha=0.18, lw=0)
        _style(ax, level if panel else title, log, xlabel)
    for ax, level in zip(axes, panels, strict=True):
        part = series if panel is None else series[series[panel].astype(str) == level]
        if part["step"].nunique() == 1:  # a lone step: an integer-wide axis instead of +-5%
            only = float(part["step"].iloc[0])
            ax.set_xlim(only - 0.5, only + 0.5)
            ax.set_xticks([only])  # the integer locator falls back to fractions on this span
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False,
               title=colour, title_fontsize=8)
    if title and panel:
        fig.suptitle(title, fontsize=10)
    return fig


def _style(ax: Axes, title: str, log: bool, xlabel: str = "epoch") -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")


def _levels(frame: pd.DataFrame, column: str | None) -> list[str]:
    """A column's levels: in a categorical column's own order, else sorted."""
    if column is None:
        return [""]
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories if (values == c).any()]
    return sorted(values.astype(str).unique())


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
