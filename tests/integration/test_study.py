"""A study end to end on a tiny dataset: the study job writes its quick sweep, the sweep trains
it with real Horovod ranks into a real MLflow store, and the report sets the published figures
beside the measured ones and draws every hidden layer of the deeper network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from pipeline.tracking import store as tracking
from tests.helpers import load_job, prepare_tiny
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

SWEEP = """
name: tiny-study
dataset: tiny
repeats: 3
base:
  model: {hidden_layers: [8, 8, 8, 8]}
  training: {epochs: 6, batch_size: 32, seed: 1}
grid:
  model.hidden_activation: [relu, tanh]
"""
# Published figures chosen so that one lies inside the interval of replicates that learn the
# tiny set and one far outside it.
STUDY = """
name: tiny
title: a tiny study
sweep: sweep.yaml
source: a made-up table
table: Table 9
published_as: error_percent
published:
  - {label: ReLU, value: 0.0, where: {model.hidden_activation: relu}}
  - {label: Tanh, value: 90.0, where: {model.hidden_activation: tanh}}
quick: {base.training.epochs: 3, repeats: 2, base.model.hidden_layers: [8, 8, 8]}
"""


@pytest.mark.slow(reason="a real quick-form study: four one-rank runs, two at a time, and "
                  "the report")
def test_a_quick_study_reports_published_against_measured_and_every_layer(tmp_path, spark,
                                                                          monkeypatch):
    data = prepare_tiny(tmp_path, n_train=600, n_test=60)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    (tmp_path / "study.yaml").write_text(STUDY)
    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    quick = tmp_path / "studies" / "tiny-quick.yaml"
    study = str(tmp_path / "study.yaml")
    assert load_job("study").main(["--study", study, "--quick", "--write-sweep", str(quick)]) == 0
    assert load_job("train_sweep").main([
        "--config", str(quick), "--data", str(data), "--experiment", "tiny-quick",
        "--num-proc", "2", "--ranks-per-trial", "1",
        "--checkpoint-dir", str(tmp_path / "ckpt")]) == 0
    out = tmp_path / "report"
    assert load_job("compare").main(["--experiment", "tiny-quick", "--output", str(out),
                                     "--study", study, "--quick", "--no-register"]) == 0

    client = MlflowClient(uri)
    runs = tracking.children(client, client.get_experiment_by_name("tiny-quick").experiment_id)
    assert len(runs) == 4  # the quick form: 2 cells x 2 replicates, not 3
    assert {r.data.params["model.hidden_layers"] for r in runs} == {"[8, 8, 8]"}
    table = pd.read_csv(out / "published.csv")
    for _, row in table.iterrows():
        act = {"ReLU": "relu", "Tanh": "tanh"}[row["configuration"]]
        got = [r.data.metrics["test_accuracy"] for r in runs
               if r.data.params["model.hidden_activation"] == act]
        expected = 1 - {"relu": 0.0, "tanh": 0.9}[act]
        assert row["measured test_accuracy"] == pytest.approx(np.mean(got))
        if np.ptp(got) == 0:  # equal replicates: an interval of zero width
            inside = expected == got[0]
        else:
            low, high = stats.t.interval(0.95, len(got) - 1, loc=np.mean(got),
                                         scale=stats.sem(got))
            inside = low <= expected <= high
        assert row["verdict"].startswith("agrees") == inside, row.to_dict()
    assert table.loc[table["configuration"] == "Tanh", "verdict"].item().startswith("differs")

    page = (out / "index.html").read_text()
    assert "Published vs measured" in page and "quick form" in page
    assert "Against a made-up table, Table 9 (quick form): " in page
    assert (out / "layers_grad.png").stat().st_size > 0 and (out / "layers_units.png").exists()
    assert "Layer by layer" in page and "first / last layer, at initialization" in page
