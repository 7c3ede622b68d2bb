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
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pipeline.config import RunConfig, TrackingConfig, to_dict
from pipeline.data import feed
from pipeline.data.manifest import Manifest, load_manifest
from pipeline.errors import DataError
from pipeline.tracking import (
    DIVERGED,
    FAILED,
    FINISHED,
    TAG_STATUS,
)
from pipeline.train.background import Background
from pipeline.train.claiming import ClaimAhead, Start
from pipeline.train.pinning import pin_cores

if TYPE_CHECKING:  # TensorFlow is imported inside the ranks, not at import time
    import tensorflow as tf

    from pipeline.model.build import BuiltModel
    from pipeline.spool import RunLog
    from pipeline.train.callbacks import DivergenceStop, EpochClock


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
    # Where rank 0 spools what MLflow could not take (see pipeline.spool).
    spool_dir: str = "spool"
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    force: bool = False
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
    # Rank 0 overlaps its MLflow work with training: records of the last configuration
    # and the claim of the next run in threads.
    overlap = Overlap(Background(), ClaimAhead(job) if hvd.rank() == 0 else None)
    try:
        for k, trial in enumerate(job.trials, 1):
            _say(hvd, f"[{k}/{len(job.trials)}] {trial.name} ({trial.config_hash})")
            following = job.trials[k] if k < len(job.trials) else None
            summaries.append(train_trial(job, trial, manifest, data, overlap, following))
    finally:
        overlap.records.wait()  # what finished is recorded, even when a later one failed
    return summaries  # every rank's: the driver reads rank 0's, tests compare them


def load_rank_data(root: Path, manifest: Manifest, rank: int, size: int,
                   stream: bool) -> RankData:
    """Val and test arrays now; train arrays too unless the training shards are streamed."""
    splits = {s: feed.rank_split(root, manifest, s, rank, size) for s in ("val", "test")}
    if not stream:
        splits["train"] = feed.rank_split(root, manifest, "train", rank, size)
    return RankData(splits, manifest.shard_files(root, "train", rank, size), stream)


@dataclass
class Overlap:
    """Rank 0's background work: the records thread and the claims taken ahead."""

    records: Background
    claims: ClaimAhead | None  # None on the other ranks


def train_trial(job: WorkerJob, trial: TrialSpec, manifest: Manifest, data: RankData,
                overlap: Overlap, following: TrialSpec | None = None) -> dict:
    """Train, evaluate and (rank 0) record one configuration; resumes from its checkpoint.

    Rank 0 claims ``following`` while this configuration trains, and records this one in
    a thread while ``following`` is set up and trains; the summary it returns is complete
    once ``overlap.records.wait()`` has returned.
    """
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.model.build import build

    cfg = trial.config
    began = time.perf_counter()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(cfg.training.seed)  # same seed on every rank
    built = build(cfg, manifest.image_shape, manifest.num_classes)
    rank = hvd.rank()
    claimed, beat = overlap.claims.take(trial) if overlap.claims else (None, None)
    # [hvd] rank 0 read the checkpoint and claimed the configuration; every rank follows its
    # decision, so all skip together or all train (and read the same checkpoint).
    start = hvd_tf.broadcast_object(claimed, root_rank=0, name=f"claim.{trial.config_hash}")
    if overlap.claims and following is not None:
        overlap.claims.start(following)  # its settle time passes while this one trains
    if start.run_id is None:
        _say(hvd, f"    -> {start.status}: {start.reason}")
        return {"name": trial.name, "config_hash": trial.config_hash, "status": start.status,
                "reason": start.reason}
    if rank != 0:
        return _train(job, trial, manifest, data, built, start, None, began)[0]
    log = _run_log(job, start.run_id)
    held = ExitStack()  # the run's heartbeat (running since its claim) and log, until recorded
    held.push(beat)
    held.callback(log.close)
    try:
        summary, record = _train(job, trial, manifest, data, built, start, log, began)
    except BaseException:
        held.close()
        raise
    # Records run while the next configuration is set up and trains: most of their time
    # is spent waiting on MLflow's store and the disk (bench/README.md).
    summary["record_wait_seconds"] = overlap.records.submit(
        lambda: _record_and_release(record, held, log, summary))
    return summary


