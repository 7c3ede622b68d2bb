"""Problem types end to end on small generated data: the real prepare job (Spark), a 2-rank
Horovod sweep, a real MLflow store; the served model checked against the raw data."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from sklearn import metrics as skm

from pipeline.config import load_sweep_config
from pipeline.data import feed
from pipeline.data.manifest import load_manifest
from pipeline.tracking import store as tracking
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import load_job, write_npz

pytestmark = pytest.mark.integration


def _prepare(root: Path, body: str) -> Path:
    cfg = root / "data.yaml"
    cfg.write_text(body + f"output: {root / 'processed'}\n")
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / body.split("\n", 1)[0].split(": ")[1]


def _sweep(tmp_path: Path, body: str, spark, data: Path, uri: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    # Data parallel on purpose: the tests compare what the two ranks of one trial saw.
    opts = SweepOptions(data, num_proc=2, ranks_per_trial=2, tracking_uri=uri,
                        checkpoint_dir=tmp_path / "ckpt")
    return run_sweep(spark, load_sweep_config(path), opts, log=lambda m: None)


@pytest.fixture(scope="module")
def regression(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("regression")
    return _prepare(root, f"""name: reg
task: regression
source:
  format: parquet
  path: {root / 'raw' / 'train.parquet'}
  test_path: {root / 'raw' / 'test.parquet'}
  features: [x1, x2, x3, x4, x5, x6]
  targets: [y]
  generate: {{rows: 3000, test_rows: 400, features: 6, outlier_fraction: 0.05}}
split: {{val_fraction: 0.2, seed: 3}}
shards: 2
""")


def test_regression_is_prepared_standardized_on_the_train_split(regression):
    m = load_manifest(regression, verify=True)
    assert (m.task, m.input_kind, m.image_shape, m.outputs) == ("regression", "vector", [6], 1)
    assert m.target.names == ["y"] and m.features.names == [f"x{i}" for i in range(1, 7)]
    assert m.splits["train"].rows == 2400 and m.splits["test"].rows == 400
    x, y = feed.read_shards(m.shard_files(regression, "train", 0, 1), m.layout)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)  # the train split's own
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)   # statistics, from Spark
    np.testing.assert_allclose(y.mean(), 0.0, atol=1e-5)
    _, y_test = feed.read_shards(m.shard_files(regression, "test", 0, 1), m.layout)
    raw = pq.read_table(regression.parent.parent / "raw" / "test.parquet").column("y")
    original = np.sort(y_test[:, 0] * m.target.scaling.std[0] + m.target.scaling.mean[0])
    np.testing.assert_allclose(original, np.sort(raw.to_numpy()), rtol=1e-5, atol=1e-4)


def test_regression_sweep_logs_original_unit_metrics_the_served_model_reproduces(
        tmp_path, spark, regression, mlflow_store):
    uri = mlflow_store
    result = _sweep(tmp_path, """name: reg
dataset: reg
base:
  model: {hidden_layers: [16], output_activation: linear}
  optimizer: {learning_rate: 0.01}
  training: {epochs: 3, batch_size: 64, seed: 2}
grid:
  loss: [mse, huber]
""", spark, regression, uri)
    assert not result.failed
    rank0, rank1 = result.rank_outcomes
    for a, b in zip(rank0, rank1, strict=True):  # exact metrics: the same on every rank
        assert a.metrics == b.metrics
        assert a.history["val_mae"] == b.history["val_mae"]
    client = MlflowClient(uri)
    assert client.get_run(result.parent_run_id).data.tags["task"] == "regression"
    runs = tracking.children(client, result.experiment_id)
    assert len(runs) == 2
    raw = pq.read_table(regression.parent.parent / "raw" / "test.parquet").to_pandas()
    x, y = raw[[f"x{i}" for i in range(1, 7)]].to_numpy(np.float32), raw["y"].to_numpy()
    for run in runs:
        logged = run.data.metrics
        assert {"test_rmse", "test_mae", "test_r2", "test_loss", "train_seconds",
                "epochs_run"} <= set(logged)
        assert "test_accuracy" not in logged
        assert run.data.tags["task"] == "regression"  # what the report ranks by follows it
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_mae")] == \
            [0, 1, 2]
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        predicted = np.asarray(model.predict(x)).reshape(-1)  # raw features in, y's units out
        assert logged["test_rmse"] == pytest.approx(skm.root_mean_squared_error(y, predicted),
                                                    rel=1e-4)
        assert logged["test_mae"] == pytest.approx(skm.mean_absolute_error(y, predicted),
                                                   rel=1e-4)
        assert logged["test_r2"] == pytest.approx(skm.r2_score(y, predicted), rel=1e-4)
        assert logged["test_r2"] > 0.5  # it learned Friedman #1 in 3 short epochs


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("multilabel")
    source = write_npz(root / "d.npz", n_train=800, n_test=160, num_classes=4, side=12)
    return _prepare(root, f"""name: ml
task: multilabel
source: {{format: npz, path: {source}}}
derive:
  upper: [0, 1]
  odd: [1, 3]
