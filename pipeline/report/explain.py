"""The "why": explanations written from the logged diagnostics, and which early signals
predicted the outcome.

Every sentence quotes measured numbers (``diag.*`` metrics, see
``pipeline.train.rank.diagnostics``); nothing here asserts a mechanism that was not measured.
Correlations are Spearman rank correlations (``scipy.stats.spearmanr``) across finished runs,
and within factor levels (ranks residualised on the factors by OLS, ``statsmodels``), so that a
diagnostic the configuration fixes before training is not mistaken for a signal.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

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


PROXY_SHARE = 0.99  # a factor explaining this much of a signal's spread: the signal is the factor


def correlations(diag: pd.DataFrame, runs: pd.DataFrame, metric: str,
                 factors: list[str] | None = None) -> pd.DataFrame:
    """Spearman's rho between each diagnostic at epoch 0 and 1 and the final metric, across
    finished runs (``rho``), and within factor levels (``rho_within``: both ranked, the
    factors' main effects removed by OLS, then correlated; ``p_within`` from the partial
    correlation's t test). A diagnostic that a factor fixes (``PROXY_SHARE`` of its spread)
    restates that factor and is left out; ``proxies(...)`` names those."""
    rows = []
    for key, step, both in _pairs(diag, runs, metric, factors or []):
        if _proxy_of(both, factors or []):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho, p = stats.spearmanr(both["value"], both[metric])
        within, p_within = _partial_rank_correlation(both, metric, factors or [])
        rows.append({"diagnostic": key, "epoch": step, "rho": float(rho), "p_value": float(p),
                     "rho_within": within, "p_within": p_within, "runs": len(both)})
    table = pd.DataFrame(rows, columns=["diagnostic", "epoch", "rho", "p_value", "rho_within",
                                        "p_within", "runs"])
    order = table["rho_within"].abs().fillna(-1) if factors else table["rho"].abs()
    return table.reindex(order.sort_values(ascending=False).index)


def proxies(diag: pd.DataFrame, runs: pd.DataFrame, metric: str,
            factors: list[str]) -> list[tuple[str, int, str]]:
    """(diagnostic, epoch, factor) for each diagnostic that restates a factor."""
    found = []
    for key, step, both in _pairs(diag, runs, metric, factors):
        factor = _proxy_of(both, factors)
        if factor:
            found.append((key, step, factor))
    return found


def _pairs(diag: pd.DataFrame, runs: pd.DataFrame, metric: str, factors: list[str]):
    """(diagnostic, epoch, frame of value, metric and factors per finished run) at epochs 0, 1."""
    final = runs[runs["status"] == "finished"].set_index("run_id")[[metric, *factors]]
    for (key, step), part in diag[diag["step"].isin([0, 1])].groupby(["diagnostic", "step"]):
        values = part.drop_duplicates("run_id").set_index("run_id")["value"]
        both = final.join(values.rename("value"), how="inner").dropna(subset=["value", metric])
        if len(both) >= 4 and both["value"].nunique() >= 2:
            yield key, int(step), both


def _proxy_of(both: pd.DataFrame, factors: list[str]) -> str:
    """The factor whose levels explain ``PROXY_SHARE`` of the value's spread, or ''."""
    total = float(((both["value"] - both["value"].mean()) ** 2).sum())
    for factor in factors:
        within = float(both.groupby(factor)["value"].transform(lambda v: (v - v.mean()) ** 2)
                       .sum())
        if total > 0 and 1 - within / total >= PROXY_SHARE:
            return factor
    return ""


def _partial_rank_correlation(both: pd.DataFrame, metric: str,
                              factors: list[str]) -> tuple[float, float]:
    """Pearson correlation of the ranks' OLS residuals on the factors' levels, with the
    partial correlation's t test (its degrees of freedom reduced by the factors' parameters)."""
    import statsmodels.api as sm

    if not factors:
        return math.nan, math.nan
    design = sm.add_constant(pd.get_dummies(both[factors].astype(str), drop_first=True)
                             .astype(float), has_constant="add")
    df = len(both) - design.shape[1] - 1
    if df < 2:
        return math.nan, math.nan
    resid = [sm.OLS(stats.rankdata(both[c]), design).fit().resid for c in ("value", metric)]
    if min(np.std(r) for r in resid) < 1e-9:
        return math.nan, math.nan
    r = float(np.corrcoef(resid[0], resid[1])[0, 1])
    t = r * math.sqrt(df / max(1 - r * r, 1e-12))
    return r, float(2 * stats.t.sf(abs(t), df))


@dataclass(frozen=True)
class Cell:
    """A cell as the explanations see it: its label, mean metric and early diagnostics."""

    label: str
    mean: float
    signals: pd.Series


def contrast(subject: Cell, reference: Cell, others: list[Cell] = (), limit: int = 2
             ) -> list[str]:
    """The diagnostics in which ``subject`` differs most from ``reference`` (relative
    difference), as "<name> <a> against <b>" phrases. Where another cell shares the
    subject's value but reached the reference's side of the gap, the phrase says so: that
    signal does not separate the cells."""
    scored = []
    for key, name in SIGNALS.items():
        a, b = _float(subject.signals.get(key)), _float(reference.signals.get(key))
        if not (np.isfinite(a) and np.isfinite(b)) or not _differ(a, b):
            continue
        text = f"{name} was {_num(a)} against {_num(b)}"
        counter = _counterexample(key, a, subject, reference, others)
        if counter is not None:
            text += (f", yet {counter.label} had a similar {_num(_float(counter.signals[key]))} "
                     f"and reached {counter.mean:.4f}, so this signal does not separate them")
        scored.append((abs(np.log10((abs(a) + 1e-6) / (abs(b) + 1e-6))), text))
    return [text for _, text in sorted(scored, reverse=True)[:limit]]


def _differ(a: float, b: float) -> bool:
    """Differences under a quarter are not a story."""
    return abs(a - b) / max(abs(a), abs(b), 1e-12) >= 0.25


def _counterexample(key: str, value: float, subject: Cell, reference: Cell,
                    others: list[Cell]) -> Cell | None:
    """A cell with the subject's value of ``key`` whose outcome sits nearer the reference's
    (the subject itself never does: its outcome is its own)."""
    for cell in others:
        v = _float(cell.signals.get(key))
        if not np.isfinite(v):
            continue
        if not _differ(v, value) and abs(cell.mean - reference.mean) < abs(cell.mean
                                                                           - subject.mean):
            return cell
    return None


def explain_cell(subject: Cell, reference: Cell, metric: str, others: list[Cell] = ()) -> str:
    """One or two sentences on a cell against the reference (usually the best) cell."""
    head = (f"{subject.label} reached {metric} {subject.mean:.4f} against "
            f"{reference.mean:.4f} for {reference.label}.")
    phrases = contrast(subject, reference, others)
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
