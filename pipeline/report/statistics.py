"""Replicate statistics for the sweep report: each cell's interval, its verdict against the best
cell and P(best).

Each configuration ("cell") is trained several times ("replicates"), replicate k of every cell
with the same seed; one number per cell would hide how much of a gap is seed noise. The verdicts
(best / tied within min_effect / undecided / worse) and P(best) come from
:mod:`pipeline.report.verdicts`; this module turns a frame of runs into their inputs and a table.
Which factors matter (ANOVA, interaction tables) lives in :mod:`pipeline.report.effects`.

Non-finished replicates (``FAILED_REPLICATE_POLICY``): means and intervals use finished
replicates; diverged and failed ones count against the cell (its failure rate and interval);
pruned ones (stopped by successive halving) are counted apart. No cell is ever dropped.

Everything is seeded: the same runs give the same numbers. Pure functions over pandas frames;
importing the module does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config.schema import ReportConfig
from pipeline.report import verdicts

FINISHED = "finished"
PRUNED = "pruned"
ALPHA = 0.05
DEFAULT_MIN_EFFECT = ReportConfig().min_effect
# The seed a replicate trained with; where absent, the replicate index stands for it (replicate
# r trains with training.seed + r in every cell: pipeline.train.driver.plan).
SEED_COLUMN = "params.training.seed"

FAILED_REPLICATE_POLICY = (
    "Means and intervals use finished replicates; diverged and failed replicates count against "
    "their cell: its failure rate with an exact Clopper-Pearson interval is part of its verdict, "
    f"and a cell with fewer than {verdicts.MIN_FINISHED_FOR_BEST} finished replicates is never "
    "best nor champion. Cells are ranked on the mean of finished replicates rather than on a "
    "failure-inclusive score, since a failed run has no value to average and any value given "
    "to it would be arbitrary; the failure rate stands beside each verdict instead. "
    "Replicates pruned by successive halving are counted apart; no cell is dropped from the "
    "table."
)
INTERVAL_METHOD = (
    "Each cell's interval is the 95% Student-t interval of the mean of its finished "
    "replicates (scipy.stats.t.interval with n - 1 degrees of freedom), whose coverage holds "
    "at every n >= 2 for normal replicates; a bootstrap of 2 to 5 values cannot be wider than "
    "their range and covers far less often than it states."
)
P_BEST_METHOD = (
    "P(best) is the posterior probability that a cell has the best true mean: every cell's "
    "mean is drawn from a Student-t posterior (20,000 seeded draws) whose variance is moderated "
    "toward the sweep's common one (empirical Bayes, Smyth 2004) and whose centre is shrunk "
    "toward the sweep's mean by the share of noise in the cells' spread (normal-normal model, "
    "DerSimonian-Laird between-cell variance). Cells with fewer than 2 finished replicates get "
    "none."
)


@dataclass(frozen=True)
class Interval:
    """CI of a cell's mean. ``method``: "t", "constant" (all replicates equal: zero width) or
    "none" (fewer than 2 replicates: NaN bounds)."""

    low: float
    high: float
    method: str


@dataclass(frozen=True)
class Scores:
    """The verdicts' input: cell -> {seed -> score, NaN for a failed or diverged replicate};
    ``paired`` says whether equal keys in two cells are the same seed."""

    by_cell: dict[str, dict[int, float]]
    paired: bool


def finished_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished replicates with a finite metric (as float), ordered by cell then replicate, so
    that results depend on the data only, not on the order rows arrived in."""
    y = pd.to_numeric(runs[metric], errors="coerce")
    done = runs.assign(**{metric: y})[(runs["status"] == FINISHED) & np.isfinite(y)]
    keys = ["cell", "replicate"] if "replicate" in runs else ["cell"]
    return done.assign(cell=done["cell"].astype(str)).sort_values(keys, kind="stable")


