"""A spooled model replayed twice (the first replay killed after MLflow took the model, before
the spool marked it delivered) is logged once, into a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig
from pipeline.model.build import build_for
from pipeline.tasks import Problem
from pipeline.tracking import spool
from pipeline.tracking.models import stash_model
from tests.helpers.stores import sqlite_store

ROOT = Path(__file__).resolve().parents[2]


def test_a_model_record_delivered_again_logs_no_second_model(tmp_path):
    client = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
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


REPLAY_IN_A_FRESH_DRIVER = """
import sys
from pathlib import Path
from mlflow.tracking import MlflowClient
from pipeline.tracking import spool
report = spool.replay(MlflowClient(sys.argv[1]), Path(sys.argv[2]), spool.Retry(0, 0.0))
print(sorted(report.delivered.items()), sorted(report.pending.items()))
print("tensorflow loaded:", "tensorflow" in sys.modules)
"""


def test_the_driver_replays_a_spooled_model_without_importing_tensorflow(tmp_path):
    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    cfg, problem = RunConfig(), Problem.classes((6, 6, 1), 3)
    folder = spool.private_folder(tmp_path / "spool")
    files = spool.private_folder(folder / run_id)
    record = {"op": "model", **stash_model(files, cfg, problem, build_for(cfg, problem).inference,
                                           np.zeros((1, 6, 6, 1), "float32"), [])}
    with spool.open_locked(folder / f"{run_id}.jsonl", blocking=True) as handle:
        spool.append(handle, record)
    out = subprocess.run([sys.executable, "-c", REPLAY_IN_A_FRESH_DRIVER, uri, str(folder)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    assert f"[('{run_id}', 1)] []" in out and "tensorflow loaded: False" in out, out
    models = client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}'")
    assert [m.name for m in models] == ["model"]
    assert not (folder / f"{run_id}.jsonl").exists()  # delivered, so gone from the spool
