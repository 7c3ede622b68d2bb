"""Verdicts on a sweep's cells at small n: best, tied within min_effect, undecided or worse.

Shared by the report and the driver's racing loop, so this module needs only NumPy and SciPy
(no pandas, matplotlib, TensorFlow or Spark).

Method (``METHOD`` states it for the report):

- The best cell is the one with the best mean among cells with at least 2 finished replicates
  (a cell with one lucky replicate is never best nor champion).
- Every other cell gets a ``confidence`` interval of its difference to the best, oriented so
  that <= 0 means "no better than the best". Replicate k of every cell trains with the same
  seed (common random numbers), so where both cells have >= 2 replicates with the same index
  the interval is a paired Student-t interval of the per-replicate differences; otherwise a
  Welch t interval (``scipy.stats.t.interval`` with the Welch-Satterthwaite df); a cell with
  one finished replicate borrows the pooled within-cell spread of the cells that have two.
- "tied": the interval lies inside +-min_effect (equivalence: two one-sided tests at
  (1 - confidence) / 2 each); "worse": it lies entirely below -min_effect; "undecided":
  anything else (it straddles a margin: another replicate may settle it).
- Cells are returned ordered by that difference, so an interval always contains its own
  point estimate and a cell ranked below a "worse" cell can never be "tied".
- Failed or diverged replicates (NaN scores) are counted, not dropped: the failure rate and
  its Clopper-Pearson interval are part of each verdict's reason; a cell with no finished
  replicate is "worse".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from pipeline.report import variances

VERDICTS = ("best", "tied", "undecided", "worse")
MIN_FINISHED_FOR_BEST = 2

METHOD = (
    "Differences to the best cell: paired Student-t intervals of the per-replicate differences "
    "where both cells have at least 2 replicates trained with the same seed "
    "(scipy.stats.t.interval), Welch t intervals otherwise (Welch-Satterthwaite degrees of "
    "freedom), and a cell with one finished replicate uses the pooled within-cell standard "
    "deviation of the cells with two or more. The best cell is the best mean among cells with "
    "at least 2 finished replicates. Tied: the interval lies inside +-min_effect (equivalence, "
    "two one-sided tests); worse: entirely below -min_effect; undecided: otherwise. Failed and "
    "diverged replicates are counted, with the failure rate's exact Clopper-Pearson interval "
    "(beta quantiles, scipy.stats.beta.ppf). Intervals are per "
    "comparison, not simultaneous."
)


@dataclass(frozen=True)
class CellVerdict:
    """One cell's verdict. ``diff`` is mean(cell - best), oriented so <= 0 means "no better";
    the interval bounds are -inf/+inf when no spread can be estimated yet, NaN when the cell
    has no finished replicate (or there is no best)."""

    cell: str
    n: int
    failures: int
    mean: float
    diff: float
    diff_low: float
    diff_high: float
    verdict: str
    reason: str
    method: str = ""          # "paired t", "Welch t", "pooled t", "none"
    fail_low: float = math.nan  # Clopper-Pearson interval of the failure rate
    fail_high: float = math.nan


@dataclass(frozen=True)
class _Diff:
    diff: float
    low: float
    high: float
    method: str


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean (NaN below 2 values; zero width when all are equal)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return float(x[0]), float(x[0])
    low, high = stats.t.interval(confidence, x.size - 1, loc=x.mean(), scale=sd / math.sqrt(x.size))
    return float(low), float(high)


@lru_cache(maxsize=4096)  # a handful of (failures, total) pairs recur in every sweep
def failure_interval(failures: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of the failure rate; NaN with no replicate at all.

    Its closed form in beta quantiles, which is what ``scipy.stats.binomtest(...).proportion_ci(
    method="exact")`` solves for numerically, at a fraction of the cost (the racing loop calls
    this for every cell after every replicate)."""
    if total <= 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low = stats.beta.ppf(tail, failures, total - failures + 1) if failures > 0 else 0.0
    high = stats.beta.ppf(1 - tail, failures + 1, total - failures) if failures < total else 1.0
    return float(low), float(high)