split: {{val_fraction: 0.25, seed: 7}}
shards: 4
""")


def test_multilabel_sweep_logs_its_metrics_and_tags_the_softmax_warning(
        tmp_path, spark, multilabel, mlflow_store):
    m = load_manifest(multilabel)
    assert (m.task, m.target.names, m.outputs) == ("multilabel", ["upper", "odd"], 2)
    assert m.target.derived_from == {"upper": [0, 1], "odd": [1, 3]}
    assert m.splits["test"].class_histogram == [80, 80]  # 40 rows of each class
    uri = mlflow_store
    result = _sweep(tmp_path, """name: ml
dataset: ml
base:
  model: {hidden_layers: [16]}
  training: {epochs: 3, batch_size: 32, seed: 2}
grid:
  head:
    - {model.output_activation: sigmoid, loss: binary_crossentropy}
    - {model.output_activation: softmax, loss: categorical_crossentropy}
""", spark, multilabel, uri)
    assert not result.failed
    assert result.rank_outcomes[0][0].metrics == result.rank_outcomes[1][0].metrics
    client = MlflowClient(uri)
    runs = {r.data.params["loss"]: r for r in tracking.children(client, result.experiment_id)}
    for run in runs.values():
        assert {"test_micro_f1", "test_macro_f1", "test_hamming_loss",
                "test_subset_accuracy", "test_loss"} <= set(run.data.metrics)
    sigmoid = runs["binary_crossentropy"]
    assert sigmoid.data.metrics["test_micro_f1"] > 0.9  # bands are easy to tell apart
    assert "warnings" not in sigmoid.data.tags
    assert "softmax on a multilabel target" in runs["categorical_crossentropy"].data.tags[
        "warnings"]
    x, y = feed.read_shards(m.shard_files(multilabel, "test", 0, 1), m.layout)
    model = mlflow.pyfunc.load_model(f"runs:/{sigmoid.info.run_id}/model")
    scores = np.asarray(model.predict(feed.unit_scale(x)))
    assert scores.shape == (len(x), 2)  # one probability per label
    assert sigmoid.data.metrics["test_micro_f1"] == pytest.approx(
        skm.f1_score(y, scores > 0.5, average="micro"), rel=1e-6)


def test_binary_auc_is_exact_over_both_ranks_test_shards(tmp_path_factory, tmp_path, spark,
                                                          mlflow_store):
    """Each rank holds half the test split; the logged AUC is the full split's, which only an
    allgather of both halves' scores can give."""
    root = tmp_path_factory.mktemp("binary")
    source = write_npz(root / "d.npz", n_train=800, n_test=160, num_classes=4, side=12)
    data = _prepare(root, f"""name: bin
task: binary
source: {{format: npz, path: {source}}}
derive: {{low: [2, 3]}}
split: {{val_fraction: 0.25, seed: 7}}
shards: 4
""")
    m = load_manifest(data)
    assert (m.target.names, m.outputs, m.splits["test"].class_histogram) == (
        ["not low", "low"], 1, [80, 80])
    result = _sweep(tmp_path, """name: bin
dataset: bin
base:
  model: {hidden_layers: [4], output_activation: sigmoid}
  loss: binary_crossentropy
  optimizer: {learning_rate: 0.0005}
  training: {epochs: 1, batch_size: 32, seed: 2}
""", spark, data, mlflow_store)
    assert not result.failed
    (rank0,), (rank1,) = result.rank_outcomes
    assert rank0.metrics == rank1.metrics
    [run] = tracking.children(MlflowClient(mlflow_store), result.experiment_id)
    x, y = feed.read_shards(m.shard_files(data, "test", 0, 1), m.layout)
    scores = np.asarray(mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
                        .predict(feed.unit_scale(x)))
    assert scores.shape == (160, 1)
    logged = run.data.metrics
    assert logged["test_auc"] < 0.99  # barely trained: each half's own AUC would differ
    assert logged["test_auc"] == pytest.approx(skm.roc_auc_score(y, scores[:, 0]), abs=1e-6)
    assert logged["test_log_loss"] == pytest.approx(skm.log_loss(y, scores[:, 0]), rel=1e-4)
    assert logged["test_accuracy"] == pytest.approx(
        skm.accuracy_score(y, scores[:, 0] > 0.5), abs=1e-9)


# ---------------------------------------------------------------------------
# A bad head for the task (bad data files: test_task_inputs.py)


def test_regression_target_given_to_a_softmax_cross_entropy_head(tmp_path, spark, capsys,
                                                                 regression, mlflow_uri):
    from pipeline.cli import run_job

    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: bad\ndataset: reg\nbase:\n  model: {output_activation: softmax}\n"
                     "  loss: categorical_crossentropy\n")
    code = run_job(load_job("train_sweep").main,
                   ["--config", str(sweep), "--data", str(regression)], "sweep")
    assert code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "loss categorical_crossentropy on a regression target" in line
    assert not Path(mlflow_uri.removeprefix("sqlite:///")).exists()  # nothing recorded
    assert json.loads((regression / "manifest.json").read_text())["task"] == "regression"
