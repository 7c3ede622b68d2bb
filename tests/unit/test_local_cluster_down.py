"""scripts/local_cluster.py down against real processes: it stops what up started, and never a
process that merely holds a recorded id (ids are reused after a crash; tests run as root)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from scripts import local_cluster


@pytest.fixture
def stranger():
    """A process local_cluster did not start, leading its own process group."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait(30)


def _state(folder, pids: dict[str, int], starts: dict[str, int] | None) -> None:
    folder.mkdir(exist_ok=True)
    record = {"state_dir": str(folder), "pids": pids}
    if starts is not None:
        record["starts"] = starts
    (folder / "cluster.json").write_text(json.dumps(record))


def _running(proc: subprocess.Popen) -> bool:
    time.sleep(0.3)
    return proc.poll() is None


def test_down_spares_a_process_that_reused_a_recorded_id(tmp_path, stranger):
    started = local_cluster.start_ticks(stranger.pid)
    # The recorded process died in a crash; its id now belongs to the stranger.
    _state(tmp_path / "state", {"mlflow": stranger.pid}, {"mlflow": started - 100})
    said: list[str] = []
    local_cluster.down(tmp_path / "state", say=said.append)
    assert _running(stranger)
    assert any("another process" in line and str(stranger.pid) in line for line in said)
    assert not (tmp_path / "state").exists()


def test_down_spares_processes_recorded_without_a_start_time(tmp_path, stranger, capsys):
    _state(tmp_path / "state", {"spark-master": stranger.pid}, None)  # as recorded before
    local_cluster.down(tmp_path / "state")
    assert _running(stranger)
    assert "stop it yourself" in capsys.readouterr().out


def test_down_stops_what_up_started(tmp_path, stranger):
    state = tmp_path / "state"
    state.mkdir()
    cluster = local_cluster.Cluster(str(state))
    local_cluster._spawn(cluster, "worker", ["sleep", "300"])
    pid = cluster.pids["worker"]
    assert cluster.starts["worker"] == local_cluster.start_ticks(pid)
    local_cluster.down(state, say=lambda line: None)
    assert not local_cluster._alive(pid)
    assert _running(stranger)