def pooled_sd(samples: Mapping[str, np.ndarray]) -> tuple[float, int]:
    """Pooled within-cell standard deviation and its degrees of freedom over cells with >= 2
    finite values; (NaN, 0) when there are none."""
    groups = [v for v in samples.values() if v.size >= 2]
    df = sum(v.size - 1 for v in groups)
    if df == 0:
        return math.nan, 0
    return math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in groups) / df), df


def _finite(reps: Mapping[int, float]) -> dict[int, float]:
    out = {}
    for k, v in reps.items():
        try:
            f = float(v)
        except (TypeError, ValueError):  # None, pandas' NA: a replicate without a score
            f = math.nan
        if math.isfinite(f):
            out[int(k)] = f
    return out


@lru_cache(maxsize=4096)
def t_quantile(confidence: float, df: float) -> float:
    """Half-width of the central Student-t interval in standard errors: what
    ``scipy.stats.t.interval(confidence, df)`` returns as its upper bound. Cached: paired
    degrees of freedom are the same few integers in every comparison."""
    return float(stats.t.interval(confidence, df)[1])


def _interval(diff: float, se: float, df: float, confidence: float, method: str) -> _Diff:
    if se == 0.0:
        return _Diff(diff, diff, diff, method)
    half = t_quantile(confidence, df) * se
    return _Diff(diff, diff - half, diff + half, method)


def difference(cell: Mapping[int, float], best: Mapping[int, float], *, confidence: float = 0.95,
               pooled: tuple[float, int] = (math.nan, 0), paired: bool = True) -> _Diff:
    """Interval of mean(cell - best) for two oriented replicate maps (finite values only).
    ``paired``: the keys name the seed, so equal keys are the same draw in both cells."""
    shared = sorted(set(cell) & set(best)) if paired else []
    if len(shared) >= 2:
        d = np.array([cell[k] - best[k] for k in shared])
        return _interval(float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size), d.size - 1,
                         confidence, "paired t")
    a, b = np.array(list(cell.values())), np.array(list(best.values()))
    diff = float(a.mean() - b.mean())
    if a.size >= 2 and b.size >= 2:
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        if va + vb == 0.0:
            return _Diff(diff, diff, diff, "Welch t")
        df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
        return _interval(diff, math.sqrt(va + vb), df, confidence, "Welch t")
    sd, df = pooled
    if df == 0 or not math.isfinite(sd):
        return _Diff(diff, -math.inf, math.inf, "none")
    return _interval(diff, sd * math.sqrt(1 / a.size + 1 / b.size), df, confidence, "pooled t")


def judge(scores: Mapping[str, Mapping[int, float]], *, min_effect: float,
          higher_is_better: bool, confidence: float = 0.95,
          paired: bool = True) -> list[CellVerdict]:
    """Verdicts for every cell, best first then by difference to the best (see the module
    docstring). ``scores``: cell -> {replicate key -> score}; a NaN score is a failed or
    diverged replicate. ``paired``: equal keys in two cells were trained with the same seed
    (set it false when they were not: the comparisons are then Welch or pooled)."""
    if min_effect < 0:
        raise ValueError(f"min_effect must be >= 0, got {min_effect}")
    sign = 1.0 if higher_is_better else -1.0
    finite = {str(c): _finite(r) for c, r in scores.items()}
    failures = {str(c): len(r) - len(finite[str(c)]) for c, r in scores.items()}
    oriented = {c: {k: sign * v for k, v in r.items()} for c, r in finite.items()}
    means = {c: float(np.mean(list(r.values()))) for c, r in oriented.items() if r}
    eligible = [c for c in means if len(oriented[c]) >= MIN_FINISHED_FOR_BEST]
    best = min(eligible, key=lambda c: (-means[c], c)) if eligible else None
    pooled = pooled_sd({c: np.array(list(r.values())) for c, r in oriented.items()})

    diffs: dict[str, _Diff] = {}
    for c in means:
        if best is None:
            diffs[c] = _Diff(math.nan, -math.inf, math.inf, "none")
        elif c == best:
            diffs[c] = _Diff(0.0, 0.0, 0.0, "best")
        else:
            diffs[c] = difference(oriented[c], oriented[best], confidence=confidence,
                                  pooled=pooled, paired=paired)

    def order(c: str) -> tuple:
        if c not in means:
            return (3, 0.0, c)
        d = diffs[c].diff
        return (0 if c == best else 1 if math.isfinite(d) else 2,
                -d if math.isfinite(d) else -means[c], c)

    out = []
    for c in sorted(finite, key=order):
        n, f = len(finite[c]), failures[c]
        fail = failure_interval(f, n + f, confidence)
        mean = float(np.mean(list(finite[c].values()))) if n else math.nan
        d = diffs.get(c, _Diff(math.nan, math.nan, math.nan, "none"))
        verdict, reason = _verdict(c, n, best, d, min_effect)
        if f:
            reason += (f"; {f} of {n + f} replicates failed ({confidence:.0%} CI "
                       f"{100 * fail[0]:.0f}-{100 * fail[1]:.0f}%)")
        out.append(CellVerdict(c, n, f, mean, d.diff, d.low, d.high, verdict, reason,
                               d.method, *fail))
    return out


