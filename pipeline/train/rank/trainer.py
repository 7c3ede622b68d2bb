"""One configuration on every rank: claim, build, fit, test; rank 0 records it.

Distributed points are marked ``[hvd]``; the calls themselves live in ``distributed``.
"""

from __future__ import annotations

import time
import traceback
from contextlib import ExitStack
from typing import TYPE_CHECKING

from pipeline.data.manifest import Manifest
from pipeline.tasks import primary_metric
from pipeline.tracking.vocab import (
    DIVERGED,
    FAILED,
    FINISHED,
    PAUSED,
    TAG_ERROR,
    TAG_RESUMED_IN_MEMORY,
    TAG_RUNG_EPOCH,
)
from pipeline.train import checkpoints
from pipeline.train.contract import RankJob, Trial, TrialOutcome
from pipeline.train.rank import distributed
from pipeline.train.rank.data import RankData, datasets
from pipeline.train.rank.evaluation import TestResult, evaluate_test
from pipeline.train.rank.kept_models import Kept, variable_bytes
from pipeline.train.rank.results import record_results
from pipeline.train.rank.role import Role

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.model.build import BuiltModel
    from pipeline.tracking.recorder import Recorder
    from pipeline.train.checkpoints import CheckpointState
    from pipeline.train.rank.callbacks import DivergenceStop, EpochClock


def train_trial(job: RankJob, trial: Trial, manifest: Manifest, data: RankData, role: Role,
                following: Trial | None = None) -> TrialOutcome:
    """Train, test and (rank 0) record one configuration; resumes from its checkpoint.

    Rank 0 claims ``following`` while this configuration trains, and records this one in a
    thread while ``following`` is set up and trains; the outcome it returns is complete once
    ``role.records.wait()`` has returned, and the driver hears of it (``role.report``) then.
    """
    began = time.perf_counter()
    claimed, beat = role.claims.take(trial)
    # [hvd] rank 0 read the checkpoint and claimed the configuration; every rank follows its
    # decision, so all skip together or all train (and read the same checkpoint).
    start = distributed.broadcast_object(claimed, name=f"claim.{trial.config_hash}")
    if following is not None:
        role.claims.start(following)  # its settle time passes while this one trains
    if start.run_id is None:
        role.say(f"    -> {start.status}: {start.reason}")
        skipped = TrialOutcome(trial.name, trial.config_hash, start.status, start.reason)
        role.report(skipped)
        return skipped
    recorder = role.recorder(start.run_id, start.held)
    held = ExitStack()  # the run's heartbeat (running since its claim) and log, until recorded
    if beat is not None:
        held.push(beat)
    held.callback(recorder.close)
    try:
        built, ckpt, state = _model_for(trial, manifest, start.state, recorder, role)
        outcome, test = _fit_and_test(job, trial, manifest, data, built, ckpt, state, recorder,
                                      role, began)
    except BaseException:
        held.close()
        raise
    if test is None:  # paused at its rung: its next rung may go on with this very model
        role.kept.keep(trial.config_hash, Kept(built, ckpt, start.run_id, outcome.epochs_run,
                                                variable_bytes(ckpt)))

    def record() -> None:
        recording = time.perf_counter()
        with held:
            if test is None:  # paused at its rung: the checkpoint is where it goes on from
                recorder.end(PAUSED, {TAG_RUNG_EPOCH: str(outcome.epochs_run)})
            else:
                record_results(job, trial, recorder, built, data, manifest, test, outcome)
                checkpoints.clear(checkpoints.job_dir(job, trial.config_hash))
        outcome.record_seconds = time.perf_counter() - recording
        if recorder.offline:
            outcome.spool = str(recorder.path)
        role.report(outcome)  # after the records: the driver may read them back now

    # Records run while the next configuration is set up and trains: most of their time is
    # spent waiting on MLflow's store and the disk (bench/README.md).
    outcome.record_wait_seconds = role.records.submit(record)
    return outcome


