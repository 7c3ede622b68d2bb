"""The sweep's summary on its parent run and the runs view the UI link opens, against a real
SQLite MLflow store; the report is a stand-in with the fields of pipeline.report.writer.Report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, apply_overrides
from pipeline.tracking import summary, view, vocab
from pipeline.tracking.store import log_config_params
from tests.helpers.stores import sqlite_store

ANSWER = ["Best: relu | ce(softmax), tied with relu | mse(softmax).",
          "3 configurations x up to 3 replicates: 9 runs (8 finished, 1 failed)."]


def _board(**extra: list) -> pd.DataFrame:
    """Three cells best first, as the report's leaderboard has them."""
    return pd.DataFrame({
        "cell": ["c1", "c2", "c3"],
        "configuration": ["relu | ce(softmax)", "relu | mse(softmax)", "tanh | mae(softmax)"],
        "mean": [0.9761, 0.9758, 0.858], "ci_low": [0.9741, 0.9730, 0.80],
        "ci_high": [0.9781, 0.9786, 0.91], "n_finished": [3, 3, 2], "n_failed": [0, 0, 1],
        "mean_test_accuracy": [0.9755, 0.9750, 0.86], **extra})


@dataclass
class FakeReport:
    leaderboard: pd.DataFrame
    index: Path
    answer: list[str] = field(default_factory=lambda: list(ANSWER))


@pytest.fixture
def client(tmp_path) -> MlflowClient:
    return MlflowClient(sqlite_store(tmp_path / "mlflow.db"))


def test_summary_reads_the_best_cell_from_the_is_best_flag():
    board = _board(is_best=[True, False, False], tied_with_best=[True, True, False])
    found = summary.summarize(board, ANSWER, "test_accuracy")
    assert (found.best, found.mean, found.ci_low, found.ci_high) == (
        "relu | ce(softmax)", 0.9761, 0.9741, 0.9781)
    assert (found.cells, found.runs, found.tied) == (3, 9, 1)  # the best is not its own tie
    assert found.verdict == ANSWER[0]
    assert found.metrics()["best_test_accuracy"] == 0.9755


def test_summary_reads_a_verdict_column_when_the_report_has_one_instead():
    board = _board(verdict=["tied", "best", "worse"])  # best need not be the first row
    found = summary.summarize(board, ANSWER)
    assert (found.best, found.mean, found.tied) == ("relu | mse(softmax)", 0.9758, 1)
    assert {k: v for k, v in found.metrics().items() if k.startswith("cells_")} == {
        "cells_best": 1, "cells_tied": 1, "cells_worse": 1}
    # without the report's own count line, the description counts
    assert "3 configurations, 9 runs." in summary.describe(found, ANSWER[:1], "#", Path("r"))


def test_no_best_cell_means_no_best_figures():
    board = _board(is_best=[False, False, False]).assign(mean=math.nan)
    metrics = summary.summarize(board, []).metrics()
    assert metrics == {"cells": 3.0, "runs": 9.0, "tied_with_best": 0.0}


def test_the_parent_carries_the_summary_a_description_and_the_report(client, tmp_path):
    exp = client.create_experiment("e")
    parent = client.create_run(exp, tags={vocab.TAG_ROLE: vocab.ROLE_SWEEP})
    folder = tmp_path / "reports" / "e"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<h1>report</h1>")
    (folder / "heatmap.png").write_bytes(b"png")
    board = _board(is_best=[True, False, False], tied_with_best=[True, True, False])
    summary.publish(client, parent, FakeReport(board, folder / "index.html"), "test_accuracy")
    run = client.get_run(parent.info.run_id)
    m, tags = run.data.metrics, run.data.tags
    assert (m["cells"], m["runs"], m["best_mean"], m["best_ci_low"], m["best_ci_high"]) == (
        3, 9, 0.9761, 0.9741, 0.9781)
    assert tags[vocab.TAG_BEST] == "relu | ce(softmax)" and tags[vocab.TAG_VERDICT] == ANSWER[0]
    note = tags[vocab.TAG_NOTE]
    assert ANSWER[0] in note and ANSWER[1] in note and note.count("9 runs") == 1
    assert "`test_accuracy` 0.9761 (95% CI 0.9741 to 0.9781)" in note
    assert (f"(#/experiments/{exp}/runs/{parent.info.run_id}/artifacts/report/index.html?"
            in note)
    logged = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert logged == {"index.html", "heatmap.png"}
    # published again (compare run twice): the report is not logged a second time
    summary.publish(client, parent, FakeReport(board, folder / "index.html"), "test_accuracy")
    assert len(client.list_artifacts(parent.info.run_id, "report")) == 2


def test_the_runs_view_shows_the_swept_params_and_the_primary_metric_best_first(client):
    exp_id = client.create_experiment("e")
    parent = client.create_run(exp_id, tags={vocab.TAG_ROLE: vocab.ROLE_SWEEP,
                                             vocab.TAG_TASK: "multiclass"}).info.run_id
    for act, seed in (("relu", 1), ("relu", 2), ("tanh", 1)):
        run = client.create_run(exp_id, tags={vocab.TAG_ROLE: vocab.ROLE_CONFIG,
                                              vocab.TAG_PARENT: parent}).info.run_id
        log_config_params(client, run, apply_overrides(RunConfig(), {
            "model.hidden_activation": act, "training.seed": seed}))
    exp = client.get_experiment(exp_id)
    key = view.save(client, exp)
    state = json.loads(client.get_experiment(exp_id).tags[view.VIEW_TAG_PREFIX + key])
    assert state["searchFilter"] == "tags.role = 'config'"
    assert state["orderByKey"] == "metrics.`test_accuracy`" and state["orderByAsc"] is False
    assert state["selectedColumns"] == ["tags.`configuration`", "params.`model.hidden_activation`",
                                        "metrics.`test_accuracy`", "tags.`status`"]
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "configuration"}]
    assert view.link("http://ui", exp_id, key) == (
        f"http://ui/#/experiments/{exp_id}/runs?workflowType=machine_learning"
        f"&viewStateShareKey={key}")


def test_an_experiment_without_a_sweep_gets_the_plain_runs_link(client):
    exp_id = client.create_experiment("e")
    assert view.save(client, client.get_experiment(exp_id)) is None
    assert view.link("http://ui", exp_id, None) == (
        f"http://ui/#/experiments/{exp_id}/runs?workflowType=machine_learning")
