"""What each Horovod rank runs: every pending configuration of a sweep, one after another.

One Horovod launch trains the whole list, so the sweep pays TensorFlow's import, the
task services and Gloo's rendezvous once, not per configuration. Each rank reads its
own shards once and reuses them for every configuration.

Distributed points are marked ``# [hvd]``. Only rank 0 talks to MLflow.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import RunConfig, to_dict
from pipeline.data import feed
from pipeline.data.manifest import Manifest, load_manifest
from pipeline.tracking import (
    DIVERGED,
    FAILED,
    FINISHED,
    RUNNING,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
    TAG_SWEEP,
    TAG_WARNINGS,
)

if TYPE_CHECKING:  # the model module imports TensorFlow; ranks import it lazily
    from pipeline.model.build import BuiltModel


@dataclass(frozen=True)
class TrialSpec:
    name: str
    config: RunConfig
    config_hash: str


@dataclass(frozen=True)
class WorkerJob:
    """Everything a rank needs; pickled by the driver and sent to every rank."""

    data_dir: str
    sweep: str
    trials: list[TrialSpec]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    fingerprint: str
    threads: int = 1
    verbose: bool = False
    extra_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RankData:
    """This rank's share of each split, loaded once per launch."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]


def run_worker(job: WorkerJob) -> list[dict]:
    """Entry point of every rank. Returns rank 0's per-configuration summaries."""
    import tensorflow as tf

    # Threads must be set before TensorFlow starts its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(job.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, job.threads))
    tf.get_logger().setLevel("ERROR")  # keep rank output to our progress lines
    import horovod.tensorflow.keras as hvd

    hvd.init()  # [hvd] joins the Gloo ring of this launch
    root = Path(job.data_dir)
    manifest = load_manifest(root)
    data = RankData({s: feed.rank_split(root, manifest, s, hvd.rank(), hvd.size())
                     for s in ("train", "val", "test")})
    summaries = []
    for k, trial in enumerate(job.trials, 1):
        _say(hvd, f"[{k}/{len(job.trials)}] {trial.name} ({trial.config_hash})")
        summaries.append(train_trial(job, trial, manifest, data))
    return summaries if hvd.rank() == 0 else []


def train_trial(job: WorkerJob, trial: TrialSpec, manifest: Manifest, data: RankData) -> dict:
    """Train, evaluate and (rank 0) record one configuration."""
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.model import blocks
    from pipeline.model.build import build, class_accuracy, encode_labels
    from pipeline.train.callbacks import DivergenceStop, EpochClock, MlflowEpochLogger

    cfg = trial.config
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(cfg.training.seed)  # same seed on every rank
    built = build(cfg, manifest.image_shape, manifest.num_classes)
    size, rank = hvd.size(), hvd.rank()
    local_batch = cfg.training.batch_size // size
    steps = feed.steps_per_epoch(manifest, "train", size, local_batch)

    # [hvd] gradients are averaged over ranks; with per-rank batch = global / ranks the
    # update equals one step on the global batch, so the configured lr applies unchanged.
    opt = hvd.DistributedOptimizer(blocks.optimizer(cfg.optimizer, cfg.optimizer.learning_rate))
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    # [hvd] start from rank 0's initial weights on every rank.
    hvd_tf.broadcast_variables(built.train.variables, root_rank=0)

    enc = built.label_encoding
    x_tr, y_tr = data.splits["train"]
    x_va, y_va = data.splits["val"]
    train_ds = feed.to_dataset(x_tr, encode_labels(y_tr, manifest.num_classes, enc),
                               local_batch, shuffle_seed=cfg.training.seed + rank, repeat=True)
    val_ds = feed.to_dataset(x_va, encode_labels(y_va, manifest.num_classes, enc), local_batch)

    run_id = _start_child_run(job, trial, built.warnings) if rank == 0 else None
    diverge = DivergenceStop()
    callbacks = [
        hvd.callbacks.MetricAverageCallback(),  # [hvd] allreduce: average the epoch's logs
        EpochClock(steps * cfg.training.batch_size),
        diverge,
    ]
    if rank == 0:
        from mlflow.tracking import MlflowClient

        callbacks.append(MlflowEpochLogger(MlflowClient(job.tracking_uri), run_id,
                                           printer=lambda m: _say(hvd, m)))
    started = time.perf_counter()
    try:
        history = built.train.fit(train_ds, epochs=cfg.training.epochs, steps_per_epoch=steps,
                                  validation_data=val_ds, callbacks=callbacks,
                                  verbose=1 if job.verbose and rank == 0 else 0)
        train_seconds = time.perf_counter() - started
        test = evaluate_test(built, data, manifest)  # [hvd] collective: all ranks call it
    except BaseException:
        if rank == 0:
            _end_child_run(job, run_id, FAILED, {"error": traceback.format_exc()[-4000:]})
        raise
    status = DIVERGED if diverge.diverged_at is not None else FINISHED
    summary = {"name": trial.name, "config_hash": trial.config_hash, "status": status,
               "epochs_run": len(history.history.get("loss", [])),
               "train_seconds": train_seconds, **test["metrics"]}
    if rank == 0:
        _record_results(job, run_id, built, data, test, summary)
        _say(hvd, f"    -> {status}: test_accuracy={summary['test_accuracy']:.4f} "
                  f"test_loss={summary['test_loss']:.4g} ({train_seconds:.1f}s)")
    return summary


