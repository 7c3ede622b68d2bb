"""Everything the report says, computed once from a sweep's runs: the cell leaderboard and its
verdicts, the factor analysis, the interaction table, the explanations, and the answer in words.

Cells are ranked on a validation metric; the held-out test metric is quoted once, for the cells
chosen (best and tied), so that choosing does not bias it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline.report import answer as words
from pipeline.report import digits, explain, layers, leaderboard, statistics
from pipeline.report import effects as fx
from pipeline.report.frame import SweepRuns, histories
from pipeline.tasks import task_spec

HEAD = "head"  # output activation and loss, chosen together in most sweeps


@dataclass
class Analysis:
    sweep: SweepRuns
    metric: str  # what cells are ranked by (a validation metric unless --metric says otherwise)
    factors: list[str]  # the analysis factors (output activation + loss merged as "head")
    row: str | None  # heatmap rows / panels
    col: str  # heatmap columns / colours
    board: pd.DataFrame
    compact: pd.DataFrame  # the leaderboard as shown on the page
    effects: pd.DataFrame | None
    interaction: pd.DataFrame | None
    diag: pd.DataFrame  # (run, diagnostic, step, value) rows
    curves: pd.DataFrame  # (run, step, value) of the validation metric
    correlations: pd.DataFrame
    explanations: list[str]
    answer: list[str]
    decision: str
    test_metric: str | None = None  # quoted for the chosen cells only
    influence: str = ""  # the interaction table's leave-one-cell-out check
    # (diagnostic, epoch, factor): signals a factor fixes, kept out of the predictors
    proxies: list[tuple[str, int, str]] = field(default_factory=list)
    # Every hidden layer's diagnostics, as ``diag``, when some run has more than one.
    per_layer: pd.DataFrame = field(default_factory=pd.DataFrame)


def analyse(client: MlflowClient, sweep: SweepRuns, metric: str, test_metric: str | None = None,
            min_effect: float = statistics.DEFAULT_MIN_EFFECT) -> Analysis:
    runs, factors = _design(sweep)
    sweep.runs = runs
    board = leaderboard.cell_board(runs, factors, metric, min_effect)
    row, col = _axes(factors)
    effects = _effects(runs, factors, metric)
    interaction, influence = _interaction(runs, row, col, metric)
    val = f"val_{task_spec(sweep.task).epoch_metric}"  # val_accuracy, or val_mae (regression)
    deep = layers.keys(layers.depth(sweep))
    hist = histories(client, list(runs["run_id"]), list(dict.fromkeys(
        [val, *explain.SIGNALS, *deep])))
    diag = explain.diag_frame({r: {k: v for k, v in m.items() if k in explain.SIGNALS}
                               for r, m in hist.items()}, runs)
    per_layer = explain.diag_frame({r: {k: m[k] for k in deep} for r, m in hist.items()}, runs)
    curves = explain.diag_frame({r: {val: m[val]} for r, m in hist.items()}, runs)
    answer = [*words.verdict_lines(board, factors), words.test_line(board, factors, test_metric),
              words.top_term(effects, factors), _counts(runs)]
    return Analysis(sweep, metric, factors, row, col, board,
                    _compact(board, factors, metric, test_metric), effects, interaction, diag,
                    curves, explain.correlations(diag, runs, metric, factors),
                    _explanations(board, diag, factors, effects, metric),
                    [line for line in answer if line], words.decision(board, factors),
                    test_metric, influence, explain.proxies(diag, runs, metric, factors),
                    per_layer)


def _interaction(runs: pd.DataFrame, row: str | None, col: str,
                 metric: str) -> tuple[pd.DataFrame | None, str]:
    """The interaction residuals, signed so that positive always means "better than the main
    effects predict", and the leave-one-cell-out sentence."""
    if row is None or not runs["replicate"].notna().any():
        return None, ""
    tables = fx.interaction_tables(runs, row, col, metric)
    sign = 1.0 if leaderboard.higher_is_better(metric) else -1.0
    return sign * tables.residual, fx.influence_sentence(tables.means, row, col)


def _design(sweep: SweepRuns) -> tuple[pd.DataFrame, list[str]]:
    """The runs with output activation and loss merged into one ``head`` factor when both
    vary: they are picked in pairs, so as separate factors they would be confounded."""
    runs, factors = sweep.runs.copy(), list(sweep.factors)
    if {"output_activation", "loss"} <= set(factors):
        runs[HEAD] = runs["loss"].astype(str) + " (" + runs["output_activation"].astype(str) + ")"
        factors = [f for f in factors if f not in ("output_activation", "loss")] + [HEAD]
    if not factors:
        factors = ["configuration"]
    return runs, factors


def _axes(factors: list[str]) -> tuple[str | None, str]:
    if len(factors) == 1:
        return None, factors[0]
    row = "hidden_activation" if "hidden_activation" in factors else factors[0]
    return row, next(f for f in factors if f != row)


def _effects(runs: pd.DataFrame, factors: list[str], metric: str) -> pd.DataFrame | None:
    varying = [f for f in factors if runs[f].nunique() > 1]
    if not varying or varying == ["configuration"]:
        return None
    return fx.factor_effects(runs, varying, metric, n_boot=400)