def _fresh_model(trial: Trial, manifest: Manifest) -> BuiltModel:
    import tensorflow as tf

    from pipeline.model.build import build_for

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(trial.config.training.seed)  # same seed on every rank
    return build_for(trial.config, manifest.problem())


def _model_for(trial: Trial, manifest: Manifest, state: CheckpointState | None,
               recorder: Recorder, role: Role
               ) -> tuple[BuiltModel, tf.train.Checkpoint, CheckpointState | None]:
    """The model to train: the one this group kept when the trial paused at its last rung,
    if it is what the checkpoint ``state`` holds (rank.kept_models), else a fresh one with
    the checkpoint read into it."""
    if state:
        kept = role.kept.take(trial.config_hash, state)
        if kept is not None:
            recorder.set_tag(TAG_RESUMED_IN_MEMORY, str(state.epoch))
            return kept.built, kept.ckpt, state
    return _restored(trial, manifest, _fresh_model(trial, manifest), state, recorder, role)


def _restored(trial: Trial, manifest: Manifest, built: BuiltModel,
              state: CheckpointState | None,
              recorder: Recorder, role: Role
              ) -> tuple[BuiltModel, tf.train.Checkpoint, CheckpointState | None]:
    """The compiled model and its checkpoint object, restored from ``state`` when every rank
    could read it; otherwise a fresh model and no state (the configuration starts afresh)."""
    from pipeline.train.rank import epoch_checkpoint

    ckpt = _compiled(trial, built)
    if not state or epoch_checkpoint.restored_everywhere(ckpt, state, recorder, role.say):
        return built, ckpt, state
    built = _fresh_model(trial, manifest)
    return built, _compiled(trial, built), None


def _compiled(trial: Trial, built: BuiltModel) -> tf.train.Checkpoint:
    import tensorflow as tf

    opt = _optimizer(trial)
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[built.metric])
    return tf.train.Checkpoint(model=built.train, optimizer=opt)


def _fit_and_test(job: RankJob, trial: Trial, manifest: Manifest, data: RankData,
                  built: BuiltModel, ckpt: tf.train.Checkpoint, state: CheckpointState | None,
                  recorder: Recorder, role: Role,
                  began: float) -> tuple[TrialOutcome, TestResult | None]:
    """Every rank: fit and test (no test when paused at a rung's budget). ``began``: when
    this configuration's set-up started."""
    cfg, plan = trial.config, trial.batches
    # [hvd] identical starting weights on every rank (rank 0's initialisation or checkpoint).
    distributed.broadcast_variables(built.train.variables)
    initial_epoch = state.epoch if state else 0
    folder = checkpoints.job_dir(job, trial.config_hash)
    callbacks, diverge, clock = _callbacks(trial, recorder, role, role.checkpointer(
        folder, ckpt, recorder))
    callbacks += _diagnostics(built, data, manifest, trial, recorder, initial_epoch)
    train_ds, val_ds = datasets(data, manifest, built.label_encoding, plan.local_batch,
                                cfg.training.seed + distributed.rank())
    # A resumed run goes on with the batches it would have seen next, so that resuming (after
    # a crash, or a promotion by successive halving) trains exactly as one uninterrupted fit.
    train_ds = train_ds.skip(initial_epoch * plan.steps_per_epoch)
    started = time.perf_counter()
    try:
        history = built.train.fit(train_ds, epochs=trial.stop_epoch,
                                  steps_per_epoch=plan.steps_per_epoch,
                                  initial_epoch=initial_epoch, validation_data=val_ds,
                                  callbacks=callbacks,
                                  verbose=1 if job.runtime.verbose and role.root else 0)
        returned = time.perf_counter()
        epochs_run = initial_epoch + len(history.history.get("loss", []))
        # Every rank reaches the same answer: the stops are decided on averaged logs.
        paused = (trial.budget is not None and epochs_run < cfg.training.epochs
                  and not built.train.stop_training)
        # [hvd] collective: all ranks call it, or (paused) none does
        test = None if paused else evaluate_test(built, data, manifest)
        tested = time.perf_counter()
    except BaseException:
        recorder.end(FAILED, {TAG_ERROR: traceback.format_exc()[-4000:]})
        raise
    ended = clock.ended or returned  # the last epoch's end; fit() returns after its teardown
    status = PAUSED if paused else DIVERGED if diverge.diverged_at is not None else FINISHED
    outcome = TrialOutcome(
        trial.name, trial.config_hash, status, epochs_run=epochs_run,
        resumed_from_epoch=initial_epoch, metrics=test.metrics if test else {},
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        train_seconds=ended - started, setup_seconds=started - began,
        teardown_seconds=returned - ended, test_seconds=tested - returned,
        peak_rss_mib=_peak_rss_mib())
    if test is None:
        role.say(f"    -> paused at epoch {epochs_run} of {cfg.training.epochs} (its rung's "
                 f"budget; checkpoint kept) ({outcome.train_seconds:.1f}s)")
        return outcome, test
    primary, _ = primary_metric(manifest.task)
    role.say(f"    -> {outcome.status}: {primary}={outcome.metric(primary):.4f} "
             f"test_loss={outcome.metric('test_loss'):.4g} ({outcome.train_seconds:.1f}s)")
    return outcome, test


