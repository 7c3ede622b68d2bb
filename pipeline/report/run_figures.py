"""Images logged with each configuration's run."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def confusion_figure(confusion: np.ndarray) -> Figure:
    """Row-normalised confusion matrix with the raw counts written in each cell."""
    k = confusion.shape[0]
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    width, height = 0.55 * k + 2, 0.55 * k + 1.5
    fig = Figure(figsize=(width, height))
    # Margins in inches for what surrounds the matrix (class indices, two axis names, the
    # title), so that no layout engine has to draw the figure an extra time to measure it.
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.25 / width,
                        bottom=0.65 / height, top=1 - 0.45 / height)
    ax = fig.subplots()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_title("test confusion matrix")
    return fig


def history_figure(history: dict[str, list[tuple[int, float]]]) -> Figure:
    """The loss and the task's metric (accuracy, MAE, ...) per epoch, train and validation,
    from (step, value) pairs keyed by Keras' metric names."""
    metric = next((k for k in history if k != "loss" and not k.startswith("val_")), "accuracy")
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    for ax, key in ((ax_loss, "loss"), (ax_metric, metric)):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            points = sorted(history.get(name) or [])
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(np.asarray(steps) + 1, values, style, marker="o", markersize=3,
                        label=name)
        ax.set(title=key, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.has_data():
            ax.legend(fontsize=8)
    return fig


def close(fig: Figure) -> None:
    """Release a figure's drawing (no pyplot: nothing else holds it)."""
    fig.clear()