def _label(row: pd.Series, factors: list[str]) -> str:
    return words.label(row, factors)


def _counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    cells = runs["cell"].nunique()
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    return (f"{cells} configurations x up to {runs.groupby('cell').size().max()} replicates: "
            f"{len(runs)} runs ({parts}).")


def _compact(board: pd.DataFrame, factors: list[str], metric: str,
             test_metric: str | None) -> pd.DataFrame:
    """The leaderboard as the page shows it: narrow enough for a laptop screen."""
    out = board[factors].astype(str).copy()
    out.insert(0, "#", board["rank"].astype(str).replace("<NA>", "–"))
    d = digits.separating(board["mean"], leaderboard.higher_is_better(metric), least=4)
    out[f"{metric} (95% CI)"] = [_mean_text(r, d) for _, r in board.iterrows()]
    out["vs best (95% CI)"] = [_diff_text(r, d) for _, r in board.iterrows()]
    out["verdict"] = board["verdict"]
    out["P(best)"] = board["p_best"].round(2)
    column = f"mean_{test_metric}"
    if test_metric and column in board:
        chosen = board["is_best"] | board["tied_with_best"]
        out[test_metric] = board[column].where(chosen)  # quoted for the chosen cells only
    out["replicates"] = [_replicates_text(r) for _, r in board.iterrows()]
    if "race" in board:  # racing: why the cell has the replicates it has
        out["why these replicates"] = board["race"]
    if "mean_train_seconds" in board:
        out["train s"] = board["mean_train_seconds"].round(1)
    return out


def _mean_text(row: pd.Series, d: int = 4) -> str:
    if not np.isfinite(row["mean"]):
        return "–"
    if not np.isfinite(row["ci_low"]):
        return f"{row['mean']:.{d}f}"
    return f"{row['mean']:.{d}f} ({row['ci_low']:.{d}f}–{row['ci_high']:.{d}f})"


def _diff_text(row: pd.Series, d: int = 4) -> str:
    if row["is_best"] or not np.isfinite(row["diff"]):
        return "–"
    if not np.isfinite(row["diff_low"]):
        return f"{row['diff']:+.{d}f} (no interval)"
    return f"{row['diff']:+.{d}f} ({row['diff_low']:+.{d}f}, {row['diff_high']:+.{d}f})"


def _replicates_text(row: pd.Series) -> str:
    text = f"{int(row['n_finished'])} ok"
    for key, word in (("n_diverged", "diverged"), ("n_pruned", "pruned"), ("n_failed", "failed")):
        if row[key]:
            text += f", {int(row[key])} {word}"
    if row["n_diverged"] + row["n_failed"]:
        text += f" (rate {100 * row['fail_low']:.0f}–{100 * row['fail_high']:.0f}%)"
    return text


def _explanations(board: pd.DataFrame, diag: pd.DataFrame, factors: list[str],
                  effects: pd.DataFrame | None, metric: str) -> list[str]:
    """Best and worst cells against each other, and clearly better/worse factor levels."""
    ranked = board.dropna(subset=["mean"])
    early = explain.at_step(diag, explain.EXPLAIN_STEP)
    if len(ranked) < 2 or early.empty:
        return []
    cells = [_cell(row, early, factors) for _, row in ranked.iterrows()]
    best, worst, median = cells[0], cells[-1], cells[len(cells) // 2]
    lines = [explain.explain_cell(_as(worst, f"The worst cell, {worst.label},"), best, metric,
                                  cells),
             explain.explain_cell(_as(best, f"The best cell, {best.label},"), median, metric,
                                  cells)]
    return lines + _level_lines(ranked, early, factors, effects, metric)


def _cell(row: pd.Series, early: pd.DataFrame, factors: list[str]) -> explain.Cell:
    return explain.Cell(_label(row, factors), float(row["mean"]), _signals(early, row["cell"]))


def _as(cell: explain.Cell, label: str) -> explain.Cell:
    """The same cell under the label a sentence opens with."""
    return explain.Cell(label, cell.mean, cell.signals)


def _level_lines(ranked: pd.DataFrame, early: pd.DataFrame, factors: list[str],
                 effects: pd.DataFrame | None, metric: str) -> list[str]:
    if effects is None:
        return []
    lines = []
    significant = effects[(effects["p_value"] < statistics.ALPHA) & effects["term"].isin(factors)]
    for factor in significant["term"]:
        cells = ranked.set_index("cell").join(early, how="inner")
        levels = explain.level_means(cells, factor).sort_values(
            "mean", ascending=not leaderboard.higher_is_better(metric))
        if len(levels) < 2:
            continue
        top, low = levels.iloc[0], levels.iloc[-1]
        lines.append(explain.explain_cell(
            explain.Cell(f"{factor}={levels.index[-1]} (averaged over its cells)", low["mean"],
                         low),
            explain.Cell(f"{factor}={levels.index[0]}", top["mean"], top), metric))
    return lines


def _signals(early: pd.DataFrame, cell: str) -> pd.Series:
    return early.loc[cell] if cell in early.index else pd.Series(dtype=float)
