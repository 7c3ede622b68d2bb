"""Running the jobs as spark-submit runs them: their main(argv), or spark-submit itself."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def submit_env(**extra: str) -> dict[str, str]:
    """Environment for a spark-submit child: loopback, this venv's Python, plus ``extra``."""
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable, **extra}


def load_job(name: str) -> ModuleType:
    """The job module ``jobs.<name>``, whose main(argv) spark-submit runs."""
    return importlib.import_module(f"jobs.{name}")


def rank_job(trials: list, **fields: object):
    """A RankJob for ``trials`` with throw-away tracking fields, for tests that launch ranks."""
    from pipeline.train.contract import RankJob

    defaults = {"data_dir": "d", "sweep": "s", "tracking_uri": "sqlite:///unused.db",
                "experiment_id": "0", "parent_run_id": "parent", "fingerprint": "f"}
    return RankJob(trials=trials, **{**defaults, **fields})


def trial(name: str, cfg: object, ranks: int = 2):
    """A Trial with a small batch plan, for tests that do not go through the driver's plan."""
    from pipeline.train.contract import BatchPlan, Trial

    return Trial(name, cfg, name, BatchPlan(ranks, 32, 1, 1.0, False))
