"""Report figures: a heatmap of the metric over the grid, and validation curves."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Leaderboard columns that can vary between configurations; the heatmap's rows and
# columns are fixed, the others become facets.
ROW, COL = "hidden_activation", "head"
FACET_CANDIDATES = ("architecture", "initializer", "optimizer")


def with_head(board: pd.DataFrame) -> pd.DataFrame:
    """A ``head`` column, 'loss (output activation)': output and loss are chosen together."""
    out = board.copy()
    out[COL] = out["loss"].astype(str) + " (" + out["output_activation"].astype(str) + ")"
    return out


def heatmap(board: pd.DataFrame, metric: str, path: Path) -> Path:
    """Rows: hidden activation; columns: loss (output); one panel per other varying choice."""
    df = with_head(board)
    facets = [c for c in FACET_CANDIDATES if df[c].nunique(dropna=False) > 1]
    groups = list(df.groupby(facets, dropna=False)) if facets else [((), df)]
    n = len(groups)
    cols = min(n, 3)
    rows_n = math.ceil(n / cols)
    rows = sorted(df[ROW].astype(str).unique())
    heads = sorted(df[COL].unique())
    fig = Figure(layout="constrained", figsize=(1.7 * len(heads) * cols + 2.5,
                                                (0.6 * len(rows) + 2.2) * rows_n + 0.5))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    values = pd.to_numeric(df[metric], errors="coerce")
    vmin, vmax = (values.min(), values.max()) if values.notna().any() else (0, 1)
    for ax, (key, part) in zip(axes.flat, groups, strict=False):
        grid = (part.assign(**{ROW: part[ROW].astype(str)})
                .pivot_table(index=ROW, columns=COL, values=metric, aggfunc="max")
                .reindex(index=rows, columns=heads))
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", vmin=vmin, vmax=vmax,
                          aspect="auto")
        _annotate(ax, grid, part, (vmin, vmax))
        ax.set_xticks(range(len(heads)), heads, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key, strict=True)),
                     fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), label=metric, shrink=0.9)
    fig.suptitle(f"{metric} by hidden activation and loss (output activation)", fontsize=10)
    return _save(fig, path)


def _annotate(ax: Axes, grid: pd.DataFrame, part: pd.DataFrame,
              limits: tuple[float, float]) -> None:
    """Write each cell's value; cells whose runs diverged or failed say so instead."""
    status = (part.assign(**{ROW: part[ROW].astype(str)})
              .pivot_table(index=ROW, columns=COL, values="status", aggfunc="first")
              .reindex(index=grid.index, columns=grid.columns))
    for i, row in enumerate(grid.index):
        for j, col in enumerate(grid.columns):
            value, state = grid.loc[row, col], status.loc[row, col]
            if isinstance(state, str) and state != "finished":
                text = state
            elif pd.notna(value):
                text = f"{value:.3f}"
            else:
                continue
            # viridis is light at the top of the range: dark text there, light below.
            bright = pd.notna(value) and value > limits[0] + 0.6 * (limits[1] - limits[0])
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if bright else "white")


def curves(histories: dict[str, dict[str, list[tuple[int, float]]]], path: Path) -> Path:
    """Validation loss and accuracy per epoch, a line per configuration."""
    fig = Figure(layout="constrained", figsize=(13, 5 + 0.13 * len(histories)))
    ax_loss, ax_acc = fig.subplots(1, 2)
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(histories), 1)))
    for color, (name, metrics) in zip(colors, sorted(histories.items()), strict=False):
        for ax, key in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
            points = sorted(metrics.get(key, []))
            if points:
                steps, vals = zip(*points, strict=True)
                ax.plot(np.asarray(steps) + 1, vals, marker="o", markersize=3, label=name,
                        color=color)
    ax_loss.set(title="validation loss", xlabel="epoch", yscale="log")
    ax_acc.set(title="validation accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7, frameon=False)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path
