"""Distributed training behaviour on 2 real Horovod ranks: agreement, early stopping, and a
rank killed with SIGKILL mid-epoch resuming from its checkpoint."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.tracking import store as tracking
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import load_job, rank_job, trial, write_data_config, write_npz
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("training")
    cfg = write_data_config(root, write_npz(root / "d.npz", n_train=1600, n_test=160))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / "tiny"


def _sweep(tmp_path: Path, body: str, spark, data: Path, uri: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    # Data parallel on purpose: the tests compare what the two ranks of one trial saw.
    opts = SweepOptions(data, num_proc=2, ranks_per_trial=2, tracking_uri=uri,
                        checkpoint_dir=tmp_path / "ckpt")
    return run_sweep(spark, load_sweep_config(path), opts, log=lambda m: None)


def _loss_steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "loss"))


def test_ranks_agree_and_metrics_are_logged_once(tmp_path, spark, data):
    """The streaming feed (the default); the early-stopping test below uses the memory feed."""
    uri = sqlite_store(tmp_path / "mlflow.db")
    result = _sweep(tmp_path, """
name: agree
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 3, batch_size: 64, seed: 2}
""", spark, data, uri)
    assert not result.failed
    rank0, rank1 = result.rank_outcomes
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):  # averaged by an allreduce
        assert rank0[0].history[key] == rank1[0].history[key], key
    accuracy = rank0[0].metric("test_accuracy")
    assert accuracy == rank1[0].metric("test_accuracy") > 0.5  # it learned (4 classes)
    client = MlflowClient(uri)
    [run] = tracking.children(client, result.experiment_id)
    assert _loss_steps(client, run.info.run_id) == [0, 1, 2]  # once per epoch, rank 0 only
    # <ckpt>/<experiment_id>/<config_hash>/: no checkpoint file left once the run is recorded
    left = [p for p in (tmp_path / "ckpt").rglob("*") if p.is_file()]
    assert left == [], "checkpoint not cleared after recording"


def test_early_stopping_is_agreed_by_all_ranks(tmp_path, spark, data):
    """With a zero learning rate nothing improves: patience 1 stops after epoch 2 of 10."""
    uri = sqlite_store(tmp_path / "mlflow.db")
    started = time.monotonic()
    result = _sweep(tmp_path, """
name: early
dataset: tiny
feed: memory
base:
  model: {hidden_layers: [8]}
  optimizer: {name: sgd, learning_rate: 0.0}
  training: {epochs: 10, batch_size: 64, early_stopping: {patience: 1, monitor: val_loss}}
""", spark, data, uri)
    assert time.monotonic() - started < 240  # no rank left waiting in a collective
    rank0, rank1 = result.rank_outcomes
    assert rank0[0].epochs_run == rank1[0].epochs_run == 2
    assert result.outcomes[0].status == "finished"


def _kill_rank_when(uri: str, experiment: str, epochs_logged: int, killed: dict) -> None:
    """SIGKILL Horovod rank 0 once the first configuration has logged some epochs."""
    client = MlflowClient(uri)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not killed:
        exp = client.get_experiment_by_name(experiment)
        runs = tracking.children(client, exp.experiment_id) if exp else []
        if runs and len(_loss_steps(client, runs[0].info.run_id)) >= epochs_logged:
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    env = proc.environ()  # this test's rank 0, not another sweep's on the host
                    if "gloo_exec_fn" in cmd and env.get("HOROVOD_RANK") == "0" and \
                            env.get("MLFLOW_TRACKING_URI") == uri:
                        os.kill(proc.pid, signal.SIGKILL)
                        killed["pid"], killed["run_id"] = proc.pid, runs[0].info.run_id
                        return
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
        time.sleep(0.5)  # four epochs of 160 steps are left: seconds, not tenths


@pytest.mark.slow(reason=("trains until a checkpoint, kills a rank and waits for the relaunched "
                          "launch to finish from it: two launches"))
def test_rank_killed_mid_run_resumes_from_checkpoint(tmp_path, spark, data):
    uri = sqlite_store(tmp_path / "mlflow.db")
    killed: dict = {}
    killer = threading.Thread(target=_kill_rank_when, args=(uri, "crash", 2, killed))
    killer.start()
    result = _sweep(tmp_path, """
name: crash
dataset: tiny
max_attempts: 3
base:
  model: {hidden_layers: [8]}
  training: {epochs: 6, batch_size: 4, seed: 4}
grid:
  model.hidden_activation: [relu, tanh]
""", spark, data, uri)
    killer.join()
    assert killed, "the rank was never killed: training finished too fast"
    assert not result.failed
    client = MlflowClient(uri)
    runs = tracking.children(client, result.experiment_id)
    assert sorted(r.data.params["model.hidden_activation"] for r in runs) == ["relu", "tanh"]
    assert all(r.data.tags["status"] == "finished" for r in runs)
    resumed = client.get_run(killed["run_id"])
    assert int(resumed.data.tags["resumed_from_epoch"]) >= 2
    assert resumed.info.status == "FINISHED"
    assert _loss_steps(client, killed["run_id"]) == list(range(6))  # each epoch exactly once


def test_ranks_refuse_a_dataset_changed_after_planning(data, spark):
    """The sweep planned on one fingerprint; the ranks find another: they stop, loudly."""
    import horovod.spark

    from pipeline.config import RunConfig
    from pipeline.train.rank.entry import run_rank

    job = rank_job([trial("t", RunConfig())],
                   data=dict(path=str(data), fingerprint="not-the-current-one"))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Exception, match="exited with non-zero status"):
        horovod.spark.run(run_rank, args=(job,), num_proc=2, use_gloo=True, verbose=0,
                          stdout=out, stderr=err)
    assert "dataset changed after the sweep began" in out.getvalue() + err.getvalue()
