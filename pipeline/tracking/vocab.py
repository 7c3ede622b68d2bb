"""The MLflow vocabulary: every tag, status and artifact name the project writes or reads.

One place, so the sweep, the ranks, the report and the tests agree on spelling.
"""

from __future__ import annotations

from enum import StrEnum

from pipeline import tasks

# Tags on every run of a sweep
TAG_ROLE = "role"            # ROLE_SWEEP on parent runs, ROLE_CONFIG on child runs
TAG_SWEEP = "sweep"          # the sweep's name
TAG_DATASET = "dataset"      # the prepared dataset's fingerprint
TAG_TASK = "task"            # the dataset's problem type (pipeline.tasks); absent: multiclass
TAG_STATUS = "status"        # RUNNING, then FINISHED / DIVERGED / FAILED
TAG_PARENT = "mlflow.parentRunId"
ROLE_SWEEP, ROLE_CONFIG = "sweep", "config"
TAG_PREFLIGHT = "preflight"  # on the parent: the pre-flight check's findings, one per line

# Tags on child runs (one configuration, one replicate)
TAG_HASH = "config_hash"     # identity of a replicate: resolved values + dataset
TAG_CELL = "cell"            # identity of the configuration its replicates share
TAG_CONFIGURATION = "configuration"  # that configuration in words (pipeline.tracking.labels)
TAG_REPLICATE = "replicate"  # 0, 1, ... within the cell (its seed is training.seed + this)
TAG_WARNINGS = "warnings"    # combinations that run but make little sense
# How the run's launch trained it (a resumed run on another layout gets the new values):
TAG_RANKS = "ranks"              # Horovod ranks of its trial group
TAG_LOCAL_BATCH = "local_batch"  # each rank's batch
TAG_LR_SCALE = "lr_scale"        # the factor applied to optimizer.learning_rate
TAG_ERROR = "error"          # the end of a failed configuration's traceback
TAG_RESUMED_FROM = "resumed_from_epoch"
TAG_RESUMED_IN_MEMORY = "resumed_in_memory"  # the epoch a kept model went on from
TAG_CHECKPOINT_WARNING = "checkpoint_warning"

# Leases and claims (pipeline.tracking.claims)
TAG_HEARTBEAT = "heartbeat"
TAG_CLAIMED_AT = "claimed_at"
# claim.<parent run id>: a sweep's bid for an existing run, owner or not (see claims.py)
TAG_CLAIM_PREFIX = "claim."
TAG_ORPHANED = "orphaned"    # why a later sweep marked this run failed
TAG_LEASE = "lease_seconds"  # the lease of the sweep that keeps this run's heartbeat
TAG_TRAINER = "trainer"      # host:pid of the rank 0 holding the claim (to find a stuck one)

# Successive halving (pipeline.train.driver.halving)
TAG_RUNG_EPOCH = "rung_epoch"  # a paused or pruned run: the epochs it had trained
TAG_PRUNED = "pruned"          # on a pruned run: the rung's decision, in words

# Racing (pipeline.train.driver.racing)
TAG_RACE = "race"  # on every run of a cell: why it has the replicates it has



class Status(StrEnum):
    """A run's status tag (TAG_STATUS), and a trial's outcome. Members are strings, so tags
    written and read as text compare equal to them."""

    RUNNING = "running"
    FINISHED = "finished"
    DIVERGED = "diverged"  # stopped on a non-finite loss: done, and counted against its cell
    FAILED = "failed"
    # Successive halving: PAUSED, trained to its rung's budget and waiting for the decision
    # (checkpoint kept); PRUNED, stopped there by the decision (not comparable with finished).
    PAUSED = "paused"
    PRUNED = "pruned"
    # Outcomes a rank reports for a configuration it did not train (never a tag): SKIPPED,
    # done or claimed by another sweep; UNSTARTED, MLflow was unusable when its turn came.
    SKIPPED = "skipped"
    UNSTARTED = "unstarted"


FINISHED, DIVERGED = Status.FINISHED, Status.DIVERGED
FAILED, RUNNING = Status.FAILED, Status.RUNNING
PAUSED, PRUNED = Status.PAUSED, Status.PRUNED
SKIPPED, UNSTARTED = Status.SKIPPED, Status.UNSTARTED
DONE_STATUSES = (FINISHED, DIVERGED)
# The MLflow run status each status tag ends a run with (anything else: FINISHED).
MLFLOW_END_STATUS = {FAILED: "FAILED", PAUSED: "SCHEDULED", PRUNED: "KILLED"}

# Params of a sweep's parent run
PARAM_GRID_AXES = "grid_axes"
PARAM_PLANNED_RUNS = "planned_runs"  # configurations x replicates planned by this invocation

# The parent's summary, once the report is built (pipeline.tracking.summary)
TAG_NOTE = "mlflow.note.content"   # the run's description in the UI (Markdown)
TAG_VERDICT = "verdict"            # the report's answer, in words
TAG_BEST = "best_configuration"    # the best cell's label
TAG_REPORT = "report"              # where the report's index.html is

# Experiments: MLflow 3's UI opens a "custom model development" experiment on its training
# runs; without this tag it may guess GenAI and open on an empty traces overview.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_MODEL_TRAINING = "custom_model_development"

# Artifacts of a child run
ARTIFACT_CONFIG = "resolved_config.json"
# On a sweep's parent: every configuration hash it planned (a rerun's report finds there the
# runs an earlier attempt finished and the rerun skipped).
ARTIFACT_PLANNED = "planned.json"
ARTIFACT_CONFUSION = "confusion_matrix.png"
ARTIFACT_CURVES = "curves.png"

# Per-epoch metrics a rank logs (the epoch is the step): every task's Keras metrics
# (pipeline.tasks.epoch_metrics) and the clock's.
MODEL_EPOCH_METRICS = tuple(dict.fromkeys(m for t in tasks.TASKS for m in tasks.epoch_metrics(t)))
EPOCH_METRICS = (*MODEL_EPOCH_METRICS, "lr", "epoch_seconds", "samples_per_sec")
# Final metrics without a step: the task's test metrics (pipeline.tasks), then these.
RUN_METRICS = ("train_seconds", "epochs_run")


def final_metrics(task: str) -> tuple[str, ...]:
    """Every metric a finished run of ``task`` logs once: test metrics, then run metrics."""
    return (*tasks.final_metrics(task), *RUN_METRICS)


# The multi-class task's, for readers written before there were tasks.
FINAL_METRICS = final_metrics("multiclass")