def _record_and_release(record: Callable[[], None], held: ExitStack, log: RunLog,
                        summary: dict) -> None:
    """Rank 0, in the records thread: record, then stop the heartbeat and close the log."""
    began = time.perf_counter()
    with held:
        record()
    summary["record_seconds"] = time.perf_counter() - began
    if log.offline:
        summary["spool"] = str(log.path)


def _train(job: WorkerJob, trial: TrialSpec, manifest: Manifest, data: RankData,
           built: BuiltModel, start: Start, log: RunLog | None,
           began: float) -> tuple[dict, Callable[[], None] | None]:
    """Every rank: fit and evaluate. Rank 0 (``log`` set) also gets back the step that
    records the results into the claimed run.

    ``began``: when this configuration's set-up started (for the summary's timings).
    """
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.model.build import class_accuracy
    from pipeline.train import checkpoint

    cfg, rank, state = trial.config, hvd.rank(), start.state
    local_batch, steps = _batching(cfg, manifest, hvd.size())
    opt = _distributed_optimizer(cfg, steps, hvd.size())
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    ckpt = tf.train.Checkpoint(model=built.train, optimizer=opt)
    folder = checkpoint.trial_dir(job.checkpoint_dir, trial.config_hash)
    if state:
        checkpoint.restore(ckpt, state)
    # [hvd] identical starting weights on every rank (rank 0's initialisation or checkpoint).
    hvd_tf.broadcast_variables(built.train.variables, root_rank=0)
    initial_epoch = state["epoch"] if state else 0
    callbacks, diverge, clock = _callbacks(job, cfg, steps, log, folder, ckpt)
    train_ds, val_ds = _datasets(data, manifest, built.label_encoding, local_batch,
                                 cfg.training.seed + rank)
    started = time.perf_counter()
    try:
        history = built.train.fit(train_ds, epochs=cfg.training.epochs, steps_per_epoch=steps,
                                  initial_epoch=initial_epoch, validation_data=val_ds,
                                  callbacks=callbacks,
                                  verbose=1 if job.verbose and rank == 0 else 0)
        returned = time.perf_counter()
        test = evaluate_test(built, data, manifest)  # [hvd] collective: all ranks call it
        tested = time.perf_counter()
    except BaseException:
        if log is not None:
            _end_child_run(log, FAILED, {"error": traceback.format_exc()[-4000:]})
        raise
    status = DIVERGED if diverge.diverged_at is not None else FINISHED
    ended = clock.ended or returned  # the last epoch's end; fit() returns after its teardown
    summary = {"name": trial.name, "config_hash": trial.config_hash, "status": status,
               "epochs_run": initial_epoch + len(history.history.get("loss", [])),
               "resumed_from_epoch": initial_epoch, "train_seconds": ended - started,
               # Where the time outside training goes (the sweep-overhead benchmark reads
               # these); teardown: fit() freeing its input pipeline after the last epoch.
               "setup_seconds": started - began,
               "teardown_seconds": returned - ended,
               "test_seconds": tested - returned,
               "peak_rss_mib": _peak_rss_mib(),
               "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
               **test["metrics"]}
    if log is None:
        return summary, None
    _say(hvd, f"    -> {status}: test_accuracy={summary['test_accuracy']:.4f} "
              f"test_loss={summary['test_loss']:.4g} ({summary['train_seconds']:.1f}s)")

    def record() -> None:
        if not job.verbose:  # Keras keeps this per thread; MLflow's signature check predicts
            tf.keras.utils.disable_interactive_logging()
        _record_results(job, trial, log, built, data, manifest, test, summary)
        checkpoint.clear(folder)  # recorded in MLflow: the checkpoint has served its purpose

    return summary, record


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


