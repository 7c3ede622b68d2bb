"""Replicate statistics for the sweep report: intervals, P(best) and the cells tied with the best.

Each configuration ("cell") is trained several times with different seeds ("replicates"); one
number per cell would hide how much of a gap is seed noise. Which factors matter (ANOVA,
interaction tables) lives in :mod:`pipeline.report.effects`.

Non-finished replicates (``FAILED_REPLICATE_POLICY``): statistics are computed over finished
replicates only. Diverged, failed and pruned replicates are counted per cell (a finished replicate
without a finite metric, or any other status, counts as failed); a cell with any diverged replicate
is flagged. A cell with fewer than 2 finished replicates gets no interval (NaN) and joins the tied
set only if it is the best itself. No cell is ever dropped from the table.

Everything is seeded: the same runs and seed give the same numbers. These are pure functions over
pandas frames; importing the module does nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

FINISHED = "finished"
ALPHA = 0.05

FAILED_REPLICATE_POLICY = (
    "Statistics use finished replicates only; diverged, failed and pruned replicates are counted "
    "per cell, a cell with any diverged replicate is flagged, and a cell with fewer than 2 "
    "finished replicates gets no interval and is never tied with the best unless it is the best; "
    "no cell is dropped from the table."
)
TIE_RULE = (
    f"A cell is tied with the best when a two-sided Welch t-test of its finished replicates "
    f"against the best cell's, Holm-corrected over all comparisons, gives p >= {ALPHA}; when "
    f"neither cell's replicates vary, it is tied exactly when the means are equal."
)


@dataclass(frozen=True)
class Interval:
    """CI of a cell's mean. ``method``: "BCa", "percentile", "constant" (all replicates equal:
    zero width) or "none" (fewer than 2 replicates: NaN bounds)."""

    low: float
    high: float
    method: str


@dataclass(frozen=True)
class TieSet:
    """Outcome of ``TIE_RULE``: the best cell, Holm-corrected p-values against it, the tied set."""

    best: str | None
    p_holm: dict[str, float]
    tied: frozenset[str]


def finished_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished replicates with a finite metric (as float), ordered by cell then replicate, so
    that resampling depends on the data only, not on the order rows arrived in."""
    y = pd.to_numeric(runs[metric], errors="coerce")
    done = runs.assign(**{metric: y})[(runs["status"] == FINISHED) & np.isfinite(y)]
    keys = ["cell", "replicate"] if "replicate" in runs else ["cell"]
    return done.assign(cell=done["cell"].astype(str)).sort_values(keys, kind="stable")