def evaluate_test(built: BuiltModel, data: RankData, manifest: Manifest) -> dict:
    """Exact test metrics over all ranks' shards: sums are allreduced, not averages."""
    import horovod.tensorflow as hvd_tf
    import tensorflow as tf

    from pipeline.model.build import encode_labels

    x, y = data.splits["test"]
    k = manifest.num_classes
    outputs = built.train.predict(feed.to_dataset(x, y, 1024), verbose=0)
    targets = encode_labels(y, k, built.label_encoding)
    # Losses built with default reduction average over the batch: times n gives the sum.
    loss_sum = float(built.loss(targets, outputs)) * len(y) if len(y) else 0.0
    predicted = np.argmax(outputs, axis=-1)
    confusion = np.zeros((k, k), np.float64)
    np.add.at(confusion, (y, predicted), 1.0)
    local = np.concatenate([[loss_sum, float(len(y))], confusion.ravel()])
    total = hvd_tf.allreduce(tf.constant(local), op=hvd_tf.Sum,  # [hvd] sum over ranks
                             name="test_sums").numpy()
    n = total[1]
    confusion = total[2:].reshape(k, k).astype(np.int64)
    metrics = {"test_loss": total[0] / n, "test_accuracy": float(np.trace(confusion)) / n}
    return {"metrics": metrics, "confusion": confusion}


# ---------------------------------------------------------------------------
# Rank 0: MLflow


def _start_child_run(job: WorkerJob, trial: TrialSpec, warnings: list[str]) -> str:
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import log_config_params

    client = MlflowClient(job.tracking_uri)
    tags = {TAG_PARENT: job.parent_run_id, TAG_ROLE: "config", TAG_SWEEP: job.sweep,
            TAG_HASH: trial.config_hash, TAG_DATASET: job.fingerprint, TAG_STATUS: RUNNING,
            **job.extra_tags}
    if warnings:
        tags[TAG_WARNINGS] = "; ".join(warnings)
    run = client.create_run(job.experiment_id, run_name=trial.name, tags=tags)
    log_config_params(client, run.info.run_id, trial.config)
    return run.info.run_id


def _record_results(job: WorkerJob, run_id: str, built: BuiltModel, data: RankData,
                    test: dict, summary: dict) -> None:
    import mlflow
    import mlflow.tensorflow

    from pipeline.train.artifacts import confusion_figure

    client = mlflow.tracking.MlflowClient(job.tracking_uri)
    for key in ("test_loss", "test_accuracy", "train_seconds", "epochs_run"):
        client.log_metric(run_id, key, float(summary[key]))
    client.log_dict(run_id, _resolved_config(summary, job), "resolved_config.json")
    figure = confusion_figure(test["confusion"])
    client.log_figure(run_id, figure, "confusion_matrix.png")
    figure.clf()
    mlflow.set_tracking_uri(job.tracking_uri)
    example = data.splits["test"][0][:5].astype(np.float32) / 255.0
    with mlflow.start_run(run_id=run_id):
        # Explicit requirements: MLflow's inference imports the model in a subprocess (~5 s).
        mlflow.tensorflow.log_model(built.inference, name="model", input_example=example,
                                    pip_requirements=model_requirements())
    _end_child_run(job, run_id, summary["status"])


def model_requirements() -> list[str]:
    """Pinned requirements of a logged model: the versions this rank runs."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("tensorflow-cpu", "tensorflow", "numpy", "mlflow"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return reqs


def _resolved_config(summary: dict, job: WorkerJob) -> dict:
    trial = next(t for t in job.trials if t.config_hash == summary["config_hash"])
    return {"name": trial.name, "config_hash": trial.config_hash, "dataset": job.fingerprint,
            "config": to_dict(trial.config)}


def _end_child_run(job: WorkerJob, run_id: str | None, status: str,
                   extra: dict[str, str] | None = None) -> None:
    if run_id is None:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(job.tracking_uri)
    client.set_tag(run_id, TAG_STATUS, status)
    for key, value in (extra or {}).items():
        client.set_tag(run_id, key, value[:4900])
    client.set_terminated(run_id, "FAILED" if status == FAILED else "FINISHED")


def _say(hvd: ModuleType, message: str) -> None:
    """Progress lines from rank 0 only, flushed so they reach the driver's console promptly."""
    if hvd.rank() == 0:
        print(message, file=sys.stdout, flush=True)
