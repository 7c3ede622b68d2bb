"""Empirical-Bayes moderated variances (Smyth 2004, the "moderated t" of limma).

With 2 or 3 replicates a cell's own variance rests on 1 or 2 degrees of freedom, and a Student-t
posterior built on it has tails so heavy that P(best) comes out too timid. The cells of one
sweep usually vary alike (seed noise), so each cell's variance is shrunk toward the sweep's
common one, by as much as the cells' sample variances agree: when they scatter no more than
sampling alone explains, the prior degrees of freedom ``d0`` are infinite (full pooling); when
they differ widely, ``d0`` is small and each cell keeps its own. NumPy and SciPy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

# Past this many prior degrees of freedom the moderated t is a normal in all but name.
DF_CAP = 1e6


@dataclass(frozen=True)
class Prior:
    """The sweep's common variance ``s0_sq`` and how many degrees of freedom ``d0`` it is worth
    (0: no pooling, each cell keeps its own variance)."""

    s0_sq: float
    d0: float


def _trigamma_inverse(y: float) -> float:
    """x with trigamma(x) = y (trigamma is decreasing from +inf to 0 on x > 0)."""
    return float(optimize.brentq(lambda x: special.polygamma(1, x) - y, 1e-8, 1e8))


def prior(variances: Sequence[float], dfs: Sequence[float]) -> Prior:
    """Fit the prior from cells' sample variances and degrees of freedom (method of moments on
    log variances). Cells with zero variance carry no information on the scale and are left
    out; fewer than 2 informative cells: no pooling."""
    s2, d = np.asarray(variances, float), np.asarray(dfs, float)
    keep = (s2 > 0) & (d > 0) & np.isfinite(s2)
    s2, d = s2[keep], d[keep]
    if s2.size < 2:
        return Prior(math.nan, 0.0)
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    excess = float(np.var(e, ddof=1) - np.mean(special.polygamma(1, d / 2)))
    if excess <= 0:
        return Prior(float(np.exp(e.mean())), DF_CAP)
    d0 = 2 * _trigamma_inverse(excess)
    s0_sq = float(np.exp(e.mean() + special.digamma(d0 / 2) - np.log(d0 / 2)))
    return Prior(s0_sq, min(d0, DF_CAP))


def moderated(s_sq: float, df: float, p: Prior) -> tuple[float, float]:
    """(moderated variance, its degrees of freedom) of one cell under prior ``p``."""
    if p.d0 <= 0 or not math.isfinite(p.s0_sq):
        return s_sq, df
    return (p.d0 * p.s0_sq + df * s_sq) / (p.d0 + df), p.d0 + df


def between_variance(means: np.ndarray, errors_sq: np.ndarray) -> float:
    """DerSimonian-Laird moment estimate of the variance of the true means across cells, from
    the cells' means and squared standard errors (0 when the means scatter no more than their
    errors explain)."""
    w = 1.0 / errors_sq
    centre = float(np.sum(w * means) / w.sum())
    q = float(np.sum(w * (means - centre) ** 2))
    scale = float(w.sum() - np.sum(w ** 2) / w.sum())
    return max(0.0, (q - (means.size - 1)) / scale)


def shrink(means: np.ndarray, errors_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(posterior centres, kept share of each cell's deviation) under a normal model of the
    true means: a cell's mean moves toward the weighted centre by its share of noise,
    errors / (errors + between-cell variance). Unchanged when there are fewer than 2 cells or
    a cell has no error estimate (all its replicates equal): no basis for shrinking."""
    if means.size < 2 or not np.all(errors_sq > 0):
        return means, np.ones_like(means)
    tau_sq = between_variance(means, errors_sq)
    keep = tau_sq / (tau_sq + errors_sq)
    w = 1.0 / errors_sq
    centre = float(np.sum(w * means) / w.sum())
    return centre + keep * (means - centre), keep
