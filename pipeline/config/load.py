"""Configuration files: read, parse, and check values whose range the types cannot express."""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.config.grid import expand_grid
from pipeline.config.known import check_names
from pipeline.config.parse import parse, read_yaml
from pipeline.config.schema import AugmentConfig, DataConfig, SweepConfig, TrackingConfig
from pipeline.data.limits import MAX_CLASSES
from pipeline.errors import ConfigError


def load_data_config(path: str | Path) -> DataConfig:
    cfg = parse(DataConfig, read_yaml(path), "")
    _check_data(cfg)
    return cfg


def load_sweep_config(path: str | Path) -> SweepConfig:
    """A sweep file, typed and checked; every registered name in it is checked first, so a
    misspelt one is refused with its file, key path and the closest known names."""
    data = read_yaml(path)
    check_names(data, path)
    cfg = parse(SweepConfig, data, "")
    if cfg.max_attempts < 1:
        raise ConfigError("max_attempts: must be at least 1")
    if cfg.repeats < 1:
        raise ConfigError(f"repeats: must be at least 1, got {cfg.repeats}")
    if cfg.threads_per_rank < 1:
        raise ConfigError("threads_per_rank: must be at least 1")
    _check_tracking(cfg.tracking)
    expand_grid(cfg)  # validates every grid point now, before anything starts
    return cfg


def _check_tracking(t: TrackingConfig) -> None:
    for key in ("backoff_seconds", "lease_seconds", "claim_settle_seconds"):
        # NaN passes every comparison below; inf would make a lease that never ends.
        if not math.isfinite(getattr(t, key)):
            raise ConfigError(f"tracking.{key}: must be a finite number, got {getattr(t, key)}")
    if t.retries < 0:
        raise ConfigError("tracking.retries: must be at least 0")
    if t.backoff_seconds < 0 or t.claim_settle_seconds < 0:
        key = "backoff_seconds" if t.backoff_seconds < 0 else "claim_settle_seconds"
        raise ConfigError(f"tracking.{key}: must be at least 0")
    if t.lease_seconds < 4 * t.claim_settle_seconds or t.lease_seconds <= 0:
        # The lease must outlive a claim's settle time, or a fresh claim would look dead.
        raise ConfigError("tracking.lease_seconds: must be positive and at least 4 x "
                          "claim_settle_seconds")


def _check_data(cfg: DataConfig) -> None:
    if not 0.0 <= cfg.split.val_fraction < 1.0:
        raise ConfigError("split.val_fraction: must be in [0, 1)")
    if not 0.0 < cfg.split.test_fraction < 1.0:
        raise ConfigError("split.test_fraction: must be in (0, 1)")
    if cfg.split.val_fraction + cfg.split.test_fraction >= 1.0:
        raise ConfigError("split: val_fraction + test_fraction must be below 1")
    if cfg.shards < 1:
        raise ConfigError("shards: must be at least 1")
    classes = cfg.source.num_classes
    if classes is not None and not 1 <= classes <= MAX_CLASSES:
        raise ConfigError(f"source.num_classes: must be in [1, {MAX_CLASSES}], got {classes}")
    _check_task(cfg)
    if cfg.source.generate is not None:
        _check_generate(cfg)


_TABLES = ("csv", "parquet")


def _check_task(cfg: DataConfig) -> None:
    """Which source keys each task needs or refuses: one line naming the key."""
    src, task = cfg.source, cfg.task
    if (src.features or src.targets) and src.format not in _TABLES:
        raise ConfigError(f"source.features/targets: only for csv or parquet, not {src.format}")
    for key, names in (("features", src.features), ("targets", src.targets),
                       ("label_names", src.label_names)):
        if names is not None and (not names or len(set(names)) != len(names)):
            raise ConfigError(f"source.{key}: a non-empty list of distinct names")
    if cfg.derive is not None:
        if task not in ("binary", "multilabel"):
            raise ConfigError(f"derive: only for binary or multilabel tasks, not {task}")
        if any(not classes or min(classes) < 0 for classes in cfg.derive.values()):
            raise ConfigError("derive: every label needs a non-empty list of source classes >= 0")
    needs = {
        "regression": (bool(src.targets and src.features) and cfg.derive is None,
                       "source.features and source.targets (numeric columns)"),
        "multilabel": ((cfg.derive is not None and len(cfg.derive) >= 2) !=
                       (src.targets is not None and len(src.targets) >= 2),
                       "either derive with two or more labels or source.targets with two or "
                       "more 0/1 columns"),
        "binary": ((cfg.derive is None or len(cfg.derive) == 1) and not src.targets,
                   "derive with one label, or a label_column holding 0/1, and no targets"),
        "multiclass": (not src.targets, "a label_column, not targets"),
    }
    ok, what = needs[task]
    if not ok:
        raise ConfigError(f"task {task}: needs {what}")
    classes = 2 if task == "binary" and cfg.derive is None else src.num_classes
    if src.label_names and classes is not None and len(src.label_names) != classes:
        raise ConfigError(f"source.label_names: {len(src.label_names)} names for {classes} "
                          "classes")
    if task == "binary" and src.num_classes not in (None, 2) and cfg.derive is None:
        raise ConfigError("source.num_classes: a binary label has 2 classes (0 and 1)")


def _check_generate(cfg: DataConfig) -> None:
    g = cfg.source.generate
    if cfg.task != "regression" or cfg.source.format != "parquet":
        raise ConfigError("source.generate: writes a regression table; needs task regression "
                          "and format parquet")
    if g.rows < 1 or g.test_rows < 0 or g.features < 5:
        raise ConfigError("source.generate: rows >= 1, test_rows >= 0, features >= 5")
    if not 0.0 <= g.outlier_fraction < 1.0 or g.noise < 0 or g.outlier_scale < 0:
        raise ConfigError("source.generate: outlier_fraction in [0, 1), noise and "
                          "outlier_scale >= 0")
    columns = {f"x{i}" for i in range(1, g.features + 1)}
    if tuple(cfg.source.targets or ()) != ("y",) or not set(cfg.source.features) <= columns:
        raise ConfigError(f"source.generate: the table has features x1..x{g.features} and "
                          "target y; list those in source.features and source.targets")


def load_augment_config(path: str | Path) -> AugmentConfig:
    cfg = parse(AugmentConfig, read_yaml(path), "")
    if cfg.copies < 1:
        raise ConfigError("copies: must be at least 1")
    if cfg.shards < 1 or cfg.rows_per_batch < 1:
        raise ConfigError("shards and rows_per_batch: must be at least 1")
    return cfg
