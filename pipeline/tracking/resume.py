"""Starting or resuming one configuration's run: the claim, the checkpoint it may resume, and
what MLflow already holds of it.

Rank 0 calls ``claim_trial`` for each configuration (one ahead, in a thread: see
pipeline.train.rank.claim_ahead) and broadcasts the ``Start`` to the other ranks. Every
MLflow call here goes through the sweep's retry; none raises to the caller, because the other
ranks wait in a broadcast for the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.tracking.labels import cell_label, run_name
from pipeline.tracking.vocab import (
    EPOCH_METRICS,
    FAILED,
    ROLE_CONFIG,
    SKIPPED,
    TAG_CELL,
    TAG_CONFIGURATION,
    TAG_DATASET,
    TAG_HASH,
    TAG_LOCAL_BATCH,
    TAG_LR_SCALE,
    TAG_PARENT,
    TAG_RANKS,
    TAG_REPLICATE,
    TAG_RESUMED_FROM,
    TAG_ROLE,
    TAG_STATUS,
    TAG_SWEEP,
    TAG_TASK,
    TAG_WARNINGS,
    UNSTARTED,
)
from pipeline.train import checkpoints

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from pipeline.tracking.spool import Retry
    from pipeline.train.checkpoints import CheckpointState
    from pipeline.train.contract import RankJob, TrackingTarget, Trial

log = logging.getLogger("pipeline.rank")


@dataclass(frozen=True)
class Start:
    """Rank 0's decision for one configuration, broadcast to every rank."""

    run_id: str | None          # None: not trained here, ``status`` and ``reason`` say why
    state: CheckpointState | None = None  # checkpoint to resume from
    status: str = SKIPPED       # SKIPPED: done or another sweep's; UNSTARTED: MLflow was down
    reason: str = ""
    held: dict[str, int] = field(default_factory=dict)  # metric -> last step MLflow has


def claim_trial(job: RankJob, trial: Trial) -> Start:
    """Resume or start this configuration's run, unless someone else has it.

    Never raises for MLflow's sake: the other ranks wait in a broadcast for this answer.
    """
    from mlflow.entities import RunTag

    from pipeline.tracking.claims import ClaimRequest, claim
    from pipeline.tracking.spool import Retry, first_line
    from pipeline.tracking.store import client_for, log_config_params, log_dataset_input, scrub

    target, data = job.tracking, job.data
    client = client_for(target.uri)
    retry = Retry(target.settings.retries, target.settings.backoff_seconds)
    try:
        state = resumable_state(client, retry, job, trial)
        resume_id = state.run_id if state else retried_run(client, retry, target, trial)
        if resume_id and not spool_delivered(client, retry, target, resume_id):
            return Start(None, status=UNSTARTED, reason=(
                f"run {resume_id} has records in the spool that MLflow does not take "
                f"yet; resuming it now would log its epochs out of order "
                f"(see {target.spool_dir})"))
        req = ClaimRequest(target.experiment_id, target.parent_run_id, trial.config_hash,
                           data.fingerprint, run_tags(job, trial), resume_id, job.runtime.force)
        got = retry.call(lambda: claim(client, req, target.settings, run_name(trial)))
        if got.run_id is None:
            return Start(None, reason=got.reason)
        if req.resume_run_id is None:
            retry.call(lambda: log_config_params(client, got.run_id, trial.config))
            retry.call(lambda: log_dataset_input(client, got.run_id, data.name or "dataset",
                                                 data.fingerprint, data.path))
            return Start(got.run_id)
        epoch = state.epoch if state else 0  # no checkpoint: retrained from the start
        tags = {**plan_tags(trial), TAG_RESUMED_FROM: str(epoch)}
        retry.call(lambda: client.log_batch(got.run_id, tags=[
            RunTag(k, v) for k, v in tags.items()]))
        if state:
            log_missing_epoch(client, retry, got.run_id, state, target.spool_dir)
        return Start(got.run_id, state, held=retry.call(lambda: held_steps(client, got.run_id)))
    except Exception as exc:
        why = scrub(first_line(exc), target.uri)
        return Start(None, status=UNSTARTED,
                     reason=f"MLflow unusable when it was due to start ({why})")


def run_tags(job: RankJob, trial: Trial) -> dict[str, str]:
    """The tags of this configuration's run, as for a new run."""
    tags = {TAG_ROLE: ROLE_CONFIG, TAG_SWEEP: job.sweep, TAG_HASH: trial.config_hash,
            TAG_DATASET: job.data.fingerprint, TAG_CELL: trial.cell_hash,
            TAG_CONFIGURATION: cell_label(trial),
            TAG_REPLICATE: str(trial.replicate), TAG_TASK: job.data.task, **plan_tags(trial)}
    if trial.warnings:  # checked on the driver against the dataset's task
        tags[TAG_WARNINGS] = "; ".join(trial.warnings)
    return tags


