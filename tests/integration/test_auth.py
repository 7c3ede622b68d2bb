"""A real `mlflow server --app-name basic-auth`, started the way `local_cluster.py up --auth`
starts it: a sweep with credentials in the environment trains and its runs are readable; with
none or wrong ones it stops with one line naming the 401, before any training."""

from __future__ import annotations

import base64
import json
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

from pipeline.cli import run_job
from pipeline.tracking import store as tracking
from scripts import local_cluster
from tests.helpers import load_job, write_data_config, write_npz

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-Pw-for-tests-%-only"  # a '%' checks the config file's escaping
SWEEPER, SWEEPER_PASSWORD = "sweeper", "sweeper-Pw-0123456789"
SWEEP = """
name: guarded
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 1, batch_size: 32}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("auth-server")
    cluster = local_cluster.Cluster(str(state))
    try:
        local_cluster.start_mlflow(cluster, f"sqlite:///{state / 'mlflow.db'}", ADMIN_PASSWORD)
        with pytest.MonkeyPatch.context() as mp:  # the admin creates the sweeps' own user
            mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
            AuthServiceClient(cluster.tracking_uri).create_user(SWEEPER, SWEEPER_PASSWORD)
        yield cluster
    finally:
        local_cluster.down(state)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("auth-data")
    cfg = write_data_config(root, write_npz(root / "d.npz", n_train=160, n_test=32, side=8))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    (root / "sweep.yaml").write_text(SWEEP)
    return root


def _sweep(dataset: Path, experiment: str) -> int:
    return run_job(load_job("train_sweep").main,
                   ["--config", str(dataset / "sweep.yaml"), "--data",
                    str(dataset / "processed" / "tiny"), "--experiment", experiment,
                    "--checkpoint-dir", str(dataset / f"ckpt-{experiment}")], "train_sweep")


def test_auth_config_is_private_and_the_password_not_in_argv(server):
    config = Path(server.state_dir) / "basic_auth.ini"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    cmdline = " ".join(psutil.Process(server.pids["mlflow"]).cmdline())
    assert "basic-auth" in cmdline and "Pw-for-tests" not in cmdline


def test_anonymous_requests_are_refused(server):
    url = f"{server.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401


def test_sweep_with_credentials_trains_and_its_runs_are_readable(server, dataset, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", SWEEPER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SWEEPER_PASSWORD)
    assert _sweep(dataset, "guarded") == 0
    client = MlflowClient(server.tracking_uri)
    exp = client.get_experiment_by_name("guarded")
    [run] = tracking.children(client, exp.experiment_id)
    assert run.data.tags["status"] == "finished"
    # Rank 0 created that run and logged its model: the credentials reached the ranks.
    assert client.search_logged_models([exp.experiment_id])[0].source_run_id == run.info.run_id
    assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [0]


@pytest.mark.parametrize("credentials, reason", [
    ({}, "authentication required (HTTP 401): set MLFLOW_TRACKING_USERNAME"),
    ({"MLFLOW_TRACKING_USERNAME": SWEEPER, "MLFLOW_TRACKING_PASSWORD": "wrong"},
     f"authentication failed for user '{SWEEPER}' (HTTP 401)"),
], ids=["none", "wrong"])
def test_sweep_without_valid_credentials_stops_before_training(server, dataset, monkeypatch,
                                                               capsys, tmp_path, credentials,
                                                               reason):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.mlflow/credentials to fall back on
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.tracking_uri)
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    for key, value in credentials.items():
        monkeypatch.setenv(key, value)
    experiment = f"denied-{len(credentials)}"
    started = time.monotonic()
    assert _sweep(dataset, experiment) == 2
    assert time.monotonic() - started < 60  # no Horovod launch, no retries
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("train_sweep: error: MLflow tracking store ") and reason in line
    assert not (dataset / f"ckpt-{experiment}").exists()  # nothing trained
    assert _experiments_seen_by_admin(server) & {experiment} == set()


def _experiments_seen_by_admin(server) -> set[str]:
    request = urllib.request.Request(
        f"{server.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=100")
    token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return {e["name"] for e in json.load(response)["experiments"]}
