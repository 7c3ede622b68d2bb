"""Fixtures: a local Spark session, a fresh MLflow store, small disks. Helpers: tests/helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.helpers.jobs import SHORT_LIVED_JVM

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests' `mlflow server`s without MLflow 3's job consumers (a pool of five processes per
# server, for GenAI jobs the pipeline never submits): they only take CPU from the tests.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
# Two cores and no Spark UI, for every session a test starts (spark-submit children too).
# Assigned, not defaulted: `make test` exports the Makefile's own choice (conf/spark/local.conf).
os.environ["PIPELINE_SPARK_CONF"] = str(Path(__file__).parent / "helpers" / "spark-test.conf")

# The drivers' and the local clusters' daemons' JVMs, short-lived (tests/helpers/jobs.py).
for _var in ("SPARK_SUBMIT_OPTS", "SPARK_DAEMON_JAVA_OPTS"):
    os.environ.setdefault(_var, SHORT_LIVED_JVM)

# The tests' ranks train sets of a few hundred rows: their Horovod background loops mostly wait
# (on the board, the claim, the records), and at the dense models' 0.1 ms cycle each loop's
# wake-ups take CPU the other workers' tests need. Every launch here gets the one-rank
# launches' long cycle (BENCHMARKS.md, "Horovod's cycle time"); the sweep's own rule is covered
# by tests/unit/test_rank_env.py, which clears this.
os.environ.setdefault("HOROVOD_CYCLE_TIME", "5")

# Parallel workers, long modules first, the per-test time limit.
pytest_plugins = ["tests.helpers.suite"]


@pytest.fixture(scope="session")
def spark():
    from pipeline.spark import build_session

    session = build_session(overrides={"spark.master": "local[2]", "spark.ui.enabled": "false"})
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _own_working_folder(tmp_path_factory, monkeypatch):
    """Each test runs in a folder of its own, so what the jobs write relative to the working
    folder by default (spool/, checkpoints/, reports/, mlflow.db) never meets another test's,
    on this worker or another. Tests name the checkout's files through ``tests.helpers.ROOT``."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _no_process_wide_mlflow_uri(monkeypatch):
    """Each test starts without a URI set by ``mlflow.set_tracking_uri`` in an earlier one (a
    leftover would outrank $MLFLOW_TRACKING_URI and send ``runs:/`` lookups to another store)."""
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", None)


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store per test, removed with tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """``mlflow_uri`` with the store already there (tests/helpers/stores.py), for tests that
    record something; ``mlflow_uri`` is for the tests that check nothing was written."""
    from tests.helpers.stores import sqlite_store

    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size_kb)`` -> the mount point of a fresh tmpfs, unmounted after the test."""
    from tests.helpers.disk import mount_tmpfs, unmount

    mounted = []

    def make(size_kb: int) -> Path:
        mounted.append(mount_tmpfs(tmp_path / f"disk{len(mounted)}", size_kb))
        return mounted[-1]

    yield make
    for folder in mounted:
        unmount(folder)
