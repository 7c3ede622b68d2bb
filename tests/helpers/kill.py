"""Killing a Horovod rank in the middle of a trial, found by the ``trainer`` tag of its run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking
from pipeline.tracking.vocab import RUNNING, TAG_STATUS, TAG_TRAINER


def rank_processes(uri: str) -> list[psutil.Process]:
    """The live Horovod rank processes (Python, not a wrapping shell) writing to ``uri``; a
    process a rank forked (same command line until it execs) is not another rank."""
    found = []
    for proc in psutil.process_iter(["cmdline", "name", "ppid"]):
        try:
            if "gloo_exec_fn" in " ".join(proc.info["cmdline"] or []) \
                    and "python" in (proc.info["name"] or "") \
                    and proc.environ().get("MLFLOW_TRACKING_URI") == uri:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    pids = {proc.pid for proc in found}
    return [proc for proc in found if proc.info["ppid"] not in pids]


def checkpointed(client: MlflowClient, experiment: str, checkpoints: Path,
                 saved: bool = True) -> list[Run]:
    """Running trials that have logged something and whose checkpoint has reached the disk
    (on a loaded machine the checkpoint can trail the metrics); ``saved`` False: those whose
    first checkpoint has not (their diagnostics at initialisation are in MLflow)."""
    on_disk = set()
    try:
        for f in checkpoints.rglob("latest.json"):
            on_disk.add(json.loads(f.read_text()).get("run_id"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []  # a checkpoint being written or cleared as we looked: look again
    if saved and not on_disk:
        return []  # nothing to resume from yet: MLflow need not be asked (polled every 0.1 s)
    exp = client.get_experiment_by_name(experiment)
    running = [run for run in (tracking.children(client, exp.experiment_id) if exp else [])
               if run.data.tags.get(TAG_STATUS) == RUNNING]
    if not saved:
        return [run for run in running if run.info.run_id not in on_disk and run.data.metrics]
    return [run for run in running if run.info.run_id in on_disk
            and client.get_metric_history(run.info.run_id, "loss")]


def kill_checkpointed_rank(uri: str, experiment: str, checkpoints: Path, killed: dict,
                           wanted: Callable[[Run], bool] = lambda run: True,
                           timeout: float = 600, stop: threading.Event | None = None,
                           saved: bool = True) -> None:
    """SIGKILL the rank training a ``wanted`` trial that has a checkpoint to resume from
    (``saved`` False: that has logged something but has no checkpoint yet); ``killed`` gets
    its pid and run id. Gives up after ``timeout`` seconds, or once ``stop`` is set (the
    sweep ended: nothing is left to kill). ``killed`` also gets the epoch of the run's
    checkpoint once the rank is dead (0: none)."""
    client = MlflowClient(uri)
    deadline = time.monotonic() + timeout
    stop = stop or threading.Event()
    while time.monotonic() < deadline and not killed and not stop.is_set():
        for run in checkpointed(client, experiment, checkpoints, saved):
            pid = int(run.data.tags[TAG_TRAINER].rsplit(":", 1)[1])
            if wanted(run) and pid in {proc.pid for proc in rank_processes(uri)}:
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid)
                killed.update(pid=pid, run_id=run.info.run_id,
                              epoch=_checkpointed_epoch(checkpoints, run.info.run_id))
                return
        time.sleep(0.1)


def _wait_gone(pid: int) -> None:
    try:
        psutil.Process(pid).wait(timeout=30)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
        return


def _checkpointed_epoch(checkpoints: Path, run_id: str) -> int:
    """The epoch the killed run's checkpoint reached, as the relaunch finds it (0: none): a
    checkpoint can land between the look and the kill."""
    for f in checkpoints.rglob("latest.json"):
        state = json.loads(f.read_text())
        if state.get("run_id") == run_id:
            return int(state["epoch"])
    return 0
