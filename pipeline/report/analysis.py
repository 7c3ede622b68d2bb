"""Everything the report says, computed once from a sweep's runs: the cell leaderboard, the
factor analysis, the interaction table, the explanations, and the answer in words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline.report import effects as fx
from pipeline.report import explain, leaderboard, statistics
from pipeline.report.frame import SweepRuns, histories
from pipeline.tasks import task_spec

HEAD = "head"  # output activation and loss, chosen together in most sweeps


@dataclass
class Analysis:
    sweep: SweepRuns
    metric: str
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


def analyse(client: MlflowClient, sweep: SweepRuns, metric: str) -> Analysis:
    runs, factors = _design(sweep)
    sweep.runs = runs
    board = leaderboard.cell_board(runs, factors, metric)
    row, col = _axes(factors)
    effects = _effects(runs, factors, metric)
    # Signed so that positive always means "better than the main effects predict".
    sign = 1.0 if leaderboard.higher_is_better(metric) else -1.0
    interaction = (sign * fx.interaction_table(runs, row, col, metric)
                   if row is not None and runs["replicate"].notna().any() else None)
    val = f"val_{task_spec(sweep.task).epoch_metric}"  # val_accuracy, or val_mae (regression)
    hist = histories(client, list(runs["run_id"]), [val, *explain.SIGNALS])
    diag = explain.diag_frame({r: {k: v for k, v in m.items() if k.startswith("diag.")}
                               for r, m in hist.items()}, runs)
    curves = explain.diag_frame({r: {val: m[val]} for r, m in hist.items()}, runs)
    decision = _decision(board, factors)
    answer = [statistics.summary_sentence(board, factors, effects), _counts(runs)]
    return Analysis(sweep, metric, factors, row, col, board, _compact(board, factors, metric),
                    effects, interaction, diag, curves,
                    explain.correlations(diag, runs, metric),
                    _explanations(board, diag, factors, effects, metric), answer, decision)


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


def _decision(board: pd.DataFrame, factors: list[str]) -> str:
    """What the champion's registry entry says about the win."""
    best = board[board["is_best"]]
    if best.empty:
        return "No finished cell."
    tied = board[board["tied_with_best"] & ~board["is_best"]]
    if int(best.iloc[0]["n_finished"]) < 2:
        return "Not tested for ties: the best cell has fewer than 2 finished replicates."
    if tied.empty:
        return "Decisive: no other cell is tied with the best under the tie rule."
    names = "; ".join(_label(r, factors) for _, r in tied.iterrows())
    return f"Tied with {len(tied)} other cell(s) under the tie rule: {names}."


def _label(row: pd.Series, factors: list[str]) -> str:
    return " + ".join(str(row[f]) for f in factors)


def _counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    cells = runs["cell"].nunique()
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    return (f"{cells} configurations x up to {runs.groupby('cell').size().max()} replicates: "
            f"{len(runs)} runs ({parts}).")


def _compact(board: pd.DataFrame, factors: list[str], metric: str) -> pd.DataFrame:
    """The leaderboard as the page shows it: narrow enough for a laptop screen."""
    out = board[factors].astype(str).copy()
    out.insert(0, "#", board["rank"].astype(str).replace("<NA>", "–"))
    out[f"mean {metric}"] = board["mean"]
    out["95% CI"] = [f"{lo:.4f}–{hi:.4f}" if np.isfinite(lo) else "–"
                     for lo, hi in zip(board["ci_low"], board["ci_high"], strict=True)]
    out["P(best)"] = board["p_best"].round(2)
    out["tied"] = np.where(board["is_best"], "best", np.where(board["tied_with_best"], "yes", ""))
    out["replicates"] = [f"{int(f)} ok" + (f", {int(d)} diverged" if d else "")
                         + (f", {int(p)} pruned" if p else "")
                         + (f", {int(x)} failed" if x else "")
                         for f, d, p, x in zip(board["n_finished"], board["n_diverged"],
                                               board["n_pruned"], board["n_failed"],
                                               strict=True)]
    if "mean_train_seconds" in board:
        out["train s"] = board["mean_train_seconds"].round(1)
    return out


def _explanations(board: pd.DataFrame, diag: pd.DataFrame, factors: list[str],
                  effects: pd.DataFrame | None, metric: str) -> list[str]:
    """Best and worst cells against each other, and clearly better/worse factor levels."""
    ranked = board.dropna(subset=["mean"])
    early = explain.at_step(diag, explain.EXPLAIN_STEP)
    if len(ranked) < 2 or early.empty:
        return []
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    median = ranked.iloc[len(ranked) // 2]
    lines = [explain.explain_cell(f"The worst cell, {_label(worst, factors)},", worst["mean"],
                                  _signals(early, worst["cell"]), _label(best, factors),
                                  best["mean"], _signals(early, best["cell"]), metric),
             explain.explain_cell(f"The best cell, {_label(best, factors)},", best["mean"],
                                  _signals(early, best["cell"]), _label(median, factors),
                                  median["mean"], _signals(early, median["cell"]), metric)]
    return lines + _level_lines(ranked, early, factors, effects, metric)


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
            f"{factor}={levels.index[-1]} (averaged over its cells)", low["mean"], low,
            f"{factor}={levels.index[0]}", top["mean"], top, metric))
    return lines


def _signals(early: pd.DataFrame, cell: str) -> pd.Series:
    return early.loc[cell] if cell in early.index else pd.Series(dtype=float)
