"""Running the jobs as spark-submit runs them: their main(argv), or spark-submit itself."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
# Every JVM a test starts (the session's, spark-submit's, a local cluster's daemons and its
# executors) lives seconds to minutes, too short for the optimising JIT compiler and the
# parallel collector to pay back their own CPU: without them such a JVM takes about half the
# CPU (BENCHMARKS.md). tests/conftest.py gives them to the drivers and daemons; executors take
# them from their application's spark.executor.extraJavaOptions.
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def submit_env(**extra: str) -> dict[str, str]:
    """Environment for a spark-submit child: loopback, this venv's Python, plus ``extra``."""
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable, **extra}


def load_job(name: str) -> ModuleType:
    """The job module ``jobs.<name>``, whose main(argv) spark-submit runs."""
    return importlib.import_module(f"jobs.{name}")


def rank_job(trials: list, *, tracking: dict[str, object] | None = None,
             data: dict[str, object] | None = None, runtime: dict[str, object] | None = None,
             **fields: object):
    """A RankJob for ``trials`` with throw-away tracking and data fields, for tests that launch
    ranks. ``tracking``, ``data`` and ``runtime`` override fields of the TrackingTarget, the
    DataRef and the Runtime; ``fields`` the job's own (``sweep``, ``board``)."""
    from pipeline.train.contract import DataRef, RankJob, Runtime, TrackingTarget

    target = {"uri": "sqlite:///unused.db", "experiment_id": "0", "parent_run_id": "parent"}
    ref = {"path": "d", "fingerprint": "f"}
    return RankJob(trials=trials, tracking=TrackingTarget(**{**target, **(tracking or {})}),
                   data=DataRef(**{**ref, **(data or {})}), runtime=Runtime(**(runtime or {})),
                   **{"sweep": "s", **fields})


def trial(name: str, cfg: object, ranks: int = 2):
    """A Trial with a small batch plan, for tests that do not go through the driver's plan."""
    from pipeline.train.contract import BatchPlan, Trial

    return Trial(name, cfg, name, BatchPlan(ranks, 32, 1, 1.0, False))
