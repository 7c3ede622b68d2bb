"""Configuration files: read, parse, and check values whose range the types cannot express."""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.config.grid import expand_grid
from pipeline.config.parse import parse, read_yaml
from pipeline.config.schema import AugmentConfig, DataConfig, SweepConfig, TrackingConfig
from pipeline.data.limits import MAX_CLASSES
from pipeline.errors import ConfigError


def load_data_config(path: str | Path) -> DataConfig:
    cfg = parse(DataConfig, read_yaml(path), "")
    _check_data(cfg)
    return cfg


def load_sweep_config(path: str | Path) -> SweepConfig:
    cfg = parse(SweepConfig, read_yaml(path), "")
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


def load_augment_config(path: str | Path) -> AugmentConfig:
    cfg = parse(AugmentConfig, read_yaml(path), "")
    if cfg.copies < 1:
        raise ConfigError("copies: must be at least 1")
    if cfg.shards < 1 or cfg.rows_per_batch < 1:
        raise ConfigError("shards and rows_per_batch: must be at least 1")
    return cfg
