"""What the driver and the ranks share: the trial, its batch plan, the job, the outcome.

The driver resolves every setting into these objects once and pickles them to the ranks;
a rank never re-derives a setting (the batch plan is computed here, not in four places).
The outcome a rank hands back is typed: the sweep, the bench and the tests read its
fields, never string keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.config import RunConfig, TrackingConfig
from pipeline.data.feed import steps_per_epoch
from pipeline.data.manifest import Manifest
from pipeline.errors import ConfigError
from pipeline.tracking.vocab import Status


@dataclass(frozen=True)
class BatchPlan:
    """How one configuration's batches and learning rate map onto ``ranks`` ranks.

    Global batch mode: each rank holds ``batch_size / ranks`` rows, gradients are averaged,
    and an update equals one step on the global batch, so the learning rate applies as
    configured. Per-rank mode: the batch grows with the ranks, so the learning rate is
    scaled by their number, warming up from the single-rank value.
    """

    ranks: int
    local_batch: int
    steps_per_epoch: int
    lr_scale: float
    summed_gradients: bool  # loss_reduction "sum": gradients are summed across ranks too

    @property
    def global_batch(self) -> int:
        return self.local_batch * self.ranks

    @property
    def samples_per_epoch(self) -> int:
        return self.steps_per_epoch * self.global_batch

    @property
    def warmup_start(self) -> float:
        """Where a warm-up ramp starts, as a fraction of the scaled rate."""
        return 1.0 / self.lr_scale if self.lr_scale > 1 else 0.0


def plan_batches(cfg: RunConfig, manifest: Manifest, ranks: int, name: str) -> BatchPlan:
    """The plan for ``cfg`` on ``ranks`` ranks; ConfigError when the batch cannot be split."""
    t = cfg.training
    if t.batch_mode == "global" and t.batch_size % ranks:
        raise ConfigError(f"{name}: training.batch_size {t.batch_size} is not divisible by "
                          f"{ranks} ranks (it is the global batch)")
    local = t.batch_size // ranks if t.batch_mode == "global" else t.batch_size
    return BatchPlan(ranks=ranks, local_batch=local,
                     steps_per_epoch=steps_per_epoch(manifest, "train", ranks, local),
                     lr_scale=float(ranks if t.batch_mode == "per_rank" else 1),
                     summed_gradients=t.loss_reduction == "sum")


@dataclass(frozen=True)
class Trial:
    """One replicate of one configuration: resolved, identified and planned on the driver.

    ``config_hash`` identifies this replicate (its seed included), so resuming and skipping
    work per replicate; ``cell_hash`` identifies the configuration all its replicates share.
    """

    name: str
    config: RunConfig
    config_hash: str
    batches: BatchPlan
    cell_hash: str = ""
    replicate: int = 0
    # What the dataset's task says of this head (pipeline.model.names.check_head), tagged on
    # the run: combinations that run but make little sense.
    warnings: tuple[str, ...] = ()
    # Successive halving's rung: train to this many epochs, then pause (checkpoint kept, no
    # test) unless that is all its epochs. None: train to the end.
    budget: int | None = None

    @property
    def stop_epoch(self) -> int:
        """The epoch this launch trains it to."""
        epochs = self.config.training.epochs
        return epochs if self.budget is None else min(self.budget, epochs)


@dataclass(frozen=True)
class BoardAddress:
    """Where a group's rank 0 asks the driver for its next trial (driver.board): the key
    authenticates both ends, so it travels only inside the pickled job."""

    host: str
    port: int
    authkey: bytes = field(repr=False)
    group: int = 0


@dataclass(frozen=True)
class Assignment:
    """The trial a group trains next, the one it may claim ahead, and its number of the
    sweep's runs so far (for the progress line)."""

    trial: Trial
    following: Trial | None
    number: int
    total: int


@dataclass(frozen=True, kw_only=True)
class TrackingTarget:
    """Where a rank's records go: the MLflow server, experiment and parent run, the spool
    for what MLflow could not take, and the retry and lease settings."""

    uri: str
    experiment_id: str
    parent_run_id: str
    spool_dir: str = "spool"  # where rank 0 spools what MLflow could not take
    settings: TrackingConfig = field(default_factory=TrackingConfig)


@dataclass(frozen=True, kw_only=True)
class DataRef:
    """What the ranks train on: the prepared dataset, the fingerprint the sweep planned on
    (a rank refuses one rewritten since), its task and how its batches are fed and probed."""

    path: str
    fingerprint: str
    name: str = ""  # the manifest's dataset name (the MLflow dataset input's)
    task: str = "multiclass"  # the dataset's (pipeline.tasks), tagged on every run
    feed: str = "stream"
    probe_rows: int = 256  # diagnostics' probe batch (0: no diagnostics)
    probe_seed: int = 0


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """How a rank runs on its host: threads and cores, console output, where checkpoints
    go, and whether done configurations train again."""

    threads: int = 1
    pin_threads: bool = True
    # Concurrent trials: this launch's first task slot on a host (its ranks pin the cores
    # from there on) and the prefix of rank 0's console lines, "" for a sweep's only launch.
    first_slot: int = 0
    label: str = ""
    verbose: bool = False
    checkpoint_dir: str = "checkpoints"
    force: bool = False


@dataclass(frozen=True, kw_only=True)
class RankJob:
    """Everything a rank needs; pickled by the driver and sent to every rank."""

    sweep: str
    trials: list[Trial]
    tracking: TrackingTarget
    data: DataRef
    runtime: Runtime = field(default_factory=Runtime)
    # The driver's board, where rank 0 asks for each next trial (the ranks live for the whole
    # sweep); None: train ``trials`` in order and end.
    board: BoardAddress | None = None


@dataclass
class TrialOutcome:
    """What became of one configuration, as a rank (or MLflow, after a failed launch) saw it.

    Timings are None when the outcome was read back from MLflow: that launch's per-phase
    figures died with it.
    """

    name: str
    config_hash: str
    status: Status
    reason: str = ""
    epochs_run: int = 0
    resumed_from_epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # final test metrics
    history: dict[str, list[float]] = field(default_factory=dict)  # this launch's epochs
    train_seconds: float = math.nan
    setup_seconds: float | None = None
    teardown_seconds: float | None = None  # fit() freeing its input pipeline
    test_seconds: float | None = None
    record_seconds: float | None = None  # rank 0's records, in their thread
    record_wait_seconds: float | None = None  # what training waited for the records thread
    peak_rss_mib: float | None = None
    spool: str | None = None  # the spool file, when MLflow did not take every record

    @property
    def timed(self) -> bool:
        """Whether this launch trained it here (per-phase timings are known)."""
        return self.setup_seconds is not None

    def metric(self, name: str) -> float:
        return self.metrics.get(name, math.nan)
