"""The Spark driver killed mid-sweep (with everything it started), then the same command run
again: finished configurations are kept and skipped, the rest run, nothing is duplicated, and
the dead sweep's parent run (and any child it left running) is marked failed as orphaned."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest
from mlflow.tracking import MlflowClient

from pipeline.report import frame
from pipeline.tracking import store as tracking
from tests.helpers import ROOT, SPARK_SUBMIT, load_job, submit_env, write_data_config, write_npz
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

LEASE = 6  # seconds without a heartbeat before a running sweep counts as dead
SWEEP = f"""
name: restart
dataset: tiny
tracking: {{lease_seconds: {LEASE}, claim_settle_seconds: 0.5}}
base:
  model: {{hidden_layers: [8]}}
  training: {{epochs: 3, batch_size: 4, seed: 6}}
grid:
  model.hidden_activation: [relu, tanh, elu]
"""


def _ours(proc: psutil.Process, uri: str) -> bool:
    """A Horovod rank of this test's sweep (ranks get the tracking URI), not another one's."""
    try:
        return "gloo_exec_fn" in " ".join(proc.info["cmdline"] or []) and \
            proc.environ().get("MLFLOW_TRACKING_URI") == uri
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _kill_tree(root: psutil.Process, uri: str) -> None:
    """SIGKILL the driver and every process under it, and any rank it left behind."""
    victims = [root, *root.children(recursive=True)]
    victims += [p for p in psutil.process_iter(["cmdline"]) if _ours(p, uri)]
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(victims, timeout=30)


def _finished(client: MlflowClient, status: str = "finished") -> list:
    exp = client.get_experiment_by_name("restart")
    if exp is None:
        return []
    return [r for r in tracking.children(client, exp.experiment_id)
            if r.data.tags.get("status") == status]


@pytest.mark.slow(reason=("a spark-submit sweep killed mid-run and the same sweep run again: two "
                          "drivers and their Horovod launches are the scenario"))
def test_rerun_after_driver_kill_runs_only_what_is_unfinished(tmp_path, spark):
    cfg = write_data_config(tmp_path, write_npz(tmp_path / "d.npz", n_train=800, n_test=80))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    uri = sqlite_store(tmp_path / "mlflow.db")
    args = [str(SPARK_SUBMIT), "jobs/train_sweep.py",
            "--config", str(sweep), "--data", str(tmp_path / "processed" / "tiny"),
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    env = submit_env(MLFLOW_TRACKING_URI=uri)
    driver = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 400
    # Kill once one configuration is finished and the next one is under way.
    while not (_finished(client) and _finished(client, "running")) and driver.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert driver.poll() is None, "the sweep ended before it could be interrupted"
    _kill_tree(psutil.Process(driver.pid), uri)
    done_before = {r.data.tags["config_hash"] for r in _finished(client)}
    assert 1 <= len(done_before) < 3
    exp_id = client.get_experiment_by_name("restart").experiment_id
    [old_parent] = client.search_runs([exp_id], "tags.role = 'sweep'")
    left_running = [r.info.run_id for r in tracking.children(client, exp_id)
                    if r.info.status == "RUNNING"]
    assert old_parent.info.status == "RUNNING" and left_running
    time.sleep(LEASE)  # the dead sweep's heartbeats are now older than its lease

    rerun = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert f"{len(done_before)} already done" in rerun.stdout + rerun.stderr
    assert f"marked run {old_parent.info.run_id} failed" in rerun.stdout + rerun.stderr
    old = client.get_run(old_parent.info.run_id)
    assert old.info.status == "FAILED" and old.data.tags["status"] == "failed"
    assert "no heartbeat" in old.data.tags["orphaned"]
    for run_id in left_running:  # resumed and finished by the rerun, or failed as orphaned
        child = client.get_run(run_id)
        assert child.info.status == "FINISHED" or "orphaned" in child.data.tags, child
    finished = _finished(client)
    hashes = [r.data.tags["config_hash"] for r in finished]
    assert len(hashes) == len(set(hashes)) == 3  # every configuration once, none duplicated
    for run in finished:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
        assert steps == [0, 1, 2]
    # The rerun's report shows every configuration, the first attempt's finished ones too.
    shown = frame.load(client, "restart").runs
    assert len(shown) == 3 and set(shown["status"]) == {"finished"}
    assert done_before <= {r.data.tags["config_hash"] for r in finished
                           if r.info.run_id in set(shown["run_id"])}
