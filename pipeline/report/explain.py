"""The "why": explanations written from the logged diagnostics, and which early signals
predicted the outcome.

Every sentence quotes measured numbers (``diag.*`` metrics, see
``pipeline.train.rank.diagnostics``); nothing here asserts a mechanism that was not measured.
Correlations are Spearman rank correlations (``scipy.stats.spearmanr``) across finished runs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

# The diagnostics explanations compare, with a reader's name for each.
SIGNALS = {
    "diag.h1.sat": "first hidden layer's saturated fraction",
    "diag.h1.dead": "first hidden layer's dead-unit fraction",
    "diag.h1.grad_norm": "first hidden layer's gradient norm",
    "diag.out.grad_logits": "output-gradient norm (per example, w.r.t. the logits)",
    "diag.out.sat": "output layer's saturated fraction",
    "diag.h1.update_ratio": "first hidden layer's weight update / weight norm",
}
EXPLAIN_STEP = 1  # after one epoch: early enough to be a cause, late enough to have moved


def diag_frame(hist: dict[str, dict[str, list[tuple[int, float]]]],
               runs: pd.DataFrame) -> pd.DataFrame:
    """A row per (run, diagnostic, step) with the run's cell, factors and status."""
    rows = [(rid, key, step, value) for rid, metrics in hist.items()
            for key, points in metrics.items() for step, value in points]
    long = pd.DataFrame(rows, columns=["run_id", "diagnostic", "step", "value"])
    return long.merge(runs, on="run_id", how="left")


def at_step(diag: pd.DataFrame, step: int) -> pd.DataFrame:
    """Per-cell mean of every diagnostic at ``step`` (cells as rows, diagnostics as columns)."""
    part = diag[(diag["step"] == step) & (diag["status"] == "finished")]
    return part.pivot_table(index="cell", columns="diagnostic", values="value", aggfunc="mean")


def correlations(diag: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Spearman's rho between each diagnostic at epoch 0 and 1 and the final metric, per run."""
    final = runs[runs["status"] == "finished"].set_index("run_id")[metric]
    out = []
    for (key, step), part in diag[diag["step"].isin([0, 1])].groupby(["diagnostic", "step"]):
        values = part.drop_duplicates("run_id").set_index("run_id")["value"]
        both = pd.concat([values, final], axis=1, join="inner").dropna()
        if len(both) < 4 or both.iloc[:, 0].nunique() < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho, p = stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1])
        out.append({"diagnostic": key, "epoch": int(step), "rho": float(rho), "p_value": float(p),
                    "runs": len(both)})
    table = pd.DataFrame(out, columns=["diagnostic", "epoch", "rho", "p_value", "runs"])
    return table.reindex(table["rho"].abs().sort_values(ascending=False).index)


def contrast(subject: pd.Series, reference: pd.Series, limit: int = 2) -> list[str]:
    """The diagnostics in which ``subject`` differs most from ``reference`` (relative
    difference), as "<name> <a> against <b>" phrases."""
    scored = []
    for key, name in SIGNALS.items():
        a, b = _float(subject.get(key)), _float(reference.get(key))
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        scale = max(abs(a), abs(b), 1e-12)
        if abs(a - b) / scale < 0.25:  # differences under a quarter are not a story
            continue
        scored.append((abs(np.log10((abs(a) + 1e-6) / (abs(b) + 1e-6))), f"{name} was "
                       f"{_num(a)} against {_num(b)}"))
    return [text for _, text in sorted(scored, reverse=True)[:limit]]


def explain_cell(label: str, mean: float, subject: pd.Series, ref_label: str,
                 ref_mean: float, reference: pd.Series, metric: str) -> str:
    """One or two sentences on a cell against the reference (usually the best) cell."""
    head = f"{label} reached {metric} {mean:.4f} against {ref_mean:.4f} for {ref_label}."
    phrases = contrast(subject, reference)
    if not phrases:
        return head + (f" After epoch {EXPLAIN_STEP} no measured diagnostic differed by more "
                       "than a quarter, so the diagnostics do not explain the gap.")
    return head + f" After epoch {EXPLAIN_STEP}, its " + "; its ".join(phrases) + "."


def level_means(cells: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Mean of each diagnostic (and of the metric's cell means) per level of ``factor``."""
    return cells.groupby(factor).mean(numeric_only=True)


def _float(value: object) -> float:
    """A plain float; NaN for a missing value (pandas' NA included)."""
    return math.nan if value is None or pd.isna(value) else float(value)


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"