def finished_values(runs: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """Finished metric values per cell id (sorted); every cell is a key, even with none."""
    done = finished_runs(runs, metric)
    groups = {cell: g[metric].to_numpy(float) for cell, g in done.groupby("cell")}
    return {c: groups.get(c, np.empty(0)) for c in sorted(runs["cell"].astype(str).unique())}


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean (``verdicts.t_interval``)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return Interval(math.nan, math.nan, "none")
    low, high = verdicts.t_interval(x, confidence)
    return Interval(low, high, "constant" if low == high else "t")


def _pair_keys(runs: pd.DataFrame) -> pd.Series:
    if SEED_COLUMN in runs:
        return pd.to_numeric(runs[SEED_COLUMN], errors="coerce")
    if "replicate" in runs:
        return pd.to_numeric(runs["replicate"], errors="coerce")
    return pd.Series(np.nan, index=runs.index)


def replicate_scores(runs: pd.DataFrame, metric: str) -> Scores:
    """Every non-pruned replicate's score keyed by its seed (NaN unless finished with a finite
    metric). Pairing is off when a seed is missing or repeats within a cell (``--all`` over
    several sweeps): then keys are only row positions."""
    kept = runs[runs["status"].astype(str) != PRUNED].assign(cell=lambda f: f["cell"].astype(str))
    y = pd.to_numeric(kept[metric], errors="coerce").where(kept["status"] == FINISHED)
    keys = _pair_keys(kept)
    keyed = kept.assign(k=keys)
    paired = bool(keys.notna().all() and not keyed.duplicated(["cell", "k"]).any()
                  and keyed.groupby("k")["cell"].nunique().max() >= 2)
    if not paired:
        keys = kept.groupby("cell").cumcount()
    cells = sorted(runs["cell"].astype(str).unique())
    by_cell: dict[str, dict[int, float]] = {c: {} for c in cells}
    for cell, key, value in zip(kept["cell"], keys, y, strict=True):
        by_cell[cell][int(key)] = float(value)
    return Scores(by_cell, paired)


def prob_best(runs: pd.DataFrame, metric: str, higher_is_better: bool, draws: int = 20_000,
              seed: int = 0) -> pd.Series:
    """P(best) per cell (``P_BEST_METHOD``); NaN for cells with fewer than 2 finished."""
    scores = replicate_scores(runs, metric).by_cell
    p = verdicts.prob_best(scores, higher_is_better=higher_is_better, draws=draws, seed=seed)
    return pd.Series(p, name="p_best").reindex(sorted(scores))


def _status_counts(runs: pd.DataFrame, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Replicates per cell by outcome; every replicate that is not usable is accounted for."""
    status = runs["status"].astype(str)
    kind = status.where(status.isin([FINISHED, "diverged", PRUNED]), "failed")
    counts = pd.crosstab(runs["cell"].astype(str), kind).reindex(
        columns=[FINISHED, "diverged", PRUNED, "failed"], fill_value=0)
    n_finished = pd.Series({c: v.size for c, v in values.items()})
    return pd.DataFrame({  # finished runs without a finite metric count as failed
        "n_finished": n_finished, "n_diverged": counts["diverged"], "n_pruned": counts[PRUNED],
        "n_failed": counts["failed"] + counts[FINISHED] - n_finished})


def _verdict_row(v: verdicts.CellVerdict, n_pruned: int) -> dict:
    reason = v.reason
    if v.n == 0 and n_pruned:
        reason = "pruned by successive halving (no finished replicate)"
    return {"diff": v.diff, "diff_low": v.diff_low, "diff_high": v.diff_high,
            "diff_method": v.method, "verdict": v.verdict, "reason": reason,
            "fail_rate": v.failures / (v.n + v.failures) if v.n + v.failures else math.nan,
            "fail_low": v.fail_low, "fail_high": v.fail_high,
            "tied_with_best": v.verdict == "tied", "is_best": v.verdict == "best"}


def cell_summary(runs: pd.DataFrame, factors: Sequence[str], metric: str, higher_is_better: bool,
                 confidence: float = 0.95, min_effect: float = DEFAULT_MIN_EFFECT,
                 draws: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """One row per cell, in the verdicts' order (best first, then by difference to the best).

    Columns: cell, the factors, n_finished, n_diverged, n_pruned, n_failed, flagged, mean,
    std (ddof=1), ci_low, ci_high, ci_method, diff, diff_low, diff_high (the cell minus the best,
    oriented so that <= 0 is "no better"), diff_method, verdict, reason, fail_rate, fail_low,
    fail_high, tied_with_best, is_best, p_best, rank (1 = best; missing without a finished
    replicate). ``attrs``: min_effect, paired, metric, confidence, higher_is_better.
    """
    values = finished_values(runs, metric)
    scores = replicate_scores(runs, metric)
    judged = verdicts.judge(scores.by_cell, min_effect=min_effect,
                            higher_is_better=higher_is_better, confidence=confidence,
                            paired=scores.paired)
    p_best = verdicts.prob_best(scores.by_cell, higher_is_better=higher_is_better, draws=draws,
                                seed=seed)
    counts = _status_counts(runs, values)
    labels = runs.assign(cell=runs["cell"].astype(str)).groupby("cell")[list(factors)].first()
    rows = []
    for v in judged:
        x, ci = values[v.cell], mean_interval(values[v.cell], confidence)
        rows.append({
            "cell": v.cell, **labels.loc[v.cell].to_dict(), **counts.loc[v.cell].to_dict(),
            "flagged": bool(counts.at[v.cell, "n_diverged"] > 0),
            "mean": float(x.mean()) if x.size else math.nan,
            "std": float(x.std(ddof=1)) if x.size > 1 else math.nan,
            "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
            **_verdict_row(v, int(counts.at[v.cell, "n_pruned"])), "p_best": p_best[v.cell]})
    table = pd.DataFrame(rows)
    ranked = int(table["mean"].notna().sum())
    table["rank"] = pd.array([*range(1, ranked + 1), *[pd.NA] * (len(table) - ranked)],
                             dtype="Int64")
    table.attrs.update(min_effect=min_effect, paired=scores.paired, metric=metric,
                       confidence=confidence, higher_is_better=higher_is_better)
    return table
