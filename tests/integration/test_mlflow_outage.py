"""The MLflow tracking server killed mid-sweep: training goes on, what MLflow could not take
is spooled, and once the server is back a replay delivers it, every epoch exactly once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking
from pipeline.tracking import vocab
from tests.helpers import MlflowServer, free_port, load_job, write_data_config, write_npz

pytestmark = pytest.mark.integration

EPOCHS = 5
SWEEP = f"""
name: outage
dataset: tiny
tracking: {{retries: 2, backoff_seconds: 0.2}}
base:
  model: {{hidden_layers: [8]}}
  training: {{epochs: {EPOCHS}, batch_size: 4, seed: 3}}
"""


def _kill_after_first_epoch(server: MlflowServer, killed: dict) -> None:
    """SIGKILL the server (its whole process group) once epoch 0's loss is in MLflow."""
    client = MlflowClient(server.url)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            exp = client.get_experiment_by_name("outage")
            runs = tracking.children(client, exp.experiment_id) if exp else []
            if runs and client.get_metric_history(runs[0].info.run_id, "loss"):
                server.kill()
                killed["run_id"] = runs[0].info.run_id
                return
        except Exception:  # the store is still being created
            pass
        time.sleep(0.2)


def _spooled(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow(reason=("a real server killed mid-sweep, the sweep finishing into the spool, a "
                          "server restarted and the spool replayed"))
def test_server_killed_mid_sweep_spools_then_replay_delivers_each_epoch_once(
        tmp_path, spark, monkeypatch, capsys):
    cfg = write_data_config(tmp_path, write_npz(tmp_path / "d.npz", n_train=800, n_test=80))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    server = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, free_port()).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    args = ["--config", str(tmp_path / "sweep.yaml"), "--data",
            str(tmp_path / "processed" / "tiny"), "--num-proc", "1",
            "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--spool-dir", str(tmp_path / "spool")]
    killed: dict = {}
    killer = threading.Thread(target=_kill_after_first_epoch, args=(server, killed))
    killer.start()
    started = time.monotonic()
    try:
        code = load_job("train_sweep").main(args)
    finally:
        killer.join()
        server.kill()
    assert killed, "the server was never killed"
    assert time.monotonic() - started < 300  # no hang on the dead server
    assert code == 3  # trained, but records wait in the spool
    run_id = killed["run_id"]
    spool = tmp_path / "spool" / "outage" / f"{run_id}.jsonl"
    assert f"spooled in {spool}" in capsys.readouterr().err
    records = _spooled(spool)
    spooled_steps = {m[3] for r in records if r["op"] == "batch"
                     for m in r["metrics"] if m[0] == "loss"}
    # What the dead server's store holds: the epochs MLflow took before the outage.
    held = {m.step for m in MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
            .get_metric_history(run_id, "loss")}
    assert 0 in held and EPOCHS - 1 in spooled_steps
    assert held | spooled_steps == set(range(EPOCHS))  # nothing lost
    # Only the epoch in flight when the server died may be in both: MLflow stored it but its
    # answer never came back, so the rank spooled it too (the replay below keeps it once).
    assert held & spooled_steps <= {max(held)}
    assert {"model", "terminated"} <= {r["op"] for r in records}

    server.start()  # same backend, same port
    assert load_job("train_sweep").main([*args, "--replay-spool"]) == 0
    client = MlflowClient(server.url)
    try:
        run = client.get_run(run_id)
        steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
        parent = client.get_run(run.data.tags[vocab.TAG_PARENT])
        models = client.search_logged_models([run.info.experiment_id])
        artifacts = {a.path for a in client.list_artifacts(run_id)}
    finally:
        server.kill()
    assert steps == list(range(EPOCHS))  # every epoch exactly once
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED"
    assert "test_accuracy" in run.data.metrics
    assert {"confusion_matrix.png", "curves.png", "resolved_config.json"} <= artifacts
    assert [(m.name, m.source_run_id) for m in models] == [("model", run_id)]
    assert parent.data.tags["status"] == "finished" and parent.info.status == "FINISHED"
    assert not list((tmp_path / "spool" / "outage").glob("*.jsonl"))  # delivered: removed
