"""The cluster topology for real, without Docker: a Spark standalone master and two workers,
an MLflow server on PostgreSQL; the three jobs through spark-submit --master spark://..."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking
from scripts import local_cluster
from tests.helpers import ROOT, SPARK_SUBMIT, submit_env, write_data_config, write_npz

pytestmark = pytest.mark.integration

SWEEP = """
name: cluster
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 32}
grid:
  model.hidden_activation: [relu, tanh]
"""


@pytest.fixture(scope="module")
def cluster():
    state = Path(tempfile.mkdtemp(prefix="actloss-cluster-"))
    started = local_cluster.up(state, workers=2, worker_cores=1, worker_memory="2g")
    try:  # up() stops what it started if it fails part-way
        yield started
    finally:
        local_cluster.down(state)
    for name, pid in started.pids.items():  # everything it started is gone
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", name


def submit(cluster, *args: str) -> subprocess.CompletedProcess:
    env = submit_env(MLFLOW_TRACKING_URI=cluster.tracking_uri,
                     PIPELINE_SPARK_CONF=str(ROOT / "conf" / "spark" / "cluster.conf"))
    cmd = [str(SPARK_SUBMIT), "--master", cluster.master_url,
           "--conf", "spark.executor.memory=1g", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)


def test_jobs_run_on_the_standalone_cluster_and_log_to_the_server(cluster, tmp_path):
    cfg = write_data_config(tmp_path, write_npz(tmp_path / "d.npz"))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    steps = [
        ("jobs/prepare_data.py", "--config", str(cfg)),
        ("jobs/train_sweep.py", "--config", str(sweep), "--data",
         str(tmp_path / "processed" / "tiny"), "--num-proc", "2",
         "--checkpoint-dir", str(tmp_path / "ckpt")),
        ("jobs/compare.py", "--experiment", "cluster", "--output", str(tmp_path / "report")),
    ]
    for step in steps:
        proc = submit(cluster, *step)
        assert proc.returncode == 0, f"{step[0]}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    client = MlflowClient(cluster.tracking_uri)
    exp = client.get_experiment_by_name("cluster")
    runs = tracking.children(client, exp.experiment_id)
    assert sorted(r.data.params["model.hidden_activation"] for r in runs) == ["relu", "tanh"]
    for run in runs:
        assert run.data.tags["status"] == "finished"
        assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
        models = client.search_logged_models(
            [exp.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        assert [m.name for m in models] == ["model"]  # uploaded through the server
    assert (tmp_path / "report" / "index.html").is_file()
    # The ranks ran in the workers' executors, not in the driver.
    apps = list((Path(cluster.state_dir) / "worker-1").glob("app-*")) + \
        list((Path(cluster.state_dir) / "worker-2").glob("app-*"))
    assert apps, "no executor ran on the standalone workers"
