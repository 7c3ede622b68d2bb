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
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import RunConfig, to_dict
from pipeline.data import feed
from pipeline.data.manifest import Manifest, load_manifest
from pipeline.errors import DataError
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
from pipeline.train.pinning import pin_cores

if TYPE_CHECKING:  # TensorFlow is imported inside the ranks, not at import time
    import tensorflow as tf
    from mlflow.tracking import MlflowClient

    from pipeline.model.build import BuiltModel
    from pipeline.train.callbacks import DivergenceStop


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
    checkpoint_dir: str = "checkpoints"
    threads: int = 1
    verbose: bool = False
    pin_threads: bool = True
    feed: str = "stream"


@dataclass
class RankData:
    """This rank's share of each split: val and test in memory, train in memory or streamed."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    train_files: list[Path]
    stream: bool


def run_worker(job: WorkerJob) -> list[dict]:
    """Entry point of every rank. Returns this rank's per-configuration summaries."""
    import tensorflow as tf

    # Threads must be set before TensorFlow starts its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(job.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, job.threads))
    tf.get_logger().setLevel("ERROR")  # keep rank output to our progress lines
    # HDF5 is chosen on purpose (see _record_results); MLflow's signature check predicts
    # the input example with a progress bar: neither belongs in the sweep's output.
    warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
    if not job.verbose:
        tf.keras.utils.disable_interactive_logging()
    import horovod.tensorflow.keras as hvd

    hvd.init()  # [hvd] joins the Gloo ring of this launch
    if job.pin_threads:
        pin_cores(hvd.local_rank(), hvd.local_size(), job.threads)
    root = Path(job.data_dir)
    manifest = load_manifest(root)
    if manifest.fingerprint != job.fingerprint:  # rewritten since the sweep was planned
        raise DataError(f"{root}: dataset changed after the sweep began (fingerprint "
                        f"{manifest.fingerprint}, planned on {job.fingerprint})")
    data = load_rank_data(root, manifest, hvd.rank(), hvd.size(), job.feed == "stream")
    summaries = []
    for k, trial in enumerate(job.trials, 1):
        _say(hvd, f"[{k}/{len(job.trials)}] {trial.name} ({trial.config_hash})")
        summaries.append(train_trial(job, trial, manifest, data))
    return summaries  # every rank's: the driver reads rank 0's, tests compare them


def load_rank_data(root: Path, manifest: Manifest, rank: int, size: int,
                   stream: bool) -> RankData:
    """Val and test arrays now; train arrays too unless the training shards are streamed."""
    splits = {s: feed.rank_split(root, manifest, s, rank, size) for s in ("val", "test")}
    if not stream:
        splits["train"] = feed.rank_split(root, manifest, "train", rank, size)
    return RankData(splits, manifest.shard_files(root, "train", rank, size), stream)


def train_trial(job: WorkerJob, trial: TrialSpec, manifest: Manifest, data: RankData) -> dict:
    """Train, evaluate and (rank 0) record one configuration; resumes from its checkpoint."""
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.model.build import build, class_accuracy
    from pipeline.train import checkpoint

    cfg = trial.config
    began = time.perf_counter()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(cfg.training.seed)  # same seed on every rank
    built = build(cfg, manifest.image_shape, manifest.num_classes)
    rank = hvd.rank()
    local_batch, steps = _batching(cfg, manifest, hvd.size())
    opt = _distributed_optimizer(cfg, steps, hvd.size())
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    ckpt = tf.train.Checkpoint(model=built.train, optimizer=opt)
    folder = checkpoint.trial_dir(job.checkpoint_dir, trial.config_hash)
    # [hvd] rank 0 decides whether to resume; every rank then reads the same checkpoint.
    state = hvd_tf.broadcast_object(checkpoint.read_state(folder) if rank == 0 else None,
                                    root_rank=0, name=f"resume.{trial.config_hash}")
    if state:
        checkpoint.restore(ckpt, state)
    # [hvd] identical starting weights on every rank (rank 0's initialisation or checkpoint).
    hvd_tf.broadcast_variables(built.train.variables, root_rank=0)
    initial_epoch = state["epoch"] if state else 0

    run_id = _open_child_run(job, trial, built.warnings, state) if rank == 0 else None
    callbacks, diverge = _callbacks(job, cfg, steps, run_id, folder, ckpt)
    train_ds, val_ds = _datasets(data, manifest, built.label_encoding, local_batch,
                                 cfg.training.seed + rank)
    started = time.perf_counter()
    try:
        history = built.train.fit(train_ds, epochs=cfg.training.epochs, steps_per_epoch=steps,
                                  initial_epoch=initial_epoch, validation_data=val_ds,
                                  callbacks=callbacks,
                                  verbose=1 if job.verbose and rank == 0 else 0)
        train_seconds = time.perf_counter() - started
        test = evaluate_test(built, data, manifest)  # [hvd] collective: all ranks call it
        tested = time.perf_counter()
    except BaseException:
        if rank == 0:
            _end_child_run(job, run_id, FAILED, {"error": traceback.format_exc()[-4000:]})
        raise
    status = DIVERGED if diverge.diverged_at is not None else FINISHED
    summary = {"name": trial.name, "config_hash": trial.config_hash, "status": status,
               "epochs_run": initial_epoch + len(history.history.get("loss", [])),
               "resumed_from_epoch": initial_epoch, "train_seconds": train_seconds,
               # Where the time outside fit() goes (the sweep-overhead benchmark reads these).
               "setup_seconds": started - began, "test_seconds": tested - started - train_seconds,
               "peak_rss_mib": _peak_rss_mib(),
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
               **test["metrics"]}
    if rank == 0:
        _record_results(job, trial, run_id, built, data, test, summary)
        checkpoint.clear(folder)  # recorded in MLflow: the checkpoint has served its purpose
        summary["record_seconds"] = time.perf_counter() - tested
        _say(hvd, f"    -> {status}: test_accuracy={summary['test_accuracy']:.4f} "
                  f"test_loss={summary['test_loss']:.4g} ({train_seconds:.1f}s)")
    return summary