def _callbacks(job: WorkerJob, cfg: RunConfig, steps: int, log: RunLog | None,
               folder: Path, ckpt: tf.train.Checkpoint
               ) -> tuple[list, DivergenceStop, EpochClock]:
    """Callbacks in the order that keeps ranks in step; rank 0 adds logging and checkpoints."""
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.train.callbacks import DivergenceStop, EpochClock, MlflowEpochLogger
    from pipeline.train.checkpoint import EpochCheckpoint

    batch = cfg.training.batch_size * (hvd.size() if cfg.training.batch_mode == "per_rank" else 1)
    diverge, clock = DivergenceStop(), EpochClock(steps * batch)
    callbacks = [
        hvd.callbacks.MetricAverageCallback(),  # [hvd] allreduce: average the epoch's logs
        clock,
        diverge,  # reads averaged logs: every rank stops at the same epoch
    ]
    es = cfg.training.early_stopping
    if es.patience > 0:  # also on averaged logs, so the decision is the same on every rank
        callbacks.append(tf.keras.callbacks.EarlyStopping(es.monitor, es.min_delta, es.patience))
    if log is not None:  # rank 0
        # Checkpoint first: its state also carries the epoch's logs (see _log_missing_epoch).
        callbacks.append(EpochCheckpoint(folder, ckpt, log.run_id))
        callbacks.append(MlflowEpochLogger(log, printer=lambda m: _say(hvd, m)))
    return callbacks, diverge, clock


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
    outputs = predict_eager(built.train, x)
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


def predict_eager(model: tf.keras.Model, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The model's outputs for uint8 ``images``, computed eagerly chunk by chunk.

    ``predict()`` traces a new graph for every model, about a second per configuration
    here; a few eager calls on large chunks compute the same outputs in milliseconds.
    """
    parts = [model(feed.unit_scale(images[i:i + chunk]), training=False).numpy()
             for i in range(0, len(images), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, *model.output_shape[1:]), np.float32)


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


def _run_log(job: WorkerJob, run_id: str) -> RunLog:
    from mlflow.tracking import MlflowClient

    from pipeline.spool import Retry, RunLog

    return RunLog(MlflowClient(job.tracking_uri), run_id, job.spool_dir,
                  Retry(job.tracking.retries, job.tracking.backoff_seconds),
                  say=lambda m: print(m, flush=True))


def _record_results(job: WorkerJob, trial: TrialSpec, log: RunLog, built: BuiltModel,
                    data: RankData, manifest: Manifest, test: dict, summary: dict) -> None:
    from pipeline.train.artifacts import close, confusion_figure, history_figure
    from pipeline.train.model_log import log_model, stash_model

    for key in ("test_loss", "test_accuracy", "train_seconds", "epochs_run"):
        # NaN test metrics of a diverged run are logged as such; the status tag says why.
        log.log_metric(key, float(summary[key]))
    log.log_dict({"name": trial.name, "config_hash": trial.config_hash,
                  "dataset": job.fingerprint, "config": to_dict(trial.config)},
                 "resolved_config.json")
    for figure, name in ((confusion_figure(test["confusion"]), "confusion_matrix.png"),
                         (history_figure(_figure_history(log, summary)), "curves.png")):
        log.log_figure(figure, name)
        close(figure)
    example = feed.unit_scale(data.splits["test"][0][:5])
    reqs = model_requirements()
    log.log_model(
        live=lambda: log_model(job.tracking_uri, log.run_id, built.inference, example, reqs,
                           built.custom_objects),
        stash=lambda folder: stash_model(folder, trial.config, manifest.image_shape,
                                         manifest.num_classes, built.inference, example, reqs))
    _end_child_run(log, summary["status"])


def _figure_history(log: RunLog, summary: dict) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch curves from MLflow (a resumed run's Keras history starts mid-way), or, when
    MLflow is out of reach, from this launch's Keras history."""
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    history = {key: log.metric_history(key) for key in keys}
    if all(h is not None for h in history.values()):
        return history
    first = summary["resumed_from_epoch"]
    return {key: list(enumerate(summary["history"].get(key, []), first)) for key in keys}


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


def _end_child_run(log: RunLog, status: str, extra: dict[str, str] | None = None) -> None:
    for key, value in (extra or {}).items():
        log.set_tag(key, value[:4900])
    log.set_tag(TAG_STATUS, status)
    log.set_terminated("FAILED" if status == FAILED else "FINISHED")


def _peak_rss_mib() -> float:
    """This rank's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _say(hvd: ModuleType, message: str) -> None:
    """Progress lines from rank 0 only, flushed so they reach the driver's console promptly."""
    if hvd.rank() == 0:
        print(message, file=sys.stdout, flush=True)
