"""Test metrics by task, exact over every rank's shards. numpy only, no Horovod or TensorFlow.

Each rank turns its test rows into a vector of sums (``local_sums``); the sums are
allreduced and ``finish`` computes the metrics from the totals, so the result is the metric
of the whole test split, not an average of per-rank metrics. ROC AUC is not a function of
sums: each rank contributes its (score, label) pairs (``local_pairs``), every rank receives
all of them (an allgather) and the AUC is computed on the full split.

``y``: the targets as stored (class labels; 0/1 per label; standardized regression values).
``served``: the inference model's outputs, the ones users get: probabilities or scores for
classification, original units for regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.model import names
from pipeline.tasks import Problem

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] for the log loss


@dataclass(frozen=True)
class Scoring:
    """How served outputs of one configuration become test metrics."""

    problem: Problem
    threshold: float           # binary / multi-label: an output above it means "yes"
    bounds: tuple[float, float] | None  # the output activation's range, if bounded
    margin: bool               # +-1 targets (margin losses): unbounded scores split at 0

    @property
    def task(self) -> str:
        return self.problem.task


def scoring(problem: Problem, output_activation: str, encoding: str) -> Scoring:
    return Scoring(problem, names.decision_threshold(output_activation, encoding),
                   names.activation_info(output_activation).bounds, encoding == "pm1")


def positive_probability(s: Scoring, served: np.ndarray) -> np.ndarray:
    """A probability of "yes" from a served output, for the log loss: a bounded output
    rescaled from its range to [0, 1]; an unbounded +-1 score through the logistic function;
    an unbounded 0/1 score clipped to [0, 1]."""
    out = served.astype(np.float64)
    if s.bounds is not None:
        lo, hi = s.bounds
        p = (out - lo) / (hi - lo)
    elif s.margin:
        p = 1.0 / (1.0 + np.exp(-out))
    else:
        p = out
    return np.clip(p, EPS, 1.0 - EPS)


def local_sums(s: Scoring, y: np.ndarray, served: np.ndarray, loss_sum: float) -> np.ndarray:
    """This rank's sums: [loss sum, rows, ...task's counts]."""
    head = [float(loss_sum), float(len(y))]
    if s.task == "multiclass":
        k = s.problem.outputs
        confusion = np.zeros((k, k))
        np.add.at(confusion, (y.astype(np.int64), np.argmax(served, axis=-1)), 1.0)
        return np.concatenate([head, confusion.ravel()])
    if s.task == "binary":
        truth, pred = y.reshape(-1).astype(np.int64), _decide(s, served).reshape(-1)
        confusion = np.zeros((2, 2))
        np.add.at(confusion, (truth, pred), 1.0)
        p = positive_probability(s, served.reshape(-1))
        log_loss = -np.sum(truth * np.log(p) + (1 - truth) * np.log(1 - p))
        return np.concatenate([head, confusion.ravel(), [log_loss]])
    if s.task == "multilabel":
        truth, pred = y > 0.5, _decide(s, served).astype(bool)
        return np.concatenate([head, np.sum(truth & pred, axis=0), np.sum(~truth & pred, axis=0),
                               np.sum(truth & ~pred, axis=0),
                               [np.sum(np.all(truth == pred, axis=1))]])
    # Regression, in original units; y is centred on the train mean before squaring (the
    # total sum of squares does not depend on the centre, and its rounding error does).
    p = s.problem
    mean, std = np.asarray(p.target_mean, np.float64), np.asarray(p.target_std, np.float64)
    err = served.astype(np.float64) - (y * std + mean)
    centred = y.astype(np.float64) * std
    return np.concatenate([head, np.abs(err).sum(0), (err ** 2).sum(0), centred.sum(0),
                           (centred ** 2).sum(0)])


def local_pairs(s: Scoring, y: np.ndarray, served: np.ndarray) -> np.ndarray:
    """[rows, 2] of (score, label) for the exact AUC; no rows unless the task is binary."""
    if s.task != "binary":
        return np.zeros((0, 2))
    return np.stack([served.reshape(-1).astype(np.float64), y.reshape(-1).astype(np.float64)],
                    axis=1)


def finish(s: Scoring, sums: np.ndarray, pairs: np.ndarray) -> tuple[dict[str, float],
                                                                     np.ndarray | None]:
    """The task's test metrics from the allreduced sums (and gathered pairs), and the
    confusion matrix for the tasks that have one."""
    n = sums[1]
    metrics = {"test_loss": sums[0] / n}
    rest = sums[2:]
    if s.task in ("multiclass", "binary"):
        k = 2 if s.task == "binary" else s.problem.outputs
        confusion = rest[:k * k].reshape(k, k).astype(np.int64)
        metrics["test_accuracy"] = float(np.trace(confusion)) / n
        if s.task == "binary":
            metrics["test_log_loss"] = rest[k * k] / n
            metrics["test_auc"] = roc_auc(pairs[:, 0], pairs[:, 1])
        return _floats(metrics), confusion
    m = s.problem.outputs
    if s.task == "multilabel":
        tp, fp, fn, exact = rest[:m], rest[m:2 * m], rest[2 * m:3 * m], rest[3 * m]
        metrics["test_micro_f1"] = _f1(tp.sum(), fp.sum(), fn.sum())
        metrics["test_macro_f1"] = float(np.mean([_f1(*c) for c in zip(tp, fp, fn,
                                                                         strict=True)]))
        metrics["test_hamming_loss"] = (fp.sum() + fn.sum()) / (n * m)
        metrics["test_subset_accuracy"] = exact / n
        return _floats(metrics), None
    abs_err, sq_err, total, total_sq = (rest[i * m:(i + 1) * m] for i in range(4))
    sst = total_sq - total ** 2 / n
    metrics["test_mae"] = float(np.mean(abs_err / n))
    metrics["test_rmse"] = float(np.mean(np.sqrt(sq_err / n)))  # per target, then averaged
    metrics["test_r2"] = float(np.mean(1.0 - sq_err / sst))
    return _floats(metrics), None


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U of the positives' score ranks (ties get
    their average rank), divided by positives x negatives. NaN without both classes."""
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # here: binary heads only, and scipy is slow to import

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _decide(s: Scoring, served: np.ndarray) -> np.ndarray:
    return (served > s.threshold).astype(np.int64)


def _f1(tp: float, fp: float, fn: float) -> float:
    """2 TP / (2 TP + FP + FN); 0 when the label is neither present nor predicted."""
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def _floats(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
