"""A sweep's runs read back from MLflow as one table: a row per replicate run.

The factors are the configuration keys whose values differ between the sweep's cells (the
seed excepted: it is what makes replicates), named by their last part (``hidden_activation``,
``learning_rate``) unless two would clash. Nothing here knows the configuration schema, so
any axis a sweep varies reaches the leaderboard and the statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from pipeline.errors import PipelineError
from pipeline.tasks import task_spec
from pipeline.tracking import store
from pipeline.tracking.vocab import (
    PARAM_GRID_AXES,
    TAG_CELL,
    TAG_CONFIGURATION,
    TAG_HASH,
    TAG_RACE,
    TAG_REPLICATE,
    TAG_RUNG_EPOCH,
    TAG_STATUS,
    TAG_TASK,
    final_metrics,
)

SEED_PARAM = "training.seed"
# Besides the task's final metrics, the epoch metrics' last values come along as final_<key>.
LAST_EPOCH = ("val_loss", "samples_per_sec")


@dataclass
class SweepRuns:
    """The runs of one sweep invocation (or of the whole experiment with ``--all``)."""

    experiment: str
    experiment_id: str
    parent_id: str  # "" with --all
    runs: pd.DataFrame
    factors: list[str]  # columns of ``runs`` that vary between cells
    params: dict[str, str]  # factor column -> configuration key
    grid_axes: list[str]  # what the sweep file named as its axes (the parent's param)
    task: str = "multiclass"  # the dataset's (pipeline.tasks): its metrics and directions


def load(client: MlflowClient, experiment: str, all_runs: bool = False) -> SweepRuns:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise PipelineError(f"--experiment: no MLflow experiment named {experiment!r}")
    parent = None if all_runs else store.latest_parent(client, exp.experiment_id)
    if not all_runs and parent is None:
        raise PipelineError(f"experiment {experiment!r} has no sweep runs")
    parent_id = parent.info.run_id if parent else ""
    runs = store.children(client, exp.experiment_id, parent_id or None)
    if parent is not None:  # a rerun: what an earlier attempt finished, and it skipped
        runs += store.done_before(client, exp.experiment_id, parent, runs)
    if not runs and parent_id:
        # A sweep recorded before its plan was (no planned.json) that skipped everything has
        # no children of its own: show the experiment's history.
        runs = store.children(client, exp.experiment_id)
    if not runs:
        raise PipelineError(f"experiment {experiment!r} has no configuration runs to compare")
    task = (parent or runs[0]).data.tags.get(TAG_TASK, "multiclass")
    frame = pd.DataFrame([_row(run, task) for run in runs])
    params = varying_params(frame)
    frame = frame.rename(columns={f"params.{k}": v for v, k in params.items()})
    axes = parent.data.params.get(PARAM_GRID_AXES, "") if parent else ""
    return SweepRuns(experiment, exp.experiment_id, parent_id, frame, list(params), params,
                     [a for a in axes.split(",") if a], task)


def _row(run: Run, task: str) -> dict:
    tags, metrics = run.data.tags, run.data.metrics
    row = {"run_id": run.info.run_id,
           # runs recorded before the tag: their name less the replicate's " #2"
           "configuration": (tags.get(TAG_CONFIGURATION)
                             or re.sub(r" #\d+$", "", run.info.run_name or "")),
           "cell": tags.get(TAG_CELL) or tags.get(TAG_HASH, run.info.run_id),
           "replicate": int(tags.get(TAG_REPLICATE, "0") or 0),
           "status": tags.get(TAG_STATUS, "unknown"),
           "rung_epoch": float(tags.get(TAG_RUNG_EPOCH, "nan") or "nan"),
           "race": tags.get(TAG_RACE, "")}  # racing's stop reason; empty without racing
    row.update({k: metrics.get(k, float("nan")) for k in final_metrics(task)})
    last = (*LAST_EPOCH, f"val_{task_spec(task).epoch_metric}")
    row.update({f"final_{k}": metrics.get(k, float("nan")) for k in last})
    row.update({f"params.{k}": v for k, v in run.data.params.items()})
    return row


def varying_params(frame: pd.DataFrame) -> dict[str, str]:
    """Short column name -> configuration key, for every key whose value differs by cell."""
    keys = [c.removeprefix("params.") for c in frame.columns if c.startswith("params.")]
    per_cell = frame.groupby("cell").first()
    varying = [k for k in keys if k != SEED_PARAM and per_cell[f"params.{k}"].nunique() > 1]
    leaves = [k.rsplit(".", 1)[-1] for k in varying]
    return {(leaf if leaves.count(leaf) == 1 else key): key
            for key, leaf in zip(varying, leaves, strict=True)}


def histories(client: MlflowClient, run_ids: list[str],
              keys: list[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """run id -> metric -> (step, value) pairs, sorted by step."""
    return {rid: {key: sorted((m.step, m.value) for m in client.get_metric_history(rid, key))
                  for key in keys}
            for rid in run_ids}
