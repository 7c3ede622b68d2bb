"""Empirical-Bayes moderation of cell variances and shrinkage of cell means (P(best)'s model)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.report import variances


def test_cells_that_vary_alike_are_pooled_fully():
    rng = np.random.default_rng(0)
    s2 = [rng.normal(0, 0.002, 3).var(ddof=1) for _ in range(200)]
    prior = variances.prior(s2, [2] * 200)
    assert prior.d0 > 50  # sampling alone explains the scatter: (nearly) full pooling
    assert prior.s0_sq == pytest.approx(0.002 ** 2, rel=0.2)


def test_cells_that_vary_very_differently_keep_most_of_their_own_variance():
    rng = np.random.default_rng(1)
    sds = rng.choice([0.0001, 0.01], 200)
    s2 = [rng.normal(0, sd, 5).var(ddof=1) for sd in sds]
    prior = variances.prior(s2, [4] * 200)
    assert prior.d0 < 4
    var, df = variances.moderated(1e-8, 4, prior)
    assert var > 1e-8 and df == pytest.approx(4 + prior.d0)


def test_without_two_informative_cells_nothing_is_pooled():
    prior = variances.prior([0.0, 1e-6], [2, 2])
    assert prior.d0 == 0 and variances.moderated(1e-6, 2, prior) == (1e-6, 2)


def test_means_no_further_apart_than_their_errors_shrink_to_one_centre():
    means, err = np.array([0.970, 0.9701, 0.9699]), np.full(3, 1e-4 ** 2 * 100)
    post, keep = variances.shrink(means, err)
    assert np.allclose(post, post[0]) and np.allclose(keep, 0)
    far = np.array([0.97, 0.90, 0.80])
    post, keep = variances.shrink(far, np.full(3, 1e-6))
    assert np.allclose(post, far, atol=1e-4) and np.all(keep > 0.99)
