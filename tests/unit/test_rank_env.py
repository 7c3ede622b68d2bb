"""The environment the sweep gives its Horovod ranks: the cycle time by architecture."""

from __future__ import annotations

from pipeline.config import ModelConfig, RunConfig
from pipeline.train.contract import RankJob
from pipeline.train.driver.launch import ONE_RANK_CYCLE_TIME_MS, horovod_cycle_time_ms, rank_env
from tests.helpers import rank_job, trial


def _job(*architectures: str) -> RankJob:
    return rank_job([trial(a, RunConfig(model=ModelConfig(architecture=a)))
                     for a in architectures])


def test_dense_sweeps_run_the_short_cycle_and_any_cnn_the_long_one(monkeypatch):
    monkeypatch.delenv("HOROVOD_CYCLE_TIME", raising=False)  # tests/conftest.py sets one
    assert float(horovod_cycle_time_ms(["mlp", "logreg"])) == 0.1
    assert float(horovod_cycle_time_ms(["mlp", "cnn"])) == 1.0
    assert float(horovod_cycle_time_ms([])) == 0.1
    assert float(rank_env(_job("mlp", "mlp"))["HOROVOD_CYCLE_TIME"]) == 0.1
    assert float(rank_env(_job("cnn"))["HOROVOD_CYCLE_TIME"]) == 1.0


def test_one_rank_launches_wake_rarely_whatever_the_architecture(monkeypatch):
    monkeypatch.delenv("HOROVOD_CYCLE_TIME", raising=False)
    one = rank_job([trial(a, RunConfig(model=ModelConfig(architecture=a)), ranks=1)
                    for a in ("mlp", "cnn")])
    assert float(rank_env(one)["HOROVOD_CYCLE_TIME"]) == ONE_RANK_CYCLE_TIME_MS
    assert float(horovod_cycle_time_ms(["mlp"], ranks=1)) > float(horovod_cycle_time_ms(["mlp"]))


def test_the_users_horovod_settings_win(monkeypatch):
    monkeypatch.setenv("HOROVOD_CYCLE_TIME", "5")
    monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", "0")
    env = rank_env(_job("cnn"))
    assert env["HOROVOD_CYCLE_TIME"] == "5" and env["HOROVOD_FUSION_THRESHOLD"] == "0"


def test_a_stalled_collective_shuts_the_launch_down(monkeypatch):
    monkeypatch.delenv("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", raising=False)
    monkeypatch.delenv("HOROVOD_STALL_CHECK_DISABLE", raising=False)
    env = rank_env(_job("mlp"))
    # Horovod checks for stalls every 60 s by default; the shutdown must come after a check.
    assert int(env["HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"]) >= 60
    assert "HOROVOD_STALL_CHECK_DISABLE" not in env
    monkeypatch.setenv("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", "1800")  # the user's value wins
    assert rank_env(_job("mlp"))["HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"] == "1800"


def test_the_driver_import_path_reaches_ranks_only_on_the_drivers_interpreter(monkeypatch):
    import sys

    monkeypatch.setenv("PYTHONPATH", "/checkout")
    assert rank_env(_job("mlp"), sys.executable)["PYTHONPATH"] == "/checkout"
    # A shipped environment, unpacked in the executor's working folder: its own packages.
    assert "PYTHONPATH" not in rank_env(_job("mlp"), "./environment/bin/python")


def test_cuda_numbers_gpus_as_nvidia_smi_and_spark_do(monkeypatch):
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    assert rank_env(_job("mlp"))["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # the user's choice wins
    assert rank_env(_job("mlp"))["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