def _batching(cfg: RunConfig, manifest: Manifest, size: int) -> tuple[int, int]:
    """(per-rank batch, steps per epoch), the same on every rank."""
    t = cfg.training
    local = t.batch_size // size if t.batch_mode == "global" else t.batch_size
    return local, feed.steps_per_epoch(manifest, "train", size, local)


def _distributed_optimizer(cfg: RunConfig, steps: int, size: int) -> tf.keras.optimizers.Optimizer:
    """The configured optimizer wrapped by Horovod.

    Global batch mode: gradients are averaged over ranks, each rank holding 1/size of the
    batch, so an update equals one step on the global batch and the configured learning rate
    applies unchanged. Per-rank mode: the batch grows with the ranks, so the learning rate is
    scaled by size, warming up from the single-rank value. A summed loss sums gradients too.
    """
    import horovod.tensorflow.keras as hvd

    from pipeline.model import blocks

    o, t = cfg.optimizer, cfg.training
    scale = size if t.batch_mode == "per_rank" else 1
    lr = blocks.learning_rate(o, o.learning_rate * scale, steps,
                              warmup_start=1.0 / scale if scale > 1 else 0.0)
    op = hvd.Sum if t.loss_reduction == "sum" else hvd.Average
    return hvd.DistributedOptimizer(blocks.optimizer(o, lr), op=op)  # [hvd] allreduce grads


def _callbacks(job: WorkerJob, cfg: RunConfig, steps: int, run_id: str | None,
               folder: Path, ckpt: tf.train.Checkpoint) -> tuple[list, DivergenceStop]:
    """Callbacks in the order that keeps ranks in step; rank 0 adds logging and checkpoints."""
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.train.callbacks import DivergenceStop, EpochClock, MlflowEpochLogger
    from pipeline.train.checkpoint import EpochCheckpoint

    batch = cfg.training.batch_size * (hvd.size() if cfg.training.batch_mode == "per_rank" else 1)
    diverge = DivergenceStop()
    callbacks = [
        hvd.callbacks.MetricAverageCallback(),  # [hvd] allreduce: average the epoch's logs
        EpochClock(steps * batch),
        diverge,  # reads averaged logs: every rank stops at the same epoch
    ]
    es = cfg.training.early_stopping
    if es.patience > 0:  # also on averaged logs, so the decision is the same on every rank
        callbacks.append(tf.keras.callbacks.EarlyStopping(es.monitor, es.min_delta, es.patience))
    if hvd.rank() == 0:
        from mlflow.tracking import MlflowClient

        # Checkpoint first: its state also carries the epoch's logs (see _log_missing_epoch).
        callbacks.append(EpochCheckpoint(folder, ckpt, run_id))
        callbacks.append(MlflowEpochLogger(MlflowClient(job.tracking_uri), run_id,
                                           printer=lambda m: _say(hvd, m)))
    return callbacks, diverge