def _verdict(cell: str, n: int, best: str | None, d: _Diff, m: float) -> tuple[str, str]:
    if n == 0:
        return "worse", "no finished replicate"
    if cell == best:
        return "best", f"best mean of {n} finished replicates"
    if best is None:
        return "undecided", f"no cell has {MIN_FINISHED_FOR_BEST} finished replicates yet"
    span = f"difference {d.diff:+.4g}, interval {d.low:+.4g} to {d.high:+.4g}"
    if d.low >= -m and d.high <= m:
        return "tied", f"tied within {m:g} ({span})"
    if d.high < -m:
        return "worse", f"worse by {-d.diff:.4g} ({span}; excludes -{m:g})"
    if n < MIN_FINISHED_FOR_BEST and d.diff > 0:
        return "undecided", f"ahead on 1 finished replicate, needs a second ({span})"
    if not math.isfinite(d.low):
        return "undecided", "no spread estimate yet (needs a second replicate)"
    return "undecided", f"undecided ({span} straddles +-{m:g})"


def undecided(verdicts: list[CellVerdict]) -> list[str]:
    """Cells that need another replicate: the undecided ones, in the verdicts' order."""
    return [v.cell for v in verdicts if v.verdict == "undecided"]


def prob_best(scores: Mapping[str, Mapping[int, float]], *, higher_is_better: bool,
              draws: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Posterior probability that each cell has the best true mean, among the cells that can
    be best (>= 2 finished replicates); NaN for the others.

    Each cell's mean is drawn from a Student-t posterior, mean + s / sqrt(n) * t(df), where s
    and df are the cell's variance and degrees of freedom moderated toward the sweep's common
    variance (:mod:`pipeline.report.variances`, empirical Bayes): at n = 2 or 3 a cell's own
    variance alone gives tails so heavy that P(best) is too timid, and resampling the
    replicates gives tails far too light. A cell with one finished replicate gets no number:
    it would rest only on assuming it varies like the others. Draws are independent across
    cells, which ignores the positive correlation shared seeds induce (less extreme).
    """
    sign = 1.0 if higher_is_better else -1.0
    samples = {str(c): np.array([sign * v for v in _finite(r).values()]) for c, r in
               scores.items()}
    out = {c: math.nan for c in samples}
    live = [c for c, v in samples.items() if v.size >= MIN_FINISHED_FOR_BEST]
    if not live:
        return out
    rng = np.random.default_rng(seed)
    own = {c: (float(samples[c].var(ddof=1)), samples[c].size - 1.0) for c in live}
    common = variances.prior([v for v, _ in own.values()], [d for _, d in own.values()])
    mod = [variances.moderated(*own[c], common) for c in live]
    centre = np.array([samples[c].mean() for c in live])
    err_sq = np.array([v / samples[c].size for c, (v, _) in zip(live, mod, strict=True)])
    post, keep = variances.shrink(centre, err_sq)
    means = np.column_stack([
        post[i] + math.sqrt(keep[i] * err_sq[i]) * rng.standard_t(df, draws)
        for i, (_, df) in enumerate(mod)])
    wins = np.isclose(means, means.max(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)
    share = (wins / wins.sum(axis=1, keepdims=True)).mean(axis=0)
    out.update({c: float(p) for c, p in zip(live, share, strict=True)})
    return out
