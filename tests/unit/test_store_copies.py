"""The tests' MLflow stores (tests/helpers/stores.py) are copies of an empty store: each must
be the store MLflow itself would create at that path, and independent of every other copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.helpers.stores import sqlite_store


def _schema(path: Path) -> tuple[list, list]:
    """Every table, index and constraint, and the migration the store is at. Two stores MLflow
    builds can list a table's constraints in different orders, so each statement's lines are
    compared as a set."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    db.close()
    lines = [(kind, name, sorted(ln.strip().rstrip(",") for ln in (sql or "").splitlines()))
             for kind, name, sql in rows]
    return lines, version


def test_a_copy_has_the_schema_mlflow_creates(tmp_path):
    made = tmp_path / "made" / "mlflow.db"
    made.parent.mkdir()
    MlflowClient(f"sqlite:///{made}").search_experiments()  # MLflow builds it, migrations and all
    copied = tmp_path / "copied" / "mlflow.db"
    assert sqlite_store(copied) == f"sqlite:///{copied}"
    assert _schema(copied) == _schema(made)


def test_a_copy_is_a_working_store_of_its_own(tmp_path):
    first = MlflowClient(sqlite_store(tmp_path / "a" / "mlflow.db"))
    exp = first.create_experiment("e")
    run = first.create_run(exp).info.run_id
    first.log_metric(run, "loss", 0.5)
    [default] = [e for e in first.search_experiments() if e.name == "Default"]
    assert default.artifact_location == str(tmp_path / "a" / "mlruns" / "0")

    second = MlflowClient(sqlite_store(tmp_path / "b" / "mlflow.db"))
    assert [e.name for e in second.search_experiments()] == ["Default"]  # nothing of the first's

    again = MlflowClient(sqlite_store(tmp_path / "a" / "mlflow.db"))  # a store already there
    assert again.get_metric_history(run, "loss")[0].value == 0.5
