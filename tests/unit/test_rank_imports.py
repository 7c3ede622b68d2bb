"""A rank other than 0 never talks to MLflow, so it never pays for importing it: what Horovod's
task entry, the rank's entry module and that rank's role import, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT
from tests.helpers.stores import sqlite_store

PROBE = """
import sys
import horovod.spark.task.gloo_exec_fn
from pipeline.train.rank import entry
from pipeline.train.rank.role import role_for
from tests.helpers.jobs import rank_job

role = role_for(1, rank_job([]))
role.recorder("some-run").log_epoch(0, {"loss": 1.0})
role.claims.start(None)
print(sorted(m for m in ("mlflow", "scipy.stats", "pandas", "pyarrow.dataset") if m in sys.modules))
# What every rank imports to train (TensorFlow's Keras brings pandas along, so only MLflow
# and scipy.stats are looked for here).
from pipeline.train.rank import epoch_checkpoint, kept_models, results, trainer
print(sorted(m for m in ("mlflow", "scipy.stats") if m in sys.modules))
root = role_for(0, rank_job([], tracking=dict(uri=f"sqlite:///{sys.argv[1]}")))
root.recorder("some-run")
print("mlflow" in sys.modules)
"""


def test_a_rank_other_than_0_imports_neither_mlflow_nor_scipy_stats_nor_pandas(tmp_path):
    sqlite_store(tmp_path / "mlflow.db")  # rank 0's recorder opens it
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "mlflow.db")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    other, training, root = proc.stdout.splitlines()[-3:]
    assert other == "[]"
    assert training == "[]"  # the training modules too, checkpoints included
    assert root == "True"  # rank 0's recorder is the real one