def _datasets(data: RankData, manifest: Manifest, encoding: str, local_batch: int,
              shuffle_seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    from pipeline.model.build import encode_labels

    k = manifest.num_classes
    x_va, y_va = data.splits["val"]
    val = feed.to_dataset(x_va, encode_labels(y_va, k, encoding), local_batch)
    if data.stream:
        train = feed.stream_dataset(data.train_files, manifest.image_shape, local_batch,
                                    shuffle_seed, lambda y: encode_labels(y, k, encoding))
    else:
        x_tr, y_tr = data.splits["train"]
        train = feed.to_dataset(x_tr, encode_labels(y_tr, k, encoding), local_batch,
                                shuffle_seed=shuffle_seed, repeat=True)
    return train, val


def evaluate_test(built: BuiltModel, data: RankData, manifest: Manifest) -> dict:
    """Exact test metrics over all ranks' shards: sums are allreduced, not averages."""
    import horovod.tensorflow as hvd_tf
    import tensorflow as tf

    from pipeline.model.build import encode_labels

    x, y = data.splits["test"]
    k = manifest.num_classes
    outputs = built.train.predict(feed.to_dataset(x, y, 1024), verbose=0)
    targets = encode_labels(y, k, built.label_encoding)
    loss_sum = float(np.sum(per_example_loss(built.loss, targets, outputs))) if len(y) else 0.0
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


def per_example_loss(loss: tf.keras.losses.Loss, targets: tf.Tensor,
                     outputs: np.ndarray) -> np.ndarray:
    """The loss of every example, whatever reduction training used (mean or sum)."""
    import tensorflow as tf

    if isinstance(loss, tf.keras.losses.Loss):
        config = {**loss.get_config(), "reduction": tf.keras.losses.Reduction.NONE}
        loss = loss.__class__.from_config(config)
    return np.asarray(loss(targets, outputs))  # custom functions return per-example values


# ---------------------------------------------------------------------------
# Rank 0: MLflow


def _open_child_run(job: WorkerJob, trial: TrialSpec, warnings: list[str],
                    state: dict | None) -> str:
    """A new child run, or the interrupted one again when resuming from its checkpoint."""
    if state and state.get("run_id"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(job.tracking_uri)
        run_id = state["run_id"]
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, TAG_STATUS, RUNNING)
        client.set_tag(run_id, "resumed_from_epoch", str(state["epoch"]))
        _log_missing_epoch(client, run_id, state)
        return run_id
    return _start_child_run(job, trial, warnings)


def _log_missing_epoch(client: MlflowClient, run_id: str, state: dict) -> None:
    """The checkpointed epoch's metrics, if the crash came before they reached MLflow."""
    from pipeline.train.callbacks import MlflowEpochLogger

    last = state["epoch"] - 1
    if any(m.step == last for m in client.get_metric_history(run_id, "loss")):
        return
    logs = state.get("logs", {})
    for key in MlflowEpochLogger.KEYS:
        if key in logs:
            client.log_metric(run_id, key, logs[key], step=last)


def _start_child_run(job: WorkerJob, trial: TrialSpec, warnings: list[str]) -> str:
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import log_config_params

    client = MlflowClient(job.tracking_uri)
    tags = {TAG_PARENT: job.parent_run_id, TAG_ROLE: "config", TAG_SWEEP: job.sweep,
            TAG_HASH: trial.config_hash, TAG_DATASET: job.fingerprint, TAG_STATUS: RUNNING}
    if warnings:
        tags[TAG_WARNINGS] = "; ".join(warnings)
    run = client.create_run(job.experiment_id, run_name=trial.name, tags=tags)
    log_config_params(client, run.info.run_id, trial.config)
    return run.info.run_id


def _record_results(job: WorkerJob, trial: TrialSpec, run_id: str, built: BuiltModel,
                    data: RankData,
                    test: dict, summary: dict) -> None:
    import mlflow
    import mlflow.tensorflow

    from pipeline.train.artifacts import close, confusion_figure, history_figure

    client = mlflow.tracking.MlflowClient(job.tracking_uri)
    for key in ("test_loss", "test_accuracy", "train_seconds", "epochs_run"):
        # NaN test metrics of a diverged run are logged as such; the status tag says why.
        client.log_metric(run_id, key, float(summary[key]))
    resolved = {"name": trial.name, "config_hash": trial.config_hash,
                "dataset": job.fingerprint, "config": to_dict(trial.config)}
    client.log_dict(run_id, resolved, "resolved_config.json")
    # From MLflow rather than Keras' history: a resumed run's history starts mid-way.
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
               for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    for figure, name in ((confusion_figure(test["confusion"]), "confusion_matrix.png"),
                         (history_figure(history), "curves.png")):
        client.log_figure(run_id, figure, name)
        close(figure)
    mlflow.set_tracking_uri(job.tracking_uri)
    example = data.splits["test"][0][:5].astype(np.float32) / 255.0
    with mlflow.start_run(run_id=run_id):
        # Explicit requirements: MLflow's inference imports the model in a subprocess (~5 s).
        # HDF5 rather than SavedModel: 0.5-0.9 s instead of 1.2-2.6 s per model here.
        mlflow.tensorflow.log_model(built.inference, name="model", input_example=example,
                                    pip_requirements=model_requirements(),
                                    custom_objects=built.custom_objects or None,
                                    keras_model_kwargs={"save_format": "h5"})
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


def _peak_rss_mib() -> float:
    """This rank's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _say(hvd: ModuleType, message: str) -> None:
    """Progress lines from rank 0 only, flushed so they reach the driver's console promptly."""
    if hvd.rank() == 0:
        print(message, file=sys.stdout, flush=True)
