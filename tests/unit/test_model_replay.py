"""A spooled model replayed twice (the first replay killed after MLflow took the model, before
the spool marked it delivered) is logged once, into a real SQLite store."""

from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig
from pipeline.model.build import build_for
from pipeline.tasks import Problem
from pipeline.tracking import spool
from pipeline.tracking.models import stash_model


def test_a_model_record_delivered_again_logs_no_second_model(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    cfg, problem = RunConfig(), Problem.classes((6, 6, 1), 3)
    files = tmp_path / "spool" / run_id
    files.mkdir(parents=True)
    model = build_for(cfg, problem).inference
    record = {"op": "model", **stash_model(files, cfg, problem, model,
                                           np.zeros((1, 6, 6, 1), "float32"), [])}
    for _ in range(2):  # the second delivery is the replay after the kill
        spool.deliver(client, run_id, record, files)
    models = client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}'")
    assert [m.name for m in models] == ["model"]
