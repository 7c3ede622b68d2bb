"""Test metrics by task against scikit-learn on small arrays, and the same totals whether the
test split sits on one rank or is cut between two (sums added, AUC pairs concatenated, as the
allreduce and the allgather do)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.tasks import Problem
from pipeline.train.rank import metrics

RNG = np.random.default_rng(3)


def _split_ranks(s: metrics.Scoring, y: np.ndarray, served: np.ndarray, losses: np.ndarray,
                 cuts: list[int]) -> dict[str, float]:
    """The metrics as len(cuts) + 1 ranks compute them, each holding one slice of the rows."""
    parts = np.split(np.arange(len(y)), cuts)
    sums = sum(metrics.local_sums(s, y[i], served[i], losses[i].sum()) for i in parts)
    pairs = np.concatenate([metrics.local_pairs(s, y[i], served[i]) for i in parts])
    return metrics.finish(s, sums, pairs)[0]


def _agree(s, y, served, losses) -> dict[str, float]:
    one = _split_ranks(s, y, served, losses, [])
    two = _split_ranks(s, y, served, losses, [len(y) // 3])
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(one["test_loss"], losses.mean())
    return one


def test_regression_in_original_units():
    mean, std = (12.0, -3.0), (4.0, 0.5)
    s = metrics.scoring(Problem("regression", (3,), 2, "vector", target_mean=mean,
                                target_std=std), "linear", "onehot")
    y_std = RNG.normal(size=(40, 2))
    truth = y_std * std + mean
    served = truth + RNG.normal(scale=[1.0, 0.2], size=(40, 2))
    got = _agree(s, y_std, served, RNG.random(40))
    assert got["test_mae"] == pytest.approx(skm.mean_absolute_error(truth, served))
    assert got["test_rmse"] == pytest.approx(skm.root_mean_squared_error(truth, served))
    assert got["test_r2"] == pytest.approx(skm.r2_score(truth, served))


def test_binary_accuracy_log_loss_and_exact_auc_with_ties():
    s = metrics.scoring(Problem("binary", (3,), 1), "sigmoid", "onehot")
    y = RNG.integers(0, 2, size=50)
    served = np.round(RNG.random((50, 1)), 1)  # rounded: many tied scores
    served = np.clip(served, 0.05, 0.95)
    got = _agree(s, y, served, RNG.random(50))
    assert got["test_accuracy"] == pytest.approx(skm.accuracy_score(y, served[:, 0] > 0.5))
    assert got["test_log_loss"] == pytest.approx(skm.log_loss(y, served[:, 0]))
    assert got["test_auc"] == pytest.approx(skm.roc_auc_score(y, served[:, 0]))


def test_binary_scores_of_a_margin_head():
    """A linear head trained on +-1 targets: decided at 0, probabilities through sigmoid."""
    s = metrics.scoring(Problem("binary", (3,), 1), "linear", "pm1")
    y = np.array([0, 1, 1, 0])
    served = np.array([[-2.0], [0.5], [-0.1], [0.3]])
    got = _agree(s, y, served, np.ones(4))
    assert got["test_accuracy"] == 0.5
    p = 1 / (1 + np.exp(-served[:, 0]))
    assert got["test_log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert got["test_auc"] == pytest.approx(skm.roc_auc_score(y, served[:, 0]))


def test_auc_of_one_class_is_nan():
    assert np.isnan(metrics.roc_auc(np.array([0.1, 0.2]), np.array([1.0, 1.0])))


def test_multilabel():
    s = metrics.scoring(Problem("multilabel", (3,), 4), "sigmoid", "onehot")
    y = RNG.integers(0, 2, size=(60, 4)).astype(np.float32)
    y[:, 3] = 0  # a label never present ...
    served = RNG.random((60, 4))
    served[:, 3] = 0.1  # ... nor predicted: its F1 counts as 0, as scikit-learn's default
    pred = served > 0.5
    got = _agree(s, y, served, RNG.random(60))
    assert got["test_micro_f1"] == pytest.approx(skm.f1_score(y, pred, average="micro"))
    assert got["test_macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["test_hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred))
    assert got["test_subset_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_multiclass_as_before():
    s = metrics.scoring(Problem.classes((4, 4, 1), 3), "softmax", "onehot")
    y = RNG.integers(0, 3, size=30)
    served = RNG.random((30, 3))
    got = _agree(s, y, served, RNG.random(30))
    assert got["test_accuracy"] == pytest.approx(skm.accuracy_score(y, served.argmax(1)))
    _, confusion = metrics.finish(s, metrics.local_sums(s, y, served, 0.0), np.zeros((0, 2)))
    np.testing.assert_array_equal(confusion, skm.confusion_matrix(y, served.argmax(1)))


def test_tanh_probabilities_are_rescaled_from_its_range():
    s = metrics.scoring(Problem("binary", (3,), 1), "tanh", "pm1")
    np.testing.assert_allclose(metrics.positive_probability(s, np.array([-1.0, 0.0, 0.5])),
                               [metrics.EPS, 0.5, 0.75])