def plan_tags(trial: Trial) -> dict[str, str]:
    """How this launch trains the configuration: its ranks, each rank's batch and the
    learning rate's scale (pipeline.train.contract.BatchPlan)."""
    plan = trial.batches
    return {TAG_RANKS: str(plan.ranks), TAG_LOCAL_BATCH: str(plan.local_batch),
            TAG_LR_SCALE: f"{plan.lr_scale:g}"}


def resumable_state(client: MlflowClient, retry: Retry, job: RankJob,
                    trial: Trial) -> CheckpointState | None:
    """The checkpoint to resume from, if its run is one this sweep may take over.

    ``latest.json`` outlives the store it was written against (a new tracking store, a
    deleted run) and a checkpoint folder may be shared by several experiments: a run that is
    gone starts afresh and its stale checkpoint is cleared; another experiment's run, or a
    run of another configuration, is left alone and this configuration starts afresh.
    """
    folder = checkpoints.job_dir(job, trial.config_hash)
    state = checkpoints.read_state(folder)
    if not state:
        return None
    run_id = state.run_id
    run = find_run(client, retry, run_id)
    why = not_resumable(run_id, run, job.tracking.experiment_id, trial.config_hash)
    if not why:
        return state
    log.info(f"    checkpoint in {folder} not resumed: {why}; starting afresh")
    if run is None or run.info.lifecycle_stage == "deleted":
        checkpoints.clear(folder)
    return None


def retried_run(client: MlflowClient, retry: Retry, target: TrackingTarget,
                trial: Trial) -> str | None:
    """This sweep's failed run of the configuration, when a relaunch retries it without a
    checkpoint (the launch died before the first one reached the disk). The retry goes on in
    that run from epoch 0, its recorder skipping the steps already logged, so the
    configuration keeps one run in the sweep; a new run beside it would count it twice."""
    from pipeline.tracking.store import search_all

    found = retry.call(lambda: search_all(client, target.experiment_id, (
        f"tags.{TAG_HASH} = '{trial.config_hash}' and tags.{TAG_ROLE} = '{ROLE_CONFIG}' "
        f"and tags.`{TAG_PARENT}` = '{target.parent_run_id}' and tags.{TAG_STATUS} = '{FAILED}'")))
    found = [r for r in found if r.info.lifecycle_stage == "active"]
    return max(found, key=lambda r: r.info.start_time or 0).info.run_id if found else None


def not_resumable(run_id: str, run: Run | None, experiment_id: str, config_hash: str) -> str:
    """Why the run a checkpoint names may not be resumed by this sweep ('' if it may).

    ``run`` is that run as this MLflow store knows it, None if it has no such run.
    """
    if run is None:
        return f"its run {run_id or '(none)'} does not exist in this MLflow store"
    if run.info.lifecycle_stage == "deleted":
        return f"its run {run_id} was deleted"
    if run.info.experiment_id != experiment_id:
        return f"its run {run_id} belongs to another experiment (id {run.info.experiment_id})"
    if run.data.tags.get(TAG_HASH) != config_hash:
        return f"its run {run_id} is of another configuration"
    return ""


def find_run(client: MlflowClient, retry: Retry, run_id: str) -> Run | None:
    """The run, or None if this store has no run of that id (any other failure raises)."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return retry.call(lambda: client.get_run(run_id))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def spool_delivered(client: MlflowClient, retry: Retry, target: TrackingTarget,
                    run_id: str) -> bool:
    """Deliver what the interrupted run left in the spool before it goes on, so an old status
    never lands after the new ones; False if some of it is still waiting."""
    from pipeline.tracking import spool, spool_file

    if spool_file.waiting(target.spool_dir, run_id) is None:
        return True
    report = spool.replay_run(client, Path(target.spool_dir), run_id, retry)
    for line in spool.report_lines(report):
        log.info(f"    {line}")
    return spool_file.waiting(target.spool_dir, run_id) is None


def log_missing_epoch(client: MlflowClient, retry: Retry, run_id: str, state: CheckpointState,
                      spool_dir: str | Path) -> None:
    """The checkpointed epoch's metrics, if the crash came before they reached MLflow or the
    spool (which the next replay delivers): logged once, never twice."""
    from pipeline.tracking.spool_file import spooled_steps

    last = state.epoch - 1
    history = retry.call(lambda: client.get_metric_history(run_id, "loss"))
    if any(m.step == last for m in history):
        return
    if last in spooled_steps(spool_dir, run_id, "loss"):
        return
    logs = state.logs
    for key in EPOCH_METRICS:
        if key in logs:
            retry.call(lambda k=key: client.log_metric(run_id, k, logs[k], step=last))


def held_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """The last step MLflow holds of each of the run's metrics. A resumed run re-measures
    its checkpointed epoch and retrains any epochs logged after the last good checkpoint;
    its recorder skips those steps so that every step appears once."""
    keys = client.get_run(run_id).data.metrics
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in keys}
