"""New MLflow SQLite stores for tests, copied from an empty one.

MLflow builds a new SQLite store by running its whole chain of schema migrations, seconds of
CPU each time; opening a store that already has the schema costs a few milliseconds. The suite
creates a store in most of its tracking tests, so the empty store is built once per MLflow
version on this machine (by MLflow itself, the same way it builds any new store) and copied.

A copy differs from a store MLflow would create at that path in one field only: the Default
experiment's artifact location, which MLflow takes from the working folder at creation. A copy
gets ``<store's folder>/mlruns/0``, so that nothing a test logs there lands in another test's
folder.

Tests that assert no store was written, and MLflow servers, still let MLflow create theirs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from functools import cache
from pathlib import Path

from pipeline.tracking.store import DEFAULT_EXPERIMENT_ID
from tests.helpers.pack import CACHE


def sqlite_store(path: Path) -> str:
    """The tracking URI of the SQLite store at ``path``, which is first made an empty store
    (a copy) when there is no file there. Call it before starting anything that might open
    the store itself."""
    if path.exists():
        return f"sqlite:///{path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.copyfile(_empty_store(), staged)
    with sqlite3.connect(staged) as db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                   (str(path.parent / "mlruns" / DEFAULT_EXPERIMENT_ID), DEFAULT_EXPERIMENT_ID))
    db.close()
    staged.replace(path)  # a job that polls for the file never sees it half-copied
    return f"sqlite:///{path}"


@cache
def _empty_store() -> Path:
    """The empty store of this MLflow version: built by the first caller on the machine under
    a lock (another xdist worker waits), then reused."""
    import mlflow

    folder = CACHE / "mlflow-stores"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"empty-{mlflow.__version__}.db"
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_file():
            _build(out)
    return out


def _build(out: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    staged = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    staged.unlink(missing_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{staged}", str(out.parent / "mlruns"))
    store.engine.dispose()
    staged.replace(out)
