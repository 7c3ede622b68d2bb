"""Whole sweeps through the pipeline's own driver: overhead, accuracy and rank memory.

- overhead: wall time of a sweep minus its configurations' own training time (fit()),
  per configuration, with where the rest went (set-up, test, MLflow records, launch);
- accuracy: best test accuracy of a sweep (or of one configuration);
- scale: peak resident memory of a rank training one epoch, as the ranks report it.

Each sweep writes to a throw-away MLflow store and checkpoint folder.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

from bench.common import ROOT, median


def run(spark, sweep_file: str, data_dir: str, epochs: int | None = None,
        grid: dict | None = None, **sweep_fields) -> dict:
    """Run one sweep; returns timings and every configuration's summary."""
    from pipeline.config import load_sweep_config
    from pipeline.train.driver.sweep import SweepOptions, run_sweep

    sweep = load_sweep_config(ROOT / sweep_file)
    # Overhead per configuration and a rank's memory are defined on one launch with every
    # rank on each trial; scheduling.py compares that layout with the one a sweep chooses.
    sweep_fields.setdefault("ranks_per_trial", spark.sparkContext.defaultParallelism)
    sweep = replace(sweep, grid=grid if grid is not None else sweep.grid, **sweep_fields)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        shutil.copyfile(_empty_store(), f"{tmp}/mlflow.db")
        opts = SweepOptions(Path(data_dir), epochs=epochs, experiment="bench",
                            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                            checkpoint_dir=Path(tmp) / "ckpt")
        started = time.perf_counter()
        result = run_sweep(spark, sweep, opts, log=lambda m: None)
        wall = time.perf_counter() - started
        diagnostics = diagnostics_seconds(opts.tracking_uri, result.experiment_id)
    if result.failed:
        raise RuntimeError(f"{sweep_file}: configurations failed: {result.failed}")
    # A relaunch (a rank lost mid-sweep) leaves outcomes read back from MLflow, without the
    # per-phase timings: the overhead figure then says so instead of hiding it.
    return {"wall_seconds": wall, "outcomes": result.outcomes,
            "diagnostics_seconds": diagnostics,
            "relaunched": not all(o.timed for o in result.outcomes),
            "rank_peak_rss_mib": [max(o.peak_rss_mib or 0.0 for o in rank)
                                  for rank in result.rank_outcomes]}


@cache
def _empty_store() -> Path:
    """An empty MLflow SQLite store, built once per process and copied for each sweep: MLflow
    builds a new store by running its whole chain of schema migrations, seconds of CPU in the
    driver that a sweep into an existing store never pays."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    atexit.register(shutil.rmtree, folder, True)
    SqlAlchemyStore(f"sqlite:///{folder}/empty.db", str(folder / "mlruns")).engine.dispose()
    return folder / "empty.db"


def diagnostics_seconds(uri: str, experiment_id: str) -> float:
    """Seconds every run spent measuring its diagnostics (``diag.seconds``, per epoch)."""
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import store

    client = MlflowClient(uri)
    return sum(m.value for run in store.children(client, experiment_id)
               for m in client.get_metric_history(run.info.run_id, "diag.seconds"))


def overhead(swept: dict) -> dict:
    s = [x for x in swept["outcomes"] if x.timed]
    n = len(swept["outcomes"])
    train = sum(x.train_seconds for x in s)
    # Records run in rank 0's background thread: what they cost the sweep is the time
    # training waited for them (record_wait); record_seconds is how long they took.
    parts = {k: sum(getattr(x, k) or 0.0 for x in s)
             for k in ("setup_seconds", "teardown_seconds", "test_seconds", "record_wait_seconds")}
    return {"configurations": n, "relaunched": swept["relaunched"],
            "wall_seconds": swept["wall_seconds"], "train_seconds": train,
            "overhead_per_config": (swept["wall_seconds"] - train) / n,
            **{f"{k.removesuffix('_seconds')}_per_config": v / n for k, v in parts.items()},
            "record_background_per_config": sum(x.record_seconds or 0.0 for x in s) / n,
            "launch_and_driver_seconds": swept["wall_seconds"] - train - sum(parts.values()),
            "median_epoch_seconds": median([x.history["epoch_seconds"][-1] for x in s]),
            # Measured inside fit() on every rank, so part of train_seconds.
            "replicates": n // max(len({x.name.rsplit(" #", 1)[0] for x in swept["outcomes"]}), 1),
            "diagnostics_seconds": swept["diagnostics_seconds"],
            "diagnostics_share": swept["diagnostics_seconds"] / max(train, 1e-9)}



def accuracy(swept: dict) -> dict:
    ranked = sorted(swept["outcomes"], key=lambda x: -x.metric("test_accuracy"))
    return {"best": ranked[0].name, "best_test_accuracy": ranked[0].metric("test_accuracy"),
            "epochs": ranked[0].epochs_run,
            "all": {x.name: x.metric("test_accuracy") for x in ranked}}