def _optimizer(trial: Trial) -> tf.keras.optimizers.Optimizer:
    """The configured optimizer and schedule, scaled by the batch plan, wrapped by Horovod."""
    from pipeline.model import blocks

    o, plan = trial.config.optimizer, trial.batches
    lr = blocks.learning_rate(o, o.learning_rate * plan.lr_scale, plan.steps_per_epoch,
                              warmup_start=plan.warmup_start)
    # [hvd] gradients allreduced every step
    return distributed.optimizer(blocks.optimizer(o, lr), plan.summed_gradients)


def _callbacks(trial: Trial, recorder: Recorder, role: Role,
               checkpointer: tf.keras.callbacks.Callback
               ) -> tuple[list, DivergenceStop, EpochClock]:
    """Callbacks in the order that keeps ranks in step."""
    import tensorflow as tf

    from pipeline.train.rank.callbacks import (
        DivergenceStop,
        EpochClock,
        EpochLogger,
        RankResources,
        StepDeadline,
    )

    diverge, clock = DivergenceStop(), EpochClock(trial.batches.samples_per_epoch)
    callbacks = [
        StepDeadline(),  # a step whose gradient allreduce some rank never joins ends the launch
        distributed.metric_average_callback(),  # [hvd] allreduce: average the epoch's logs
        clock,
        diverge,  # reads averaged logs: every rank stops at the same epoch
    ]
    es = trial.config.training.early_stopping
    if es.patience > 0:  # also on averaged logs, so the decision is the same on every rank
        callbacks.append(tf.keras.callbacks.EarlyStopping(es.monitor, es.min_delta, es.patience))
    # Checkpoint first: its state also carries the epoch's logs (tracking.resume, missing epoch).
    callbacks += [checkpointer, EpochLogger(recorder, role.say),
                  # [hvd] allreduce of each rank's CPU and memory, every rank, every epoch
                  RankResources(distributed.rank(), distributed.size(), recorder,
                                distributed.allreduce_sum)]
    return callbacks, diverge, clock


def _diagnostics(built: BuiltModel, data: RankData, manifest: Manifest, trial: Trial,
                 recorder: Recorder, initial_epoch: int) -> list[tf.keras.callbacks.Callback]:
    """Every rank measures the same probe (no collective, so none waits on another); only
    rank 0's recorder keeps the numbers."""
    if data.probe is None:
        return []
    from pipeline.data.feed import unit_scale
    from pipeline.model.build import encode_targets
    from pipeline.train.rank.diagnostics import DiagnosticsCallback, Probe

    x, y = data.probe
    probe = Probe(unit_scale(x), encode_targets(y, manifest.problem(), built.label_encoding))
    m = trial.config.model
    return [DiagnosticsCallback(probe, built.loss, m.output_activation, m.hidden_activation,
                                sink=recorder.log_epoch, initial_epoch=initial_epoch)]


def _peak_rss_mib() -> float:
    """This rank's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