def finished_values(runs: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """Finished metric values per cell id (sorted); every cell is a key, even with none."""
    done = finished_runs(runs, metric)
    groups = {cell: g[metric].to_numpy(float) for cell, g in done.groupby("cell")}
    return {c: groups.get(c, np.empty(0)) for c in sorted(runs["cell"].astype(str).unique())}


def mean_interval(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 10_000,
                  seed: int = 0) -> Interval:
    """Bootstrap CI of the mean with ``scipy.stats.bootstrap``.

    BCa corrects the bias and skew of a few replicates near a bound (accuracy near 1), but needs
    jackknife variation; when it yields nothing finite, the percentile interval is used. Every
    cell uses the same seed, so a cell's interval does not depend on which other cells exist.
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return Interval(np.nan, np.nan, "none")
    if np.all(x == x[0]):  # the bootstrap distribution is a point: the exact answer, not NaN
        return Interval(float(x[0]), float(x[0]), "constant")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            try:
                ci = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, method=method,
                                     confidence_level=confidence,
                                     rng=np.random.default_rng(seed)).confidence_interval
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                continue
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            return Interval(float(ci.low), float(ci.high), method)
    return Interval(np.nan, np.nan, "none")


def prob_best(runs: pd.DataFrame, metric: str, higher_is_better: bool,
              n_resamples: int = 10_000, seed: int = 0) -> pd.Series:
    """Probability that each cell has the best mean (NaN for cells with no finished replicate)."""
    return _prob_best(finished_values(runs, metric), higher_is_better, n_resamples, seed)


def _prob_best(values: dict[str, np.ndarray], higher_is_better: bool, n_resamples: int,
               seed: int) -> pd.Series:
    """Resample each cell's replicates, count how often each cell's mean wins; ties split.

    This answers "how sure are we about the winner" directly, which a ranking cannot. A cell with
    one replicate takes part at its single value (it adds no spread of its own).
    """
    out = pd.Series(np.nan, index=list(values), name="p_best")
    live = [c for c, v in values.items() if v.size]
    if not live:
        return out
    rng = np.random.default_rng(seed)
    sign = 1.0 if higher_is_better else -1.0
    means = np.column_stack([
        sign * values[c][rng.integers(0, values[c].size, (n_resamples, values[c].size))].mean(1)
        for c in live])
    # Means of the same numbers in another order can differ in the last bit: compare loosely.
    wins = np.isclose(means, means.max(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)
    out[live] = (wins / wins.sum(axis=1, keepdims=True)).mean(axis=0)
    return out


def _order(values: dict[str, np.ndarray], higher_is_better: bool) -> list[str]:
    """Cells with a finished replicate, best mean first; equal means ordered by cell id."""
    sign = -1.0 if higher_is_better else 1.0
    live = [c for c, v in values.items() if v.size]
    return sorted(live, key=lambda c: (sign * values[c].mean(), c))


def tie_set(runs: pd.DataFrame, metric: str, higher_is_better: bool,
            alpha: float = ALPHA) -> TieSet:
    """Apply ``TIE_RULE`` to ``runs``."""
    values = finished_values(runs, metric)
    order = _order(values, higher_is_better)
    return _tie_set(values, order[0] if order else None, alpha)


def _tie_set(values: dict[str, np.ndarray], best: str | None, alpha: float) -> TieSet:
    """Welch tests of every cell with >= 2 replicates against the best, Holm-corrected.

    Welch, because cells differ in spread (a fragile configuration is noisier); Holm, because
    with many cells some would look different from the best by chance alone.
    """
    if best is None:
        return TieSet(None, {}, frozenset())
    ref = values[best]
    raw = {c: _welch_p(v, ref) for c, v in values.items()
           if c != best and v.size >= 2 and ref.size >= 2}
    p_holm: dict[str, float] = {}
    if raw:
        corrected = multipletests(list(raw.values()), alpha=alpha, method="holm")[1]
        p_holm = {c: float(p) for c, p in zip(raw, corrected, strict=True)}
    return TieSet(best, p_holm, frozenset({best} | {c for c, p in p_holm.items() if p >= alpha}))


def _welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch p-value; with no spread in either group the t statistic is undefined but
    the answer is certain: the same value (p = 1) or not (p = 0)."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _status_counts(runs: pd.DataFrame, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Replicates per cell by outcome; every replicate that is not usable is accounted for."""
    status = runs["status"].astype(str)
    kind = status.where(status.isin(["finished", "diverged", "pruned"]), "failed")
    counts = pd.crosstab(runs["cell"].astype(str), kind).reindex(
        columns=["finished", "diverged", "pruned", "failed"], fill_value=0)
    n_finished = pd.Series({c: v.size for c, v in values.items()})
    return pd.DataFrame({  # finished runs without a finite metric count as failed
        "n_finished": n_finished, "n_diverged": counts["diverged"], "n_pruned": counts["pruned"],
        "n_failed": counts["failed"] + counts["finished"] - n_finished})


def cell_summary(runs: pd.DataFrame, factors: Sequence[str], metric: str, higher_is_better: bool,
                 confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0,
                 alpha: float = ALPHA) -> pd.DataFrame:
    """One row per cell, best first; see the module docstring for non-finished replicates.

    Columns: cell, the factors, n_finished, n_diverged, n_pruned, n_failed, flagged, mean,
    std (ddof=1), ci_low, ci_high, ci_method, p_best, p_tie (Holm-corrected p against the best),
    tied_with_best, is_best, rank (1 = best; missing for cells with no finished replicate).
    """
    values = finished_values(runs, metric)
    order = _order(values, higher_is_better)
    ties = _tie_set(values, order[0] if order else None, alpha)
    p_best = _prob_best(values, higher_is_better, n_resamples, seed)
    counts = _status_counts(runs, values)
    labels = runs.assign(cell=runs["cell"].astype(str)).groupby("cell")[list(factors)].first()
    rows = []
    for cell, v in values.items():
        ci = mean_interval(v, confidence, n_resamples, seed)
        rows.append({
            "cell": cell, **labels.loc[cell].to_dict(), **counts.loc[cell].to_dict(),
            "flagged": bool(counts.at[cell, "n_diverged"] > 0),
            "mean": float(v.mean()) if v.size else np.nan,
            "std": float(v.std(ddof=1)) if v.size > 1 else np.nan,
            "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
            "p_best": p_best[cell], "p_tie": ties.p_holm.get(cell, np.nan),
            "tied_with_best": cell in ties.tied, "is_best": cell == ties.best})
    table = pd.DataFrame(rows).set_index("cell")
    table = table.loc[order + [c for c in values if c not in order]].reset_index()
    table["rank"] = pd.array([*range(1, len(order) + 1), *[pd.NA] * (len(table) - len(order))],
                             dtype="Int64")
    return table


def summary_sentence(summary: pd.DataFrame, factors: Sequence[str],
                     effects: pd.DataFrame | None = None, confidence: float = 0.95,
                     digits: int = 3) -> str:
    """The report's first line in plain words: the best cell, what it is tied with, and the
    factor that explains most of the variance (from ``effects.factor_effects``)."""
    best = summary[summary["is_best"]]
    if best.empty:
        return "No cell has a finished replicate, so there is no best configuration."
    b, level = best.iloc[0], f"{confidence:.0%}"
    text = f"Best: {_label(b, factors)} ({_cell_stats(b, level, digits)})"
    others = summary[summary["tied_with_best"] & ~summary["is_best"]]
    if b["n_finished"] < 2:
        text += "; not tested for ties (fewer than 2 finished replicates)."
    elif others.empty:
        text += ", decisively (no other cell is within the tie rule)."
    else:
        tied = ", ".join(f"{_label(r, factors)} ({r['mean']:.{digits}f})"
                         for _, r in others.iterrows())
        text += f"; tied with {len(others)} other cell{'s' * (len(others) > 1)}: {tied}."
    share = _top_share(effects, factors, level)
    return f"{text} {share}" if share else text


def _label(row: pd.Series, factors: Sequence[str]) -> str:
    return " + ".join(str(row[f]) for f in factors) if factors else str(row["cell"])


def _cell_stats(row: pd.Series, level: str, digits: int) -> str:
    d = digits
    if row["n_finished"] >= 2:
        text = (f"{row['mean']:.{d}f} ± {row['std']:.{d}f}, {level} CI {row['ci_low']:.{d}f}–"
                f"{row['ci_high']:.{d}f}, P(best) {row['p_best']:.2f}")
    else:
        text = f"{row['mean']:.{d}f}, 1 finished replicate, P(best) {row['p_best']:.2f}"
    if not row["flagged"]:
        return text
    total = sum(int(row[k]) for k in ("n_finished", "n_diverged", "n_pruned", "n_failed"))
    return f"{text}, {int(row['n_diverged'])} of {total} replicates diverged"


def _top_share(effects: pd.DataFrame | None, factors: Sequence[str], level: str) -> str:
    """'<term> explains 71% of the variance (95% CI 65–78%).' for the largest estimated term."""
    if effects is None:
        return ""
    terms = effects[(effects["term"] != "residual") & effects["share"].notna()]
    if terms.empty:
        return ""
    top = terms.loc[terms["share"].idxmax()]
    pairs = {f"{a}:{b}": f"The {a} × {b} interaction" for a, b in combinations(factors, 2)}
    name = top["term"] if top["term"] in factors else pairs.get(top["term"], top["term"])
    ci = (f" ({level} CI {100 * top['share_ci_low']:.0f}–{100 * top['share_ci_high']:.0f}%)"
          if np.isfinite(top["share_ci_low"]) and np.isfinite(top["share_ci_high"]) else "")
    return f"{name} explains {100 * top['share']:.0f}% of the variance{ci}."
