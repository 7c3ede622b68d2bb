"""Figures a person can read: one-epoch curves still show their points, and each run's curve
figure plots the task's own metric."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pipeline.report.figures import banded_figure
from pipeline.report.run_figures import confusion_figure, history_figure


def _curves(steps):
    rows = [{"hidden": h, "head": head, "step": s, "value": 0.9 + 0.01 * s + r / 1000}
            for h in ("relu", "tanh") for head in ("ce", "mse") for s in steps for r in (1, 2, 3)]
    return pd.DataFrame(rows)


def test_a_one_epoch_sweep_draws_a_marker_per_line_on_an_integer_wide_axis():
    fig = banded_figure(_curves([1]), "hidden", "head", "value", "validation accuracy")
    for ax in fig.axes:
        assert ax.get_xlim() == (0.5, 1.5) and list(ax.get_xticks()) == [1.0]
        assert all(line.get_marker() not in ("", "None") for line in ax.get_lines())
        assert all(len(line.get_xdata()) == 1 for line in ax.get_lines())


def test_lines_of_different_levels_differ_in_style_as_well_as_colour():
    fig = banded_figure(_curves([1, 2, 3]), "hidden", "head", "value", "validation accuracy")
    for ax in fig.axes:
        first, second = ax.get_lines()
        assert first.get_linestyle() != second.get_linestyle()
        assert first.get_marker() != second.get_marker()
        assert first.get_color() != second.get_color()


def test_several_epochs_keep_matplotlib_limits_and_one_line_per_colour_level():
    fig = banded_figure(_curves([1, 2, 3]), "hidden", "head", "value", "validation accuracy")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low <= 1 and high >= 3 and (low, high) != (0.5, 1.5)
        assert sorted(line.get_label() for line in ax.get_lines()) == ["ce", "mse"]


def test_a_regression_run_curve_plots_its_mae_beside_the_loss():
    history = {"loss": [(0, 1.0), (1, 0.5)], "val_loss": [(0, 1.1), (1, 0.6)],
               "mae": [(0, 3.0), (1, 2.0)], "val_mae": [(0, 3.2), (1, 2.1)]}
    loss_ax, metric_ax = history_figure(history).axes
    assert loss_ax.get_title() == "loss"
    assert metric_ax.get_title() == "mae"
    assert [line.get_label() for line in metric_ax.get_lines()] == ["mae", "val_mae"]
    assert list(metric_ax.get_lines()[1].get_ydata()) == [3.2, 2.1]
    assert metric_ax.get_legend() is not None


def test_a_classification_run_curve_plots_accuracy():
    history = {"loss": [(0, 1.0)], "val_loss": [(0, 1.1)], "accuracy": [(0, 0.8)],
               "val_accuracy": [(0, 0.82)]}
    assert history_figure(history).axes[1].get_title() == "accuracy"


@pytest.mark.parametrize("classes", [2, 10, 40])
def test_the_confusion_matrix_fits_its_labels_and_title_inside_the_figure(classes):
    counts = np.random.default_rng(classes).integers(0, 99_999, (classes, classes))
    fig = confusion_figure(counts)
    renderer = FigureCanvasAgg(fig).get_renderer()
    drawn = fig.get_tightbbox(renderer)  # inches: every label, tick and the title
    width, height = fig.get_size_inches()
    assert drawn.x0 >= 0 and drawn.y0 >= 0 and drawn.x1 <= width and drawn.y1 <= height
